//! The command line and the validated run settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use s4_core::storage::S3Config;

use crate::{process, Result};

/// Measure S4's object path against the machine's limits.
#[derive(Debug, Parser)]
#[command(name = "s4-bench")]
pub(crate) struct Flags {
    /// A short run: 64 MiB transfers, 1 repeat, 5 s loads, 10 000-object bucket.
    #[arg(long)]
    quick: bool,
    /// Size of the big transfers in MiB (default 1024; 64 with --quick).
    #[arg(long)]
    size_mib: Option<u64>,
    /// Repeats of every measurement (default 3; 1 with --quick).
    #[arg(long)]
    repeats: Option<usize>,
    /// Seconds of each 4 KiB GET load (default 15; 5 with --quick).
    #[arg(long)]
    load_secs: Option<u64>,
    /// Concurrent connections of the 4 KiB GET load.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Objects in the listing bucket (default 100000; 10000 with --quick).
    #[arg(long)]
    list_objects: Option<usize>,
    /// Objects in the listing bucket on the S3 engine (default: as --list-objects).
    #[arg(long)]
    s3_list_objects: Option<usize>,
    /// Groups to run, comma-separated: limits, core, http, durability (local-location
    /// uploads with and without fsync), transfer (opt-in), s3proto (opt-in: the S3
    /// endpoint vs the REST API on the local backend).
    #[arg(
        long,
        default_value = "limits,core,http,durability",
        value_delimiter = ','
    )]
    only: Vec<String>,
    /// Backends to run, comma-separated: local, s3 (s3 needs S4_TEST_S3_ENDPOINT).
    #[arg(long, default_value = "local,s3", value_delimiter = ',')]
    backends: Vec<String>,
    /// Work directory: data directory, limit files, logs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// The `s4` daemon binary (default: next to this binary).
    #[arg(long)]
    s4_bin: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Part size in MiB of the direct S3 PUT (the limit measurement).
    #[arg(long, default_value_t = 16)]
    direct_part_mib: usize,
    /// Parts in flight of the direct S3 PUT.
    #[arg(long, default_value_t = 8)]
    direct_in_flight: usize,
    /// Record each HTTP phase of the daemon with `perf record -g` into
    /// `<work-dir>/perf-<backend>-<phase>.data` (for `perf report` / flamegraphs).
    #[arg(long)]
    perf: bool,
}

/// Validated run settings.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) size: u64,
    pub(crate) repeats: usize,
    pub(crate) load: Duration,
    pub(crate) warmup: Duration,
    pub(crate) concurrency: usize,
    pub(crate) list_objects: usize,
    pub(crate) s3_list_objects: usize,
    pub(crate) limits: bool,
    pub(crate) core: bool,
    pub(crate) http: bool,
    pub(crate) transfer: bool,
    pub(crate) s3proto: bool,
    pub(crate) durability: bool,
    pub(crate) local: bool,
    pub(crate) s3: Option<S3Config>,
    pub(crate) work_dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) s4_bin: PathBuf,
    pub(crate) json: PathBuf,
    pub(crate) cold: bool,
    pub(crate) perf: bool,
    pub(crate) direct_part: usize,
    pub(crate) direct_in_flight: usize,
}

pub(crate) fn plan(flags: Flags) -> Result<Plan> {
    let q = flags.quick;
    let s3 = if flags.backends.iter().any(|b| b == "s3") {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        match var("S4_TEST_S3_ENDPOINT") {
            Some(endpoint) => Some(S3Config {
                endpoint,
                access_key_id: var("S4_TEST_S3_ACCESS_KEY_ID").unwrap_or_default(),
                secret_access_key: var("S4_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_default(),
                region: var("S4_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            }),
            None => {
                eprintln!("note: S4_TEST_S3_ENDPOINT is not set: skipping the S3 engine");
                None
            }
        }
    } else {
        None
    };
    std::fs::create_dir_all(&flags.work_dir)?;
    let work_dir = std::fs::canonicalize(&flags.work_dir)?;
    let list_objects = flags
        .list_objects
        .unwrap_or(if q { 10_000 } else { 100_000 });
    let s4_bin = flags.s4_bin.unwrap_or_else(process::default_s4_bin);
    if flags
        .only
        .iter()
        .any(|g| g == "http" || g == "transfer" || g == "s3proto")
        && !s4_bin.exists()
    {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p s4-http`",
            s4_bin.display()
        )
        .into());
    }
    Ok(Plan {
        size: flags.size_mib.unwrap_or(if q { 64 } else { 1024 }) << 20,
        repeats: flags.repeats.unwrap_or(if q { 1 } else { 3 }).max(1),
        load: Duration::from_secs(flags.load_secs.unwrap_or(if q { 5 } else { 15 })),
        warmup: Duration::from_secs(1),
        concurrency: flags.concurrency.max(1),
        list_objects,
        s3_list_objects: flags.s3_list_objects.unwrap_or(list_objects),
        limits: flags.only.iter().any(|g| g == "limits"),
        core: flags.only.iter().any(|g| g == "core"),
        http: flags.only.iter().any(|g| g == "http"),
        transfer: flags.only.iter().any(|g| g == "transfer"),
        s3proto: flags.only.iter().any(|g| g == "s3proto"),
        durability: flags.only.iter().any(|g| g == "durability"),
        local: flags.backends.iter().any(|b| b == "local"),
        s3,
        data_dir: work_dir.join("data"),
        work_dir,
        s4_bin,
        json: flags.json,
        cold: false,
        perf: flags.perf,
        direct_part: flags.direct_part_mib.max(5) << 20,
        direct_in_flight: flags.direct_in_flight.max(1),
    })
}

impl Plan {
    /// Objects in the folder of the folder-delete measurement: a tenth of the
    /// listing bucket.
    pub(crate) fn folder_keys(&self) -> usize {
        (self.list_objects / 10).max(1)
    }
}

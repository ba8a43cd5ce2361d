//! # s4-bench
//!
//! Measures S4's object path against the machine's limits, in one run:
//!
//! * **limits**: sequential write (`fdatasync`) and read (cold and warm) of one file
//!   on the data directory's file system, loopback TCP, and direct PUT / GET /
//!   4 KiB GETs / a 1000-key listing page against the S3 engine via `object_store`;
//! * **http**: the `s4` daemon (release build, a child process) on the local
//!   backend and on the S3 engine: upload and download through the API, 4 KiB GETs
//!   from 64 keep-alive connections, listing pages of a large bucket, start-up
//!   time, idle and peak resident memory;
//! * **core**: the same upload and download through `s4-core` in process, so the
//!   HTTP layer's own cost shows.
//!
//! Prints a table of medians (min–max over repeats) and writes JSON. See
//! `benches/README.md`.
//!
//! ## Layout
//!
//! * `data`: non-repeating upload data made on the fly.
//! * `client`: a lean hyper client (multipart upload, download, load, listing).
//! * `process`: the daemon as a child process; start-up and RSS.
//! * `limits`: disk, TCP and direct S3 measurements.
//! * `report`: medians, targets, the table and the JSON.

mod client;
mod data;
mod durability;
mod limits;
mod process;
mod report;
mod s3proto;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use s4_core::storage::{LocalBackend, S3Backend, S3Config};
use s4_core::{BucketName, ErrorKind, ObjectKey, S4};

use client::Conn;
use data::Payload;
use process::Daemon;
use report::{Better, Results, Target};

/// Error type of the harness.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// Bucket of the big transfers.
const DATA_BUCKET: &str = "s4-bench-data";
/// Key of the 4 KiB object.
const SMALL_KEY: &str = "small/4k.bin";

/// Measure S4's object path against the machine's limits.
#[derive(Debug, Parser)]
#[command(name = "s4-bench")]
struct Flags {
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
struct Plan {
    size: u64,
    repeats: usize,
    load: Duration,
    warmup: Duration,
    concurrency: usize,
    list_objects: usize,
    s3_list_objects: usize,
    limits: bool,
    core: bool,
    http: bool,
    transfer: bool,
    s3proto: bool,
    durability: bool,
    local: bool,
    s3: Option<S3Config>,
    work_dir: PathBuf,
    data_dir: PathBuf,
    s4_bin: PathBuf,
    json: PathBuf,
    cold: bool,
    perf: bool,
    direct_part: usize,
    direct_in_flight: usize,
}

fn plan(flags: Flags) -> Result<Plan> {
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

fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s4-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s4-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn say(text: impl AsRef<str>) {
    eprintln!("[{}] {}", chrono_like_now(), text.as_ref());
}

fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The direct `object_store` client of the S3 engine for `bucket`.
fn direct_store(config: &S3Config, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    direct_store_with(config, bucket, false)
}

/// [`direct_store`], optionally over S4's quick-ACK connector.
fn direct_store_with(
    config: &S3Config,
    bucket: &str,
    quick_ack: bool,
) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::new();
    if quick_ack {
        builder = builder.with_http_connector(s4_core::storage::QuickAckConnector {
            max_idle_per_host: 256,
            ..Default::default()
        });
    }
    let store = builder
        .with_endpoint(&config.endpoint)
        .with_bucket_name(bucket)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_region(&config.region)
        .with_virtual_hosted_style_request(false)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_pool_max_idle_per_host(256),
        )
        .build()?;
    Ok(Arc::new(store))
}

async fn ensure_s3_bucket(config: &S3Config, bucket: &str) -> Result<()> {
    let backend = S3Backend::new(config.clone())?;
    let s4 = S4::builder().backend(backend).build();
    match s4.create_bucket(&BucketName::try_from(bucket)?).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn list_key(i: usize) -> String {
    format!("obj-{i:06}")
}

/// Fills the local listing bucket by writing files straight into the data
/// directory (the local backend maps keys to files). Existing files are kept.
fn populate_local(bucket_dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(bucket_dir)?;
    let present = std::fs::read_dir(bucket_dir)?.count();
    if present == count {
        return Ok(());
    }
    say(format!(
        "populating {} with {count} files",
        bucket_dir.display()
    ));
    for entry in std::fs::read_dir(bucket_dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    for i in 0..count {
        std::fs::write(bucket_dir.join(list_key(i)), format!("object {i}\n"))?;
    }
    Ok(())
}

/// Fills the S3 listing bucket with `count` small objects (64 PUTs in flight),
/// unless a marker in the data bucket says it was done.
async fn populate_s3(config: &S3Config, bucket: &str, count: usize) -> Result<()> {
    ensure_s3_bucket(config, bucket).await?;
    let marker_store = direct_store(config, DATA_BUCKET)?;
    let marker = object_store::path::Path::from(format!("markers/{bucket}-{count}"));
    if marker_store.head(&marker).await.is_ok() {
        return Ok(());
    }
    say(format!(
        "populating S3 bucket {bucket} with {count} objects"
    ));
    let store = direct_store(config, bucket)?;
    let started = Instant::now();
    let results: Vec<object_store::Result<_>> = futures::stream::iter(0..count)
        .map(|i| {
            let store = Arc::clone(&store);
            async move {
                store
                    .put(
                        &object_store::path::Path::from(list_key(i)),
                        PutPayload::from(format!("object {i}\n")),
                    )
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in results {
        r?;
    }
    say(format!(
        "populated in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    marker_store.put(&marker, PutPayload::from("done")).await?;
    Ok(())
}

async fn run(flags: Flags) -> Result<()> {
    let mut plan = plan(flags)?;
    std::fs::create_dir_all(&plan.data_dir)?;
    plan.cold = limits::drop_caches();
    if !plan.cold {
        eprintln!("note: cannot drop the page cache (not root?): 'cold' reads are warm");
    }
    let mut results = Results::default();
    declare(&mut results, &plan);
    if plan.durability {
        durability::declare(&mut results, plan.size);
    }
    results.note(
        "limit.disk.read_cold",
        if plan.cold {
            "page cache dropped before the read (sync; echo 3 > /proc/sys/vm/drop_caches)"
        } else {
            "the page cache could not be dropped: this read is warm"
        },
    );
    let started = Instant::now();

    // Set-up, outside any measurement.
    let list_bucket = format!("s4-bench-list-{}", plan.list_objects);
    let s3_list_bucket = format!("s4-bench-list-{}", plan.s3_list_objects);
    if plan.http && plan.local {
        let data_dir = plan.data_dir.clone();
        let bucket = list_bucket.clone();
        let count = plan.list_objects;
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(data_dir.join(DATA_BUCKET))?;
            populate_local(&data_dir.join(bucket), count)
        })
        .await??;
    }
    if plan.local {
        std::fs::create_dir_all(plan.data_dir.join(DATA_BUCKET))?;
    }
    if let Some(config) = &plan.s3 {
        ensure_s3_bucket(config, DATA_BUCKET).await?;
        if plan.http {
            populate_s3(config, &s3_list_bucket, plan.s3_list_objects).await?;
        }
    }

    if plan.transfer {
        let setup = plan.clone();
        tokio::task::spawn_blocking(move || transfer::prepare(&setup)).await??;
    }

    for rep in 0..plan.repeats {
        say(format!("repeat {}/{}", rep + 1, plan.repeats));
        if plan.limits {
            measure_limits(&plan, &mut results, rep).await?;
        }
        if plan.core {
            if plan.local {
                measure_core_local(&plan, &mut results).await?;
            }
            if let Some(config) = &plan.s3 {
                measure_core_s3(&plan, config, &mut results).await?;
            }
        }
        if plan.transfer {
            transfer::measure(&plan, &mut results).await?;
        }
        if plan.s3proto {
            s3proto::measure(&plan, &mut results).await?;
        }
        if plan.http {
            if plan.local {
                measure_http(&plan, &mut results, "local", &list_bucket).await?;
            }
            if plan.s3.is_some() {
                measure_http(&plan, &mut results, "s3", &s3_list_bucket).await?;
            }
        }
        if plan.durability {
            durability::measure(&plan.work_dir, plan.size, &mut results).await?;
        }
    }

    let table = results.table();
    println!("\n{table}");
    let notes = results.notes();
    if !notes.is_empty() {
        println!("{notes}");
    }
    let context = serde_json::json!({
        "size_bytes": plan.size,
        "repeats": plan.repeats,
        "load_secs": plan.load.as_secs(),
        "concurrency": plan.concurrency,
        "list_objects": plan.list_objects,
        "s3_list_objects": plan.s3_list_objects,
        "cold_reads": if plan.cold { "page cache dropped (echo 3 > /proc/sys/vm/drop_caches)" } else { "page cache could not be dropped: cold = warm" },
        "s3_endpoint": plan.s3.as_ref().map(|c| c.endpoint.clone()),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "duration_secs": started.elapsed().as_secs_f64(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    if let Some(dir) = plan.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &plan.json,
        serde_json::to_string_pretty(&results.to_json(context))?,
    )?;
    say(format!(
        "done in {:.0} s; JSON in {}",
        started.elapsed().as_secs_f64(),
        plan.json.display()
    ));
    Ok(())
}

/// Declares every metric in table order, with its target.
fn declare(r: &mut Results, plan: &Plan) {
    use Better::{Higher, Lower};
    if plan.transfer {
        transfer::declare(r, plan);
    }
    if plan.s3proto {
        s3proto::declare(r, plan);
    }
    let size = format!("{} MiB", plan.size >> 20);
    let ratio = |reference: &str, factor: f64| {
        Some(Target::RatioOf {
            reference: reference.to_string(),
            factor,
        })
    };
    if plan.limits {
        if plan.local {
            r.declare(
                "limit.disk.write",
                &format!("limit: disk write {size} (fdatasync)"),
                "MB/s",
                Higher,
                None,
            );
            r.declare(
                "limit.disk.read_cold",
                &format!("limit: disk read {size}, cold"),
                "MB/s",
                Higher,
                None,
            );
            r.declare(
                "limit.disk.read_warm",
                &format!("limit: disk read {size}, warm"),
                "MB/s",
                Higher,
                None,
            );
        }
        r.declare(
            "limit.tcp",
            &format!("limit: loopback TCP {size}"),
            "MB/s",
            Higher,
            None,
        );
        if plan.s3.is_some() {
            r.declare(
                "limit.s3.put",
                &format!("limit: S3 engine direct PUT {size}"),
                "MB/s",
                Higher,
                None,
            );
            r.declare(
                "limit.s3.get",
                &format!("limit: S3 engine direct GET {size}"),
                "MB/s",
                Higher,
                None,
            );
            r.declare(
                "limit.s3.small_get",
                &format!("limit: S3 engine direct 4 KiB GETs ×{}", plan.concurrency),
                "req/s",
                Higher,
                None,
            );
            r.declare(
                "limit.s3.small_get_p99",
                "limit: S3 engine direct 4 KiB GET p99",
                "ms",
                Lower,
                None,
            );
            r.declare(
                "limit.s3.small_get_quickack",
                &format!(
                    "limit: S3 engine direct 4 KiB GETs ×{}, quick-ACK client",
                    plan.concurrency
                ),
                "req/s",
                Higher,
                None,
            );
            r.declare(
                "limit.s3.small_get_quickack_p99",
                "limit: S3 engine direct 4 KiB GET p99, quick-ACK client",
                "ms",
                Lower,
                None,
            );
            r.declare(
                "limit.s3.list_page",
                "limit: S3 engine direct 1000-key page",
                "ms",
                Lower,
                None,
            );
        }
    }
    let cold = if plan.local {
        "limit.disk.read_cold"
    } else {
        ""
    };
    let mut backends = Vec::new();
    if plan.local {
        backends.push("local");
    }
    if plan.s3.is_some() {
        backends.push("s3");
    }
    if plan.core {
        for b in &backends {
            let (up_ref, down_ref) = if *b == "local" {
                ("limit.disk.write", cold)
            } else {
                ("limit.s3.put", "limit.s3.get")
            };
            r.declare(
                &format!("core.{b}.upload"),
                &format!("core {b}: upload {size}"),
                "MB/s",
                Higher,
                ratio(up_ref, 0.7),
            );
            r.declare(
                &format!("core.{b}.download"),
                &format!(
                    "core {b}: download {size}{}",
                    if *b == "local" { ", cold" } else { "" }
                ),
                "MB/s",
                Higher,
                ratio(down_ref, 0.8),
            );
            if *b == "local" {
                r.declare(
                    "core.local.download_warm",
                    &format!("core local: download {size}, warm"),
                    "MB/s",
                    Higher,
                    Some(Target::Compare("limit.disk.read_warm".into())),
                );
            }
        }
    }
    if plan.http {
        for b in &backends {
            let (up_ref, down_ref) = if *b == "local" {
                ("limit.disk.write", cold)
            } else {
                ("limit.s3.put", "limit.s3.get")
            };
            r.declare(
                &format!("http.{b}.upload"),
                &format!("HTTP {b}: upload {size}"),
                "MB/s",
                Higher,
                ratio(up_ref, 0.7),
            );
            r.declare(
                &format!("http.{b}.download"),
                &format!(
                    "HTTP {b}: download {size}{}",
                    if *b == "local" { ", cold" } else { "" }
                ),
                "MB/s",
                Higher,
                ratio(down_ref, 0.8),
            );
            if *b == "local" {
                r.declare(
                    "http.local.download_warm",
                    &format!("HTTP local: download {size}, warm"),
                    "MB/s",
                    Higher,
                    Some(Target::Compare("limit.tcp".into())),
                );
            }
            r.declare(
                &format!("http.{b}.upload_cpu"),
                &format!("HTTP {b}: daemon CPU per GiB uploaded"),
                "s",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.download_cpu"),
                &format!("HTTP {b}: daemon CPU per GiB downloaded"),
                "s",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.small_get"),
                &format!("HTTP {b}: 4 KiB GETs ×{}", plan.concurrency),
                "req/s",
                Higher,
                if *b == "s3" {
                    Some(Target::AtLeast(2210.0))
                } else {
                    None
                },
            );
            r.declare(
                &format!("http.{b}.small_get_p50"),
                &format!("HTTP {b}: 4 KiB GET p50"),
                "ms",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.small_get_p99"),
                &format!("HTTP {b}: 4 KiB GET p99"),
                "ms",
                Lower,
                Some(Target::Under(50.0)),
            );
            r.declare(
                &format!("http.{b}.small_get_errors"),
                &format!("HTTP {b}: 4 KiB GET errors"),
                "",
                Lower,
                Some(Target::AtMost(0.0)),
            );
            r.declare(
                &format!("http.{b}.small_get_cpu"),
                &format!("HTTP {b}: daemon CPU per 4 KiB GET"),
                "µs",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.after_load_get"),
                &format!("HTTP {b}: one GET right after the load"),
                "ms",
                Lower,
                None,
            );
            let n = if *b == "local" {
                plan.list_objects
            } else {
                plan.s3_list_objects
            };
            r.declare(
                &format!("http.{b}.list_page_uncached"),
                &format!("HTTP {b}: first 1000-key page of {n} objects, first request"),
                "ms",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.list_page"),
                &format!("HTTP {b}: first 1000-key page of {n} objects"),
                "ms",
                Lower,
                if *b == "local" {
                    Some(Target::Under(50.0))
                } else {
                    None
                },
            );
            r.declare(
                &format!("http.{b}.list_walk"),
                &format!("HTTP {b}: full walk of {n} objects (1000/page)"),
                "s",
                Lower,
                None,
            );
            r.declare(
                &format!("http.{b}.startup"),
                &format!("HTTP {b}: start-up to first answer"),
                "ms",
                Lower,
                Some(Target::AtMost(100.0)),
            );
            r.declare(
                &format!("http.{b}.idle_rss"),
                &format!("HTTP {b}: idle RSS after start"),
                "MiB",
                Lower,
                Some(Target::AtMost(15.0)),
            );
            r.declare(
                &format!("http.{b}.peak_rss_upload"),
                &format!("HTTP {b}: peak RSS during upload"),
                "MiB",
                Lower,
                Some(Target::AtMost(64.0)),
            );
            r.declare(
                &format!("http.{b}.peak_rss_download"),
                &format!("HTTP {b}: peak RSS during download"),
                "MiB",
                Lower,
                Some(Target::AtMost(64.0)),
            );
            r.declare(
                &format!("http.{b}.rss_after"),
                &format!("HTTP {b}: RSS at the end (after all loads)"),
                "MiB",
                Lower,
                None,
            );
        }
    }
}

async fn measure_limits(plan: &Plan, r: &mut Results, rep: usize) -> Result<()> {
    if plan.local {
        let file = plan.work_dir.join("limit.bin");
        let payload = Payload::new(plan.size, rep as u64);
        let f = file.clone();
        let write = tokio::task::spawn_blocking(move || limits::disk_write(&f, &payload)).await??;
        r.add("limit.disk.write", mb_per_s(plan.size, write));
        let f = file.clone();
        let cold = plan.cold;
        let (read_cold, read_warm) = tokio::task::spawn_blocking(move || {
            if cold {
                limits::drop_caches();
            }
            let (c, n1) = limits::disk_read(&f)?;
            let (w, n2) = limits::disk_read(&f)?;
            Ok::<_, Error>((mb_per_s(n1, c), mb_per_s(n2, w)))
        })
        .await??;
        r.add("limit.disk.read_cold", read_cold);
        r.add("limit.disk.read_warm", read_warm);
        let _ = std::fs::remove_file(&file);
        say(format!(
            "disk: write {:.0} MB/s, read cold {read_cold:.0} MB/s, warm {read_warm:.0} MB/s",
            mb_per_s(plan.size, write)
        ));
    }
    let tcp = limits::tcp_loopback(plan.size).await?;
    r.add("limit.tcp", mb_per_s(plan.size, tcp));
    say(format!("tcp: {:.0} MB/s", mb_per_s(plan.size, tcp)));
    if let Some(config) = &plan.s3 {
        let store = direct_store(config, DATA_BUCKET)?;
        let payload = Payload::new(plan.size, 1000 + rep as u64);
        let put = limits::s3_put(
            &store,
            "direct.bin",
            &payload,
            plan.direct_part,
            plan.direct_in_flight,
        )
        .await?;
        r.add("limit.s3.put", mb_per_s(plan.size, put));
        let (get, n) = limits::s3_get(&store, "direct.bin").await?;
        r.add("limit.s3.get", mb_per_s(n, get));
        say(format!(
            "s3 direct: put {:.0} MB/s, get {:.0} MB/s",
            mb_per_s(plan.size, put),
            mb_per_s(n, get)
        ));
        store
            .put(
                &object_store::path::Path::from(SMALL_KEY),
                PutPayload::from(Payload::new(4096, 7).chunk(0)),
            )
            .await?;
        let load = limits::s3_get_load(&store, SMALL_KEY, plan.concurrency, plan.warmup, plan.load)
            .await?;
        r.add("limit.s3.small_get", load.requests_per_sec);
        r.add("limit.s3.small_get_p99", load.p99_ms);
        say(format!(
            "s3 direct 4 KiB GETs: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            load.requests_per_sec, load.p50_ms, load.p99_ms, load.errors
        ));
        let quick = direct_store_with(config, DATA_BUCKET, true)?;
        let load = limits::s3_get_load(&quick, SMALL_KEY, plan.concurrency, plan.warmup, plan.load)
            .await?;
        r.add("limit.s3.small_get_quickack", load.requests_per_sec);
        r.add("limit.s3.small_get_quickack_p99", load.p99_ms);
        say(format!(
            "s3 direct 4 KiB GETs, quick-ACK client: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            load.requests_per_sec, load.p50_ms, load.p99_ms, load.errors
        ));
        if plan.http {
            let list_store =
                direct_store(config, &format!("s4-bench-list-{}", plan.s3_list_objects))?;
            for _ in 0..5 {
                let t = limits::s3_first_page(&list_store).await?;
                r.add("limit.s3.list_page", t.as_secs_f64() * 1000.0);
            }
        }
    }
    Ok(())
}

async fn core_roundtrip(
    plan: &Plan,
    s4: &S4,
    r: &mut Results,
    backend: &str,
    cold: bool,
) -> Result<()> {
    let bucket = BucketName::try_from(DATA_BUCKET)?;
    let key = ObjectKey::parse("core.bin")?;
    let payload = Payload::new(plan.size, 2000);
    let body = futures::stream::iter(payload.iter().map(Ok));
    let started = Instant::now();
    s4.put_object(&bucket, &key, body, Default::default())
        .await?;
    let up = mb_per_s(plan.size, started.elapsed());
    r.add(&format!("core.{backend}.upload"), up);
    let mut downs = Vec::new();
    for pass in 0..if cold { 2 } else { 1 } {
        if cold && pass == 0 {
            tokio::task::spawn_blocking(limits::drop_caches).await?;
        }
        let started = Instant::now();
        let mut object = s4.get_object(&bucket, &key, Default::default()).await?;
        let mut n = 0u64;
        while let Some(chunk) = object.body.next().await {
            n += chunk?.len() as u64;
        }
        let mbs = mb_per_s(n, started.elapsed());
        downs.push(mbs);
    }
    r.add(&format!("core.{backend}.download"), downs[0]);
    if cold {
        r.add("core.local.download_warm", downs[1]);
    }
    say(format!(
        "core {backend}: upload {up:.0} MB/s, download {downs:.0?} MB/s"
    ));
    Ok(())
}

async fn measure_core_local(plan: &Plan, r: &mut Results) -> Result<()> {
    let backend = LocalBackend::open(&plan.data_dir).await?;
    let s4 = S4::builder().backend(backend).build();
    core_roundtrip(plan, &s4, r, "local", true).await
}

async fn measure_core_s3(plan: &Plan, config: &S3Config, r: &mut Results) -> Result<()> {
    let backend = S3Backend::new(config.clone())?;
    let s4 = S4::builder().backend(backend).build();
    core_roundtrip(plan, &s4, r, "s3", false).await
}

/// Daemon settings the harness passes through from its own environment (the daemon
/// otherwise starts with a clean one), so a run can be split by, e.g., `S4_FSYNC`.
const PASS_THROUGH: [&str; 5] = [
    "S4_FSYNC",
    "S4_S3_TIMEOUT",
    "S4_S3_CONNECT_TIMEOUT",
    "S4_S3_RETRIES",
    "LOG_LEVEL",
];

fn daemon_env(plan: &Plan, backend: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASS_THROUGH
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    env.push(("S4_BACKEND".to_string(), backend.to_string()));
    env.push((
        "S4_DATA_DIR".to_string(),
        plan.data_dir.display().to_string(),
    ));
    if let (Some(c), "s3") = (&plan.s3, backend) {
        env.push(("AWS_S3_ENDPOINT".into(), c.endpoint.clone()));
        env.push(("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key.clone()));
        env.push(("AWS_DEFAULT_REGION".into(), c.region.clone()));
    }
    env
}

async fn measure_http(
    plan: &Plan,
    r: &mut Results,
    backend: &str,
    list_bucket: &str,
) -> Result<()> {
    let log = plan.work_dir.join(format!("s4-{backend}.log"));
    let daemon = Daemon::start(&plan.s4_bin, &daemon_env(plan, backend), &log).await?;
    let addr = daemon.addr;
    r.add(
        &format!("http.{backend}.startup"),
        daemon.startup.as_secs_f64() * 1000.0,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = daemon.memory()?;
    r.add(&format!("http.{backend}.idle_rss"), idle);
    say(format!(
        "http {backend}: started in {:.1} ms, idle RSS {idle:.1} MiB",
        daemon.startup.as_secs_f64() * 1000.0
    ));

    // Listing.
    // The first request after start finds no listing cached by S4. The OS's own
    // directory cache is warmed first: its state is not S4's cost.
    if backend == "local" {
        let dir = plan.data_dir.join(list_bucket);
        tokio::task::spawn_blocking(move || std::fs::read_dir(dir).map(Iterator::count)).await??;
    }
    let mut firsts = Vec::new();
    for i in 0..6 {
        let t = client::first_page(addr, list_bucket, 1000).await?;
        let ms = t.as_secs_f64() * 1000.0;
        firsts.push(ms);
        if i == 0 {
            r.add(&format!("http.{backend}.list_page_uncached"), ms);
        } else {
            r.add(&format!("http.{backend}.list_page"), ms);
        }
    }
    let (_, walk, objects, pages) = client::walk_listing(addr, list_bucket, 1000).await?;
    let expected = if backend == "local" {
        plan.list_objects
    } else {
        plan.s3_list_objects
    };
    if objects != expected as u64 {
        return Err(format!("walk saw {objects} objects, expected {expected}").into());
    }
    r.add(&format!("http.{backend}.list_walk"), walk.as_secs_f64());
    say(format!(
        "http {backend}: first page {firsts:.1?} ms; walk {:.2} s ({pages} pages)",
        walk.as_secs_f64()
    ));

    // Big upload and download.
    client::create_bucket(addr, DATA_BUCKET).await?;
    let payload = Payload::new(plan.size, 3000);
    daemon.reset_peak()?;
    let mut conn = Conn::open(addr).await?;
    let perf = |phase: &str| {
        let out = plan.work_dir.join(format!("perf-{backend}-{phase}.data"));
        process::Perf::start(plan.perf, daemon.pid(), &out)
    };
    let recording = perf("upload");
    let cpu = daemon.cpu_seconds()?;
    let started = Instant::now();
    conn.upload(DATA_BUCKET, "http.bin", &payload).await?;
    let up = mb_per_s(plan.size, started.elapsed());
    let gib = plan.size as f64 / f64::from(1u32 << 30);
    r.add(
        &format!("http.{backend}.upload_cpu"),
        (daemon.cpu_seconds()? - cpu) / gib,
    );
    recording.stop();
    let (_, peak_up) = daemon.memory()?;
    r.add(&format!("http.{backend}.upload"), up);
    r.add(&format!("http.{backend}.peak_rss_upload"), peak_up);
    let cold = backend == "local";
    let mut downs = Vec::new();
    daemon.reset_peak()?;
    for pass in 0..if cold { 2 } else { 1 } {
        if cold && pass == 0 {
            tokio::task::spawn_blocking(limits::drop_caches).await?;
        }
        let recording = perf(if pass == 0 {
            "download"
        } else {
            "download-warm"
        });
        let cpu = daemon.cpu_seconds()?;
        let started = Instant::now();
        let n = conn.download(DATA_BUCKET, "http.bin").await?;
        let elapsed = started.elapsed();
        if pass == 0 {
            r.add(
                &format!("http.{backend}.download_cpu"),
                (daemon.cpu_seconds()? - cpu) / gib,
            );
        }
        recording.stop();
        if n != plan.size {
            return Err(format!("downloaded {n} of {} bytes", plan.size).into());
        }
        downs.push(mb_per_s(n, elapsed));
    }
    let (_, peak_down) = daemon.memory()?;
    r.add(&format!("http.{backend}.download"), downs[0]);
    if cold {
        r.add("http.local.download_warm", downs[1]);
    }
    r.add(&format!("http.{backend}.peak_rss_download"), peak_down);
    say(format!(
        "http {backend}: upload {up:.0} MB/s (peak RSS {peak_up:.1} MiB), download {downs:.0?} MB/s (peak RSS {peak_down:.1} MiB)"
    ));

    // Small GETs.
    let small = Payload::new(4096, 4000);
    conn.upload(DATA_BUCKET, SMALL_KEY, &small).await?;
    let path = client::download_path(DATA_BUCKET, SMALL_KEY);
    let recording = perf("small-get");
    let cpu = daemon.cpu_seconds()?;
    let load = client::get_load(addr, &path, plan.concurrency, plan.warmup, plan.load).await?;
    let cpu = daemon.cpu_seconds()? - cpu;
    recording.stop();
    // Warm-up requests are not counted: scale by the measured share of the time.
    let measured = plan.load.as_secs_f64() / (plan.load + plan.warmup).as_secs_f64();
    if load.requests > 0 {
        r.add(
            &format!("http.{backend}.small_get_cpu"),
            cpu * measured / load.requests as f64 * 1e6,
        );
    }
    r.add(&format!("http.{backend}.small_get"), load.requests_per_sec);
    r.add(&format!("http.{backend}.small_get_p50"), load.p50_ms);
    r.add(&format!("http.{backend}.small_get_p99"), load.p99_ms);
    r.add(
        &format!("http.{backend}.small_get_errors"),
        load.errors as f64,
    );
    let mut fresh = Conn::open(addr).await?;
    let started = Instant::now();
    let (status, _) = fresh.get_discard(&path).await?;
    let after = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(format!("GET after the load answered {status}").into());
    }
    r.add(&format!("http.{backend}.after_load_get"), after);
    say(format!(
        "http {backend}: 4 KiB GETs {:.0} req/s ({} requests), p50 {:.2} ms, p99 {:.2} ms, {} errors; next GET {after:.1} ms",
        load.requests_per_sec, load.requests, load.p50_ms, load.p99_ms, load.errors
    ));

    let (rss, _) = daemon.memory()?;
    r.add(&format!("http.{backend}.rss_after"), rss);
    drop(daemon);
    Ok(())
}

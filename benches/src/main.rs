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
//! * `plan`: the command line and the validated run settings.
//! * `metrics`: the metrics table (ids, labels, units, targets).
//! * `setup`: direct S3 clients, buckets and listing data, outside any measurement.
//! * `data`: non-repeating upload data made on the fly.
//! * `client`: a lean hyper client (multipart upload, download, load, listing).
//! * `process`: the daemon as a child process; start-up and RSS.
//! * groups: `limits` (disk, TCP and direct S3), `core_group` (in process),
//!   `http_group` (the daemon), `durability`, `transfer`, `s3proto`.
//! * `report`: medians, targets, the table and the JSON.

mod client;
mod core_group;
mod data;
mod durability;
mod http_group;
mod limits;
mod metrics;
mod plan;
mod process;
mod report;
mod s3proto;
mod setup;
mod transfer;

use std::time::{Duration, Instant};

use clap::Parser;

use http_group::daemon_env;
use plan::{Flags, Plan};
use report::Results;
use setup::{direct_store, ensure_s3_bucket, populate_local, populate_s3};

/// Error type of the harness.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// Bucket of the big transfers.
const DATA_BUCKET: &str = "s4-bench-data";
/// Key of the 4 KiB object.
const SMALL_KEY: &str = "small/4k.bin";

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

async fn run(flags: Flags) -> Result<()> {
    let mut plan = plan::plan(flags)?;
    std::fs::create_dir_all(&plan.data_dir)?;
    plan.cold = limits::drop_caches();
    if !plan.cold {
        eprintln!("note: cannot drop the page cache (not root?): 'cold' reads are warm");
    }
    let mut results = Results::default();
    metrics::declare(&mut results, &plan);
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
            limits::measure(&plan, &mut results, rep).await?;
        }
        if plan.core {
            if plan.local {
                core_group::measure_local(&plan, &mut results).await?;
            }
            if let Some(config) = &plan.s3 {
                core_group::measure_s3(&plan, config, &mut results).await?;
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
                http_group::measure(&plan, &mut results, "local", &list_bucket).await?;
            }
            if plan.s3.is_some() {
                http_group::measure(&plan, &mut results, "s3", &s3_list_bucket).await?;
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

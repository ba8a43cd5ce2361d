//! The `http` group: the `s4` daemon as a child process, measured over HTTP.

use std::time::{Duration, Instant};

use crate::client::{self, Conn};
use crate::data::Payload;
use crate::process::{self, Daemon};
use crate::report::Results;
use crate::setup::{populate_folder, DELETE_FOLDER};
use crate::{limits, mb_per_s, say, Plan, Result, DATA_BUCKET, SMALL_KEY};

/// Daemon settings the harness passes through from its own environment (the daemon
/// otherwise starts with a clean one), so a run can be split by, e.g., `S4_FSYNC`.
const PASS_THROUGH: [&str; 6] = [
    "S4_FSYNC",
    "MALLOC_ARENA_MAX",
    "S4_S3_TIMEOUT",
    "S4_S3_CONNECT_TIMEOUT",
    "S4_S3_RETRIES",
    "LOG_LEVEL",
];

pub(crate) fn daemon_env(plan: &Plan, backend: &str) -> Vec<(String, String)> {
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

/// Runs the daemon on `backend` and measures it over HTTP.
pub(crate) async fn measure(
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

    if backend == "local" {
        measure_folder_delete(plan, r, addr, list_bucket).await?;
    }

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

/// Bucket that holds only the deleted folder (the reference of the folder delete).
const DELETE_ALONE_BUCKET: &str = "s4-bench-delete-alone";

/// Deletes a folder of `plan.folder_keys()` objects once inside the big listing
/// bucket and once in a bucket holding only that folder: the delete walks the
/// folder, not the bucket, so the two should take about as long.
async fn measure_folder_delete(
    plan: &Plan,
    r: &mut Results,
    addr: std::net::SocketAddr,
    list_bucket: &str,
) -> Result<()> {
    client::create_bucket(addr, DELETE_ALONE_BUCKET).await?;
    let keys = plan.folder_keys();
    let mut conn = Conn::open(addr).await?;
    for (metric, bucket) in [
        ("http.local.folder_delete", list_bucket),
        ("http.local.folder_delete_alone", DELETE_ALONE_BUCKET),
    ] {
        let dir = plan.data_dir.join(bucket);
        tokio::task::spawn_blocking(move || populate_folder(&dir, keys)).await??;
        let path = format!("/api/objects/{bucket}/{}", client::b64(DELETE_FOLDER));
        let started = Instant::now();
        let (status, body) = conn.json(http::Method::DELETE, &path, None).await?;
        let elapsed = started.elapsed();
        if !status.is_success() || body["count"].as_u64() != Some(keys as u64) {
            return Err(format!("folder delete in {bucket} answered {status} {body}").into());
        }
        r.add(metric, elapsed.as_secs_f64() * 1000.0);
        say(format!(
            "http local: deleted a {keys}-key folder in {bucket} in {:.0} ms",
            elapsed.as_secs_f64() * 1000.0
        ));
    }
    Ok(())
}

//! The `transfer` group (`--only transfer`): transfer jobs through the daemon's API.
//!
//! * **rss4**: four concurrent transfers of `size` bytes each (local directory →
//!   bucket, `MAX_CONCURRENT_TRANSFERS=4`), the daemon's peak RSS and the
//!   aggregate rate, on the local backend and (with an S3 engine) on the engine;
//! * with an S3 engine: local directory → engine, 1000 files of 64 KiB and one file
//!   of `size`, beside the same files PUT directly with `object_store` (the engine's
//!   limit, same concurrency: 2 files, 4 parts in flight per file);
//! * with an S3 engine: server-side copies of a `size` object into another bucket
//!   and inside one, beside the same bytes streamed directly by the harness.
//!
//! Jobs are followed by polling `GET /api/transfer/:jobId` every 50 ms (the SSE
//! route would add nothing to a throughput figure).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::Method;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde_json::{json, Value};

use crate::client::{self, Conn};
use crate::data::Payload;
use crate::process::Daemon;
use crate::report::{Better, Results, Target};
use crate::{daemon_env, direct_store, mb_per_s, say, Plan, Result};

const SMALL_FILES: usize = 1000;
const SMALL_SIZE: u64 = 64 << 10;
const XFER_BUCKET: &str = "s4-bench-xfer";
const XFER_BUCKET_2: &str = "s4-bench-xfer-2";

/// Declares the group's metrics.
pub fn declare(r: &mut Results, plan: &Plan) {
    let size = format!("{} MiB", plan.size >> 20);
    for backend in rss4_backends(plan) {
        r.declare(
            &format!("xfer.{backend}.rss4"),
            &format!("transfer: 4 × {size} local dir → bucket ({backend}), peak RSS"),
            "MiB",
            Better::Lower,
            Some(Target::AtMost(64.0)),
        );
        r.declare(
            &format!("xfer.{backend}.rate4"),
            &format!("transfer: 4 × {size} local dir → bucket ({backend}), aggregate"),
            "MB/s",
            Better::Higher,
            None,
        );
    }
    if plan.s3.is_some() {
        r.declare(
            "xfer.s3.direct_small",
            "limit: direct PUT 1000 × 64 KiB (2 at a time)",
            "files/s",
            Better::Higher,
            None,
        );
        r.declare(
            "xfer.s3.small",
            "transfer: 1000 × 64 KiB local dir → S3",
            "files/s",
            Better::Higher,
            Some(Target::RatioOf {
                reference: "xfer.s3.direct_small".into(),
                factor: 0.8,
            }),
        );
        r.declare(
            "xfer.s3.direct_big",
            &format!("limit: direct PUT {size} (5 MiB parts, 4 in flight)"),
            "MB/s",
            Better::Higher,
            None,
        );
        r.declare(
            "xfer.s3.big",
            &format!("transfer: {size} local dir → S3"),
            "MB/s",
            Better::Higher,
            Some(Target::RatioOf {
                reference: "xfer.s3.direct_big".into(),
                factor: 0.8,
            }),
        );
        r.declare(
            "xfer.s3.copy_direct_streamed",
            &format!(
                "limit: {size} S3 → other bucket streamed directly (GET piped into a multipart PUT, 5 MiB parts, 4 in flight)"
            ),
            "s",
            Better::Lower,
            None,
        );
        r.declare(
            "xfer.s3.copy_server_side_other",
            &format!("transfer: {size} S3 → other bucket (server-side copy)"),
            "s",
            Better::Lower,
            Some(Target::Compare("xfer.s3.copy_direct_streamed".into())),
        );
        r.declare(
            "xfer.s3.copy_server_side",
            &format!("transfer: {size} S3 → same bucket (server-side copy)"),
            "s",
            Better::Lower,
            Some(Target::Compare("xfer.s3.copy_direct_streamed".into())),
        );
    }
}

/// Writes the source files once (outside any measurement).
pub fn prepare(plan: &Plan) -> Result<()> {
    let root = plan.work_dir.join("xfer-src");
    let write = |path: &Path, payload: &Payload| -> Result<()> {
        use std::io::Write;
        if path.metadata().is_ok_and(|m| m.len() == payload.size) {
            return Ok(());
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for chunk in payload.iter() {
            file.write_all(&chunk)?;
        }
        file.flush()?;
        Ok(())
    };
    std::fs::create_dir_all(root.join("big"))?;
    for i in 0..4 {
        write(
            &root.join("big").join(format!("f{i}.bin")),
            &Payload::new(plan.size, 7000 + i),
        )?;
    }
    if plan.s3.is_some() {
        std::fs::create_dir_all(root.join("small"))?;
        let payload = Payload::new(SMALL_SIZE, 8000);
        for i in 0..SMALL_FILES {
            write(&root.join("small").join(format!("s{i:04}.bin")), &payload)?;
        }
    }
    Ok(())
}

fn env(plan: &Plan, backend: &str, concurrent: usize) -> Vec<(String, String)> {
    let mut env = daemon_env(plan, backend);
    env.push((
        "LOCAL_STORAGE_PATHS".into(),
        plan.work_dir.join("xfer-src").display().to_string(),
    ));
    env.push(("MAX_CONCURRENT_TRANSFERS".into(), concurrent.to_string()));
    env
}

fn request(source: Value, destination: Value, items: Value) -> Value {
    json!({
        "source": source,
        "destination": destination,
        "items": items,
        "conflictResolution": "overwrite",
    })
}

async fn create(conn: &mut Conn, body: Value) -> Result<String> {
    let (status, answer) = conn.json(Method::POST, "/api/transfer", Some(body)).await?;
    if !status.is_success() {
        return Err(format!("create transfer: {status} {answer}").into());
    }
    answer["jobId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no jobId in {answer}").into())
}

/// Polls until every job is terminal; errors if one did not complete.
async fn wait(conn: &mut Conn, jobs: &[String], daemon: Option<&Daemon>) -> Result<f64> {
    let mut peak: f64 = 0.0;
    loop {
        let mut done = 0;
        for job in jobs {
            let (_, details) = conn
                .json(Method::GET, &format!("/api/transfer/{job}"), None)
                .await?;
            match details["status"].as_str() {
                Some("completed") => done += 1,
                Some("failed" | "cancelled") => {
                    return Err(format!("job {job} ended {}", details).into())
                }
                _ => {}
            }
        }
        if let Some(d) = daemon {
            peak = peak.max(d.memory()?.1);
        }
        if done == jobs.len() {
            return Ok(peak);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The backends of the rss4 measurement: local, and the S3 engine when there is one.
fn rss4_backends(plan: &Plan) -> Vec<&'static str> {
    let mut backends = vec!["local"];
    if plan.s3.is_some() {
        backends.push("s3");
    }
    backends
}

/// One repeat of the group.
pub async fn measure(plan: &Plan, r: &mut Results) -> Result<()> {
    for backend in rss4_backends(plan) {
        rss4(plan, r, backend).await?;
    }
    let Some(config) = &plan.s3 else {
        return Ok(());
    };
    engine(plan, config, r).await
}

/// Four concurrent big transfers from the local directory into a bucket of
/// `backend`: the daemon's peak RSS and the aggregate rate.
async fn rss4(plan: &Plan, r: &mut Results, backend: &str) -> Result<()> {
    let log = plan.work_dir.join(format!("s4-xfer-{backend}.log"));
    let daemon = Daemon::start(&plan.s4_bin, &env(plan, backend, 4), &log).await?;
    match &plan.s3 {
        Some(config) if backend == "s3" => crate::ensure_s3_bucket(config, XFER_BUCKET).await?,
        _ => client::create_bucket(daemon.addr, XFER_BUCKET).await?,
    }
    let mut conn = Conn::open(daemon.addr).await?;
    daemon.reset_peak()?;
    let started = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..4 {
        jobs.push(
            create(
                &mut conn,
                request(
                    json!({"type": "local", "locationId": "local-0", "path": "big"}),
                    json!({"type": "s3", "locationId": XFER_BUCKET, "path": format!("rss/{i}")}),
                    json!([{"path": format!("f{i}.bin"), "type": "file"}]),
                ),
            )
            .await?,
        );
    }
    let peak = wait(&mut conn, &jobs, Some(&daemon)).await?;
    let elapsed = started.elapsed();
    let peak = peak.max(daemon.memory()?.1);
    r.add(&format!("xfer.{backend}.rss4"), peak);
    r.add(
        &format!("xfer.{backend}.rate4"),
        mb_per_s(4 * plan.size, elapsed),
    );
    say(format!(
        "transfer {backend}: 4 × {} MiB in {:.2} s, peak RSS {peak:.1} MiB",
        plan.size >> 20,
        elapsed.as_secs_f64()
    ));
    Ok(())
}

/// With an S3 engine: small files, one big file and copies, beside the engine's
/// own figures.
async fn engine(plan: &Plan, config: &s4_core::storage::S3Config, r: &mut Results) -> Result<()> {
    let root = plan.work_dir.join("xfer-src");

    // Direct: the same small files, two at a time.
    let direct = direct_store(config, XFER_BUCKET)?;
    crate::ensure_s3_bucket(config, XFER_BUCKET).await?;
    crate::ensure_s3_bucket(config, XFER_BUCKET_2).await?;
    let started = Instant::now();
    let small = root.join("small");
    futures::stream::iter(0..SMALL_FILES)
        .map(|i| {
            let direct = Arc::clone(&direct);
            let path = small.join(format!("s{i:04}.bin"));
            async move {
                let data = tokio::fs::read(&path).await?;
                direct
                    .put(
                        &object_store::path::Path::from(format!("direct/s{i:04}.bin")),
                        PutPayload::from(data),
                    )
                    .await?;
                Ok::<_, crate::Error>(())
            }
        })
        .buffer_unordered(2)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    r.add(
        "xfer.s3.direct_small",
        SMALL_FILES as f64 / started.elapsed().as_secs_f64(),
    );

    // Direct: one big file, 5 MiB parts, 4 in flight (what a put in S4 does).
    let started = Instant::now();
    let upload = direct
        .put_multipart(&object_store::path::Path::from("direct/big.bin"))
        .await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, s4_core::PART_SIZE);
    let mut file = tokio::fs::File::open(root.join("big").join("f0.bin")).await?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        use tokio::io::AsyncReadExt;
        writer.wait_for_capacity(s4_core::PARTS_IN_FLIGHT).await?;
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        writer.write(&buffer[..n]);
    }
    writer.finish().await?;
    r.add("xfer.s3.direct_big", mb_per_s(plan.size, started.elapsed()));

    // Through S4.
    let log = plan.work_dir.join("s4-xfer-s3.log");
    let daemon = Daemon::start(&plan.s4_bin, &env(plan, "s3", 2), &log).await?;
    let mut conn = Conn::open(daemon.addr).await?;
    let local = |path: &str| json!({"type": "local", "locationId": "local-0", "path": path});
    let s3 = |bucket: &str, path: &str| json!({"type": "s3", "locationId": bucket, "path": path});
    let started = Instant::now();
    let job = create(
        &mut conn,
        request(
            local(""),
            s3(XFER_BUCKET, "s4"),
            json!([{"path": "small", "type": "directory"}]),
        ),
    )
    .await?;
    wait(&mut conn, &[job], None).await?;
    r.add(
        "xfer.s3.small",
        SMALL_FILES as f64 / started.elapsed().as_secs_f64(),
    );
    let started = Instant::now();
    let job = create(
        &mut conn,
        request(
            local("big"),
            s3(XFER_BUCKET, "s4/big"),
            json!([{"path": "f0.bin", "type": "file"}]),
        ),
    )
    .await?;
    wait(&mut conn, &[job], None).await?;
    r.add("xfer.s3.big", mb_per_s(plan.size, started.elapsed()));

    // Copies of the big object: S4's (server-side on one engine, into another
    // bucket and inside one) beside the same bytes streamed by the harness.
    let item = json!([{"path": "f0.bin", "type": "file"}]);
    let (streamed, n) = crate::limits::s3_copy_streamed(
        &direct,
        "s4/big/f0.bin",
        &direct_store(config, XFER_BUCKET_2)?,
        "direct-copy.bin",
        5 << 20,
        4,
    )
    .await?;
    if n != plan.size {
        return Err(format!("streamed copy moved {n} of {} bytes", plan.size).into());
    }
    r.add("xfer.s3.copy_direct_streamed", streamed.as_secs_f64());
    let started = Instant::now();
    let job = create(
        &mut conn,
        request(
            s3(XFER_BUCKET, "s4/big"),
            s3(XFER_BUCKET_2, "copy"),
            item.clone(),
        ),
    )
    .await?;
    wait(&mut conn, &[job], None).await?;
    r.add(
        "xfer.s3.copy_server_side_other",
        started.elapsed().as_secs_f64(),
    );
    let started = Instant::now();
    let job = create(
        &mut conn,
        request(s3(XFER_BUCKET, "s4/big"), s3(XFER_BUCKET, "copy"), item),
    )
    .await?;
    wait(&mut conn, &[job], None).await?;
    r.add("xfer.s3.copy_server_side", started.elapsed().as_secs_f64());
    say("transfer s3: small files, big file and copies done");
    Ok(())
}

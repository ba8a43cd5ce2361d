//! The machine's limits: sequential disk write (with `fdatasync`) and read (cold
//! and warm) on the data directory's file system, loopback TCP, and direct PUT /
//! GET / small GETs / listing against the S3 engine through `object_store`; and
//! [`measure`], the `limits` group built from them.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::data::Payload;
use crate::report::Results;
use crate::setup::{direct_store, direct_store_with};
use crate::{mb_per_s, say, Error, Plan, Result, DATA_BUCKET, SMALL_KEY};

/// Buffer of the raw disk and TCP loops.
const IO_BUF: usize = 1 << 20;

/// Flushes dirty pages and drops the page cache, then lets the disk settle for a
/// second (a virtual disk keeps writing back behind `sync` returning, and would
/// slow the first reads). `false` when the cache cannot be dropped.
pub fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    std::thread::sleep(std::time::Duration::from_secs(1));
    dropped
}

/// Writes `payload` to `path` and `fdatasync`s it; returns the elapsed time.
pub fn disk_write(path: &Path, payload: &Payload) -> Result<Duration> {
    let _ = std::fs::remove_file(path);
    let started = Instant::now();
    let mut file = std::fs::File::create(path)?;
    for chunk in payload.iter() {
        file.write_all(&chunk)?;
    }
    file.sync_data()?;
    Ok(started.elapsed())
}

/// Reads `path` to the end with a 1 MiB buffer; returns (elapsed, bytes).
pub fn disk_read(path: &Path) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; IO_BUF];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok((started.elapsed(), total))
}

/// Sends `size` bytes over one loopback TCP connection; returns the elapsed time
/// until the receiver has them all.
pub async fn tcp_loopback(size: u64) -> Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; IO_BUF];
        let mut total = 0u64;
        while total < size {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<_, std::io::Error>(total)
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let buf = vec![7u8; IO_BUF];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(IO_BUF as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    let received = receiver.await??;
    let elapsed = started.elapsed();
    if received != size {
        return Err(format!("loopback received {received} of {size} bytes").into());
    }
    Ok(elapsed)
}

/// A direct PUT of `payload` as a multipart upload with `part` bytes per part and
/// `in_flight` parts in flight.
pub async fn s3_put(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    payload: &Payload,
    part: usize,
    in_flight: usize,
) -> Result<Duration> {
    let path = ObjectPath::from(key);
    let started = Instant::now();
    let upload = store.put_multipart(&path).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
    for chunk in payload.iter() {
        writer.wait_for_capacity(in_flight).await?;
        writer.put(chunk);
    }
    writer.finish().await?;
    Ok(started.elapsed())
}

/// A direct streamed copy: a GET of `from` piped into a multipart PUT of `to`
/// (`part`-byte parts, `in_flight` at a time); returns (elapsed, bytes).
pub async fn s3_copy_streamed(
    from: &Arc<dyn ObjectStore>,
    from_key: &str,
    to: &Arc<dyn ObjectStore>,
    to_key: &str,
    part: usize,
    in_flight: usize,
) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut stream = from.get(&ObjectPath::from(from_key)).await?.into_stream();
    let upload = to.put_multipart(&ObjectPath::from(to_key)).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        writer.wait_for_capacity(in_flight).await?;
        writer.write(&chunk);
    }
    writer.finish().await?;
    Ok((started.elapsed(), total))
}

/// A direct streaming GET; returns (elapsed, bytes).
pub async fn s3_get(store: &Arc<dyn ObjectStore>, key: &str) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut stream = store.get(&ObjectPath::from(key)).await?.into_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        total += chunk?.len() as u64;
    }
    Ok((started.elapsed(), total))
}

/// Direct small GETs: `concurrency` tasks sharing the store's connection pool.
pub async fn s3_get_load(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<crate::client::LoadResult> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let store = Arc::clone(store);
        let path = ObjectPath::from(key);
        tasks.spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < end {
                let sent = Instant::now();
                let ok = match store.get(&path).await {
                    Ok(result) => result.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let done = Instant::now();
                if sent >= start && done <= end {
                    if ok {
                        latencies.push(done.duration_since(sent).as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    Ok(crate::client::LoadResult {
        requests_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50_ms: crate::report::quantile(&all, 0.5) / 1000.0,
        p99_ms: crate::report::quantile(&all, 0.99) / 1000.0,
        errors,
        requests: all.len() as u64,
    })
}

/// Time until the first page of a direct (ListObjectsV2, 1000 keys) listing arrived.
pub async fn s3_first_page(store: &Arc<dyn ObjectStore>) -> Result<Duration> {
    let started = Instant::now();
    let mut list = store.list(None);
    match list.next().await {
        Some(item) => {
            item?;
            Ok(started.elapsed())
        }
        None => Err("empty listing".into()),
    }
}

/// The `limits` group: disk, loopback TCP and the S3 engine measured directly.
pub async fn measure(plan: &Plan, r: &mut Results, rep: usize) -> Result<()> {
    if plan.local {
        let file = plan.work_dir.join("limit.bin");
        let payload = Payload::new(plan.size, rep as u64);
        let f = file.clone();
        let write = tokio::task::spawn_blocking(move || disk_write(&f, &payload)).await??;
        r.add("limit.disk.write", mb_per_s(plan.size, write));
        let f = file.clone();
        let cold = plan.cold;
        let (read_cold, read_warm) = tokio::task::spawn_blocking(move || {
            if cold {
                drop_caches();
            }
            let (c, n1) = disk_read(&f)?;
            let (w, n2) = disk_read(&f)?;
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
    let tcp = tcp_loopback(plan.size).await?;
    r.add("limit.tcp", mb_per_s(plan.size, tcp));
    say(format!("tcp: {:.0} MB/s", mb_per_s(plan.size, tcp)));
    if let Some(config) = &plan.s3 {
        let store = direct_store(config, DATA_BUCKET)?;
        let payload = Payload::new(plan.size, 1000 + rep as u64);
        let put = s3_put(
            &store,
            "direct.bin",
            &payload,
            plan.direct_part,
            plan.direct_in_flight,
        )
        .await?;
        r.add("limit.s3.put", mb_per_s(plan.size, put));
        let (get, n) = s3_get(&store, "direct.bin").await?;
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
        let load = s3_get_load(&store, SMALL_KEY, plan.concurrency, plan.warmup, plan.load).await?;
        r.add("limit.s3.small_get", load.requests_per_sec);
        r.add("limit.s3.small_get_p99", load.p99_ms);
        say(format!(
            "s3 direct 4 KiB GETs: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
            load.requests_per_sec, load.p50_ms, load.p99_ms, load.errors
        ));
        let quick = direct_store_with(config, DATA_BUCKET, true)?;
        let load = s3_get_load(&quick, SMALL_KEY, plan.concurrency, plan.warmup, plan.load).await?;
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
                let t = s3_first_page(&list_store).await?;
                r.add("limit.s3.list_page", t.as_secs_f64() * 1000.0);
            }
        }
    }
    Ok(())
}

//! The machine's limits: sequential disk write (with `fdatasync`) and read (cold
//! and warm) on the data directory's file system, loopback TCP, and direct PUT /
//! GET / small GETs / listing against the S3 engine through `object_store`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::data::Payload;
use crate::Result;

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

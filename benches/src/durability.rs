//! The cost of durable writes (`S4_FSYNC`): local-location uploads through
//! `s4-core` with fsync of the file and its directory entry (the default) and
//! without, one big file and many small ones.

use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use s4_core::location::{Locations, LocationsConfig, WriteOptions};

use crate::data::Payload;
use crate::report::{Better, Results};
use crate::{mb_per_s, say, Result};

/// Small files per sample, and their size.
const SMALL_FILES: usize = 200;
const SMALL_SIZE: u64 = 64 << 10;

/// Declares the metrics.
pub fn declare(r: &mut Results, size: u64) {
    let size = format!("{} MiB", size >> 20);
    for (fsync, tag) in [(true, "fsync"), (false, "nofsync")] {
        let how = if fsync {
            "S4_FSYNC=true (default)"
        } else {
            "S4_FSYNC=false"
        };
        r.declare(
            &format!("durability.local_upload_{tag}"),
            &format!("local location upload {size}, {how}"),
            "MB/s",
            Better::Higher,
            None,
        );
        r.declare(
            &format!("durability.small_files_{tag}"),
            &format!("local location uploads of {SMALL_FILES} × 64 KiB, {how}"),
            "files/s",
            Better::Higher,
            None,
        );
    }
}

async fn location(dir: &Path, fsync: bool, size: u64) -> Result<Locations> {
    let dir = dir.to_path_buf();
    let root = dir.clone();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)
    })
    .await??;
    let config = LocationsConfig::default()
        .with_paths([dir])
        .with_max_file_size(size.max(SMALL_SIZE))
        .with_fsync(fsync);
    Ok(Locations::new(config).await)
}

async fn upload(locations: &Locations, path: &str, payload: &Payload) -> Result<()> {
    let body = futures::stream::iter(payload.iter()).map(Ok::<_, s4_core::Error>);
    locations
        .write_file("local-0", path, body, WriteOptions::default())
        .await?;
    Ok(())
}

/// One sample of every metric.
pub async fn measure(work_dir: &Path, size: u64, r: &mut Results) -> Result<()> {
    let dir = work_dir.join("durability");
    let big = Payload::new(size, 5000);
    let small = Payload::new(SMALL_SIZE, 5001);
    for (fsync, tag) in [(true, "fsync"), (false, "nofsync")] {
        let locations = location(&dir, fsync, size).await?;
        let started = Instant::now();
        upload(&locations, "big.bin", &big).await?;
        let up = mb_per_s(size, started.elapsed());
        r.add(&format!("durability.local_upload_{tag}"), up);
        let started = Instant::now();
        for i in 0..SMALL_FILES {
            upload(&locations, &format!("small/{i}.bin"), &small).await?;
        }
        let files = SMALL_FILES as f64 / started.elapsed().as_secs_f64();
        r.add(&format!("durability.small_files_{tag}"), files);
        say(format!(
            "durability {tag}: upload {up:.0} MB/s, {files:.0} small files/s"
        ));
    }
    let root = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(root)).await??;
    Ok(())
}

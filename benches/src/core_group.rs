//! The `core` group: the big upload and download through `s4-core` in process.

use std::time::Instant;

use futures::StreamExt;
use s4_core::storage::{LocalBackend, S3Backend, S3Config};
use s4_core::{BucketName, ObjectKey, S4};

use crate::data::Payload;
use crate::report::Results;
use crate::{limits, mb_per_s, say, Plan, Result, DATA_BUCKET};

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

pub(crate) async fn measure_local(plan: &Plan, r: &mut Results) -> Result<()> {
    let backend = LocalBackend::open(&plan.data_dir).await?;
    let s4 = S4::builder().backend(backend).build();
    core_roundtrip(plan, &s4, r, "local", true).await
}

pub(crate) async fn measure_s3(plan: &Plan, config: &S3Config, r: &mut Results) -> Result<()> {
    let backend = S3Backend::new(config.clone())?;
    let s4 = S4::builder().backend(backend).build();
    core_roundtrip(plan, &s4, r, "s3", false).await
}

//! Set-up outside any measurement: direct S3 clients, buckets, listing data.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use s4_core::storage::{S3Backend, S3Config};
use s4_core::{BucketName, ErrorKind, S4};

use crate::{say, Result, DATA_BUCKET};

/// The direct `object_store` client of the S3 engine for `bucket`.
pub(crate) fn direct_store(config: &S3Config, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    direct_store_with(config, bucket, false)
}

/// [`direct_store`], optionally over S4's quick-ACK connector.
pub(crate) fn direct_store_with(
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

pub(crate) async fn ensure_s3_bucket(config: &S3Config, bucket: &str) -> Result<()> {
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
pub(crate) fn populate_local(bucket_dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(bucket_dir)?;
    let mut present = 0;
    let mut others = false;
    for entry in std::fs::read_dir(bucket_dir)? {
        if entry?.file_type()?.is_file() {
            present += 1;
        } else {
            others = true;
        }
    }
    if present == count && !others {
        return Ok(());
    }
    say(format!(
        "populating {} with {count} files",
        bucket_dir.display()
    ));
    for entry in std::fs::read_dir(bucket_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    for i in 0..count {
        std::fs::write(bucket_dir.join(list_key(i)), format!("object {i}\n"))?;
    }
    Ok(())
}

/// Fills the S3 listing bucket with `count` small objects (64 PUTs in flight),
/// unless a marker in the data bucket says it was done.
pub(crate) async fn populate_s3(config: &S3Config, bucket: &str, count: usize) -> Result<()> {
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

/// Name of the folder the folder-delete measurement writes and deletes.
pub(crate) const DELETE_FOLDER: &str = "zz-delete";

/// Writes `count` small files into `bucket_dir/DELETE_FOLDER` (keys sorting after
/// the listing bucket's own), straight into the data directory.
pub(crate) fn populate_folder(bucket_dir: &Path, count: usize) -> Result<()> {
    let dir = bucket_dir.join(DELETE_FOLDER);
    std::fs::create_dir_all(&dir)?;
    for i in 0..count {
        std::fs::write(dir.join(list_key(i)), format!("object {i}\n"))?;
    }
    Ok(())
}

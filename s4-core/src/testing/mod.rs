//! The backend-agnostic conformance suite.
//!
//! Every function here is one behaviour, written once against the [`S4`] API and
//! run by `tests/conformance.rs` on every backend: local file system, memory, and a
//! real S3-compatible engine. Each creates its own uniquely named bucket and
//! removes it afterwards, so the suite can share one S3 endpoint with other runs.
//!
//! Enabled by the `testing` feature (and in this crate's own tests).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{
    BucketName, ByteRange, ChangeKind, Error, ErrorKind, GetObjectOptions, ListOptions, ObjectKey,
    Prefix, PutObjectOptions, Result, SearchMode, SearchOptions, S4,
};

mod hostile;
mod metadata;
mod objects;
#[cfg(feature = "s3")]
pub mod server_copy;
pub mod transfer;

pub use hostile::{hostile_keys, hostile_names, hostile_prefixes};
pub use metadata::{multipart_etag, object_metadata, object_tags};
pub use objects::*;
pub use transfer::{transfer_cancel_cleanup, transfer_conflicts, transfer_pairs};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The S3 endpoint of the test environment (`S4_TEST_S3_ENDPOINT`,
/// `S4_TEST_S3_ACCESS_KEY_ID`, `S4_TEST_S3_SECRET_ACCESS_KEY`, `S4_TEST_S3_REGION`),
/// or `None` after printing why the S3 variant is skipped.
///
/// The S3 variants are normally marked ignored at build time when no endpoint is
/// set (`cfg(s4_test_s3)`, see the crates' `build.rs`); this runtime check covers a
/// test binary built with the endpoint but run without it.
///
/// # Panics
/// When `S4_REQUIRE_S3=1` and no endpoint is configured (CI must not skip).
pub fn s3_test_config() -> Option<crate::storage::S3Config> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match var("S4_TEST_S3_ENDPOINT") {
        Some(endpoint) => Some(crate::storage::S3Config {
            endpoint,
            access_key_id: var("S4_TEST_S3_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: var("S4_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_default(),
            region: var("S4_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        }),
        None => {
            assert!(
                var("S4_REQUIRE_S3").as_deref() != Some("1"),
                "S4_REQUIRE_S3=1 but S4_TEST_S3_ENDPOINT is not set"
            );
            eprintln!(
                "SKIPPED: S3 variant: S4_TEST_S3_ENDPOINT is not set (see README: running the S3 tests)"
            );
            None
        }
    }
}

/// A bucket name unique to this process and call.
pub fn unique_bucket(tag: &str) -> BucketName {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("s4t-{tag}-{}-{n}-{:x}", std::process::id(), nanos);
    let name: String = name.chars().take(63).collect();
    BucketName::parse(name.trim_end_matches('-'))
        .unwrap_or_else(|e| panic!("test bucket name {name:?}: {}", e.message()))
}

/// Creates a fresh bucket for a test.
///
/// # Panics
/// When the backend refuses.
pub async fn fresh_bucket(s4: &S4, tag: &str) -> BucketName {
    let bucket = unique_bucket(tag);
    s4.create_bucket(&bucket)
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
    bucket
}

/// Deletes every object of `bucket` and the bucket itself.
///
/// # Panics
/// When the backend refuses.
pub async fn remove_bucket(s4: &S4, bucket: &BucketName) {
    let keys = all_keys(s4, bucket, "").await;
    for key in keys {
        s4.delete_object(bucket, &self::key(&key))
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }
    s4.delete_bucket(bucket)
        .await
        .unwrap_or_else(|e| panic!("delete bucket {bucket}: {e:?}"));
}

fn pfx(text: &str) -> Prefix {
    Prefix::parse(text).unwrap_or_else(|e| panic!("valid test prefix {text:?}: {e:?}"))
}

fn key(text: &str) -> ObjectKey {
    ObjectKey::parse(text).unwrap_or_else(|e| panic!("valid test key {text:?}: {e:?}"))
}

/// A body of `bytes` in chunks of `chunk` bytes.
pub fn chunked(bytes: Bytes, chunk: usize) -> impl Stream<Item = Result<Bytes>> + Send {
    let chunks: Vec<Result<Bytes>> = (0..bytes.len())
        .step_by(chunk.max(1))
        .map(|i| Ok(bytes.slice(i..(i + chunk).min(bytes.len()))))
        .collect();
    futures::stream::iter(chunks)
}

/// Deterministic pseudo-random test data.
pub fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn put(s4: &S4, bucket: &BucketName, k: &str, data: Bytes) {
    s4.put_object(
        bucket,
        &key(k),
        chunked(data, 64 << 10),
        PutObjectOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("put {k}: {e:?}"));
}

async fn get_all(
    s4: &S4,
    bucket: &BucketName,
    k: &str,
    options: GetObjectOptions,
) -> Result<Vec<u8>> {
    let mut object = s4.get_object(bucket, &key(k), options).await?;
    let mut out = Vec::new();
    while let Some(chunk) = object.body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Every key under `prefix`, walking recursive pages of 3.
pub async fn all_keys(s4: &S4, bucket: &BucketName, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s4
            .list_objects(
                bucket,
                &ListOptions::default()
                    .with_prefix(pfx(prefix))
                    .with_delimited(false)
                    .with_max_keys(1000)
                    .with_continuation_token(token.take()),
            )
            .await
            .unwrap_or_else(|e| panic!("list {bucket}: {e:?}"));
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_token {
            Some(t) => token = Some(t),
            None => return keys,
        }
    }
}

fn assert_kind(result: Result<impl std::fmt::Debug>, kind: ErrorKind, what: &str) -> Error {
    match result {
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{what}: {e:?}");
            e
        }
    }
}

/// Keys that exercise encoding: spaces, `+`, `%`, `#`, `?`, Unicode, emoji, nesting.
pub const TRICKY_KEYS: &[&str] = &[
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "hash#tag.txt",
    "question?.txt",
    "ünïcödé/naïve.txt",
    "emoji/🚀/launch 😀.bin",
    "deep/a/b/c/d/e.txt",
];

/// Runs the whole suite against `s4`.
pub async fn run_all(s4: &S4) {
    bucket_crud(s4).await;
    object_roundtrip(s4).await;
    large_object_streams(s4).await;
    ranges(s4).await;
    conditional_get(s4).await;
    pagination_exactly_once(s4).await;
    folder_delete(s4).await;
    failed_puts_leave_nothing(s4).await;
    dropped_put_leaves_nothing(s4).await;
    search(s4).await;
    change_events(s4).await;
    object_metadata(s4).await;
    multipart_etag(s4).await;
    object_tags(s4).await;
}

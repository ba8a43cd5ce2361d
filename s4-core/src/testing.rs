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

pub mod transfer;
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

/// Bucket create, duplicate, list, non-empty delete, delete, missing delete.
pub async fn bucket_crud(s4: &S4) {
    let bucket = fresh_bucket(s4, "crud").await;
    let dup = assert_kind(
        s4.create_bucket(&bucket).await,
        ErrorKind::AlreadyExists,
        "duplicate create",
    );
    assert!(
        matches!(
            dup.code(),
            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
        ),
        "{dup:?}"
    );
    let listing = s4.list_buckets().await.expect("list buckets");
    assert!(listing.buckets.iter().any(|b| b.name == bucket.as_str()));
    put(s4, &bucket, "x", Bytes::from_static(b"x")).await;
    let e = assert_kind(
        s4.delete_bucket(&bucket).await,
        ErrorKind::Conflict,
        "non-empty delete",
    );
    assert_eq!(e.code(), Some("BucketNotEmpty"));
    s4.delete_object(&bucket, &key("x"))
        .await
        .expect("delete x");
    s4.delete_bucket(&bucket)
        .await
        .expect("delete empty bucket");
    let listing = s4.list_buckets().await.expect("list buckets");
    assert!(!listing.buckets.iter().any(|b| b.name == bucket.as_str()));
    let e = assert_kind(
        s4.delete_bucket(&bucket).await,
        ErrorKind::NotFound,
        "missing delete",
    );
    assert_eq!(e.code(), Some("NoSuchBucket"));
    let e = assert_kind(
        s4.head_object(&bucket, &key("x")).await,
        ErrorKind::NotFound,
        "object of missing bucket",
    );
    assert!(
        matches!(e.code(), Some("NoSuchBucket" | "NotFound" | "NoSuchKey")),
        "{e:?}"
    );
}

/// Put, head, get and list for every key of [`TRICKY_KEYS`]; overwrite; missing key.
pub async fn object_roundtrip(s4: &S4) {
    let bucket = fresh_bucket(s4, "rt").await;
    for (i, k) in TRICKY_KEYS.iter().enumerate() {
        let data = pattern(1000 + i, i as u8);
        put(s4, &bucket, k, data.clone()).await;
        let info = s4.head_object(&bucket, &key(k)).await.expect("head");
        assert_eq!(info.size, data.len() as u64, "{k}");
        assert_eq!(info.key, *k);
        let got = get_all(s4, &bucket, k, GetObjectOptions::default())
            .await
            .expect("get");
        assert_eq!(got, data.to_vec(), "{k}");
    }
    let listed: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    let expected: BTreeSet<String> = TRICKY_KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(listed, expected);
    // Overwrite.
    put(s4, &bucket, "plain.txt", Bytes::from_static(b"new")).await;
    let got = get_all(s4, &bucket, "plain.txt", GetObjectOptions::default())
        .await
        .expect("get");
    assert_eq!(got, b"new");
    // Missing key.
    let e = assert_kind(
        get_all(s4, &bucket, "missing", GetObjectOptions::default()).await,
        ErrorKind::NotFound,
        "missing key",
    );
    assert_eq!(e.code(), Some("NoSuchKey"));
    // Empty object.
    put(s4, &bucket, "empty", Bytes::new()).await;
    assert_eq!(
        s4.head_object(&bucket, &key("empty"))
            .await
            .expect("head")
            .size,
        0
    );
    remove_bucket(s4, &bucket).await;
}

/// Objects larger than one part stream through a multipart upload and back.
pub async fn large_object_streams(s4: &S4) {
    let bucket = fresh_bucket(s4, "large").await;
    let data = pattern(crate::PART_SIZE * 2 + 12345, 7);
    put(s4, &bucket, "big/blob.bin", data.clone()).await;
    let info = s4
        .head_object(&bucket, &key("big/blob.bin"))
        .await
        .expect("head");
    assert_eq!(info.size, data.len() as u64);
    let got = get_all(s4, &bucket, "big/blob.bin", GetObjectOptions::default())
        .await
        .expect("get");
    assert!(got == data.to_vec(), "large object round trip differs");
    remove_bucket(s4, &bucket).await;
}

/// Ranged reads (bounded, open, suffix, clamped) and unsatisfiable ranges.
pub async fn ranges(s4: &S4) {
    let bucket = fresh_bucket(s4, "range").await;
    let data = pattern(1000, 3);
    put(s4, &bucket, "r.bin", data.clone()).await;
    let cases = [
        (ByteRange::Bounded(0, 9), 0..10),
        (ByteRange::Bounded(990, 5000), 990..1000),
        (ByteRange::From(500), 500..1000),
        (ByteRange::Suffix(100), 900..1000),
    ];
    for (range, expected) in cases {
        let object = s4
            .get_object(
                &bucket,
                &key("r.bin"),
                GetObjectOptions::default().with_range(range),
            )
            .await
            .expect("ranged get");
        assert_eq!(object.range, expected.clone(), "{range:?}");
        assert!(object.partial);
        assert_eq!(object.info.size, 1000);
        let got = get_all(
            s4,
            &bucket,
            "r.bin",
            GetObjectOptions::default().with_range(range),
        )
        .await
        .expect("get");
        assert_eq!(
            got,
            data[expected.start as usize..expected.end as usize].to_vec()
        );
    }
    let e = assert_kind(
        s4.get_object(
            &bucket,
            &key("r.bin"),
            GetObjectOptions::default().with_range(ByteRange::From(1000)),
        )
        .await,
        ErrorKind::RangeNotSatisfiable,
        "range past the end",
    );
    assert_eq!(e.object_size(), Some(1000));
    remove_bucket(s4, &bucket).await;
}

/// `If-None-Match` with the current ETag yields NotModified; another ETag reads.
pub async fn conditional_get(s4: &S4) {
    let bucket = fresh_bucket(s4, "cond").await;
    put(s4, &bucket, "c.txt", Bytes::from_static(b"content")).await;
    let etag = s4
        .head_object(&bucket, &key("c.txt"))
        .await
        .expect("head")
        .etag
        .expect("backends report ETags");
    assert_kind(
        s4.get_object(
            &bucket,
            &key("c.txt"),
            GetObjectOptions::default().with_if_none_match(etag.clone()),
        )
        .await,
        ErrorKind::NotModified,
        "matching etag",
    );
    assert_kind(
        s4.get_object(
            &bucket,
            &key("c.txt"),
            GetObjectOptions::default()
                .with_if_none_match(etag)
                .with_range(ByteRange::From(1)),
        )
        .await,
        ErrorKind::NotModified,
        "matching etag with range",
    );
    let got = get_all(
        s4,
        &bucket,
        "c.txt",
        GetObjectOptions::default().with_if_none_match("\"other\""),
    )
    .await
    .expect("non-matching etag reads");
    assert_eq!(got, b"content");
    remove_bucket(s4, &bucket).await;
}

/// Delimited listing with folders; pagination yields every entry exactly once.
pub async fn pagination_exactly_once(s4: &S4) {
    let bucket = fresh_bucket(s4, "page").await;
    let mut expected_top: BTreeSet<String> = BTreeSet::new();
    for i in 0..23 {
        let k = format!("f{i:02}.txt");
        put(s4, &bucket, &k, Bytes::from_static(b"1")).await;
        expected_top.insert(k);
    }
    for d in ["a", "b", "m", "z"] {
        for i in 0..3 {
            put(s4, &bucket, &format!("{d}/x{i}"), Bytes::from_static(b"1")).await;
        }
        expected_top.insert(format!("{d}/"));
    }
    // A folder whose name sorts between files ("f00.txt/" vs "f00.txt", "f01.txt").
    let stem = if s4.backend().allows_key_folder_overlap() {
        "f00.txt"
    } else {
        "f00.tx"
    };
    put(
        s4,
        &bucket,
        &format!("{stem}/inner"),
        Bytes::from_static(b"1"),
    )
    .await;
    expected_top.insert(format!("{stem}/"));
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s4
            .list_objects(
                &bucket,
                &ListOptions::default()
                    .with_max_keys(4)
                    .with_continuation_token(token.take()),
            )
            .await
            .expect("list page");
        pages += 1;
        assert!(page.objects.len() + page.prefixes.len() <= 4);
        seen.extend(page.objects.into_iter().map(|o| o.key));
        seen.extend(page.prefixes);
        match page.next_token {
            Some(t) => {
                assert!(
                    t.len() <= 512
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=._-".contains(&b)),
                    "token {t}"
                );
                token = Some(t);
            }
            None => break,
        }
        assert!(pages < 100, "pagination does not terminate");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an entry was listed twice: {seen:?}"
    );
    assert_eq!(unique, expected_top);
    // A sub-folder lists its own level only.
    let page = s4
        .list_objects(&bucket, &ListOptions::default().with_prefix(pfx("m/")))
        .await
        .expect("list m/");
    let keys: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(keys, vec!["m/x0", "m/x1", "m/x2"]);
    assert!(page.prefixes.is_empty());
    // A non-folder prefix filters by leaf start.
    let page = s4
        .list_objects(&bucket, &ListOptions::default().with_prefix(pfx("f1")))
        .await
        .expect("list f1");
    assert_eq!(page.objects.len(), 10);
    remove_bucket(s4, &bucket).await;
}

/// Deleting `data` removes `data` and `data/**` but not `data.csv`; `k/` deletes a folder.
pub async fn folder_delete(s4: &S4) {
    let bucket = fresh_bucket(s4, "del").await;
    let overlap = s4.backend().allows_key_folder_overlap();
    for k in ["data.csv", "data/x", "data/y/z", "other/a", "other/b/c"] {
        put(s4, &bucket, k, Bytes::from_static(b"1")).await;
    }
    let data = s4
        .put_object(
            &bucket,
            &key("data"),
            chunked(Bytes::from_static(b"1"), 1),
            PutObjectOptions::default(),
        )
        .await;
    let mut expected: Vec<&str> = vec!["data/x", "data/y/z"];
    if overlap {
        data.expect("put data next to data/");
        expected.push("data");
    } else {
        let e = assert_kind(data, ErrorKind::Conflict, "object named like a folder");
        assert_eq!(e.code(), Some("KeyConflict"));
    }
    let outcome = s4
        .delete_object(&bucket, &key("data"))
        .await
        .expect("delete data");
    assert!(outcome.folder);
    let deleted: BTreeSet<String> = outcome.deleted.into_iter().collect();
    assert_eq!(deleted, expected.iter().map(|s| s.to_string()).collect());
    let left: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    assert_eq!(
        left,
        ["data.csv", "other/a", "other/b/c"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let outcome = s4
        .delete_object(&bucket, &key("other/"))
        .await
        .expect("delete other/");
    assert_eq!(outcome.deleted.len(), 2);
    // Single key, then a missing key (idempotent).
    let outcome = s4
        .delete_object(&bucket, &key("data.csv"))
        .await
        .expect("delete data.csv");
    assert!(!outcome.folder);
    assert_eq!(outcome.deleted, vec!["data.csv".to_string()]);
    let outcome = s4
        .delete_object(&bucket, &key("missing"))
        .await
        .expect("delete missing");
    assert!(!outcome.folder && outcome.deleted.is_empty());
    assert!(all_keys(s4, &bucket, "").await.is_empty());
    remove_bucket(s4, &bucket).await;
}

/// A put that fails (stream error, size limit, cancellation; single and multipart
/// sizes) leaves no object, and an existing object is not damaged.
pub async fn failed_puts_leave_nothing(s4: &S4) {
    let bucket = fresh_bucket(s4, "fail").await;
    put(s4, &bucket, "keep", Bytes::from_static(b"original")).await;
    for size in [1000usize, crate::PART_SIZE + 1000] {
        for target in ["new", "keep"] {
            // The body fails after `size` bytes.
            let data = pattern(size, 1);
            let failing = chunked(data, 64 << 10).chain(futures::stream::iter([Err(
                Error::invalid("client went away"),
            )]));
            let e = assert_kind(
                s4.put_object(&bucket, &key(target), failing, PutObjectOptions::default())
                    .await,
                ErrorKind::InvalidInput,
                "failing body",
            );
            assert_eq!(e.message(), "client went away");
            // Over the size limit.
            let body = chunked(pattern(size + 10, 2), 64 << 10);
            assert_kind(
                s4.put_object(
                    &bucket,
                    &key(target),
                    body,
                    PutObjectOptions::default().with_max_size(size as u64),
                )
                .await,
                ErrorKind::TooLarge,
                "size limit",
            );
            // Cancelled before the end.
            let token = CancellationToken::new();
            let cancel = token.clone();
            let body =
                chunked(pattern(size, 3), 64 << 10).chain(futures::stream::once(async move {
                    cancel.cancel();
                    futures::future::pending::<Result<Bytes>>().await
                }));
            assert_kind(
                s4.put_object(
                    &bucket,
                    &key(target),
                    body,
                    PutObjectOptions::default().with_cancel(token),
                )
                .await,
                ErrorKind::Cancelled,
                "cancelled",
            );
        }
    }
    let keys = all_keys(s4, &bucket, "").await;
    assert_eq!(keys, vec!["keep".to_string()]);
    let got = get_all(s4, &bucket, "keep", GetObjectOptions::default())
        .await
        .expect("get keep");
    assert_eq!(got, b"original");
    remove_bucket(s4, &bucket).await;
}

/// A put whose future is dropped mid-stream leaves no visible object.
pub async fn dropped_put_leaves_nothing(s4: &S4) {
    let bucket = fresh_bucket(s4, "drop").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let task = {
        let s4 = s4.clone();
        let bucket = bucket.clone();
        tokio::spawn(async move {
            s4.put_object(
                &bucket,
                &key("dropped.bin"),
                body,
                PutObjectOptions::default(),
            )
            .await
        })
    };
    // Feed more than one part so a multipart upload is in flight, then drop the put.
    let data = pattern(crate::PART_SIZE + (1 << 20), 9);
    for chunk in data.chunks(1 << 20) {
        tx.send(Ok(Bytes::copy_from_slice(chunk)))
            .await
            .expect("put is reading");
    }
    task.abort();
    let _ = task.await;
    drop(tx);
    assert!(all_keys(s4, &bucket, "").await.is_empty());
    assert_kind(
        s4.head_object(&bucket, &key("dropped.bin")).await,
        ErrorKind::NotFound,
        "dropped object",
    );
    remove_bucket(s4, &bucket).await;
}

/// Leaf-name search in both modes, with UTF-16 match offsets.
pub async fn search(s4: &S4) {
    let bucket = fresh_bucket(s4, "search").await;
    for k in [
        "models/my-config.json",
        "models/config.yaml",
        "models/other.bin",
        "models/configs/a",
        "models/😀config",
    ] {
        put(s4, &bucket, k, Bytes::from_static(b"1")).await;
    }
    let opts = |mode, q: &str| SearchOptions {
        prefix: pfx("models/"),
        query: q.into(),
        mode,
        auto_broaden: false,
        max_keys: 100,
        continuation_token: None,
    };
    let r = s4
        .search_objects(&bucket, &opts(SearchMode::Contains, "CONFIG"))
        .await
        .expect("contains");
    let keys: Vec<&str> = r.page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "models/config.yaml",
            "models/my-config.json",
            "models/😀config"
        ]
    );
    assert_eq!(r.page.prefixes, vec!["models/configs/".to_string()]);
    assert_eq!(r.scan_stopped, Some(crate::ScanStop::BucketExhausted));
    let m: std::collections::HashMap<_, _> = r.object_matches.iter().cloned().collect();
    assert_eq!(m.get("models/my-config.json"), Some(&vec![[3, 9]]));
    assert_eq!(m.get("models/😀config"), Some(&vec![[2, 8]]));
    let r = s4
        .search_objects(&bucket, &opts(SearchMode::StartsWith, "config"))
        .await
        .expect("startsWith");
    let keys: Vec<&str> = r.page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["models/config.yaml"]);
    assert_eq!(r.page.prefixes, vec!["models/configs/".to_string()]);
    assert_eq!(r.mode, SearchMode::StartsWith);
    let mut broaden = opts(SearchMode::StartsWith, "onfig");
    broaden.auto_broaden = true;
    let r = s4
        .search_objects(&bucket, &broaden)
        .await
        .expect("broadened");
    assert!(r.broadened);
    assert_eq!(r.mode, SearchMode::Contains);
    assert_eq!(r.page.objects.len(), 3);
    remove_bucket(s4, &bucket).await;
}

/// Successful writes and deletes are published as change events.
pub async fn change_events(s4: &S4) {
    let bucket = fresh_bucket(s4, "events").await;
    let mut changes = s4.subscribe_changes();
    put(s4, &bucket, "e/one", Bytes::from_static(b"12345")).await;
    s4.delete_object(&bucket, &key("e"))
        .await
        .expect("delete folder");
    let mut got = Vec::new();
    while got.len() < 2 {
        let change = changes.recv().await.expect("change event");
        if change.bucket == bucket.as_str() {
            got.push((change.key, change.kind));
        }
    }
    assert_eq!(
        got,
        vec![
            ("e/one".to_string(), ChangeKind::Created { size: 5 }),
            ("e/one".to_string(), ChangeKind::Removed),
        ]
    );
    remove_bucket(s4, &bucket).await;
}

/// Prefixes an attacker would try: absolute paths, `..` chains, `./`, encoded
/// dots and slashes (kept verbatim: S4 never decodes twice), backslashes, NUL,
/// overlong segments. `outside` is an absolute directory outside the store.
pub fn hostile_prefixes(outside: &str) -> Vec<String> {
    vec![
        "/".into(),
        "/etc/".into(),
        "/etc".into(),
        format!("{outside}/"),
        format!("{outside}"),
        "../".into(),
        "../../../../etc/".into(),
        "a/../../".into(),
        "./".into(),
        "./a".into(),
        "a//".into(),
        "a/./b/".into(),
        "%2e%2e/".into(),
        "%2e%2e%2f%2e%2e%2f".into(),
        "..%2f..%2f".into(),
        "\\..\\..\\etc\\".into(),
        "a\u{0}b/".into(),
        format!("{}/", "x".repeat(300)),
        "y".repeat(1100),
    ]
}

/// Keys an attacker would try (see [`hostile_prefixes`]).
pub fn hostile_keys(outside: &str) -> Vec<String> {
    vec![
        "/etc/passwd".into(),
        format!("{outside}/secret.txt"),
        "../../../../etc/passwd".into(),
        "a/../../../etc/passwd".into(),
        "./a".into(),
        "a//b".into(),
        "x/".into(),
        ".".into(),
        "..".into(),
        "%2e%2e/%2e%2e/etc/passwd".into(),
        "..%2f..%2fetc%2fpasswd".into(),
        "a\\..\\..\\etc\\passwd".into(),
        "a\u{0}b".into(),
        "x".repeat(300),
        "z".repeat(1100),
    ]
}

/// The hostile corpus on every operation: each input is refused with a typed
/// client error (invalid input or not found) or, where it is a legal name, stays
/// inside the bucket; listings and searches only ever show the bucket's own keys.
/// `outside` is a directory outside the store holding data that must stay
/// unreachable (the caller checks it is unchanged afterwards).
pub async fn hostile_names(s4: &S4, outside: &str) {
    let bucket = fresh_bucket(s4, "hostile").await;
    let mine = ["inside/file.txt", "top.txt"];
    for k in mine {
        put(s4, &bucket, k, Bytes::from_static(b"mine")).await;
    }
    let client_error =
        |e: &Error| matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound);
    let check_page = |what: &str, page: &crate::Page, prefix: &Prefix| {
        for o in &page.objects {
            assert!(
                mine.contains(&o.key.as_str()),
                "{what} {prefix:?} listed {:?}",
                o.key
            );
        }
        for p in &page.prefixes {
            assert!(
                mine.iter().any(|k| k.starts_with(p.as_str())),
                "{what} {prefix:?} listed prefix {p:?}"
            );
        }
    };
    for raw in hostile_prefixes(outside) {
        let prefix = match Prefix::parse(&raw) {
            Ok(p) => p,
            Err(e) => {
                assert_eq!(e.code(), Some("InvalidPrefix"), "{raw:?}");
                continue;
            }
        };
        for delimited in [true, false] {
            let options = ListOptions::default()
                .with_prefix(prefix.clone())
                .with_delimited(delimited);
            match s4.list_objects(&bucket, &options).await {
                Ok(page) => check_page("list", &page, &prefix),
                Err(e) => assert!(client_error(&e), "list {raw:?}: {e:?}"),
            }
        }
        for mode in [SearchMode::Contains, SearchMode::StartsWith] {
            let options = SearchOptions {
                prefix: prefix.clone(),
                query: "pass".into(),
                mode,
                auto_broaden: true,
                max_keys: 100,
                continuation_token: None,
            };
            match s4.search_objects(&bucket, &options).await {
                Ok(result) => check_page("search", &result.page, &prefix),
                Err(e) => assert!(client_error(&e), "search {raw:?}: {e:?}"),
            }
        }
    }
    for raw in hostile_keys(outside) {
        let k = match ObjectKey::parse(&raw) {
            Ok(k) => k,
            Err(e) => {
                assert_eq!(e.code(), Some("InvalidKey"), "{raw:?}");
                continue;
            }
        };
        match s4
            .get_object(&bucket, &k, GetObjectOptions::default())
            .await
        {
            Ok(o) => panic!("read {raw:?} that was never written: {:?}", o.info),
            Err(e) => assert!(client_error(&e), "get {raw:?}: {e:?}"),
        }
        if let Err(e) = s4.head_object(&bucket, &k).await {
            assert!(client_error(&e), "head {raw:?}: {e:?}");
        } else {
            panic!("head {raw:?} found an object that was never written");
        }
        match s4.delete_object(&bucket, &k).await {
            Ok(outcome) => assert!(outcome.deleted.is_empty(), "delete {raw:?}: {outcome:?}"),
            Err(e) => assert!(client_error(&e), "delete {raw:?}: {e:?}"),
        }
        // A write either is refused or lands inside this bucket, under its name.
        let body = chunked(Bytes::from_static(b"planted"), 3);
        match s4
            .put_object(&bucket, &k, body, PutObjectOptions::default())
            .await
        {
            Ok(_) => {
                assert!(k.is_portable(), "wrote non-portable {raw:?}");
                let read = get_all(s4, &bucket, k.as_str(), GetObjectOptions::default())
                    .await
                    .expect("read back a written legal key");
                assert_eq!(read, b"planted");
                s4.delete_object(&bucket, &k)
                    .await
                    .expect("delete legal key");
            }
            Err(e) => assert!(client_error(&e), "put {raw:?}: {e:?}"),
        }
    }
    let left: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    let expected: BTreeSet<String> = mine.iter().map(|k| k.to_string()).collect();
    assert_eq!(left, expected);
    remove_bucket(s4, &bucket).await;
}

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

/// The listing entry of `k` (delimited listing of its folder).
async fn listed_etag(s4: &S4, bucket: &BucketName, k: &str) -> Option<String> {
    let prefix = k.rfind('/').map(|i| &k[..=i]).unwrap_or("");
    let page = s4
        .list_objects(
            bucket,
            &ListOptions::default()
                .with_prefix(pfx(prefix))
                .with_max_keys(1000),
        )
        .await
        .expect("list");
    page.objects.into_iter().find(|o| o.key == k)?.etag
}

/// The ETag every route must report for `k`: listing = HEAD = GET.
async fn consistent_etag(s4: &S4, bucket: &BucketName, k: &str) -> String {
    let head = s4.head_object(bucket, &key(k)).await.expect("head");
    let get = s4
        .get_object(bucket, &key(k), GetObjectOptions::default())
        .await
        .expect("get");
    let listed = listed_etag(s4, bucket, k).await;
    let etag = head.etag.clone().expect("HEAD reports an ETag");
    assert_eq!(
        get.info.etag.as_deref(),
        Some(etag.as_str()),
        "GET vs HEAD ETag"
    );
    assert_eq!(
        listed.as_deref(),
        Some(etag.as_str()),
        "listing vs HEAD ETag"
    );
    etag
}

/// Content type (given or guessed from the extension) and user metadata are kept,
/// replaced by an overwrite and gone with a delete; the ETag is the MD5 of the bytes.
pub async fn object_metadata(s4: &S4) {
    let bucket = fresh_bucket(s4, "meta").await;
    let body = Bytes::from_static(b"hello");
    s4.put_object(
        &bucket,
        &key("docs/readme.txt"),
        chunked(body.clone(), 2),
        PutObjectOptions::default()
            .with_content_type("text/plain")
            .with_metadata("Owner", "team-a")
            .with_metadata("stage", "dev"),
    )
    .await
    .expect("put with metadata");
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    let mut metadata = info.metadata.clone();
    metadata.sort();
    assert_eq!(
        metadata,
        vec![
            ("owner".to_string(), "team-a".to_string()),
            ("stage".to_string(), "dev".to_string())
        ]
    );
    let etag = consistent_etag(s4, &bucket, "docs/readme.txt").await;
    assert_eq!(
        etag, "\"5d41402abc4b2a76b9719d911017c592\"",
        "MD5 of the bytes"
    );
    let got = s4
        .get_object(
            &bucket,
            &key("docs/readme.txt"),
            GetObjectOptions::default(),
        )
        .await
        .expect("get");
    assert_eq!(got.info.content_type.as_deref(), Some("text/plain"));

    // No type (or the generic one): guessed from the extension.
    for (k, given) in [
        ("a/config.json", None),
        ("a/page.html", Some("application/octet-stream")),
    ] {
        let mut options = PutObjectOptions::default();
        if let Some(ct) = given {
            options = options.with_content_type(ct);
        }
        s4.put_object(&bucket, &key(k), chunked(body.clone(), 5), options)
            .await
            .expect("put");
    }
    for (k, expected) in [
        ("a/config.json", "application/json"),
        ("a/page.html", "text/html"),
    ] {
        let info = s4.head_object(&bucket, &key(k)).await.expect("head");
        assert_eq!(info.content_type.as_deref(), Some(expected), "{k}");
    }

    // An overwrite replaces type, metadata and ETag.
    s4.put_object(
        &bucket,
        &key("docs/readme.txt"),
        chunked(Bytes::from_static(b"bye"), 3),
        PutObjectOptions::default().with_content_type("text/markdown"),
    )
    .await
    .expect("overwrite");
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert_eq!(info.content_type.as_deref(), Some("text/markdown"));
    assert!(info.metadata.is_empty(), "{:?}", info.metadata);
    let etag = consistent_etag(s4, &bucket, "docs/readme.txt").await;
    assert_eq!(
        etag,
        crate::storage::objmeta::single_etag(&crate::storage::objmeta::md5_of([&b"bye"[..]]))
    );

    // Delete removes object and metadata; a new object under the key starts clean.
    s4.delete_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("delete");
    assert_kind(
        s4.head_object(&bucket, &key("docs/readme.txt")).await,
        ErrorKind::NotFound,
        "deleted",
    );
    put(s4, &bucket, "docs/readme.txt", Bytes::from_static(b"x")).await;
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert!(info.metadata.is_empty());
    assert_eq!(
        info.content_type.as_deref(),
        Some("text/plain"),
        "guessed again"
    );

    // Metadata that cannot travel as an HTTP header is refused before any write.
    assert_kind(
        s4.put_object(
            &bucket,
            &key("bad"),
            chunked(body.clone(), 5),
            PutObjectOptions::default().with_metadata("bad name", "v"),
        )
        .await,
        ErrorKind::InvalidInput,
        "metadata name with a space",
    );
    remove_bucket(s4, &bucket).await;
}

/// A multipart write's ETag is S3's `"<md5 of part md5s>-<N>"` (the same as the
/// engine computes: the S3 variant checks it against the real engine).
pub async fn multipart_etag(s4: &S4) {
    let bucket = fresh_bucket(s4, "mpetag").await;
    let data = pattern(2 * crate::PART_SIZE + 1000, 7);
    put(s4, &bucket, "big.bin", data.clone()).await;
    let digests: Vec<[u8; 16]> = data
        .chunks(crate::PART_SIZE)
        .map(|part| crate::storage::objmeta::md5_of([part]))
        .collect();
    let expected = crate::storage::objmeta::multipart_etag(&digests);
    assert!(expected.ends_with("-3\""));
    let etag = consistent_etag(s4, &bucket, "big.bin").await;
    assert_eq!(etag, expected);
    remove_bucket(s4, &bucket).await;
}

/// Tags (§12.9) round-trip, are replaced as a set, dropped by an overwrite and
/// validated; an engine without tagging answers `NotImplemented`.
pub async fn object_tags(s4: &S4) {
    let bucket = fresh_bucket(s4, "tags").await;
    put(s4, &bucket, "t/obj.txt", Bytes::from_static(b"tagged")).await;
    let k = key("t/obj.txt");
    let tags = match s4.get_object_tags(&bucket, &k).await {
        Ok(tags) => tags,
        Err(e) => {
            // Garage does not implement tagging: the answer must say so.
            assert_eq!(e.code(), Some("NotImplemented"), "{e:?}");
            assert_eq!(s4.backend().name(), "s3");
            remove_bucket(s4, &bucket).await;
            return;
        }
    };
    assert!(tags.is_empty());
    let set = vec![
        ("project".to_string(), "llm".to_string()),
        ("empty".to_string(), String::new()),
    ];
    s4.put_object_tags(&bucket, &k, &set)
        .await
        .expect("put tags");
    assert_eq!(s4.get_object_tags(&bucket, &k).await.expect("get"), set);
    let etag = consistent_etag(s4, &bucket, "t/obj.txt").await;
    assert_eq!(
        etag,
        crate::storage::objmeta::single_etag(&crate::storage::objmeta::md5_of([&b"tagged"[..]])),
        "tags do not change the ETag"
    );
    let one = vec![("only".to_string(), "one".to_string())];
    s4.put_object_tags(&bucket, &k, &one)
        .await
        .expect("replace");
    assert_eq!(s4.get_object_tags(&bucket, &k).await.expect("get"), one);
    s4.delete_object_tags(&bucket, &k)
        .await
        .expect("delete tags");
    assert!(s4
        .get_object_tags(&bucket, &k)
        .await
        .expect("get")
        .is_empty());
    s4.put_object_tags(&bucket, &k, &one).await.expect("put");
    put(s4, &bucket, "t/obj.txt", Bytes::from_static(b"new")).await;
    assert!(
        s4.get_object_tags(&bucket, &k)
            .await
            .expect("get")
            .is_empty(),
        "an overwrite starts without tags"
    );
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_kind(
        s4.put_object_tags(&bucket, &k, &eleven).await,
        ErrorKind::InvalidInput,
        "11 tags",
    );
    assert_kind(
        s4.get_object_tags(&bucket, &key("t/missing")).await,
        ErrorKind::NotFound,
        "tags of a missing key",
    );
    remove_bucket(s4, &bucket).await;
}

//! The hostile-name corpus (`s4_core::testing::hostile_names`) on every backend,
//! plus the local backend's symbolic-link cases: a sentinel directory outside the
//! data directory, reachable only through a link planted inside a bucket, must be
//! neither listed, read, written nor deleted through S4.

use std::collections::BTreeMap;
use std::path::Path;

use s4_core::storage::{LocalBackend, MemoryBackend, S3Backend};
use s4_core::{BucketName, ErrorKind, GetObjectOptions, ListOptions, ObjectKey, Prefix, S4};

/// Every file under `dir` (relative name → bytes), dot-files included.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .to_string();
            if entry.file_type().expect("type").is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

fn sentinel() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("sentinel dir");
    std::fs::write(dir.path().join("secret.txt"), b"do not touch").expect("write");
    std::fs::create_dir(dir.path().join("passwd")).expect("mkdir");
    std::fs::write(dir.path().join("passwd/pass.txt"), b"pass").expect("write");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    let outside = sentinel();
    let before = snapshot(outside.path());
    let s4 = S4::builder().backend(MemoryBackend::new()).build();
    s4_core::testing::hostile_names(&s4, &outside.path().to_string_lossy()).await;
    assert_eq!(snapshot(outside.path()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn s3() {
    let Some(config) = s4_core::testing::s3_test_config() else {
        return;
    };
    let outside = sentinel();
    let s4 = S4::builder()
        .backend(S3Backend::new(config).expect("S3 backend"))
        .build();
    s4_core::testing::hostile_names(&s4, &outside.path().to_string_lossy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_with_planted_links() {
    let outside = sentinel();
    let before = snapshot(outside.path());
    let data = tempfile::tempdir().expect("data dir");
    let backend = LocalBackend::open(data.path()).await.expect("open");
    let s4 = S4::builder().backend(backend).build();
    s4_core::testing::hostile_names(&s4, &outside.path().to_string_lossy()).await;

    // Links planted inside a bucket by someone with file-system access.
    let bucket = BucketName::try_from("links").expect("name");
    s4.create_bucket(&bucket).await.expect("create");
    let bucket_dir = data.path().join("links");
    std::os::unix::fs::symlink(outside.path(), bucket_dir.join("out")).expect("dir link");
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), bucket_dir.join("s.txt"))
        .expect("file link");
    std::fs::create_dir(bucket_dir.join("real")).expect("mkdir");
    std::fs::write(bucket_dir.join("real/kept.txt"), b"kept").expect("write");

    // Listings (delimited or not, any prefix) never show or enter the links.
    for (prefix, delimited) in [("", true), ("", false), ("out/", true), ("out/", false)] {
        let options = ListOptions::default()
            .with_prefix(Prefix::try_from(prefix).expect("prefix"))
            .with_delimited(delimited);
        let page = s4.list_objects(&bucket, &options).await.expect("list");
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        let prefixes: Vec<&str> = page.prefixes.iter().map(String::as_str).collect();
        assert!(
            keys.iter()
                .chain(prefixes.iter())
                .all(|k| k.starts_with("real/")),
            "{prefix:?}/{delimited}: {keys:?} {prefixes:?}"
        );
    }
    // Reads, writes and deletes through the links are refused.
    for k in ["out/secret.txt", "s.txt", "out/passwd/pass.txt"] {
        let key = ObjectKey::try_from(k).expect("key");
        let err = s4
            .get_object(&bucket, &key, GetObjectOptions::default())
            .await
            .expect_err("read through a link");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{k}");
        assert!(s4.head_object(&bucket, &key).await.is_err(), "{k}");
        let _ = s4.delete_object(&bucket, &key).await;
        let body = s4_core::testing::chunked(bytes::Bytes::from_static(b"evil"), 2);
        assert!(
            s4.put_object(&bucket, &key, body, Default::default())
                .await
                .is_err(),
            "write through {k}"
        );
    }
    let out = ObjectKey::try_from("out").expect("key");
    let _ = s4.delete_object(&bucket, &out).await;
    let outcome = s4
        .delete_object(&bucket, &ObjectKey::try_from("real").expect("key"))
        .await
        .expect("folder delete");
    assert_eq!(
        outcome.deleted,
        vec![ObjectKey::try_from("real/kept.txt").expect("key")]
    );
    assert_eq!(snapshot(outside.path()), before, "the sentinel changed");
}

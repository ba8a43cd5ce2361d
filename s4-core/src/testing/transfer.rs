//! Transfer conformance bodies: every source/destination pair, conflicts, and
//! cancel + cleanup, run on every backend by `tests/conformance.rs` (server-side
//! copies on an S3 engine: `server_copy.rs`).
//!
//! Each body builds its own [`S4`] over the given handle's backend plus a temporary
//! local location `local-0`, so bucket and local sides are both exercised.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::Notify;

use super::{all_keys, fresh_bucket, get_all, pattern, put, remove_bucket};
use crate::location::{Locations, LocationsConfig};
use crate::transfer::{
    ConflictMode, Endpoint, ExternalFile, FileStatus, Item, Job, JobId, JobStatus, TransferRequest,
    TransferSource,
};
use crate::{BucketName, ChangeKind, GetObjectOptions, Result, S4};

/// Longest a test waits for a job.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// A handle over `s4`'s backend with one local location in a temporary directory.
async fn with_local(s4: &S4) -> (S4, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let locations =
        Locations::new(LocationsConfig::default().with_paths([dir.path().to_path_buf()])).await;
    let s4 = S4::builder()
        .shared_backend(Arc::clone(s4.backend()))
        .locations(locations)
        .build();
    (s4, dir)
}

/// Follows a job to its terminal state.
///
/// # Panics
/// When the job is unknown or does not finish within two minutes.
pub async fn wait_terminal(s4: &S4, id: &JobId) -> Job {
    let mut events = s4.transfers().subscribe(id).expect("job exists");
    let last = tokio::time::timeout(JOB_TIMEOUT, async {
        let mut last = None;
        while let Some(job) = events.next().await {
            last = Some(job);
        }
        last
    })
    .await
    .expect("job finishes in time")
    .expect("at least one event");
    assert!(last.status.is_terminal(), "stream ends on a terminal state");
    last
}

async fn write_local(root: &std::path::Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.expect("mkdir");
    }
    tokio::fs::write(&path, data).await.expect("write fixture");
}

/// Regular files under `root/base` (relative to it), and empty directories with a
/// trailing `/`.
async fn local_tree(root: &std::path::Path, base: &str) -> BTreeSet<String> {
    let start = root.join(base);
    tokio::task::spawn_blocking(move || {
        fn walk(dir: &std::path::Path, rel: &str, out: &mut BTreeSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut any = false;
            for e in entries.flatten() {
                any = true;
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if e.path().is_dir() {
                    walk(&e.path(), &child, out);
                } else {
                    out.insert(child);
                }
            }
            if !any && !rel.is_empty() {
                out.insert(format!("{rel}/"));
            }
        }
        let mut out = BTreeSet::new();
        walk(&start, "", &mut out);
        out
    })
    .await
    .expect("walk")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const UNICODE: &str = "dir/nested/deep file ü ñ.bin";

/// The fixture: `a.txt`, a nested unicode/space name, a 0-byte file, and an empty
/// directory (a `.s3keep` marker in buckets, a real directory locally).
fn fixture() -> Vec<(&'static str, Bytes)> {
    vec![
        ("a.txt", Bytes::from_static(b"hello transfer")),
        (UNICODE, pattern(300 << 10, 3)),
        ("dir/zero.bin", Bytes::new()),
    ]
}

async fn keys_under(s4: &S4, bucket: &BucketName, prefix: &str) -> BTreeSet<String> {
    all_keys(s4, bucket, prefix)
        .await
        .into_iter()
        .map(|k| k[prefix.len()..].to_string())
        .collect()
}

/// Runs `request` to completion and checks the job completed with every byte.
pub(super) async fn run(s4: &S4, request: TransferRequest) -> Job {
    let created = s4
        .transfers()
        .create(request)
        .await
        .unwrap_or_else(|e| panic!("create transfer: {e:?}"));
    let job = wait_terminal(s4, &created.id).await;
    assert_eq!(job.status, JobStatus::Completed, "job: {job:#?}");
    let progress = job.progress();
    assert_eq!(progress.loaded_bytes, progress.total_bytes);
    assert_eq!(progress.completed_files, job.files.len());
    job
}

fn items() -> Vec<Item> {
    vec![Item::file("a.txt"), Item::directory("dir/")]
}

/// Every source/destination pair with file and directory items, nested directories,
/// unicode and space names, a 0-byte file and an empty directory (§15.1 markers).
pub async fn transfer_pairs(s4: &S4) {
    let (s4, dir) = with_local(s4).await;
    let root = dir.path();
    let a = fresh_bucket(&s4, "tra").await;
    let b = fresh_bucket(&s4, "trb").await;
    for (rel, data) in fixture() {
        put(&s4, &a, &format!("src/{rel}"), data.clone()).await;
        write_local(root, &format!("lsrc/{rel}"), &data).await;
    }
    put(&s4, &a, "src/dir/empty/.s3keep", Bytes::new()).await;
    tokio::fs::create_dir_all(root.join("lsrc/dir/empty"))
        .await
        .expect("empty dir");
    let files = set(&["a.txt", UNICODE, "dir/zero.bin"]);
    let with_marker = {
        let mut s = files.clone();
        s.insert("dir/empty/.s3keep".into());
        s
    };
    let bucket = |name: &BucketName, path: &str| {
        Endpoint::bucket(name.as_str(), path).expect("bucket endpoint")
    };
    let request = |source: Endpoint, destination: Endpoint| TransferRequest {
        source,
        destination,
        items: items(),
        conflict: ConflictMode::Overwrite,
    };

    // bucket → same bucket (server-side copy where available).
    let mut changes = s4.subscribe_changes();
    let job = run(&s4, request(bucket(&a, "src"), bucket(&a, "/copy/"))).await;
    assert_eq!(job.files.len(), 4, "three files and the marker object");
    assert_eq!(keys_under(&s4, &a, "copy/").await, with_marker);
    let mut created = BTreeSet::new();
    while let Ok(change) = changes.try_recv() {
        if matches!(change.kind, ChangeKind::Created { .. }) && change.bucket == a {
            created.insert(change.key.as_str().to_string());
        }
    }
    assert!(
        with_marker
            .iter()
            .all(|k| created.contains(&format!("copy/{k}"))),
        "every write publishes a change: {created:?}"
    );
    // bucket → other bucket.
    run(&s4, request(bucket(&a, "src"), bucket(&b, ""))).await;
    assert_eq!(keys_under(&s4, &b, "").await, with_marker);
    // bucket → local: the marker becomes a directory, never a file.
    run(
        &s4,
        request(bucket(&a, "src"), Endpoint::local("local-0", "fromb")),
    )
    .await;
    let mut expected = files.clone();
    expected.insert("dir/empty/".into());
    assert_eq!(local_tree(root, "fromb").await, expected);
    // local → bucket: the empty directory becomes a marker.
    run(
        &s4,
        request(Endpoint::local("local-0", "lsrc"), bucket(&b, "froml")),
    )
    .await;
    assert_eq!(keys_under(&s4, &b, "froml/").await, with_marker);
    // local → local: the empty directory adds nothing.
    run(
        &s4,
        request(
            Endpoint::local("local-0", "lsrc"),
            Endpoint::local("local-0", "ll"),
        ),
    )
    .await;
    assert_eq!(local_tree(root, "ll").await, files);

    // Contents are intact on every side.
    for (rel, data) in fixture() {
        for prefix in ["copy/", "froml/"] {
            let bucket = if prefix == "copy/" { &a } else { &b };
            let got = get_all(
                &s4,
                bucket,
                &format!("{prefix}{rel}"),
                GetObjectOptions::default(),
            )
            .await
            .expect("read copy");
            assert_eq!(got, data.to_vec(), "{prefix}{rel}");
        }
        for base in ["fromb", "ll"] {
            let got = tokio::fs::read(root.join(base).join(rel))
                .await
                .expect("read local");
            assert_eq!(got, data.to_vec(), "{base}/{rel}");
        }
    }
    remove_bucket(&s4, &a).await;
    remove_bucket(&s4, &b).await;
}

/// Conflicts: check-conflicts (with the warning threshold), skip, overwrite, and
/// rename with collisions (`a-1`, `a-2`), on a bucket and a local destination.
pub async fn transfer_conflicts(s4: &S4) {
    let (s4, dir) = with_local(s4).await;
    let root = dir.path();
    let a = fresh_bucket(&s4, "trc").await;
    put(&s4, &a, "src/a.txt", Bytes::from_static(b"new")).await;
    put(&s4, &a, "src/b.txt", Bytes::from_static(b"bee")).await;
    for destination in [
        Endpoint::bucket(a.as_str(), "dst").expect("endpoint"),
        Endpoint::local("local-0", "dst"),
    ] {
        // Pre-existing: a.txt and a-1.txt.
        match destination.type_name() {
            "s3" => {
                put(&s4, &a, "dst/a.txt", Bytes::from_static(b"old")).await;
                put(&s4, &a, "dst/a-1.txt", Bytes::from_static(b"old1")).await;
            }
            _ => {
                write_local(root, "dst/a.txt", b"old").await;
                write_local(root, "dst/a-1.txt", b"old1").await;
            }
        }
        let request = |conflict| TransferRequest {
            source: Endpoint::bucket(a.as_str(), "src").expect("endpoint"),
            destination: destination.clone(),
            items: vec![Item::file("a.txt"), Item::file("b.txt")],
            conflict,
        };
        let report = s4
            .transfers()
            .check_conflicts(&request(ConflictMode::Skip))
            .await
            .expect("check conflicts");
        assert_eq!(report.conflicts, vec!["a.txt".to_string()]);
        assert_eq!(report.non_conflicting, vec!["b.txt".to_string()]);
        assert!(report.warning.is_none(), "two small files: no warning");

        let read = |path: &'static str| {
            let s4 = s4.clone();
            let a = a.clone();
            let destination = destination.clone();
            let root = root.to_path_buf();
            async move {
                match destination.type_name() {
                    "s3" => get_all(&s4, &a, path, GetObjectOptions::default())
                        .await
                        .ok(),
                    _ => tokio::fs::read(root.join(path)).await.ok(),
                }
            }
        };

        let job = run(&s4, request(ConflictMode::Skip)).await;
        assert!(job.files[0].skipped && job.files[0].size == 0 && job.files[0].loaded == 0);
        assert_eq!(job.files[0].status, FileStatus::Completed);
        assert!(!job.files[1].skipped);
        assert_eq!(read("dst/a.txt").await.as_deref(), Some(&b"old"[..]));

        let job = run(&s4, request(ConflictMode::Rename)).await;
        assert_eq!(job.files[0].destination_path, "dst/a-2.txt", "a-1 is taken");
        assert_eq!(job.files[1].destination_path, "dst/b-1.txt");
        assert_eq!(read("dst/a-2.txt").await.as_deref(), Some(&b"new"[..]));
        assert_eq!(read("dst/a-1.txt").await.as_deref(), Some(&b"old1"[..]));
        assert_eq!(read("dst/a.txt").await.as_deref(), Some(&b"old"[..]));

        run(&s4, request(ConflictMode::Overwrite)).await;
        assert_eq!(read("dst/a.txt").await.as_deref(), Some(&b"new"[..]));
    }

    // The large-folder warning at 1000 entries (local source: cheap to create).
    let many = root.join("many");
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&many).expect("mkdir");
        for i in 0..1000 {
            std::fs::write(many.join(format!("f{i}")), b"x").expect("write");
        }
    })
    .await
    .expect("fixture");
    let report = s4
        .transfers()
        .check_conflicts(&TransferRequest {
            source: Endpoint::local("local-0", ""),
            destination: Endpoint::bucket(a.as_str(), "many").expect("endpoint"),
            items: vec![Item::directory("many")],
            conflict: ConflictMode::Skip,
        })
        .await
        .expect("check");
    let warning = report.warning.expect("warning at 1000 files");
    assert_eq!(warning.file_count, 1000);
    assert_eq!(warning.total_size, 1000);
    assert_eq!(
        warning.message,
        "This operation will transfer 1000 files (1000.00 Bytes). This may take significant time."
    );
    remove_bucket(&s4, &a).await;
}

/// A source that serves `first` bytes of a file, then waits for `release` before
/// ending (or forever, if never released): lets a test cancel mid-file without
/// timing assumptions.
#[derive(Debug, Default)]
pub struct GatedSource {
    /// Signalled once the first bytes were handed out.
    pub started: Notify,
    /// Lets the stream continue.
    pub release: Arc<Notify>,
    /// Bytes served before waiting.
    pub first: usize,
}

#[async_trait]
impl TransferSource for GatedSource {
    async fn open(&self, file: &ExternalFile) -> Result<BoxStream<'static, Result<Bytes>>> {
        if file.path.ends_with("small.bin") {
            return Ok(futures::stream::iter([Ok(Bytes::from_static(b"small"))]).boxed());
        }
        let head = pattern(self.first, 7);
        self.started.notify_one();
        let release = Arc::clone(&self.release);
        let tail = futures::stream::once(async move {
            release.notified().await;
            Ok(Bytes::from_static(b"tail"))
        });
        Ok(futures::stream::iter([Ok(head)]).chain(tail).boxed())
    }
}

/// Cancel in the middle of a large file: the job is `cancelled`, no partial
/// destination exists, and cleanup removes exactly what the job wrote.
pub async fn transfer_cancel_cleanup(s4: &S4) {
    let a = fresh_bucket(s4, "trx").await;
    put(s4, &a, "dst/keep.txt", Bytes::from_static(b"pre-existing")).await;
    put(
        s4,
        &a,
        "dst/skipme.bin",
        Bytes::from_static(b"pre-existing"),
    )
    .await;
    // A single-file limit makes the order deterministic: small, skipped, then big.
    let source = Arc::new(GatedSource {
        first: crate::PART_SIZE + (1 << 20),
        ..GatedSource::default()
    });
    let transfers = s4.transfers();
    // One copy at a time: small, then skipme (skipped), then big, in FIFO order.
    transfers.set_max_concurrent(1);
    let files = vec![
        ExternalFile {
            path: "small.bin".into(),
            size: 5,
            source: "test://small".into(),
        },
        ExternalFile {
            path: "skipme.bin".into(),
            size: 5,
            source: "test://skip".into(),
        },
        ExternalFile {
            path: "big.bin".into(),
            size: 0,
            source: "test://big".into(),
        },
    ];
    let started = source.started.notified();
    let created = transfers
        .create_from_source(
            source.clone(),
            files,
            Endpoint::bucket(a.as_str(), "dst").expect("endpoint"),
            ConflictMode::Skip,
        )
        .expect("create");
    started.await;
    // The big file is mid-stream (a multipart upload in flight on S3).
    assert!(transfers.cancel(&created.id), "cancel a running job");
    assert!(!transfers.cancel(&created.id), "already terminal");
    let job = wait_terminal(s4, &created.id).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    let big = &job.files[2];
    assert_eq!(big.status, FileStatus::Error);
    assert_eq!(
        big.error.as_deref(),
        Some(crate::transfer::CANCELLED_MESSAGE)
    );
    let report = transfers.cleanup(&created.id).await.expect("cleanup");
    assert!(report.errors.is_empty(), "{report:?}");
    // small.bin was written and big.bin started: both count; skipme.bin never.
    assert_eq!(report.deleted, 2);
    assert_eq!(
        keys_under(s4, &a, "dst/").await,
        set(&["keep.txt", "skipme.bin"]),
        "no partial big.bin, written files removed, pre-existing untouched"
    );
    remove_bucket(s4, &a).await;
}

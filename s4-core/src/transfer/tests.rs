//! Unit tests of the transfer engine (the backend-agnostic bodies live in
//! `crate::testing::transfer`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::*;
use crate::storage::MemoryBackend;
use crate::testing::transfer::wait_terminal;

fn memory() -> S4 {
    S4::builder().backend(MemoryBackend::new()).build()
}

#[test]
fn traversal_rules() {
    for bad in ["..", "../x", "a/../../x", "/etc/passwd", "a/./../.."] {
        assert!(is_traversal(bad), "{bad}");
    }
    for good in ["a", "a/../b", "./a", "a/b/..", "..a", "a..b"] {
        assert!(!is_traversal(good), "{good}");
    }
}

#[test]
fn job_ids() {
    let a = JobId::next();
    let b = JobId::next();
    assert_ne!(a, b);
    let parts: Vec<&str> = a.as_str().split('-').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "transfer");
    assert!(parts[1].parse::<i64>().is_ok() && parts[2].parse::<u64>().is_ok());
}

#[test]
fn endpoints_trim_slashes() {
    let e = Endpoint::local("local-0", "/backup/");
    assert_eq!(e.path, "backup");
    assert_eq!(e.join("a/b"), "backup/a/b");
    assert_eq!(Endpoint::local("local-0", "/").join("a"), "a");
    assert_eq!(e.display("backup/a"), "local:local-0/backup/a");
    assert!(Endpoint::bucket("Bad_Name", "").is_err());
}

#[tokio::test]
async fn bad_requests_create_nothing() {
    let s4 = memory();
    let bucket = crate::testing::fresh_bucket(&s4, "tru").await;
    let request = |items: Vec<Item>| TransferRequest {
        source: Endpoint::bucket(bucket.as_str(), "").expect("endpoint"),
        destination: Endpoint::bucket(bucket.as_str(), "out").expect("endpoint"),
        items,
        conflict: ConflictMode::Skip,
    };
    let e = s4
        .transfers()
        .create(request(vec![]))
        .await
        .expect_err("empty");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = s4
        .transfers()
        .create(request(vec![Item::file("../x")]))
        .await
        .expect_err("traversal");
    assert_eq!(e.code(), Some(PATH_TRAVERSAL));
    let e = s4
        .transfers()
        .create(request(vec![Item::directory("nothing-here")]))
        .await
        .expect_err("empty expansion");
    assert_eq!(e.message(), "Selected items contain no files to transfer");
    let e = s4
        .transfers()
        .create(request(vec![Item::file("missing.bin")]))
        .await
        .expect_err("missing file");
    assert_eq!(e.code(), Some(EXPANSION_FAILED));
    assert_eq!(e.message(), "File not found in S3: missing.bin");
    assert!(s4.transfers().job_ids().is_empty());
}

#[derive(Debug)]
struct Rejecting;

#[async_trait]
impl TransferSource for Rejecting {
    async fn open(&self, file: &ExternalFile) -> Result<BoxStream<'static, Result<Bytes>>> {
        let data = Bytes::from(file.path.clone().into_bytes());
        Ok(futures::stream::iter([Ok(data)]).boxed())
    }

    async fn verify(&self, file: &ExternalFile, written: u64) -> Result<()> {
        if file.path.starts_with("bad") {
            Err(Error::invalid(format!(
                "checksum mismatch after {written} bytes"
            )))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn external_source_verification_removes_failed_files() {
    let s4 = memory();
    let bucket = crate::testing::fresh_bucket(&s4, "trv").await;
    let files = ["good.txt", "bad.txt"]
        .into_iter()
        .map(|p| ExternalFile {
            path: p.into(),
            size: p.len() as u64,
            source: format!("https://hub.example/{p}"),
        })
        .collect();
    let created = s4
        .transfers()
        .create_from_source(
            Arc::new(Rejecting),
            files,
            Endpoint::bucket(bucket.as_str(), "import").expect("endpoint"),
            ConflictMode::Overwrite,
        )
        .expect("create");
    let job = wait_terminal(&s4, &created.id).await;
    assert_eq!(job.job_type, JobType::HuggingFace);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.files[0].status, FileStatus::Completed);
    assert_eq!(job.files[0].source, "https://hub.example/good.txt");
    assert_eq!(job.files[1].status, FileStatus::Error);
    assert_eq!(
        job.files[1].error.as_deref(),
        Some("checksum mismatch after 7 bytes")
    );
    let keys = crate::testing::all_keys(&s4, &bucket, "").await;
    assert_eq!(keys, vec!["import/good.txt".to_string()]);

    // A listener arriving after the end gets one terminal snapshot.
    let events: Vec<Job> = s4
        .transfers()
        .subscribe(&created.id)
        .expect("known")
        .collect()
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, JobStatus::Failed);
    assert!(
        !s4.transfers().cancel(&created.id),
        "terminal: nothing to cancel"
    );
    let e = s4
        .transfers()
        .cleanup(&created.id)
        .await
        .expect_err("not cancelled");
    assert_eq!(e.code(), Some("InvalidStatus"));
    assert!(s4
        .transfers()
        .subscribe(&JobId::from("transfer-1-1"))
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn events_end_with_the_terminal_state() {
    let s4 = memory();
    let bucket = crate::testing::fresh_bucket(&s4, "trt").await;
    let source = Arc::new(crate::testing::transfer::GatedSource {
        first: 10,
        ..Default::default()
    });
    let files = vec![ExternalFile {
        path: "big.bin".into(),
        size: 14,
        source: "test://big".into(),
    }];
    let started = source.started.notified();
    let created = s4
        .transfers()
        .create_from_source(
            source.clone(),
            files,
            Endpoint::bucket(bucket.as_str(), "").expect("endpoint"),
            ConflictMode::Overwrite,
        )
        .expect("create");
    let mut events = s4.transfers().subscribe(&created.id).expect("known");
    let first = events.next().await.expect("snapshot");
    assert!(!first.status.is_terminal());
    started.await;
    source.release.notify_one();
    let mut last = first;
    while let Some(job) = events.next().await {
        last = job;
    }
    assert_eq!(last.status, JobStatus::Completed);
    assert_eq!(last.progress().loaded_bytes, 14);
}

/// Fails its first `failures` opens with a connection-level error.
#[derive(Debug)]
struct Flaky {
    failures: usize,
    opens: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl TransferSource for Flaky {
    async fn open(&self, _file: &ExternalFile) -> Result<BoxStream<'static, Result<Bytes>>> {
        let n = self.opens.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < self.failures {
            return Err(Error::new(ErrorKind::Backend, "connection refused"));
        }
        Ok(futures::stream::iter([Ok(Bytes::from_static(b"data"))]).boxed())
    }

    fn job_type(&self) -> JobType {
        JobType::CrossStorage
    }
}

#[tokio::test(start_paused = true)]
async fn connection_failures_are_retried_three_times() {
    let s4 = memory();
    let bucket = crate::testing::fresh_bucket(&s4, "trr").await;
    for (failures, expected) in [(3, JobStatus::Completed), (4, JobStatus::Failed)] {
        let source = Arc::new(Flaky {
            failures,
            opens: Default::default(),
        });
        let files = vec![ExternalFile {
            path: format!("f{failures}.bin"),
            size: 4,
            source: "test://flaky".into(),
        }];
        let created = s4
            .transfers()
            .create_from_source(
                source.clone(),
                files,
                Endpoint::bucket(bucket.as_str(), "").expect("endpoint"),
                ConflictMode::Overwrite,
            )
            .expect("create");
        let job = wait_terminal(&s4, &created.id).await;
        assert_eq!(job.status, expected, "{failures} failures");
        assert_eq!(job.job_type, JobType::CrossStorage);
        assert_eq!(
            source.opens.load(std::sync::atomic::Ordering::SeqCst),
            (failures + 1).min(4),
            "one try and three retries at most"
        );
    }
}

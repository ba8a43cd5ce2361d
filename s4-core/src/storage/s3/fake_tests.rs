//! The S3 backend against a fake engine on loopback ([`crate::fakes::FakeServer`],
//! real HTTP): timed-out attempts are retried on both request paths
//! (`object_store`'s and S4's own signed requests), and a multipart copy cancelled
//! or dropped while CreateMultipartUpload is in flight aborts the upload it
//! created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::tests::{config, engine};
use super::*;
use crate::error::ErrorKind;
use crate::fakes::{FakeServer, Recorded, Reply};

/// Long enough for any step of these tests on a loaded machine; only a bound
/// against hanging, never a measurement.
const DEADLINE: Duration = Duration::from_secs(60);

/// Attempts received per `"<METHOD> <target>"`.
type Attempts = Arc<Mutex<HashMap<String, usize>>>;

/// [`engine`] with multipart uploads (create, part, complete).
fn engine_with_multipart(r: &Recorded) -> Reply {
    let xml =
        |body: &str| Reply::new(200, body.to_string()).header("Content-Type", "application/xml");
    match r.method.as_str() {
        "POST" if r.target.contains("?uploads") => xml(
            "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>m</Key><UploadId>up</UploadId></InitiateMultipartUploadResult>",
        ),
        "POST" if r.target.contains("uploadId=") => xml(
            "<CompleteMultipartUploadResult><ETag>\"all-1\"</ETag></CompleteMultipartUploadResult>",
        ),
        "PUT" if r.target.contains("partNumber=") => Reply::new(200, "").header("ETag", "\"p1\""),
        _ => engine(r),
    }
}

/// [`engine_with_multipart`], except that the first `stalled` attempts of each
/// request (method and target) are never answered: the client times out.
async fn flaky_engine(stalled: usize) -> (FakeServer, Attempts) {
    let attempts: Attempts = Arc::default();
    let seen = Arc::clone(&attempts);
    let fake = FakeServer::start(move |r: &Recorded| {
        let n = {
            let mut seen = seen.lock().expect("attempts");
            let n = seen
                .entry(format!("{} {}", r.method, r.target))
                .or_default();
            *n += 1;
            *n
        };
        let reply = engine_with_multipart(r);
        if n <= stalled {
            // Never notified: this attempt never gets an answer.
            reply.stalled(Arc::new(Notify::new()))
        } else {
            reply
        }
    })
    .await;
    (fake, attempts)
}

/// How many attempts the engine received of requests `<method> <target…>`.
fn count(attempts: &Attempts, method: &str, target_prefix: &str) -> usize {
    let prefix = format!("{method} {target_prefix}");
    attempts
        .lock()
        .expect("attempts")
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, n)| n)
        .sum()
}

fn short_timeouts(retries: usize) -> S3Timeouts {
    S3Timeouts {
        connect: Duration::from_secs(5),
        response: Duration::from_millis(300),
        retries,
        ..S3Timeouts::default()
    }
}

fn bucket(name: &str) -> BucketName {
    BucketName::try_from(name).expect("bucket")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::try_from(name).expect("key")
}

/// The first attempt of each request times out (300 ms); the second is answered:
/// object I/O through `object_store` (GET, PUT) and S4's own signed requests
/// (HEAD bucket, tagging, a CopyObject) all succeed after exactly two attempts.
#[tokio::test]
async fn a_timed_out_attempt_is_retried() {
    let (fake, attempts) = flaky_engine(1).await;
    let backend = S3Backend::with_timeouts(config(fake.url()), short_timeouts(2)).expect("backend");
    let bkt = bucket("bkt");
    let store = backend.store(&bkt).await.expect("store");

    let got = store
        .get(&Path::from("k"))
        .await
        .expect("GET retried")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], b"hello");
    assert_eq!(count(&attempts, "GET", "/bkt/k"), 2);

    store
        .put(&Path::from("p"), PutPayload::from_static(b"data"))
        .await
        .expect("PUT retried");
    assert_eq!(count(&attempts, "PUT", "/bkt/p"), 2);

    // A multipart upload (S4's large puts): a part PUT that timed out once is
    // retried instead of failing the whole upload; so are create and complete.
    let mut upload = store
        .put_multipart(&Path::from("m"))
        .await
        .expect("create retried");
    upload
        .put_part(PutPayload::from_static(b"part"))
        .await
        .expect("part retried");
    upload.complete().await.expect("complete retried");
    assert_eq!(count(&attempts, "POST", "/bkt/m?uploads"), 2);
    assert_eq!(
        count(&attempts, "PUT", "/bkt/m?partNumber=1&uploadId=up"),
        2
    );
    assert_eq!(count(&attempts, "POST", "/bkt/m?uploadId=up"), 2);

    backend.head_bucket(&bkt).await.expect("HEAD retried");
    assert_eq!(count(&attempts, "HEAD", "/bkt"), 2);

    let tags = backend
        .get_object_tags(&bkt, &key("t"))
        .await
        .expect("tagging retried");
    assert_eq!(tags, vec![("a".to_string(), "b".to_string())]);
    assert_eq!(count(&attempts, "GET", "/bkt/t?tagging"), 2);

    let copied = backend
        .copy_object(
            (&bkt, &key("k")),
            (&bkt, &key("c")),
            &ServerCopyOptions::new(5),
        )
        .await
        .expect("CopyObject retried");
    assert!(
        matches!(copied, ServerCopy::Copied { size: 5 }),
        "{copied:?}"
    );
    assert_eq!(count(&attempts, "PUT", "/bkt/c"), 2);
}

/// With no retries configured, the same timed-out attempts fail with the typed
/// `Timeout` error after one attempt each; and with retries, a request that is not
/// idempotent (CreateBucket: a second attempt would answer "already yours") is
/// not repeated after a timeout.
#[tokio::test]
async fn without_retries_a_timeout_is_a_typed_error() {
    let (fake, attempts) = flaky_engine(usize::MAX).await;
    let backend = S3Backend::with_timeouts(config(fake.url()), short_timeouts(0)).expect("backend");
    let bkt = bucket("bkt");
    let store = backend.store(&bkt).await.expect("store");

    let e = Error::from(
        store
            .get(&Path::from("k"))
            .await
            .expect_err("GET times out"),
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert_eq!(count(&attempts, "GET", "/bkt/k"), 1);

    let e = store
        .put(&Path::from("p"), PutPayload::from_static(b"data"))
        .await
        .expect_err("PUT times out");
    assert_eq!(Error::from(e).kind(), ErrorKind::Timeout);
    assert_eq!(count(&attempts, "PUT", "/bkt/p"), 1);

    let e = backend
        .get_object_tags(&bkt, &key("t"))
        .await
        .expect_err("tagging times out");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert_eq!(count(&attempts, "GET", "/bkt/t?tagging"), 1);

    let retrying =
        S3Backend::with_timeouts(config(fake.url()), short_timeouts(2)).expect("backend");
    let e = retrying
        .create_bucket(&bucket("fresh"))
        .await
        .expect_err("CreateBucket times out");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert_eq!(count(&attempts, "PUT", "/fresh"), 1, "not repeated");
}

const UPLOAD_ID: &str = "upload-1";
/// Above the lowered multipart threshold (5 MiB): a multipart copy.
const SOURCE_SIZE: usize = 12 << 20;

/// A fake engine for multipart copies whose CreateMultipartUpload answer waits for
/// `release`; `create_seen` / `aborted` are notified when the create and the abort
/// of [`UPLOAD_ID`] arrive.
struct CopyEngine {
    fake: FakeServer,
    create_seen: Arc<Notify>,
    release: Arc<Notify>,
    aborted: Arc<Notify>,
}

impl CopyEngine {
    async fn start() -> Self {
        let create_seen = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let aborted = Arc::new(Notify::new());
        let (seen, held, abort) = (
            Arc::clone(&create_seen),
            Arc::clone(&release),
            Arc::clone(&aborted),
        );
        let fake = FakeServer::start(move |r: &Recorded| {
            let query = r.target.split_once('?').map_or("", |(_, q)| q);
            let xml =
                |body: String| Reply::new(200, body).header("Content-Type", "application/xml");
            match r.method.as_str() {
                "HEAD" => Reply::new(200, vec![0u8; SOURCE_SIZE])
                    .header("ETag", "\"source\"")
                    .header("Content-Type", "application/octet-stream")
                    .header("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT"),
                "POST" if query.contains("uploads") => {
                    seen.notify_one();
                    xml(format!(
                        "<InitiateMultipartUploadResult><Bucket>dst</Bucket><Key>copy</Key><UploadId>{UPLOAD_ID}</UploadId></InitiateMultipartUploadResult>"
                    ))
                    .stalled(Arc::clone(&held))
                }
                "DELETE" if query.contains("uploadId=") => {
                    if query.contains(&format!("uploadId={UPLOAD_ID}")) {
                        abort.notify_one();
                    }
                    Reply::new(204, "")
                }
                "PUT" => xml("<CopyPartResult><ETag>\"part\"</ETag></CopyPartResult>".into()),
                "POST" => xml(
                    "<CompleteMultipartUploadResult><ETag>\"all-3\"</ETag></CompleteMultipartUploadResult>"
                        .into(),
                ),
                _ => Reply::new(404, ""),
            }
        })
        .await;
        CopyEngine {
            fake,
            create_seen,
            release,
            aborted,
        }
    }

    fn backend(&self) -> Arc<S3Backend> {
        let backend = S3Backend::new(config(self.fake.url()))
            .expect("backend")
            .with_multipart_copy_threshold(5 << 20);
        Arc::new(backend)
    }

    /// Starts a multipart copy of `src/big` to `dst/copy` in a task.
    fn copy(
        backend: Arc<S3Backend>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<Result<ServerCopy>> {
        tokio::spawn(async move {
            let options = ServerCopyOptions::new(SOURCE_SIZE as u64).with_cancel(cancel);
            let (src, dst) = (bucket("src"), bucket("dst"));
            let (from, to) = (key("big"), key("copy"));
            backend
                .copy_object((&src, &from), (&dst, &to), &options)
                .await
        })
    }

    async fn wait_for_create(&self) {
        tokio::time::timeout(DEADLINE, self.create_seen.notified())
            .await
            .expect("CreateMultipartUpload sent");
    }

    /// Requests `<method>` whose target contains `part`.
    fn received(&self, method: &str, part: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.target.contains(part))
            .count()
    }
}

/// A cancel while CreateMultipartUpload is in flight: once the engine answers, the
/// copy aborts the upload it names before it reports `cancelled`; no part is
/// copied and nothing is completed.
#[tokio::test]
async fn a_copy_cancelled_during_create_aborts_the_upload() {
    let engine = CopyEngine::start().await;
    let cancel = CancellationToken::new();
    let copy = CopyEngine::copy(engine.backend(), cancel.clone());
    engine.wait_for_create().await;
    cancel.cancel();
    engine.release.notify_one();
    let result = tokio::time::timeout(DEADLINE, copy)
        .await
        .expect("the copy ends")
        .expect("join");
    match result {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Cancelled, "{e:?}"),
        Ok(other) => panic!("expected a cancel, got {other:?}"),
    }
    let abort = format!("uploadId={UPLOAD_ID}");
    assert_eq!(
        engine.received("DELETE", &abort),
        1,
        "the upload is aborted"
    );
    assert_eq!(engine.received("PUT", "partNumber="), 0, "no part copied");
    assert_eq!(engine.received("POST", &abort), 0, "nothing completed");
}

/// The copy future dropped while CreateMultipartUpload is in flight: the upload id
/// arrives after the drop, and the upload is still aborted.
#[tokio::test]
async fn a_copy_dropped_during_create_aborts_the_upload() {
    let engine = CopyEngine::start().await;
    let copy = CopyEngine::copy(engine.backend(), CancellationToken::new());
    engine.wait_for_create().await;
    copy.abort();
    let dropped = copy.await.expect_err("the copy was dropped");
    assert!(dropped.is_cancelled());
    engine.release.notify_one();
    tokio::time::timeout(DEADLINE, engine.aborted.notified())
        .await
        .expect("AbortMultipartUpload sent after the drop");
    let abort = format!("uploadId={UPLOAD_ID}");
    assert_eq!(engine.received("DELETE", &abort), 1);
    assert_eq!(engine.received("PUT", "partNumber="), 0, "no part copied");
}

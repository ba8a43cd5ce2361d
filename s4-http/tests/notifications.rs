//! Bucket notifications over real HTTP (§14): configuration routes, the endpoint
//! test, and delivery of events to webhook receivers started inside the test on
//! 127.0.0.1:0. Delivery bodies run on the memory, local and S3 backends (S3
//! skipped without an endpoint); out-of-band changes on local, and under a
//! `BUCKET_DATA_PATH` on every backend.
//!
//! Nothing sleeps to synchronize: tests wait on the receiver's channel with a
//! timeout, and "no further event" is proven by a marker change whose event must
//! be the next one to arrive.

mod common;

use common::on_every_backend;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{b64, Kind, Running};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use s4_core::notify::{DeliveryOptions, NotifyOptions};
use s4_core::storage::{LocalBackend, MemoryBackend, S3Backend};
use s4_core::{Backend, S4};
use s4_http::{App, HttpConfig};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

/// How long a test waits for one event before failing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- harness

struct Server {
    addr: SocketAddr,
    base: String,
    s4: S4,
    client: reqwest::Client,
    data_dir: Option<PathBuf>,
    store: PathBuf,
    _running: Running,
}

struct Setup {
    kind: Kind,
    /// Data directory of a local backend (kept by the caller across restarts).
    data_dir: Option<PathBuf>,
    /// `BUCKET_DATA_PATH`: the watched directory, when not the backend's own.
    bucket_data_path: Option<PathBuf>,
    store: PathBuf,
    coalesce: Duration,
}

/// Fast retries so an outage test takes milliseconds, not half a minute.
fn fast_delivery() -> DeliveryOptions {
    DeliveryOptions {
        backoff_base: Duration::from_millis(20),
        ..DeliveryOptions::default()
    }
}

async fn start(setup: Setup) -> Option<Server> {
    let backend: Arc<dyn Backend> = match setup.kind {
        Kind::Memory => Arc::new(MemoryBackend::new()),
        Kind::Local => {
            let dir = setup.data_dir.clone().expect("local data dir");
            Arc::new(LocalBackend::open(&dir).await.expect("local backend"))
        }
        Kind::S3 => {
            Arc::new(S3Backend::new(s4_core::testing::s3_test_config()?).expect("S3 backend"))
        }
    };
    let data_dir = backend.data_dir().map(Path::to_path_buf);
    let mut notify = NotifyOptions::default()
        .with_store_path(&setup.store)
        .with_delivery(fast_delivery())
        .with_coalesce_window(setup.coalesce);
    if let Some(path) = setup.bucket_data_path {
        notify = notify.with_bucket_data_path(path);
    }
    let s4 = S4::builder()
        .shared_backend(backend)
        .notifications(notify)
        .build();
    s4.notifications()
        .start()
        .await
        .expect("start notifications");
    let running = Running::start(App::new(s4.clone(), HttpConfig::default())).await;
    Some(Server {
        addr: running.addr,
        base: running.base(),
        s4,
        client: reqwest::Client::new(),
        data_dir,
        store: setup.store,
        _running: running,
    })
}

/// A server over `kind` with a fresh temporary directory (data dir and store).
async fn start_kind(kind: Kind, dir: &Path, coalesce: Duration) -> Option<Server> {
    start(Setup {
        kind,
        data_dir: Some(dir.join("data")),
        bucket_data_path: None,
        store: dir.join("state/notifications.json"),
        coalesce,
    })
    .await
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    async fn put_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.put(self.url(path)).json(&body)).await
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    async fn bucket(&self, tag: &str) -> String {
        let name = s4_core::testing::unique_bucket(tag).to_string();
        let (status, body) = self
            .post_json("/buckets", json!({ "bucketName": name }))
            .await;
        assert_eq!(status, 200, "create bucket: {body}");
        name
    }

    async fn configure(&self, bucket: &str, notifications: Value) {
        let (status, body) = self
            .put_json(
                &format!("/notifications/{bucket}"),
                json!({ "notifications": notifications }),
            )
            .await;
        assert_eq!(status, 200, "PUT notifications: {body}");
    }

    async fn upload(&self, bucket: &str, key: &str, data: &[u8]) {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(data.to_vec()).file_name("f.bin"),
        );
        let (status, body) = self
            .send(
                self.client
                    .post(self.url(&format!("/objects/upload/{bucket}/{}", b64(key))))
                    .multipart(form),
            )
            .await;
        assert_eq!(status, 200, "upload {key}: {body}");
    }

    async fn delete_key(&self, bucket: &str, key: &str) {
        let (status, body) = self
            .delete(&format!("/objects/{bucket}/{}", b64(key)))
            .await;
        assert_eq!(status, 200, "delete {key}: {body}");
    }

    async fn cleanup(&self, bucket: &str) {
        s4_core::testing::remove_bucket(
            &self.s4,
            &s4_core::BucketName::try_from(bucket).expect("bucket"),
        )
        .await;
    }
}

// ---------------------------------------------------------------- receiver

/// One POST a receiver got.
#[derive(Debug)]
struct Received {
    headers: http::HeaderMap,
    raw: Bytes,
    body: Value,
}

impl Received {
    fn record(&self) -> &Value {
        &self.body["Records"][0]
    }

    /// `(event name, key, size)`.
    fn event(&self) -> (String, String, u64) {
        let r = self.record();
        (
            r["eventName"].as_str().unwrap_or_default().to_string(),
            r["s3"]["object"]["key"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            r["s3"]["object"]["size"].as_u64().unwrap_or(u64::MAX),
        )
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    /// A receiver answering `status`, which first drops `refuse_first`
    /// connections without answering (a receiver that is down).
    async fn start(status: u16, refuse_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let refused = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if refused.fetch_add(1, Ordering::SeqCst) < refuse_first {
                    drop(stream);
                    continue;
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: http::Request<Incoming>| {
                            let tx = tx.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let raw = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                                let _ = tx.send(Received {
                                    headers: parts.headers,
                                    raw,
                                    body,
                                });
                                let mut response = http::Response::new(Full::new(Bytes::new()));
                                *response.status_mut() =
                                    http::StatusCode::from_u16(status).expect("status");
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            rx,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(EVENT_TIMEOUT, self.rx.recv())
            .await
            .expect("timed out waiting for a webhook POST")
            .expect("receiver channel open")
    }

    async fn next_event(&mut self) -> (String, String, u64) {
        self.next().await.event()
    }
}

fn created(key: &str, size: u64) -> (String, String, u64) {
    ("s3:ObjectCreated:Put".into(), key.into(), size)
}

fn removed(key: &str) -> (String, String, u64) {
    ("s3:ObjectRemoved:Delete".into(), key.into(), 0)
}

const ALL: [&str; 2] = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"];

on_every_backend!(
    kind: write_paths_produce_matching_events,
    rapid_overwrites_coalesce,
    receiver_outage_is_retried,
    signed_deliveries_verify,
    bucket_data_path_is_watched,
);

// ---------------------------------------------------------------- delivery

async fn write_paths_produce_matching_events(kind: Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(s) = start_kind(kind, dir.path(), s4_core::notify::COALESCE_WINDOW).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = s.bucket("ntfy").await;
    let mut all = Receiver::start(200, 0).await;
    let mut csv = Receiver::start(204, 0).await;
    let mut removals = Receiver::start(200, 0).await;
    s.configure(
        &bucket,
        json!([
            { "endpoint": all.url, "events": ALL },
            { "endpoint": csv.url, "events": ["s3:ObjectCreated:*"], "prefix": "data/", "suffix": ".csv" },
            { "endpoint": removals.url, "events": ["s3:ObjectRemoved:*"] },
        ]),
    )
    .await;

    // Upload, then a key outside the csv filter, then an overwrite.
    s.upload(&bucket, "data/a.csv", b"abc").await;
    assert_eq!(all.next_event().await, created("data/a.csv", 3));
    let first = csv.next().await;
    assert_eq!(first.event(), created("data/a.csv", 3));
    assert_eq!(first.record()["s3"]["bucket"]["name"], json!(bucket));
    assert_eq!(first.record()["eventVersion"], "2.1");
    assert_eq!(first.record()["eventSource"], "aws:s3");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("x-s4-delivery-attempt"), Some("1"));
    assert_eq!(first.header("x-s4-event-id").map(str::len), Some(36));
    assert_eq!(first.header("x-s4-signature"), None);
    s.upload(&bucket, "data/a.json", b"abcd").await;
    assert_eq!(all.next_event().await, created("data/a.json", 4));
    s.upload(&bucket, "data/a.csv", b"abcde").await;
    assert_eq!(all.next_event().await, created("data/a.csv", 5));
    assert_eq!(csv.next_event().await, created("data/a.csv", 5));

    // Delete of one key.
    s.delete_key(&bucket, "data/a.json").await;
    assert_eq!(all.next_event().await, removed("data/a.json"));
    assert_eq!(removals.next_event().await, removed("data/a.json"));

    // Folder delete: one event per deleted key.
    s.upload(&bucket, "dir/x", b"1").await;
    assert_eq!(all.next_event().await, created("dir/x", 1));
    s.upload(&bucket, "dir/y/z", b"22").await;
    assert_eq!(all.next_event().await, created("dir/y/z", 2));
    s.delete_key(&bucket, "dir").await;
    let want: BTreeSet<_> = [removed("dir/x"), removed("dir/y/z")].into();
    let got: BTreeSet<_> = [all.next_event().await, all.next_event().await].into();
    assert_eq!(got, want);
    let got: BTreeSet<_> = [removals.next_event().await, removals.next_event().await].into();
    assert_eq!(got, want);

    // Core writes (no HTTP route) are reported the same way.
    let b = s4_core::BucketName::try_from(bucket.as_str()).expect("bucket");
    let k = s4_core::ObjectKey::try_from("data/core.csv").expect("key");
    let body = futures::stream::iter([Ok(Bytes::from_static(b"123456"))]);
    s.s4.put_object(&b, &k, body, Default::default())
        .await
        .expect("core put");
    assert_eq!(all.next_event().await, created("data/core.csv", 6));
    assert_eq!(csv.next_event().await, created("data/core.csv", 6));

    // Markers: the next event of each receiver is the marker, so nothing else
    // (no duplicate, no filtered event) was delivered before it.
    s.upload(&bucket, "data/zz-end.csv", b"m").await;
    assert_eq!(all.next_event().await, created("data/zz-end.csv", 1));
    assert_eq!(csv.next_event().await, created("data/zz-end.csv", 1));
    s.delete_key(&bucket, "data/zz-end.csv").await;
    assert_eq!(all.next_event().await, removed("data/zz-end.csv"));
    assert_eq!(removals.next_event().await, removed("data/zz-end.csv"));

    // Dot keys never produce events.
    s.upload(&bucket, ".hidden", b"h").await;
    s.upload(&bucket, "after-hidden", b"ok").await;
    assert_eq!(all.next_event().await, created("after-hidden", 2));
    s.cleanup(&bucket).await;
}

async fn rapid_overwrites_coalesce(kind: Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    // A wider window than the default 200 ms keeps this robust on a loaded machine.
    let Some(s) = start_kind(kind, dir.path(), Duration::from_secs(1)).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = s.bucket("ntfy-co").await;
    let mut all = Receiver::start(200, 0).await;
    s.configure(&bucket, json!([{ "endpoint": all.url, "events": ALL }]))
        .await;
    for size in 1..=5usize {
        s.upload(&bucket, "hot.bin", &vec![b'x'; size]).await;
    }
    assert_eq!(all.next_event().await, created("hot.bin", 5));
    // Created then deleted quickly: the current state (absent) decides.
    s.upload(&bucket, "brief.bin", b"abc").await;
    s.delete_key(&bucket, "brief.bin").await;
    assert_eq!(all.next_event().await, removed("brief.bin"));
    s.upload(&bucket, "marker", b"m").await;
    assert_eq!(all.next_event().await, created("marker", 1));
    s.cleanup(&bucket).await;
}

async fn receiver_outage_is_retried(kind: Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(s) = start_kind(kind, dir.path(), s4_core::notify::COALESCE_WINDOW).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = s.bucket("ntfy-out").await;
    // Down for the first two attempts (connections dropped unanswered).
    let mut down = Receiver::start(200, 2).await;
    // Answers 503 every time: retried up to the limit, then given up.
    let mut failing = Receiver::start(503, 0).await;
    s.configure(
        &bucket,
        json!([
            { "endpoint": down.url, "events": ALL },
            { "endpoint": failing.url, "events": ALL },
        ]),
    )
    .await;
    s.upload(&bucket, "k.txt", b"hello").await;
    let got = down.next().await;
    assert_eq!(got.event(), created("k.txt", 5));
    assert_eq!(got.header("x-s4-delivery-attempt"), Some("3"));
    let mut ids = BTreeSet::new();
    for attempt in 1..=6 {
        let r = failing.next().await;
        assert_eq!(r.event(), created("k.txt", 5));
        assert_eq!(
            r.header("x-s4-delivery-attempt"),
            Some(attempt.to_string().as_str())
        );
        ids.insert(r.header("x-s4-event-id").unwrap_or_default().to_string());
    }
    assert_eq!(ids.len(), 1, "one event id for every attempt");
    // After giving up, the next event is delivered (attempt 1 of a new id).
    s.upload(&bucket, "next.txt", b"n").await;
    let r = failing.next().await;
    assert_eq!(r.event(), created("next.txt", 1));
    assert_eq!(r.header("x-s4-delivery-attempt"), Some("1"));
    assert!(!ids.contains(r.header("x-s4-event-id").unwrap_or_default()));
    assert_eq!(down.next_event().await, created("next.txt", 1));
    s.cleanup(&bucket).await;
}

async fn signed_deliveries_verify(kind: Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(s) = start_kind(kind, dir.path(), s4_core::notify::COALESCE_WINDOW).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = s.bucket("ntfy-sig").await;
    let mut rx = Receiver::start(200, 0).await;
    let secret = "whsec-test-123";
    s.configure(
        &bucket,
        json!([{ "endpoint": rx.url, "events": ALL, "secret": secret }]),
    )
    .await;
    s.upload(&bucket, "signed.bin", b"payload").await;
    let got = rx.next().await;
    assert_eq!(got.event(), created("signed.bin", 7));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(&got.raw);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got.header("x-s4-signature"),
        Some(format!("sha256={expected}").as_str())
    );
    s.cleanup(&bucket).await;
}

/// Another program writes `rel` under `bucket_dir`, then deletes it: `all` gets
/// one created event with the size, then one removed event.
async fn write_and_remove_out_of_band(
    all: &mut Receiver,
    bucket_dir: &Path,
    rel: &str,
    data: &[u8],
) {
    tokio::fs::write(bucket_dir.join(rel), data)
        .await
        .expect("write");
    assert_eq!(all.next_event().await, created(rel, data.len() as u64));
    tokio::fs::remove_file(bucket_dir.join(rel))
        .await
        .expect("remove");
    assert_eq!(all.next_event().await, removed(rel));
}

/// `BUCKET_DATA_PATH` (§14.5): another directory holding one sub-directory per
/// bucket (as a bundled storage engine keeps them) is watched on every backend;
/// the local backend's own data directory then is not.
async fn bucket_data_path_is_watched(kind: Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = dir.path().join("engine");
    let Some(s) = start(Setup {
        kind,
        data_dir: Some(dir.path().join("data")),
        bucket_data_path: Some(engine.clone()),
        store: dir.path().join("state/notifications.json"),
        coalesce: s4_core::notify::COALESCE_WINDOW,
    })
    .await
    else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = s.bucket("ntfy-bdp").await;
    // The engine's directory of the bucket exists before its first configuration.
    let bucket_dir = engine.join(&bucket);
    tokio::fs::create_dir_all(&bucket_dir).await.expect("mkdir");
    let mut all = Receiver::start(200, 0).await;
    s.configure(&bucket, json!([{ "endpoint": all.url, "events": ALL }]))
        .await;

    write_and_remove_out_of_band(&mut all, &bucket_dir, "oob.bin", b"hello").await;

    // The local backend's own bucket directory is not watched any more.
    let unwatched = s
        .data_dir
        .as_ref()
        .map(|d| d.join(&bucket).join("unwatched.txt"));
    if let Some(file) = &unwatched {
        tokio::fs::write(file, b"nobody sees this")
            .await
            .expect("write");
    }
    // S4's own write is reported once, and is the next event.
    s.upload(&bucket, "marker", b"m").await;
    assert_eq!(all.next_event().await, created("marker", 1));
    if let Some(file) = &unwatched {
        tokio::fs::remove_file(file).await.expect("remove");
    }
    s.cleanup(&bucket).await;
}

/// The daemon reads `BUCKET_DATA_PATH` (§22) and watches it: over the memory
/// backend (no directory of its own), a file another program writes into a
/// bucket's directory there is reported, then its deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_watches_bucket_data_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = dir.path().join("engine");
    let daemon = common::daemon::Daemon::start(
        dir.path(),
        &[
            ("S4_BACKEND", &"memory"),
            ("S4_DATA_DIR", &dir.path().join("data")),
            ("BUCKET_DATA_PATH", &engine),
            ("S4_S3_ENDPOINT", &"off"),
        ],
    );
    let api = daemon.api();
    let client = reqwest::Client::new();
    let bucket = s4_core::testing::unique_bucket("ntfy-daemon").to_string();
    let (status, body) = common::call_json(
        &client,
        reqwest::Method::POST,
        &format!("{api}/buckets"),
        Some(json!({ "bucketName": bucket })),
    )
    .await;
    assert_eq!(status, 200, "create bucket: {body}");
    let bucket_dir = engine.join(&bucket);
    tokio::fs::create_dir_all(&bucket_dir).await.expect("mkdir");
    let mut all = Receiver::start(200, 0).await;
    let (status, body) = common::call_json(
        &client,
        reqwest::Method::PUT,
        &format!("{api}/notifications/{bucket}"),
        Some(json!({ "notifications": [{ "endpoint": all.url, "events": ALL }] })),
    )
    .await;
    assert_eq!(status, 200, "PUT notifications: {body}");
    write_and_remove_out_of_band(&mut all, &bucket_dir, "from-engine.bin", b"engine").await;
}

// ---------------------------------------------------------------- local only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_changes_in_local_bucket_reported_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start_kind(Kind::Local, dir.path(), s4_core::notify::COALESCE_WINDOW)
        .await
        .expect("local server");
    let bucket = s.bucket("ntfy-oob").await;
    let mut all = Receiver::start(200, 0).await;
    s.configure(&bucket, json!([{ "endpoint": all.url, "events": ALL }]))
        .await;
    let bucket_dir = s.data_dir.clone().expect("data dir").join(&bucket);

    // Another program writes and deletes files in the bucket directory.
    tokio::fs::create_dir_all(bucket_dir.join("sub"))
        .await
        .expect("mkdir");
    write_and_remove_out_of_band(&mut all, &bucket_dir, "sub/oob.txt", b"hello").await;

    // Dot files and staging files never produce events.
    tokio::fs::write(bucket_dir.join(".dotfile"), b"x")
        .await
        .expect("write");
    tokio::fs::write(bucket_dir.join("staging#123"), b"x")
        .await
        .expect("write");
    // S4's own writes are reported once, not again by the watcher.
    s.upload(&bucket, "own.txt", b"own").await;
    assert_eq!(all.next_event().await, created("own.txt", 3));
    // ... but another program's overwrite of the same size right after is.
    tokio::fs::write(bucket_dir.join("own.txt"), b"ext")
        .await
        .expect("overwrite");
    assert_eq!(all.next_event().await, created("own.txt", 3));
    s.delete_key(&bucket, "own.txt").await;
    assert_eq!(all.next_event().await, removed("own.txt"));
    s.upload(&bucket, "own-folder/a/b.txt", b"ab").await;
    assert_eq!(all.next_event().await, created("own-folder/a/b.txt", 2));
    s.delete_key(&bucket, "own-folder").await;
    assert_eq!(all.next_event().await, removed("own-folder/a/b.txt"));
    tokio::fs::write(bucket_dir.join("zz-marker"), b"mm")
        .await
        .expect("write");
    assert_eq!(all.next_event().await, created("zz-marker", 2));

    for file in [".dotfile", "staging#123"] {
        tokio::fs::remove_file(bucket_dir.join(file))
            .await
            .expect("remove");
    }
    tokio::fs::remove_dir(bucket_dir.join("sub"))
        .await
        .expect("rmdir");
    s.cleanup(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_configured_before_it_exists_is_watched_once_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start_kind(Kind::Local, dir.path(), s4_core::notify::COALESCE_WINDOW)
        .await
        .expect("local server");
    let bucket = s4_core::testing::unique_bucket("ntfy-pre").to_string();
    let mut all = Receiver::start(200, 0).await;
    s.configure(&bucket, json!([{ "endpoint": all.url, "events": ALL }]))
        .await;
    let (status, body) = s
        .post_json("/buckets", json!({ "bucketName": bucket }))
        .await;
    assert_eq!(status, 200, "{body}");
    let bucket_dir = s.data_dir.clone().expect("data dir").join(&bucket);
    // A directory made out of band with a file written right away.
    tokio::fs::create_dir_all(bucket_dir.join("new/deeper"))
        .await
        .expect("mkdir");
    tokio::fs::write(bucket_dir.join("new/deeper/f.bin"), b"1234")
        .await
        .expect("write");
    assert_eq!(all.next_event().await, created("new/deeper/f.bin", 4));
    tokio::fs::remove_dir_all(bucket_dir.join("new"))
        .await
        .expect("rm");
    assert_eq!(all.next_event().await, removed("new/deeper/f.bin"));
    s.upload(&bucket, "marker", b"m").await;
    assert_eq!(all.next_event().await, created("marker", 1));
    s.cleanup(&bucket).await;
}

// ---------------------------------------------------------------- routes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_routes_validate_and_replace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start_kind(Kind::Memory, dir.path(), s4_core::notify::COALESCE_WINDOW)
        .await
        .expect("memory server");
    let path = "/notifications/my-bucket";
    assert_eq!(s.get(path).await, (200, json!({ "notifications": [] })));

    // Configurations are not validated against bucket existence; ids are kept or
    // assigned; a secret is never returned.
    let first = json!([
        { "id": "keep-me", "endpoint": "https://example.com/a", "events": ALL, "prefix": "data/", "secret": "s1" },
        { "endpoint": "http://example.com/b", "events": ["s3:ObjectRemoved:*"], "suffix": ".csv" },
    ]);
    s.configure("my-bucket", first).await;
    let (status, got) = s.get(path).await;
    assert_eq!(status, 200);
    let list = got["notifications"].as_array().expect("array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "keep-me");
    assert_eq!(list[0]["prefix"], "data/");
    assert_eq!(list[0]["secret"], "***REDACTED***");
    assert_eq!(list[0]["events"], json!(ALL));
    let assigned = list[1]["id"].as_str().expect("id");
    assert_eq!(assigned.len(), 36);
    assert!(list[1].get("secret").is_none());
    assert!(list[1].get("prefix").is_none());
    let stored = std::fs::read_to_string(&s.store).expect("store file");
    assert!(stored.contains("\"s1\""), "secret persisted: {stored}");

    // Replace semantics: the whole list is replaced; GET's redacted secret sent
    // back keeps the stored one.
    let mut again = list[0].clone();
    again["endpoint"] = json!("https://example.com/changed");
    s.configure("my-bucket", json!([again])).await;
    let (_, got) = s.get(path).await;
    assert_eq!(got["notifications"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        got["notifications"][0]["endpoint"],
        "https://example.com/changed"
    );
    let entries =
        s.s4.notifications()
            .list(&s4_core::BucketName::try_from("my-bucket").expect("name"))
            .await;
    assert_eq!(entries[0].secret.as_deref(), Some("s1"));

    // The validation table: 400 with the envelope, stored configuration unchanged.
    let before = s.get(path).await;
    let ok = json!({ "endpoint": "http://h/x", "events": ALL });
    let with = |field: &str, value: Value| {
        let mut e = ok.clone();
        e[field] = value;
        json!({ "notifications": [e] })
    };
    let without = |field: &str| {
        let mut e = ok.clone();
        e.as_object_mut().expect("object").remove(field);
        json!({ "notifications": [e] })
    };
    let bad_bodies = [
        json!({}),
        json!({ "notifications": "nope" }),
        json!({ "notifications": [1] }),
        json!([]),
        without("endpoint"),
        with("endpoint", json!("ftp://h/x")),
        with("endpoint", json!("http://")),
        with("endpoint", json!(42)),
        without("events"),
        with("events", json!([])),
        with("events", json!("s3:ObjectCreated:*")),
        with("events", json!(["s3:ObjectCreated:Put"])),
        with("events", json!(["s3:*"])),
        with("events", json!([1])),
        with("id", json!(7)),
        with("prefix", json!(null)),
        with("suffix", json!(["x"])),
        with("secret", json!(false)),
        with("secret", json!("***REDACTED***")),
    ];
    for body in bad_bodies {
        let (status, answer) = s.put_json(path, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"], "Bad Request", "{body} → {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, answer) = s
        .put_json("/notifications/Bad_Bucket", json!({ "notifications": [] }))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("Bad Request"))
    );
    let (status, _) = s.get("/notifications/x").await;
    assert_eq!(status, 400);
    // Malformed JSON and a 2 MiB body.
    let (status, _) = s
        .send(
            s.client
                .put(s.url(path))
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
    assert_eq!(status, 400);
    let big = format!(
        "{{\"notifications\":[],\"pad\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let head = format!(
        "PUT /api{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    );
    let mut conn = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let answer = common::raw_exchange(&mut conn, &head, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(s.get(path).await, before, "rejected PUTs changed nothing");

    // Delete: unknown id 404, then the entry, then the same id again.
    let (status, answer) = s.delete("/notifications/my-bucket/unknown-id").await;
    assert_eq!(
        (status, answer),
        (
            404,
            json!({ "error": "NotFound", "message": "Notification not found" })
        )
    );
    let (status, answer) = s.delete("/notifications/other-bucket/keep-me").await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("NotFound")));
    assert_eq!(
        s.delete("/notifications/my-bucket/keep-me").await,
        (
            200,
            json!({ "message": "Notification removed successfully" })
        )
    );
    assert_eq!(s.get(path).await, (200, json!({ "notifications": [] })));
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&s.store).expect("store")).expect("json");
    assert!(stored["buckets"].get("my-bucket").is_none(), "{stored}");
    assert_eq!(s.delete("/notifications/my-bucket/keep-me").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_write_failure_is_500() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"file, not a directory").expect("blocker");
    let s = start(Setup {
        kind: Kind::Memory,
        data_dir: None,
        bucket_data_path: None,
        store: blocker.join("notifications.json"),
        coalesce: s4_core::notify::COALESCE_WINDOW,
    })
    .await
    .expect("server");
    let (status, answer) = s
        .put_json(
            "/notifications/my-bucket",
            json!({ "notifications": [{ "endpoint": "http://h/x", "events": ALL }] }),
        )
        .await;
    assert_eq!(status, 500, "{answer}");
    assert!(answer["error"].is_string() && answer["message"].is_string());
    assert_eq!(
        s.get("/notifications/my-bucket").await,
        (200, json!({ "notifications": [] }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_persist_across_restart_and_go_with_the_bucket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rx = Receiver::start(200, 0).await;
    let bucket;
    {
        let s = start_kind(Kind::Local, dir.path(), s4_core::notify::COALESCE_WINDOW)
            .await
            .expect("server");
        bucket = s.bucket("ntfy-rs").await;
        s.configure(
            &bucket,
            json!([{ "id": "persisted", "endpoint": rx.url, "events": ALL, "secret": "k" }]),
        )
        .await;
        s.configure(
            "other-bucket",
            json!([{ "endpoint": rx.url, "events": ALL }]),
        )
        .await;
        // The old instance stops watching and delivering before the new one starts.
        s.s4.notifications().stop().await;
    }
    let s = start_kind(Kind::Local, dir.path(), s4_core::notify::COALESCE_WINDOW)
        .await
        .expect("restarted server");
    let (status, got) = s.get(&format!("/notifications/{bucket}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["notifications"][0]["id"], "persisted");
    assert_eq!(got["notifications"][0]["secret"], "***REDACTED***");
    // Watching is re-established at start-up: an out-of-band file is reported.
    let bucket_dir = s.data_dir.clone().expect("data dir").join(&bucket);
    tokio::fs::write(bucket_dir.join("after-restart.txt"), b"abc")
        .await
        .expect("write");
    let r = rx.next().await;
    assert_eq!(r.event(), created("after-restart.txt", 3));
    assert!(r.header("x-s4-signature").is_some());
    tokio::fs::remove_file(bucket_dir.join("after-restart.txt"))
        .await
        .expect("remove");
    assert_eq!(rx.next_event().await, removed("after-restart.txt"));

    // Deleting the bucket removes its configurations (and only its own).
    let (status, answer) = s.delete(&format!("/buckets/{bucket}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        s.get(&format!("/notifications/{bucket}")).await,
        (200, json!({ "notifications": [] }))
    );
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&s.store).expect("store")).expect("json");
    assert!(stored["buckets"].get(&bucket).is_none(), "{stored}");
    assert!(stored["buckets"].get("other-bucket").is_some(), "{stored}");
    // A failed bucket delete keeps them.
    let (status, _) = s.delete("/buckets/other-bucket").await;
    assert_eq!(status, 404);
    assert_eq!(
        s.get("/notifications/other-bucket").await.1["notifications"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_endpoint_route() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start_kind(Kind::Memory, dir.path(), s4_core::notify::COALESCE_WINDOW)
        .await
        .expect("server");
    let mut ok = Receiver::start(200, 0).await;
    let (status, answer) = s
        .post_json(
            "/notifications/test-endpoint",
            json!({ "endpoint": ok.url }),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({ "success": true, "statusCode": 200, "message": "Endpoint responded with status 200" })
        )
    );
    let sample = ok.next().await;
    assert_eq!(sample.header("content-type"), Some("application/json"));
    let record = sample.record();
    assert_eq!(record["eventName"], "s3:TestEvent");
    assert_eq!(record["eventVersion"], "2.1");
    assert_eq!(record["s3"]["bucket"]["name"], "test-bucket");
    assert_eq!(record["s3"]["object"]["key"], "test-object.txt");
    assert_eq!(record["s3"]["object"]["size"], 0);

    let missing = Receiver::start(404, 0).await;
    let (status, answer) = s
        .post_json(
            "/notifications/test-endpoint",
            json!({ "endpoint": missing.url }),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({ "success": true, "statusCode": 404,
                    "message": "Endpoint responded with status 404",
                    "warning": "Endpoint returned non-success status 404" })
        )
    );

    // A port nobody listens on: refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (status, answer) = s
        .post_json(
            "/notifications/test-endpoint",
            json!({ "endpoint": format!("http://{closed}/hook") }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["success"], false);
    assert_eq!(answer["error"], "EndpointUnreachable");
    let message = answer["message"].as_str().expect("message");
    assert!(
        message.starts_with("Failed to reach endpoint: "),
        "{message}"
    );

    for body in [
        json!({}),
        json!({ "endpoint": "ftp://x" }),
        json!({ "endpoint": 5 }),
    ] {
        let (status, answer) = s.post_json("/notifications/test-endpoint", body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("Bad Request"))
        );
    }
}

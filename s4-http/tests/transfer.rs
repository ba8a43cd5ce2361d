//! Transfer routes over real HTTP (§15): create, SSE progress, details, conflicts,
//! validation, tickets, cancel + cleanup, and the global concurrency limit observed
//! through a wrapper backend whose reads can be held open by the test.

mod common;

use common::on_every_backend;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use s4_core::location::{Locations, LocationsConfig};
use s4_core::storage::{BucketListing, CreatedBucket, MemoryBackend, Page, PageRequest};
use s4_core::{Backend, BucketName};
use serde_json::{json, Value};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(60);

async fn locations() -> (Locations, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = Locations::new(LocationsConfig::default().with_paths([dir.path().to_path_buf()])).await;
    (l, dir)
}

async fn progress_events(s: &TestServer, job: &str) -> Vec<Value> {
    let response = s.get(&format!("/transfer/progress/{job}")).await;
    sse_events(response, WAIT).await
}

async fn send_json(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = s.client.request(method, s.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn bucket_keys(s: &TestServer, bucket: &str) -> BTreeSet<String> {
    let b = BucketName::try_from(bucket).expect("bucket");
    s4_core::testing::all_keys(&s.s4, &b, "")
        .await
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------- every backend

on_every_backend!(
    kind: transfer_over_http);

async fn transfer_over_http(kind: Kind) {
    let (locations, dir) = locations().await;
    let Some(s) = start_kind_with_locations(kind, locations).await else {
        return;
    };
    let bucket = s.bucket("trh").await;
    let weights = s4_core::testing::pattern(200 << 10, 5).to_vec();
    for (key, data) in [
        ("models/config.json", b"{}".to_vec()),
        ("models/weights/a b ü.bin", weights.clone()),
        ("models/weights/zero.bin", Vec::new()),
    ] {
        let (status, body) = s.upload(&bucket, key, data).await;
        assert_eq!(status, 200, "{body}");
    }
    let request = json!({
        "source": {"type": "s3", "locationId": bucket, "path": "models"},
        "destination": {"type": "local", "locationId": "local-0", "path": "/backup/"},
        "items": [{"path": "config.json", "type": "file"}, {"path": "weights/", "type": "directory"}],
        "conflictResolution": "skip"
    });
    let (status, created) = s.post_json("/transfer", request.clone()).await;
    assert_eq!(status, 200, "{created}");
    let job = created["jobId"].as_str().expect("jobId").to_string();
    let parts: Vec<&str> = job.split('-').collect();
    assert!(parts.len() == 3 && parts[0] == "transfer", "{job}");
    assert_eq!(created["sseUrl"], format!("/transfer/progress/{job}"));
    assert_eq!(created["fileCount"], 3);
    assert_eq!(created["totalSize"], 2 + weights.len());

    let events = progress_events(&s, &job).await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete", "{events:#?}");
    assert_eq!(last["status"], "completed");
    assert_eq!(last["job"]["status"], "completed");
    assert_eq!(last["progress"]["percentage"], 100);
    assert_eq!(last["currentFile"], Value::Null);
    assert_eq!(last["job"]["filesCompleted"], 3);
    assert_eq!(last["job"]["errors"], json!([]));
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e["type"] == "progress"));
    for e in &events {
        for field in [
            "type",
            "jobId",
            "status",
            "progress",
            "files",
            "job",
            "currentFile",
        ] {
            assert!(e.get(field).is_some(), "{field} in {e}");
        }
    }
    assert_eq!(
        last["files"][0],
        json!({"file": "local:local-0/backup/config.json", "loaded": 2, "total": 2, "status": "completed"})
    );
    // Files on disk.
    let read = |rel: &str| std::fs::read(dir.path().join("backup").join(rel)).ok();
    assert_eq!(read("config.json"), Some(b"{}".to_vec()));
    assert_eq!(read("weights/a b ü.bin"), Some(weights.clone()));
    assert_eq!(read("weights/zero.bin"), Some(Vec::new()));

    // A late listener gets one terminal snapshot, then the stream ends.
    let late = progress_events(&s, &job).await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["type"], "complete");

    // Details.
    let (status, details) = s.get_json(&format!("/transfer/{job}")).await;
    assert_eq!(status, 200);
    assert_eq!(details["type"], "cross-storage");
    assert_eq!(details["status"], "completed");
    assert_eq!(
        details["files"][0]["sourcePath"],
        format!("s3:{bucket}/models/config.json")
    );
    assert_eq!(
        details["files"][1]["destinationPath"],
        "local:local-0/backup/weights/a b ü.bin"
    );
    for field in ["createdAt", "startedAt", "completedAt"] {
        assert!(
            details[field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field}"
        );
    }

    // Terminal: cancel changes nothing, cleanup refuses.
    let (status, body) = send_json(
        &s,
        reqwest::Method::POST,
        &format!("/transfer/cancel/{job}"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"cancelled": false})));
    let (status, body) = send_json(
        &s,
        reqwest::Method::POST,
        &format!("/transfer/cleanup/{job}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "InvalidStatus", "message": "Job must be cancelled to cleanup files"})
        )
    );

    // Check-conflicts now sees everything at the destination.
    let mut check = request.clone();
    check
        .as_object_mut()
        .map(|m| m.remove("conflictResolution"));
    let (status, report) = s.post_json("/transfer/check-conflicts", check).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"conflicts": ["config.json", "weights/a b ü.bin", "weights/zero.bin"], "nonConflicting": []})
    );

    // And back: local → bucket, renaming on conflict.
    let (status, created) = s
        .post_json(
            "/transfer",
            json!({
                "source": {"type": "local", "locationId": "local-0", "path": "backup"},
                "destination": {"type": "s3", "locationId": bucket, "path": "models"},
                "items": [{"path": "config.json", "type": "file"}],
                "conflictResolution": "rename"
            }),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job = created["jobId"].as_str().expect("jobId").to_string();
    let events = progress_events(&s, &job).await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete");
    assert_eq!(
        last["files"][0]["file"],
        format!("s3:{bucket}/models/config-1.json")
    );
    assert!(bucket_keys(&s, &bucket)
        .await
        .contains("models/config-1.json"));
    s.remove_bucket(&bucket).await;
}

// ---------------------------------------------------------------- server-side copy

/// Bucket A → bucket B on one S3 engine (Garage) through `POST /api/transfer`: the
/// engine copies the object (the backend's counter moves, S4 reads no byte), with
/// the bytes, content type and SSE sequence of a streamed copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn bucket_to_bucket_is_server_side_on_s3() {
    let Some(config) = s4_core::testing::s3_test_config() else {
        return;
    };
    let backend = Arc::new(s4_core::storage::S3Backend::new(config).expect("S3 backend"));
    let s = start_with_backend(
        Arc::clone(&backend) as Arc<dyn Backend>,
        Locations::disabled(),
        |_| {},
    )
    .await;
    let a = s.bucket("ssh").await;
    let b = s.bucket("ssi").await;
    let data = s4_core::testing::pattern(700 << 10, 8).to_vec();
    let (status, body) = s.upload(&a, "models/config.json", data.clone()).await;
    assert_eq!(status, 200, "{body}");
    let key = s4_core::ObjectKey::try_from("models/config.json").expect("key");
    let source =
        s.s4.head_object(&BucketName::try_from(a.as_str()).expect("bucket"), &key)
            .await
            .expect("head source");
    let (status, created) = s
        .post_json(
            "/transfer",
            bucket_to_bucket(&a, &b, &["models/config.json"], "skip"),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job = created["jobId"].as_str().expect("id").to_string();
    let events = progress_events(&s, &job).await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete", "{events:#?}");
    assert_eq!(
        last["files"][0],
        json!({"file": format!("s3:{b}/models/config.json"), "loaded": data.len(), "total": data.len(), "status": "completed"})
    );
    assert_eq!(
        backend.server_copy_stats().objects,
        1,
        "copied by the engine"
    );
    let b_name = BucketName::try_from(b.as_str()).expect("bucket");
    let copy = s.s4.head_object(&b_name, &key).await.expect("head copy");
    assert_eq!(copy.content_type, source.content_type);
    assert!(copy.content_type.is_some());
    let mut object =
        s.s4.get_object(&b_name, &key, s4_core::GetObjectOptions::default())
            .await
            .expect("read copy");
    let mut got = Vec::new();
    while let Some(chunk) = object.body.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    assert!(got == data, "bytes equal");
    s.remove_bucket(&a).await;
    s.remove_bucket(&b).await;
}

// ---------------------------------------------------------------- validation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_table_and_unknown_jobs() {
    let (locations, dir) = locations().await;
    let s = start_with_locations(locations, |_| {}).await;
    let bucket = s.bucket("trv").await;
    let good = json!({
        "source": {"type": "s3", "locationId": bucket, "path": ""},
        "destination": {"type": "local", "locationId": "local-0", "path": "out"},
        "items": [{"path": "a.txt", "type": "file"}],
        "conflictResolution": "overwrite"
    });
    let with = |pointer: &str, value: Option<Value>| {
        let mut body = good.clone();
        let (parent, leaf) = pointer.rsplit_once('/').expect("pointer");
        let target = if parent.is_empty() {
            &mut body
        } else {
            body.pointer_mut(parent).expect("parent")
        };
        match value {
            Some(v) => target[leaf] = v,
            None => {
                target.as_object_mut().map(|m| m.remove(leaf));
            }
        }
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with("/source", None),
            "body must have required property 'source'",
        ),
        (
            with("/destination", None),
            "body must have required property 'destination'",
        ),
        (
            with("/items", None),
            "body must have required property 'items'",
        ),
        (
            with("/items", Some(json!([]))),
            "body/items must NOT have fewer than 1 items",
        ),
        (
            with("/source/type", Some(json!("ftp"))),
            "body/source/type must be equal to one of the allowed values",
        ),
        (
            with("/items/0/type", Some(json!("link"))),
            "body/items/0/type must be equal to one of the allowed values",
        ),
        (
            with("/items/0/path", Some(json!(""))),
            "body/items/0/path must NOT have fewer than 1 characters",
        ),
        (
            with("/conflictResolution", Some(json!("merge"))),
            "body/conflictResolution must be equal to one of the allowed values",
        ),
        (
            with("/conflictResolution", None),
            "body must have required property 'conflictResolution'",
        ),
        (
            with("/destination/locationId", Some(json!(""))),
            "body/destination/locationId must NOT have fewer than 1 characters",
        ),
        (
            with("/items/0/path", Some(json!("../../etc/passwd"))),
            "Invalid file path detected (path traversal attempt): ../../etc/passwd",
        ),
        (
            with("/items/0/path", Some(json!("/etc/passwd"))),
            "Invalid file path detected (path traversal attempt): /etc/passwd",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = s.post_json("/transfer", body).await;
        assert_eq!(
            (status, answer),
            (400, json!({"error": "Bad Request", "message": message})),
        );
    }
    // 2 MiB body.
    let big = json!({"items": [{"path": "x".repeat(2 << 20), "type": "file"}]});
    let (status, answer) = s.post_json("/transfer", big).await;
    assert_eq!(status, 413, "{answer}");
    // Expansion failure: 500 with the message in both fields.
    let (status, answer) = s.post_json("/transfer", good.clone()).await;
    assert_eq!(
        (status, answer),
        (
            500,
            json!({"error": "File not found in S3: a.txt", "message": "File not found in S3: a.txt"})
        )
    );
    let mut check = good.clone();
    check
        .as_object_mut()
        .map(|m| m.remove("conflictResolution"));
    let (status, answer) = s.post_json("/transfer/check-conflicts", check).await;
    assert_eq!(
        (status, answer),
        (
            500,
            json!({"error": "Internal Server Error", "message": "File not found in S3: a.txt"})
        )
    );
    // An empty directory: nothing to transfer.
    let (status, answer) = s
        .post_json(
            "/transfer",
            with(
                "/items",
                Some(json!([{"path": "nothing", "type": "directory"}])),
            ),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            400,
            json!({"error": "Bad Request", "message": "Selected items contain no files to transfer"})
        )
    );
    // A local destination outside its location, or an unknown location.
    let (status, answer) = s
        .post_json(
            "/transfer",
            with("/destination/path", Some(json!("../escape"))),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = s
        .post_json(
            "/transfer",
            with("/destination/locationId", Some(json!("local-9"))),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    // Nothing was written for any rejected request.
    assert!(bucket_keys(&s, &bucket).await.is_empty());
    assert!(!dir.path().join("out").exists());
    assert!(s.s4.transfers().job_ids().is_empty());

    // Unknown jobs.
    let unknown = "transfer-1-999999";
    let (status, body) = s.get_json(&format!("/transfer/{unknown}")).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "Job not found", "message": "Job not found"})
        )
    );
    let (status, body) = send_json(
        &s,
        reqwest::Method::DELETE,
        &format!("/transfer/{unknown}"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"cancelled": false})));
    let (status, body) = send_json(
        &s,
        reqwest::Method::POST,
        &format!("/transfer/{unknown}/cleanup"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "Job not found", "message": "Job not found"})
        )
    );
    let events = progress_events(&s, unknown).await;
    assert_eq!(
        events,
        vec![json!({"type": "error", "error": "Job not found"})]
    );
    s.remove_bucket(&bucket).await;
}

// ---------------------------------------------------------------- tickets

fn auth_config() -> s4_core::auth::AuthConfig {
    let vars = [
        ("UI_USERNAME", "admin"),
        ("UI_PASSWORD", "pw"),
        ("JWT_SECRET", "transfer-test-secret-transfer-test-secret"),
    ];
    s4_core::auth::AuthConfig::from_lookup(&move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_tickets_are_single_use_and_scoped() {
    let s = start_with(Kind::Memory, |c| c.auth = auth_config())
        .await
        .expect("server");
    let (status, login) = s
        .post_json(
            "/auth/login",
            json!({"username": "admin", "password": "pw"}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let jwt = login["token"].as_str().expect("token").to_string();
    let authed = |method: reqwest::Method, path: &str| {
        s.client.request(method, s.url(path)).bearer_auth(&jwt)
    };
    let bucket = s4_core::testing::fresh_bucket(&s.s4, "trk").await;
    s.s4.put_object(
        &bucket,
        &s4_core::ObjectKey::try_from("a.txt").expect("key"),
        futures::stream::iter([Ok(Bytes::from_static(b"abc"))]),
        Default::default(),
    )
    .await
    .expect("put");
    let mut jobs = Vec::new();
    for path in ["one", "two"] {
        let response = authed(reqwest::Method::POST, "/transfer")
            .json(&json!({
                "source": {"type": "s3", "locationId": bucket.as_str(), "path": ""},
                "destination": {"type": "s3", "locationId": bucket.as_str(), "path": path},
                "items": [{"path": "a.txt", "type": "file"}],
                "conflictResolution": "overwrite"
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        jobs.push(body["jobId"].as_str().expect("id").to_string());
    }
    let ticket = |job: String| {
        let request = authed(reqwest::Method::POST, "/auth/sse-ticket")
            .json(&json!({"resource": job, "resourceType": "transfer"}));
        async move {
            let body: Value = request
                .send()
                .await
                .expect("ticket")
                .json()
                .await
                .expect("json");
            body["ticket"].as_str().expect("ticket").to_string()
        }
    };
    // Without credentials: refused.
    let response = s.get(&format!("/transfer/progress/{}", jobs[0])).await;
    assert_eq!(response.status(), 401);
    let t = ticket(jobs[0].clone()).await;
    // For another job: refused, and left usable.
    let response = s
        .get(&format!("/transfer/progress/{}?ticket={t}", jobs[1]))
        .await;
    assert_eq!(response.status(), 401);
    let response = s
        .get(&format!("/transfer/progress/{}?ticket={t}", jobs[0]))
        .await;
    assert_eq!(response.status(), 200);
    let events = tokio::time::timeout(WAIT, sse_until(response, |_| false))
        .await
        .expect("ends");
    assert_eq!(events.last().expect("event")["type"], "complete");
    let response = s
        .get(&format!("/transfer/progress/{}?ticket={t}", jobs[0]))
        .await;
    assert_eq!(response.status(), 401, "single use");
    s4_core::testing::remove_bucket(&s.s4, &bucket).await;
}

// ---------------------------------------------------------------- gated backend

/// Counts reads in flight of keys containing `slow` and, while the gate is closed,
/// holds each of them open after its data (before the end of the stream).
#[derive(Debug)]
struct Gate {
    open: watch::Sender<bool>,
    active: watch::Sender<usize>,
    max: AtomicUsize,
    /// Server-side copies (keys with `servercopy`) that wrote their destination.
    landed: watch::Sender<usize>,
}

impl Gate {
    fn new(open: bool) -> Arc<Self> {
        Arc::new(Gate {
            open: watch::channel(open).0,
            active: watch::channel(0).0,
            max: AtomicUsize::new(0),
            landed: watch::channel(0).0,
        })
    }

    async fn wait_active(&self, n: usize) {
        let mut rx = self.active.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|a| *a >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} reads in flight"))
            .expect("gate alive");
    }
}

struct ActiveRead(Arc<Gate>);

impl ActiveRead {
    fn new(gate: Arc<Gate>) -> Self {
        gate.active.send_modify(|a| {
            *a += 1;
            gate.max.fetch_max(*a, Ordering::SeqCst);
        });
        ActiveRead(gate)
    }
}

impl Drop for ActiveRead {
    fn drop(&mut self) {
        self.0.active.send_modify(|a| *a -= 1);
    }
}

#[derive(Debug)]
struct GatedStore {
    inner: Arc<dyn ObjectStore>,
    gate: Arc<Gate>,
}

impl fmt::Display for GatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gated({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for GatedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            return self.inner.get_opts(location, options).await;
        }
        let result = self.inner.get_opts(location, options).await?;
        let slow = location.as_ref().contains("slow");
        // Only reads of `slow` keys are counted (and held).
        let guard = slow.then(|| ActiveRead::new(Arc::clone(&self.gate)));
        let gate = Arc::clone(&self.gate);
        let body = match result.payload {
            GetResultPayload::Stream(s) => s,
            GetResultPayload::File(..) => unreachable!("memory backend streams"),
        };
        let tail = futures::stream::once(async move {
            if slow {
                let mut open = gate.open.subscribe();
                let _ = open.wait_for(|o| *o).await;
            }
            drop(guard);
            None
        })
        .filter_map(futures::future::ready);
        Ok(GetResult {
            payload: GetResultPayload::Stream(body.chain(tail).boxed()),
            ..result
        })
    }
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct GatedBackend {
    inner: MemoryBackend,
    gate: Arc<Gate>,
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Backend for GatedBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn list_buckets(&self) -> s4_core::Result<BucketListing> {
        self.inner.list_buckets().await
    }
    async fn head_bucket(&self, bucket: &BucketName) -> s4_core::Result<()> {
        self.inner.head_bucket(bucket).await
    }
    async fn create_bucket(&self, bucket: &BucketName) -> s4_core::Result<CreatedBucket> {
        self.inner.create_bucket(bucket).await
    }
    async fn delete_bucket(&self, bucket: &BucketName) -> s4_core::Result<()> {
        self.inner.delete_bucket(bucket).await
    }
    async fn store(&self, bucket: &BucketName) -> s4_core::Result<Arc<dyn ObjectStore>> {
        Ok(Arc::new(GatedStore {
            inner: self.inner.store(bucket).await?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn supports_attributes(&self) -> bool {
        self.inner.supports_attributes()
    }
    fn allows_key_folder_overlap(&self) -> bool {
        self.inner.allows_key_folder_overlap()
    }
    async fn discard_write_traces(&self, bucket: &BucketName, key: &str) {
        self.inner.discard_write_traces(bucket, key).await
    }
    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> s4_core::Result<Page> {
        self.inner.list_page(bucket, request).await
    }
    fn holds_any_key(&self) -> bool {
        self.inner.holds_any_key()
    }
    fn part_size(&self) -> usize {
        self.inner.part_size()
    }
    async fn confine(&self, bucket: &BucketName, key: &s4_core::ObjectKey) -> s4_core::Result<()> {
        self.inner.confine(bucket, key).await
    }
    async fn get_raw(
        &self,
        bucket: &BucketName,
        key: &s4_core::ObjectKey,
        range: Option<std::ops::Range<u64>>,
        head: bool,
    ) -> s4_core::Result<s4_core::storage::RawObject> {
        self.inner.get_raw(bucket, key, range, head).await
    }
    async fn delete_raw(
        &self,
        bucket: &BucketName,
        key: &s4_core::ObjectKey,
    ) -> s4_core::Result<()> {
        self.inner.delete_raw(bucket, key).await
    }
    async fn get_object_tags(
        &self,
        bucket: &BucketName,
        key: &s4_core::ObjectKey,
    ) -> s4_core::Result<Vec<s4_core::storage::Tag>> {
        self.inner.get_object_tags(bucket, key).await
    }

    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &s4_core::ObjectKey,
        tags: &[s4_core::storage::Tag],
    ) -> s4_core::Result<()> {
        self.inner.put_object_tags(bucket, key, tags).await
    }

    async fn delete_object_tags(
        &self,
        bucket: &BucketName,
        key: &s4_core::ObjectKey,
    ) -> s4_core::Result<()> {
        self.inner.delete_object_tags(bucket, key).await
    }

    fn data_dir(&self) -> Option<&std::path::Path> {
        self.inner.data_dir()
    }

    async fn copy_object(
        &self,
        from: (&BucketName, &s4_core::ObjectKey),
        to: (&BucketName, &s4_core::ObjectKey),
        options: &s4_core::storage::ServerCopyOptions,
    ) -> s4_core::Result<s4_core::storage::ServerCopy> {
        if !to.1.as_str().contains("servercopy") {
            return self.inner.copy_object(from, to, options).await;
        }
        // A server-side copy as an engine does it (one CopyObject): counted as a
        // read in flight while the gate is closed, then it writes the whole
        // destination whatever the cancel says, and reports it.
        let active = ActiveRead::new(Arc::clone(&self.gate));
        let mut open = self.gate.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
        let source = self.inner.store(from.0).await?;
        let data = source
            .get(&Path::from(from.1.as_str()))
            .await?
            .bytes()
            .await?;
        let size = data.len() as u64;
        let target = self.inner.store(to.0).await?;
        target
            .put(&Path::from(to.1.as_str()), PutPayload::from(data))
            .await?;
        drop(active);
        self.gate.landed.send_modify(|n| *n += 1);
        Ok(s4_core::storage::ServerCopy::Copied { size })
    }
}

async fn gated_server(open: bool) -> (TestServer, Arc<Gate>) {
    let gate = Gate::new(open);
    let backend = GatedBackend {
        inner: MemoryBackend::new(),
        gate: Arc::clone(&gate),
    };
    let s = start_with_backend(Arc::new(backend), Locations::disabled(), |_| {}).await;
    (s, gate)
}

fn bucket_to_bucket(src: &str, dst: &str, items: &[&str], conflict: &str) -> Value {
    json!({
        "source": {"type": "s3", "locationId": src, "path": ""},
        "destination": {"type": "s3", "locationId": dst, "path": ""},
        "items": items.iter().map(|p| json!({"path": p, "type": "file"})).collect::<Vec<_>>(),
        "conflictResolution": conflict
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_large_file_then_cleanup_exactly() {
    let (s, gate) = gated_server(false).await;
    let src = s.bucket("trs").await;
    let dst = s.bucket("trd").await;
    let big = s4_core::testing::pattern(s4_core::PART_SIZE + (3 << 20), 9).to_vec();
    for (bucket, key, data) in [
        (&src, "small.txt", b"small".to_vec()),
        (&src, "slow-big.bin", big),
        (&src, "never.txt", b"never".to_vec()),
        (&dst, "keep.txt", b"keep".to_vec()),
    ] {
        let (status, body) = s.upload(bucket, key, data).await;
        assert_eq!(status, 200, "{body}");
    }
    // One copy at a time: small, then the big one (held open), never.txt waits.
    s.s4.transfers().set_max_concurrent(1);
    let (status, created) = s
        .post_json(
            "/transfer",
            bucket_to_bucket(
                &src,
                &dst,
                &["small.txt", "slow-big.bin", "never.txt"],
                "overwrite",
            ),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job = created["jobId"].as_str().expect("id").to_string();
    let listener = s.get(&format!("/transfer/progress/{job}")).await;
    // The big file's read is in flight (its bytes went into a multipart upload).
    gate.wait_active(1).await;
    let (status, body) = send_json(
        &s,
        reqwest::Method::DELETE,
        &format!("/transfer/{job}"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"cancelled": true})));
    let events = tokio::time::timeout(WAIT, sse_until(listener, |_| false))
        .await
        .expect("listener ends");
    let last = events.last().expect("events");
    assert_eq!(last["type"], "cancelled");
    assert_eq!(last["files"][0]["status"], "completed");
    for i in [1, 2] {
        assert_eq!(last["files"][i]["status"], "error");
        assert_eq!(last["files"][i]["error"], "Cancelled by user");
    }
    assert_eq!(last["job"]["errors"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        bucket_keys(&s, &dst).await,
        BTreeSet::from(["keep.txt".to_string(), "small.txt".to_string()]),
        "no partial big file"
    );
    let (status, body) = send_json(
        &s,
        reqwest::Method::POST,
        &format!("/transfer/{job}/cleanup"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "All files cleaned up successfully", "filesDeleted": 2})
        )
    );
    assert_eq!(
        bucket_keys(&s, &dst).await,
        BTreeSet::from(["keep.txt".to_string()]),
        "pre-existing data untouched"
    );
    assert_eq!(bucket_keys(&s, &src).await.len(), 3, "source untouched");
    let (_, details) = s.get_json(&format!("/transfer/{job}")).await;
    assert_eq!(
        details["status"], "cancelled",
        "still queryable after cleanup"
    );
    gate.open.send_replace(true);
    s.remove_bucket(&src).await;
    s.remove_bucket(&dst).await;
}

/// A server-side copy is one request the engine finishes whatever S4 does: when a
/// cancel comes while it is in flight, the copy still lands, and the engine then
/// removes the object it created (the destination did not exist: `rename`), so a
/// cancelled file leaves nothing even before a cleanup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_copy_landing_after_cancel_is_removed() {
    let (s, gate) = gated_server(false).await;
    let src = s.bucket("tsc").await;
    let dst = s.bucket("tsd").await;
    let (status, body) = s
        .upload(&src, "servercopy.bin", b"copied server-side".to_vec())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, created) = s
        .post_json(
            "/transfer",
            bucket_to_bucket(&src, &dst, &["servercopy.bin"], "rename"),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let job = created["jobId"].as_str().expect("id").to_string();
    let mut changes = s.s4.subscribe_changes();
    // The copy is in flight on the "engine".
    gate.wait_active(1).await;
    let (status, body) = send_json(
        &s,
        reqwest::Method::DELETE,
        &format!("/transfer/{job}"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"cancelled": true})));
    gate.open.send_replace(true);
    let mut landed = gate.landed.subscribe();
    tokio::time::timeout(WAIT, landed.wait_for(|n| *n >= 1))
        .await
        .expect("the copy lands after the cancel")
        .expect("gate alive");
    // The engine removes it: its change events say created, then removed.
    let key = s4_core::ObjectKey::try_from("servercopy.bin").expect("key");
    let removed = tokio::time::timeout(WAIT, async {
        let mut created = false;
        loop {
            let change = changes.recv().await.expect("change events");
            if change.key != key {
                continue;
            }
            match change.kind {
                s4_core::ChangeKind::Created { .. } => created = true,
                s4_core::ChangeKind::Removed => break created,
            }
        }
    })
    .await
    .expect("the landed copy is removed");
    assert!(removed, "created, then removed");
    assert_eq!(bucket_keys(&s, &dst).await, BTreeSet::new(), "nothing left");
    let (_, details) = s.get_json(&format!("/transfer/{job}")).await;
    assert_eq!(details["status"], "cancelled");
    s.remove_bucket(&src).await;
    s.remove_bucket(&dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_holds_and_raising_it_starts_waiting_files() {
    let (s, gate) = gated_server(true).await;
    let src = s.bucket("trl").await;
    let dst = s.bucket("trm").await;
    let names = ["slow-1", "slow-2", "slow-3", "slow-4"];
    for name in names {
        let (status, _) = s.upload(&src, name, name.as_bytes().to_vec()).await;
        assert_eq!(status, 200);
    }
    // Limit 1, reads flowing: never more than one copy at a time.
    s.s4.transfers().set_max_concurrent(1);
    let (_, created) = s
        .post_json(
            "/transfer",
            bucket_to_bucket(&src, &dst, &names, "overwrite"),
        )
        .await;
    let job = created["jobId"].as_str().expect("id").to_string();
    let events = progress_events(&s, &job).await;
    assert_eq!(events.last().expect("event")["type"], "complete");
    assert_eq!(gate.max.load(Ordering::SeqCst), 1, "limit 1 observed");

    // Limit 1, reads held: one runs, three wait; raising the limit starts them.
    gate.open.send_replace(false);
    let (_, created) = s
        .post_json(
            "/transfer",
            bucket_to_bucket(&src, &dst, &names, "overwrite"),
        )
        .await;
    let job = created["jobId"].as_str().expect("id").to_string();
    gate.wait_active(1).await;
    let (_, details) = s.get_json(&format!("/transfer/{job}")).await;
    let statuses: Vec<&str> = details["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["transferring", "queued", "queued", "queued"]);
    assert_eq!(details["status"], "active");
    assert_eq!(gate.max.load(Ordering::SeqCst), 1);
    s.s4.transfers().set_max_concurrent(4);
    gate.wait_active(4).await;
    assert_eq!(s.s4.transfers().running_copies(), 4);
    gate.open.send_replace(true);
    let events = progress_events(&s, &job).await;
    assert_eq!(events.last().expect("event")["type"], "complete");
    assert_eq!(bucket_keys(&s, &dst).await.len(), 4);
    s.remove_bucket(&src).await;
    s.remove_bucket(&dst).await;
}

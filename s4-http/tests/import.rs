//! HuggingFace import over real HTTP (API §13): a fake Hub (with a separate CDN
//! host) started in the test, imports into a bucket on every backend and into a
//! local location with progress over SSE, include/exclude and revision, sha256
//! verification, the Hub's errors, validation, and cancel + cleanup mid-download.

mod common;

use common::on_every_backend;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::{b64, call_json, relative_files, sse_events, Kind, Running};
use s4_core::fakes::{FakeHub, GOOD_TOKEN};
use s4_core::{BucketName, S4};
use s4_http::HttpConfig;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

struct Server {
    base: String,
    client: reqwest::Client,
    s4: S4,
    hub: FakeHub,
    local_root: PathBuf,
    _running: Running,
    _dirs: Vec<tempfile::TempDir>,
}

/// A server over `kind` whose `HF_ENDPOINT` is a fresh fake Hub and whose
/// `local-0` is a temporary directory; `None` for S3 without its environment.
async fn start(kind: Kind) -> Option<Server> {
    start_at(kind, None).await
}

/// As [`start`], with `HF_ENDPOINT` set to `endpoint` instead of the fake Hub.
async fn start_at(kind: Kind, endpoint: Option<String>) -> Option<Server> {
    let hub = FakeHub::start().await;
    let endpoint = endpoint.unwrap_or_else(|| hub.url());
    let served = common::s4_with_location(kind, &endpoint, HttpConfig::default()).await?;
    Some(Server {
        base: served.running.base(),
        client: reqwest::Client::new(),
        s4: served.s4,
        hub,
        local_root: served.local_root,
        _running: served.running,
        _dirs: served.dirs,
    })
}

impl Server {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call_json(&self.client, method, &format!("{}{path}", self.base), body).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn import(&self, body: Value) -> (u16, Value) {
        self.post("/objects/huggingface-import", body).await
    }

    async fn bucket(&self, tag: &str) -> String {
        let name = s4_core::testing::unique_bucket(tag).to_string();
        let (status, body) = self.post("/buckets", json!({ "bucketName": name })).await;
        assert_eq!(status, 200, "create bucket: {body}");
        name
    }

    async fn keys(&self, bucket: &str) -> BTreeSet<String> {
        let b = BucketName::try_from(bucket).expect("bucket");
        s4_core::testing::all_keys(&self.s4, &b, "")
            .await
            .into_iter()
            .collect()
    }

    async fn download(&self, bucket: &str, key: &str) -> Vec<u8> {
        let url = format!("{}/objects/download/{bucket}/{}", self.base, b64(key));
        let response = self.client.get(url).send().await.expect("download");
        assert_eq!(response.status(), 200, "download {key}");
        response.bytes().await.expect("bytes").to_vec()
    }

    async fn remove_bucket(&self, bucket: &str) {
        let b = BucketName::try_from(bucket).expect("bucket");
        s4_core::testing::remove_bucket(&self.s4, &b).await;
    }

    /// Follows a job's progress over SSE, with a one-time ticket, to its end.
    async fn follow(&self, sse_url: &str, job: &str) -> Vec<Value> {
        let (status, ticket) = self
            .post(
                "/auth/sse-ticket",
                json!({"resource": job, "resourceType": "transfer"}),
            )
            .await;
        let url = match ticket["ticket"].as_str() {
            Some(t) if status == 200 => format!("{}{sse_url}?ticket={t}", self.base),
            _ => format!("{}{sse_url}", self.base),
        };
        let response = self.client.get(url).send().await.expect("sse");
        sse_events(response, WAIT).await
    }

    /// Starts an import that must be accepted; returns its job id and events.
    async fn run(&self, body: Value) -> (String, Vec<Value>) {
        let (status, created) = self.import(body).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["message"], "Model import started");
        let job = created["jobId"].as_str().expect("jobId").to_string();
        assert_eq!(created["sseUrl"], format!("/transfer/progress/{job}"));
        assert_eq!(created.as_object().map(|o| o.len()), Some(3), "{created}");
        let events = self
            .follow(&format!("/transfer/progress/{job}"), &job)
            .await;
        (job, events)
    }
}

fn size_of(hub: &FakeHub, model: &str, revision: &str, wanted: &[&str]) -> usize {
    hub.files(model, revision)
        .iter()
        .filter(|f| wanted.contains(&f.path.as_str()))
        .map(|f| f.content.len())
        .sum()
}

on_every_backend!(
    kind: import_into_a_bucket, cancel_mid_import_leaves_nothing);

const ALL: &[&str] = &[
    "config.json",
    "model.safetensors",
    "empty.txt",
    "tokenizer/vocab.json",
    "README.md",
];

async fn import_into_a_bucket(kind: Kind) {
    let Some(s) = start(kind).await else {
        return;
    };
    let bucket = s.bucket("hfimp").await;
    let (job, events) = s
        .run(json!({
            "hfRepoId": "org/model", "bucketName": bucket, "s3Prefix": "llms/",
            "hfToken": GOOD_TOKEN,
        }))
        .await;
    let total = size_of(&s.hub, "org/model", "main", ALL);
    // Sizes come from the tree listing: exact from the first event on.
    let first = events.first().expect("events");
    assert_eq!(first["progress"]["totalBytes"], total, "{first}");
    assert_eq!(first["progress"]["totalFiles"], ALL.len());
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete", "{events:#?}");
    assert_eq!(last["progress"]["loadedBytes"], total);
    assert_eq!(last["progress"]["percentage"], 100);
    assert_eq!(last["job"]["errors"], json!([]));
    let files: Vec<&str> = last["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["file"].as_str().expect("file"))
        .collect();
    let expected: Vec<String> = ALL
        .iter()
        .map(|f| format!("s3:{bucket}/llms/org/model/{f}"))
        .collect();
    assert_eq!(files, expected, "listing order kept");

    let keys = s.keys(&bucket).await;
    let expected_keys: BTreeSet<String> =
        ALL.iter().map(|f| format!("llms/org/model/{f}")).collect();
    assert_eq!(keys, expected_keys);
    for file in s.hub.files("org/model", "main") {
        let data = s
            .download(&bucket, &format!("llms/org/model/{}", file.path))
            .await;
        assert_eq!(data, file.content, "{}", file.path);
    }

    // Job details: a `huggingface` job whose sources are the resolve URLs.
    let (status, details) = s
        .call(reqwest::Method::GET, &format!("/transfer/{job}"), None)
        .await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["type"], "huggingface");
    assert_eq!(details["status"], "completed");
    assert!(details["files"][0]["sourcePath"]
        .as_str()
        .is_some_and(|p| p.ends_with("/org/model/resolve/main/config.json")));

    // The token reached the Hub, never the CDN; no Range header anywhere.
    let token = format!("Bearer {GOOD_TOKEN}");
    let resolves: Vec<_> = s
        .hub
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.path().contains("/resolve/"))
        .collect();
    assert_eq!(resolves.len(), ALL.len());
    assert!(resolves
        .iter()
        .all(|r| r.header("authorization") == Some(token.as_str())));
    let cdn = s.hub.cdn.requests();
    assert_eq!(cdn.len(), 1, "the one LFS file comes from the CDN");
    assert!(cdn.iter().all(|r| r.header("authorization").is_none()));
    assert!(resolves
        .iter()
        .chain(cdn.iter())
        .all(|r| r.header("range").is_none()));

    // A second import overwrites in place.
    let (_, again) = s
        .run(json!({"modelId": "org/model", "bucketName": bucket, "prefix": "llms", "include": ["README.md"]}))
        .await;
    assert_eq!(again.last().expect("events")["type"], "complete");
    assert_eq!(s.keys(&bucket).await, expected_keys);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_a_local_location_with_filters_and_revision() {
    let s = start(Kind::Memory).await.expect("server");
    let (_, events) = s
        .run(json!({
            "modelId": "org/model", "destinationType": "local",
            "localLocationId": "local-0", "localPath": "models/",
            "include": ["*.json", "**/*.json", "*.md"], "exclude": ["README*"],
        }))
        .await;
    let wanted = ["config.json", "tokenizer/vocab.json"];
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete", "{events:#?}");
    assert_eq!(
        last["progress"]["totalBytes"],
        size_of(&s.hub, "org/model", "main", &wanted)
    );
    assert_eq!(
        last["files"][0]["file"],
        "local:local-0/models/org/model/config.json"
    );
    assert_eq!(
        relative_files(&s.local_root),
        wanted
            .iter()
            .map(|f| format!("models/org/model/{f}"))
            .collect::<BTreeSet<_>>()
    );
    for file in s.hub.files("org/model", "main") {
        if wanted.contains(&file.path.as_str()) {
            let on_disk = std::fs::read(s.local_root.join("models/org/model").join(&file.path))
                .expect("read");
            assert_eq!(on_disk, file.content);
        }
    }

    // Revision `v2` has its own files.
    let (_, events) = s
        .run(json!({
            "modelId": "org/model", "destinationType": "local", "revision": "v2",
            "localLocationId": "local-0", "localPath": "",
        }))
        .await;
    assert_eq!(events.last().expect("events")["type"], "complete");
    let v2 = s.hub.files("org/model", "v2");
    let on_disk = std::fs::read(s.local_root.join("org/model/v2-only.txt")).expect("read");
    assert_eq!(on_disk, v2[0].content);
    assert!(s
        .hub
        .hub
        .requests()
        .iter()
        .any(|r| r.path() == "/api/models/org/model/revision/v2"));

    // A Hub without the tree route: the siblings, sizes learned while downloading.
    let (_, events) = s
        .run(json!({
            "modelId": "org/notree", "destinationType": "local",
            "localLocationId": "local-0", "localPath": "fallback",
        }))
        .await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "complete", "{events:#?}");
    let notree = s.hub.files("org/notree", "main");
    assert_eq!(last["progress"]["totalBytes"], notree[0].content.len());
    let on_disk =
        std::fs::read(s.local_root.join("fallback/org/notree/config.json")).expect("read");
    assert_eq!(on_disk, notree[0].content);

    // A bucket destination honours the patterns too.
    let bucket = s.bucket("hffilt").await;
    let (_, events) = s
        .run(json!({"modelId": "org/model", "bucketName": bucket, "exclude": ["**/*.json", "*.json"]}))
        .await;
    assert_eq!(events.last().expect("events")["type"], "complete");
    assert_eq!(
        s.keys(&bucket).await,
        ["README.md", "empty.txt", "model.safetensors"]
            .iter()
            .map(|f| format!("org/model/{f}"))
            .collect::<BTreeSet<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha_mismatch_fails_that_file_and_leaves_nothing() {
    let s = start(Kind::Memory).await.expect("server");
    let bad = s
        .hub
        .files("org/bad-sha", "main")
        .into_iter()
        .find(|f| f.path == "weights.bin")
        .expect("bad file");
    let expected_error = format!(
        "Checksum mismatch for weights.bin: expected {}, got {}",
        "0".repeat(64),
        bad.sha256()
    );
    let bucket = s.bucket("hfsha").await;
    for body in [
        json!({"modelId": "org/bad-sha", "bucketName": bucket}),
        json!({"modelId": "org/bad-sha", "destinationType": "local", "localLocationId": "local-0", "localPath": "dl"}),
    ] {
        let (_, events) = s.run(body).await;
        let last = events.last().expect("events");
        assert_eq!(last["type"], "error", "{events:#?}");
        assert_eq!(last["status"], "failed");
        assert_eq!(last["files"][0]["status"], "completed");
        assert_eq!(last["files"][1]["status"], "error");
        assert_eq!(last["files"][1]["error"], expected_error);
        assert_eq!(last["job"]["failedFiles"], 1);
    }
    assert_eq!(
        s.keys(&bucket).await,
        BTreeSet::from(["org/bad-sha/ok.txt".to_string()])
    );
    assert_eq!(
        relative_files(&s.local_root),
        BTreeSet::from(["dl/org/bad-sha/ok.txt".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_errors_and_validation() {
    let s = start(Kind::Memory).await.expect("server");
    let bucket = s.bucket("hferr").await;
    let gated = json!({"modelId": "org/gated", "bucketName": bucket});

    let (status, body) = s.import(gated.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "Unauthorized", "message": "This model is gated and requires a HuggingFace token."})
    );
    let mut bad_token = gated.clone();
    bad_token["hfToken"] = json!("hf_wrong");
    let (status, body) = s.import(bad_token).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "Unauthorized", "message": "This model requires a valid HuggingFace token to be downloaded, or you are not authorized."})
    );
    let mut good = gated.clone();
    good["hfToken"] = json!(GOOD_TOKEN);
    good["include"] = json!(["config.json"]);
    let (_, events) = s.run(good).await;
    assert_eq!(events.last().expect("events")["type"], "complete");

    let (status, body) = s
        .import(json!({"modelId": "org/missing", "bucketName": bucket}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "Repository not found", "message": "Repository not found"})
    );
    let (status, body) = s
        .import(json!({"modelId": "org/limited", "bucketName": bucket}))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "Too many requests");

    for (body, message) in [
        (
            json!({"modelId": "org/empty", "bucketName": bucket}),
            "Model has no files to import",
        ),
        (
            json!({"modelId": "org/model", "bucketName": bucket, "include": ["*.nothing"]}),
            "No files match the include/exclude patterns",
        ),
        (json!({}), "modelId must be of the form owner/name"),
        (
            json!({"modelId": "../x", "bucketName": bucket}),
            "modelId must be of the form owner/name",
        ),
        (
            json!({"modelId": "org/model", "destinationType": "ftp"}),
            "destinationType must be 's3' or 'local'",
        ),
        (
            json!({"modelId": "org/model"}),
            "bucketName is required for S3 destination",
        ),
        (
            json!({"modelId": "org/model", "destinationType": "local", "localPath": ""}),
            "localLocationId and localPath are required for local destination",
        ),
    ] {
        let (status, answer) = s.import(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(
            answer,
            json!({"error": "ValidationError", "message": message}),
            "{body}"
        );
    }
    for body in [
        json!({"modelId": "org/model", "destinationType": "local", "localLocationId": "local-0", "localPath": "../up"}),
        json!({"modelId": "org/model", "bucketName": bucket, "revision": "a..b"}),
        json!({"modelId": "org/model", "bucketName": bucket, "revision": 7}),
        json!({"modelId": "org/model", "bucketName": bucket, "include": "*.json"}),
        json!({"modelId": "org/model", "bucketName": bucket, "exclude": ["a["]}),
        json!("not an object"),
    ] {
        let (status, answer) = s.import(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"], "ValidationError", "{body}");
    }
    // 2 MiB of JSON.
    let big = json!({"modelId": "org/model", "bucketName": bucket, "pad": "x".repeat(2 << 20)});
    let (status, answer) = s.import(big).await;
    assert_eq!(status, 413, "{answer}");
    // None of the rejected requests wrote anything.
    assert_eq!(
        s.keys(&bucket).await,
        BTreeSet::from(["org/gated/config.json".to_string()])
    );
}

async fn cancel_mid_import_leaves_nothing(kind: Kind) {
    let Some(s) = start(kind).await else {
        return;
    };
    let bucket = s.bucket("hfcan").await;
    for body in [
        json!({"modelId": "org/slow", "bucketName": bucket, "prefix": "p"}),
        json!({"modelId": "org/slow", "destinationType": "local", "localLocationId": "local-0", "localPath": "dl"}),
    ] {
        let (status, created) = s.import(body).await;
        assert_eq!(status, 200, "{created}");
        let job = created["jobId"].as_str().expect("jobId").to_string();
        // The big file is half-way through its download and held there.
        tokio::time::timeout(WAIT, s.hub.slow.reached.notified())
            .await
            .expect("download reached the hold");
        let (status, answer) = s.post(&format!("/transfer/cancel/{job}"), json!({})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["cancelled"], true);
        let events = s.follow(&format!("/transfer/progress/{job}"), &job).await;
        let last = events.last().expect("events");
        assert_eq!(last["type"], "cancelled", "{last}");
        assert!(!s.keys(&bucket).await.contains("p/org/slow/big.bin"));
        let (status, answer) = s.post(&format!("/transfer/cleanup/{job}"), json!({})).await;
        assert_eq!(status, 200, "{answer}");
    }
    // Nothing of either import is left: no object, no file, no temp file.
    assert_eq!(s.keys(&bucket).await, BTreeSet::new());
    assert_eq!(relative_files(&s.local_root), BTreeSet::new());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_hub_is_a_500_with_the_contract_body() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let s = start_at(Kind::Memory, Some(format!("http://{closed}")))
        .await
        .expect("server");
    let bucket = s.bucket("hfdown").await;
    let (status, body) = s
        .import(json!({"modelId": "org/model", "bucketName": bucket}))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "HuggingFace API error");
    assert_eq!(
        body["message"],
        "Error fetching model info from HuggingFace"
    );
    assert_eq!(s.keys(&bucket).await, BTreeSet::new());
}

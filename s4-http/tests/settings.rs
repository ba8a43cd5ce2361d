//! Settings routes (API §16) and outbound HTTP (§20) over real HTTP: round trips,
//! redaction, persistence across an in-process restart, environment precedence,
//! corrupt files, backend swapping, the S3/Hub/proxy tests through fakes.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{call_json, settings_store, Running};

use s4_core::config_store::{ConfigStore, StoreOptions, REDACTED, SETTINGS_FILE};
use s4_core::fakes::{FakeHub, FakeServer, ForwardProxy, Reply, GOOD_TOKEN};
use s4_core::storage::{MemoryBackend, S3Backend};
use s4_core::{Backend, S4};
use s4_http::{App, HttpConfig};
use serde_json::{json, Value};

struct Server {
    base: String,
    client: reqwest::Client,
    s4: S4,
    store: ConfigStore,
    _running: Running,
}

/// Starts a server whose settings live under `dir`, over `backend`.
async fn start(dir: &Path, env: &[(&str, &str)], backend: Arc<dyn Backend>) -> Server {
    let store = settings_store(dir, env).await;
    let s4 = S4::builder().shared_backend(backend).build();
    let running = Running::start(App::with_settings(
        s4.clone(),
        HttpConfig::default(),
        store.clone(),
    ))
    .await;
    Server {
        base: running.base(),
        client: reqwest::Client::new(),
        s4,
        store,
        _running: running,
    }
}

async fn memory(dir: &Path, env: &[(&str, &str)]) -> Server {
    start(dir, env, Arc::new(MemoryBackend::new())).await
}

impl Server {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call_json(&self.client, method, &format!("{}{path}", self.base), body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

const GETS: &[&str] = &[
    "/settings/s3",
    "/settings/huggingface",
    "/settings/proxy",
    "/settings/max-concurrent-transfers",
    "/settings/max-files-per-page",
    "/settings/disclaimer",
    "/disclaimer",
];

/// Every GET's body, concatenated: for "no secret ever leaves" checks.
async fn all_gets(server: &Server) -> String {
    let mut out = String::new();
    for path in GETS {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.push_str(&body.to_string());
    }
    out
}

fn s3_body(secret: &str) -> Value {
    json!({
        "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": secret, "region": "us-east-1",
        "endpoint": "http://127.0.0.1:1", "defaultBucket": "models"
    })
}

#[tokio::test]
async fn every_route_round_trips_and_secrets_stay_redacted() {
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    let (status, body) = server.get("/settings/max-concurrent-transfers").await;
    assert_eq!((status, body), (200, json!({"maxConcurrentTransfers": 2})));
    let (_, body) = server.get("/settings/max-files-per-page").await;
    assert_eq!(body, json!({"maxFilesPerPage": 100}));
    let (_, body) = server.get("/settings/disclaimer").await;
    assert_eq!(body, json!({"disclaimer": {"status": "unknown"}}));
    let (_, body) = server.get("/settings/huggingface").await;
    assert_eq!(body, json!({"settings": {"hfToken": ""}}));
    let (_, body) = server.get("/settings/proxy").await;
    assert_eq!(
        body,
        json!({"settings": {"httpProxy": "", "httpsProxy": ""}})
    );

    // S3.
    let updated = json!({"message": "Settings updated successfully"});
    assert_eq!(
        server.put("/settings/s3", s3_body("s3-secret-value")).await,
        (200, updated.clone())
    );
    let (_, body) = server.get("/settings/s3").await;
    assert_eq!(
        body,
        json!({"settings": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": REDACTED,
            "region": "us-east-1", "endpoint": "http://127.0.0.1:1", "defaultBucket": "models"}})
    );
    let mut again = s3_body(REDACTED);
    again["region"] = json!("eu-west-1");
    assert_eq!(server.put("/settings/s3", again).await.0, 200);
    assert_eq!(server.store.s3().secret_access_key, "s3-secret-value");
    assert_eq!(server.store.s3().region, "eu-west-1");

    // HuggingFace.
    assert_eq!(
        server
            .put(
                "/settings/huggingface",
                json!({"hfToken": "hf_secret_token"})
            )
            .await,
        (200, updated.clone())
    );
    assert_eq!(
        server.get("/settings/huggingface").await.1,
        json!({"settings": {"hfToken": REDACTED}})
    );
    assert_eq!(
        server
            .put("/settings/huggingface", json!({"hfToken": REDACTED}))
            .await
            .0,
        200
    );
    assert_eq!(server.store.hf_token(), "hf_secret_token");

    // Proxy, password inside the URL.
    let proxy =
        json!({"httpProxy": "http://user:proxy-pass-word@127.0.0.1:3128", "httpsProxy": ""});
    assert_eq!(server.put("/settings/proxy", proxy).await.0, 200);
    let (_, shown) = server.get("/settings/proxy").await;
    assert_eq!(
        shown["settings"]["httpProxy"],
        format!("http://user:{REDACTED}@127.0.0.1:3128")
    );
    assert_eq!(
        server
            .put("/settings/proxy", shown["settings"].clone())
            .await
            .0,
        200
    );
    assert_eq!(
        server.store.proxy().http_proxy,
        "http://user:proxy-pass-word@127.0.0.1:3128"
    );

    // Concurrency drives subscribers live; page size; disclaimer and its alias.
    let mut limit = server.store.subscribe_max_concurrent_transfers();
    assert_eq!(
        server
            .put(
                "/settings/max-concurrent-transfers",
                json!({"maxConcurrentTransfers": 5})
            )
            .await
            .0,
        200
    );
    assert_eq!(*limit.borrow_and_update(), 5);
    assert_eq!(
        server.get("/settings/max-concurrent-transfers").await.1,
        json!({"maxConcurrentTransfers": 5})
    );
    assert_eq!(
        server
            .put(
                "/settings/max-files-per-page",
                json!({"maxFilesPerPage": 250})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server.get("/settings/max-files-per-page").await.1,
        json!({"maxFilesPerPage": 250})
    );
    assert_eq!(
        server
            .put("/settings/disclaimer", json!({"status": "accepted"}))
            .await,
        (200, json!({"message": "Disclaimer status updated"}))
    );
    assert_eq!(
        server.get("/disclaimer").await.1,
        json!({"disclaimer": {"status": "accepted"}})
    );
    assert_eq!(
        server
            .put("/disclaimer", json!({"status": "declined"}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get("/settings/disclaimer").await.1,
        json!({"disclaimer": {"status": "declined"}})
    );

    // No GET ever shows a stored secret.
    let shown = all_gets(&server).await;
    for secret in ["s3-secret-value", "hf_secret_token", "proxy-pass-word"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    // Clearing the token.
    assert_eq!(
        server
            .put("/settings/huggingface", json!({"hfToken": ""}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get("/settings/huggingface").await.1,
        json!({"settings": {"hfToken": ""}})
    );
}

#[tokio::test]
async fn bad_input_is_400_or_413_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    assert_eq!(server.put("/settings/s3", s3_body("keep-me")).await.0, 200);
    assert_eq!(
        server
            .put(
                "/settings/max-concurrent-transfers",
                json!({"maxConcurrentTransfers": 3})
            )
            .await
            .0,
        200
    );
    let file = dir.path().join(SETTINGS_FILE);
    let before = std::fs::read(&file).expect("settings file");
    let snapshot = server.store.settings();

    let mut missing = s3_body("x");
    missing.as_object_mut().expect("object").remove("endpoint");
    let mut wrong_type = s3_body("x");
    wrong_type["region"] = json!(5);
    let mut bad_url = s3_body("x");
    bad_url["endpoint"] = json!("ftp://nowhere");
    let cases = [
        ("/settings/s3", missing),
        ("/settings/s3", wrong_type),
        ("/settings/s3", bad_url),
        ("/settings/s3", json!([1, 2])),
        ("/settings/huggingface", json!({})),
        ("/settings/huggingface", json!({"hfToken": 1})),
        ("/settings/proxy", json!({"httpProxy": ""})),
        (
            "/settings/proxy",
            json!({"httpProxy": "not a url", "httpsProxy": ""}),
        ),
        (
            "/settings/max-concurrent-transfers",
            json!({"maxConcurrentTransfers": 0}),
        ),
        (
            "/settings/max-concurrent-transfers",
            json!({"maxConcurrentTransfers": "4"}),
        ),
        (
            "/settings/max-concurrent-transfers",
            json!({"maxConcurrentTransfers": 1.5}),
        ),
        ("/settings/max-concurrent-transfers", json!({})),
        (
            "/settings/max-files-per-page",
            json!({"maxFilesPerPage": 30}),
        ),
        (
            "/settings/max-files-per-page",
            json!({"maxFilesPerPage": "100"}),
        ),
        ("/settings/disclaimer", json!({})),
        ("/settings/disclaimer", json!({"status": ""})),
    ];
    for (path, body) in cases {
        let (status, answer) = server.put(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "ValidationError", "{path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for (path, body) in [
        ("/settings/test-s3", json!({"accessKeyId": "a"})),
        ("/settings/test-huggingface", json!({"hfToken": ""})),
        (
            "/settings/test-proxy",
            json!({"httpProxy": "", "httpsProxy": ""}),
        ),
    ] {
        assert_eq!(server.post(path, body).await.0, 400, "{path}");
    }
    // A 2 MiB JSON body.
    let big = json!({"hfToken": "x".repeat(2 << 20)});
    assert_eq!(server.put("/settings/huggingface", big).await.0, 413);
    assert_eq!(
        std::fs::read(&file).expect("settings file"),
        before,
        "file unchanged"
    );
    assert_eq!(server.store.settings(), snapshot, "memory unchanged");
}

#[tokio::test]
async fn settings_survive_a_restart_and_env_wins() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let server = memory(dir.path(), &[]).await;
        assert_eq!(
            server
                .put(
                    "/settings/max-concurrent-transfers",
                    json!({"maxConcurrentTransfers": 6})
                )
                .await
                .0,
            200
        );
        assert_eq!(
            server
                .put(
                    "/settings/max-files-per-page",
                    json!({"maxFilesPerPage": 500})
                )
                .await
                .0,
            200
        );
        assert_eq!(
            server
                .put("/settings/huggingface", json!({"hfToken": "hf_persisted"}))
                .await
                .0,
            200
        );
        assert_eq!(
            server
                .put(
                    "/settings/proxy",
                    json!({"httpProxy": "http://p:1", "httpsProxy": ""})
                )
                .await
                .0,
            200
        );
        assert_eq!(
            server
                .put("/settings/disclaimer", json!({"status": "accepted"}))
                .await
                .0,
            200
        );
    }
    let restarted = memory(dir.path(), &[]).await;
    assert_eq!(
        restarted.get("/settings/max-concurrent-transfers").await.1["maxConcurrentTransfers"],
        6
    );
    assert_eq!(
        restarted.get("/settings/max-files-per-page").await.1["maxFilesPerPage"],
        500
    );
    assert_eq!(
        restarted.get("/settings/huggingface").await.1["settings"]["hfToken"],
        REDACTED
    );
    assert_eq!(restarted.store.hf_token(), "hf_persisted");
    assert_eq!(
        restarted.get("/settings/proxy").await.1["settings"]["httpProxy"],
        "http://p:1"
    );
    assert_eq!(
        restarted.get("/disclaimer").await.1["disclaimer"]["status"],
        "accepted"
    );
    drop(restarted);

    let with_env = memory(
        dir.path(),
        &[
            ("MAX_CONCURRENT_TRANSFERS", "9"),
            ("HTTP_PROXY", "http://env-proxy:2"),
        ],
    )
    .await;
    assert_eq!(
        with_env.get("/settings/max-concurrent-transfers").await.1["maxConcurrentTransfers"],
        9
    );
    assert_eq!(
        with_env.get("/settings/proxy").await.1["settings"]["httpProxy"],
        "http://env-proxy:2"
    );
    assert_eq!(
        with_env.get("/settings/max-files-per-page").await.1["maxFilesPerPage"],
        500,
        "not overridden"
    );
}

#[tokio::test]
async fn corrupt_settings_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join(SETTINGS_FILE);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, b"{\"maxConcurrentTransfers\": ").expect("write");
    let err = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect_err("corrupt");
    assert!(err.message().contains(&file.display().to_string()), "{err}");
    // The daemon refuses to start and says which file.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_s4"))
        .env_clear()
        .env("S4_DATA_DIR", dir.path())
        .env("S4_BACKEND", "memory")
        .env("PORT", "0")
        .current_dir(dir.path())
        .output()
        .await
        .expect("run s4");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}

#[tokio::test]
async fn test_huggingface_through_proxy_and_no_proxy() {
    let hub = FakeHub::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[("HF_ENDPOINT", &hub.url())]).await;
    let (status, body) = server
        .post("/settings/test-huggingface", json!({"hfToken": GOOD_TOKEN}))
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "Connection successful", "accessTokenDisplayName": "test-token"})
        )
    );
    let (status, body) = server
        .post("/settings/test-huggingface", json!({"hfToken": "hf_bad"}))
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "Invalid credentials in Authorization header");
    // The placeholder means the stored token.
    assert_eq!(
        server
            .put("/settings/huggingface", json!({"hfToken": GOOD_TOKEN}))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post("/settings/test-huggingface", json!({"hfToken": REDACTED}))
            .await
            .0,
        200
    );

    // Hub calls go through the configured proxy...
    let proxy = ForwardProxy::start().await;
    assert_eq!(
        server
            .put(
                "/settings/proxy",
                json!({"httpProxy": proxy.url(), "httpsProxy": ""})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post("/settings/test-huggingface", json!({"hfToken": REDACTED}))
            .await
            .0,
        200
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path() == "/api/whoami-v2"),
        "proxied"
    );
    // ... and import planning does too.
    let request =
        s4_core::hf::ImportRequest::parse(&json!({"modelId": "org/model", "bucketName": "models"}))
            .expect("request");
    server
        .store
        .hub(None)
        .expect("hub")
        .plan(&request)
        .await
        .expect("plan");
    assert!(proxy
        .requests()
        .iter()
        .any(|r| r.path().starts_with("/api/models/org/model/tree/")));
    drop(server);

    // NO_PROXY exempts the Hub: the proxy sees nothing more.
    let seen = proxy.requests().len();
    let exempt = memory(
        dir.path(),
        &[
            ("HF_ENDPOINT", &hub.url()),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(
        exempt.store.proxy().http_proxy,
        proxy.url(),
        "persisted proxy"
    );
    assert_eq!(
        exempt
            .post("/settings/test-huggingface", json!({"hfToken": REDACTED}))
            .await
            .0,
        200
    );
    assert_eq!(proxy.requests().len(), seen);
}

#[tokio::test]
async fn test_proxy_outcomes() {
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    let target = FakeServer::start(|r| {
        if r.path() == "/ok" {
            Reply::new(200, "fine")
        } else {
            Reply::new(403, "no")
        }
    })
    .await;
    let proxy = ForwardProxy::start().await;
    let body = |url: String| json!({"httpProxy": proxy.url(), "httpsProxy": "", "testUrl": url});
    assert_eq!(
        server
            .post("/settings/test-proxy", body(format!("{}/ok", target.url())))
            .await,
        (200, json!({"message": "Connection successful"}))
    );
    assert!(
        proxy.requests().iter().any(|r| r.path() == "/ok"),
        "the body's proxy was used"
    );
    assert_eq!(
        server
            .post(
                "/settings/test-proxy",
                body(format!("{}/nope", target.url()))
            )
            .await,
        (
            403,
            json!({"error": "ProxyTestError", "message": "Connection failed with status: 403 - Forbidden"})
        )
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (status, answer) = server
        .post(
            "/settings/test-proxy",
            json!({"httpProxy": "", "httpsProxy": "", "testUrl": format!("http://127.0.0.1:{closed}/")}),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            500,
            json!({"error": "ProxyTestError", "message": "No response received from the server."})
        )
    );
    let (status, answer) = server
        .post(
            "/settings/test-proxy",
            json!({"httpProxy": "", "httpsProxy": "", "testUrl": "::not a url"}),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(answer["error"], "ProxyTestError");
    // Nothing was stored by the tests.
    assert_eq!(server.store.proxy().http_proxy, "");
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn test_s3_closed_port_is_a_500() {
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    let (status, body) = server
        .post(
            "/settings/test-s3",
            json!({"accessKeyId": "a", "secretAccessKey": "b", "region": "us-east-1",
                   "endpoint": format!("http://127.0.0.1:{}", closed_port())}),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "Error");
    assert!(
        server.store.s3().endpoint.is_empty(),
        "a test stores nothing"
    );
}

fn s3_env() -> Option<s4_core::storage::S3Config> {
    s4_core::testing::s3_test_config()
}

fn body_of(config: &s4_core::storage::S3Config, secret: &str) -> Value {
    json!({"accessKeyId": config.access_key_id, "secretAccessKey": secret,
           "region": config.region, "endpoint": config.endpoint, "defaultBucket": ""})
}

#[tokio::test]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn s3_test_good_and_bad_credentials() {
    let Some(config) = s3_env() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    let (status, body) = server
        .post(
            "/settings/test-s3",
            body_of(&config, &config.secret_access_key),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Connection successful"}))
    );
    let (status, body) = server
        .post("/settings/test-s3", body_of(&config, "wrong-secret"))
        .await;
    assert_eq!(status, 403, "{body}");
    let mut unknown = body_of(&config, "x");
    unknown["accessKeyId"] = json!("GKdoesnotexist0000000000");
    let (status, body) = server.post("/settings/test-s3", unknown).await;
    assert!(matches!(status, 400..=403), "{status} {body}");
}

/// A second access key on the test Garage, created with its CLI, when available.
async fn second_garage_key() -> Option<(String, String)> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var("S4_TEST_S3_ALT_ACCESS_KEY_ID"),
        std::env::var("S4_TEST_S3_ALT_SECRET_ACCESS_KEY"),
    ) {
        return Some((id, secret));
    }
    let config = std::env::var("S4_GARAGE_CONFIG").ok().or_else(|| {
        std::env::var("S4_GARAGE_DIR")
            .ok()
            .map(|d| format!("{d}/garage.toml"))
    })?;
    let garage = std::env::var("S4_GARAGE_BIN").unwrap_or_else(|_| "garage".into());
    let name = format!("s4-settings-{}", std::process::id());
    let output = tokio::process::Command::new(&garage)
        .args(["-c", &config, "key", "create", &name])
        .env_remove("RUST_LOG")
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let field = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    };
    let (id, secret) = (field("Key ID")?, field("Secret key")?);
    let allowed = tokio::process::Command::new(&garage)
        .args(["-c", &config, "key", "allow", "--create-bucket", &id])
        .env_remove("RUST_LOG")
        .output()
        .await
        .ok()?;
    allowed.status.success().then_some((id, secret))
}

#[tokio::test]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn put_s3_swaps_the_backend_without_restart() {
    let Some(config) = s3_env() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let backend = Arc::new(S3Backend::new(config.clone()).expect("backend"));
    let server = start(dir.path(), &[], backend).await;
    let bucket = s4_core::testing::unique_bucket("swap");
    let (status, body) = server
        .post("/buckets", json!({"bucketName": bucket.as_str()}))
        .await;
    assert_eq!(status, 200, "{body}");
    let names = |body: &Value| -> Vec<String> {
        body["buckets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| b["Name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(names(&server.get("/buckets").await.1).contains(&bucket.to_string()));

    // Wrong secret: new requests use the new client at once.
    assert_eq!(
        server
            .put("/settings/s3", body_of(&config, "wrong-secret"))
            .await
            .0,
        200
    );
    assert_eq!(server.get("/buckets").await.0, 403);
    // Back to the right key.
    assert_eq!(
        server
            .put("/settings/s3", body_of(&config, &config.secret_access_key))
            .await
            .0,
        200
    );
    assert!(names(&server.get("/buckets").await.1).contains(&bucket.to_string()));

    // A second key sees only its own buckets.
    if let Some((id, secret)) = second_garage_key().await {
        let mut second = body_of(&config, &secret);
        second["accessKeyId"] = json!(id);
        assert_eq!(server.put("/settings/s3", second).await.0, 200);
        let (status, listing) = server.get("/buckets").await;
        assert_eq!(status, 200, "{listing}");
        assert!(
            !names(&listing).contains(&bucket.to_string()),
            "second key: {listing}"
        );
        assert_eq!(
            server
                .put("/settings/s3", body_of(&config, &config.secret_access_key))
                .await
                .0,
            200
        );
    } else {
        eprintln!("SKIPPED: second Garage key (no garage CLI/config in the environment)");
    }
    s4_core::testing::remove_bucket(&server.s4, &bucket).await;
}

/// A fake S3 endpoint answering ListBuckets with one bucket.
async fn fake_s3() -> FakeServer {
    FakeServer::start(|_| {
        Reply::new(
            200,
            "<ListAllMyBucketsResult><Buckets><Bucket><Name>fake-bucket</Name>\
             <CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>\
             </ListAllMyBucketsResult>",
        )
        .header("Content-Type", "application/xml")
    })
    .await
}

#[tokio::test]
async fn s3_client_follows_proxy_settings_and_no_proxy() {
    let endpoint = fake_s3().await;
    let proxy = ForwardProxy::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = memory(dir.path(), &[]).await;
    let mut s3 = s3_body("secret");
    s3["endpoint"] = json!(endpoint.url());
    assert_eq!(server.put("/settings/s3", s3.clone()).await.0, 200);
    assert_eq!(server.s4.backend().name(), "s3", "swapped in place");
    assert_eq!(
        server
            .put(
                "/settings/proxy",
                json!({"httpProxy": proxy.url(), "httpsProxy": ""})
            )
            .await
            .0,
        200
    );
    let (status, listing) = server.get("/buckets").await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["buckets"][0]["Name"], "fake-bucket");
    assert_eq!(listing["defaultBucket"], "models");
    assert!(
        !proxy.requests().is_empty(),
        "the rebuilt backend client uses the proxy"
    );
    let mut test = s3.clone();
    test["secretAccessKey"] = json!(REDACTED);
    let before = proxy.requests().len();
    assert_eq!(server.post("/settings/test-s3", test).await.0, 200);
    assert!(
        proxy.requests().len() > before,
        "test-s3 uses the current proxies"
    );
    drop(server);

    // After a restart with NO_PROXY naming the endpoint, the backend goes direct.
    let seen = proxy.requests().len();
    let exempt = memory(dir.path(), &[("NO_PROXY", &endpoint.addr.to_string())]).await;
    let backend = exempt
        .store
        .open_backend(
            &exempt
                .store
                .startup_backend(&s4_core::BackendSettings::Memory, false),
        )
        .await
        .expect("persisted S3 backend");
    assert_eq!(
        backend.name(),
        "s3",
        "persisted S3 settings select the S3 backend"
    );
    assert_eq!(backend.list_buckets().await.expect("list").buckets.len(), 1);
    assert_eq!(
        proxy.requests().len(),
        seen,
        "NO_PROXY host:port bypasses the proxy"
    );
}

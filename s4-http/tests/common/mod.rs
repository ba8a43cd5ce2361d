//! Test harness: a real S4 server on 127.0.0.1:0 over a chosen backend, and small
//! HTTP helpers (reqwest for ordinary requests, raw TCP where a test must control
//! the bytes on the wire).

#![allow(dead_code, unreachable_pub)]

pub mod daemon;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use s4_core::config_store::{ConfigStore, StoreOptions};
use s4_core::storage::{LocalBackend, MemoryBackend, S3Backend};
use s4_core::{Backend, S4};
use s4_http::{App, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Serves `app` without connection timeouts: some tests pause tokio's clock,
/// under which every timer fires as soon as the runtime waits on I/O. The
/// timeouts have their own tests (`timeouts.rs`).
async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    s4_http::serve_with(
        listener,
        app,
        shutdown,
        s4_http::ServeOptions::without_timeouts(),
    )
    .await
}

/// Which backend a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Local,
    S3,
}

/// `app` served on 127.0.0.1:0 (without connection timeouts, see [`serve`])
/// until dropped.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Running {
    pub async fn start(app: App) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = serve(listener, app, async {
                let _ = rx.await;
            })
            .await;
        });
        Running {
            addr,
            shutdown: Some(tx),
        }
    }

    /// The API's base URL (`http://addr/api`).
    pub fn base(&self) -> String {
        format!("http://{}/api", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The backend of `kind` with the temporary data directory a local one lives in;
/// `None` for S3 without an endpoint.
pub async fn backend(kind: Kind) -> Option<(Arc<dyn Backend>, Option<tempfile::TempDir>)> {
    Some(match kind {
        Kind::Memory => (Arc::new(MemoryBackend::new()), None),
        Kind::Local => {
            let d = tempfile::tempdir().expect("temp dir");
            let b = LocalBackend::open(d.path()).await.expect("local backend");
            (Arc::new(b), Some(d))
        }
        Kind::S3 => (
            Arc::new(S3Backend::new(s4_core::testing::s3_test_config()?).expect("S3 backend")),
            None,
        ),
    })
}

/// S4 served over a backend with one temporary local location, as the import and
/// console tests run it: see [`s4_with_location`].
pub struct WithLocation {
    pub s4: S4,
    pub running: Running,
    /// The directory of location `local-0`.
    pub local_root: std::path::PathBuf,
    /// The temporary directories (settings, location, local backend's data):
    /// removed when dropped.
    pub dirs: Vec<tempfile::TempDir>,
}

/// S4 over `kind` whose `local-0` is a fresh temporary directory and whose
/// settings store (in another one) starts from `HF_ENDPOINT=hf_endpoint`, served
/// with `config`; `None` for S3 without an endpoint.
pub async fn s4_with_location(
    kind: Kind,
    hf_endpoint: &str,
    config: HttpConfig,
) -> Option<WithLocation> {
    let (backend, data_dir) = backend(kind).await?;
    let settings_dir = tempfile::tempdir().expect("temp dir");
    let store = settings_store(settings_dir.path(), &[("HF_ENDPOINT", hf_endpoint)]).await;
    let local_dir = tempfile::tempdir().expect("temp dir");
    let locations = s4_core::location::Locations::new(
        s4_core::location::LocationsConfig::default().with_paths([local_dir.path().to_path_buf()]),
    )
    .await;
    let s4 = S4::builder()
        .shared_backend(backend)
        .locations(locations)
        .build();
    let running = Running::start(App::with_settings(s4.clone(), config, store)).await;
    Some(WithLocation {
        s4,
        running,
        local_root: local_dir.path().to_path_buf(),
        dirs: [Some(settings_dir), Some(local_dir), data_dir]
            .into_iter()
            .flatten()
            .collect(),
    })
}

/// [`StoreOptions::for_tests`], opened.
pub async fn settings_store(dir: &std::path::Path, env: &[(&str, &str)]) -> ConfigStore {
    ConfigStore::open(StoreOptions::for_tests(dir, env))
        .await
        .expect("settings")
}

/// Sends `method url` with an optional JSON body; the status and the JSON answer
/// (the text as a JSON string when it is not JSON).
pub async fn call_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A running server; shut down on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub s4: S4,
    pub client: reqwest::Client,
    _running: Running,
    _dir: Option<tempfile::TempDir>,
}

/// Starts a server over `kind`, with `configure` applied to its HTTP config.
/// `None` when the backend is unavailable (S3 without endpoint).
pub async fn start_with(kind: Kind, configure: impl FnOnce(&mut HttpConfig)) -> Option<TestServer> {
    start_full(kind, s4_core::location::Locations::disabled(), configure).await
}

/// A memory-backed server exposing `locations`.
pub async fn start_with_locations(
    locations: s4_core::location::Locations,
    configure: impl FnOnce(&mut HttpConfig),
) -> TestServer {
    start_full(Kind::Memory, locations, configure)
        .await
        .expect("memory server")
}

/// A server over `kind` exposing `locations`; `None` when the backend is unavailable.
pub async fn start_kind_with_locations(
    kind: Kind,
    locations: s4_core::location::Locations,
) -> Option<TestServer> {
    start_full(kind, locations, |_| {}).await
}

/// A server over an arbitrary (e.g. wrapped) backend, exposing `locations`.
pub async fn start_with_backend(
    backend: Arc<dyn Backend>,
    locations: s4_core::location::Locations,
    configure: impl FnOnce(&mut HttpConfig),
) -> TestServer {
    let s4 = S4::builder()
        .shared_backend(backend)
        .locations(locations)
        .build();
    serve_s4(s4, configure, None).await
}

async fn serve_s4(
    s4: S4,
    configure: impl FnOnce(&mut HttpConfig),
    dir: Option<tempfile::TempDir>,
) -> TestServer {
    let mut config = HttpConfig::default();
    configure(&mut config);
    let running = Running::start(App::new(s4.clone(), config)).await;
    TestServer {
        addr: running.addr,
        base: running.base(),
        s4,
        client: reqwest::Client::new(),
        _running: running,
        _dir: dir,
    }
}

async fn start_full(
    kind: Kind,
    locations: s4_core::location::Locations,
    configure: impl FnOnce(&mut HttpConfig),
) -> Option<TestServer> {
    let (backend, dir) = backend(kind).await?;
    let s4 = S4::builder()
        .shared_backend(backend)
        .locations(locations)
        .build();
    Some(serve_s4(s4, configure, dir).await)
}

pub async fn start(kind: Kind) -> Option<TestServer> {
    start_with(kind, |_| {}).await
}

/// URL-safe Base64 without padding (what clients should send).
pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Standard Base64 with padding, percent-encoded for a path segment.
pub fn b64_std_segment(text: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(text)
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D")
}

impl TestServer {
    /// The data directory of a local-backend server.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn json(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        self.json(reqwest::Method::GET, path).await
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Creates a uniquely named bucket through the API.
    pub async fn bucket(&self, tag: &str) -> String {
        let name = s4_core::testing::unique_bucket(tag).to_string();
        let (status, body) = self
            .post_json("/buckets", serde_json::json!({ "bucketName": name }))
            .await;
        assert_eq!(status, 200, "create bucket: {body}");
        name
    }

    /// Uploads `data` to `key` through the multipart route.
    pub async fn upload(&self, bucket: &str, key: &str, data: Vec<u8>) -> (u16, serde_json::Value) {
        let form = reqwest::multipart::Form::new()
            .text("note", "ignored")
            .part(
                "file",
                reqwest::multipart::Part::bytes(data).file_name("ignored.bin"),
            );
        let response = self
            .client
            .post(self.url(&format!("/objects/upload/{bucket}/{}", b64(key))))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Deletes every object and the bucket.
    pub async fn remove_bucket(&self, bucket: &str) {
        let b = s4_core::BucketName::try_from(bucket).expect("test bucket name");
        s4_core::testing::remove_bucket(&self.s4, &b).await;
    }

    /// Opens a raw TCP connection to the server.
    pub async fn raw(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect")
    }
}

/// Sends `head` (request line + headers, ending in a blank line) and `body` on a raw
/// connection, then reads the whole response (until the server closes).
pub async fn raw_exchange(stream: &mut tokio::net::TcpStream, head: &str, body: &[u8]) -> String {
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer (and close) before the body is fully sent: ignore
    // write errors and read what it said.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A multipart body with one file part holding `data`, and its boundary.
pub fn multipart_body(data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "s4testboundary7MA4YWxkTrZu0gW".to_string();
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// Every entry under `dir` (dot-files included), sorted; a directory that vanishes
/// meanwhile (or `dir` itself) reads as empty.
pub fn tree(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Regular files (and anything not a directory) under `dir`, sorted.
pub fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    tree(dir).into_iter().filter(|p| !p.is_dir()).collect()
}

/// The files under `root` as `/`-separated paths relative to it.
pub fn relative_files(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    files(root)
        .iter()
        .filter_map(|path| path.strip_prefix(root).ok())
        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
        .collect()
}

/// The whole event stream of an SSE route's `response` (which must be a 200
/// `text/event-stream`), until the server ends it; fails after `wait`.
pub async fn sse_events(
    response: reqwest::Response,
    wait: std::time::Duration,
) -> Vec<serde_json::Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    tokio::time::timeout(wait, sse_until(response, |_| false))
        .await
        .expect("stream ends")
}

/// Reads SSE `data:` events from a response until `stop` returns true for one.
pub async fn sse_until(
    response: reqwest::Response,
    mut stop: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    use futures::StreamExt;
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("sse chunk")));
        while let Some(end) = buffer.find("\n\n") {
            let frame = buffer[..end].to_string();
            buffer.drain(..end + 2);
            if let Some(data) = frame.strip_prefix("data: ") {
                let value: serde_json::Value = serde_json::from_str(data).expect("event JSON");
                let done = stop(&value);
                events.push(value);
                if done {
                    return events;
                }
            }
        }
    }
    events
}

/// Runs each named test body on the memory, local and S3 backends, as modules
/// `memory`, `local` and `s3` of tests with the body's name. The S3 variants read
/// as ignored unless the build saw an S3 endpoint (`cfg(s4_test_s3)`, see
/// `build.rs`).
///
/// `on_every_backend!(a, b)`: the bodies take a started [`TestServer`] (a body
/// whose server cannot be started, S3 without an endpoint, is skipped).
/// `on_every_backend!(kind: a, b)`: the bodies take the [`Kind`] and start what
/// they need themselves.
#[allow(unused_macros)]
macro_rules! on_every_backend {
    (kind: $($name:ident),* $(,)?) => {
        $crate::common::on_every_backend!(@all kind $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::common::on_every_backend!(@all server $($name),*);
    };
    (@all $mode:ident $($name:ident),*) => {
        mod memory { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { $crate::common::on_every_backend!(@call $mode Memory $name) }
        )* }
        mod local { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { $crate::common::on_every_backend!(@call $mode Local $name) }
        )* }
        mod s3 { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
            async fn $name() { $crate::common::on_every_backend!(@call $mode S3 $name) }
        )* }
    };
    (@call server $kind:ident $name:ident) => {
        if let Some(s) = super::start(super::Kind::$kind).await {
            super::$name(s).await
        }
    };
    (@call kind $kind:ident $name:ident) => {
        super::$name(super::Kind::$kind).await
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_backend;

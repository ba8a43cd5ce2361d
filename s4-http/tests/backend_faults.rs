//! A hanging or dead S3 engine never hangs S4 (issue #9, item 2): fake S3 endpoints
//! started here — one that accepts and never answers, one that resets every
//! connection, a closed port — each get the right JSON 5xx on every backend route
//! within the bound; other routes answer meanwhile; and once the endpoint works again
//! the same server recovers without a restart.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::b64;
use s4_core::location::{Locations, LocationsConfig};
use s4_core::storage::{S3Backend, S3Config, S3Timeouts};
use s4_core::S4;
use s4_http::{serve, App, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The bound on a backend route's answer.
const BOUND: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Accept, read, never answer.
    Hang,
    /// Accept, read the request, then reset the connection.
    Reset,
    /// Answer every request with a one-bucket ListAllMyBuckets document.
    Ok,
}

/// A fake S3 endpoint whose behaviour can be switched.
struct FakeS3 {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<AtomicUsize>,
    accepted_changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const LIST_BUCKETS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListAllMyBucketsResult><Owner><ID>o</ID><DisplayName>o</DisplayName></Owner><Buckets><Bucket><Name>back</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>";

impl FakeS3 {
    async fn start(mode: Mode) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::on(listener, mode)
    }

    fn on(listener: TcpListener, mode: Mode) -> FakeS3 {
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(mode));
        let accepted = Arc::new(AtomicUsize::new(0));
        let accepted_changed = Arc::new(Notify::new());
        let task = {
            let mode = Arc::clone(&mode);
            let accepted = Arc::clone(&accepted);
            let changed = Arc::clone(&accepted_changed);
            tokio::spawn(async move {
                let mut held = tokio::task::JoinSet::new();
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    changed.notify_waiters();
                    let current = *mode.lock().expect("mode");
                    match current {
                        Mode::Reset => {
                            // Read the request, then reset the connection.
                            held.spawn(async move {
                                let mut buf = vec![0u8; 64 << 10];
                                let _ = stream.read(&mut buf).await;
                                #[allow(deprecated)]
                                let _ = stream.set_linger(Some(Duration::ZERO));
                                drop(stream);
                            });
                        }
                        Mode::Hang => {
                            held.spawn(async move {
                                let mut buf = vec![0u8; 64 << 10];
                                while let Ok(n) = stream.read(&mut buf).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            });
                        }
                        Mode::Ok => {
                            held.spawn(async move {
                                let mut buf = vec![0u8; 64 << 10];
                                let mut seen = Vec::new();
                                while let Ok(n) = stream.read(&mut buf).await {
                                    if n == 0 {
                                        break;
                                    }
                                    seen.extend_from_slice(&buf[..n]);
                                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                                        seen.clear();
                                        let answer = format!(
                                            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{LIST_BUCKETS}",
                                            LIST_BUCKETS.len()
                                        );
                                        if stream.write_all(answer.as_bytes()).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                        }
                    }
                }
            })
        };
        FakeS3 {
            addr,
            mode,
            accepted,
            accepted_changed,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Waits until at least `n` connections were accepted.
    async fn accepted_at_least(&self, n: usize) {
        loop {
            let changed = self.accepted_changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.accepted.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn server_for(endpoint: SocketAddr, response: Duration) -> Server {
    let config = S3Config {
        endpoint: format!("http://{endpoint}"),
        access_key_id: "fake".into(),
        secret_access_key: "fake-secret".into(),
        region: "us-east-1".into(),
    };
    let timeouts = S3Timeouts {
        connect: Duration::from_secs(1),
        response,
        retries: 2,
        ..S3Timeouts::default()
    };
    let backend = S3Backend::with_timeouts(config, timeouts).expect("backend");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("hello.txt"), b"hi").expect("write");
    let locations = Locations::new(LocationsConfig::default().with_paths([dir.path()])).await;
    let s4 = S4::builder().backend(backend).locations(locations).build();
    let app = App::new(s4, HttpConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}/api"),
        client: reqwest::Client::new(),
        _stop: stop,
        _dir: dir,
    }
}

impl Server {
    async fn call(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if method == reqwest::Method::POST && path.starts_with("/objects/upload/") {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(vec![1u8; 1000]).file_name("f.bin"),
            );
            request = request.multipart(form);
        } else if method == reqwest::Method::POST {
            request = request.json(&serde_json::json!({ "bucketName": "newbucket" }));
        }
        let response = tokio::time::timeout(BOUND, request.send())
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer within {BOUND:?}"))
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

fn backend_routes() -> Vec<(reqwest::Method, String)> {
    vec![
        (reqwest::Method::GET, "/buckets".to_string()),
        (reqwest::Method::POST, "/buckets".to_string()),
        (reqwest::Method::GET, "/objects/data".to_string()),
        (
            reqwest::Method::GET,
            format!("/objects/download/data/{}", b64("a.bin")),
        ),
        (
            reqwest::Method::GET,
            format!("/objects/metadata/data/{}", b64("a.bin")),
        ),
        (
            reqwest::Method::POST,
            format!("/objects/upload/data/{}", b64("a.bin")),
        ),
        (
            reqwest::Method::DELETE,
            format!("/objects/data/{}", b64("a.bin")),
        ),
    ]
}

async fn every_route_answers(s: &Server, status: u16, name: &str) {
    for (method, path) in backend_routes() {
        let (got, body) = s.call(method.clone(), &path).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"], name, "{method} {path}: {body}");
        assert!(body["message"].is_string(), "{method} {path}: {body}");
    }
}

async fn recovers(s: &Server) {
    let (status, body) = s.call(reqwest::Method::GET, "/buckets").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["buckets"][0]["Name"], "back", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_endpoint_answers_504_then_recovers() {
    let fake = FakeS3::start(Mode::Hang).await;
    let s = server_for(fake.addr, Duration::from_millis(800)).await;
    every_route_answers(&s, 504, "GatewayTimeout").await;
    fake.set(Mode::Ok);
    recovers(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_endpoint_answers_502_then_recovers() {
    let fake = FakeS3::start(Mode::Reset).await;
    let s = server_for(fake.addr, Duration::from_secs(2)).await;
    every_route_answers(&s, 502, "BadGateway").await;
    fake.set(Mode::Ok);
    recovers(&s).await;
}

/// A loopback port nobody listens on, below Linux's ephemeral range (32768 and
/// up): a port from `bind(0)` can come back as the source port of the client's
/// own connection to it, which then connects to itself (TCP simultaneous open)
/// and reads its own request as the answer instead of being refused.
async fn closed_port() -> std::net::SocketAddr {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    for port in (start..32_000).chain(10_000..start) {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener.local_addr().expect("addr");
        }
    }
    panic!("no free loopback port below 32000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_answers_503_then_recovers() {
    let addr = closed_port().await;
    let s = server_for(addr, Duration::from_secs(2)).await;
    every_route_answers(&s, 503, "ServiceUnavailable").await;
    // The engine comes back on the same port.
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let _fake = FakeS3::on(listener, Mode::Ok);
    recovers(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_requests_do_not_delay_other_routes() {
    let fake = FakeS3::start(Mode::Hang).await;
    // Each hanging request takes its three attempts (two retries) of 3 s each,
    // within `BOUND`.
    let s = Arc::new(server_for(fake.addr, Duration::from_secs(3)).await);
    let mut hanging = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(&s);
        hanging.push(tokio::spawn(async move {
            s.call(reqwest::Method::GET, "/buckets").await
        }));
    }
    // All eight reached the engine and hang there.
    tokio::time::timeout(BOUND, fake.accepted_at_least(8))
        .await
        .expect("eight backend connections");
    // Meanwhile: health, auth and local locations answer.
    for path in ["", "/auth/info", "/local/locations", "/local/files/local-0"] {
        let (status, body) = s.call(reqwest::Method::GET, path).await;
        assert!(status == 200, "{path}: {status} {body}");
    }
    assert!(
        hanging.iter().all(|h| !h.is_finished()),
        "the other routes answered only after the backend requests timed out"
    );
    for h in hanging {
        let (status, body) = h.await.expect("join");
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["error"], "GatewayTimeout");
    }
}

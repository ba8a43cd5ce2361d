//! Test doubles of outside services, started on `127.0.0.1:0` inside a test
//! (feature `testing`): a tiny HTTP server, a fake HuggingFace Hub with a second
//! "CDN" host, and a forward proxy. All record what they receive.
//!
//! Each server's accept loop runs in a task owned by the server value and aborted
//! when it is dropped (its connections live in the loop's `JoinSet`).

#![allow(clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One request a fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent (origin form, or absolute form through a proxy).
    pub target: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The path of the target (without query), also for absolute-form targets.
    pub fn path(&self) -> &str {
        let t = self.target.as_str();
        let t = match t.find("://") {
            Some(i) => t[i + 3..].find('/').map(|j| &t[i + 3 + j..]).unwrap_or("/"),
            None => t,
        };
        t.split('?').next().unwrap_or(t)
    }
}

/// A response of a fake server.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only the first bytes of the body, then wait for a signal.
    pub hold: Option<Hold>,
    /// Send nothing (not even the status line) until this is notified: a server
    /// that never answers when it never is (the client times out).
    pub stall: Option<Arc<tokio::sync::Notify>>,
}

/// A reply body that stops after `after` bytes: `reached` is notified once they
/// are sent, and the rest follows only after `release` is notified.
#[derive(Debug, Clone)]
pub struct Hold {
    pub after: usize,
    pub reached: Arc<tokio::sync::Notify>,
    pub release: Arc<tokio::sync::Notify>,
}

impl Hold {
    pub fn new(after: usize) -> Self {
        Hold {
            after,
            reached: Arc::new(tokio::sync::Notify::new()),
            release: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            hold: None,
            stall: None,
        }
    }

    /// Answers only once `release` is notified (never, if it never is).
    pub fn stalled(mut self, release: Arc<tokio::sync::Notify>) -> Self {
        self.stall = Some(release);
        self
    }

    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Reply::new(status, value.to_string()).header("Content-Type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A minimal HTTP/1.1 server (one request per connection, `Connection: close`).
pub struct FakeServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<(Recorded, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((
        Recorded {
            method,
            target,
            headers,
        },
        buf[end..].to_vec(),
    ))
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply, head_only: bool) {
    if let Some(release) = &reply.stall {
        release.notified().await;
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let _ = stream.write_all(head.as_bytes()).await;
    if !head_only {
        match &reply.hold {
            Some(hold) if hold.after < reply.body.len() => {
                let _ = stream.write_all(&reply.body[..hold.after]).await;
                let _ = stream.flush().await;
                hold.reached.notify_one();
                hold.release.notified().await;
                let _ = stream.write_all(&reply.body[hold.after..]).await;
            }
            _ => {
                let _ = stream.write_all(&reply.body).await;
            }
        }
    }
    let _ = stream.shutdown().await;
}

impl FakeServer {
    /// Starts a server answering with `handler`.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                connections.spawn(async move {
                    let Some((request, read)) = read_head(&mut stream).await else {
                        return;
                    };
                    // Read the body (by Content-Length) before answering: closing
                    // with unread bytes would reset the connection.
                    let length = request
                        .header("content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut rest = length.saturating_sub(read.len());
                    let mut chunk = [0u8; 4096];
                    while rest > 0 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => rest = rest.saturating_sub(n),
                        }
                    }
                    log.lock().expect("log").push(request.clone());
                    let reply = handler(&request);
                    write_reply(&mut stream, &reply, request.method == "HEAD").await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        FakeServer {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("log").clone()
    }
}

/// A forward proxy for plain-HTTP targets (absolute-form requests); records each
/// request it forwards.
pub struct ForwardProxy {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, log: Arc<Mutex<Vec<Recorded>>>) {
    let Some((request, rest)) = read_head(&mut client).await else {
        return;
    };
    log.lock().expect("log").push(request.clone());
    let Some(after) = request.target.strip_prefix("http://") else {
        let reply = Reply::new(501, "only absolute http:// targets");
        write_reply(&mut client, &reply, false).await;
        return;
    };
    let (authority, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        write_reply(&mut client, &Reply::new(502, "upstream unreachable"), false).await;
        return;
    };
    let mut head = format!("{} {path} HTTP/1.1\r\n", request.method);
    for (k, v) in &request.headers {
        if k == "proxy-authorization" || k == "proxy-connection" || k == "connection" {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let _ = upstream.write_all(&rest).await;
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let _ = tokio::join!(
        tokio::io::copy(&mut cr, &mut uw),
        tokio::io::copy(&mut ur, &mut cw)
    );
}

impl ForwardProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(forward(stream, Arc::clone(&log)));
                while connections.try_join_next().is_some() {}
            }
        });
        ForwardProxy {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("log").clone()
    }
}

/// The token the fake Hub accepts.
pub const GOOD_TOKEN: &str = "hf_good_token";

/// One file of a fake repository.
#[derive(Debug, Clone)]
pub struct FakeFile {
    pub path: String,
    pub content: Vec<u8>,
    /// Served from the CDN host with its sha256 listed (as LFS files are).
    pub lfs: bool,
    /// List a wrong sha256 for it.
    pub wrong_sha: bool,
}

impl FakeFile {
    pub fn new(path: &str, content: &[u8], lfs: bool) -> Self {
        FakeFile {
            path: path.into(),
            content: content.to_vec(),
            lfs,
            wrong_sha: false,
        }
    }

    pub fn sha256(&self) -> String {
        let digest = Sha256::digest(&self.content);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `(model, revision)` → files, gated flag.
type Repos = HashMap<(String, String), (Vec<FakeFile>, bool)>;

/// A fake Hub: `org/model` (main and `v2`), `org/gated`, `org/bad-sha`,
/// `org/notree` (no tree route), `org/limited` (429), `org/slow` (its
/// `big.bin` stops half-way until [`FakeHub::slow`] is released); anything else
/// 404. LFS files redirect to [`FakeHub::cdn`], a second host:port.
pub struct FakeHub {
    pub hub: FakeServer,
    pub cdn: FakeServer,
    /// The hold of `org/slow`'s `big.bin` on the CDN.
    pub slow: Hold,
    repos: Arc<Repos>,
}

fn default_repos() -> Repos {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut repos = Repos::new();
    let model = vec![
        FakeFile::new("config.json", br#"{"model_type":"fake"}"#, false),
        FakeFile::new("model.safetensors", &big, true),
        FakeFile::new("empty.txt", b"", false),
        FakeFile::new("tokenizer/vocab.json", br#"{"a":1}"#, false),
        FakeFile::new("README.md", b"# fake model\n", false),
    ];
    repos.insert(("org/model".into(), "main".into()), (model.clone(), false));
    repos.insert(
        ("org/model".into(), "v2".into()),
        (
            vec![FakeFile::new("v2-only.txt", b"second revision", false)],
            false,
        ),
    );
    repos.insert(("org/gated".into(), "main".into()), (model.clone(), true));
    repos.insert(
        ("org/notree".into(), "main".into()),
        (model[..1].to_vec(), false),
    );
    let mut bad = FakeFile::new("weights.bin", b"these bytes do not match", true);
    bad.wrong_sha = true;
    repos.insert(
        ("org/bad-sha".into(), "main".into()),
        (vec![FakeFile::new("ok.txt", b"fine", false), bad], false),
    );
    repos.insert(("org/empty".into(), "main".into()), (Vec::new(), false));
    let slow: Vec<u8> = (0..512_000u32).map(|i| (i % 241) as u8).collect();
    repos.insert(
        ("org/slow".into(), "main".into()),
        (
            vec![
                FakeFile::new("small.txt", b"small", false),
                FakeFile::new("big.bin", &slow, true),
            ],
            false,
        ),
    );
    repos
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits `owner/name/<marker>/<rev>/<rest>` after `prefix`.
fn split_model<'a>(path: &'a str, marker: &str) -> Option<(String, String, &'a str)> {
    let parts: Vec<&str> = path.splitn(5, '/').collect();
    if parts.len() >= 4 && parts[2] == marker {
        let model = format!("{}/{}", parts[0], parts[1]);
        let rev = decode(parts[3]);
        Some((model, rev, parts.get(4).copied().unwrap_or("")))
    } else {
        None
    }
}

fn authorized(request: &Recorded) -> bool {
    request.header("authorization") == Some(&format!("Bearer {GOOD_TOKEN}"))
}

fn hub_reply(repos: &Repos, cdn: &str, request: &Recorded) -> Reply {
    let path = request.path().to_string();
    let query = request.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let not_found = || Reply::json(404, serde_json::json!({"error": "Repository not found"}));
    if path == "/api/whoami-v2" {
        return if authorized(request) {
            Reply::json(
                200,
                serde_json::json!({"name": "tester", "auth": {"accessToken": {"displayName": "test-token"}}}),
            )
        } else {
            Reply::json(
                401,
                serde_json::json!({"error": "Invalid credentials in Authorization header"}),
            )
        };
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        if rest.starts_with("org/limited/") {
            return Reply::json(429, serde_json::json!({"error": "Too many requests"}));
        }
        if let Some((model, rev, _)) = split_model(rest, "revision") {
            let Some((files, gated)) = repos.get(&(model.clone(), rev)) else {
                return not_found();
            };
            let siblings: Vec<_> = files
                .iter()
                .map(|f| serde_json::json!({"rfilename": f.path}))
                .collect();
            let gated = if *gated {
                serde_json::json!("manual")
            } else {
                serde_json::json!(false)
            };
            return Reply::json(
                200,
                serde_json::json!({"id": model, "gated": gated, "siblings": siblings}),
            );
        }
        if let Some((model, rev, _)) = split_model(rest, "tree") {
            if model == "org/notree" {
                return Reply::json(404, serde_json::json!({"error": "Not Found"}));
            }
            let Some((files, _)) = repos.get(&(model.clone(), rev.clone())) else {
                return not_found();
            };
            let entries: Vec<_> = files
                .iter()
                .map(|f| {
                    let mut e = serde_json::json!({"type": "file", "path": f.path, "size": f.content.len()});
                    if f.lfs {
                        let oid = if f.wrong_sha { "0".repeat(64) } else { f.sha256() };
                        e["lfs"] = serde_json::json!({"oid": oid, "size": f.content.len()});
                    }
                    e
                })
                .collect();
            // Two pages: a directory entry and the first two files, then the rest.
            let second = query.contains("cursor=2");
            let mut page: Vec<serde_json::Value> = if second {
                entries.iter().skip(2).cloned().collect()
            } else {
                let mut first =
                    vec![serde_json::json!({"type": "directory", "path": "tokenizer", "size": 0})];
                first.extend(entries.iter().take(2).cloned());
                first
            };
            if entries.len() <= 2 && second {
                page.clear();
            }
            let mut reply = Reply::json(200, serde_json::Value::Array(page));
            if !second && entries.len() > 2 {
                reply = reply.header(
                    "Link",
                    &format!(
                        "</api/models/{model}/tree/{}?recursive=true&cursor=2>; rel=\"next\"",
                        rev
                    ),
                );
            }
            return reply;
        }
        return not_found();
    }
    if let Some((model, rev, file)) = split_model(path.trim_start_matches('/'), "resolve") {
        let file = decode(file);
        let Some((files, gated)) = repos.get(&(model.clone(), rev.clone())) else {
            return not_found();
        };
        if *gated && !authorized(request) {
            return Reply::json(
                403,
                serde_json::json!({"error": "Access to model is restricted"}),
            );
        }
        let Some(found) = files.iter().find(|f| f.path == file) else {
            return Reply::json(404, serde_json::json!({"error": "Entry not found"}));
        };
        if found.lfs {
            return Reply::new(302, "").header(
                "Location",
                &format!("{cdn}/blobs/{}/{}/{}", model, rev, file),
            );
        }
        return Reply::new(200, found.content.clone());
    }
    not_found()
}

fn cdn_reply(repos: &Repos, slow: &Hold, request: &Recorded) -> Reply {
    let path = request.path().trim_start_matches("/blobs/");
    let parts: Vec<&str> = path.splitn(4, '/').collect();
    if parts.len() == 4 {
        let model = format!("{}/{}", parts[0], parts[1]);
        if let Some((files, _)) = repos.get(&(model, decode(parts[2]))) {
            if let Some(f) = files.iter().find(|f| f.path == decode(parts[3])) {
                let mut reply = Reply::new(200, f.content.clone());
                if parts[0] == "org" && parts[1] == "slow" && f.path == "big.bin" {
                    reply.hold = Some(slow.clone());
                }
                return reply;
            }
        }
    }
    Reply::new(404, "no such blob")
}

impl FakeHub {
    pub async fn start() -> Self {
        let repos = Arc::new(default_repos());
        let cdn_repos = Arc::clone(&repos);
        let slow = Hold::new(128 * 1024);
        let cdn_slow = slow.clone();
        let cdn = FakeServer::start(move |r| cdn_reply(&cdn_repos, &cdn_slow, r)).await;
        let cdn_url = cdn.url();
        let hub_repos = Arc::clone(&repos);
        let hub = FakeServer::start(move |r| hub_reply(&hub_repos, &cdn_url, r)).await;
        FakeHub {
            hub,
            cdn,
            slow,
            repos,
        }
    }

    /// The Hub's base URL (`HF_ENDPOINT`).
    pub fn url(&self) -> String {
        self.hub.url()
    }

    /// The files of a repository revision.
    pub fn files(&self, model: &str, revision: &str) -> Vec<FakeFile> {
        self.repos
            .get(&(model.to_string(), revision.to_string()))
            .map(|(f, _)| f.clone())
            .unwrap_or_default()
    }
}

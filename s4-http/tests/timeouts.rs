//! Connection timeouts over real sockets (issue #9, item 1): silent, slowloris and
//! idle keep-alive connections (HTTP/1.1 and h2c) are closed after their configured
//! timeout, a stalled request body is aborted with nothing stored, while an SSE stream
//! and slowly progressing transfers of the same age stay open; shutdown ends SSE
//! streams and aborts what remains at the drain deadline.
//!
//! Time is driven by short configured timeouts. Sleeps only pace the bytes a slow
//! client sends; every wait for an outcome is an event with a generous bound.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{b64, multipart_body, tree};
use futures::StreamExt;
use s4_core::location::{Locations, LocationsConfig};
use s4_core::storage::MemoryBackend;
use s4_core::{BucketName, S4};
use s4_http::{serve_with, App, HttpConfig, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on waiting for any outcome (never reached when things work).
const BOUND: Duration = Duration::from_secs(20);

struct Server {
    addr: SocketAddr,
    s4: S4,
    root: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(options: ServeOptions) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("volume");
        std::fs::create_dir_all(&root).expect("mkdir");
        let locations = Locations::new(LocationsConfig::default().with_paths([root.clone()])).await;
        let s4 = S4::builder()
            .backend(MemoryBackend::new())
            .locations(locations)
            .build();
        s4.create_bucket(&BucketName::try_from("slow").expect("name"))
            .await
            .expect("bucket");
        let app = App::new(s4.clone(), HttpConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(serve_with(
            listener,
            app,
            async {
                let _ = stopped.await;
            },
            options,
        ));
        Server {
            addr,
            s4,
            root,
            stop: Some(stop),
            handle,
            _dir: dir,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/api{path}", self.addr)
    }
}

fn options(header: u64, idle: u64, body: u64) -> ServeOptions {
    ServeOptions {
        header_read_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        body_read_timeout: Duration::from_millis(body),
        ..ServeOptions::default()
    }
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one complete response with a `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "connection closed before the response: {text}");
        out.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed_after_the_header_timeout() {
    let s = Server::start(options(300, 60_000, 60_000)).await;
    let mut silent = s.connect().await;
    assert_eq!(until_closed(&mut silent).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_closed_after_the_header_timeout() {
    let s = Server::start(options(500, 60_000, 60_000)).await;
    let stream = s.connect().await;
    let (mut reader, mut writer) = stream.into_split();
    // One header byte every 50 ms, never finishing the head.
    let head = b"GET /api HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let sender = tokio::spawn(async move {
        for byte in head {
            if writer.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(BOUND, reader.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "no response expected");
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_keepalive_connection_is_closed() {
    let s = Server::start(options(60_000, 300, 60_000)).await;
    let mut stream = s.connect().await;
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Keep-alive: the connection stays usable until it has been idle too long.
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(until_closed(&mut stream).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2c_connection_is_closed() {
    let s = Server::start(options(60_000, 300, 60_000)).await;
    let io = hyper_util::rt::TokioIo::new(s.connect().await);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("h2c handshake");
    let connection = tokio::spawn(connection);
    let request = http::Request::get(s.url(""))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("h2c request");
    assert_eq!(response.status(), 200);
    drop(response);
    // The server closes the idle connection: the client's connection task ends.
    let ended = tokio::time::timeout(BOUND, connection).await;
    assert!(ended.is_ok(), "idle h2c connection still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_and_slow_transfers_outlive_the_timeouts() {
    let s = Server::start(options(400, 400, 400)).await;
    let client = reqwest::Client::new();
    // A slow download source.
    let data = s4_core::testing::pattern(4 << 20, 3);
    s.s4.put_object(
        &BucketName::try_from("slow").expect("name"),
        &s4_core::ObjectKey::try_from("big.bin").expect("key"),
        s4_core::testing::chunked(data.clone(), 1 << 20),
        s4_core::PutObjectOptions::default(),
    )
    .await
    .expect("put");

    // Opened together: an SSE stream, a slow upload, a slow download, a silent socket.
    let sse = client
        .get(s.url(&format!("/objects/upload-progress/{}", b64("slow.bin"))))
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    let mut silent = s.connect().await;

    let payload = s4_core::testing::pattern(64 * 40, 5);
    let (boundary, body) = multipart_body(&payload);
    let mut upload = s.connect().await;
    let head = format!(
        "POST /api/objects/upload/slow/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        b64("slow.bin"),
        body.len()
    );
    upload.write_all(head.as_bytes()).await.expect("head");
    let uploader = tokio::spawn(async move {
        // ~2.4 s in total, a piece every 100 ms (well within the 400 ms body timeout).
        for piece in body.chunks(body.len().div_ceil(24)) {
            upload.write_all(piece).await.expect("body piece");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        read_response(&mut upload).await
    });

    let download = client
        .get(s.url(&format!("/objects/download/slow/{}", b64("big.bin"))))
        .send()
        .await
        .expect("download");
    let downloader = tokio::spawn(async move {
        let mut stream = download.bytes_stream();
        let mut received = 0usize;
        let mut pauses = 0;
        while let Some(chunk) = stream.next().await {
            received += chunk.expect("download chunk").len();
            if pauses < 12 {
                pauses += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        received
    });

    // The silent socket of the same age is closed...
    assert_eq!(until_closed(&mut silent).await, "");
    // ...while the upload completes, its progress stream reports it, and the download
    // is delivered whole.
    let response = tokio::time::timeout(BOUND, uploader)
        .await
        .expect("upload in time")
        .expect("uploader");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let events = tokio::time::timeout(
        BOUND,
        common::sse_until(sse, |e| e["status"] == "completed"),
    )
    .await
    .expect("sse in time");
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(serde_json::json!("completed"))
    );
    let received = tokio::time::timeout(BOUND, downloader)
        .await
        .expect("download in time")
        .expect("downloader");
    assert_eq!(received, data.len());
}

/// Sends the head and half of an upload body, then stalls.
async fn stalled_upload(s: &Server, path: &str) -> String {
    let payload = s4_core::testing::pattern(256 << 10, 9);
    let (boundary, body) = multipart_body(&payload);
    let mut stream = s.connect().await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half body");
    until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_is_aborted_with_nothing_stored() {
    let s = Server::start(options(60_000, 60_000, 300)).await;
    let answer = stalled_upload(
        &s,
        &format!("/api/objects/upload/slow/{}", b64("stall.bin")),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let answer = stalled_upload(
        &s,
        &format!("/api/local/upload/local-0/{}", b64("stall.bin")),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let bucket = BucketName::try_from("slow").expect("name");
    let keys = s4_core::testing::all_keys(&s.s4, &bucket, "").await;
    assert!(keys.is_empty(), "object stored: {keys:?}");
    assert_eq!(tree(&s.root), Vec::<PathBuf>::new());
    // The same uploads work afterwards.
    let client = reqwest::Client::new();
    for path in [
        format!("/objects/upload/slow/{}", b64("stall.bin")),
        format!("/local/upload/local-0/{}", b64("stall.bin")),
    ] {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![7u8; 1000]).file_name("stall.bin"),
        );
        let response = client
            .post(s.url(&path))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_sse_streams_and_aborts_at_the_drain_deadline() {
    let mut s = Server::start(ServeOptions {
        drain_timeout: Duration::from_millis(300),
        ..options(60_000, 60_000, 60_000)
    })
    .await;
    let sse = reqwest::Client::new()
        .get(s.url(&format!("/objects/upload-progress/{}", b64("never.bin"))))
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    // A request that would never finish by itself: a download nobody reads.
    let data = s4_core::testing::pattern(32 << 20, 4);
    s.s4.put_object(
        &BucketName::try_from("slow").expect("name"),
        &s4_core::ObjectKey::try_from("huge.bin").expect("key"),
        s4_core::testing::chunked(data, 1 << 20),
        s4_core::PutObjectOptions::default(),
    )
    .await
    .expect("put");
    let stuck = reqwest::Client::new()
        .get(s.url(&format!("/objects/download/slow/{}", b64("huge.bin"))))
        .send()
        .await
        .expect("download");
    assert_eq!(stuck.status(), 200);
    let _ = s.stop.take().map(|tx| tx.send(()));
    let served = tokio::time::timeout(BOUND, &mut s.handle)
        .await
        .expect("serve returns after the drain deadline");
    served.expect("join").expect("serve ok");
    // The SSE stream was told to end: its body completes.
    let mut stream = sse.bytes_stream();
    let ended = tokio::time::timeout(BOUND, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "SSE stream still open after shutdown");
    // The unread download was aborted: its body ends truncated.
    let mut stuck = stuck.bytes_stream();
    let mut received = 0usize;
    let mut failed = false;
    while let Some(chunk) = stuck.next().await {
        match chunk {
            Ok(c) => received += c.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed || received < 32 << 20,
        "download completed after abort"
    );
}

#[test]
fn help_documents_the_timeouts_and_their_defaults() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_s4"))
        .arg("--help")
        .output()
        .expect("run s4 --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, var, default) in [
        ("--header-read-timeout", "S4_HEADER_READ_TIMEOUT", "30"),
        ("--idle-timeout", "S4_IDLE_TIMEOUT", "60"),
        ("--body-read-timeout", "S4_BODY_READ_TIMEOUT", "60"),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("--help lacks {flag}"));
        let entry = &help[at..];
        let end = entry[flag.len()..]
            .find("\n  -")
            .map_or(entry.len(), |e| e + flag.len());
        let entry = &entry[..end];
        assert!(entry.contains(var), "{flag}: {entry}");
        assert!(
            entry.contains(&format!("default: {default}")),
            "{flag}: {entry}"
        );
    }
    for var in [
        "S4_FSYNC",
        "S4_S3_CONNECT_TIMEOUT",
        "S4_S3_TIMEOUT",
        "S4_S3_RETRIES",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
}

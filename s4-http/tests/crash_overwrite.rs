//! A kill -9 of a real `s4` daemon (local backend) during an overwrite leaves
//! either the old object with its old metadata or the new one with the new
//! metadata — never a mix, never a stray file.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::b64;
use common::daemon::Daemon;
use s4_core::storage::LocalBackend;
use s4_core::{BucketName, ObjectKey, S4};
use serde_json::Value;

/// Starts the built `s4` on `data_dir` and waits for its "listening" log line.
fn start_daemon(data_dir: &Path) -> Daemon {
    Daemon::start(
        data_dir.parent().unwrap_or(data_dir),
        &[("S4_BACKEND", &"local"), ("S4_DATA_DIR", &data_dir)],
    )
}

fn multipart_head(boundary: &str, mime: &str) -> String {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k\"\r\nContent-Type: {mime}\r\n\r\n"
    )
}

async fn upload(client: &reqwest::Client, base: &str, key: &str, data: &[u8], mime: &str) {
    let part = reqwest::multipart::Part::bytes(data.to_vec())
        .file_name("k")
        .mime_str(mime)
        .expect("mime");
    let response = client
        .post(format!("{base}/objects/upload/crash/{}", b64(key)))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200);
}

async fn metadata(client: &reqwest::Client, base: &str, key: &str) -> Value {
    client
        .get(format!("{base}/objects/metadata/crash/{}", b64(key)))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What the store holds for `key` after a restart: (bytes, content type, ETag).
async fn reopened(data_dir: &Path, key: &str) -> (Vec<u8>, Option<String>, Option<String>) {
    use futures::StreamExt;
    let s4 = S4::builder()
        .backend(LocalBackend::open(data_dir).await.expect("reopen"))
        .build();
    let bucket = BucketName::try_from("crash").expect("bucket");
    let key = ObjectKey::try_from(key).expect("key");
    let mut object = s4
        .get_object(&bucket, &key, Default::default())
        .await
        .expect("get after restart");
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        bytes.extend_from_slice(&chunk.expect("chunk"));
    }
    (bytes, object.info.content_type, object.info.etag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_overwrite_keeps_old_or_new_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("mkdir");
    let client = reqwest::Client::new();

    // 1. Killed in the middle of an overwrite: the old object, old metadata.
    let daemon = start_daemon(&data_dir);
    let base = daemon.api();
    let response = client
        .post(format!("{base}/buckets"))
        .json(&serde_json::json!({ "bucketName": "crash" }))
        .send()
        .await
        .expect("bucket");
    assert_eq!(response.status().as_u16(), 200);
    upload(&client, &base, "k.txt", b"old contents", "text/plain").await;
    let old = metadata(&client, &base, "k.txt").await;
    assert_eq!(old["contentType"], "text/plain");

    let boundary = "crashboundary";
    let head = multipart_head(boundary, "text/markdown");
    let total = 16 << 20;
    let mut stream = std::net::TcpStream::connect(daemon.addr).expect("connect");
    let length = head.len() + total + boundary.len() + 8;
    write!(
        stream,
        "POST /api/objects/upload/crash/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{head}",
        b64("k.txt")
    )
    .expect("head");
    // More than one part: the upload stages a file.
    stream.write_all(&vec![b'n'; 7 << 20]).expect("body");
    let staging = data_dir.join(".s4/tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(&staging).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the overwrite never staged a file"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(daemon); // SIGKILL, then reap.
    assert_eq!(entries(&data_dir.join("crash")), vec!["k.txt".to_string()]);
    let (bytes, ct, etag) = reopened(&data_dir, "k.txt").await;
    assert_eq!(bytes, b"old contents");
    assert_eq!(ct.as_deref(), Some("text/plain"));
    assert_eq!(etag.as_deref(), old["etag"].as_str());
    assert!(
        entries(&staging).is_empty(),
        "start-up swept the staging file"
    );

    // 2. Killed right after an acknowledged overwrite: the new object, new metadata.
    let daemon = start_daemon(&data_dir);
    let base = daemon.api();
    upload(&client, &base, "k.txt", b"new contents", "text/markdown").await;
    let new = metadata(&client, &base, "k.txt").await;
    drop(daemon);
    let (bytes, ct, etag) = reopened(&data_dir, "k.txt").await;
    assert_eq!(bytes, b"new contents");
    assert_eq!(ct.as_deref(), Some("text/markdown"));
    assert_eq!(etag.as_deref(), new["etag"].as_str());
    assert_ne!(new["etag"], old["etag"]);
    assert_eq!(entries(&data_dir.join("crash")), vec!["k.txt".to_string()]);
}

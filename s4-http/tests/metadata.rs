//! Object metadata over HTTP (issue #11): content types, user metadata, ETags and
//! tags on every backend; local upload progress; the GitHub info route; and a
//! kill -9 of a real `s4` process during an overwrite.

mod common;

use common::on_every_backend;

use std::path::PathBuf;
use std::time::Duration;

use common::{b64, sse_until, start, start_with, Kind, TestServer};
use s4_core::{BucketName, ObjectKey, PutObjectOptions};
use serde_json::{json, Value};

on_every_backend!(
    content_type_and_metadata,
    etags_agree_on_every_route,
    tags_routes
);

/// Uploads `data` with the file part's content type `mime`.
async fn upload_typed(s: &TestServer, bucket: &str, key: &str, data: &[u8], mime: &str) {
    let part = reqwest::multipart::Part::bytes(data.to_vec())
        .file_name("ignored")
        .mime_str(mime)
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = s
        .client
        .post(s.url(&format!("/objects/upload/{bucket}/{}", b64(key))))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200, "upload {key}");
}

async fn listing_entry(s: &TestServer, bucket: &str, key: &str) -> Value {
    let prefix = key.rfind('/').map(|i| &key[..=i]).unwrap_or("");
    let path = if prefix.is_empty() {
        format!("/objects/{bucket}")
    } else {
        format!("/objects/{bucket}/{}", b64(prefix))
    };
    let (status, body) = s.get_json(&path).await;
    assert_eq!(status, 200, "{body}");
    body["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["Key"] == key)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Download: `(Content-Type, ETag, body)`.
async fn download(s: &TestServer, bucket: &str, key: &str) -> (String, String, Vec<u8>) {
    let response = s
        .get(&format!("/objects/download/{bucket}/{}", b64(key)))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ct, etag) = (header("content-type"), header("etag"));
    (ct, etag, response.bytes().await.expect("body").to_vec())
}

/// The ETag of `key` as listing, metadata, view and download report it (all equal).
async fn etag_everywhere(s: &TestServer, bucket: &str, key: &str) -> String {
    let listed = listing_entry(s, bucket, key).await["ETag"].clone();
    let (_, meta) = s
        .get_json(&format!("/objects/metadata/{bucket}/{}", b64(key)))
        .await;
    let (_, view) = s
        .get_json(&format!("/objects/view/{bucket}/{}", b64(key)))
        .await;
    let (_, downloaded, _) = download(s, bucket, key).await;
    assert_eq!(meta["etag"], listed, "metadata vs listing");
    assert_eq!(view["metadata"]["etag"], listed, "view vs listing");
    assert_eq!(json!(downloaded), listed, "download vs listing");
    listed.as_str().expect("ETag").to_string()
}

async fn content_type_and_metadata(s: TestServer) {
    let bucket = s.bucket("ctype").await;
    upload_typed(&s, &bucket, "docs/note.txt", b"hello", "text/plain").await;
    let path = format!("/objects/metadata/{bucket}/{}", b64("docs/note.txt"));
    let (status, meta) = s.get_json(&path).await;
    assert_eq!(status, 200);
    assert_eq!(meta["contentType"], "text/plain", "{meta}");
    assert_eq!(meta["metadata"], json!({}));
    let (_, view) = s
        .get_json(&format!("/objects/view/{bucket}/{}", b64("docs/note.txt")))
        .await;
    assert_eq!(view["metadata"]["contentType"], "text/plain");
    assert_eq!(view["preview"]["content"], "hello");
    let (ct, _, body) = download(&s, &bucket, "docs/note.txt").await;
    assert_eq!(
        (ct.as_str(), body.as_slice()),
        ("text/plain", &b"hello"[..])
    );

    // The generic type is replaced by a guess from the extension.
    upload_typed(
        &s,
        &bucket,
        "cfg/model.json",
        b"{}",
        "application/octet-stream",
    )
    .await;
    let (ct, _, _) = download(&s, &bucket, "cfg/model.json").await;
    assert_eq!(ct, "application/json");

    // User metadata through s4-core's put options shows on the metadata route.
    let b = BucketName::try_from(bucket.as_str()).expect("bucket");
    s.s4.put_object(
        &b,
        &ObjectKey::try_from("docs/owned.csv").expect("key"),
        s4_core::testing::chunked(bytes::Bytes::from_static(b"a,b\n"), 2),
        PutObjectOptions::default().with_metadata("owner", "team-a"),
    )
    .await
    .expect("put");
    let (_, meta) = s
        .get_json(&format!(
            "/objects/metadata/{bucket}/{}",
            b64("docs/owned.csv")
        ))
        .await;
    assert_eq!(meta["metadata"], json!({ "owner": "team-a" }));
    assert_eq!(meta["contentType"], "text/csv");

    // Overwrite replaces everything; delete removes it.
    upload_typed(&s, &bucket, "docs/owned.csv", b"x", "text/markdown").await;
    let (_, meta) = s
        .get_json(&format!(
            "/objects/metadata/{bucket}/{}",
            b64("docs/owned.csv")
        ))
        .await;
    assert_eq!(meta["metadata"], json!({}));
    assert_eq!(meta["contentType"], "text/markdown");
    let (status, _) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("docs/owned.csv")),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .get_json(&format!(
            "/objects/metadata/{bucket}/{}",
            b64("docs/owned.csv")
        ))
        .await;
    assert_eq!(status, 404);
    s.remove_bucket(&bucket).await;
    if let Some(dir) = s.data_dir() {
        // Local: nothing at all is left on disk (no orphan metadata, no staging file).
        assert_eq!(common::files(&dir.join(&bucket)), Vec::<PathBuf>::new());
        assert_eq!(common::files(&dir.join(".s4/tmp")), Vec::<PathBuf>::new());
    }
}

async fn etags_agree_on_every_route(s: TestServer) {
    let bucket = s.bucket("etags").await;
    upload_typed(
        &s,
        &bucket,
        "small.bin",
        b"hello",
        "application/octet-stream",
    )
    .await;
    assert_eq!(
        etag_everywhere(&s, &bucket, "small.bin").await,
        "\"5d41402abc4b2a76b9719d911017c592\"",
        "single-part ETag = MD5 of the bytes"
    );
    let big = s4_core::testing::pattern(2 * s4_core::PART_SIZE + 100, 3).to_vec();
    upload_typed(&s, &bucket, "dir/big.bin", &big, "application/octet-stream").await;
    let etag = etag_everywhere(&s, &bucket, "dir/big.bin").await;
    // `"<md5 of the part MD5s>-<parts>"`: 3 parts of 5 MiB on S3 and memory, 11
    // of 1 MiB on the local backend.
    let parts = etag
        .trim_matches('"')
        .split_once('-')
        .and_then(|(md5, n)| (md5.len() == 32).then_some(n))
        .and_then(|n| n.parse::<usize>().ok());
    assert!(matches!(parts, Some(3 | 11)), "multipart ETag: {etag}");
    // A conditional download with that ETag is a 304.
    let response = s
        .client
        .get(s.url(&format!(
            "/objects/download/{bucket}/{}",
            b64("dir/big.bin")
        )))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(response.status().as_u16(), 304);
    s.remove_bucket(&bucket).await;
}

async fn tags_routes(s: TestServer) {
    let bucket = s.bucket("tags").await;
    upload_typed(&s, &bucket, "t/x.txt", b"x", "text/plain").await;
    let path = format!("/objects/tags/{bucket}/{}", b64("t/x.txt"));
    let (status, body) = s.get_json(&path).await;
    if s.s4.backend().name() == "s3" && status == 501 {
        // Garage does not implement tagging.
        assert_eq!(body["error"], "NotImplemented", "{body}");
        assert!(body["message"].is_string());
        s.remove_bucket(&bucket).await;
        return;
    }
    assert_eq!((status, body), (200, json!({ "tags": [] })));
    let tags = json!([{ "Key": "project", "Value": "llm" }, { "Key": "tier", "Value": "" }]);
    let response = s
        .client
        .put(s.url(&path))
        .json(&json!({ "tags": tags }))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "message": "Tags updated successfully", "tags": tags })
    );
    let (status, body) = s.get_json(&path).await;
    assert_eq!((status, body), (200, json!({ "tags": tags })));
    // Validation (§12.9 schema) before anything is stored.
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({ "Key": format!("k{i}"), "Value": "v" }))
        .collect();
    for bad in [
        json!({ "tags": eleven }),
        json!({ "tags": [{ "Key": "", "Value": "v" }] }),
        json!({ "tags": [{ "Key": "k".repeat(129), "Value": "v" }] }),
        json!({ "tags": [{ "Key": "k", "Value": "v".repeat(257) }] }),
        json!({ "tags": [{ "Key": "k" }] }),
        json!({}),
    ] {
        let response = s
            .client
            .put(s.url(&path))
            .json(&bad)
            .send()
            .await
            .expect("put");
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "Bad Request", "{body}");
    }
    let (status, body) = s.get_json(&path).await;
    assert_eq!((status, body), (200, json!({ "tags": tags })));
    let (status, body) = s.json(reqwest::Method::DELETE, &path).await;
    assert_eq!(
        (status, body),
        (200, json!({ "message": "Tags deleted successfully" }))
    );
    let (_, body) = s.get_json(&path).await;
    assert_eq!(body, json!({ "tags": [] }));
    let (status, _) = s
        .get_json(&format!("/objects/tags/{bucket}/{}", b64("t/missing")))
        .await;
    assert_eq!(status, 404);
    let (status, body) = s.get_json(&format!("/objects/tags/{bucket}/%%%")).await;
    assert_eq!(status, 400, "{body}");
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_upload_progress_ends_with_completed() {
    use s4_core::location::{Locations, LocationsConfig};
    let dir = tempfile::tempdir().expect("tmp");
    let locations = Locations::new(LocationsConfig::default().with_paths([dir.path()])).await;
    let s = common::start_with_locations(locations, |_| {}).await;
    let path = "datasets/progress.csv";
    // Follow first (no record yet: only keep-alives), then upload.
    let progress = s
        .client
        .get(s.url(&format!("/objects/upload-progress/{}", b64(path))))
        .send()
        .await
        .expect("sse");
    let data = vec![b'a'; 3 << 20];
    let upload = {
        let client = s.client.clone();
        let url = s.url(&format!("/local/upload/local-0/{}", b64(path)));
        tokio::spawn(async move {
            let part = reqwest::multipart::Part::bytes(data).file_name("f.csv");
            let form = reqwest::multipart::Form::new().part("file", part);
            client
                .post(url)
                .multipart(form)
                .send()
                .await
                .expect("upload")
        })
    };
    let events = tokio::time::timeout(
        Duration::from_secs(30),
        sse_until(progress, |e| e["status"] != "uploading"),
    )
    .await
    .expect("progress stream ends");
    let last = events.last().expect("events");
    assert_eq!(last["status"], "completed", "{events:?}");
    assert_eq!(last["loaded"], 3 << 20);
    let response = upload.await.expect("upload task");
    assert_eq!(response.status().as_u16(), 200);
}

/// A fake GitHub API on 127.0.0.1:0 answering every request with `body`; counts requests.
async fn fake_github(
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{addr}/repos/s4-project/s4"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_repo_info_is_cached_and_502_when_unreachable() {
    let (endpoint, hits) =
        fake_github(r#"{"stargazers_count":123,"forks_count":45,"name":"s4"}"#).await;
    let s = start_with(Kind::Memory, |c| c.github_repo_api = endpoint)
        .await
        .expect("server");
    for _ in 0..2 {
        let (status, body) = s.get_json("/github/repo-info").await;
        assert_eq!(
            (status, body),
            (200, json!({ "stargazers_count": 123, "forks_count": 45 }))
        );
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "cached");

    // Nothing listens there: 502 at once, never a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let s = start_with(Kind::Memory, |c| {
        c.github_repo_api = format!("http://127.0.0.1:{port}/repos/x/y")
    })
    .await
    .expect("server");
    let (status, body) = s.get_json("/github/repo-info").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "Error");
    assert!(body["message"].is_string());
}

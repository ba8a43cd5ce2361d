//! Local storage routes over real HTTP: round trips, listings, the upload rules, and a
//! hostile-path corpus against every local route, with a sentinel directory outside
//! the location that must stay byte-for-byte unchanged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{b64, multipart_body, raw_exchange, start_with_locations, TestServer};
use s4_core::location::{Locations, LocationsConfig};
use serde_json::{json, Value};

struct Fixture {
    server: TestServer,
    root: PathBuf,
    outside: PathBuf,
    _dir: tempfile::TempDir,
}

async fn fixture_with(max_file_size: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("volume");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("datasets/empty")).expect("mkdir");
    std::fs::create_dir_all(outside.join("nested")).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), b"top secret").expect("write");
    std::fs::write(outside.join("nested/deep.csv"), b"a,b\n").expect("write");
    std::fs::write(root.join("datasets/train.csv"), b"a,b\n1,2\n").expect("write");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link-file"))
        .expect("symlink");
    std::os::unix::fs::symlink(&outside, root.join("link-dir")).expect("symlink");
    let config = LocationsConfig::default()
        .with_paths([root.clone(), dir.path().join("missing")])
        .with_max_file_size(max_file_size);
    let locations = Locations::new(config).await;
    let server = start_with_locations(locations, |c| c.max_file_size = max_file_size).await;
    Fixture {
        server,
        root,
        outside,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(20 << 30).await
}

/// Every file and directory under `dir` with its bytes (symlinks as their text).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
            if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&path)
                        .expect("readlink")
                        .to_string_lossy()
                        .as_bytes()
                        .to_vec(),
                );
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

static NEXT_CLIENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Uploads from a fresh loopback address each time (127.0.x.y), so the per-IP upload
/// rate limit (20/min) never answers in place of the path checks under test.
async fn upload(s: &TestServer, route: &str, path: &str, data: &[u8]) -> (u16, Value) {
    let n = NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ip = std::net::Ipv4Addr::new(127, 0, (n >> 8) as u8, (n & 0xff) as u8 + 1);
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(ip))
        .build()
        .expect("client");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(data.to_vec()).file_name("whatever.bin"),
    );
    let response = client
        .post(s.url(&format!("/local/{route}/local-0/{}", b64(path))))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    assert_ne!(status, 429, "rate limited: the test must not depend on it");
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_rate_limit() {
    let f = fixture().await;
    let s = &f.server;
    for i in 0..20 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1]).file_name("f"),
        );
        let r = s
            .client
            .post(s.url(&format!(
                "/local/upload/local-0/{}",
                b64(&format!("r/{i}.txt"))
            )))
            .multipart(form)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 200);
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![1]).file_name("f"),
    );
    let r = s
        .client
        .post(s.url(&format!("/local/upload/local-0/{}", b64("r/21.txt"))))
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["message"],
        "Too many upload requests. Maximum 20 per minute."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_and_listing() {
    let f = fixture().await;
    let s = &f.server;
    let (status, body) = s.get_json("/local/locations").await;
    assert_eq!(status, 200);
    assert_eq!(body["locations"][0]["id"], "local-0");
    assert_eq!(body["locations"][0]["name"], "volume");
    assert_eq!(body["locations"][0]["type"], "local");
    assert_eq!(body["locations"][0]["available"], true);
    assert_eq!(body["locations"][1]["available"], false);
    for root in ["/local/files/local-0", "/local/files/local-0/"] {
        let (status, body) = s.get_json(root).await;
        assert_eq!(status, 200, "{root}: {body}");
        assert_eq!(body["currentPath"], "");
        assert_eq!(body["parentPath"], Value::Null);
        let names: Vec<&str> = body["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        // Symlinks leaving the root are never followed, so they are omitted or shown as links, never their targets.
        assert!(names.contains(&"datasets"), "{names:?}");
        assert!(!names.contains(&"secret.txt"));
    }
    let (status, body) = s
        .get_json(&format!("/local/files/local-0/{}", b64("datasets")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["currentPath"], "datasets");
    assert_eq!(body["parentPath"], ".");
    assert_eq!(body["totalCount"], 2);
    assert_eq!(
        body["files"][0],
        json!({"name": "empty", "path": "datasets/empty", "type": "directory"})
    );
    assert_eq!(body["files"][1]["name"], "train.csv");
    assert_eq!(body["files"][1]["size"], 8);
    assert!(body["files"][1]["modified"]
        .as_str()
        .is_some_and(|m| m.ends_with('Z')));
    let (_, body) = s
        .get_json(&format!(
            "/local/files/local-0/{}?limit=1&offset=1",
            b64("datasets")
        ))
        .await;
    assert_eq!(body["totalCount"], 2);
    assert_eq!(body["files"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["files"][0]["name"], "train.csv");
    let (status, body) = s.get_json("/local/files/local-0?limit=0").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("limit must be a positive integer"))
    );
    let (status, body) = s.get_json("/local/files/local-0?offset=-1").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("offset must be a non-negative integer"))
    );
    let (status, body) = s
        .get_json(&format!(
            "/local/files/local-0/{}",
            b64("datasets/train.csv")
        ))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Not a directory: datasets/train.csv"))
    );
    let (status, body) = s.get_json("/local/files/bogus").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "Not Found", "message": "Invalid location ID: bogus"})
        )
    );
    let (status, body) = s.get_json("/local/files/local-7").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "Not Found", "message": "Location index out of bounds: 7"})
        )
    );
    let (status, body) = s.get_json("/local/files/local-0/%21%21").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "Bad Request", "message": "Path is not valid base64."})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips() {
    let f = fixture().await;
    let s = &f.server;
    let path = "données/été 2024/rapport final.csv";
    let (status, body) = upload(s, "upload", path, b"x,y\n1,2\n").await;
    assert_eq!(
        (status, body),
        (200, json!({"uploaded": true, "path": path}))
    );
    assert_eq!(
        std::fs::read(f.root.join(path)).expect("written"),
        b"x,y\n1,2\n"
    );
    // Alias route; no overwrite.
    let (status, body) = upload(s, "files", path, b"other").await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"error": "Conflict", "message": "File already exists"})
        )
    );
    let r = s
        .get(&format!("/local/download/local-0/{}", b64(path)))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(disposition, "attachment; filename=\"rapport final.csv\"");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"x,y\n1,2\n");
    let r = s
        .client
        .get(s.url(&format!("/local/download/local-0/{}", b64(path))))
        .header("range", "bytes=2-3")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"y\n");
    let (status, body) = s
        .get_json(&format!("/local/view/local-0/{}", b64(path)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["metadata"]["path"], path);
    assert_eq!(
        body["preview"],
        json!({"available": true, "kind": "text", "content": "x,y\n1,2\n", "truncated": false})
    );
    let (_, body) = s
        .get_json(&format!("/local/view/local-0/{}", b64("données")))
        .await;
    assert_eq!(
        body["preview"],
        json!({"available": false, "reason": "directory"})
    );
    let r = s
        .get(&format!("/local/view/local-0/{}?raw=true", b64(path)))
        .await;
    assert!(r.headers().get("content-disposition").is_none());
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"x,y\n1,2\n");
    let (status, body) = s
        .get_json(&format!("/local/download/local-0/{}", b64("données")))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Not a file: données"))
    );
    // Directories: mkdir -p, idempotent, conflicts with files, listed when empty.
    let (status, body) = s
        .post_json(
            &format!("/local/create-directory/local-0/{}", b64("new folder/sub")),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"created": true, "path": "new folder/sub"}))
    );
    let (status, _) = s
        .post_json(
            &format!("/local/directories/local-0/{}", b64("new folder/sub")),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .post_json(
            &format!("/local/create-directory/local-0/{}", b64(path)),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"error": "Conflict", "message": "A file exists at this path"})
        )
    );
    let (_, body) = s
        .get_json(&format!("/local/files/local-0/{}", b64("new folder")))
        .await;
    assert_eq!(body["files"][0]["name"], "sub");
    // File-type policy and required paths.
    let (status, body) = upload(s, "upload", "run.sh", b"#!/bin/sh").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "InvalidFileType", "message": "File type .sh is blocked for security reasons"})
        )
    );
    let (status, body) = upload(s, "upload", "README", b"x").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Files without extensions are not allowed"))
    );
    let (status, body) = s.post_json("/local/upload/local-0/", json!(null)).await;
    assert!(status == 400 || status == 404, "{status} {body}");
    let r = s
        .client
        .post(s.url(&format!("/local/upload/local-0/{}", b64("nofile.txt"))))
        .body("raw")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.ok(),
        Some(json!({"error": "Bad Request", "message": "No file provided"}))
    );
    // Deletes: file, tree with count, the root refused.
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/local/local-0/{}", b64(path)),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"deleted": true, "itemCount": 1}))
    );
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/local/files/local-0/{}", b64("new folder")),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"deleted": true, "itemCount": 2}))
    );
    let (status, body) = s.json(reqwest::Method::DELETE, "/local/local-0/").await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "Forbidden", "message": "Cannot delete the root of a storage location"})
        )
    );
    let (status, _) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/local/local-0/{}", b64("gone.txt")),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_aborted_uploads_leave_nothing() {
    let f = fixture_with(1 << 20).await;
    let s = &f.server;
    let before = snapshot(&f.root);
    // Too large: 413, partial file removed.
    let (status, body) = upload(s, "upload", "big/too-big.bin", &vec![1u8; (1 << 20) + 1]).await;
    assert_eq!(
        (status, body),
        (
            413,
            json!({"error": "Payload Too Large", "message": "File too large"})
        )
    );
    // A client that stops mid-body (half-closes the connection): the server sees the
    // body end early, fails the write, and answers only after cleaning up.
    let (boundary, body) = multipart_body(&vec![2u8; 512 << 10]);
    let head = format!(
        "POST /api/local/upload/local-0/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        b64("big/half.bin"),
        body.len()
    );
    let mut conn = s.raw().await;
    {
        use tokio::io::AsyncWriteExt;
        conn.write_all(head.as_bytes()).await.expect("head");
        conn.write_all(&body[..body.len() / 2])
            .await
            .expect("half body");
        conn.shutdown().await.expect("half-close");
    }
    let answer = raw_exchange(&mut conn, "", b"").await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Nothing new: no destination, no temporary file (the created parent may remain,
    // as mkdir -p is step 3 of the contract, before the body is read).
    let after: BTreeMap<PathBuf, Vec<u8>> = snapshot(&f.root)
        .into_iter()
        .filter(|(p, _)| p != Path::new("big"))
        .collect();
    assert_eq!(after, before);
}

/// Paths that must never reach outside the location.
fn hostile_paths(outside: &Path) -> Vec<String> {
    let outside = outside.to_string_lossy();
    vec![
        "../".into(),
        "..".into(),
        "a/../../".into(),
        "a/../../outside/secret.txt".into(),
        format!("{}{}", "../".repeat(12), outside.trim_start_matches('/')),
        format!("{}/secret.txt", outside),
        "/etc/passwd".into(),
        "..\\..\\outside\\secret.txt".into(),
        "datasets\\..\\..".into(),
        "a\0b".into(),
        "link-file".into(),
        "link-dir".into(),
        "link-dir/secret.txt".into(),
        "link-dir/nested".into(),
        "link-dir/nested/deep.csv".into(),
        "link-dir/new-dir".into(),
        "link-dir/new.txt".into(),
    ]
}

/// Percent-encoded dots and slashes inside the Base64 payload are used verbatim
/// (API §7.1 step 5): they are odd names *inside* the location, never a way out.
const PERCENT_PATHS: &[&str] = &[
    "%2e%2e/%2e%2e/outside/secret.txt",
    "..%2f..%2foutside",
    "%2E%2E%2F%2E%2E%2Fsecret.txt",
];

async fn assert_refused(s: &TestServer, method: reqwest::Method, path: &str, what: &str) {
    let response = s
        .client
        .request(method.clone(), s.url(path))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert!(
        (400..500).contains(&status),
        "{method} {path} ({what}) answered {status}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_path_corpus() {
    let f = fixture().await;
    let s = &f.server;
    let sentinel = snapshot(&f.outside);
    for raw in hostile_paths(&f.outside) {
        let encoded = b64(&raw);
        let encoded_std =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw.as_bytes());
        for e in [encoded.as_str(), encoded_std.as_str()] {
            assert_refused(
                s,
                reqwest::Method::GET,
                &format!("/local/files/local-0/{e}"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::GET,
                &format!("/local/download/local-0/{e}"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::GET,
                &format!("/local/view/local-0/{e}"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::GET,
                &format!("/local/view/local-0/{e}?raw=true"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::POST,
                &format!("/local/create-directory/local-0/{e}"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::DELETE,
                &format!("/local/local-0/{e}"),
                &raw,
            )
            .await;
            assert_refused(
                s,
                reqwest::Method::DELETE,
                &format!("/local/files/local-0/{e}"),
                &raw,
            )
            .await;
        }
        for target in [raw.clone(), format!("{raw}/evil.txt")] {
            let (status, body) = upload(s, "upload", &target, b"pwned").await;
            assert!(
                (400..500).contains(&status),
                "upload {target:?}: {status} {body}"
            );
        }
    }
    for raw in PERCENT_PATHS {
        for route in ["files", "download", "view"] {
            assert_refused(
                s,
                reqwest::Method::GET,
                &format!("/local/{route}/local-0/{}", b64(raw)),
                raw,
            )
            .await;
        }
        let (status, body) = upload(s, "upload", &format!("{raw}.txt"), b"literal").await;
        assert_eq!(status, 200, "{raw}: {body}");
        assert_eq!(
            std::fs::read(f.root.join(format!("{raw}.txt"))).expect("created inside the root"),
            b"literal"
        );
        let (status, _) = s
            .post_json(
                &format!(
                    "/local/create-directory/local-0/{}",
                    b64(&format!("{raw}-dir"))
                ),
                json!(null),
            )
            .await;
        assert_eq!(status, 200);
        assert!(f.root.join(format!("{raw}-dir")).is_dir());
    }
    // Percent-encoded dots and slashes outside the Base64 payload are not Base64.
    for raw in ["%2E%2E%2F%2E%2E%2F", "..%2F..%2F", "../.."] {
        assert_refused(
            s,
            reqwest::Method::GET,
            &format!("/local/files/local-0/{raw}"),
            raw,
        )
        .await;
        assert_refused(
            s,
            reqwest::Method::GET,
            &format!("/local/download/local-0/{raw}"),
            raw,
        )
        .await;
    }
    assert_eq!(
        snapshot(&f.outside),
        sentinel,
        "the sentinel directory outside the location changed"
    );
    // The refusals carry the contract's names.
    let (status, body) = s
        .get_json(&format!("/local/files/local-0/{}", b64("../")))
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Forbidden")));
    let (status, body) = s
        .get_json(&format!("/local/download/local-0/{}", b64("link-file")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("Forbidden")),
        "{body}"
    );
    let (status, body) = s
        .get_json(&format!("/local/files/local-0/{}", b64("a\\b")))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Backslash characters not allowed in paths"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_swapped_for_outside_symlink() {
    let f = fixture().await;
    let s = &f.server;
    std::fs::create_dir_all(f.root.join("swap")).expect("mkdir");
    std::fs::write(f.root.join("swap/secret.txt"), b"inside").expect("write");
    let (status, _) = s
        .get_json(&format!("/local/files/local-0/{}", b64("swap")))
        .await;
    assert_eq!(status, 200);
    let r = s
        .get(&format!(
            "/local/download/local-0/{}",
            b64("swap/secret.txt")
        ))
        .await;
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"inside");
    // Between two requests the directory becomes a symlink to the outside.
    std::fs::remove_dir_all(f.root.join("swap")).expect("rm");
    std::os::unix::fs::symlink(&f.outside, f.root.join("swap")).expect("symlink");
    let sentinel = snapshot(&f.outside);
    for (method, route) in [
        (reqwest::Method::GET, "files"),
        (reqwest::Method::GET, "download"),
        (reqwest::Method::GET, "view"),
        (reqwest::Method::POST, "create-directory"),
        (reqwest::Method::DELETE, "files"),
    ] {
        for p in ["swap", "swap/secret.txt", "swap/nested", "swap/new"] {
            assert_refused(
                s,
                method.clone(),
                &format!("/local/{route}/local-0/{}", b64(p)),
                p,
            )
            .await;
        }
    }
    let (status, _) = upload(s, "upload", "swap/planted.txt", b"pwned").await;
    assert!((400..500).contains(&status));
    assert_eq!(snapshot(&f.outside), sentinel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_authorization_and_debug() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let dir = tempfile::tempdir().expect("temp");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    let locations = Locations::new(LocationsConfig::default().with_paths([a, b])).await;
    let auth = s4_core::auth::AuthConfig::from_lookup(&|n| match n {
        "DISABLE_AUTH" => Some("false".into()),
        "JWT_SECRET" => Some("secret-for-location-tests-0123456789".into()),
        _ => None,
    });
    let s = start_with_locations(locations, move |c| c.auth = auth).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let token = encode(
        &Header::default(),
        &json!({"id": "u1", "username": "alice", "roles": ["user"], "allowedLocations": ["local-1"], "iat": now, "exp": now + 600}),
        &EncodingKey::from_secret(b"secret-for-location-tests-0123456789"),
    )
    .expect("token");
    let get = |path: String| {
        let request = s.client.get(s.url(&path)).bearer_auth(&token);
        async move {
            let r = request.send().await.expect("get");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = get("/local/locations".into()).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["locations"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["local-1"]);
    let (status, body) = get("/local/files/local-0".into()).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "Forbidden", "message": "Access denied to location: local-0"})
        )
    );
    let (status, _) = get("/local/files/local-1".into()).await;
    assert_eq!(status, 200);
    let (status, body) = get("/local/debug".into()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Debug endpoint requires admin role"))
    );
}

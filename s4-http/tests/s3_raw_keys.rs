//! Keys that other tools write to an S3 engine but that are not plain paths — a
//! folder marker `x/`, an empty segment `a//b`, a `.` segment `./a`, a
//! trailing space `trail ` — are created here with a plain SigV4-signed
//! PUT sent byte for byte over TCP (nothing normalizes the path), then managed
//! through S4's REST API: listed, downloaded, HEADed, viewed and deleted.
//!
//! S3 only: reported as ignored without `S4_TEST_S3_ENDPOINT` (see `build.rs`), and
//! failing instead when `S4_REQUIRE_S3=1`.

mod common;

use chrono::Utc;
use common::{b64, start, Kind, TestServer};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The keys under test and their contents.
const KEYS: &[(&str, &[u8])] = &[
    ("x/", b"folder marker body"),
    ("a//b", b"empty segment"),
    ("./a", b"dot segment"),
    // No leading-slash key: Garage 2.5 stores a PUT of `/bucket//lead` as `lead`
    // (it strips the key's leading slashes), so such a key cannot exist there.
    ("trail ", b"trailing space"),
];

/// A plain S3 client: the test environment's endpoint and credentials.
struct PlainS3 {
    host: String,
    access_key: String,
    secret: String,
    region: String,
}

/// What the engine answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// S3's URI encoding of a key: unreserved characters and `/` literal, every other
/// byte `%XX`. The same text is sent and signed.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl PlainS3 {
    fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).unwrap_or_default();
        let endpoint = var("S4_TEST_S3_ENDPOINT");
        let host = endpoint
            .strip_prefix("http://")
            .expect("the raw client speaks plain http to the test engine")
            .trim_end_matches('/')
            .to_string();
        let region = std::env::var("S4_TEST_S3_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_string());
        PlainS3 {
            host,
            access_key: var("S4_TEST_S3_ACCESS_KEY_ID"),
            secret: var("S4_TEST_S3_SECRET_ACCESS_KEY"),
            region,
        }
    }

    /// Sends one SigV4-signed request for `key` (path-style) over a fresh TCP
    /// connection, exactly as written.
    async fn request(&self, method: &str, bucket: &str, key: &str, body: &[u8]) -> Answer {
        let now = Utc::now();
        let date = now.format("%Y%m%d").to_string();
        let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
        let path = format!("/{bucket}/{}", encode_key(key));
        let payload_hash = hex(&Sha256::digest(body));
        let canonical = format!(
            "{method}\n{path}\n\nhost:{}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{stamp}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_hash}",
            self.host
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut signing_key = hmac(format!("AWS4{}", self.secret).as_bytes(), &date);
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            signing_key = hmac(&signing_key, part);
        }
        let signature = hex(&hmac(&signing_key, &to_sign));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nx-amz-date: {stamp}\r\nx-amz-content-sha256: {payload_hash}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            self.access_key,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .expect("connect to the S3 engine");
        stream.write_all(head.as_bytes()).await.expect("send head");
        stream.write_all(body).await.expect("send body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read the answer");
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in the engine's answer: {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Answer { status, body }
    }
}

/// Every object key reachable by walking the delimited listing from the root,
/// folder by folder, as a client browsing the bucket would.
async fn walk(server: &TestServer, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut folders = vec![String::new()];
    let mut visited = 0;
    while let Some(prefix) = folders.pop() {
        visited += 1;
        assert!(visited < 50, "listing walk does not end");
        let path = if prefix.is_empty() {
            format!("/objects/{bucket}")
        } else {
            format!("/objects/{bucket}/{}", b64(&prefix))
        };
        let (status, body) = server.get_json(&path).await;
        assert_eq!(status, 200, "list {prefix:?}: {body}");
        assert_eq!(body["isTruncated"], false, "list {prefix:?}: {body}");
        for object in body["objects"].as_array().expect("objects array") {
            keys.push(object["Key"].as_str().expect("Key").to_string());
        }
        for folder in body["prefixes"].as_array().expect("prefixes array") {
            let folder = folder["Prefix"].as_str().expect("Prefix").to_string();
            assert!(
                folder.starts_with(&prefix) && folder.len() > prefix.len(),
                "prefix {folder:?} under {prefix:?}"
            );
            folders.push(folder);
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn keys_written_by_other_tools_are_manageable() {
    let Some(server) = start(Kind::S3).await else {
        return;
    };
    let s3 = PlainS3::from_env();
    let bucket = server.bucket("rawkeys").await;

    // Created directly on the engine, byte for byte.
    for (key, data) in KEYS {
        let answer = s3.request("PUT", &bucket, key, data).await;
        assert_eq!(
            answer.status, 200,
            "the engine refused PUT of {key:?}: {answer:?}"
        );
    }
    for (key, data) in KEYS {
        let answer = s3.request("GET", &bucket, key, b"").await;
        assert_eq!(
            (answer.status, answer.body.as_bytes()),
            (200, *data),
            "the engine stored {key:?} under another name"
        );
    }

    // Listed: every key is found by browsing the folders.
    let mut expected: Vec<String> = KEYS.iter().map(|(k, _)| k.to_string()).collect();
    expected.sort();
    assert_eq!(walk(&server, &bucket).await, expected);
    let (_, root) = server.get_json(&format!("/objects/{bucket}")).await;
    let root_prefixes: Vec<&str> = root["prefixes"]
        .as_array()
        .expect("prefixes")
        .iter()
        .filter_map(|p| p["Prefix"].as_str())
        .collect();
    for folder in ["./", "a/", "x/"] {
        assert!(root_prefixes.contains(&folder), "{folder:?} in {root}");
    }

    for (key, data) in KEYS {
        let encoded = b64(key);
        // Downloaded: the exact bytes.
        let response = server
            .get(&format!("/objects/download/{bucket}/{encoded}"))
            .await;
        assert_eq!(response.status(), 200, "download {key:?}");
        assert_eq!(
            response.bytes().await.expect("body").as_ref(),
            *data,
            "download {key:?}"
        );
        // A range of it.
        let response = server
            .client
            .get(server.url(&format!("/objects/download/{bucket}/{encoded}")))
            .header("range", "bytes=1-3")
            .send()
            .await
            .expect("ranged download");
        assert_eq!(response.status(), 206, "ranged download {key:?}");
        assert_eq!(
            response.bytes().await.expect("body").as_ref(),
            &data[1..4],
            "ranged download {key:?}"
        );
        // HEADed through the metadata route.
        let (status, meta) = server
            .get_json(&format!("/objects/metadata/{bucket}/{encoded}"))
            .await;
        assert_eq!(status, 200, "metadata {key:?}: {meta}");
        assert_eq!(meta["key"], *key, "metadata {key:?}: {meta}");
        assert_eq!(meta["size"], data.len(), "metadata {key:?}: {meta}");
        // Viewed, as JSON and raw.
        let (status, view) = server
            .get_json(&format!("/objects/view/{bucket}/{encoded}"))
            .await;
        assert_eq!(status, 200, "view {key:?}: {view}");
        assert_eq!(view["metadata"]["key"], *key, "view {key:?}: {view}");
        assert_eq!(view["metadata"]["size"], data.len(), "view {key:?}: {view}");
        let response = server
            .get(&format!("/objects/view/{bucket}/{encoded}?raw=true"))
            .await;
        assert_eq!(response.status(), 200, "raw view {key:?}");
        assert_eq!(
            response.bytes().await.expect("body").as_ref(),
            *data,
            "raw view {key:?}"
        );
    }

    // Deleting folder `a` removes `a//b` (and nothing else).
    let (status, body) = server
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("a")),
        )
        .await;
    assert_eq!(status, 200, "delete folder a: {body}");
    assert_eq!(body["count"], 1, "delete folder a: {body}");
    assert_eq!(s3.request("GET", &bucket, "a//b", b"").await.status, 404);
    let (status, _) = server
        .get_json(&format!("/objects/metadata/{bucket}/{}", b64("a//b")))
        .await;
    assert_eq!(status, 404, "a//b after deleting folder a");
    assert_eq!(
        s3.request("GET", &bucket, "./a", b"").await.status,
        200,
        "deleting folder a must not touch ./a"
    );

    // Deleting the marker `x/` as a folder removes the marker itself.
    let (status, body) = server
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("x/")),
        )
        .await;
    assert_eq!(status, 200, "delete folder x/: {body}");
    assert_eq!(s3.request("GET", &bucket, "x/", b"").await.status, 404);

    // The others are deleted one by one, and are gone from the engine.
    for key in ["./a", "trail "] {
        let (status, body) = server
            .json(
                reqwest::Method::DELETE,
                &format!("/objects/{bucket}/{}", b64(key)),
            )
            .await;
        assert_eq!(status, 200, "delete {key:?}: {body}");
        let answer = s3.request("GET", &bucket, key, b"").await;
        assert_eq!(
            answer.status, 404,
            "{key:?} still on the engine: {answer:?}"
        );
        let response = server
            .get(&format!("/objects/download/{bucket}/{}", b64(key)))
            .await;
        assert_eq!(response.status(), 404, "download of deleted {key:?}");
    }
    assert_eq!(walk(&server, &bucket).await, Vec::<String>::new());

    let (status, body) = server
        .json(reqwest::Method::DELETE, &format!("/buckets/{bucket}"))
        .await;
    assert_eq!(status, 200, "delete bucket: {body}");
}

//! The S3 protocol endpoint over real HTTP: `object_store`'s AmazonS3 client for
//! everything it covers, raw SigV4-signed requests (a small signer below) for the
//! rest, negative signature cases, cross-API visibility with the REST API, and
//! webhook events for S3-protocol writes. Bodies run on the memory and local
//! backends, and those independent of the embedded store's staging, tokens and
//! multipart ETags also over Garage (the daemon keeps the endpoint off for the
//! s3 backend by default, but it works there).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{b64, Kind, TestServer};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use s4_http::s3::{S3Credentials, S3Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const ACCESS_KEY: &str = "S4TESTACCESSKEY00001";
const SECRET_KEY: &str = "s4-test-secret-key-0000000000000000000000";
const REGION: &str = "us-east-1";

/// A REST server plus an S3 endpoint over the same `S4`.
struct Endpoints {
    rest: TestServer,
    s3: SocketAddr,
    raw: Signer,
    _stop: oneshot::Sender<()>,
}

/// `None` for the S3 backend without a test endpoint (`S4_TEST_S3_ENDPOINT`).
async fn start(kind: Kind) -> Option<Endpoints> {
    let rest = common::start(kind).await?;
    let endpoint = S3Endpoint::new(rest.s4.clone(), S3Credentials::new(ACCESS_KEY, SECRET_KEY))
        .await
        .expect("S3 endpoint");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let s3 = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(s4_http::s3::serve(
        listener,
        endpoint,
        async {
            let _ = rx.await;
        },
        s4_http::ServeOptions::without_timeouts(),
    ));
    Some(Endpoints {
        rest,
        s3,
        raw: Signer::new(s3, ACCESS_KEY, SECRET_KEY),
        _stop: tx,
    })
}

impl Endpoints {
    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(format!("http://{}", self.s3))
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region(REGION)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("AmazonS3")
    }

    async fn bucket(&self, tag: &str) -> String {
        let name = s4_core::testing::unique_bucket(tag).to_string();
        let r = self.raw.send("PUT", &format!("/{name}"), &[], b"").await;
        assert_eq!(r.status, 200, "CreateBucket: {}", r.body);
        name
    }
}

// ---------------------------------------------------------------- SigV4 signer

mod sigv4 {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn sha256_hex(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Canonical query: `k=v` pairs (already URI-encoded) sorted.
    pub(crate) fn canonical_query(query: &str) -> String {
        let mut pairs: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                if p.contains('=') {
                    p.to_string()
                } else {
                    format!("{p}=")
                }
            })
            .collect();
        pairs.sort();
        pairs.join("&")
    }

    /// The signature of a request; `headers` are lower-case `(name, value)`,
    /// all signed.
    pub(crate) fn signature(
        secret: &str,
        (date, amz_date): (&str, &str),
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        payload_hash: &str,
    ) -> String {
        let mut headers = headers.to_vec();
        headers.sort();
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let canonical = format!(
            "{method}\n{path}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
            canonical_query(query),
            signed.join(";")
        );
        let scope = format!("{date}/{}/s3/aws4_request", super::REGION);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let k = hmac(format!("AWS4{secret}").as_bytes(), date);
        let k = hmac(&k, super::REGION);
        let k = hmac(&k, "s3");
        let k = hmac(&k, "aws4_request");
        hex(&hmac(&k, &to_sign))
    }
}

struct Response {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The text of the first `<tag>` in the body.
    fn xml(&self, tag: &str) -> Option<String> {
        let open = format!("<{tag}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{tag}>"))?;
        Some(self.body[start..start + end].to_string())
    }

    fn all(&self, tag: &str) -> Vec<String> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let Some(j) = rest.find(&close) else { break };
            out.push(rest[..j].to_string());
            rest = &rest[j..];
        }
        out
    }
}

/// Signs and sends raw S3 requests.
struct Signer {
    addr: SocketAddr,
    access: String,
    secret: String,
    client: reqwest::Client,
}

fn now_stamps(offset_secs: i64) -> (String, String) {
    let t = chrono::Utc::now() + chrono::Duration::seconds(offset_secs);
    (
        t.format("%Y%m%d").to_string(),
        t.format("%Y%m%dT%H%M%SZ").to_string(),
    )
}

impl Signer {
    fn new(addr: SocketAddr, access: &str, secret: &str) -> Self {
        Signer {
            addr,
            access: access.into(),
            secret: secret.into(),
            client: reqwest::Client::new(),
        }
    }

    fn with_keys(&self, access: &str, secret: &str) -> Signer {
        Signer::new(self.addr, access, secret)
    }

    /// The headers of a signed request (`authorization` included).
    fn signed_headers(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let (date, amz_date) = now_stamps(0);
        let payload = sigv4::sha256_hex(body);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.addr.to_string()),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-content-sha256".into(), payload.clone()),
        ];
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.to_string()));
        }
        let signature = sigv4::signature(
            &self.secret,
            (&date, &amz_date),
            method,
            path,
            query,
            &headers,
            &payload,
        );
        let mut names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{date}/{REGION}/s3/aws4_request, SignedHeaders={}, Signature={signature}",
                self.access,
                names.join(";")
            ),
        ));
        headers
    }

    async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let headers = self.signed_headers(method, path_and_query, extra, body);
        let mut request = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("http://{}{path_and_query}", self.addr),
        );
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.body(body.to_vec()).send().await.expect("send");
        Response {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    /// A presigned URL valid `expires` seconds from `offset` seconds from now.
    fn presign(&self, method: &str, path: &str, expires: u64, offset: i64) -> String {
        let (date, amz_date) = now_stamps(offset);
        let credential =
            format!("{}/{date}/{REGION}/s3/aws4_request", self.access).replace('/', "%2F");
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={amz_date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
        );
        let signature = sigv4::signature(
            &self.secret,
            (&date, &amz_date),
            method,
            path,
            &query,
            &[("host".into(), self.addr.to_string())],
            "UNSIGNED-PAYLOAD",
        );
        format!(
            "http://{}{path}?{query}&X-Amz-Signature={signature}",
            self.addr
        )
    }
}

async fn plain(method: reqwest::Method, url: &str, body: Vec<u8>) -> Response {
    let response = reqwest::Client::new()
        .request(method, url)
        .body(body)
        .send()
        .await
        .expect("send");
    Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    sigv4::hex(&Md5::digest(data))
}

async fn cleanup(e: &Endpoints, bucket: &str) {
    e.rest.remove_bucket(bucket).await;
}

macro_rules! on_local_and_memory {
    ($($name:ident),* $(,)?) => {
        mod memory { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Memory).await }
        )* }
        mod local { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Local).await }
        )* }
    };
}

/// The endpoint over an S3 engine (Garage): off by default in the daemon, but it
/// works; the bodies that do not depend on the embedded store's staging,
/// continuation tokens or multipart ETags.
mod garage {
    macro_rules! on_garage {
        ($($name:ident),* $(,)?) => { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
            async fn $name() { super::$name(super::Kind::S3).await }
        )* };
    }
    on_garage!(
        object_store_client_round_trip,
        conditional_and_ranged_reads,
        content_md5_is_checked,
        copy_object_directives,
        delete_objects_batch,
        signatures_are_checked,
        presigned_urls,
        cross_api_visibility,
    );
}

on_local_and_memory!(
    object_store_client_round_trip,
    object_store_multipart_and_etags,
    bucket_operations,
    listings_v1_and_v2,
    multipart_raw_operations,
    conditional_and_ranged_reads,
    content_md5_is_checked,
    copy_object_directives,
    delete_objects_batch,
    signatures_are_checked,
    presigned_urls,
    bad_input_is_an_s3_error,
    empty_put_with_expect_continue_does_not_stall,
    cross_api_visibility,
    interrupted_put_leaves_nothing,
);

// ---------------------------------------------------------------- object_store

async fn object_store_client_round_trip(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3os").await;
    let store = e.store(&bucket);
    let body = data(100_000, 1);
    let put = store
        .put(&Path::from("dir/a.bin"), PutPayload::from(body.clone()))
        .await
        .expect("put");
    assert_eq!(
        put.e_tag
            .as_deref()
            .map(|t| t.trim_matches('"').to_string()),
        Some(md5_hex(&body))
    );
    store
        .put(
            &Path::from("dir/sub/b.txt"),
            PutPayload::from_static(b"hello"),
        )
        .await
        .expect("put b");
    store
        .put(&Path::from("top.txt"), PutPayload::from_static(b"top"))
        .await
        .expect("put top");

    // Whole and ranged GET, HEAD.
    let got = store
        .get(&Path::from("dir/a.bin"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(got.as_ref(), body.as_slice());
    let range = store
        .get_range(&Path::from("dir/a.bin"), 10..20)
        .await
        .expect("range");
    assert_eq!(range.as_ref(), &body[10..20]);
    let suffix = store
        .get_opts(
            &Path::from("dir/a.bin"),
            GetOptions {
                range: Some(GetRange::Suffix(5)),
                ..GetOptions::default()
            },
        )
        .await
        .expect("suffix")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(suffix.as_ref(), &body[body.len() - 5..]);
    let head = store.head(&Path::from("dir/a.bin")).await.expect("head");
    assert_eq!(head.size, body.len() as u64);

    // Listing: recursive and delimited.
    let all: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(all, vec!["dir/a.bin", "dir/sub/b.txt", "top.txt"]);
    let under = store
        .list_with_delimiter(Some(&Path::from("dir")))
        .await
        .expect("list delimited");
    let objects: Vec<String> = under
        .objects
        .iter()
        .map(|o| o.location.to_string())
        .collect();
    let prefixes: Vec<String> = under
        .common_prefixes
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(objects, vec!["dir/a.bin"]);
    assert_eq!(prefixes, vec!["dir/sub"]);

    // Copy, delete.
    store
        .copy(&Path::from("top.txt"), &Path::from("copy.txt"))
        .await
        .expect("copy");
    let copied = store
        .get(&Path::from("copy.txt"))
        .await
        .expect("get copy")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(copied.as_ref(), b"top");
    store.delete(&Path::from("top.txt")).await.expect("delete");
    let gone = store.head(&Path::from("top.txt")).await;
    assert!(
        matches!(gone, Err(object_store::Error::NotFound { .. })),
        "{gone:?}"
    );
    // Deleting a key deletes only that key, not a "folder" below it.
    store
        .delete(&Path::from("dir"))
        .await
        .expect("delete dir key");
    assert!(store.head(&Path::from("dir/a.bin")).await.is_ok());
    cleanup(&e, &bucket).await;
}

async fn object_store_multipart_and_etags(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3mp").await;
    let store: Arc<dyn ObjectStore> = Arc::new(e.store(&bucket));
    let body = data(12 << 20, 7);
    let upload = store
        .put_multipart(&Path::from("big.bin"))
        .await
        .expect("multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
    for chunk in body.chunks(1 << 20) {
        writer.write(chunk);
    }
    let result = writer.finish().await.expect("complete");
    // S3's multipart ETag: MD5 of the part MD5s, "-3".
    let parts: Vec<u8> = body
        .chunks(5 << 20)
        .flat_map(|p| {
            use md5::{Digest, Md5};
            Md5::digest(p).to_vec()
        })
        .collect();
    let expected = format!("{}-3", md5_hex(&parts));
    assert_eq!(
        result.e_tag.as_deref().map(|t| t.trim_matches('"')),
        Some(expected.as_str())
    );
    let got = store
        .get(&Path::from("big.bin"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(got.as_ref() == body.as_slice(), "multipart bytes differ");
    // The same ETag through the REST API.
    let (status, meta) = e
        .rest
        .get_json(&format!("/objects/metadata/{bucket}/{}", b64("big.bin")))
        .await;
    assert_eq!(status, 200, "{meta}");
    assert!(
        meta.to_string().contains(&expected),
        "REST metadata: {meta}"
    );
    // No staging leftovers in the bucket listing.
    let listed: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(listed, vec!["big.bin"]);
    cleanup(&e, &bucket).await;
}

// ---------------------------------------------------------------- raw operations

async fn bucket_operations(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3bk").await;
    let again = e.raw.send("PUT", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(
        again.xml("Code").as_deref(),
        Some("BucketAlreadyOwnedByYou")
    );

    let list = e.raw.send("GET", "/", &[], b"").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.all("Name").contains(&bucket), "{}", list.body);

    let head = e.raw.send("HEAD", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(head.status, 200);
    let missing = s4_core::testing::unique_bucket("s3none").to_string();
    let head = e.raw.send("HEAD", &format!("/{missing}"), &[], b"").await;
    assert_eq!(head.status, 404);

    let location = e
        .raw
        .send("GET", &format!("/{bucket}?location"), &[], b"")
        .await;
    assert_eq!(location.status, 200, "{}", location.body);
    assert!(
        location.body.contains("LocationConstraint"),
        "{}",
        location.body
    );

    let put = e.raw.send("PUT", &format!("/{bucket}/k"), &[], b"x").await;
    assert_eq!(put.status, 200, "{}", put.body);
    let not_empty = e.raw.send("DELETE", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(not_empty.status, 409, "{}", not_empty.body);
    assert_eq!(not_empty.xml("Code").as_deref(), Some("BucketNotEmpty"));
    let del = e
        .raw
        .send("DELETE", &format!("/{bucket}/k"), &[], b"")
        .await;
    assert_eq!(del.status, 204, "{}", del.body);
    let del = e.raw.send("DELETE", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(del.status, 204, "{}", del.body);
    let gone = e
        .raw
        .send("GET", &format!("/{bucket}?list-type=2"), &[], b"")
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.xml("Code").as_deref(), Some("NoSuchBucket"));
}

async fn listings_v1_and_v2(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3ls").await;
    for k in ["a/1", "a/2", "a/b/3", "c", "d e+f"] {
        let path = format!("/{bucket}/{}", k.replace(' ', "%20").replace('+', "%2B"));
        let r = e.raw.send("PUT", &path, &[], k.as_bytes()).await;
        assert_eq!(r.status, 200, "PUT {k}: {}", r.body);
    }
    // V2, delimited.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?delimiter=%2F&list-type=2"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.all("Key"), vec!["c", "d e+f"]);
    assert_eq!(r.all("Prefix")[1..].to_vec(), vec!["a/"]);
    // V2, prefix, paged by max-keys with continuation.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?list-type=2&max-keys=2&prefix=a%2F"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.all("Key"), vec!["a/1", "a/2"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    let token = r.xml("NextContinuationToken").expect("token");
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?continuation-token={token}&list-type=2&max-keys=2&prefix=a%2F"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.all("Key"), vec!["a/b/3"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    // start-after.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?list-type=2&start-after=a%2F2"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.all("Key"), vec!["a/b/3", "c", "d e+f"]);
    // encoding-type=url.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?encoding-type=url&list-type=2&prefix=d"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.all("Key"), vec!["d%20e%2Bf"]);
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
    // max-keys=0.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?list-type=2&max-keys=0"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.all("Key").is_empty());
    // V1 with marker and NextMarker.
    let r = e
        .raw
        .send("GET", &format!("/{bucket}?max-keys=2"), &[], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.all("Key"), vec!["a/1", "a/2"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    let next = r.xml("NextMarker").expect("NextMarker");
    assert_eq!(next, "a/2");
    let r = e
        .raw
        .send("GET", &format!("/{bucket}?marker=a%2F2"), &[], b"")
        .await;
    assert_eq!(r.all("Key"), vec!["a/b/3", "c", "d e+f"]);
    // An unsupported delimiter is a clear error, not a 500.
    let r = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?delimiter=x&list-type=2"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 501, "{}", r.body);
    cleanup(&e, &bucket).await;
}

async fn multipart_raw_operations(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3mpu").await;
    let source = data(6 << 20, 3);
    let r = e
        .raw
        .send("PUT", &format!("/{bucket}/src"), &[], &source)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let create = |key: &'static str| {
        let bucket = bucket.clone();
        let raw = &e.raw;
        async move {
            let r = raw
                .send(
                    "POST",
                    &format!("/{bucket}/{key}?uploads"),
                    &[("content-type", "text/csv")],
                    b"",
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.xml("UploadId").expect("UploadId")
        }
    };
    let id = create("joined.csv").await;
    let part1 = data(5 << 20, 9);
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/joined.csv?partNumber=1&uploadId={id}"),
            &[],
            &part1,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let etag1 = r.header("etag").expect("part etag").to_string();
    assert_eq!(etag1.trim_matches('"'), md5_hex(&part1));
    // Part 2 copied from a range of another object.
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/joined.csv?partNumber=2&uploadId={id}"),
            &[
                ("x-amz-copy-source", &format!("/{bucket}/src")),
                ("x-amz-copy-source-range", "bytes=100-1099"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let etag2 = r.xml("ETag").expect("copy etag").replace("&quot;", "\"");
    assert_eq!(etag2.trim_matches('"'), md5_hex(&source[100..1100]));
    // Part 3 small.
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/joined.csv?partNumber=3&uploadId={id}"),
            &[],
            b"end",
        )
        .await;
    assert_eq!(r.status, 200);
    let etag3 = r.header("etag").expect("etag").to_string();

    let parts = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}/joined.csv?uploadId={id}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(parts.status, 200, "{}", parts.body);
    assert_eq!(parts.all("PartNumber"), vec!["1", "2", "3"]);
    let uploads = e
        .raw
        .send("GET", &format!("/{bucket}?uploads"), &[], b"")
        .await;
    assert_eq!(uploads.status, 200, "{}", uploads.body);
    assert_eq!(uploads.all("UploadId"), vec![id.clone()]);
    // Nothing visible yet.
    let head = e
        .raw
        .send("HEAD", &format!("/{bucket}/joined.csv"), &[], b"")
        .await;
    assert_eq!(head.status, 404);

    let complete_xml = |parts: &[(u32, &str)]| {
        let mut x = String::from("<CompleteMultipartUpload>");
        for (n, tag) in parts {
            x.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{tag}</ETag></Part>"
            ));
        }
        x.push_str("</CompleteMultipartUpload>");
        x
    };
    let path = format!("/{bucket}/joined.csv?uploadId={id}");
    // Wrong ETag → InvalidPart; unknown part → InvalidPart.
    let r = e
        .raw
        .send(
            "POST",
            &path,
            &[],
            complete_xml(&[(1, "\"0000\"")]).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidPart"));
    let r = e
        .raw
        .send(
            "POST",
            &path,
            &[],
            complete_xml(&[(1, &etag1), (7, &etag3)]).as_bytes(),
        )
        .await;
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidPart"));
    // Out of order → InvalidPartOrder.
    let r = e
        .raw
        .send(
            "POST",
            &path,
            &[],
            complete_xml(&[(2, &etag2), (1, &etag1)]).as_bytes(),
        )
        .await;
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidPartOrder"));
    // A small part that is not last → EntityTooSmall.
    let r = e
        .raw
        .send(
            "POST",
            &path,
            &[],
            complete_xml(&[(1, &etag1), (2, &etag2), (3, &etag3)]).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("EntityTooSmall"));
    // Parts 1 and 3 complete.
    let r = e
        .raw
        .send(
            "POST",
            &path,
            &[],
            complete_xml(&[(1, &etag1), (3, &etag3)]).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut digests = Vec::new();
    for p in [&part1[..], b"end"] {
        use md5::{Digest, Md5};
        digests.extend_from_slice(&Md5::digest(p));
    }
    let expected = format!("{}-2", md5_hex(&digests));
    assert!(r.body.contains(&expected), "{}", r.body);
    let get = e
        .raw
        .send("HEAD", &format!("/{bucket}/joined.csv"), &[], b"")
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(get.header("etag"), Some(format!("\"{expected}\"").as_str()));
    assert_eq!(get.header("content-type"), Some("text/csv"));
    assert_eq!(
        get.header("content-length"),
        Some(((5 << 20) + 3).to_string().as_str())
    );
    // The completed upload is gone.
    let r = e.raw.send("GET", &path, &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchUpload"));

    // Abort leaves nothing: no object, no upload, no staged file.
    let id = create("aborted.bin").await;
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/aborted.bin?partNumber=1&uploadId={id}"),
            &[],
            &part1,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = e
        .raw
        .send(
            "DELETE",
            &format!("/{bucket}/aborted.bin?uploadId={id}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let head = e
        .raw
        .send("HEAD", &format!("/{bucket}/aborted.bin"), &[], b"")
        .await;
    assert_eq!(head.status, 404);
    let uploads = e
        .raw
        .send("GET", &format!("/{bucket}?uploads"), &[], b"")
        .await;
    assert!(uploads.all("UploadId").is_empty(), "{}", uploads.body);
    if let Some(dir) = e.rest.data_dir() {
        let staging = dir.join(".s4").join("multipart");
        let left: Vec<_> = std::fs::read_dir(&staging)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "staged parts left: {left:?}");
    }
    cleanup(&e, &bucket).await;
}

async fn conditional_and_ranged_reads(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3cond").await;
    let body = data(1000, 5);
    let path = format!("/{bucket}/obj");
    let r = e.raw.send("PUT", &path, &[], &body).await;
    let etag = r.header("etag").expect("etag").to_string();

    let r = e
        .raw
        .send("GET", &path, &[("if-none-match", &etag)], b"")
        .await;
    assert_eq!(r.status, 304);
    let r = e
        .raw
        .send("GET", &path, &[("if-none-match", "\"other\"")], b"")
        .await;
    assert_eq!(r.status, 200);
    let r = e
        .raw
        .send("GET", &path, &[("if-match", "\"other\"")], b"")
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.xml("Code").as_deref(), Some("PreconditionFailed"));
    let r = e.raw.send("GET", &path, &[("if-match", &etag)], b"").await;
    assert_eq!(r.status, 200);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let r = e
        .raw
        .send("GET", &path, &[("if-modified-since", future)], b"")
        .await;
    assert_eq!(r.status, 304);
    let r = e
        .raw
        .send("GET", &path, &[("if-modified-since", past)], b"")
        .await;
    assert_eq!(r.status, 200);
    let r = e
        .raw
        .send("GET", &path, &[("if-unmodified-since", past)], b"")
        .await;
    assert_eq!(r.status, 412);
    let r = e
        .raw
        .send("HEAD", &path, &[("if-none-match", &etag)], b"")
        .await;
    assert_eq!(r.status, 304);

    let r = e
        .raw
        .send("GET", &path, &[("range", "bytes=10-19")], b"")
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.header("content-length"), Some("10"));
    let r = e
        .raw
        .send("GET", &path, &[("range", "bytes=2000-")], b"")
        .await;
    assert_eq!(r.status, 416, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidRange"));
    let r = e
        .raw
        .send("GET", &format!("/{bucket}/missing"), &[], b"")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchKey"));
    cleanup(&e, &bucket).await;
}

async fn content_md5_is_checked(kind: Kind) {
    use base64::Engine;
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3md5").await;
    let body = b"checked body";
    let good = {
        use md5::{Digest, Md5};
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
    };
    let bad = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/bad"),
            &[("content-md5", &bad)],
            body,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("BadDigest"));
    let r = e
        .raw
        .send("HEAD", &format!("/{bucket}/bad"), &[], b"")
        .await;
    assert_eq!(r.status, 404, "a bad digest must store nothing");
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/bad"),
            &[("content-md5", "xx")],
            body,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidDigest"));
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/good"),
            &[("content-md5", &good)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    cleanup(&e, &bucket).await;
}

async fn copy_object_directives(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3cp").await;
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/src.bin"),
            &[("content-type", "image/png"), ("x-amz-meta-colour", "blue")],
            b"pixels",
        )
        .await;
    assert_eq!(r.status, 200);
    let source = format!("/{bucket}/src.bin");
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/copy1"),
            &[("x-amz-copy-source", &source)],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("CopyObjectResult"), "{}", r.body);
    let h = e
        .raw
        .send("HEAD", &format!("/{bucket}/copy1"), &[], b"")
        .await;
    assert_eq!(h.header("content-type"), Some("image/png"));
    assert_eq!(h.header("x-amz-meta-colour"), Some("blue"));
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/copy2"),
            &[
                ("x-amz-copy-source", &source),
                ("x-amz-metadata-directive", "REPLACE"),
                ("content-type", "text/plain"),
                ("x-amz-meta-size", "small"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = e
        .raw
        .send("HEAD", &format!("/{bucket}/copy2"), &[], b"")
        .await;
    assert_eq!(h.header("content-type"), Some("text/plain"));
    assert_eq!(h.header("x-amz-meta-size"), Some("small"));
    assert_eq!(h.header("x-amz-meta-colour"), None);
    // Onto itself without a change: InvalidRequest.
    let r = e
        .raw
        .send("PUT", &source, &[("x-amz-copy-source", &source)], b"")
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidRequest"));
    let r = e
        .raw
        .send(
            "PUT",
            &format!("/{bucket}/x"),
            &[("x-amz-copy-source", &format!("/{bucket}/nope"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 404);
    cleanup(&e, &bucket).await;
}

async fn delete_objects_batch(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3dels").await;
    for k in ["a", "b", "c"] {
        e.raw
            .send("PUT", &format!("/{bucket}/{k}"), &[], b"x")
            .await;
    }
    let xml = "<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object><Object><Key>missing</Key></Object></Delete>";
    let r = e
        .raw
        .send("POST", &format!("/{bucket}?delete"), &[], xml.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut deleted = r.all("Key");
    deleted.sort();
    assert_eq!(deleted, vec!["a", "b", "missing"]);
    let list = e
        .raw
        .send("GET", &format!("/{bucket}?list-type=2"), &[], b"")
        .await;
    assert_eq!(list.all("Key"), vec!["c"]);
    let quiet = "<Delete><Quiet>true</Quiet><Object><Key>c</Key></Object></Delete>";
    let r = e
        .raw
        .send("POST", &format!("/{bucket}?delete"), &[], quiet.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.all("Key").is_empty(), "{}", r.body);
    let list = e
        .raw
        .send("GET", &format!("/{bucket}?list-type=2"), &[], b"")
        .await;
    assert!(list.all("Key").is_empty());
    cleanup(&e, &bucket).await;
}

// ---------------------------------------------------------------- authentication

async fn signatures_are_checked(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3auth").await;
    let url = format!("http://{}/{bucket}/k", e.s3);
    let anonymous = plain(reqwest::Method::PUT, &url, b"x".to_vec()).await;
    assert_eq!(anonymous.status, 403, "{}", anonymous.body);
    assert_eq!(anonymous.xml("Code").as_deref(), Some("AccessDenied"));
    let anonymous = plain(reqwest::Method::GET, &format!("http://{}/", e.s3), vec![]).await;
    assert_eq!(anonymous.status, 403);

    let wrong_secret = e.raw.with_keys(ACCESS_KEY, "not-the-secret");
    let r = wrong_secret
        .send("PUT", &format!("/{bucket}/k"), &[], b"x")
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"));

    let unknown = e.raw.with_keys("AKIDUNKNOWN000000000", SECRET_KEY);
    let r = unknown.send("GET", "/", &[], b"").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidAccessKeyId"));

    // A valid signature with one character changed.
    let mut headers = e
        .raw
        .signed_headers("PUT", &format!("/{bucket}/k"), &[], b"x");
    for (k, v) in headers.iter_mut() {
        if k == "authorization" {
            let last = v.pop().expect("signature char");
            v.push(if last == '0' { '1' } else { '0' });
        }
    }
    let mut request = reqwest::Client::new().put(&url).body(b"x".to_vec());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        request = request.header(k.as_str(), v.as_str());
    }
    let response = request.send().await.expect("send");
    assert_eq!(response.status().as_u16(), 403);
    let text = response.text().await.expect("body");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    // A body that differs from the signed payload hash is refused too.
    let headers = e
        .raw
        .signed_headers("PUT", &format!("/{bucket}/k"), &[], b"x");
    let mut request = reqwest::Client::new().put(&url).body(b"y".to_vec());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        request = request.header(k.as_str(), v.as_str());
    }
    let response = request.send().await.expect("send");
    assert!(response.status().is_client_error(), "{}", response.status());
    // Nothing was stored by any of them.
    let head = e.raw.send("HEAD", &format!("/{bucket}/k"), &[], b"").await;
    assert_eq!(head.status, 404);
    cleanup(&e, &bucket).await;
}

async fn presigned_urls(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3pre").await;
    let path = format!("/{bucket}/shared.txt");
    let put = e.raw.presign("PUT", &path, 300, 0);
    let r = plain(reqwest::Method::PUT, &put, b"presigned".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let get = e.raw.presign("GET", &path, 300, 0);
    let r = plain(reqwest::Method::GET, &get, vec![]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "presigned");

    // Expired: signed two hours ago, valid for a minute.
    let expired = e.raw.presign("GET", &path, 60, -7200);
    let r = plain(reqwest::Method::GET, &expired, vec![]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("AccessDenied"));
    // Tampered: another key under the same signature.
    let tampered = get.replace("shared.txt", "other.txt");
    let r = plain(reqwest::Method::GET, &tampered, vec![]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"));
    let wrong = e
        .raw
        .with_keys(ACCESS_KEY, "wrong-secret")
        .presign("GET", &path, 300, 0);
    let r = plain(reqwest::Method::GET, &wrong, vec![]).await;
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"));
    let unknown = e
        .raw
        .with_keys("AKIDUNKNOWN000000000", SECRET_KEY)
        .presign("GET", &path, 300, 0);
    let r = plain(reqwest::Method::GET, &unknown, vec![]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidAccessKeyId"));
    cleanup(&e, &bucket).await;
}

async fn bad_input_is_an_s3_error(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3bad").await;
    let r = e
        .raw
        .send(
            "POST",
            &format!("/{bucket}?delete"),
            &[],
            b"<Delete><Object><Key>",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("MalformedXML"));
    let r = e
        .raw
        .send(
            "POST",
            &format!("/{bucket}/k?uploadId=nope"),
            &[],
            b"not xml at all",
        )
        .await;
    assert!(
        r.status == 400 || r.status == 404,
        "{}: {}",
        r.status,
        r.body
    );
    // Operations S4 does not implement: 501 NotImplemented, never a 500.
    for q in ["policy", "acl", "versioning", "tagging", "lifecycle"] {
        let r = e.raw.send("GET", &format!("/{bucket}?{q}"), &[], b"").await;
        assert_eq!(r.status, 501, "{q}: {}", r.body);
        assert_eq!(r.xml("Code").as_deref(), Some("NotImplemented"), "{q}");
    }
    // A key S4 refuses on this backend.
    let r = e
        .raw
        .send("PUT", &format!("/{bucket}/a//b"), &[], b"x")
        .await;
    assert!(r.status == 400, "{}: {}", r.status, r.body);
    // An invalid bucket name.
    let r = e.raw.send("PUT", "/Bad_Bucket", &[], b"").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidBucketName"));
    cleanup(&e, &bucket).await;
}

/// boto3 sends `Expect: 100-continue` on PUTs of files, also empty ones (`aws s3
/// sync` of an empty file). hyper answers an empty one without `100 Continue`,
/// which botocore keeps as connection state that hangs its next `Expect` request
/// on that connection; so that answer closes the connection (the client's next
/// request goes on a fresh one), and a non-empty `Expect` PUT gets its
/// `100 Continue` and is stored.
async fn empty_put_with_expect_continue_does_not_stall(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3exp").await;
    let request = |method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let headers = e.raw.signed_headers(method, path, extra, body);
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        head
    };
    let mut stream = tokio::net::TcpStream::connect(e.s3).await.expect("connect");
    let first = request(
        "PUT",
        &format!("/{bucket}/empty"),
        &[("expect", "100-continue")],
        b"",
    );
    stream.write_all(first.as_bytes()).await.expect("write");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    // The server closes: the client sees the end instead of waiting.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest))
        .await
        .expect("connection closed within 20 s");
    assert!(closed.is_ok() && rest.is_empty(), "{rest:?}");

    // A non-empty Expect PUT on a new connection: 100 Continue, then 200, and the
    // connection stays usable.
    let mut stream = tokio::net::TcpStream::connect(e.s3).await.expect("connect");
    let put = request(
        "PUT",
        &format!("/{bucket}/full"),
        &[("expect", "100-continue")],
        b"abc",
    );
    stream.write_all(put.as_bytes()).await.expect("write");
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut interim))
        .await
        .expect("100 Continue within 20 s")
        .expect("read");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"abc").await.expect("body");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let list = request("GET", &format!("/{bucket}?list-type=2"), &[], b"");
    stream.write_all(list.as_bytes()).await.expect("write");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("<Key>empty</Key>"), "{response}");
    assert!(response.contains("<Key>full</Key>"), "{response}");
    cleanup(&e, &bucket).await;
}

/// Reads one HTTP/1.1 response (final status, skipping `100 Continue`) with a
/// Content-Length body. Fails the test after 20 s without one (a stall).
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let read = async {
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "connection closed: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let text = text
                .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
                .map(str::to_string)
                .unwrap_or(text);
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if text.len() >= end + 4 + len {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("response within 20 s (connection stalled)")
}

// ---------------------------------------------------------------- cross-API

async fn cross_api_visibility(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3x").await;
    // S3 write → REST list, download, metadata, delete.
    let body = data(3000, 2);
    let r = e
        .raw
        .send("PUT", &format!("/{bucket}/from-s3/a.bin"), &[], &body)
        .await;
    let s3_etag = r.header("etag").expect("etag").to_string();
    let (status, list) = e
        .rest
        .get_json(&format!("/objects/{bucket}/{}", b64("from-s3/")))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["objects"][0]["Key"], "from-s3/a.bin", "{list}");
    assert_eq!(list["objects"][0]["ETag"], s3_etag.as_str(), "{list}");
    let download = e
        .rest
        .get(&format!(
            "/objects/download/{bucket}/{}",
            b64("from-s3/a.bin")
        ))
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        body.as_slice()
    );
    let (status, _) = e
        .rest
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("from-s3/a.bin")),
        )
        .await;
    assert_eq!(status, 200);
    let head = e
        .raw
        .send("HEAD", &format!("/{bucket}/from-s3/a.bin"), &[], b"")
        .await;
    assert_eq!(head.status, 404);

    // REST write → S3 list, get, delete.
    let (status, up) = e
        .rest
        .upload(&bucket, "from-rest/b.txt", b"rest bytes".to_vec())
        .await;
    assert_eq!(status, 200, "{up}");
    let list = e
        .raw
        .send(
            "GET",
            &format!("/{bucket}?list-type=2&prefix=from-rest%2F"),
            &[],
            b"",
        )
        .await;
    assert_eq!(list.all("Key"), vec!["from-rest/b.txt"]);
    let get = e
        .raw
        .send("GET", &format!("/{bucket}/from-rest/b.txt"), &[], b"")
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, "rest bytes");
    assert_eq!(
        get.header("etag").map(|t| t.trim_matches('"').to_string()),
        Some(md5_hex(b"rest bytes"))
    );
    let del = e
        .raw
        .send("DELETE", &format!("/{bucket}/from-rest/b.txt"), &[], b"")
        .await;
    assert_eq!(del.status, 204);
    let (_, list) = e.rest.get_json(&format!("/objects/{bucket}")).await;
    assert_eq!(list["objects"].as_array().map(Vec::len), Some(0), "{list}");
    cleanup(&e, &bucket).await;
}

async fn interrupted_put_leaves_nothing(kind: Kind) {
    let Some(e) = start(kind).await else {
        return eprintln!("skipped: no S3 endpoint (S4_TEST_S3_ENDPOINT)");
    };
    let bucket = e.bucket("s3int").await;
    let path = format!("/{bucket}/partial.bin");
    let body = data(1 << 20, 4);
    let headers = {
        // Unsigned payload, so the server streams it instead of hashing first.
        let (date, amz_date) = now_stamps(0);
        let mut h: Vec<(String, String)> = vec![
            ("host".into(), e.s3.to_string()),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
        ];
        let sig = sigv4::signature(
            SECRET_KEY,
            (&date, &amz_date),
            "PUT",
            &path,
            "",
            &h,
            "UNSIGNED-PAYLOAD",
        );
        h.push((
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{date}/{REGION}/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"),
        ));
        h
    };
    let mut stream = tokio::net::TcpStream::connect(e.s3).await.expect("connect");
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half");
    drop(stream);
    // The write is aborted; poll until no upload is in flight, then check.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = e
            .raw
            .send("GET", &format!("/{bucket}?list-type=2"), &[], b"")
            .await;
        assert!(
            list.all("Key").is_empty(),
            "partial object visible: {}",
            list.body
        );
        let staged = e
            .rest
            .data_dir()
            .map(|d| {
                std::fs::read_dir(d.join(".s4").join("tmp"))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if staged == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "staging file left behind"
        );
        tokio::task::yield_now().await;
    }
    let r = e.raw.send("HEAD", &path, &[], b"").await;
    assert_eq!(r.status, 404);
    cleanup(&e, &bucket).await;
}

// ---------------------------------------------------------------- webhooks

/// The next webhook event: `(event name, key)`.
async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> (String, String) {
    let v = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("webhook within 20 s")
        .expect("channel");
    let r = &v["Records"][0];
    (
        r["eventName"].as_str().unwrap_or_default().to_string(),
        r["s3"]["object"]["key"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receives_s3_protocol_writes() {
    use http_body_util::{BodyExt, Full};
    let e = start(Kind::Memory).await.expect("memory server");
    let bucket = e.bucket("s3hook").await;
    // A receiver that forwards every POST body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = listener.local_addr().expect("addr");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let raw = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let _ = tx.send(serde_json::from_slice(&raw).unwrap_or_default());
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::new(),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let config = serde_json::json!({ "notifications": [
        { "endpoint": format!("http://{hook}/hook"), "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"] }
    ]});
    let response = e
        .rest
        .client
        .put(e.rest.url(&format!("/notifications/{bucket}")))
        .json(&config)
        .send()
        .await
        .expect("configure");
    assert_eq!(response.status(), 200);

    let r = e
        .raw
        .send("PUT", &format!("/{bucket}/hooked.txt"), &[], b"data")
        .await;
    assert_eq!(r.status, 200);
    let (name, key) = next(&mut rx).await;
    assert!(name.starts_with("s3:ObjectCreated:"), "{name}");
    assert_eq!(key, "hooked.txt");
    let r = e
        .raw
        .send("DELETE", &format!("/{bucket}/hooked.txt"), &[], b"")
        .await;
    assert_eq!(r.status, 204);
    let (name, key) = next(&mut rx).await;
    assert!(name.starts_with("s3:ObjectRemoved:"), "{name}");
    assert_eq!(key, "hooked.txt");
    cleanup(&e, &bucket).await;
}

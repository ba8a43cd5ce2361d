//! HTTP integration tests: a real server on 127.0.0.1:0, real HTTP. Every test body
//! runs on the memory, local and S3 backends (S3 skipped without an endpoint).

mod common;

use common::on_every_backend;

use common::{
    b64, b64_std_segment, multipart_body, raw_exchange, sse_until, start, start_with, Kind,
    TestServer,
};
use serde_json::{json, Value};

on_every_backend!(
    health_and_unknown_routes,
    bucket_routes,
    object_roundtrip_tricky_keys,
    invalid_parameters,
    pagination_over_http,
    search_modes,
    range_and_conditional_downloads,
    folder_delete_keeps_siblings,
    view_and_metadata,
    oversized_upload_leaves_nothing,
    disconnected_upload_leaves_nothing,
    abort_upload_route,
    hostile_corpus_over_http,
    dotted_bucket_names,
    long_key_pagination,
);

async fn health_and_unknown_routes(s: TestServer) {
    for path in ["", "/"] {
        let (status, body) = s.get_json(path).await;
        assert_eq!((status, body), (200, json!({ "status": "ok" })));
    }
    let response = s.get("/nope/nothing").await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        response
            .headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("SAMEORIGIN")
    );
    assert_eq!(
        response.json::<Value>().await.ok(),
        Some(json!({"error":"Not Found","message":"Not Found"}))
    );
    let (status, _) = s.json(reqwest::Method::PATCH, "/buckets").await;
    assert_eq!(status, 404);
    let (status, body) = s.get_json("/kernels").await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], "s4");
}

async fn bucket_routes(s: TestServer) {
    // The bucket-name table (§7.2) on create: schema-style 400s.
    for bad in [
        json!({}),
        json!({"bucketName": 5}),
        json!({"bucketName": "ab"}),
        json!({"bucketName": "Upper"}),
        json!({"bucketName": "my..bucket"}),
        json!({"bucketName": "-ab"}),
        json!({"bucketName": "192.168.1.1"}),
        json!({"bucketName": "xn--abc"}),
    ] {
        let (status, body) = s.post_json("/buckets", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "Bad Request", "{bad}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("body")),
            "{body}"
        );
    }
    // ... and on listing: InvalidBucketName with the contract's messages, in order.
    for (name, message) in [
        ("ab", "Bucket name must be between 3 and 63 characters."),
        (
            &"a".repeat(64),
            "Bucket name must be between 3 and 63 characters.",
        ),
        ("Abc", "Bucket name format is invalid."),
        ("abc-", "Bucket name format is invalid."),
        ("a_b", "Bucket name format is invalid."),
        ("a..b", "Bucket name contains invalid patterns."),
        ("a.-b", "Bucket name contains invalid patterns."),
        ("10.0.0.1", "Bucket name contains invalid patterns."),
        ("xn--ab", "Bucket name contains invalid patterns."),
        ("ab-s3alias", "Bucket name contains invalid patterns."),
    ] {
        let (status, body) = s.get_json(&format!("/objects/{name}")).await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(
            body,
            json!({"error": "InvalidBucketName", "message": message}),
            "{name}"
        );
    }
    // Malformed JSON and wrong content type.
    let r = s
        .client
        .post(s.url("/buckets"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let r = s
        .client
        .post(s.url("/buckets"))
        .header("content-type", "text/plain")
        .body("{\"bucketName\":\"abc\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 415);

    let name = s4_core::testing::unique_bucket("http").to_string();
    let (status, body) = s.post_json("/buckets", json!({ "bucketName": name })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Bucket created successfully");
    let (status, body) = s.post_json("/buckets", json!({ "bucketName": name })).await;
    assert_eq!(status, 409);
    assert!(
        matches!(
            body["error"].as_str(),
            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
        ),
        "{body}"
    );
    let (status, body) = s.get_json("/buckets").await;
    assert_eq!(status, 200);
    assert_eq!(body["defaultBucket"], "");
    let entry = body["buckets"]
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["Name"] == name.as_str())
        .cloned();
    assert!(entry.is_some_and(|e| e["CreationDate"]
        .as_str()
        .is_some_and(|d| d.ends_with('Z') && d.len() == 24)));
    let (status, _) = s.upload(&name, "x", b"1".to_vec()).await;
    assert_eq!(status, 200);
    let (status, body) = s
        .json(reqwest::Method::DELETE, &format!("/buckets/{name}"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("BucketNotEmpty"))
    );
    let (status, _) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{name}/{}", b64("x")),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .json(reqwest::Method::DELETE, &format!("/buckets/{name}"))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Bucket deleted successfully"}))
    );
    let (status, body) = s
        .json(reqwest::Method::DELETE, &format!("/buckets/{name}"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NoSuchBucket"))
    );
    let (status, body) = s.get_json(&format!("/objects/{name}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NoSuchBucket"))
    );
}

async fn object_roundtrip_tricky_keys(s: TestServer) {
    let bucket = s.bucket("keys").await;
    for (i, key) in s4_core::testing::TRICKY_KEYS.iter().enumerate() {
        let data = s4_core::testing::pattern(3000 + i, i as u8).to_vec();
        let (status, body) = s.upload(&bucket, key, data.clone()).await;
        assert_eq!(status, 200, "{key}: {body}");
        assert_eq!(
            body,
            json!({"message": "Object uploaded successfully", "key": key, "bucket": bucket})
        );
        // Both alphabets, the standard one percent-encoded in the segment.
        for encoded in [b64(key), b64_std_segment(key)] {
            let r = s
                .get(&format!("/objects/download/{bucket}/{encoded}"))
                .await;
            assert_eq!(r.status().as_u16(), 200, "{key}");
            let leaf = key.rsplit('/').next().unwrap_or(key);
            let disposition = r
                .headers()
                .get("content-disposition")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            assert!(
                disposition.starts_with("attachment; filename=\""),
                "{disposition}"
            );
            if !leaf.is_ascii() {
                assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
            }
            assert_eq!(
                r.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok()),
                Some(data.len().to_string().as_str())
            );
            // §9.4 (amended): the stored type, here guessed from the extension.
            let expected = s4_core::storage::guess_content_type(key)
                .unwrap_or_else(|| "application/octet-stream".to_string());
            assert_eq!(
                r.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some(expected.as_str())
            );
            assert_eq!(r.bytes().await.expect("body").to_vec(), data, "{key}");
        }
    }
    // Listing shows the nested folders and the keys verbatim.
    let (_, body) = s
        .get_json(&format!("/objects/{bucket}/{}", b64("emoji/🚀/")))
        .await;
    assert_eq!(body["objects"][0]["Key"], "emoji/🚀/launch 😀.bin");
    let (_, body) = s.get_json(&format!("/objects/{bucket}")).await;
    let prefixes: Vec<&str> = body["prefixes"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["Prefix"].as_str())
        .collect();
    assert_eq!(prefixes, vec!["deep/", "emoji/", "ünïcödé/"]);
    // Missing object.
    let (status, body) = s
        .get_json(&format!("/objects/download/{bucket}/{}", b64("missing")))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NoSuchKey")));
    s.remove_bucket(&bucket).await;
}

async fn invalid_parameters(s: TestServer) {
    let bucket = s.bucket("inval").await;
    for path in [
        format!("/objects/download/{bucket}/%25%25"),
        format!("/objects/download/{bucket}/a"),
        format!("/objects/metadata/{bucket}/Y%3D%3D%3D"),
        format!("/objects/view/{bucket}/_w"),
    ] {
        let (status, body) = s.get_json(&path).await;
        assert_eq!(
            (status, body),
            (
                400,
                json!({"error":"InvalidKey","message":"Object key is not valid base64."})
            ),
            "{path}"
        );
    }
    let (status, body) = s
        .json(reqwest::Method::DELETE, &format!("/objects/{bucket}/%21"))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidKey")));
    let (status, body) = s.get_json(&format!("/objects/{bucket}/%21")).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error":"InvalidPrefix","message":"Prefix is not valid base64."})
        )
    );
    let (status, body) = s
        .get_json(&format!("/objects/{bucket}/{}", b64("a/../b")))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Prefix contains invalid characters."))
    );
    let (status, body) = s
        .get_json(&format!("/objects/{bucket}?continuationToken="))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Continuation token length is invalid."))
    );
    let (status, body) = s
        .get_json(&format!("/objects/{bucket}?continuationToken=a%21b"))
        .await;
    assert_eq!(
        (status, body["error"].as_str(), body["message"].as_str()),
        (
            400,
            Some("InvalidContinuationToken"),
            Some("Continuation token format is invalid.")
        )
    );
    let (status, body) = s.get_json(&format!("/objects/{bucket}?q=")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("Query length must be between 1 and 256 characters.")
        )
    );
    let (status, body) = s.get_json(&format!("/objects/{bucket}?q=a%2Fb")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Query contains invalid characters."))
    );
    let (status, body) = s.get_json(&format!("/objects/{bucket}?maxKeys=ten")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("Bad Request")));
    // Not multipart / no file part.
    let r = s
        .client
        .post(s.url(&format!("/objects/upload/{bucket}/{}", b64("k"))))
        .body("raw")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.ok(),
        Some(json!({"error":"File not found","message":"File not found in request"}))
    );
    let form = reqwest::multipart::Form::new().text("only", "text");
    let r = s
        .client
        .post(s.url(&format!("/objects/upload/{bucket}/{}", b64("k"))))
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    // Empty key.
    let (status, body) = s
        .get_json(&format!("/objects/metadata/{bucket}/{}", b64("")))
        .await;
    assert_eq!(
        status, 404,
        "an empty key segment does not match the route: {body}"
    );
    // Oversized URI and headers.
    let long = "a".repeat(17 * 1024);
    let (status, _) = s.get_json(&format!("/objects/{bucket}?x={long}")).await;
    assert_eq!(status, 414);
    let r = s
        .client
        .get(s.url("/"))
        .header("x-big", "b".repeat(17 * 1024))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 431);
    s.remove_bucket(&bucket).await;
}

async fn pagination_over_http(s: TestServer) {
    let bucket = s.bucket("pages").await;
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..17 {
        let key = format!("k{i:02}");
        s.upload(&bucket, &key, vec![b'x']).await;
        expected.insert(key);
    }
    for d in ["d1", "d2"] {
        s.upload(&bucket, &format!("{d}/f"), vec![b'x']).await;
        expected.insert(format!("{d}/"));
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("/objects/{bucket}?maxKeys=5");
        if let Some(t) = &token {
            url.push_str(&format!("&continuationToken={}", percent(t)));
        }
        let (status, body) = s.get_json(&url).await;
        assert_eq!(status, 200, "{body}");
        for o in body["objects"].as_array().expect("objects") {
            seen.push(o["Key"].as_str().expect("Key").to_string());
            assert_eq!(o["StorageClass"], "STANDARD");
            assert!(o["ETag"].as_str().is_some_and(|e| e.starts_with('"')));
        }
        for p in body["prefixes"].as_array().expect("prefixes") {
            seen.push(p["Prefix"].as_str().expect("Prefix").to_string());
        }
        match body["nextContinuationToken"].as_str() {
            Some(t) => {
                assert_eq!(body["isTruncated"], true);
                token = Some(t.to_string());
            }
            None => {
                assert_eq!(body["isTruncated"], false);
                break;
            }
        }
    }
    let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in {seen:?}");
    assert_eq!(unique, expected);
    // maxKeys is clamped, not rejected.
    let (status, _) = s.get_json(&format!("/objects/{bucket}?maxKeys=0")).await;
    assert_eq!(status, 200);
    s.remove_bucket(&bucket).await;
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn search_modes(s: TestServer) {
    let bucket = s.bucket("search").await;
    for key in [
        "m/my-config.json",
        "m/Config.yaml",
        "m/other.bin",
        "m/configs/a",
    ] {
        s.upload(&bucket, key, vec![b'1']).await;
    }
    let prefix = b64("m/");
    let (status, body) = s
        .get_json(&format!("/objects/{bucket}/{prefix}?q=config"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["filter"]["mode"], "contains");
    assert_eq!(body["filter"]["scanStoppedReason"], "bucketExhausted");
    assert_eq!(body["filter"]["scanPages"], 1);
    assert_eq!(body["filter"]["partialResult"], false);
    assert_eq!(
        body["filter"]["matches"]["objects"]["m/my-config.json"],
        json!([[3, 9]])
    );
    assert_eq!(
        body["filter"]["matches"]["prefixes"]["m/configs/"],
        json!([[0, 6]])
    );
    assert_eq!(body["objects"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["nextContinuationToken"], Value::Null);
    let (_, body) = s
        .get_json(&format!(
            "/objects/{bucket}/{prefix}?q=config&mode=startsWith"
        ))
        .await;
    assert_eq!(body["filter"]["mode"], "startsWith");
    assert_eq!(body["objects"][0]["Key"], "m/Config.yaml");
    assert_eq!(
        body["filter"]["matches"]["objects"]["m/Config.yaml"],
        json!([[0, 6]])
    );
    let (_, body) = s
        .get_json(&format!(
            "/objects/{bucket}/{prefix}?q=onfig&mode=startsWith&autoBroaden=true"
        ))
        .await;
    assert_eq!(body["filter"]["mode"], "contains");
    assert_eq!(body["filter"]["originalMode"], "startsWith");
    assert_eq!(body["filter"]["autoBroaden"], true);
    assert_eq!(body["objects"].as_array().map(Vec::len), Some(2));
    s.remove_bucket(&bucket).await;
}

async fn range_and_conditional_downloads(s: TestServer) {
    let bucket = s.bucket("range").await;
    let data = s4_core::testing::pattern(10_000, 5).to_vec();
    s.upload(&bucket, "r/file.bin", data.clone()).await;
    let url = s.url(&format!("/objects/download/{bucket}/{}", b64("r/file.bin")));
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
        Some("bytes 100-199/10000")
    );
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some("100")
    );
    assert_eq!(
        r.bytes().await.expect("body").to_vec(),
        data[100..200].to_vec()
    );
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.bytes().await.expect("body").to_vec(),
        data[9990..].to_vec()
    );
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=9000-")
        .send()
        .await
        .expect("get");
    assert_eq!(r.bytes().await.expect("body").len(), 1000);
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=20000-30000")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 416);
    assert_eq!(
        r.headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
        Some("bytes */10000")
    );
    let r = s.client.get(&url).send().await.expect("get");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_string();
    let r = s
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 304);
    let r = s
        .client
        .get(&url)
        .header("if-none-match", "\"nope\"")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    s.remove_bucket(&bucket).await;
}

async fn folder_delete_keeps_siblings(s: TestServer) {
    let bucket = s.bucket("folders").await;
    for key in ["data/a", "data/b/c", "data.csv", "database/x"] {
        s.upload(&bucket, key, vec![b'1']).await;
    }
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("data")),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "Successfully deleted 2 object(s)", "count": 2})
        )
    );
    let keys = s4_core::testing::all_keys(
        &s.s4,
        &s4_core::BucketName::try_from(bucket.as_str()).expect("bucket"),
        "",
    )
    .await;
    assert_eq!(keys, vec!["data.csv".to_string(), "database/x".to_string()]);
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("data.csv")),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Object deleted successfully"}))
    );
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("never-existed")),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Object deleted successfully"}))
    );
    let (status, body) = s
        .json(
            reqwest::Method::DELETE,
            &format!("/objects/{bucket}/{}", b64("database/")),
        )
        .await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(1)));
    s.remove_bucket(&bucket).await;
}

async fn view_and_metadata(s: TestServer) {
    let bucket = s.bucket("view").await;
    s.upload(
        &bucket,
        "cfg/config.json",
        b"{\"model\":\"llama\"}".to_vec(),
    )
    .await;
    s.upload(&bucket, "cfg/blob.bin", vec![0, 1, 2]).await;
    s.upload(&bucket, "cfg/pic.png", vec![137, 80, 78, 71])
        .await;
    let (status, body) = s
        .get_json(&format!(
            "/objects/view/{bucket}/{}",
            b64("cfg/config.json")
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["key"], "cfg/config.json");
    assert_eq!(body["metadata"]["size"], 17);
    assert_eq!(
        body["preview"],
        json!({"available": true, "kind": "text", "content": "{\"model\":\"llama\"}", "truncated": false})
    );
    let (_, body) = s
        .get_json(&format!("/objects/view/{bucket}/{}", b64("cfg/blob.bin")))
        .await;
    assert_eq!(
        body["preview"],
        json!({"available": false, "reason": "unsupported_type"})
    );
    let (_, body) = s
        .get_json(&format!("/objects/view/{bucket}/{}", b64("cfg/pic.png")))
        .await;
    assert_eq!(body["preview"]["content"], "data:image/png;base64,iVBORw==");
    let r = s
        .get(&format!(
            "/objects/view/{bucket}/{}?raw=true",
            b64("cfg/config.json")
        ))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("content-disposition").is_none());
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        b"{\"model\":\"llama\"}"
    );
    let (status, body) = s
        .get_json(&format!(
            "/objects/metadata/{bucket}/{}",
            b64("cfg/blob.bin")
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["key"], "cfg/blob.bin");
    assert_eq!(body["size"], 3);
    assert_eq!(body["metadata"], json!({}));
    assert_eq!(body["storageClass"], "STANDARD");
    assert!(body["etag"].as_str().is_some());
    let (status, body) = s
        .get_json(&format!("/objects/metadata/{bucket}/{}", b64("cfg/none")))
        .await;
    assert_eq!(status, 404, "{body}");
    s.remove_bucket(&bucket).await;
}

/// Restarts `s` with a 1 MiB upload limit on the same backend kind.
async fn small_limit(kind: Kind) -> Option<TestServer> {
    start_with(kind, |c| {
        c.max_file_size = 1 << 20;
        c.max_file_size_gb = 1;
    })
    .await
}

fn kind_of(s: &TestServer) -> Kind {
    match s.s4.backend().name() {
        "memory" => Kind::Memory,
        "local" => Kind::Local,
        _ => Kind::S3,
    }
}

async fn oversized_upload_leaves_nothing(s: TestServer) {
    let Some(s) = small_limit(kind_of(&s)).await else {
        return;
    };
    let bucket = s.bucket("big").await;
    // Declared length already too large: rejected before reading.
    let (boundary, body) = multipart_body(&vec![7u8; (1 << 20) + (200 << 10)]);
    let head = format!(
        "POST /api/objects/upload/{bucket}/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        b64("too/big.bin"),
        body.len()
    );
    let mut conn = s.raw().await;
    let answer = raw_exchange(&mut conn, &head, &body).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\":\"PayloadTooLarge\""), "{answer}");
    assert!(
        answer.contains("File size exceeds maximum limit of 1GB"),
        "{answer}"
    );
    // Chunked (no length): counted while streaming, across a multipart-sized body.
    let (boundary, body) = multipart_body(&vec![7u8; 12 << 20]);
    let head = format!(
        "POST /api/objects/upload/{bucket}/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        b64("too/big.bin"),
    );
    let mut chunked = Vec::new();
    for piece in body.chunks(64 << 10) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut conn = s.raw().await;
    let answer = raw_exchange(&mut conn, &head, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let keys = s4_core::testing::all_keys(
        &s.s4,
        &s4_core::BucketName::try_from(bucket.as_str()).expect("bucket"),
        "",
    )
    .await;
    assert!(keys.is_empty(), "{keys:?}");
    // Exactly at the limit is fine.
    let (status, _) = s.upload(&bucket, "ok.bin", vec![1u8; 1 << 20]).await;
    assert_eq!(status, 200);
    s.remove_bucket(&bucket).await;
}

/// Starts an upload on a raw connection, sending the head and `sent` bytes of the
/// file but not the end. Returns the connection (the upload is in flight).
async fn partial_upload(
    s: &TestServer,
    bucket: &str,
    key: &str,
    sent: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let (boundary, body) = multipart_body(&vec![3u8; sent + (1 << 20)]);
    let head = format!(
        "POST /api/objects/upload/{bucket}/{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        b64(key),
        body.len()
    );
    let mut conn = s.raw().await;
    conn.write_all(head.as_bytes()).await.expect("head");
    conn.write_all(&body[..sent]).await.expect("partial body");
    conn.flush().await.expect("flush");
    conn
}

async fn disconnected_upload_leaves_nothing(s: TestServer) {
    let bucket = s.bucket("disc").await;
    let key = "half/uploaded.bin";
    // More than one part, so a multipart upload is in flight on the backend.
    let conn = partial_upload(&s, &bucket, key, s4_core::PART_SIZE + (2 << 20)).await;
    // Wait (event-driven, through the SSE route) until the server has seen the
    // upload, then drop the connection and wait for the failure event.
    let progress = s
        .client
        .get(s.url(&format!("/objects/upload-progress/{}", b64(key))))
        .send()
        .await
        .expect("sse");
    assert_eq!(
        progress
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut conn = Some(conn);
    let events = sse_until(progress, |event| {
        if event["status"] == "uploading" {
            conn.take();
        }
        event["status"] != "uploading"
    })
    .await;
    let last = events.last().expect("events");
    assert_eq!(last["status"], "failed", "{events:?}");
    let keys = s4_core::testing::all_keys(
        &s.s4,
        &s4_core::BucketName::try_from(bucket.as_str()).expect("bucket"),
        "",
    )
    .await;
    assert!(keys.is_empty(), "{keys:?}");
    s.remove_bucket(&bucket).await;
}

async fn abort_upload_route(s: TestServer) {
    use tokio::io::AsyncReadExt;
    let bucket = s.bucket("abort").await;
    let key = "aborted/file.bin";
    let (status, body) = s
        .get_json(&format!("/objects/abort-upload/{}", b64(key)))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "No upload to abort"}))
    );
    let mut conn = partial_upload(&s, &bucket, key, 256 << 10).await;
    // Wait until the upload is registered (its progress record exists).
    let progress = s
        .client
        .get(s.url(&format!("/objects/upload-progress/{}", b64(key))))
        .send()
        .await
        .expect("sse");
    let events = sse_until(progress, |_| true).await;
    assert_eq!(events[0]["status"], "uploading");
    let (status, body) = s
        .get_json(&format!("/objects/abort-upload/{}", b64(key)))
        .await;
    assert_eq!((status, body), (200, json!({"message": "Upload aborted"})));
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 499"), "{answer}");
    assert!(answer.contains("\"error\":\"AbortError\""), "{answer}");
    let keys = s4_core::testing::all_keys(
        &s.s4,
        &s4_core::BucketName::try_from(bucket.as_str()).expect("bucket"),
        "",
    )
    .await;
    assert!(keys.is_empty(), "{keys:?}");
    s.remove_bucket(&bucket).await;
}

/// Every file under `dir` (relative name → bytes).
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .expect("under")
                .to_string_lossy()
                .to_string();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

/// The hostile corpus on every bucket route over HTTP: each answer is a 4xx, or a
/// 200 that shows only the bucket's own keys; a sentinel directory outside the
/// store (reachable, on the local backend, through a link planted in the bucket)
/// is byte-for-byte unchanged.
async fn hostile_corpus_over_http(s: TestServer) {
    let sentinel = tempfile::tempdir().expect("sentinel");
    std::fs::write(sentinel.path().join("passwd"), b"root:x:0:0").expect("write");
    let before = snapshot(sentinel.path());
    let outside = sentinel.path().to_string_lossy().to_string();
    let bucket = s.bucket("hostile").await;
    let (status, _) = s.upload(&bucket, "mine/file.txt", b"mine".to_vec()).await;
    assert_eq!(status, 200);
    if let Some(data) = s.data_dir() {
        std::os::unix::fs::symlink(sentinel.path(), data.join(&bucket).join("link"))
            .expect("plant link");
    }
    let only_mine = |body: &Value, what: &str| {
        for o in body["objects"].as_array().into_iter().flatten() {
            assert_eq!(o["Key"], "mine/file.txt", "{what}: {body}");
        }
        for p in body["prefixes"].as_array().into_iter().flatten() {
            assert_eq!(p["Prefix"], "mine/", "{what}: {body}");
        }
    };
    let mut prefixes = s4_core::testing::hostile_prefixes(&outside);
    prefixes.extend(["link/".to_string(), "link".to_string()]);
    for prefix in prefixes {
        let encoded = b64(&prefix);
        for query in ["", "?q=pass&mode=startsWith", "?q=pass", "?maxKeys=5"] {
            let path = format!("/objects/{bucket}/{encoded}{query}");
            let (status, body) = s.get_json(&path).await;
            match status {
                200 => only_mine(&body, &format!("{prefix:?}{query}")),
                400..=499 => assert!(body["error"].is_string(), "{body}"),
                other => panic!("{prefix:?}{query}: {other} {body}"),
            }
        }
    }
    let mut keys = s4_core::testing::hostile_keys(&outside);
    keys.extend(["link/passwd".to_string(), "link".to_string()]);
    for key in keys {
        let encoded = b64(&key);
        for route in ["download", "view", "metadata"] {
            let (status, body) = s
                .get_json(&format!("/objects/{route}/{bucket}/{encoded}"))
                .await;
            assert!(
                (400..500).contains(&status),
                "{route} {key:?}: {status} {body}"
            );
        }
        let (status, body) = s
            .json(
                reqwest::Method::DELETE,
                &format!("/objects/{bucket}/{encoded}"),
            )
            .await;
        assert!(
            status == 200 || (400..500).contains(&status),
            "delete {key:?}: {status} {body}"
        );
        if status == 200 {
            assert!(
                body["count"].is_null() || body["count"] == 0,
                "delete {key:?}: {body}"
            );
        }
        let (status, body) = s.upload(&bucket, &key, b"evil".to_vec()).await;
        if status == 200 {
            // A legal name: stored inside the bucket, under that name.
            let (status, _) = s
                .json(
                    reqwest::Method::DELETE,
                    &format!("/objects/{bucket}/{encoded}"),
                )
                .await;
            assert_eq!(status, 200);
        } else {
            assert!(
                (400..500).contains(&status),
                "upload {key:?}: {status} {body}"
            );
        }
    }
    assert_eq!(snapshot(sentinel.path()), before, "the sentinel changed");
    if let Some(data) = s.data_dir() {
        std::fs::remove_file(data.join(&bucket).join("link")).expect("remove link");
    }
    let (status, body) = s.get_json(&format!("/objects/{bucket}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["prefixes"], json!([{"Prefix": "mine/"}]), "{body}");
    s.remove_bucket(&bucket).await;
}

/// Dotted bucket names (§7.2 as amended) are created, used and deleted.
async fn dotted_bucket_names(s: TestServer) {
    let base = s4_core::testing::unique_bucket("dot").to_string();
    let name: String = format!("data.{}", base).chars().take(63).collect();
    let name = name.trim_end_matches(['-', '.']).to_string();
    let (status, body) = s.post_json("/buckets", json!({ "bucketName": name })).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s.upload(&name, "a.txt", b"x".to_vec()).await;
    assert_eq!(status, 200);
    let (status, body) = s.get_json("/buckets").await;
    assert_eq!(status, 200);
    assert!(
        body["owner"]["ID"].is_string(),
        "owner always present: {body}"
    );
    assert!(
        body["buckets"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x["Name"] == name)),
        "{body}"
    );
    let (status, body) = s.get_json(&format!("/objects/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"][0]["Key"], "a.txt");
    s.remove_bucket(&name).await;
}

/// Keys longer than 384 bytes page too: their continuation tokens are longer than
/// the 512 characters of API §8.1, and are accepted up to the Base64 of a
/// 1024-byte key.
async fn long_key_pagination(s: TestServer) {
    let bucket = s.bucket("longkey").await;
    let folder = format!("{}/{}/", "a".repeat(200), "b".repeat(200));
    for leaf in ["k1", "k2"] {
        let (status, body) = s
            .upload(&bucket, &format!("{folder}{leaf}"), b"x".to_vec())
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let prefix = b64(&folder);
    let (status, first) = s
        .get_json(&format!("/objects/{bucket}/{prefix}?maxKeys=1"))
        .await;
    assert_eq!(status, 200, "{first}");
    let token = first["nextContinuationToken"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(token.len() > 512, "{}", token.len());
    let (status, second) = s
        .get_json(&format!(
            "/objects/{bucket}/{prefix}?maxKeys=1&continuationToken={token}"
        ))
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["objects"][0]["Key"], format!("{folder}k2"));
    let (status, body) = s
        .get_json(&format!(
            "/objects/{bucket}?continuationToken={}",
            "A".repeat(1401)
        ))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Continuation token length is invalid."))
    );
    s.remove_bucket(&bucket).await;
}

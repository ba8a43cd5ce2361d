//! The Hub client against the fake Hub of [`crate::fakes`] (real HTTP on loopback).

#![allow(clippy::expect_used)]

use futures::StreamExt;
use serde_json::json;

use super::*;
use crate::fakes::{FakeHub, ForwardProxy, GOOD_TOKEN};
use crate::outbound::{NoProxy, ProxySettings};

fn client(hub: &FakeHub, token: Option<&str>) -> HubClient {
    HubClient::new(
        Url::parse(&hub.url()).expect("url"),
        &Outbound::default(),
        token.map(str::to_string),
    )
    .expect("client")
}

fn request(body: serde_json::Value) -> ImportRequest {
    ImportRequest::parse(&body).expect("valid request")
}

async fn download(hub: &HubClient, file: &HubFile) -> Result<Vec<u8>> {
    let opened = hub.open_file(file).await?;
    let mut body = verify(file, opened.body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test]
async fn plan_lists_sizes_digests_and_destinations() {
    let fake = FakeHub::start().await;
    let hub = client(&fake, None);
    let plan = hub
        .plan(&request(
            json!({"modelId": "org/model", "bucketName": "models", "prefix": "llms/"}),
        ))
        .await
        .expect("plan");
    let expected = fake.files("org/model", "main");
    let paths: Vec<_> = plan.files.iter().map(|f| f.path.as_str()).collect();
    let listed: Vec<_> = expected.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths, listed,
        "listing order, both tree pages, no directories"
    );
    assert!(plan.sizes_known);
    assert_eq!(
        plan.total_bytes,
        expected.iter().map(|f| f.content.len() as u64).sum::<u64>()
    );
    let weights = plan
        .files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .expect("weights");
    assert_eq!(
        weights.sha256.as_deref(),
        Some(expected[1].sha256().as_str())
    );
    assert_eq!(
        weights.destination,
        FileDestination::S3 {
            bucket: crate::BucketName::try_from("models").expect("bucket"),
            key: crate::ObjectKey::try_from("llms/org/model/model.safetensors").expect("key"),
        }
    );
    assert!(plan
        .files
        .iter()
        .find(|f| f.path == "config.json")
        .expect("config")
        .sha256
        .is_none());
}

#[tokio::test]
async fn include_exclude_and_revision() {
    let fake = FakeHub::start().await;
    let hub = client(&fake, None);
    let plan = hub
        .plan(&request(json!({
            "modelId": "org/model", "destinationType": "local", "localLocationId": "local-0",
            "localPath": "imports/", "include": ["*.json", "**/*.json", "*.safetensors"],
            "exclude": ["tokenizer/**"]
        })))
        .await
        .expect("plan");
    let paths: Vec<_> = plan.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["config.json", "model.safetensors"]);
    assert_eq!(
        plan.files[0].destination,
        FileDestination::Local {
            location_id: "local-0".into(),
            path: "imports/org/model/config.json".into()
        }
    );
    let v2 = hub
        .plan(&request(
            json!({"modelId": "org/model", "bucketName": "models", "revision": "v2"}),
        ))
        .await
        .expect("plan v2");
    assert_eq!(v2.files.len(), 1);
    assert_eq!(v2.files[0].path, "v2-only.txt");
    assert_eq!(
        download(&hub, &v2.files[0]).await.expect("bytes"),
        b"second revision"
    );
    let none = hub
        .plan(&request(
            json!({"modelId": "org/model", "bucketName": "models", "include": ["*.gguf"]}),
        ))
        .await
        .expect_err("nothing matches");
    assert_eq!(
        none.message(),
        "No files match the include/exclude patterns"
    );
    let empty = hub
        .plan(&request(
            json!({"modelId": "org/empty", "bucketName": "models"}),
        ))
        .await
        .expect_err("no files");
    assert_eq!(empty.message(), "Model has no files to import");
}

#[tokio::test]
async fn downloads_verify_and_token_stays_on_the_hub() {
    let fake = FakeHub::start().await;
    let hub = client(&fake, Some(GOOD_TOKEN));
    let plan = hub
        .plan(&request(
            json!({"modelId": "org/gated", "bucketName": "models"}),
        ))
        .await
        .expect("gated plan with a valid token");
    for (file, expected) in plan.files.iter().zip(fake.files("org/gated", "main")) {
        assert_eq!(
            download(&hub, file).await.expect("download"),
            expected.content
        );
    }
    // The Hub saw the token; the CDN (another port) never did.
    assert!(fake
        .hub
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {GOOD_TOKEN}"))));
    let cdn = fake.cdn.requests();
    assert!(!cdn.is_empty(), "LFS files came from the CDN");
    assert!(cdn.iter().all(|r| r.header("authorization").is_none()));
    // No Range header anywhere, in particular not for the empty file.
    assert!(fake
        .hub
        .requests()
        .iter()
        .all(|r| r.header("range").is_none()));
    assert!(fake
        .hub
        .requests()
        .iter()
        .any(|r| r.path().ends_with("/resolve/main/empty.txt")));
}

#[tokio::test]
async fn checksum_mismatch_fails_the_file() {
    let fake = FakeHub::start().await;
    let hub = client(&fake, None);
    let plan = hub
        .plan(&request(
            json!({"modelId": "org/bad-sha", "bucketName": "models"}),
        ))
        .await
        .expect("plan");
    assert_eq!(
        download(&hub, &plan.files[0]).await.expect("ok file"),
        b"fine"
    );
    let err = download(&hub, &plan.files[1]).await.expect_err("mismatch");
    assert_eq!(err.code(), Some(CHECKSUM_MISMATCH));
    assert!(
        err.message().starts_with(&format!(
            "Checksum mismatch for weights.bin: expected {}, got ",
            "0".repeat(64)
        )),
        "{err}"
    );
}

#[tokio::test]
async fn hub_errors_are_mapped() {
    let fake = FakeHub::start().await;
    let anonymous = client(&fake, None);
    let missing = anonymous
        .plan(&request(
            json!({"modelId": "org/nope", "bucketName": "models"}),
        ))
        .await
        .expect_err("missing");
    assert_eq!(missing.backend_status(), Some(404));
    assert_eq!(missing.code(), Some("Repository not found"));
    let gated = anonymous
        .plan(&request(
            json!({"modelId": "org/gated", "bucketName": "models"}),
        ))
        .await
        .expect_err("gated");
    assert_eq!(gated.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        gated.message(),
        "This model is gated and requires a HuggingFace token."
    );
    let rejected = client(&fake, Some("hf_wrong"))
        .plan(&request(
            json!({"modelId": "org/gated", "bucketName": "models"}),
        ))
        .await
        .expect_err("bad token");
    assert_eq!(
        rejected.message(),
        "This model requires a valid HuggingFace token to be downloaded, or you are not authorized."
    );
    let limited = anonymous
        .plan(&request(
            json!({"modelId": "org/limited", "bucketName": "models"}),
        ))
        .await
        .expect_err("429");
    assert_eq!(limited.backend_status(), Some(429));
    let who = client(&fake, Some(GOOD_TOKEN))
        .whoami()
        .await
        .expect("whoami");
    assert_eq!(who.access_token_display_name.as_deref(), Some("test-token"));
    let bad = client(&fake, Some("x"))
        .whoami()
        .await
        .expect_err("bad token");
    assert_eq!(bad.message(), "Invalid credentials in Authorization header");
    // A missing file of a listed model: the download fails with the status.
    let plan = anonymous
        .plan(&request(
            json!({"modelId": "org/model", "bucketName": "models"}),
        ))
        .await
        .expect("plan");
    let mut ghost = plan.files[0].clone();
    ghost.url =
        Url::parse(&format!("{}/org/model/resolve/main/ghost.bin", fake.url())).expect("url");
    let err = anonymous.open_file(&ghost).await.expect_err("404");
    assert_eq!(err.message(), "HTTP request failed: 404 Not Found");
}

#[tokio::test]
async fn fallback_without_tree_uses_siblings() {
    let fake = FakeHub::start().await;
    let hub = client(&fake, None);
    let plan = hub
        .plan(&request(
            json!({"modelId": "org/notree", "bucketName": "models"}),
        ))
        .await
        .expect("plan");
    assert!(!plan.sizes_known);
    assert_eq!(plan.total_bytes, 0);
    let opened = hub.open_file(&plan.files[0]).await.expect("open");
    assert_eq!(
        opened.content_length,
        Some(fake.files("org/notree", "main")[0].content.len() as u64)
    );
}

#[tokio::test]
async fn proxy_routes_hub_calls_and_no_proxy_bypasses_it() {
    let fake = FakeHub::start().await;
    let proxy = ForwardProxy::start().await;
    let settings = ProxySettings {
        http_proxy: proxy.url(),
        https_proxy: String::new(),
    };
    let base = Url::parse(&fake.url()).expect("url");
    let proxied = HubClient::new(
        base.clone(),
        &Outbound::new(settings.clone(), NoProxy::default()),
        None,
    )
    .expect("client");
    let info = proxied
        .model_info("org/model", "main")
        .await
        .expect("through the proxy");
    assert!(!info.gated);
    assert!(proxy
        .requests()
        .iter()
        .any(|r| r.path() == "/api/models/org/model/revision/main"));
    let seen = proxy.requests().len();
    let exempt = Outbound::new(
        settings,
        NoProxy::parse(&format!("127.0.0.1:{}", fake.hub.addr.port())),
    );
    let direct = HubClient::new(base, &exempt, None).expect("client");
    direct
        .model_info("org/model", "main")
        .await
        .expect("direct");
    assert_eq!(proxy.requests().len(), seen, "NO_PROXY bypassed the proxy");
}

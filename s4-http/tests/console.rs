//! The web console over real HTTP: served outside `/api` with the security headers
//! of API §19 (a CSP without `unsafe-inline` scripts), hashed assets cached as
//! immutable, client routes falling back to `index.html`, `NB_PREFIX` honoured, and
//! the API unaffected.

mod common;

use common::Kind;

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The `/assets/...` URLs named by `index.html`.
fn asset_urls(index: &str) -> Vec<String> {
    index
        .split('"')
        .filter(|part| part.contains("/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn console_is_served_with_security_headers_and_caching() {
    let s = common::start(Kind::Memory).await.expect("server");
    let origin = format!("http://{}", s.addr);
    let response = s
        .client
        .get(format!("{origin}/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let scripts = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .expect("script-src");
    assert!(!scripts.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "x-frame-options"), "SAMEORIGIN");
    let index = response.text().await.expect("index");
    let urls = asset_urls(&index);
    assert_eq!(urls.len(), 3, "{index}");
    for url in urls {
        let response = s
            .client
            .get(format!("{origin}{url}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(!header(&response, "content-security-policy").is_empty());
        let expected = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(header(&response, "content-type"), expected, "{url}");
    }
    // The browser's own favicon request, and client routes on reload.
    let response = s
        .client
        .get(format!("{origin}/favicon.ico"))
        .send()
        .await
        .expect("favicon");
    assert_eq!(response.status(), 200);
    let response = s
        .client
        .get(format!("{origin}/browse/s3/bucket/folder"))
        .send()
        .await
        .expect("route");
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("<title>S4</title>"));
    let response = s
        .client
        .get(format!("{origin}/assets/app.0000000000000000.js"))
        .send()
        .await
        .expect("stale asset");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn api_is_unaffected() {
    let s = common::start(Kind::Memory).await.expect("server");
    let (status, body) = s.get_json("/").await;
    assert_eq!((status, body), (200, serde_json::json!({"status": "ok"})));
    let response = s.get("/no-such-route").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        header(&response, "content-type"),
        "application/json; charset=utf-8"
    );
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "Not Found");
    let response = s
        .client
        .post(format!("http://{}/", s.addr))
        .send()
        .await
        .expect("POST /");
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn console_lives_under_the_prefix() {
    let s = common::start_with(Kind::Memory, |c| c.nb_prefix = "/nb/user".into())
        .await
        .expect("server");
    let origin = format!("http://{}", s.addr);
    let response = s
        .client
        .get(format!("{origin}/nb/user/"))
        .send()
        .await
        .expect("index");
    assert_eq!(response.status(), 200);
    let index = response.text().await.expect("index");
    assert!(index.contains("content=\"/nb/user\""), "{index}");
    for url in asset_urls(&index) {
        assert!(url.starts_with("/nb/user/assets/"), "{url}");
        let response = s
            .client
            .get(format!("{origin}{url}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{url}");
    }
    let response = s.client.get(format!("{origin}/")).send().await.expect("/");
    assert_eq!(response.status(), 404);
    let response = s
        .client
        .get(format!("{origin}/nb/user/api"))
        .send()
        .await
        .expect("health");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "ok");
}

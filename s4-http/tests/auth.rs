//! The access layer over real HTTP: the route × credential matrix (built from the
//! router's own table), tickets, rate limits, CORS and security headers.

mod common;

use base64::Engine as _;
use common::{b64, start_with, Kind, TestServer};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use s4_core::auth::AuthConfig;
use s4_http::router::{Access, ROUTES};
use serde_json::{json, Value};

const SECRET: &str = "test-secret-test-secret-test-secret";

fn auth_vars(extra: &[(&str, &str)]) -> AuthConfig {
    let mut vars: Vec<(String, String)> = vec![
        ("UI_USERNAME".into(), "admin".into()),
        ("UI_PASSWORD".into(), "s3cret pass".into()),
        ("JWT_SECRET".into(), SECRET.into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    AuthConfig::from_lookup(&move |name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

async fn server_with_auth(extra: &[(&str, &str)]) -> TestServer {
    let config = auth_vars(extra);
    start_with(Kind::Memory, move |c| c.auth = config)
        .await
        .expect("memory server")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn token(alg: Algorithm, secret: &str, claims: Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn claims(exp_offset: i64) -> Value {
    json!({"id": "admin", "username": "admin", "roles": ["admin"], "iat": now(), "exp": now() + exp_offset})
}

fn alg_none_token() -> String {
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        e(&json!({"alg": "none", "typ": "JWT"})),
        e(&claims(3600))
    )
}

fn tampered_token() -> String {
    let valid = token(Algorithm::HS256, SECRET, claims(3600));
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let mut payload = claims(3600);
    payload["username"] = json!("mallory");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

/// A concrete request path for a route pattern.
fn concrete(pattern: &str) -> String {
    let path: Vec<String> = pattern
        .split('/')
        .map(|seg| match seg {
            "{bucket}" => "matrix-bucket".to_string(),
            "{key}" | "{prefix}" | "{resource}" | "{*path}" => b64("some/key.txt"),
            "{location}" => "local-0".to_string(),
            s => s.to_string(),
        })
        .collect();
    format!("/api{}", path.join("/"))
}

async fn send(
    s: &TestServer,
    method: &http::Method,
    path: &str,
    auth: Option<(&str, &str)>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
    let mut request = s.client.request(method, format!("http://{}{path}", s.addr));
    if let Some((header, value)) = auth {
        request = request.header(header, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let is_sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_sse {
        return (status, Value::Null); // Streams stay open; the status is what matters.
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_credential_matrix() {
    let s = server_with_auth(&[]).await;
    let bad_tokens = [
        (
            "another secret",
            token(
                Algorithm::HS256,
                "another-secret-another-secret",
                claims(3600),
            ),
            "Invalid token",
        ),
        ("alg none", alg_none_token(), "Invalid token"),
        (
            "HS512 right secret",
            token(Algorithm::HS512, SECRET, claims(3600)),
            "Invalid token",
        ),
        ("tampered payload", tampered_token(), "Invalid token"),
        (
            "expired",
            token(Algorithm::HS256, SECRET, claims(-10)),
            "Token has expired",
        ),
        (
            "payload without roles",
            token(
                Algorithm::HS256,
                SECRET,
                json!({"id":"a","username":"a","exp": now() + 60}),
            ),
            "Invalid token payload",
        ),
    ];
    let good = token(Algorithm::HS256, SECRET, claims(3600));
    let mut protected = 0;
    for route in ROUTES {
        let path = concrete(route.path);
        if route.access == Access::Public {
            let (status, body) = send(&s, &route.method, &path, None).await;
            assert_ne!(status, 401, "public {} {path}: {body}", route.method);
            continue;
        }
        protected += 1;
        let (status, body) = send(&s, &route.method, &path, None).await;
        assert_eq!(
            (status, body.clone()),
            (
                401,
                json!({"error": "Unauthorized", "message": "Missing or invalid Authorization header"})
            ),
            "{} {path}",
            route.method
        );
        for (what, bad, message) in &bad_tokens {
            for (header, value) in [
                ("authorization", format!("Bearer {bad}")),
                ("cookie", format!("s4_auth_token={bad}")),
            ] {
                let (status, body) = send(&s, &route.method, &path, Some((header, &value))).await;
                assert_eq!(
                    status, 401,
                    "{what} via {header} on {} {path}: {body}",
                    route.method
                );
                assert_eq!(body["message"], *message, "{what} via {header} on {path}");
            }
        }
        for (header, value) in [
            ("authorization", format!("Bearer {good}")),
            ("cookie", format!("s4_auth_token={good}")),
        ] {
            let (status, body) = send(&s, &route.method, &path, Some((header, &value))).await;
            assert_ne!(
                status, 401,
                "valid {header} on {} {path}: {body}",
                route.method
            );
        }
        // A lower-case scheme is not a Bearer token.
        let (status, _) = send(
            &s,
            &route.method,
            &path,
            Some(("authorization", &format!("bearer {good}"))),
        )
        .await;
        assert_eq!(status, 401, "{path}");
    }
    assert!(protected >= 20, "the table lists the protected routes");
    // Unknown routes: 401 first, 404 once authenticated.
    let (status, _) = send(&s, &http::Method::GET, "/api/not/a/route", None).await;
    assert_eq!(status, 401);
    let (status, body) = send(
        &s,
        &http::Method::GET,
        "/api/not/a/route",
        Some(("authorization", &format!("Bearer {good}"))),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "Not Found", "message": "Not Found"}))
    );
    // Unknown paths under the public auth routes are public too (§4.6).
    let (status, _) = send(&s, &http::Method::GET, "/api/auth/info/extra", None).await;
    assert_eq!(status, 404);
    // A stale cookie does not hide a valid Bearer token.
    let response = s
        .client
        .get(s.url("/buckets"))
        .header(
            "cookie",
            format!(
                "s4_auth_token={}",
                token(Algorithm::HS256, SECRET, claims(-10))
            ),
        )
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 200);
    // A JWT in the query string is not accepted.
    let (status, _) = send(
        &s,
        &http::Method::GET,
        &format!("/api/buckets?token={good}"),
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_everything_open() {
    let s = start_with(Kind::Memory, |_| {}).await.expect("server");
    let (status, body) = s.get_json("/auth/info").await;
    assert_eq!(
        (status, body),
        (200, json!({"authMode": "none", "authRequired": false}))
    );
    let (status, body) = s.get_json("/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["user"],
        json!({"id": "proxy-user", "username": "proxy-user", "roles": ["admin"]})
    );
    let (status, body) = s
        .post_json("/auth/login", json!({"username": "a", "password": "b"}))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "Bad Request", "message": "Authentication is not enabled"})
        )
    );
    for route in ROUTES {
        let (status, body) = send(&s, &route.method, &concrete(route.path), None).await;
        assert_ne!(status, 401, "{} {}: {body}", route.method, route.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_cookie_and_logout() {
    let s = server_with_auth(&[]).await;
    let (status, body) = s.get_json("/auth/info").await;
    assert_eq!(
        (status, body),
        (200, json!({"authMode": "simple", "authRequired": true}))
    );
    // (Login is limited to 5 attempts per minute, failed ones included.)
    for bad in [
        json!({"username": "admin"}),
        json!({"username": 1, "password": "x"}),
    ] {
        let (status, body) = s.post_json("/auth/login", bad).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some("Username and password are required"))
        );
    }
    let (status, body) = s
        .post_json(
            "/auth/login",
            json!({"username": "admin", "password": "wrong"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": "Unauthorized", "message": "Invalid username or password"})
        )
    );
    let response = s
        .client
        .post(s.url("/auth/login"))
        .json(&json!({"username": "admin", "password": "s3cret pass"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_string();
    for attribute in [
        "s4_auth_token=",
        "HttpOnly",
        "Path=/",
        "Max-Age=28800",
        "SameSite=Strict",
        "Secure",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["user"],
        json!({"id": "admin", "username": "admin", "roles": ["admin"]})
    );
    assert_eq!(body["expiresIn"], 28800);
    let jwt = body["token"].as_str().expect("token").to_string();
    let pair = cookie.split(';').next().expect("pair").to_string();
    let (status, body) = send(
        &s,
        &http::Method::GET,
        "/api/auth/me",
        Some(("cookie", &pair)),
    )
    .await;
    assert_eq!(
        (status, body["user"]["username"].as_str()),
        (200, Some("admin"))
    );
    let (status, _) = send(
        &s,
        &http::Method::GET,
        "/api/auth/me",
        Some(("authorization", &format!("Bearer {jwt}"))),
    )
    .await;
    assert_eq!(status, 200);
    let response = s
        .client
        .post(s.url("/auth/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status().as_u16(), 200);
    let cleared = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(
        cleared,
        "s4_auth_token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
    // Development cookies: no Secure, SameSite=Lax.
    let s = server_with_auth(&[("NODE_ENV", "development")]).await;
    let response = s
        .client
        .post(s.url("/auth/login"))
        .json(&json!({"username": "admin", "password": "s3cret pass"}))
        .send()
        .await
        .expect("login");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

async fn ticket(s: &TestServer, jwt: &str, resource: &str, kind: &str) -> (u16, Value) {
    let response = s
        .client
        .post(s.url("/auth/sse-ticket"))
        .bearer_auth(jwt)
        .json(&json!({"resource": resource, "resourceType": kind}))
        .send()
        .await
        .expect("ticket");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_tickets() {
    let s = server_with_auth(&[]).await;
    let jwt = token(Algorithm::HS256, SECRET, claims(3600));
    let key = b64("videos/clip.mp4");
    let (status, body) = ticket(&s, &jwt, &key, "upload").await;
    assert_eq!(status, 200, "{body}");
    let t = body["ticket"].as_str().expect("ticket").to_string();
    assert_eq!(t.len(), 43);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(
        body["sseUrl"],
        format!("/objects/upload-progress/{key}?ticket={t}")
    );
    assert_eq!(body["expiresIn"], 60);
    assert!(body["expiresAt"]
        .as_i64()
        .is_some_and(|ms| ms > now() * 1000));
    let sse =
        |resource: &str, t: &str| format!("/api/objects/upload-progress/{resource}?ticket={t}");
    // Wrong resource: refused, ticket left untouched.
    let (status, body) = send(&s, &http::Method::GET, &sse(&b64("other"), &t), None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Invalid or expired ticket"))
    );
    // A ticket on a non-SSE path.
    let (status, body) = send(
        &s,
        &http::Method::GET,
        &format!("/api/buckets?ticket={t}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "BadRequest", "message": "Invalid SSE endpoint for ticket authentication"})
        )
    );
    // Right resource: accepted once.
    let (status, _) = send(&s, &http::Method::GET, &sse(&key, &t), None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&s, &http::Method::GET, &sse(&key, &t), None).await;
    assert_eq!(status, 401, "single use");
    // Wrong type: a transfer ticket on the upload route.
    let (_, body) = ticket(&s, &jwt, &key, "transfer").await;
    let t = body["ticket"].as_str().expect("ticket").to_string();
    let (status, _) = send(&s, &http::Method::GET, &sse(&key, &t), None).await;
    assert_eq!(status, 401);
    // Validation.
    let (status, body) = ticket(&s, &jwt, "", "upload").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "BadRequest", "message": "Resource and resourceType are required"})
        )
    );
    let (status, body) = ticket(&s, &jwt, "x", "download").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "BadRequest", "message": "Invalid resourceType. Must be 'transfer' or 'upload'"})
        )
    );
    let (status, _) = send(&s, &http::Method::POST, "/api/auth/sse-ticket", None).await;
    assert_eq!(status, 401);
}

#[tokio::test(start_paused = true)]
async fn tickets_expire_and_rate_limits_reset() {
    let s = server_with_auth(&[("SSE_TICKET_TTL_SECONDS", "5")]).await;
    let jwt = token(Algorithm::HS256, SECRET, claims(3600));
    let (_, body) = ticket(&s, &jwt, "r1", "upload").await;
    let t = body["ticket"].as_str().expect("ticket").to_string();
    assert_eq!(body["expiresIn"], 5);
    tokio::time::advance(std::time::Duration::from_secs(6)).await;
    let (status, body) = send(
        &s,
        &http::Method::GET,
        &format!("/api/objects/upload-progress/r1?ticket={t}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Invalid or expired ticket"))
    );

    // Login: 5 per window, the sixth is refused with retryAfter / Retry-After.
    for _ in 0..5 {
        let (status, _) = s
            .post_json(
                "/auth/login",
                json!({"username": "admin", "password": "wrong"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let response = s
        .client
        .post(s.url("/auth/login"))
        .json(&json!({"username": "admin", "password": "s3cret pass"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: i64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("Retry-After");
    // Whole seconds, rounded up.
    assert!((1..=61).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "RateLimitExceeded");
    assert_eq!(
        body["message"],
        "Too many login attempts. Maximum 5 per minute."
    );
    let at = body["retryAfter"].as_i64().expect("retryAfter");
    assert!(
        at > now() - 10 && at <= now() + 61,
        "retryAfter {at} is Unix seconds of the window end"
    );
    // A new window admits again.
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    let (status, _) = s
        .post_json(
            "/auth/login",
            json!({"username": "admin", "password": "s3cret pass"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_and_security_headers() {
    let s = server_with_auth(&[]).await;
    for (origin, allowed) in [
        ("http://localhost:5000", true),
        ("https://evil.example", false),
    ] {
        let response = s
            .client
            .request(reqwest::Method::OPTIONS, s.url("/buckets"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("preflight");
        assert_eq!(response.status().as_u16(), 204, "{origin}");
        let h = response.headers();
        assert_eq!(
            h.get("access-control-allow-methods")
                .and_then(|v| v.to_str().ok()),
            Some("GET, PUT, POST, DELETE, OPTIONS")
        );
        let acao = h
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok());
        if allowed {
            assert_eq!(acao, Some(origin));
            assert_eq!(
                h.get("access-control-allow-credentials")
                    .and_then(|v| v.to_str().ok()),
                Some("true")
            );
        } else {
            assert_eq!(acao, None);
        }
    }
    // A normal (unauthenticated, so 401) response still carries CORS and security headers.
    let response = s
        .client
        .get(s.url("/buckets"))
        .header("origin", "http://127.0.0.1:8888")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 401);
    let h = response.headers();
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:8888")
    );
    assert_eq!(
        h.get("access-control-expose-headers")
            .and_then(|v| v.to_str().ok()),
        Some("Content-Disposition")
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("x-xss-protection", "0"),
    ] {
        assert_eq!(
            h.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(h.get("content-security-policy").is_some());
    assert!(h.get("strict-transport-security").is_none());
    // Reflect-any never sends "*".
    let s = start_with(Kind::Memory, |c| {
        c.cors = s4_http::Cors::from_value(Some("*"))
    })
    .await
    .expect("server");
    let response = s
        .client
        .get(s.url("/"))
        .header("origin", "https://any.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://any.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contains_search_rate_limit() {
    let s = start_with(Kind::Memory, |_| {}).await.expect("server");
    let bucket = s.bucket("ratelimit").await;
    for _ in 0..5 {
        let (status, _) = s.get_json(&format!("/objects/{bucket}?q=abc")).await;
        assert_eq!(status, 200);
    }
    // startsWith and auto-broadened searches are not limited.
    let (status, _) = s
        .get_json(&format!(
            "/objects/{bucket}?q=abc&mode=startsWith&autoBroaden=true"
        ))
        .await;
    assert_eq!(status, 200);
    let (status, body) = s.get_json(&format!("/objects/{bucket}?q=abc")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (429, Some("Too many search requests. Maximum 5 per minute."))
    );
}

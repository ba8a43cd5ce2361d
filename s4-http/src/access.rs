//! The access layer in front of every route: authentication (driven by the route
//! table's [`Access`] rules), CORS and security headers.
//!
//! One function, [`authenticate`], decides every request. Routes never check
//! credentials themselves, so a route added to the table is protected by default.

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, VARY};
use http::{HeaderMap, Method, Response, StatusCode};
use s4_core::auth::{AuthService, Presented, User};

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::router::{Access, Route};

pub(crate) use crate::cookie::session_cookie;

/// The token of an `Authorization` header value of the form `Bearer <jwt>` (prefix
/// exactly `Bearer `, case-sensitive); `None` for any other scheme.
fn bearer_token(authorization: &str) -> Option<&str> {
    authorization.strip_prefix("Bearer ")
}

/// Authenticates a request for `route` (or for an unknown route when `None`).
///
/// Public routes are never refused (the result is the caller's identity when it
/// presented valid credentials, else the synthetic proxy user). Everything else
/// needs valid credentials when authentication is enabled; tickets are accepted
/// only on routes whose access rule is [`Access::Ticket`], for their `{resource}`
/// (`resource`, which the route table guarantees such routes have).
///
/// # Errors
/// 401/400/500 per the API contract §4.5.
pub(crate) fn authenticate(
    auth: &AuthService,
    route: Option<&Route>,
    resource: Option<&str>,
    headers: &HeaderMap,
    ticket: Option<&str>,
) -> Result<Option<User>, ApiError> {
    let presented = Presented {
        cookie: session_cookie(headers),
        bearer: headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token),
        ticket,
    };
    let access = route.map(|r| r.access).unwrap_or(Access::Protected);
    let scope = match access {
        Access::Public => {
            // Never refused. The caller is "no user" unless real credentials verify:
            // never the admin proxy user, so no check on a public route can grant
            // anything to an anonymous caller.
            if !auth.mode().auth_enabled() {
                return Ok(None);
            }
            let quiet = Presented {
                ticket: None,
                ..presented
            };
            return Ok(auth.authenticate(&quiet, None).ok());
        }
        Access::Protected => None,
        Access::Ticket(kind) => Some((kind, resource.unwrap_or_default())),
    };
    auth.authenticate(&presented, scope)
        .map(Some)
        .map_err(ApiError::from)
}

/// Whether an unknown path lies under a public route prefix (§4.6: everything under
/// `/auth/info` and `/auth/login` is public), so it answers 404 without credentials.
pub(crate) fn is_public_prefix(api_path: &str) -> bool {
    ["/auth/info/", "/auth/login/"]
        .iter()
        .any(|prefix| api_path.starts_with(prefix))
}

/// CORS policy (§19.1).
#[derive(Debug, Clone)]
pub struct Cors {
    /// Allowed exact origins.
    pub origins: Vec<String>,
    /// `ALLOWED_ORIGINS=*`: reflect any origin (development only).
    pub any: bool,
}

/// The default allowed origins.
pub(crate) const DEFAULT_ORIGINS: &[&str] = &[
    "http://localhost:5000",
    "http://localhost:8888",
    "http://localhost:9000",
    "http://127.0.0.1:5000",
    "http://127.0.0.1:8888",
    "http://127.0.0.1:9000",
];

impl Cors {
    /// From the `ALLOWED_ORIGINS` value (comma-separated; unset = the defaults).
    pub fn from_value(value: Option<&str>) -> Self {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some("*") => Cors {
                origins: Vec::new(),
                any: true,
            },
            Some(list) => Cors {
                origins: list
                    .split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect(),
                any: false,
            },
            None => Cors {
                origins: DEFAULT_ORIGINS.iter().map(|o| o.to_string()).collect(),
                any: false,
            },
        }
    }

    /// The request's `Origin` if it is allowed.
    pub fn allowed<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        (self.any && text != "null" || self.origins.iter().any(|o| o == text)).then_some(origin)
    }

    /// Adds the CORS headers for the request's `Origin` (if allowed) to `response`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.allowed(origin) else {
            return;
        };
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Disposition"),
        );
    }

    /// The answer to a preflight request: 204, never authenticated.
    pub fn preflight(&self) -> Response<Body> {
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, PUT, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Authorization, Cookie"),
        );
        response
    }
}

/// Whether a request is a CORS preflight.
pub(crate) fn is_preflight(method: &Method) -> bool {
    method == Method::OPTIONS
}

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "cross-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data: blob: https:; connect-src 'self'; font-src 'self'; object-src 'none'; media-src 'self'; frame-src 'none'; frame-ancestors 'none'";

const CSP_DEV: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data: blob: https:; connect-src 'self' http://localhost:8888 http://localhost:9000 http://127.0.0.1:8888 http://127.0.0.1:9000; font-src 'self'; object-src 'none'; media-src 'self'; frame-src 'none'; frame-ancestors 'none'";

/// Adds the security headers of §19.2 to `response`.
pub(crate) fn security_headers(response: &mut Response<Body>, development: bool) {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(if development { CSP_DEV } else { CSP }),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_exact() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn cors_origins() {
        let cors = Cors::from_value(None);
        let origin = |v: &'static str| HeaderValue::from_static(v);
        assert!(cors
            .allowed(Some(&origin("http://localhost:8888")))
            .is_some());
        assert!(cors
            .allowed(Some(&origin("https://evil.example")))
            .is_none());
        assert!(cors.allowed(None).is_none());
        let cors = Cors::from_value(Some("https://s4.example.com, https://b.example/"));
        assert!(cors.allowed(Some(&origin("https://b.example"))).is_some());
        let cors = Cors::from_value(Some("*"));
        assert!(cors.allowed(Some(&origin("https://b.example"))).is_some());
        assert!(cors.allowed(Some(&origin("null"))).is_none());
    }
}

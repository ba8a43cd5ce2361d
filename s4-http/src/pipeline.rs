//! The request pipeline every request takes: strip `NB_PREFIX` → request-size
//! limits → route (from the one route table) → authenticate (driven by the
//! route's access rule) → handler → CORS and security headers → one log line.
//!
//! Kept apart from the shared state (`app.rs`), which the handlers (`routes/`)
//! use: the pipeline calls the handlers, the handlers never call the pipeline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::access;
use crate::app::{App, Ctx};
use crate::body::Body;
use crate::error::ApiError;
use crate::router::{Matched, Route, RouteId};
use crate::routes;

/// Longest accepted request target (414 beyond).
pub(crate) const MAX_URI_LEN: usize = 16 * 1024;
/// Largest accepted header section (431 beyond).
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;

impl App {
    /// Handles one request. Never fails: errors become JSON responses.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path: String = request.uri().path().chars().take(512).collect();
        let origin = request.headers().get(http::header::ORIGIN).cloned();
        let (mut response, route) = if access::is_preflight(&method) {
            (self.inner.config.cors.preflight(), None)
        } else {
            self.pipeline(request, peer).await
        };
        self.inner
            .config
            .cors
            .decorate(origin.as_ref(), &mut response);
        access::security_headers(&mut response, self.inner.config.development_csp);
        let quiet = matches!(
            route.map(|r| r.id),
            Some(RouteId::Health | RouteId::Kernels)
        ) && !self.inner.config.log_health_checks;
        if !quiet {
            let bytes = http_body::Body::size_hint(response.body())
                .exact()
                .or_else(|| {
                    response
                        .headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                });
            tracing::info!(
                method = %method,
                route = route.map(|r| r.path).unwrap_or("-"),
                path = route.is_none().then_some(path.as_str()),
                status = response.status().as_u16(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                bytes = bytes.map(|b| b as i64).unwrap_or(-1),
                "request"
            );
        }
        response
    }

    async fn pipeline(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> (Response<Body>, Option<&'static Route>) {
        if request.uri().to_string().len() > MAX_URI_LEN {
            let e = ApiError::new(
                StatusCode::URI_TOO_LONG,
                "URI Too Long",
                "Request URI is too long",
            );
            return (e.into_response(), None);
        }
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            let e = ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request Header Fields Too Large",
                "Request header section is too large",
            );
            return (e.into_response(), None);
        }
        let path = request.uri().path().to_string();
        let Some(api_path) = self.api_path(&path) else {
            // Outside `/api`: the web console (its assets, or index.html).
            let response =
                crate::console::respond(request.method(), &path, &self.inner.config.nb_prefix);
            return (response, None);
        };
        let matched = self.inner.router.route(request.method(), api_path);
        // Parsed once: the access layer reads `ticket`, handlers the rest.
        let query = request
            .uri()
            .query()
            .map(|q| {
                let mut map = HashMap::new();
                for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                    map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
                }
                map
            })
            .unwrap_or_default();
        let ticket = query.get("ticket").map(String::as_str);
        let (route, params) = match matched {
            Matched::Route(route, params) => (route, params),
            Matched::BadEncoding => {
                let e = ApiError::bad_request("params must be valid UTF-8 after percent-decoding");
                return (e.into_response(), None);
            }
            Matched::NotFound if access::is_public_prefix(api_path) => {
                return (ApiError::not_found().into_response(), None);
            }
            Matched::NotFound => {
                // Unknown routes are answered after authentication (a 401 when it is on).
                let auth =
                    access::authenticate(&self.inner.auth, None, None, request.headers(), ticket);
                let e = auth.err().unwrap_or_else(ApiError::not_found);
                return (e.into_response(), None);
            }
        };
        let user = match access::authenticate(
            &self.inner.auth,
            Some(route),
            params.ticket_resource(),
            request.headers(),
            ticket,
        ) {
            Ok(user) => user,
            Err(e) => return (e.into_response(), Some(route)),
        };
        if !matches!(route.id, RouteId::Health | RouteId::Kernels) {
            let now = chrono::Utc::now().timestamp_millis();
            self.inner.last_activity.store(now, Ordering::Relaxed);
        }
        let ctx = Ctx {
            route,
            query,
            peer,
            user,
        };
        let response = match routes::dispatch(self, request, ctx, params).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        (response, Some(route))
    }

    /// The path relative to `/api` (under `NB_PREFIX`), or `None` outside the API.
    fn api_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.inner.config.nb_prefix.as_str())?;
        let rest = rest.strip_prefix("/api")?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

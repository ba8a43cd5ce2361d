//! The application: shared state, and the request pipeline every request takes.
//!
//! Pipeline: strip `NB_PREFIX` → request-size limits → route (from the one route
//! table) → authenticate (driven by the route's access rule) → handler → CORS and
//! security headers → one log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s4_core::auth::{AuthConfig, AuthService, User};
use s4_core::config_store::ConfigStore;
use s4_core::ratelimit::RateLimiter;
use s4_core::{Settings, S4};

use crate::access::{self, Cors};
use crate::body::Body;
use crate::error::ApiError;
use crate::router::{Matched, Params, Route, RouteId, Router};
use crate::routes;

/// Longest accepted request target (414 beyond).
pub const MAX_URI_LEN: usize = 16 * 1024;
/// Largest accepted header section (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// HTTP-level configuration, derived from [`Settings`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Upload size limit in bytes.
    pub max_file_size: u64,
    /// The same in GiB, for messages.
    pub max_file_size_gb: u64,
    /// Default bucket reported by the bucket listing.
    pub default_bucket: String,
    /// URL prefix of the app (`""` or `/x`).
    pub nb_prefix: String,
    /// Also log health checks.
    pub log_health_checks: bool,
    /// Authentication settings (`UI_USERNAME`, `JWT_SECRET`, ...).
    pub auth: AuthConfig,
    /// CORS policy (`ALLOWED_ORIGINS`).
    pub cors: Cors,
    /// `APP_ENV=development`: development origins in the CSP.
    pub development_csp: bool,
    /// GitHub API address of the project repository (`S4_GITHUB_REPO_API`).
    pub github_repo_api: String,
}

impl HttpConfig {
    /// Derives the HTTP configuration from start-up settings and the variables
    /// read through `lookup` (auth, CORS, CSP).
    pub fn from_lookup(settings: &Settings, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        HttpConfig {
            max_file_size: settings.max_file_size,
            max_file_size_gb: settings.max_file_size_gb,
            default_bucket: settings.default_bucket.clone(),
            nb_prefix: settings.nb_prefix.clone(),
            log_health_checks: settings.log_health_checks,
            auth: AuthConfig::from_lookup(lookup),
            cors: Cors::from_value(lookup("ALLOWED_ORIGINS").as_deref()),
            development_csp: lookup("APP_ENV").is_some_and(|v| v.trim() == "development"),
            github_repo_api: lookup("S4_GITHUB_REPO_API")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| s4_core::github::DEFAULT_REPO_API.to_string()),
        }
    }
}

impl Default for HttpConfig {
    /// Defaults with authentication off, ignoring the process environment.
    fn default() -> Self {
        Self::from_lookup(&Settings::memory(), &|_| None)
    }
}

/// The application state shared by every connection. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    s4: S4,
    config: HttpConfig,
    router: Router,
    auth: AuthService,
    limiter: RateLimiter,
    /// Unix ms of the last API request other than probes; 0 = none yet.
    last_activity: AtomicI64,
    /// Runtime settings (API §16).
    settings: ConfigStore,
}

/// Per-request context handed to handlers.
#[derive(Debug)]
pub struct Ctx {
    /// The matched route.
    pub route: &'static Route,
    /// Path parameters, percent-decoded once.
    pub params: Params,
    /// Query parameters (first value of each name).
    pub query: HashMap<String, String>,
    /// TCP peer address ("client IP": `X-Forwarded-For` is never trusted).
    pub peer: SocketAddr,
    /// The authenticated caller: on protected routes always `Some` (the proxy user
    /// when authentication is off); on public routes `None` unless the request
    /// carried credentials that verify.
    pub user: Option<User>,
}

impl Ctx {
    /// A query parameter, if present.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The caller of a protected route. `None` only on public routes, which must
    /// not call this: they answer 401 rather than treat "no user" as anyone.
    pub fn caller(&self) -> Result<&User, ApiError> {
        self.user.as_ref().ok_or_else(|| {
            ApiError::from(s4_core::Error::new(
                s4_core::ErrorKind::Unauthenticated,
                s4_core::auth::messages::MISSING_CREDENTIALS,
            ))
        })
    }
}

impl App {
    /// Builds the application over `s4`, with runtime settings kept in memory only.
    pub fn new(s4: S4, config: HttpConfig) -> Self {
        Self::with_settings(s4, config, ConfigStore::ephemeral())
    }

    /// Builds the application over `s4` with a (persisted) runtime settings store.
    pub fn with_settings(s4: S4, config: HttpConfig, settings: ConfigStore) -> Self {
        let app = App {
            inner: Arc::new(AppInner {
                s4,
                auth: AuthService::new(config.auth.clone()),
                limiter: RateLimiter::new(),
                config,
                router: Router::new(),
                last_activity: AtomicI64::new(0),
                settings,
            }),
        };
        app.apply_runtime_settings();
        app
    }

    /// Hands the runtime settings to the core services that follow them: the
    /// transfer concurrency limit and the webhook client's proxies. Called at
    /// start and after every change of those settings.
    pub fn apply_runtime_settings(&self) {
        let settings = &self.inner.settings;
        self.inner
            .s4
            .transfers()
            .set_max_concurrent(settings.max_concurrent_transfers());
        let proxy = settings.proxy();
        let no_proxy = ["NO_PROXY", "no_proxy"]
            .iter()
            .find_map(|name| std::env::var(name).ok())
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let config = s4_core::notify::ProxyConfig {
            http_proxy: Some(proxy.http_proxy).filter(|p| !p.is_empty()),
            https_proxy: Some(proxy.https_proxy).filter(|p| !p.is_empty()),
            no_proxy,
        };
        if let Err(e) = self.inner.s4.notifications().set_proxy(Some(config)) {
            tracing::warn!(error = %e, "webhook proxy settings not applied");
        }
    }

    /// The core handle.
    pub fn s4(&self) -> &S4 {
        &self.inner.s4
    }

    /// The HTTP configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The runtime settings store.
    pub fn settings(&self) -> &ConfigStore {
        &self.inner.settings
    }

    /// The authentication service.
    pub fn auth(&self) -> &AuthService {
        &self.inner.auth
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Unix ms of the last API request other than probes, if any.
    pub fn last_activity_ms(&self) -> Option<i64> {
        match self.inner.last_activity.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

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
                let auth = access::authenticate(
                    &self.inner.auth,
                    None,
                    &Params::default(),
                    request.headers(),
                    ticket,
                );
                let e = auth.err().unwrap_or_else(ApiError::not_found);
                return (e.into_response(), None);
            }
        };
        let user = match access::authenticate(
            &self.inner.auth,
            Some(route),
            &params,
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
            params,
            query,
            peer,
            user,
        };
        let response = match routes::dispatch(self, request, ctx).await {
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

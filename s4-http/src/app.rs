//! The application's shared state: configuration, the core handle, auth, rate
//! limits and runtime settings ([`App`]), and the per-request context handlers get
//! ([`Ctx`]). The request pipeline that drives them is in `pipeline.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use s4_core::auth::{AuthConfig, AuthService, User};
use s4_core::config_store::ConfigStore;
use s4_core::ratelimit::RateLimiter;
use s4_core::{Settings, S4};

use crate::access::Cors;
use crate::error::ApiError;
use crate::router::{Route, Router};

/// HTTP-level configuration, derived from [`Settings`] and the adapter's own
/// variables; the daemon builds it as a section of its
/// [`DaemonConfig`](crate::config::DaemonConfig).
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
    /// read through `lookup` (`NB_PREFIX`, `LOG_HEALTH_CHECKS`, auth, CORS, CSP).
    pub fn from_lookup(settings: &Settings, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        HttpConfig {
            max_file_size: settings.max_file_size,
            max_file_size_gb: settings.max_file_size_gb,
            default_bucket: settings.default_bucket.clone(),
            nb_prefix: normalize_prefix(&lookup("NB_PREFIX").unwrap_or_default()),
            log_health_checks: lookup("LOG_HEALTH_CHECKS")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            auth: AuthConfig::from_lookup(lookup),
            cors: Cors::from_value(lookup("ALLOWED_ORIGINS").as_deref()),
            development_csp: lookup("APP_ENV").is_some_and(|v| v.trim() == "development"),
            github_repo_api: lookup("S4_GITHUB_REPO_API")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| s4_core::github::DEFAULT_REPO_API.to_string()),
        }
    }
}

/// Normalizes `NB_PREFIX`: surrounding `/` trimmed, one leading `/` added, `""` if empty.
pub(crate) fn normalize_prefix(raw: &str) -> String {
    let trimmed = raw.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
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
    pub(crate) inner: Arc<AppInner>,
}

#[derive(Debug)]
pub(crate) struct AppInner {
    pub(crate) s4: S4,
    pub(crate) config: HttpConfig,
    pub(crate) router: Router,
    pub(crate) auth: AuthService,
    pub(crate) limiter: RateLimiter,
    /// Unix ms of the last API request other than probes; 0 = none yet.
    pub(crate) last_activity: AtomicI64,
    /// Runtime settings (API §16).
    pub(crate) settings: ConfigStore,
}

/// Per-request context handed to handlers.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The matched route.
    pub(crate) route: &'static Route,
    /// Query parameters (first value of each name).
    pub(crate) query: HashMap<String, String>,
    /// TCP peer address ("client IP": `X-Forwarded-For` is never trusted).
    pub(crate) peer: SocketAddr,
    /// The authenticated caller: on protected routes always `Some` (the proxy user
    /// when authentication is off); on public routes `None` unless the request
    /// carried credentials that verify.
    pub(crate) user: Option<User>,
}

impl Ctx {
    /// A query parameter, if present.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The caller of a protected route. `None` only on public routes, which must
    /// not call this: they answer 401 rather than treat "no user" as anyone.
    pub(crate) fn caller(&self) -> Result<&User, ApiError> {
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
        for warning in config.auth.warnings() {
            tracing::warn!("{warning}");
        }
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
        let config = s4_core::notify::ProxyConfig {
            http_proxy: Some(proxy.http_proxy).filter(|p| !p.is_empty()),
            https_proxy: Some(proxy.https_proxy).filter(|p| !p.is_empty()),
            // The store's `NO_PROXY`, which also exempts the S3 and Hub clients.
            no_proxy: settings.no_proxy_entries().to_vec(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_normalization() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("///"), "");
        assert_eq!(normalize_prefix("/a/b/"), "/a/b");
        assert_eq!(normalize_prefix("a"), "/a");
    }

    #[test]
    fn adapter_settings_come_from_the_environment() {
        let vars = [("NB_PREFIX", "nb/x/"), ("LOG_HEALTH_CHECKS", "TRUE")];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        };
        let config = HttpConfig::from_lookup(&Settings::memory(), &lookup);
        assert_eq!(config.nb_prefix, "/nb/x");
        assert!(config.log_health_checks);
        let config = HttpConfig::default();
        assert_eq!(config.nb_prefix, "");
        assert!(!config.log_health_checks);
    }
}

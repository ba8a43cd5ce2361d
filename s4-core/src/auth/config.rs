//! Authentication configuration from the environment's variables (API §4, §22),
//! read through a lookup the embedder (the `s4` daemon: its one configuration
//! snapshot) passes in.
//!
//! [`AuthConfig::from_lookup`] never fails: every variable the contract gives a
//! fallback for (`JWT_EXPIRATION_HOURS`, `SSE_TICKET_TTL_SECONDS`) falls back when
//! invalid, and every other variable is a flag where only one spelling matters.
//! Refusing to start over a typo in a lifetime would be worse than the default.
//!
//! When `JWT_SECRET` is unset, a random 64-byte secret is generated **once per
//! process** (kept in a `OnceLock`), so every `AuthConfig` built in the same process
//! agrees on it: a token minted by one service instance verifies in another, but
//! never across restarts or replicas. A warning says so at construction.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;

use crate::settings::var;

/// Default token lifetime in hours (`JWT_EXPIRATION_HOURS`).
pub const DEFAULT_JWT_EXPIRATION_HOURS: u64 = 8;
/// Default SSE ticket lifetime in seconds (`SSE_TICKET_TTL_SECONDS`).
pub const DEFAULT_SSE_TICKET_TTL_SECONDS: u64 = 60;

/// How requests are authenticated (API §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// No credentials needed; every request is the synthetic
    /// [`User::proxy_user`](super::User::proxy_user). The default.
    None,
    /// Both `UI_USERNAME` and `UI_PASSWORD` are set: a single administrator logs in
    /// and gets a JWT.
    Simple,
    /// Credentials are not both set but `DISABLE_AUTH=false`: protected routes need
    /// a JWT signed with `JWT_SECRET`, minted outside S4; login is unavailable.
    TokenOnly,
}

impl AuthMode {
    /// Name for logs: `none`, `simple` or `token-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Simple => "simple",
            AuthMode::TokenOnly => "token-only",
        }
    }

    /// The `authMode` reported by `GET /auth/info` (API §10.1): `simple` in simple
    /// mode, else `none` (token-only mode reports `none` too).
    pub fn info_name(self) -> &'static str {
        match self {
            AuthMode::Simple => "simple",
            AuthMode::None | AuthMode::TokenOnly => "none",
        }
    }

    /// Whether protected routes need credentials (simple or token-only).
    pub fn auth_enabled(self) -> bool {
        !matches!(self, AuthMode::None)
    }

    /// Whether `POST /auth/login` is available, which is also `authRequired` of
    /// `GET /auth/info`: only in simple mode.
    pub fn login_enabled(self) -> bool {
        matches!(self, AuthMode::Simple)
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Authentication settings (API §22). `Debug` redacts the password and the secret.
#[derive(Clone)]
pub struct AuthConfig {
    mode: AuthMode,
    username: Option<String>,
    password: Option<String>,
    jwt_secret: String,
    jwt_secret_generated: bool,
    jwt_expiration_hours: u64,
    cookie_require_https: bool,
    development: bool,
    sse_ticket_ttl_secs: u64,
}

impl AuthConfig {
    /// Reads the configuration through `lookup` (variable name → value); unset and
    /// empty are equivalent. Never fails: invalid lifetimes fall back to their
    /// defaults (8 h, 60 s). Logs nothing (it runs before logging is set up):
    /// [`Self::warnings`] says what deserves a warning.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| var(lookup, name);
        let is = |name: &str, value: &str| {
            get(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        let username = get("UI_USERNAME");
        let password = get("UI_PASSWORD");
        let token_only = is("DISABLE_AUTH", "false");
        let mode = match (&username, &password) {
            (Some(_), Some(_)) => AuthMode::Simple,
            _ => {
                if token_only {
                    AuthMode::TokenOnly
                } else {
                    AuthMode::None
                }
            }
        };
        let (jwt_secret, jwt_secret_generated) = match get("JWT_SECRET") {
            Some(secret) => (secret, false),
            None => (process_secret().to_owned(), true),
        };
        let positive = |name: &str, default: u64| {
            get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        AuthConfig {
            mode,
            username,
            password,
            jwt_secret,
            jwt_secret_generated,
            jwt_expiration_hours: positive("JWT_EXPIRATION_HOURS", DEFAULT_JWT_EXPIRATION_HOURS),
            cookie_require_https: !is("COOKIE_REQUIRE_HTTPS", "false"),
            development: is("NODE_ENV", "development"),
            sse_ticket_ttl_secs: positive("SSE_TICKET_TTL_SECONDS", DEFAULT_SSE_TICKET_TTL_SECONDS),
        }
    }

    /// What an operator should be warned about: exactly one of `UI_USERNAME` /
    /// `UI_PASSWORD` set, or `JWT_SECRET` unset while authentication is enabled.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.username.is_some() != self.password.is_some() {
            warnings.push(
                "only one of UI_USERNAME and UI_PASSWORD is set: both are needed to enable \
                 login; simple authentication stays disabled",
            );
        }
        if self.jwt_secret_generated && self.mode.auth_enabled() {
            warnings.push(
                "JWT_SECRET is not set: using a random per-process secret; tokens die with \
                 the process and are not shared between replicas",
            );
        }
        warnings
    }

    /// The authentication mode (API §4.1).
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Whether protected routes need credentials (simple or token-only mode).
    pub fn auth_enabled(&self) -> bool {
        self.mode.auth_enabled()
    }

    /// The configured login user name (`UI_USERNAME`), if set.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The HS256 key as text (`JWT_SECRET`, or the per-process random secret).
    /// Also usable as a cookie-signing key. Never log it.
    pub fn jwt_secret(&self) -> &str {
        &self.jwt_secret
    }

    /// Whether the JWT secret was generated because `JWT_SECRET` is unset.
    pub fn jwt_secret_generated(&self) -> bool {
        self.jwt_secret_generated
    }

    /// Token lifetime in hours (`JWT_EXPIRATION_HOURS`, default 8).
    pub fn jwt_expiration_hours(&self) -> u64 {
        self.jwt_expiration_hours
    }

    /// Token and cookie lifetime in seconds (`expiresIn`, cookie `Max-Age`).
    pub fn token_lifetime_secs(&self) -> u64 {
        self.jwt_expiration_hours.saturating_mul(3600)
    }

    /// Whether the session token may only travel over HTTPS (the adapter's cookie
    /// carries `Secure`): yes unless `NODE_ENV=development` or
    /// `COOKIE_REQUIRE_HTTPS=false`.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_require_https && !self.development
    }

    /// Whether `NODE_ENV=development` (the adapter relaxes its cookie's `SameSite`).
    pub fn development(&self) -> bool {
        self.development
    }

    /// SSE ticket lifetime (`SSE_TICKET_TTL_SECONDS`, default 60 s).
    pub fn sse_ticket_ttl(&self) -> Duration {
        Duration::from_secs(self.sse_ticket_ttl_secs)
    }
}

impl Default for AuthConfig {
    /// The configuration of an empty environment: mode `none`.
    fn default() -> Self {
        Self::from_lookup(&|_| None)
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| if set { "<redacted>" } else { "<unset>" };
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("username", &self.username)
            .field("password", &redacted(self.password.is_some()))
            .field("jwt_secret", &redacted(true))
            .field("jwt_secret_generated", &self.jwt_secret_generated)
            .field("jwt_expiration_hours", &self.jwt_expiration_hours)
            .field("cookie_require_https", &self.cookie_require_https)
            .field("development", &self.development)
            .field("sse_ticket_ttl_secs", &self.sse_ticket_ttl_secs)
            .finish()
    }
}

/// The random secret of this process: 64 bytes from the thread-local CSPRNG
/// (seeded from the OS), as standard Base64 text. Generated on first use.
fn process_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut bytes = [0u8; 64];
        rand::rng().fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::config;

    #[test]
    fn modes_matrix() {
        let cases: &[(&[(&str, &str)], AuthMode)] = &[
            (&[], AuthMode::None),
            (&[("UI_USERNAME", "admin")], AuthMode::None),
            (&[("UI_PASSWORD", "pw")], AuthMode::None),
            (
                &[("UI_USERNAME", "admin"), ("UI_PASSWORD", "")],
                AuthMode::None,
            ),
            (
                &[("UI_USERNAME", "admin"), ("UI_PASSWORD", "pw")],
                AuthMode::Simple,
            ),
            (
                &[
                    ("UI_USERNAME", "admin"),
                    ("UI_PASSWORD", "pw"),
                    ("DISABLE_AUTH", "false"),
                ],
                AuthMode::Simple,
            ),
            (
                &[
                    ("UI_USERNAME", "admin"),
                    ("UI_PASSWORD", "pw"),
                    ("DISABLE_AUTH", "true"),
                ],
                AuthMode::Simple,
            ),
            (&[("DISABLE_AUTH", "false")], AuthMode::TokenOnly),
            (&[("DISABLE_AUTH", "FALSE")], AuthMode::TokenOnly),
            (&[("DISABLE_AUTH", "true")], AuthMode::None),
            (&[("DISABLE_AUTH", "no")], AuthMode::None),
            (
                &[("UI_USERNAME", "admin"), ("DISABLE_AUTH", "false")],
                AuthMode::TokenOnly,
            ),
            (
                &[("UI_PASSWORD", "pw"), ("DISABLE_AUTH", "false")],
                AuthMode::TokenOnly,
            ),
        ];
        for (vars, mode) in cases {
            let c = config(vars);
            assert_eq!(c.mode(), *mode, "{vars:?}");
            assert_eq!(c.auth_enabled(), *mode != AuthMode::None, "{vars:?}");
        }
        assert_eq!(AuthMode::TokenOnly.info_name(), "none");
        assert_eq!(AuthMode::Simple.info_name(), "simple");
        assert!(!AuthMode::TokenOnly.login_enabled());
        assert!(AuthMode::Simple.login_enabled());
    }

    #[test]
    fn lifetimes_fall_back() {
        let c = config(&[]);
        assert_eq!(c.jwt_expiration_hours(), 8);
        assert_eq!(c.token_lifetime_secs(), 28_800);
        assert_eq!(c.sse_ticket_ttl(), Duration::from_secs(60));
        for bad in ["x", "0", "-3", "1.5", ""] {
            let c = config(&[
                ("JWT_EXPIRATION_HOURS", bad),
                ("SSE_TICKET_TTL_SECONDS", bad),
            ]);
            assert_eq!(c.jwt_expiration_hours(), 8, "{bad:?}");
            assert_eq!(c.sse_ticket_ttl(), Duration::from_secs(60), "{bad:?}");
        }
        let c = config(&[
            ("JWT_EXPIRATION_HOURS", " 2 "),
            ("SSE_TICKET_TTL_SECONDS", "5"),
        ]);
        assert_eq!(c.token_lifetime_secs(), 7200);
        assert_eq!(c.sse_ticket_ttl(), Duration::from_secs(5));
    }

    #[test]
    fn cookie_policy() {
        let c = config(&[]);
        assert!(c.cookie_secure());
        assert!(!c.development());
        let c = config(&[("COOKIE_REQUIRE_HTTPS", "false")]);
        assert!(!c.cookie_secure());
        let c = config(&[("NODE_ENV", "development")]);
        assert!(!c.cookie_secure());
        assert!(c.development());
        let c = config(&[("NODE_ENV", "production"), ("COOKIE_REQUIRE_HTTPS", "true")]);
        assert!(c.cookie_secure());
    }

    #[test]
    fn secret_generated_once_per_process() {
        let a = config(&[]);
        let b = config(&[("UI_USERNAME", "u"), ("UI_PASSWORD", "p")]);
        assert!(a.jwt_secret_generated());
        assert_eq!(a.jwt_secret(), b.jwt_secret());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.jwt_secret())
            .expect("generated secret is Base64");
        assert_eq!(raw.len(), 64);
        let c = config(&[("JWT_SECRET", "s3cret")]);
        assert!(!c.jwt_secret_generated());
        assert_eq!(c.jwt_secret(), "s3cret");
    }

    #[test]
    fn warnings() {
        assert!(config(&[]).warnings().is_empty());
        let half = config(&[("UI_USERNAME", "admin")]).warnings();
        assert_eq!(half.len(), 1);
        assert!(half[0].contains("only one of UI_USERNAME"), "{half:?}");
        let unsigned = config(&[("UI_USERNAME", "a"), ("UI_PASSWORD", "p")]).warnings();
        assert_eq!(unsigned.len(), 1);
        assert!(
            unsigned[0].contains("JWT_SECRET is not set"),
            "{unsigned:?}"
        );
        let signed = config(&[
            ("UI_USERNAME", "a"),
            ("UI_PASSWORD", "p"),
            ("JWT_SECRET", "k"),
        ]);
        assert!(signed.warnings().is_empty());
    }

    #[test]
    fn debug_redacts() {
        let c = config(&[
            ("UI_USERNAME", "admin"),
            ("UI_PASSWORD", "hunter2-password"),
            ("JWT_SECRET", "top-secret-key"),
        ]);
        let text = format!("{c:?}");
        assert!(text.contains("admin"));
        assert!(!text.contains("hunter2-password"));
        assert!(!text.contains("top-secret-key"));
    }
}

//! The session cookie's wire format (API §4.4): its name, the `Set-Cookie` value
//! issued at login and the one that clears it at logout, and reading it back from
//! a request's `Cookie` headers. s4-core decides the policy (lifetime, HTTPS only,
//! development mode); this module owns the bytes.

use http::header::COOKIE;
use http::HeaderMap;
use s4_core::auth::AuthConfig;

/// Name of the session cookie holding the JWT (API §4.4).
pub(crate) const COOKIE_NAME: &str = "s4_auth_token";

/// `Set-Cookie` value that clears the session cookie on logout (API §4.4).
pub(crate) const CLEAR_COOKIE: &str =
    "s4_auth_token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// The cookie's `SameSite` value: `Lax` when `NODE_ENV=development`, else `Strict`.
pub(crate) fn same_site(config: &AuthConfig) -> &'static str {
    if config.development() {
        "Lax"
    } else {
        "Strict"
    }
}

/// The `Set-Cookie` value carrying `token` as the session cookie (API §4.4):
/// `HttpOnly`, `Max-Age` the token lifetime, `Secure` unless the configuration
/// allows plain HTTP.
pub(crate) fn set_session_cookie(config: &AuthConfig, token: &str) -> String {
    let secure = if config.cookie_secure() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{COOKIE_NAME}={token}; HttpOnly; Path=/; Max-Age={}; SameSite={}{secure}",
        config.token_lifetime_secs(),
        same_site(config)
    )
}

/// The `s4_auth_token` cookie of a request, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> AuthConfig {
        AuthConfig::from_lookup(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        })
    }

    #[test]
    fn cookie_attributes() {
        let c = config(&[]);
        assert_eq!(same_site(&c), "Strict");
        assert_eq!(
            set_session_cookie(&c, "t"),
            "s4_auth_token=t; HttpOnly; Path=/; Max-Age=28800; SameSite=Strict; Secure"
        );
        let c = config(&[("COOKIE_REQUIRE_HTTPS", "false")]);
        assert_eq!(same_site(&c), "Strict");
        let c = config(&[("NODE_ENV", "development")]);
        assert_eq!(same_site(&c), "Lax");
        assert_eq!(
            set_session_cookie(&c, "t"),
            "s4_auth_token=t; HttpOnly; Path=/; Max-Age=28800; SameSite=Lax"
        );
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; s4_auth_token=tok; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("x_s4_auth_token=no"));
        assert_eq!(session_cookie(&h), None);
    }
}

//! Authentication: modes, credential check, HS256 JWTs and one-time SSE tickets
//! (API §4, §5.2, §10).
//!
//! Everything here is transport-free: the HTTP adapter extracts the cookie, the
//! `Authorization` header and the `ticket` query parameter, and hands them to
//! [`AuthService::authenticate`] as plain strings; it maps the returned
//! [`Error`]s (kind `Unauthenticated`, `InvalidInput`, `PermissionDenied`,
//! `Internal`) to statuses. Messages are the contract's, verbatim (see
//! [`messages`]); errors the adapter must name differently from the kind's default
//! carry a domain [`Error::code`] (`TicketWrongEndpoint`, `TicketFieldsRequired`,
//! `InvalidResourceType`, `TicketFailed`, `AuthenticationError`), which the
//! adapter's error table turns into the contract's `error` name.
//!
//! ## Layout
//!
//! * [`AuthConfig`] (`config.rs`): environment → mode, secret, lifetimes, cookie
//!   policy. Never fails.
//! * `credentials.rs`: the constant-time user name / password check (digests).
//! * `jwt.rs`: issuing and verifying HS256 tokens.
//! * [`TicketService`] (`ticket.rs`): one-time SSE tickets.
//! * [`User`] (`user.rs`): the identity and its local-location authorization.
//! * [`AuthService`] (here): the handle tying them together; cheap to clone.

mod config;
mod credentials;
mod jwt;
mod ticket;
mod user;

use std::fmt;
use std::sync::Arc;

pub use config::{
    AuthConfig, AuthMode, DEFAULT_JWT_EXPIRATION_HOURS, DEFAULT_SSE_TICKET_TTL_SECONDS,
};
pub use ticket::{IssuedTicket, TicketService, TicketType};
pub use user::{User, ADMIN_ROLE};

use crate::error::{Error, ErrorKind, Result};
use credentials::Credentials;
use jwt::JwtKeys;

/// The contract's error messages (API §4.5, §4.7, §10), verbatim.
pub mod messages {
    /// No cookie, no Bearer header, no ticket (401).
    pub const MISSING_CREDENTIALS: &str = "Missing or invalid Authorization header";
    /// Token signature or format invalid, or a disallowed algorithm (401).
    pub const INVALID_TOKEN: &str = "Invalid token";
    /// Token past its `exp` (401).
    pub const TOKEN_EXPIRED: &str = "Token has expired";
    /// Verified token lacks `id`/`username`/`roles` (or `exp`) (401).
    pub const INVALID_TOKEN_PAYLOAD: &str = "Invalid token payload";
    /// `ticket` given on a path that is not an SSE route (400, name `BadRequest`).
    pub const TICKET_WRONG_ENDPOINT: &str = "Invalid SSE endpoint for ticket authentication";
    /// Ticket unknown, expired, used, or scoped to another resource/type (401).
    pub const INVALID_TICKET: &str = "Invalid or expired ticket";
    /// Unexpected verification failure (500, name `Internal Server Error`).
    pub const AUTHENTICATION_ERROR: &str = "Authentication error";
    /// Login while the mode is not `simple` (400).
    pub const AUTH_NOT_ENABLED: &str = "Authentication is not enabled";
    /// Login body lacks a user name or password (400).
    pub const CREDENTIALS_REQUIRED: &str = "Username and password are required";
    /// Login credentials do not match (401).
    pub const INVALID_CREDENTIALS: &str = "Invalid username or password";
    /// Ticket request lacks `resource` or `resourceType` (400, name `BadRequest`).
    pub const TICKET_FIELDS_REQUIRED: &str = "Resource and resourceType are required";
    /// Ticket request with an unknown `resourceType` (400, name `BadRequest`).
    pub const INVALID_RESOURCE_TYPE: &str = "Invalid resourceType. Must be 'transfer' or 'upload'";
    /// Ticket could not be created (500, name `InternalServerError`).
    pub const TICKET_FAILED: &str = "Failed to generate ticket";
    /// Prefix of the 403 message for a denied local location; the id follows.
    pub const LOCATION_DENIED_PREFIX: &str = "Access denied to location: ";
}

/// A token issued at login (what a successful `POST /auth/login` answers; its
/// JSON shape is the HTTP adapter's). `Debug` shows only a prefix of the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The signed JWT (also the session cookie's value).
    pub token: String,
    /// The identity it names (`id` `admin`, role `admin`).
    pub user: User,
    /// Lifetime in seconds (cookie `Max-Age`).
    pub expires_in: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.token.chars().take(10).collect();
        f.debug_struct("IssuedToken")
            .field("token", &format_args!("{prefix}…"))
            .field("user", &self.user)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The credentials a request presented, extracted by the transport adapter
/// (API §4.5). Empty strings count as absent. `Debug` shows only which are present.
#[derive(Clone, Copy, Default)]
pub struct Presented<'a> {
    /// Value of the `s4_auth_token` cookie.
    pub cookie: Option<&'a str>,
    /// The token of an `Authorization: Bearer <jwt>` header (extracted by the adapter).
    pub bearer: Option<&'a str>,
    /// The `ticket` query parameter.
    pub ticket: Option<&'a str>,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("cookie", &self.cookie.is_some())
            .field("bearer", &self.bearer.is_some())
            .field("ticket", &self.ticket.is_some())
            .finish()
    }
}

/// The authentication service: configuration, credential digests, JWT keys and the
/// SSE ticket store. Cheap to clone (an `Arc` inside); every clone shares tickets.
/// `Debug` redacts secrets.
#[derive(Clone, Debug)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    credentials: Option<Credentials>,
    jwt: JwtKeys,
    tickets: TicketService,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .field("tickets", &self.tickets)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Builds the service for `config`: hashes the configured credentials and
    /// prepares the HS256 keys once.
    pub fn new(config: AuthConfig) -> Self {
        let credentials = match (config.mode(), config.username(), config.password()) {
            (AuthMode::Simple, Some(user), Some(pass)) => Some(Credentials::new(user, pass)),
            _ => None,
        };
        let jwt = JwtKeys::new(config.jwt_secret());
        let tickets = TicketService::new(config.sse_ticket_ttl());
        AuthService {
            inner: Arc::new(Inner {
                config,
                credentials,
                jwt,
                tickets,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The authentication mode.
    pub fn mode(&self) -> AuthMode {
        self.inner.config.mode()
    }

    /// The SSE ticket store.
    pub fn tickets(&self) -> &TicketService {
        &self.inner.tickets
    }

    /// Whether `username` and `password` both match the configured ones, compared in
    /// constant time (fixed-length digests; both always compared). Always `false`
    /// outside simple mode.
    pub fn check_credentials(&self, username: &str, password: &str) -> bool {
        self.inner
            .credentials
            .as_ref()
            .is_some_and(|c| c.matches(username, password))
    }

    /// The login flow after rate limiting (API §10.2 checks 1, 3 and 4): checks the
    /// mode, that both fields are non-empty, the credentials, then issues a token.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] [`messages::AUTH_NOT_ENABLED`] outside simple
    /// mode (the HTTP layer checks this *before* the rate limit too);
    /// [`ErrorKind::InvalidInput`] [`messages::CREDENTIALS_REQUIRED`];
    /// [`ErrorKind::Unauthenticated`] [`messages::INVALID_CREDENTIALS`];
    /// [`ErrorKind::Internal`] if signing fails.
    pub fn login(&self, username: &str, password: &str) -> Result<IssuedToken> {
        if !self.mode().login_enabled() {
            return Err(Error::invalid(messages::AUTH_NOT_ENABLED));
        }
        if username.is_empty() || password.is_empty() {
            return Err(Error::invalid(messages::CREDENTIALS_REQUIRED));
        }
        if !self.check_credentials(username, password) {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                messages::INVALID_CREDENTIALS,
            ));
        }
        self.issue_token(username)
    }

    /// Issues a login token for `username` with the claims of API §4.3:
    /// `{"id":"admin","username":..,"roles":["admin"],"iat":..,"exp":iat+lifetime}`.
    /// Does not check credentials or the mode.
    ///
    /// # Errors
    /// [`ErrorKind::Internal`] if signing fails.
    pub fn issue_token(&self, username: &str) -> Result<IssuedToken> {
        let user = User::admin(username);
        let expires_in = self.inner.config.token_lifetime_secs();
        let token = self.inner.jwt.issue(&user, expires_in)?;
        Ok(IssuedToken {
            token,
            user,
            expires_in,
        })
    }

    /// Verifies an HS256 token signed with `JWT_SECRET` and returns its user. Every
    /// other algorithm (including `none` and HS512 with the right key) is rejected;
    /// `exp` is required, with no leeway.
    ///
    /// # Errors
    /// [`ErrorKind::Unauthenticated`] with [`messages::INVALID_TOKEN`] (bad
    /// signature, format or algorithm), [`messages::TOKEN_EXPIRED`], or
    /// [`messages::INVALID_TOKEN_PAYLOAD`] (`id`/`username` not non-empty strings,
    /// `roles` not an array of strings, `allowedLocations` not an array of strings,
    /// `exp` missing or not a number); [`ErrorKind::Internal`]
    /// [`messages::AUTHENTICATION_ERROR`] (code `AuthenticationError`) if the
    /// crypto provider fails.
    pub fn verify_token(&self, token: &str) -> Result<User> {
        self.inner.jwt.verify(token)
    }

    /// Authenticates a request to a protected route (API §4.5).
    ///
    /// * Mode `none`: always the [`User::proxy_user`]; nothing is checked or consumed.
    /// * Otherwise the cookie, then the Bearer token: the first that verifies wins, so
    ///   a stale cookie does not hide a valid Bearer token. If some are present but
    ///   none verifies, the error of the first present one is returned.
    /// * Only when neither is present: the ticket, which is redeemed (consumed) for
    ///   `sse_scope` = the `(type, resource)` of the SSE route being opened (`None`
    ///   when the route is not an SSE route).
    ///
    /// # Errors
    /// [`ErrorKind::Unauthenticated`] with [`messages::MISSING_CREDENTIALS`] when
    /// nothing is presented, or the errors of [`verify_token`](Self::verify_token) /
    /// [`TicketService::redeem`]; [`ErrorKind::InvalidInput`] with
    /// [`messages::TICKET_WRONG_ENDPOINT`] (code `TicketWrongEndpoint`) for a ticket on a
    /// non-SSE route.
    pub fn authenticate(
        &self,
        presented: &Presented<'_>,
        sse_scope: Option<(TicketType, &str)>,
    ) -> Result<User> {
        if !self.mode().auth_enabled() {
            return Ok(User::proxy_user());
        }
        let mut first_error = None;
        for token in [present(presented.cookie), present(presented.bearer)]
            .into_iter()
            .flatten()
        {
            match self.verify_token(token) {
                Ok(user) => return Ok(user),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        match (present(presented.ticket), sse_scope) {
            (Some(ticket), Some((kind, resource))) => {
                self.inner.tickets.redeem(ticket, kind, resource)
            }
            (Some(_), None) => {
                Err(Error::invalid(messages::TICKET_WRONG_ENDPOINT)
                    .with_code("TicketWrongEndpoint"))
            }
            (None, _) => Err(Error::new(
                ErrorKind::Unauthenticated,
                messages::MISSING_CREDENTIALS,
            )),
        }
    }
}

/// `v` unless it is empty.
fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::AuthConfig;
    use std::collections::HashMap;

    /// A configuration from literal variables.
    pub(crate) fn config(vars: &[(&str, &str)]) -> AuthConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthConfig::from_lookup(&move |k| map.get(k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::config;
    use super::*;

    const SECRET: &str = "service-test-secret";

    fn simple() -> AuthService {
        AuthService::new(config(&[
            ("UI_USERNAME", "admin"),
            ("UI_PASSWORD", "correct horse"),
            ("JWT_SECRET", SECRET),
            ("JWT_EXPIRATION_HOURS", "2"),
        ]))
    }

    fn unauthenticated(result: Result<User>) -> String {
        let err = result.expect_err("must fail");
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err:?}");
        err.message().to_string()
    }

    #[test]
    fn credential_check() {
        let auth = simple();
        assert!(auth.check_credentials("admin", "correct horse"));
        assert!(
            !auth.check_credentials("admin", "correct horsf"),
            "wrong password"
        );
        assert!(
            !auth.check_credentials("root", "correct horse"),
            "wrong user"
        );
        assert!(
            !auth.check_credentials("admin", "correct"),
            "shorter password"
        );
        assert!(
            !auth.check_credentials("admin", "correct horse battery"),
            "longer password"
        );
        assert!(!auth.check_credentials("", ""));
        // Outside simple mode nothing matches, not even the half-configured values.
        let half = AuthService::new(config(&[
            ("UI_USERNAME", "admin"),
            ("DISABLE_AUTH", "false"),
        ]));
        assert!(!half.check_credentials("admin", ""));
    }

    #[test]
    fn login_flow() {
        let auth = simple();
        let issued = auth.login("admin", "correct horse").expect("login");
        assert_eq!(issued.expires_in, 7200);
        assert_eq!(issued.user, User::admin("admin"));
        assert_eq!(
            auth.verify_token(&issued.token).expect("verifies"),
            issued.user
        );
        assert!(!format!("{issued:?}").contains(&issued.token));

        let err = auth.login("admin", "nope").expect_err("wrong password");
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::Unauthenticated, messages::INVALID_CREDENTIALS)
        );
        let err = auth.login("admin", "").expect_err("empty password");
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::InvalidInput, messages::CREDENTIALS_REQUIRED)
        );
        let none = AuthService::new(config(&[]));
        let err = none.login("admin", "x").expect_err("mode none");
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::InvalidInput, messages::AUTH_NOT_ENABLED)
        );
    }

    #[test]
    fn mode_none_is_the_proxy_user() {
        let auth = AuthService::new(config(&[]));
        assert_eq!(auth.mode(), AuthMode::None);
        let user = auth
            .authenticate(&Presented::default(), None)
            .expect("no auth needed");
        assert_eq!(user, User::proxy_user());
        let garbage = Presented {
            cookie: Some("x"),
            bearer: Some("y"),
            ticket: Some("z"),
        };
        assert_eq!(
            auth.authenticate(&garbage, None).expect("ignored"),
            User::proxy_user()
        );
    }

    #[test]
    fn precedence() {
        let auth = simple();
        let good = auth.issue_token("admin").expect("issue").token;
        let missing = unauthenticated(auth.authenticate(&Presented::default(), None));
        assert_eq!(missing, messages::MISSING_CREDENTIALS);
        let empty = Presented {
            cookie: Some(""),
            bearer: Some(""),
            ticket: Some(""),
        };
        assert_eq!(
            unauthenticated(auth.authenticate(&empty, None)),
            messages::MISSING_CREDENTIALS
        );

        // A stale cookie does not hide a valid Bearer token.
        let p = Presented {
            cookie: Some("stale"),
            bearer: Some(&good),
            ticket: None,
        };
        assert!(auth.authenticate(&p, None).is_ok());
        let p = Presented {
            cookie: Some(&good),
            bearer: Some("junk"),
            ticket: None,
        };
        assert!(auth.authenticate(&p, None).is_ok());

        // None verifies: the first present candidate's error.
        let expired = {
            use jsonwebtoken::{encode, EncodingKey, Header};
            let now = jwt::unix_now();
            let claims =
                serde_json::json!({"id":"admin","username":"a","roles":["admin"],"exp":now-10});
            encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encodes")
        };
        let p = Presented {
            cookie: Some(&expired),
            bearer: Some("junk"),
            ticket: None,
        };
        assert_eq!(
            unauthenticated(auth.authenticate(&p, None)),
            messages::TOKEN_EXPIRED
        );
        let p = Presented {
            cookie: None,
            bearer: Some("junk"),
            ticket: None,
        };
        assert_eq!(
            unauthenticated(auth.authenticate(&p, None)),
            messages::INVALID_TOKEN
        );
    }

    #[tokio::test]
    async fn tickets_through_authenticate() {
        let auth = simple();
        let user = auth
            .verify_token(&auth.issue_token("admin").expect("issue").token)
            .expect("ok");
        let t = auth
            .tickets()
            .issue(&user, TicketType::Transfer, "job-1")
            .expect("ticket")
            .ticket;
        let p = Presented {
            cookie: None,
            bearer: None,
            ticket: Some(&t),
        };

        // Ticket on a non-SSE route: 400, ticket untouched.
        let err = auth.authenticate(&p, None).expect_err("not an SSE route");
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::InvalidInput, messages::TICKET_WRONG_ENDPOINT)
        );
        assert_eq!(err.code(), Some("TicketWrongEndpoint"));

        // Wrong scope: rejected, untouched.
        let wrong = auth.authenticate(&p, Some((TicketType::Upload, "job-1")));
        assert_eq!(unauthenticated(wrong), messages::INVALID_TICKET);

        // A cookie or Bearer token, even invalid, means the ticket is not consulted.
        let with_cookie = Presented {
            cookie: Some("junk"),
            ..p
        };
        let err = auth.authenticate(&with_cookie, Some((TicketType::Transfer, "job-1")));
        assert_eq!(unauthenticated(err), messages::INVALID_TOKEN);

        assert_eq!(
            auth.authenticate(&p, Some((TicketType::Transfer, "job-1")))
                .expect("valid"),
            user
        );
        let again = auth.authenticate(&p, Some((TicketType::Transfer, "job-1")));
        assert_eq!(unauthenticated(again), messages::INVALID_TICKET);
    }

    #[test]
    fn token_only_mode_verifies_external_tokens() {
        let auth = AuthService::new(config(&[("DISABLE_AUTH", "false"), ("JWT_SECRET", SECRET)]));
        assert_eq!(auth.mode(), AuthMode::TokenOnly);
        assert!(auth.login("admin", "x").is_err());
        let token = simple().issue_token("ext").expect("same secret").token;
        let p = Presented {
            bearer: Some(&token),
            ..Presented::default()
        };
        assert_eq!(auth.authenticate(&p, None).expect("valid").username, "ext");
    }

    #[test]
    fn debug_redacts_secrets() {
        let auth = simple();
        let text = format!("{auth:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("correct horse"), "{text}");
    }
}

//! Auth routes (§10): info, login, logout, me, SSE tickets.

use http::header::{HeaderValue, SET_COOKIE};
use http::Request;
use hyper::body::Incoming;
use s4_core::auth::{messages, IssuedToken, TicketType, User};
use s4_core::ratelimit::RateLimit;
use serde::Serialize;
use serde_json::{json, Value};

use super::HandlerResult;
use crate::access;
use crate::app::{App, Ctx};
use crate::body;
use crate::cookie::{self, CLEAR_COOKIE};
use crate::error::ApiError;

/// The JSON shape of a user (API §10.4): `{"id","username","roles"}`, plus
/// `allowedLocations` when the user has a list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserWire<'a> {
    id: &'a str,
    username: &'a str,
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_locations: Option<&'a [String]>,
}

impl<'a> From<&'a User> for UserWire<'a> {
    fn from(user: &'a User) -> Self {
        UserWire {
            id: &user.id,
            username: &user.username,
            roles: &user.roles,
            allowed_locations: user.allowed_locations.as_deref(),
        }
    }
}

/// The body of a successful login (API §10.2): `{"token","user","expiresIn"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginWire<'a> {
    token: &'a str,
    user: UserWire<'a>,
    expires_in: u64,
}

impl<'a> From<&'a IssuedToken> for LoginWire<'a> {
    fn from(issued: &'a IssuedToken) -> Self {
        LoginWire {
            token: &issued.token,
            user: UserWire::from(&issued.user),
            expires_in: issued.expires_in,
        }
    }
}

fn audit(event: &str, username: &str, ctx: &Ctx, ok: bool) {
    tracing::info!(target: "audit", event, user = username, ip = %ctx.peer.ip(), status = if ok { "success" } else { "failure" }, "auth");
}

/// `GET /api/auth/info`.
pub(crate) fn info(app: &App) -> HandlerResult {
    let mode = app.auth().mode();
    Ok(body::ok(&json!({
        "authMode": mode.info_name(),
        "authRequired": mode.login_enabled(),
    })))
}

/// `POST /api/auth/login`.
pub(crate) async fn login(app: &App, request: Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    if !app.auth().mode().login_enabled() {
        return Err(ApiError::bad_request(messages::AUTH_NOT_ENABLED));
    }
    app.limiter()
        .check(&RateLimit::LOGIN.key(ctx.peer.ip()), &RateLimit::LOGIN)?;
    let value = body::read_json_value(request).await.unwrap_or(Value::Null);
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return Err(ApiError::bad_request(messages::CREDENTIALS_REQUIRED));
    };
    let result = app.auth().login(&username, &password);
    audit("login", &username, ctx, result.is_ok());
    let issued = result?;
    let mut response = body::ok(&LoginWire::from(&issued));
    let cookie = cookie::set_session_cookie(app.auth().config(), &issued.token);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/auth/logout`: always succeeds and clears the cookie.
pub(crate) fn logout(app: &App, request: &Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    if app.auth().mode().auth_enabled() {
        let token = access::session_cookie(request.headers());
        if let Some(user) = token.and_then(|t| app.auth().verify_token(t).ok()) {
            audit("logout", &user.username, ctx, true);
        }
    }
    let mut response = body::ok(&json!({ "message": "Logged out successfully" }));
    response
        .headers_mut()
        .insert(SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    Ok(response)
}

/// `GET /api/auth/me`.
pub(crate) fn me(ctx: &Ctx) -> HandlerResult {
    Ok(body::ok(&json!({ "user": UserWire::from(ctx.caller()?) })))
}

/// `POST /api/auth/sse-ticket`.
pub(crate) async fn sse_ticket(app: &App, request: Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    app.limiter().check(
        &RateLimit::SSE_TICKET.key(ctx.peer.ip()),
        &RateLimit::SSE_TICKET,
    )?;
    let value = body::read_json_value(request).await?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(resource), Some(kind)) = (field("resource"), field("resourceType")) else {
        return Err(ApiError::bad_request(messages::TICKET_FIELDS_REQUIRED).with_name("BadRequest"));
    };
    let kind = TicketType::parse(kind)?;
    let issued = app.auth().tickets().issue(ctx.caller()?, kind, resource)?;
    let encoded: String =
        percent_encoding::utf8_percent_encode(resource, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            // Unreserved characters stay literal (a no-op for job ids and URL-safe Base64).
            .replace("%2D", "-")
            .replace("%5F", "_")
            .replace("%2E", ".")
            .replace("%7E", "~");
    let path = match kind {
        TicketType::Transfer => format!("/transfer/progress/{encoded}"),
        TicketType::Upload => format!("/objects/upload-progress/{encoded}"),
    };
    tracing::info!(target: "audit", event = "sse-ticket", user = %ctx.caller()?.username, ticket = %&issued.ticket[..8.min(issued.ticket.len())], "ticket issued");
    Ok(body::ok(&json!({
        "ticket": issued.ticket,
        "sseUrl": format!("{path}?ticket={}", issued.ticket),
        "expiresAt": issued.expires_at_ms,
        "expiresIn": issued.expires_in,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_wire_shape() {
        assert_eq!(
            serde_json::to_value(UserWire::from(&User::proxy_user())).ok(),
            Some(json!({"id": "proxy-user", "username": "proxy-user", "roles": ["admin"]}))
        );
        let user = User {
            id: "u".into(),
            username: "bob".into(),
            roles: vec!["viewer".into()],
            allowed_locations: Some(vec!["local-0".into()]),
        };
        assert_eq!(
            serde_json::to_value(UserWire::from(&user)).ok(),
            Some(json!({
                "id": "u",
                "username": "bob",
                "roles": ["viewer"],
                "allowedLocations": ["local-0"],
            }))
        );
    }

    #[test]
    fn login_wire_shape() {
        let issued = IssuedToken {
            token: "t.o.k".into(),
            user: User::admin("alice"),
            expires_in: 7200,
        };
        assert_eq!(
            serde_json::to_value(LoginWire::from(&issued)).ok(),
            Some(json!({
                "token": "t.o.k",
                "user": {"id": "admin", "username": "alice", "roles": ["admin"]},
                "expiresIn": 7200,
            }))
        );
    }
}

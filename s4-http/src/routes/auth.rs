//! Auth routes (§10): info, login, logout, me, SSE tickets.

use http::header::{HeaderValue, SET_COOKIE};
use http::Request;
use hyper::body::Incoming;
use s4_core::auth::{messages, TicketType};
use s4_core::ratelimit::RateLimit;
use serde_json::{json, Value};

use super::HandlerResult;
use crate::access;
use crate::app::{App, Ctx};
use crate::body;
use crate::cookie::{self, CLEAR_COOKIE};
use crate::error::ApiError;

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
    let mut response = body::ok(&issued);
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
    Ok(body::ok(&json!({ "user": ctx.caller()? })))
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

//! Service routes: health probe and notebook-platform activity report.

use serde_json::json;

use super::{iso, HandlerResult};
use crate::app::App;
use crate::body;

/// Activity younger than this is reported as `busy`.
const BUSY_WINDOW_MS: i64 = 10 * 60 * 1000;

/// `GET /api`: liveness/readiness.
pub(crate) fn health() -> HandlerResult {
    Ok(body::ok(&json!({ "status": "ok" })))
}

/// `GET /api/kernels`, `/api/terminals`: activity report for idle culling.
pub(crate) fn kernels(app: &App) -> HandlerResult {
    let now = chrono::Utc::now();
    let (last, state) = match app
        .last_activity_ms()
        .and_then(chrono::DateTime::from_timestamp_millis)
    {
        Some(t) if (now - t).num_milliseconds() <= BUSY_WINDOW_MS => (t, "busy"),
        Some(t) => (t, "idle"),
        None => (now, "alive"),
    };
    Ok(body::ok(&json!([{
        "id": "s4",
        "name": "s4",
        "last_activity": iso(&last),
        "execution_state": state,
        "connections": 1
    }])))
}

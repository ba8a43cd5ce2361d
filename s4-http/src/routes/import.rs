//! `POST /api/objects/huggingface-import` (API §13): parses the body, authorizes a
//! local destination, and starts the import as a transfer job
//! (`s4_core::hf::start_import`); progress, cancel and cleanup are the transfer
//! routes'.

use http::Request;
use hyper::body::Incoming;
use s4_core::hf::{start_import, ImportRequest};
use serde_json::{json, Value};

use super::HandlerResult;
use crate::app::{App, Ctx};
use crate::body;
use crate::error::ApiError;

fn audit(resource: &str, ok: bool) {
    tracing::info!(target: "audit", action = "huggingface-import", resource, status = if ok { "success" } else { "failure" }, "import");
}

/// The local location named by a `local` body, for the §4.7 check.
fn local_location(value: &Value) -> Option<&str> {
    (value.get("destinationType").and_then(Value::as_str) == Some("local"))
        .then(|| value.get("localLocationId").and_then(Value::as_str))
        .flatten()
        .filter(|id| !id.is_empty())
}

/// `POST /api/objects/huggingface-import`.
pub(crate) async fn huggingface_import(
    app: &App,
    request: Request<Incoming>,
    ctx: &Ctx,
) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    let parsed = ImportRequest::parse(&value);
    // §4.7 comes before the localPath check of §7.3 (the parse checks it too).
    let path_error =
        matches!(&parsed, Err(e) if e.message().starts_with("Invalid local storage path"));
    if parsed.is_ok() || path_error {
        if let Some(id) = local_location(&value) {
            ctx.caller()?.check_location(id).map_err(ApiError::from)?;
        }
    }
    let parsed = parsed.map_err(ApiError::from)?;
    let hub = app
        .settings()
        .hub(parsed.hf_token.as_deref())
        .map_err(ApiError::from)?;
    let created = start_import(app.s4(), hub, &parsed).await;
    audit(&parsed.model_id, created.is_ok());
    let created = created.map_err(ApiError::from)?;
    Ok(body::ok(&json!({
        "message": "Model import started",
        "jobId": created.id.as_str(),
        "sseUrl": format!("/transfer/progress/{}", created.id),
    })))
}

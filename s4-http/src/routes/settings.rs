//! Settings routes (API §16): S3, HuggingFace, proxies, concurrency, page size,
//! disclaimer. Parsing and rendering only; the store lives in
//! `s4_core::config_store`. Secrets are rendered from the redacted views only.

use http::Request;
use hyper::body::Incoming;
use s4_core::config_store::S3Settings;
use s4_core::outbound::ProxySettings;
use s4_core::Error;
use serde_json::{json, Map, Value};

use super::HandlerResult;
use crate::app::{App, Ctx};
use crate::body;
use crate::error::ApiError;
use crate::router::RouteId;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::from(Error::invalid(message.into()).with_code("ValidationError"))
}

fn object(value: &Value) -> Result<&Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| validation("body must be a JSON object"))
}

/// A required string field (may be empty unless `non_empty`).
fn string_field(
    body: &Map<String, Value>,
    name: &str,
    non_empty: bool,
) -> Result<String, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(validation(format!("{name} is required"))),
        Some(Value::String(s)) if non_empty && s.trim().is_empty() => {
            Err(validation(format!("{name} must not be empty")))
        }
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(_) => Err(validation(format!("{name} must be a string"))),
    }
}

fn updated() -> HandlerResult {
    Ok(body::ok(
        &json!({ "message": "Settings updated successfully" }),
    ))
}

fn audit(ctx: &Ctx, resource: &str, ok: bool) {
    tracing::info!(
        target: "audit",
        user = %ctx.user.as_ref().map_or("-", |u| u.username.as_str()),
        action = %ctx.route.method,
        resource = resource,
        status = if ok { "success" } else { "failure" },
        client_ip = %ctx.peer.ip(),
        "settings update"
    );
}

/// Runs an update and writes its audit line (never with values).
async fn audited<F>(ctx: &Ctx, resource: &str, update: F) -> HandlerResult
where
    F: std::future::Future<Output = Result<(), ApiError>>,
{
    let result = update.await;
    audit(ctx, resource, result.is_ok());
    result?;
    updated()
}

/// Dispatches every settings route.
pub(crate) async fn dispatch(app: &App, request: Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    let store = app.settings();
    match ctx.route.id {
        RouteId::GetS3Settings => Ok(body::ok(&json!({ "settings": store.s3().redacted() }))),
        RouteId::PutS3Settings => {
            let value = body::read_json_value(request).await?;
            audited(ctx, "settings:s3", async {
                let update = S3Settings::parse(&value, true)?;
                store.update_s3(app.s4(), update).await?;
                Ok(())
            })
            .await
        }
        RouteId::TestS3 => {
            let value = body::read_json_value(request).await?;
            let creds = S3Settings::parse(&value, false)?;
            match store.test_s3(creds).await {
                Ok(()) => Ok(body::ok(&json!({ "message": "Connection successful" }))),
                // §16.2: a refusal of the engine passes through; a network failure
                // (no answer at all) is 500 `Error` with its reason.
                Err(e)
                    if matches!(
                        e.kind(),
                        s4_core::ErrorKind::Timeout
                            | s4_core::ErrorKind::Unavailable
                            | s4_core::ErrorKind::ConnectionLost
                    ) || (e.kind() == s4_core::ErrorKind::Backend
                        && e.backend_status().is_none()) =>
                {
                    Err(ApiError::new(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "Error",
                        e.message().to_string(),
                    ))
                }
                Err(e) => Err(e.into()),
            }
        }
        RouteId::GetHfSettings => Ok(body::ok(&json!({
            "settings": { "hfToken": store.settings().redacted().hf_token }
        }))),
        RouteId::PutHfSettings => {
            let value = body::read_json_value(request).await?;
            audited(ctx, "settings:huggingface", async {
                let token = string_field(object(&value)?, "hfToken", false)?;
                store.update_hf_token(token).await?;
                Ok(())
            })
            .await
        }
        RouteId::TestHf => {
            let value = body::read_json_value(request).await?;
            let token = string_field(object(&value)?, "hfToken", true)?;
            let name = store.test_hf(&token).await?;
            Ok(body::ok(&json!({
                "message": "Connection successful",
                "accessTokenDisplayName": name,
            })))
        }
        RouteId::GetProxySettings => Ok(body::ok(&json!({ "settings": store.proxy().redacted() }))),
        RouteId::PutProxySettings => {
            let value = body::read_json_value(request).await?;
            audited(ctx, "settings:proxy", async {
                let body = object(&value)?;
                let proxy = ProxySettings {
                    http_proxy: string_field(body, "httpProxy", false)?,
                    https_proxy: string_field(body, "httpsProxy", false)?,
                };
                store.update_proxy(app.s4(), proxy).await?;
                app.apply_runtime_settings();
                Ok(())
            })
            .await
        }
        RouteId::TestProxy => {
            let value = body::read_json_value(request).await?;
            let body = object(&value)?;
            let optional = |name: &str| match body.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(_) => string_field(body, name, false),
            };
            let proxy = ProxySettings {
                http_proxy: optional("httpProxy")?,
                https_proxy: optional("httpsProxy")?,
            };
            let url = string_field(body, "testUrl", true)?;
            store.test_proxy(proxy, &url).await?;
            Ok(body::ok(&json!({ "message": "Connection successful" })))
        }
        RouteId::GetMaxConcurrent => Ok(body::ok(&json!({
            "maxConcurrentTransfers": store.max_concurrent_transfers()
        }))),
        RouteId::PutMaxConcurrent => {
            let value = body::read_json_value(request).await?;
            audited(ctx, "settings:max-concurrent-transfers", async {
                let n = object(&value)?
                    .get("maxConcurrentTransfers")
                    .and_then(Value::as_u64)
                    .filter(|n| *n >= 1)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| validation("maxConcurrentTransfers must be an integer >= 1"))?;
                store.update_max_concurrent_transfers(n).await?;
                app.apply_runtime_settings();
                Ok(())
            })
            .await
        }
        RouteId::GetMaxFilesPerPage => Ok(body::ok(&json!({
            "maxFilesPerPage": store.max_files_per_page()
        }))),
        RouteId::PutMaxFilesPerPage => {
            let value = body::read_json_value(request).await?;
            audited(ctx, "settings:max-files-per-page", async {
                let n = object(&value)?
                    .get("maxFilesPerPage")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| s4_core::config_store::PAGE_SIZES.contains(n))
                    .ok_or_else(|| {
                        validation(format!(
                            "maxFilesPerPage must be one of {:?}",
                            s4_core::config_store::PAGE_SIZES
                        ))
                    })?;
                store.update_max_files_per_page(n).await?;
                Ok(())
            })
            .await
        }
        RouteId::GetDisclaimer => Ok(body::ok(&json!({
            "disclaimer": { "status": store.disclaimer().await }
        }))),
        RouteId::PutDisclaimer => {
            let value = body::read_json_value(request).await?;
            let result = async {
                let status = string_field(object(&value)?, "status", true)?;
                store.set_disclaimer(&status).await?;
                Ok::<_, ApiError>(())
            }
            .await;
            audit(ctx, "settings:disclaimer", result.is_ok());
            result?;
            Ok(body::ok(&json!({ "message": "Disclaimer status updated" })))
        }
        _ => Err(ApiError::not_found()),
    }
}

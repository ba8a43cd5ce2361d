//! Transfer routes (§15): create, check-conflicts, progress (SSE), cancel, cleanup,
//! job details. The work is `s4_core::transfer`; this module parses and validates
//! bodies, authorizes local locations, and shapes the JSON of the contract.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use s4_core::ratelimit::RateLimit;
use s4_core::transfer::{
    ConflictMode, Endpoint, FileState, Item, ItemKind, Job, JobId, TransferRequest,
    EXPANSION_FAILED, PATH_TRAVERSAL,
};
use s4_core::{BucketName, Error, ErrorKind};
use serde_json::{json, Map, Value};

use super::{iso, sse, HandlerResult};
use crate::app::{App, Ctx};
use crate::body;
use crate::error::ApiError;
use crate::router::{JobParams, ResourceParams};

fn audit(action: &str, resource: &str, ok: bool) {
    tracing::info!(target: "audit", action, resource, status = if ok { "success" } else { "failure" }, "transfer");
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn one_of(value: Option<&Value>, field: &str, allowed: &[&str]) -> Result<String, ApiError> {
    match value {
        None => Err(invalid(format!(
            "{} must have required property '{}'",
            parent_of(field),
            leaf_of(field)
        ))),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(Value::String(_)) => Err(invalid(format!(
            "{field} must be equal to one of the allowed values"
        ))),
        Some(_) => Err(invalid(format!("{field} must be string"))),
    }
}

fn parent_of(field: &str) -> &str {
    field.rsplit_once('/').map_or("body", |(p, _)| p)
}

fn leaf_of(field: &str) -> &str {
    field.rsplit_once('/').map_or(field, |(_, l)| l)
}

fn object<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    match value {
        None => Err(invalid(format!(
            "{} must have required property '{}'",
            parent_of(field),
            leaf_of(field)
        ))),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(invalid(format!("{field} must be object"))),
    }
}

/// A location descriptor (§15.1).
fn endpoint(value: Option<&Value>, field: &str) -> Result<Endpoint, ApiError> {
    let map = object(value, field)?;
    let kind = one_of(map.get("type"), &format!("{field}/type"), &["s3", "local"])?;
    let id = match map.get("locationId") {
        None => {
            return Err(invalid(format!(
                "{field} must have required property 'locationId'"
            )))
        }
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(format!(
                "{field}/locationId must NOT have fewer than 1 characters"
            )))
        }
        Some(_) => return Err(invalid(format!("{field}/locationId must be string"))),
    };
    let path = match map.get("path") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid(format!("{field}/path must be string"))),
    };
    if kind == "s3" {
        BucketName::try_from(id.as_str()).map_err(|e| {
            invalid(format!(
                "{field}/locationId is not a valid bucket name: {}",
                e.message()
            ))
        })?;
        Endpoint::bucket(&id, &path).map_err(ApiError::from)
    } else {
        Ok(Endpoint::local(&id, &path))
    }
}

fn items(value: Option<&Value>) -> Result<Vec<Item>, ApiError> {
    let list = match value {
        None => return Err(invalid("body must have required property 'items'")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("body/items must be array")),
    };
    if list.is_empty() {
        return Err(invalid("body/items must NOT have fewer than 1 items"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let field = format!("body/items/{i}");
        let map = object(Some(item), &field)?;
        let kind = one_of(
            map.get("type"),
            &format!("{field}/type"),
            &["file", "directory"],
        )?;
        let path = match map.get("path") {
            None => {
                return Err(invalid(format!(
                    "{field} must have required property 'path'"
                )))
            }
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => {
                return Err(invalid(format!(
                    "{field}/path must NOT have fewer than 1 characters"
                )))
            }
            Some(_) => return Err(invalid(format!("{field}/path must be string"))),
        };
        out.push(Item {
            path,
            kind: if kind == "file" {
                ItemKind::File
            } else {
                ItemKind::Directory
            },
        });
    }
    Ok(out)
}

/// Parses and validates a request body (§15.2 / §15.7 schema).
fn parse(value: &Value, with_conflict: bool) -> Result<TransferRequest, ApiError> {
    let Value::Object(body) = value else {
        return Err(invalid("body must be object"));
    };
    let source = endpoint(body.get("source"), "body/source")?;
    let destination = endpoint(body.get("destination"), "body/destination")?;
    let items = items(body.get("items"))?;
    let conflict = if with_conflict {
        let text = one_of(
            body.get("conflictResolution"),
            "body/conflictResolution",
            &["overwrite", "skip", "rename"],
        )?;
        ConflictMode::parse(&text).unwrap_or(ConflictMode::Skip)
    } else {
        ConflictMode::Skip
    };
    Ok(TransferRequest {
        source,
        destination,
        items,
        conflict,
    })
}

/// Location authorization of each local side (§4.7).
fn authorize(ctx: &Ctx, request: &TransferRequest) -> Result<(), ApiError> {
    for side in [&request.source, &request.destination] {
        if side.type_name() == "local" {
            ctx.caller()?
                .check_location(side.location_id())
                .map_err(ApiError::from)?;
        }
    }
    Ok(())
}

/// Core errors of create / check-conflicts.
fn transfer_error(e: Error, internal_name: Option<&str>) -> ApiError {
    if e.code() == Some(EXPANSION_FAILED) {
        let message = e.message().to_string();
        let name = internal_name.map_or_else(|| message.clone(), str::to_string);
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, name, message);
    }
    if e.code() == Some(PATH_TRAVERSAL) {
        return ApiError::bad_request(e.message().to_string());
    }
    let forbidden = e.code() == Some(s4_core::location::FORBIDDEN);
    let kind = e.kind();
    let api = ApiError::from(e);
    match kind {
        ErrorKind::PermissionDenied if !forbidden => api.with_name("Permission Denied"),
        ErrorKind::InvalidInput => api.with_name("Bad Request"),
        _ => api,
    }
}

/// `POST /api/transfer`.
pub(crate) async fn create(app: &App, request: Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    let parsed = parse(&value, true)?;
    authorize(ctx, &parsed)?;
    let limit = &RateLimit::TRANSFER;
    app.limiter().check(&limit.key(ctx.peer.ip()), limit)?;
    let resource = format!(
        "{} -> {}",
        parsed.source.display(&parsed.source.path),
        parsed.destination.display(&parsed.destination.path)
    );
    let created = app.s4().transfers().create(parsed).await;
    audit("create", &resource, created.is_ok());
    let created = created.map_err(|e| transfer_error(e, None))?;
    Ok(body::ok(&json!({
        "jobId": created.id.as_str(),
        "sseUrl": format!("/transfer/progress/{}", created.id),
        "fileCount": created.file_count,
        "totalSize": created.total_size,
    })))
}

/// `POST /api/transfer/check-conflicts`.
pub(crate) async fn check_conflicts(
    app: &App,
    request: Request<Incoming>,
    ctx: &Ctx,
) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    let parsed = parse(&value, false)?;
    authorize(ctx, &parsed)?;
    let report = app.s4().transfers().check_conflicts(&parsed).await;
    audit(
        "check-conflicts",
        &parsed.destination.display(&parsed.destination.path),
        report.is_ok(),
    );
    let report = report.map_err(|e| transfer_error(e, Some("Internal Server Error")))?;
    let mut out = json!({
        "conflicts": report.conflicts,
        "nonConflicting": report.non_conflicting,
    });
    if let Some(w) = report.warning {
        out["warning"] = json!({
            "type": "large_folder",
            "fileCount": w.file_count,
            "totalSize": w.total_size,
            "message": w.message,
        });
    }
    Ok(body::ok(&out))
}

fn file_event(file: &FileState) -> Value {
    let mut out = json!({
        "file": file.destination,
        "loaded": file.loaded,
        "total": file.size,
        "status": file.status.as_str(),
    });
    if let Some(error) = &file.error {
        out["error"] = json!(error);
    }
    if file.skipped {
        out["skipped"] = json!(true);
    }
    out
}

/// The job event JSON of §15.4.
pub(crate) fn job_event(job: &Job) -> Value {
    let p = job.progress();
    let kind = match job.status {
        s4_core::transfer::JobStatus::Completed => "complete",
        s4_core::transfer::JobStatus::Failed => "error",
        s4_core::transfer::JobStatus::Cancelled => "cancelled",
        _ => "progress",
    };
    let errors: Vec<Value> = job
        .files
        .iter()
        .filter(|f| f.status == s4_core::transfer::FileStatus::Error)
        .map(|f| json!({ "file": f.destination, "error": f.error.clone().unwrap_or_default() }))
        .collect();
    let current = job.current_file().map(|f| {
        json!({
            "path": f.destination_path,
            "loaded": f.loaded,
            "total": f.size,
            "status": f.status.as_str(),
        })
    });
    json!({
        "type": kind,
        "jobId": job.id.as_str(),
        "status": job.status.as_str(),
        "progress": progress_json(job),
        "files": job.files.iter().map(file_event).collect::<Vec<_>>(),
        "job": {
            "id": job.id.as_str(),
            "status": job.status.alt_str(),
            "filesCompleted": p.completed_files,
            "totalFiles": p.total_files,
            "failedFiles": p.failed_files,
            "bytesTransferred": p.loaded_bytes,
            "totalBytes": p.total_bytes,
            "errors": errors,
        },
        "currentFile": current,
    })
}

fn progress_json(job: &Job) -> Value {
    let p = job.progress();
    json!({
        "totalFiles": p.total_files,
        "completedFiles": p.completed_files,
        "failedFiles": p.failed_files,
        "totalBytes": p.total_bytes,
        "loadedBytes": p.loaded_bytes,
        "percentage": p.percentage,
    })
}

/// `GET /api/transfer/progress/:jobId` (SSE; cookie, Bearer or ticket).
pub(crate) fn progress(app: &App, p: &ResourceParams) -> HandlerResult {
    let id = JobId::from(p.resource.as_str());
    audit("progress", id.as_str(), true);
    let Some(events) = app.s4().transfers().subscribe(&id) else {
        let once = json!({ "type": "error", "error": "Job not found" }).to_string();
        return Ok(sse::response(futures::stream::iter([once])));
    };
    use futures::StreamExt;
    Ok(sse::response(events.map(|job| job_event(&job).to_string())))
}

fn job_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Job not found", "Job not found")
}

/// `GET /api/transfer/:jobId`.
pub(crate) fn details(app: &App, p: &JobParams) -> HandlerResult {
    let id = JobId::from(p.job.as_str());
    let job = app.s4().transfers().get(&id);
    audit("get", id.as_str(), job.is_some());
    let job = job.ok_or_else(job_not_found)?;
    let files: Vec<Value> = job
        .files
        .iter()
        .map(|f| {
            let mut out = json!({
                "sourcePath": f.source,
                "destinationPath": f.destination,
                "size": f.size,
                "loaded": f.loaded,
                "status": f.status.as_str(),
            });
            if let Some(error) = &f.error {
                out["error"] = json!(error);
            }
            if f.skipped {
                out["skipped"] = json!(true);
            }
            out
        })
        .collect();
    let mut out = json!({
        "jobId": job.id.as_str(),
        "type": job.job_type.as_str(),
        "status": job.status.as_str(),
        "progress": progress_json(&job),
        "files": files,
        "createdAt": iso(&job.created_at),
    });
    if let Some(at) = &job.started_at {
        out["startedAt"] = json!(iso(at));
    }
    if let Some(at) = &job.completed_at {
        out["completedAt"] = json!(iso(at));
    }
    if let Some(error) = &job.error {
        out["error"] = json!(error);
    }
    Ok(body::ok(&out))
}

/// `POST /api/transfer/cancel/:jobId` and `DELETE /api/transfer/:jobId`.
pub(crate) fn cancel(app: &App, p: &JobParams) -> HandlerResult {
    let id = JobId::from(p.job.as_str());
    let cancelled = app.s4().transfers().cancel(&id);
    audit("cancel", id.as_str(), cancelled);
    Ok(body::ok(&json!({ "cancelled": cancelled })))
}

/// `POST /api/transfer/cleanup/:jobId` and `POST /api/transfer/:jobId/cleanup`.
pub(crate) async fn cleanup(app: &App, p: &JobParams) -> HandlerResult {
    let id = JobId::from(p.job.as_str());
    let result = app.s4().transfers().cleanup(&id).await;
    audit("cleanup", id.as_str(), result.is_ok());
    let report = result.map_err(|e| match e.kind() {
        ErrorKind::NotFound => job_not_found(),
        _ => ApiError::bad_request(e.message().to_string()).with_name("InvalidStatus"),
    })?;
    if report.errors.is_empty() {
        Ok(body::ok(&json!({
            "message": "All files cleaned up successfully",
            "filesDeleted": report.deleted,
        })))
    } else {
        Ok(body::json(
            StatusCode::MULTI_STATUS,
            &json!({
                "message": "Cleanup completed with errors",
                "errors": report.errors,
                "filesDeleted": report.deleted,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages() {
        let ok = json!({
            "source": {"type": "s3", "locationId": "bucket-a", "path": "x"},
            "destination": {"type": "local", "locationId": "local-0", "path": "/backup/"},
            "items": [{"path": "a.txt", "type": "file"}],
            "conflictResolution": "skip"
        });
        let parsed = parse(&ok, true).expect("valid");
        assert_eq!(parsed.destination.path, "backup");
        let cases: &[(&str, Value, &str)] = &[
            (
                "source",
                Value::Null,
                "body must have required property 'source'",
            ),
            (
                "items",
                json!([]),
                "body/items must NOT have fewer than 1 items",
            ),
            (
                "conflictResolution",
                json!("merge"),
                "body/conflictResolution must be equal to one of the allowed values",
            ),
            (
                "source",
                json!({"type": "ftp", "locationId": "x"}),
                "body/source/type must be equal to one of the allowed values",
            ),
        ];
        for (field, value, message) in cases {
            let mut body = ok.clone();
            if value.is_null() {
                body.as_object_mut().map(|m| m.remove(*field));
            } else {
                body[*field] = value.clone();
            }
            let err = parse(&body, true).expect_err("invalid");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.message, *message);
        }
    }
}

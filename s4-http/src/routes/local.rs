//! Local storage routes (§17): locations, list, upload, download, delete, view,
//! create-directory, and the admin diagnostics route (§18).

use http::{Request, StatusCode};
use hyper::body::Incoming;
use s4_core::codec::decode_b64_text;
use s4_core::location::EntryKind;
use s4_core::preview::{build_preview, needs_bytes, preview_kind, Preview, PREVIEW_LIMIT};
use s4_core::ratelimit::RateLimit;
use s4_core::{Error, ErrorKind};
use serde_json::{json, Value};

use super::local_wire;
use super::objects::{field_stream, first_file_field, preview_json};
use super::HandlerResult;
use crate::app::{App, Ctx};
use crate::body;
use crate::download::{self, FileMeta};
use crate::error::ApiError;
use crate::router::LocationParams;

/// Maps a local-storage error to the names of the §7.3 table.
fn local_error(e: Error) -> ApiError {
    let kind = e.kind();
    let forbidden = e.code() == Some(s4_core::location::FORBIDDEN);
    let api = ApiError::from(e);
    match kind {
        ErrorKind::PermissionDenied if !forbidden => api.with_name("Permission Denied"),
        ErrorKind::Internal | ErrorKind::Backend => api.with_name("Internal Server Error"),
        _ => api,
    }
}

fn audit(method: &str, location: &str, path: &str, ok: bool) {
    tracing::info!(target: "audit", action = method, resource = %format!("local:{location}/{path}"), status = if ok { "success" } else { "failure" }, "local");
}

/// The location id and decoded relative path of a request, after the caller's
/// location authorization (§4.7).
fn target(ctx: &Ctx, p: &LocationParams) -> Result<(String, String), ApiError> {
    let id = p.location.clone();
    ctx.caller()?.check_location(&id).map_err(ApiError::from)?;
    let raw = p.path.as_deref().unwrap_or_default();
    let path =
        decode_b64_text(raw).map_err(|_| ApiError::bad_request("Path is not valid base64."))?;
    Ok((id, path))
}

/// `GET /api/local/locations`.
pub(crate) async fn locations(app: &App, ctx: &Ctx) -> HandlerResult {
    let caller = ctx.caller()?;
    let all = app.s4().locations().list_locations().await;
    let visible: Vec<_> = all
        .into_iter()
        .filter(|l| caller.can_access_location(&l.id))
        .collect();
    Ok(body::ok(
        &json!({ "locations": local_wire::locations(&visible) }),
    ))
}

fn parse_offset_limit(ctx: &Ctx) -> Result<(Option<usize>, usize), ApiError> {
    let limit = match ctx.query("limit") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::bad_request("limit must be a positive integer"))?,
        ),
    };
    let offset = match ctx.query("offset") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("offset must be a non-negative integer"))?,
    };
    Ok((limit, offset))
}

/// `GET /api/local/files/:locationId/*`.
pub(crate) async fn list(app: &App, ctx: &Ctx, p: &LocationParams) -> HandlerResult {
    let (limit, offset) = parse_offset_limit(ctx)?;
    let (id, path) = target(ctx, p)?;
    let listing = app
        .s4()
        .locations()
        .list_dir(&id, &path, limit, offset)
        .await
        .map_err(local_error)?;
    Ok(body::ok(&local_wire::listing(&listing)))
}

/// `POST /api/local/upload/:locationId/*` (and the `/local/files/...` alias).
pub(crate) async fn upload(
    app: &App,
    request: Request<Incoming>,
    ctx: &Ctx,
    p: &LocationParams,
) -> HandlerResult {
    let limit = &RateLimit::LOCAL_UPLOAD;
    app.limiter().check(&limit.key(ctx.peer.ip()), limit)?;
    let (id, path) = target(ctx, p)?;
    if path.is_empty() {
        return Err(ApiError::bad_request("File path is required"));
    }
    let locations = app.s4().locations();
    let destination = locations
        .prepare_upload(&id, &path)
        .await
        .map_err(local_error)?;
    // The quota is checked against the declared size (§17.9), 0 when absent.
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let Some((field, _)) = first_file_field(request).await? else {
        return Err(ApiError::bad_request("No file provided"));
    };
    // Progress on the upload-progress route, keyed by the decoded path (§12.3).
    let (handle, options) = crate::routes::upload_progress::track(app, &path);
    let result = destination
        .clone()
        .write(field_stream(field), options.with_declared_size(declared))
        .await;
    audit("POST", &id, &path, result.is_ok());
    crate::routes::upload_progress::finish(handle, result.map_err(local_error))?;
    Ok(body::ok(
        &json!({ "uploaded": true, "path": destination.path() }),
    ))
}

/// `GET /api/local/download/:locationId/*`.
pub(crate) async fn download(
    app: &App,
    request: &Request<Incoming>,
    ctx: &Ctx,
    p: &LocationParams,
) -> HandlerResult {
    let (id, path) = target(ctx, p)?;
    let range = download::parse_range(request.headers());
    let result = app.s4().locations().open_read(&id, &path, range).await;
    audit("GET", &id, &path, result.is_ok());
    let file = match result {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable => {
            return Ok(download::range_not_satisfiable(
                e.object_size().unwrap_or(0),
            ))
        }
        Err(e) => return Err(local_error(e)),
    };
    let name = file.name.clone();
    let meta = FileMeta {
        size: file.size,
        range: file.range.clone(),
        partial: file.partial,
        etag: None,
        last_modified: file.modified,
        attachment: Some(&name),
    };
    Ok(download::file_response(meta, file.body))
}

/// `DELETE /api/local/:locationId/*` (and the `/local/files/...` alias).
pub(crate) async fn delete(app: &App, ctx: &Ctx, p: &LocationParams) -> HandlerResult {
    let (id, path) = target(ctx, p)?;
    let result = app.s4().locations().delete(&id, &path).await;
    audit("DELETE", &id, &path, result.is_ok());
    let count = result.map_err(local_error)?;
    Ok(body::ok(&json!({ "deleted": true, "itemCount": count })))
}

/// `GET /api/local/view/:locationId/*`.
pub(crate) async fn view(app: &App, ctx: &Ctx, p: &LocationParams) -> HandlerResult {
    let (id, path) = target(ctx, p)?;
    let locations = app.s4().locations();
    if matches!(ctx.query("raw"), Some("true" | "1")) {
        let file = locations
            .open_read(&id, &path, None)
            .await
            .map_err(local_error)?;
        let meta = FileMeta {
            size: file.size,
            range: file.range.clone(),
            partial: false,
            etag: None,
            last_modified: file.modified,
            attachment: None,
        };
        return Ok(download::file_response(meta, file.body));
    }
    let entry = locations.stat(&id, &path).await.map_err(local_error)?;
    let preview = if entry.kind == EntryKind::Directory {
        Preview::Unavailable("directory")
    } else {
        let size = entry.size.unwrap_or(0);
        let kind = preview_kind(&entry.name, None);
        let head = if needs_bytes(kind, size) && size > 0 {
            locations
                .read_prefix(&id, &path, PREVIEW_LIMIT as usize)
                .await
                .map_err(local_error)?
                .to_vec()
        } else {
            Vec::new()
        };
        build_preview(kind, size, &head)
    };
    Ok(body::ok(
        &json!({ "metadata": local_wire::entry(&entry), "preview": preview_json(&preview) }),
    ))
}

/// `POST /api/local/create-directory/:locationId/*` (and `/local/directories/...`).
pub(crate) async fn create_dir(app: &App, ctx: &Ctx, p: &LocationParams) -> HandlerResult {
    let (id, path) = target(ctx, p)?;
    if path.is_empty() {
        return Err(ApiError::bad_request("Directory path is required"));
    }
    let result = app.s4().locations().create_dir(&id, &path).await;
    audit("POST", &id, &path, result.is_ok());
    let created = result.map_err(local_error)?;
    Ok(body::ok(&json!({ "created": true, "path": created })))
}

/// `GET /api/local/debug` — admin-only diagnostics.
pub(crate) async fn debug(app: &App, ctx: &Ctx) -> HandlerResult {
    if !ctx.caller()?.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Debug endpoint requires admin role",
        ));
    }
    let locations = app.s4().locations();
    let listed = locations.list_locations().await;
    let paths: Vec<String> = locations
        .config()
        .paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let checks_paths = paths.clone();
    let checks = tokio::task::spawn_blocking(move || {
        checks_paths
            .iter()
            .enumerate()
            .map(|(index, path)| directory_check(index, path))
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(|e| ApiError::internal(format!("diagnostics failed: {e}")))?;
    let mut recommendations = Vec::new();
    if paths.is_empty() {
        recommendations.push("Set LOCAL_STORAGE_PATHS to expose local directories".to_string());
    }
    for check in &checks {
        if check["exists"] == false {
            recommendations.push(format!(
                "Create or mount {}",
                check["path"].as_str().unwrap_or("")
            ));
        } else if check["isWritable"] == false {
            recommendations.push(format!(
                "Grant write access to {}",
                check["path"].as_str().unwrap_or("")
            ));
        }
    }
    let auth_enabled = app.auth().mode().auth_enabled();
    Ok(body::ok(&json!({
        "configuration": {
            "rawEnvVar": paths.join(","),
            "parsedPaths": paths,
            "pathCount": paths.len(),
        },
        "locations": local_wire::locations(&listed),
        "directoryChecks": checks,
        "authentication": {
            "disabled": !auth_enabled,
            "user": if auth_enabled { json!(super::auth::UserWire::from(ctx.caller()?)) } else { Value::Null },
        },
        "recommendations": recommendations,
    })))
}

/// One `directoryChecks` entry (blocking).
fn directory_check(index: usize, path: &str) -> Value {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path);
    let (exists, is_dir, error) = match &meta {
        Ok(m) => (true, m.is_dir(), Value::Null),
        Err(e) => (
            false,
            false,
            json!({ "code": format!("{:?}", e.kind()), "message": e.to_string() }),
        ),
    };
    let readable = is_dir && std::fs::read_dir(path).is_ok();
    let writable = is_dir && tempfile_probe(path);
    let mut out = json!({
        "index": index,
        "locationId": format!("local-{index}"),
        "path": path,
        "exists": exists,
        "isDirectory": is_dir,
        "isReadable": readable,
        "isWritable": writable,
        "error": error,
    });
    if let Ok(m) = meta {
        out["mode"] = json!(format!("{:04o}", m.mode() & 0o7777));
        out["uid"] = json!(m.uid());
        out["gid"] = json!(m.gid());
    }
    out
}

/// Whether a file can be created in `dir` (created and removed at once).
fn tempfile_probe(dir: &str) -> bool {
    let probe = std::path::Path::new(dir).join(format!(".s4-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

//! Object routes (§12): list/search, upload, download, delete, view, metadata,
//! upload progress (SSE) and abort.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{CONTENT_LENGTH, IF_NONE_MATCH};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use s4_core::codec::decode_b64_text;
use s4_core::preview::{build_preview, needs_bytes, preview_kind, Preview, PREVIEW_LIMIT};
use s4_core::uploads::UploadStatus;
use s4_core::{
    BucketName, ByteRange, Error, ErrorKind, GetObjectOptions, ListOptions, ObjectKey, Prefix,
    PutObjectOptions, SearchMode, SearchOptions,
};
use serde_json::{json, Map, Value};

use super::{iso, sse, HandlerResult};
use crate::app::{App, Ctx};
use crate::body;
use crate::download::{self, FileMeta};
use crate::error::{client_closed, ApiError};

/// Progress records are updated at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;
/// Multipart framing allowance when judging an upload by its `Content-Length`.
const MULTIPART_SLACK: u64 = 64 << 10;

fn audit(method: &str, bucket: &str, key: &str, ok: bool) {
    tracing::info!(target: "audit", action = method, resource = %format!("s3:{bucket}/{key}"), status = if ok { "success" } else { "failure" }, "object");
}

/// Decodes the `:encodedKey` parameter into text (§7.1).
fn decode_key_text(raw: &str) -> Result<String, ApiError> {
    let text = decode_b64_text(raw).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidKey",
            "Object key is not valid base64.",
        )
    })?;
    if text.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidKey",
            "Object key must not be empty.",
        ));
    }
    Ok(text)
}

/// Decodes and validates the `:encodedKey` parameter.
fn decode_key(raw: &str) -> Result<ObjectKey, ApiError> {
    Ok(ObjectKey::parse(&decode_key_text(raw)?)?)
}

fn invalid(name: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, name, message)
}

/// `GET /api/objects/:bucketName[/:encodedPrefix]` — list or search (§8.1, §8.2).
pub async fn list(app: &App, ctx: &Ctx) -> HandlerResult {
    // Query schema first (§3.4).
    let max_keys = match ctx.query("maxKeys") {
        None => 500,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("querystring/maxKeys must be integer"))?
            .clamp(1, 2000) as usize,
    };
    let bucket = BucketName::parse(ctx.params.get("bucket"))
        .map_err(|e| invalid("InvalidBucketName", e.message()))?;
    let token = match ctx.query("continuationToken") {
        None => None,
        Some(t) if t.is_empty() || t.len() > s4_core::storage::MAX_TOKEN_CHARS => {
            return Err(invalid(
                "InvalidContinuationToken",
                "Continuation token length is invalid.",
            ))
        }
        Some(t)
            if !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=._-".contains(&b)) =>
        {
            return Err(invalid(
                "InvalidContinuationToken",
                "Continuation token format is invalid.",
            ))
        }
        Some(t) => Some(t.to_string()),
    };
    let query = match ctx.query("q") {
        None => None,
        Some(q) if q.is_empty() || q.chars().count() > 256 => {
            return Err(invalid(
                "InvalidQuery",
                "Query length must be between 1 and 256 characters.",
            ))
        }
        Some(q)
            if !q
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || c.is_whitespace()) =>
        {
            return Err(invalid(
                "InvalidQuery",
                "Query contains invalid characters.",
            ))
        }
        Some(q) => Some(q.to_string()),
    };
    let raw_prefix = ctx.params.get("prefix");
    let prefix = if raw_prefix.is_empty() {
        Prefix::root()
    } else {
        if raw_prefix.len() > 2048 {
            return Err(invalid("InvalidPrefix", "Prefix parameter is invalid."));
        }
        let prefix = decode_b64_text(raw_prefix)
            .map_err(|_| invalid("InvalidPrefix", "Prefix is not valid base64."))?;
        if prefix.chars().count() > 1024 {
            return Err(invalid("InvalidPrefix", "Decoded prefix is too long."));
        }
        if prefix.contains("..") || prefix.contains('\0') {
            return Err(invalid(
                "InvalidPrefix",
                "Prefix contains invalid characters.",
            ));
        }
        Prefix::parse(&prefix)?
    };

    let Some(q) = query else {
        let page = app
            .s4()
            .list_objects(
                &bucket,
                &ListOptions::default()
                    .with_prefix(prefix)
                    .with_max_keys(max_keys)
                    .with_continuation_token(token),
            )
            .await?;
        let truncated = page.next_token.is_some();
        return Ok(body::ok(&listing_json(&page, truncated)));
    };
    let mode = if ctx.query("mode") == Some("startsWith") {
        SearchMode::StartsWith
    } else {
        SearchMode::Contains
    };
    if mode == SearchMode::Contains {
        let limit = &s4_core::ratelimit::RateLimit::CONTAINS_SEARCH;
        app.limiter().check(&limit.key(ctx.peer.ip()), limit)?;
    }
    let result = app
        .s4()
        .search_objects(
            &bucket,
            &SearchOptions {
                prefix,
                query: q.clone(),
                mode,
                auto_broaden: ctx.query("autoBroaden") == Some("true"),
                max_keys,
                continuation_token: token,
            },
        )
        .await?;
    let mut out = listing_json(&result.page, result.is_truncated);
    let to_map = |list: &s4_core::MatchList| -> Map<String, Value> {
        list.iter().map(|(k, m)| (k.clone(), json!(m))).collect()
    };
    let matches = json!({
        "objects": to_map(&result.object_matches),
        "prefixes": to_map(&result.prefix_matches),
    });
    let filter = match result.mode {
        SearchMode::StartsWith => json!({
            "q": q, "mode": "startsWith", "partialResult": false, "matches": matches,
        }),
        SearchMode::Contains => {
            let mut f = json!({
                "q": q,
                "mode": "contains",
                "partialResult": result.partial_result,
                "scanPages": result.scan_pages.unwrap_or(0),
                "scanStoppedReason": result.scan_stopped.map(|s| s.as_str()).unwrap_or("bucketExhausted"),
                "matches": matches,
            });
            if result.broadened {
                f["originalMode"] = json!("startsWith");
                f["autoBroaden"] = json!(true);
            }
            f
        }
    };
    out["filter"] = filter;
    Ok(body::ok(&out))
}

fn listing_json(page: &s4_core::Page, truncated: bool) -> Value {
    let objects: Vec<Value> = page
        .objects
        .iter()
        .map(|o| {
            let mut v = json!({
                "Key": o.key,
                "LastModified": iso(&o.last_modified),
                "Size": o.size,
                "StorageClass": o.storage_class,
            });
            if let Some(etag) = &o.etag {
                v["ETag"] = json!(etag);
            }
            v
        })
        .collect();
    let prefixes: Vec<Value> = page
        .prefixes
        .iter()
        .map(|p| json!({ "Prefix": p }))
        .collect();
    json!({
        "objects": objects,
        "prefixes": prefixes,
        "nextContinuationToken": page.next_token,
        "isTruncated": truncated,
    })
}

/// Maps a failed object upload to the contract's names (§12.2).
fn upload_error(app: &App, e: Error) -> ApiError {
    match e.kind() {
        ErrorKind::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!(
                "File size exceeds maximum limit of {}GB",
                app.config().max_file_size_gb
            ),
        ),
        ErrorKind::Cancelled => {
            ApiError::new(client_closed(), "AbortError", "Upload aborted by client")
        }
        ErrorKind::StorageFull => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "InsufficientStorage",
            "Not enough disk space",
        ),
        _ => ApiError::from(e),
    }
}

/// Multipart upload bodies: see [`crate::multipart`].
pub use crate::multipart::{field_stream, first_file_field};

/// `POST /api/objects/upload/:bucketName/:encodedKey` (§12.2).
pub async fn upload(app: &App, request: Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    let bucket = super::bucket_param(ctx)?;
    let key = decode_key(ctx.params.get("key"))?;
    let limit = app.config().max_file_size;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit + MULTIPART_SLACK) {
        return Err(upload_error(
            app,
            Error::new(ErrorKind::TooLarge, "File too large"),
        ));
    }
    let x_file_size = request
        .headers()
        .get("x-file-size")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some((field, content_type)) = first_file_field(request).await? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "File not found",
            "File not found in request",
        ));
    };
    // `total` of the progress events (§12.3): the declared file size (the part's
    // own Content-Length or an X-File-Size header), else the request's length.
    let header_u64 = |headers: &http::HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let total = header_u64(field.headers(), "content-length")
        .or(x_file_size)
        .or(declared)
        .unwrap_or(0);
    let tracker = app.s4().uploads();
    let handle = tracker.start(key.as_str());
    handle.set_total(total);
    let last_reported = Arc::new(AtomicU64::new(0));
    let progress = {
        let reported = Arc::clone(&last_reported);
        let tracker_key = key.as_str().to_string();
        let s4 = app.s4().clone();
        Arc::new(move |loaded: u64| {
            if loaded - reported.load(Ordering::Relaxed) >= PROGRESS_STEP {
                reported.store(loaded, Ordering::Relaxed);
                s4.uploads().update_loaded(&tracker_key, loaded);
            }
        })
    };
    let mut options = PutObjectOptions::default()
        .with_max_size(limit)
        .with_progress(progress)
        .with_cancel(handle.cancel_token());
    if let Some(ct) = content_type.filter(|ct| ct != "application/octet-stream") {
        options = options.with_content_type(ct);
    }
    let result = app
        .s4()
        .put_object(&bucket, &key, field_stream(field), options)
        .await;
    audit("POST", bucket.as_str(), key.as_str(), result.is_ok());
    match result {
        Ok(outcome) => {
            handle.complete(outcome.size);
            Ok(body::ok(&json!({
                "message": "Object uploaded successfully",
                "key": key.as_str(),
                "bucket": bucket.as_str(),
            })))
        }
        Err(e) => {
            let api = upload_error(app, e);
            if api.status == client_closed() {
                drop(handle); // The abort route already dropped the record.
            } else {
                handle.fail(&api.message);
            }
            Err(api)
        }
    }
}

/// `GET /api/objects/download/:bucketName/:encodedKey` (§12.4).
pub async fn download(app: &App, request: &Request<Incoming>, ctx: &Ctx) -> HandlerResult {
    let bucket = super::bucket_param(ctx)?;
    let key = decode_key(ctx.params.get("key"))?;
    let result = stream_object(app, request, &bucket, &key, true).await;
    audit("GET", bucket.as_str(), key.as_str(), result.is_ok());
    result
}

async fn stream_object(
    app: &App,
    request: &Request<Incoming>,
    bucket: &BucketName,
    key: &ObjectKey,
    attachment: bool,
) -> HandlerResult {
    let mut options = GetObjectOptions::default();
    if let Some(range) = download::parse_range(request.headers()) {
        options = options.with_range(range);
    }
    if let Some(tag) = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        options = options.with_if_none_match(tag);
    }
    let object = match app.s4().get_object(bucket, key, options).await {
        Ok(object) => object,
        Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable => {
            return Ok(download::range_not_satisfiable(
                e.object_size().unwrap_or(0),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotModified => {
            let mut response = http::Response::new(body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            if let Some(tag) = request.headers().get(IF_NONE_MATCH) {
                response
                    .headers_mut()
                    .insert(http::header::ETAG, tag.clone());
            }
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = FileMeta {
        size: object.info.size,
        range: object.range.clone(),
        partial: object.partial,
        etag: object.info.etag.as_deref(),
        last_modified: object.info.last_modified,
        attachment: attachment.then(|| key.leaf()),
    };
    let content_type = object.info.content_type.clone();
    let mut response = download::file_response(meta, object.body);
    // §9.4: the stored type (attachment + nosniff keep it from rendering).
    if let Some(value) = content_type.and_then(|ct| http::HeaderValue::from_str(&ct).ok()) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// `DELETE /api/objects/:bucketName/:encodedKey` (§12.5).
pub async fn delete(app: &App, ctx: &Ctx) -> HandlerResult {
    let bucket = super::bucket_param(ctx)?;
    let key = decode_key(ctx.params.get("key"))?;
    let result = app.s4().delete_object(&bucket, &key).await;
    audit(
        "DELETE",
        bucket.as_str(),
        key.as_str(),
        result.as_ref().is_ok_and(|o| o.failed.is_empty()),
    );
    let outcome = result?;
    if !outcome.folder {
        return Ok(body::ok(
            &json!({ "message": "Object deleted successfully" }),
        ));
    }
    let count = outcome.deleted.len();
    if outcome.failed.is_empty() {
        return Ok(body::ok(&json!({
            "message": format!("Successfully deleted {count} object(s)"),
            "count": count,
        })));
    }
    let errors: Vec<Value> = outcome
        .failed
        .iter()
        .map(|f| json!({ "key": f.key, "code": f.code, "message": f.message }))
        .collect();
    Ok(body::json(
        StatusCode::MULTI_STATUS,
        &json!({
            "message": format!("Deleted {count} object(s) with errors"),
            "count": count,
            "errors": errors,
        }),
    ))
}

fn is_raw(ctx: &Ctx) -> bool {
    matches!(ctx.query("raw"), Some("true" | "1"))
}

/// Serializes a preview (§9.5).
pub fn preview_json(preview: &Preview) -> Value {
    match preview {
        Preview::Available {
            kind,
            content,
            truncated,
        } => json!({ "available": true, "kind": kind, "content": content, "truncated": truncated }),
        Preview::Unavailable(reason) => json!({ "available": false, "reason": reason }),
    }
}

/// `GET /api/objects/view/:bucketName/:encodedKey` (§12.6).
pub async fn view(app: &App, ctx: &Ctx) -> HandlerResult {
    let bucket = super::bucket_param(ctx)?;
    let key = decode_key(ctx.params.get("key"))?;
    if is_raw(ctx) {
        let object = app
            .s4()
            .get_object(&bucket, &key, GetObjectOptions::default())
            .await?;
        let meta = FileMeta {
            size: object.info.size,
            range: object.range.clone(),
            partial: false,
            etag: object.info.etag.as_deref(),
            last_modified: object.info.last_modified,
            attachment: None,
        };
        return Ok(download::file_response(meta, object.body));
    }
    let info = app.s4().head_object(&bucket, &key).await?;
    let kind = preview_kind(key.leaf(), info.content_type.as_deref());
    let head = if needs_bytes(kind, info.size) && info.size > 0 {
        let object = app
            .s4()
            .get_object(
                &bucket,
                &key,
                GetObjectOptions::default().with_range(ByteRange::Bounded(0, PREVIEW_LIMIT - 1)),
            )
            .await?;
        read_bounded(object.body, PREVIEW_LIMIT as usize).await?
    } else {
        Vec::new()
    };
    let preview = build_preview(kind, info.size, &head);
    let mut metadata = json!({
        "key": key.as_str(),
        "size": info.size,
        "contentType": info.content_type.as_deref().unwrap_or("application/octet-stream"),
    });
    if let Some(t) = &info.last_modified {
        metadata["lastModified"] = json!(iso(t));
    }
    if let Some(etag) = &info.etag {
        metadata["etag"] = json!(etag);
    }
    Ok(body::ok(
        &json!({ "metadata": metadata, "preview": preview_json(&preview) }),
    ))
}

/// Reads at most `limit` bytes of a stream (for previews; bounded by design).
pub async fn read_bounded(
    mut stream: futures::stream::BoxStream<'static, s4_core::Result<Bytes>>,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = limit - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// `GET /api/objects/metadata/:bucketName/:encodedKey` (§12.8).
pub async fn metadata(app: &App, ctx: &Ctx) -> HandlerResult {
    let bucket = super::bucket_param(ctx)?;
    let key = decode_key(ctx.params.get("key"))?;
    let info = app.s4().head_object(&bucket, &key).await?;
    let user: Map<String, Value> = info
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Ok(body::ok(&json!({
        "key": key.as_str(),
        "size": info.size,
        "lastModified": info.last_modified.as_ref().map(iso),
        "etag": info.etag,
        "contentType": info.content_type.as_deref().unwrap_or("application/octet-stream"),
        "metadata": user,
        "storageClass": info.storage_class.as_deref().unwrap_or("STANDARD"),
    })))
}

/// `GET /api/objects/upload-progress/:encodedKey` (SSE, §12.3).
pub fn upload_progress(app: &App, ctx: &Ctx) -> HandlerResult {
    let key = decode_key_text(ctx.params.get("resource"))?;
    let s4 = app.s4().clone();
    let start = tokio::time::Instant::now() + Duration::from_secs(1);
    let ticks = tokio::time::interval_at(start, Duration::from_secs(1));
    let events = futures::stream::unfold(Some(ticks), move |state| {
        let s4 = s4.clone();
        let key = key.clone();
        async move {
            let mut ticks = state?;
            loop {
                ticks.tick().await;
                let Some(progress) = s4.uploads().progress(&key) else {
                    continue;
                };
                let (event, done) = match &progress.status {
                    UploadStatus::Uploading => (
                        json!({ "loaded": progress.loaded, "total": progress.total, "status": "uploading" }),
                        false,
                    ),
                    UploadStatus::Completed => (
                        json!({ "loaded": progress.loaded, "total": progress.total, "status": "completed" }),
                        true,
                    ),
                    UploadStatus::Failed(message) => (
                        json!({ "loaded": progress.loaded, "total": progress.total, "status": "failed", "error": message }),
                        true,
                    ),
                };
                if done {
                    s4.uploads().collect(&key);
                }
                return Some((event.to_string(), (!done).then_some(ticks)));
            }
        }
    });
    Ok(sse::response(events))
}

/// `GET /api/objects/abort-upload/:encodedKey` (§12.7).
pub fn abort_upload(app: &App, ctx: &Ctx) -> HandlerResult {
    let key = decode_key_text(ctx.params.get("key"))?;
    let message = if app.s4().uploads().abort(&key) {
        "Upload aborted"
    } else {
        "No upload to abort"
    };
    Ok(body::ok(&json!({ "message": message })))
}

/// Property tests of the `:encodedKey` decoder: any segment gives a key or a 400
/// `InvalidKey`, and every valid key sent as Base64 comes back verbatim.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_segment_is_a_key_or_400(raw in prop_oneof![any::<String>(), "[A-Za-z0-9+/_=%.-]{0,40}"]) {
            match decode_key(&raw) {
                Ok(key) => prop_assert!(ObjectKey::parse(key.as_str()).is_ok()),
                Err(e) => {
                    prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                    prop_assert_eq!(e.name.as_str(), "InvalidKey");
                }
            }
        }

        #[test]
        fn encoded_keys_round_trip(key in prop_oneof![any::<String>(), "[a./ ]{1,8}"]) {
            let decoded = decode_key(&s4_core::codec::encode_b64_text(&key));
            match ObjectKey::parse(&key) {
                Ok(_) => prop_assert_eq!(decoded.ok().map(|k| k.as_str().to_string()), Some(key)),
                Err(_) => prop_assert!(decoded.is_err()),
            }
        }
    }
}

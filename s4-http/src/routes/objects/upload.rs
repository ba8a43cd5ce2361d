//! Uploading objects (§12.2), their progress (SSE, §12.3) and abort (§12.7).

use super::*;

/// Multipart framing allowance when judging an upload by its `Content-Length`.
const MULTIPART_SLACK: u64 = 64 << 10;

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

/// `POST /api/objects/upload/:bucketName/:encodedKey` (§12.2).
pub(crate) async fn upload(
    app: &App,
    request: Request<Incoming>,
    p: &ObjectParams,
) -> HandlerResult {
    let bucket = crate::routes::bucket_param(&p.bucket)?;
    let key = decode_key(&p.key)?;
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
    let progress = crate::routes::upload_progress::progress_fn(app, key.as_str(), &handle);
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

/// `GET /api/objects/upload-progress/:encodedKey` (SSE, §12.3).
pub(crate) fn upload_progress(app: &App, p: &ResourceParams) -> HandlerResult {
    let key = decode_key_text(&p.resource)?;
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
pub(crate) fn abort_upload(app: &App, p: &KeyParams) -> HandlerResult {
    let key = decode_key_text(&p.key)?;
    let message = if app.s4().uploads().abort(&key) {
        "Upload aborted"
    } else {
        "No upload to abort"
    };
    Ok(body::ok(&json!({ "message": message })))
}

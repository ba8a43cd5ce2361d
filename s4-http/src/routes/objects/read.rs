//! Reading objects: download (§12.4), view with preview (§12.6), metadata (§12.8).

use super::*;

/// `GET /api/objects/download/:bucketName/:encodedKey` (§12.4).
pub(crate) async fn download(
    app: &App,
    request: &Request<Incoming>,
    p: &ObjectParams,
) -> HandlerResult {
    let bucket = crate::routes::bucket_param(&p.bucket)?;
    let key = decode_key(&p.key)?;
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

/// Serializes a preview (§9.5).
pub(crate) fn preview_json(preview: &Preview) -> Value {
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
pub(crate) async fn view(app: &App, ctx: &Ctx, p: &ObjectParams) -> HandlerResult {
    let bucket = crate::routes::bucket_param(&p.bucket)?;
    let key = decode_key(&p.key)?;
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
async fn read_bounded(
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
pub(crate) async fn metadata(app: &App, p: &ObjectParams) -> HandlerResult {
    let bucket = crate::routes::bucket_param(&p.bucket)?;
    let key = decode_key(&p.key)?;
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

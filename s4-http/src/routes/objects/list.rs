//! Listing and searching a bucket (§8.1, §8.2).

use super::*;

/// `GET /api/objects/:bucketName[/:encodedPrefix]` — list or search (§8.1, §8.2).
pub(crate) async fn list(app: &App, ctx: &Ctx, p: &ListParams) -> HandlerResult {
    // Query schema first (§3.4).
    let max_keys = match ctx.query("maxKeys") {
        None => 500,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("querystring/maxKeys must be integer"))?
            .clamp(1, 2000) as usize,
    };
    let bucket =
        BucketName::parse(&p.bucket).map_err(|e| invalid("InvalidBucketName", e.message()))?;
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
    let raw_prefix = p.prefix.as_deref().unwrap_or_default();
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
        list.iter()
            .map(|m| (m.key.clone(), json!(m.offsets)))
            .collect()
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

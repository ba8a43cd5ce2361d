//! ListObjects (V1) and ListObjectsV2 over the core's paged listing.
//!
//! Continuation tokens are the core's own (opaque, the Base64 of the last name
//! listed), so `start-after` and V1's `marker` become a token of that name. Only
//! `/` is supported as a delimiter (the one S4's backends group by).

use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use s4_core::codec::{decode_b64_text, encode_b64_text};
use s4_core::{ListOptions, Page, Prefix};

use super::convert::{bucket, encode, err, etag, s3_err, timestamp};
use super::S4S3;

/// S3's default and largest page.
const MAX_KEYS: i32 = 1000;

struct Query {
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    max_keys: i32,
    /// Core token to continue from.
    token: Option<String>,
}

/// Lists one page; `None` for `max-keys=0` (an empty, complete page).
async fn page(s3: &S4S3, q: &Query) -> S3Result<Option<Page>> {
    let name = bucket(&q.bucket)?;
    let delimited = match q.delimiter.as_deref() {
        None | Some("") => false,
        Some("/") => true,
        Some(_) => {
            return Err(err(
                S3ErrorCode::NotImplemented,
                "Only '/' is supported as a delimiter.",
            ))
        }
    };
    if q.max_keys < 0 {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "max-keys must be between 0 and 2147483647",
        ));
    }
    // The bucket must exist even for an empty page.
    s3.s4.backend().head_bucket(&name).await.map_err(s3_err)?;
    if q.max_keys == 0 {
        return Ok(None);
    }
    let prefix = if q.prefix.is_empty() {
        Prefix::root()
    } else {
        Prefix::parse(&q.prefix).map_err(s3_err)?
    };
    let options = ListOptions::default()
        .with_prefix(prefix)
        .with_delimited(delimited)
        .with_max_keys(q.max_keys.min(MAX_KEYS) as usize)
        .with_continuation_token(q.token.clone());
    s3.s4
        .list_objects(&name, &options)
        .await
        .map(Some)
        .map_err(s3_err)
}

fn contents(page: &Page, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .iter()
        .map(|o| Object {
            key: Some(encode(o.key.clone(), url)),
            last_modified: Some(timestamp(o.last_modified)),
            e_tag: o.etag.as_deref().map(etag),
            size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectStorageClass::from(o.storage_class.clone())),
            ..Object::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(encode(p.clone(), url)),
        })
        .collect();
    (objects, prefixes)
}

fn wants_url(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding.map(EncodingType::as_str) {
        None => Ok(false),
        Some(e) if e.eq_ignore_ascii_case(EncodingType::URL) => Ok(true),
        Some(_) => Err(err(S3ErrorCode::InvalidArgument, "Invalid Encoding Method")),
    }
}

pub(super) async fn list_objects_v2(
    s3: &S4S3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    let url = wants_url(input.encoding_type.as_ref())?;
    let token = match (&input.continuation_token, &input.start_after) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(after)) if !after.is_empty() => Some(encode_b64_text(after)),
        _ => None,
    };
    let q = Query {
        bucket: input.bucket.clone(),
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone(),
        max_keys: input.max_keys.unwrap_or(MAX_KEYS),
        token,
    };
    let page = page(s3, &q).await?.unwrap_or_default();
    let (objects, prefixes) = contents(&page, url);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(encode(q.prefix, url)),
        delimiter: q.delimiter.map(|d| encode(d, url)),
        max_keys: Some(q.max_keys),
        key_count: Some(i32::try_from(objects.len() + prefixes.len()).unwrap_or(i32::MAX)),
        continuation_token: input.continuation_token,
        start_after: input.start_after.map(|s| encode(s, url)),
        is_truncated: Some(page.next_token.is_some()),
        next_continuation_token: page.next_token,
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..ListObjectsV2Output::default()
    }))
}

pub(super) async fn list_objects(
    s3: &S4S3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let url = wants_url(input.encoding_type.as_ref())?;
    let q = Query {
        bucket: input.bucket.clone(),
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone(),
        max_keys: input.max_keys.unwrap_or(MAX_KEYS),
        token: input
            .marker
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(encode_b64_text),
    };
    let page = page(s3, &q).await?.unwrap_or_default();
    let (objects, prefixes) = contents(&page, url);
    // The name the next page starts after (always given, also without delimiter).
    let next_marker = page
        .next_token
        .as_deref()
        .and_then(|t| decode_b64_text(t).ok());
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(q.prefix, url)),
        delimiter: q.delimiter.map(|d| encode(d, url)),
        marker: Some(encode(input.marker.unwrap_or_default(), url)),
        max_keys: Some(q.max_keys),
        is_truncated: Some(next_marker.is_some()),
        next_marker: next_marker.map(|m| encode(m, url)),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..ListObjectsOutput::default()
    }))
}

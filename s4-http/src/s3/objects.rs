//! Object operations: GetObject, HeadObject, PutObject, DeleteObject,
//! DeleteObjects, CopyObject.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use s4_core::{
    BucketName, ByteRange, ErrorKind, GetObjectOptions, ObjectInfo, ObjectKey, PutObjectOptions,
};

use super::convert::{
    blob, body_stream, bucket, epoch_secs, err, etag, etag_value, key, s3_err, timestamp,
};
use super::S4S3;

/// Largest single PUT (S3's 5 GiB; larger objects take a multipart upload).
pub(super) const MAX_PUT_SIZE: u64 = 5 << 30;

/// The conditional headers of a GET or HEAD.
#[derive(Default)]
pub(super) struct Conditions<'a> {
    pub(super) if_match: Option<&'a ETagCondition>,
    pub(super) if_none_match: Option<&'a ETagCondition>,
    pub(super) if_modified_since: Option<&'a Timestamp>,
    pub(super) if_unmodified_since: Option<&'a Timestamp>,
}

fn condition_matches(condition: &ETagCondition, stored: Option<&str>) -> bool {
    match condition {
        ETagCondition::Any => stored.is_some(),
        ETagCondition::ETag(tag) => stored.is_some_and(|s| etag_value(s) == tag.value()),
    }
}

fn precondition_failed() -> S3Error {
    err(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

fn not_modified() -> S3Error {
    let mut e = S3Error::new(S3ErrorCode::NotModified);
    e.set_status_code(http::StatusCode::NOT_MODIFIED);
    e
}

impl Conditions<'_> {
    /// RFC 9110 order: If-Match, If-Unmodified-Since (412), If-None-Match,
    /// If-Modified-Since (304). Times compare at whole seconds.
    pub(super) fn check(&self, info: &ObjectInfo) -> S3Result<()> {
        let stored = info.etag.as_deref();
        let modified = info.last_modified.map(|t| t.timestamp());
        if let Some(c) = self.if_match {
            if !condition_matches(c, stored) {
                return Err(precondition_failed());
            }
        } else if let (Some(t), Some(m)) = (self.if_unmodified_since, modified) {
            if epoch_secs(t).is_some_and(|since| m > since) {
                return Err(precondition_failed());
            }
        }
        if let Some(c) = self.if_none_match {
            if condition_matches(c, stored) {
                return Err(not_modified());
            }
        } else if let (Some(t), Some(m)) = (self.if_modified_since, modified) {
            if epoch_secs(t).is_some_and(|since| m <= since) {
                return Err(not_modified());
            }
        }
        Ok(())
    }
}

fn byte_range(range: &Range) -> ByteRange {
    match *range {
        Range::Int {
            first,
            last: Some(last),
        } => ByteRange::Bounded(first, last),
        Range::Int { first, last: None } => ByteRange::From(first),
        Range::Suffix { length } => ByteRange::Suffix(length),
    }
}

fn metadata_map(info: &ObjectInfo) -> Option<HashMap<String, String>> {
    (!info.metadata.is_empty()).then(|| info.metadata.iter().cloned().collect())
}

fn size_i64(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

pub(super) async fn get_object(
    s3: &S4S3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    if input.part_number.is_some() {
        return Err(err(
            S3ErrorCode::NotImplemented,
            "GetObject by part number is not implemented.",
        ));
    }
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let mut options = GetObjectOptions::default();
    if let Some(range) = &input.range {
        options = options.with_range(byte_range(range));
    }
    let object = s3
        .s4
        .get_object(&name, &object_key, options)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::RangeNotSatisfiable => {
                let mut s = err(
                    S3ErrorCode::InvalidRange,
                    "The requested range is not satisfiable",
                );
                s.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
                s
            }
            _ => s3_err(e),
        })?;
    Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    }
    .check(&object.info)?;
    let info = &object.info;
    let range = object.range.clone();
    let content_range = object.partial.then(|| {
        format!(
            "bytes {}-{}/{}",
            range.start,
            range.end.saturating_sub(1),
            info.size
        )
    });
    let output = GetObjectOutput {
        accept_ranges: Some("bytes".into()),
        content_length: Some(size_i64(range.end - range.start)),
        content_range,
        content_type: info.content_type.clone(),
        e_tag: info.etag.as_deref().map(etag),
        last_modified: info.last_modified.map(timestamp),
        metadata: metadata_map(info),
        body: Some(blob(object.body)),
        ..GetObjectOutput::default()
    };
    Ok(S3Response::new(output))
}

pub(super) async fn head_object(
    s3: &S4S3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let info = s3
        .s4
        .head_object(&name, &object_key)
        .await
        .map_err(s3_err)?;
    Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    }
    .check(&info)?;
    Ok(S3Response::new(HeadObjectOutput {
        accept_ranges: Some("bytes".into()),
        content_length: Some(size_i64(info.size)),
        content_type: info.content_type.clone(),
        e_tag: info.etag.as_deref().map(etag),
        last_modified: info.last_modified.map(timestamp),
        metadata: metadata_map(&info),
        ..HeadObjectOutput::default()
    }))
}

/// Decodes a `Content-MD5` header (`InvalidDigest` when it is not 16 bytes of
/// Base64).
pub(super) fn content_md5(header: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(text) = header else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|d| <[u8; 16]>::try_from(d.as_slice()).ok())
        .map(Some)
        .ok_or_else(|| {
            err(
                S3ErrorCode::InvalidDigest,
                "The Content-MD5 you specified was invalid.",
            )
        })
}

/// The body, failing at its end with `BadDigest` when its MD5 differs from
/// `expected` (so the write it feeds is aborted and nothing is stored).
pub(super) fn checked_body<S>(
    body: S,
    expected: Option<[u8; 16]>,
) -> impl Stream<Item = s4_core::Result<Bytes>> + Send
where
    S: Stream<Item = s4_core::Result<Bytes>> + Send + 'static,
{
    let Some(expected) = expected else {
        return body.boxed();
    };
    let state = (body.boxed(), Some(Md5::new()));
    futures::stream::unfold(state, move |(mut body, md5)| async move {
        let mut md5 = md5?;
        match body.next().await {
            Some(Ok(chunk)) => {
                md5.update(&chunk);
                Some((Ok(chunk), (body, Some(md5))))
            }
            Some(Err(e)) => Some((Err(e), (body, None))),
            None => {
                let digest: [u8; 16] = md5.finalize().into();
                if digest == expected {
                    None
                } else {
                    let e = s4_core::Error::invalid(
                        "The Content-MD5 you specified did not match what we received.",
                    )
                    .with_code("BadDigest");
                    Some((Err(e), (body, None)))
                }
            }
        }
    })
    .boxed()
}

pub(super) async fn put_object(
    s3: &S4S3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let input = req.input;
    if input.if_match.is_some() || input.if_none_match.is_some() {
        return Err(err(
            S3ErrorCode::NotImplemented,
            "Conditional writes are not implemented.",
        ));
    }
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let expected = content_md5(input.content_md5.as_deref())?;
    let mut options = PutObjectOptions::default().with_max_size(MAX_PUT_SIZE);
    if let Some(ct) = input.content_type {
        options = options.with_content_type(ct);
    }
    for (k, v) in input.metadata.unwrap_or_default() {
        options = options.with_metadata(k, v);
    }
    let body = checked_body(body_stream(input.body), expected);
    let outcome = s3
        .s4
        .put_object(&name, &object_key, body, options)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(PutObjectOutput {
        e_tag: outcome.etag.as_deref().map(etag),
        ..PutObjectOutput::default()
    }))
}

pub(super) async fn delete_object(
    s3: &S4S3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let name = bucket(&req.input.bucket)?;
    let object_key = key(&req.input.key)?;
    s3.s4
        .delete_exact(&name, &object_key)
        .await
        .map_err(s3_err)?;
    let mut response = S3Response::new(DeleteObjectOutput::default());
    response.status = Some(http::StatusCode::NO_CONTENT);
    Ok(response)
}

/// Most keys in one DeleteObjects request (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

pub(super) async fn delete_objects(
    s3: &S4S3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    if input.delete.objects.len() > MAX_DELETE_KEYS {
        return Err(err(
            S3ErrorCode::MalformedXML,
            "The request may not contain more than 1000 keys.",
        ));
    }
    s3.s4.backend().head_bucket(&name).await.map_err(s3_err)?;
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in input.delete.objects {
        let result = match ObjectKey::parse(&object.key) {
            Ok(k) => s3.s4.delete_exact(&name, &k).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(object.key),
                        ..DeletedObject::default()
                    });
                }
            }
            Err(e) => {
                let e = s3_err(e);
                errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(object.key),
                    message: e.message().map(str::to_string),
                    ..Error::default()
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..DeleteObjectsOutput::default()
    }))
}

/// The `(bucket, key)` of a copy source.
pub(super) fn copy_source(source: &CopySource) -> S3Result<(BucketName, ObjectKey)> {
    match source {
        CopySource::Bucket {
            bucket: b,
            key: k,
            version_id,
        } => {
            if version_id.is_some() {
                return Err(err(
                    S3ErrorCode::NotImplemented,
                    "Object versions are not implemented.",
                ));
            }
            Ok((bucket(b)?, key(k)?))
        }
        _ => Err(err(
            S3ErrorCode::NotImplemented,
            "Access point copy sources are not implemented.",
        )),
    }
}

pub(super) async fn copy_object(
    s3: &S4S3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
        None | Some(MetadataDirective::COPY) => false,
        Some(MetadataDirective::REPLACE) => true,
        Some(_) => {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                "Unknown metadata directive.",
            ))
        }
    };
    if !replace && src_bucket == name && src_key == object_key {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let source = s3
        .s4
        .get_object(&src_bucket, &src_key, GetObjectOptions::default())
        .await
        .map_err(s3_err)?;
    let info = &source.info;
    if let Some(c) = &input.copy_source_if_match {
        if !condition_matches(c, info.etag.as_deref()) {
            return Err(precondition_failed());
        }
    }
    if let Some(c) = &input.copy_source_if_none_match {
        if condition_matches(c, info.etag.as_deref()) {
            return Err(precondition_failed());
        }
    }
    let mut options = PutObjectOptions::default();
    let (content_type, metadata) = if replace {
        (
            input.content_type,
            input.metadata.unwrap_or_default().into_iter().collect(),
        )
    } else {
        (info.content_type.clone(), info.metadata.clone())
    };
    if let Some(ct) = content_type {
        options = options.with_content_type(ct);
    }
    for (k, v) in metadata {
        options = options.with_metadata(k, v);
    }
    let outcome = s3
        .s4
        .put_object(&name, &object_key, source.body, options)
        .await
        .map_err(s3_err)?;
    let modified: DateTime<Utc> = s3
        .s4
        .head_object(&name, &object_key)
        .await
        .ok()
        .and_then(|i| i.last_modified)
        .unwrap_or_else(Utc::now);
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: outcome.etag.as_deref().map(etag),
            last_modified: Some(timestamp(modified)),
            ..CopyObjectResult::default()
        }),
        ..CopyObjectOutput::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(etag: &str, secs: i64) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size: 1,
            last_modified: DateTime::<Utc>::from_timestamp(secs, 0),
            etag: Some(etag.into()),
            content_type: None,
            metadata: Vec::new(),
            storage_class: None,
        }
    }

    fn tag(v: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(v.into()))
    }

    fn code(r: S3Result<()>) -> Option<String> {
        r.err().map(|e| e.code().as_str().to_string())
    }

    #[test]
    fn conditions() {
        let i = info("\"abc\"", 1000);
        let yes = tag("abc");
        let no = tag("xyz");
        let c = |m, n| Conditions {
            if_match: m,
            if_none_match: n,
            ..Conditions::default()
        };
        assert_eq!(code(c(Some(&yes), None).check(&i)), None);
        assert_eq!(
            code(c(Some(&no), None).check(&i)).as_deref(),
            Some("PreconditionFailed")
        );
        assert_eq!(
            code(c(None, Some(&yes)).check(&i)).as_deref(),
            Some("NotModified")
        );
        assert_eq!(
            code(c(None, Some(&ETagCondition::Any)).check(&i)).as_deref(),
            Some("NotModified")
        );
        assert_eq!(code(c(None, Some(&no)).check(&i)), None);
        let before = convert_ts(999);
        let after = convert_ts(1000);
        let since = |t| Conditions {
            if_modified_since: Some(t),
            ..Conditions::default()
        };
        assert_eq!(code(since(&before).check(&i)), None);
        assert_eq!(
            code(since(&after).check(&i)).as_deref(),
            Some("NotModified")
        );
        let unmodified = |t| Conditions {
            if_unmodified_since: Some(t),
            ..Conditions::default()
        };
        assert_eq!(
            code(unmodified(&before).check(&i)).as_deref(),
            Some("PreconditionFailed")
        );
        assert_eq!(code(unmodified(&after).check(&i)), None);
    }

    fn convert_ts(secs: i64) -> Timestamp {
        timestamp(DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default())
    }

    #[test]
    fn md5_header() {
        assert_eq!(content_md5(None).ok(), Some(None));
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert_eq!(content_md5(Some(&good)).ok(), Some(Some([7u8; 16])));
        assert!(content_md5(Some("nope")).is_err());
    }

    #[tokio::test]
    async fn bad_digest_fails_the_stream() {
        let body = || futures::stream::iter([Ok(Bytes::from_static(b"hello"))]);
        let good: [u8; 16] = Md5::digest(b"hello").into();
        let items: Vec<_> = checked_body(body(), Some(good)).collect().await;
        assert_eq!(items.len(), 1);
        assert!(items.iter().all(|i| i.is_ok()));
        let items: Vec<_> = checked_body(body(), Some([0; 16])).collect().await;
        assert_eq!(items.len(), 2);
        let last = items.into_iter().last().and_then(|r| r.err());
        assert_eq!(
            last.and_then(|e| e.code().map(str::to_string)).as_deref(),
            Some("BadDigest")
        );
    }
}

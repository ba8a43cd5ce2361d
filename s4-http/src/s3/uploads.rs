//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts, ListMultipartUploads, over [`s4_core::multipart`].

use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use s4_core::multipart::{CompletedPart as CorePart, UploadOptions};
use s4_core::{ByteRange, GetObjectOptions};

use super::convert::{body_stream, bucket, encode, err, etag, key, s3_err, timestamp};
use super::objects::{checked_body, content_md5, copy_source};
use super::S4S3;

pub(super) async fn create(
    s3: &S4S3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let options = UploadOptions {
        content_type: input.content_type,
        metadata: input
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    };
    let id = s3
        .uploads
        .create(&name, &object_key, options)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(id),
        ..CreateMultipartUploadOutput::default()
    }))
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
        err(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
    })
}

pub(super) async fn upload_part(
    s3: &S4S3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let number = part_number(input.part_number)?;
    let expected = content_md5(input.content_md5.as_deref())?;
    let body = checked_body(body_stream(input.body), expected);
    let part = s3
        .uploads
        .upload_part(&name, &object_key, &input.upload_id, number, body)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(etag(&part.etag)),
        ..UploadPartOutput::default()
    }))
}

/// Parses `bytes=first-last` of `x-amz-copy-source-range`.
fn copy_range(text: &str) -> S3Result<ByteRange> {
    let bad = || {
        err(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last.",
        )
    };
    let (first, last) = text
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.parse().map_err(|_| bad())?;
    let last: u64 = last.parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(ByteRange::Bounded(first, last))
}

pub(super) async fn upload_part_copy(
    s3: &S4S3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let number = part_number(input.part_number)?;
    // Check the upload before reading the source.
    s3.uploads
        .list_parts(&name, &object_key, &input.upload_id)
        .map_err(s3_err)?;
    let mut options = GetObjectOptions::default();
    if let Some(range) = &input.copy_source_range {
        options = options.with_range(copy_range(range)?);
    }
    let source = s3
        .s4
        .get_object(&src_bucket, &src_key, options)
        .await
        .map_err(|e| match e.kind() {
            s4_core::ErrorKind::RangeNotSatisfiable => err(
                S3ErrorCode::InvalidRange,
                "The x-amz-copy-source-range is not satisfiable",
            ),
            _ => s3_err(e),
        })?;
    let part = s3
        .uploads
        .upload_part(&name, &object_key, &input.upload_id, number, source.body)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(timestamp(part.last_modified)),
            ..CopyPartResult::default()
        }),
        ..UploadPartCopyOutput::default()
    }))
}

pub(super) async fn complete(
    s3: &S4S3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let parts = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            Ok(CorePart {
                part_number: part_number(p.part_number.unwrap_or(0))?,
                etag: p.e_tag.map(|e| e.value().to_string()),
            })
        })
        .collect::<S3Result<Vec<_>>>()?;
    let outcome = s3
        .uploads
        .complete(&name, &object_key, &input.upload_id, &parts)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        e_tag: outcome.etag.as_deref().map(etag),
        ..CompleteMultipartUploadOutput::default()
    }))
}

pub(super) async fn abort(
    s3: &S4S3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let name = bucket(&req.input.bucket)?;
    let object_key = key(&req.input.key)?;
    s3.uploads
        .abort(&name, &object_key, &req.input.upload_id)
        .await
        .map_err(s3_err)?;
    let mut response = S3Response::new(AbortMultipartUploadOutput::default());
    response.status = Some(http::StatusCode::NO_CONTENT);
    Ok(response)
}

pub(super) async fn list_parts(
    s3: &S4S3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    let object_key = key(&input.key)?;
    let all = s3
        .uploads
        .list_parts(&name, &object_key, &input.upload_id)
        .map_err(s3_err)?;
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let marker = input
        .part_number_marker
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0);
    let after: Vec<_> = all.into_iter().filter(|p| p.part_number > marker).collect();
    let truncated = after.len() > max;
    let page: Vec<_> = after.into_iter().take(max).collect();
    let next = page.last().and_then(|p| i32::try_from(p.part_number).ok());
    let parts = page
        .into_iter()
        .map(|p| Part {
            part_number: i32::try_from(p.part_number).ok(),
            e_tag: Some(etag(&p.etag)),
            size: i64::try_from(p.size).ok(),
            last_modified: Some(timestamp(p.last_modified)),
            ..Part::default()
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        parts: Some(parts),
        ..ListPartsOutput::default()
    }))
}

pub(super) async fn list_uploads(
    s3: &S4S3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let name = bucket(&input.bucket)?;
    s3.s4.backend().head_bucket(&name).await.map_err(s3_err)?;
    let url = input
        .encoding_type
        .as_ref()
        .is_some_and(|e| e.as_str().eq_ignore_ascii_case(EncodingType::URL));
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let all: Vec<_> = s3
        .uploads
        .list_uploads(&name, &prefix)
        .into_iter()
        .filter(|u| key_marker.is_empty() || u.key > key_marker)
        .collect();
    let truncated = all.len() > max;
    let page: Vec<_> = all.into_iter().take(max).collect();
    let next_key = truncated
        .then(|| page.last().map(|u| u.key.clone()))
        .flatten();
    let next_id = truncated
        .then(|| page.last().map(|u| u.upload_id.clone()))
        .flatten();
    let uploads = page
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(encode(u.key, url)),
            upload_id: Some(u.upload_id),
            initiated: Some(timestamp(u.initiated)),
            ..MultipartUpload::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(encode(prefix, url)),
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(uploads),
        encoding_type: input.encoding_type,
        ..ListMultipartUploadsOutput::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range("bytes=0-9").ok(), Some(ByteRange::Bounded(0, 9)));
        assert!(copy_range("bytes=9-0").is_err());
        assert!(copy_range("0-9").is_err());
        assert!(copy_range("bytes=a-9").is_err());
    }

    #[test]
    fn part_numbers() {
        assert_eq!(part_number(1).ok(), Some(1));
        assert!(part_number(0).is_err());
        assert!(part_number(-3).is_err());
    }
}

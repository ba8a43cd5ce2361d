//! Server-side copies on one S3 engine ([`Backend::copy_object`]), in the same or
//! another bucket: the bytes never pass through S4.
//!
//! * Up to the multipart threshold (5 GiB, CopyObject's limit): one CopyObject
//!   (`PUT` with `x-amz-copy-source`), which keeps the source's metadata and
//!   content type. It is one atomic request on the engine and is deliberately not
//!   interrupted by a cancel: dropping the request would not stop the engine,
//!   which may still write the whole object after S4 reported the copy
//!   cancelled. The copy runs to its end, so its caller knows the destination's
//!   state when it returns (`Copied` even though the cancel came meanwhile); the
//!   transfer engine then removes an object this copy created (see
//!   `transfer::engine::copy_file`).
//! * Above it: a multipart copy. The source's HEAD gives its size, ETag, content
//!   type and user metadata; CreateMultipartUpload sets the same metadata on the
//!   destination; UploadPartCopy copies `x-amz-copy-source-range` slices (at most
//!   10 000 parts, four at a time, each conditional on the source's
//!   ETag so a source changed mid-copy fails instead of mixing versions);
//!   CompleteMultipartUpload assembles them. Any failure or cancel (checked between
//!   parts) aborts the upload, and so does dropping the future (a guard spawns the
//!   abort), so no partial object is ever visible. CreateMultipartUpload itself
//!   runs in a spawned task ([`CreateGuard`]): a copy dropped while it is in flight
//!   has not learnt the upload id yet, so the guard's own task waits for the
//!   answer and aborts the upload it names. A cancel during the create waits for
//!   its answer (one short request) and aborts before reporting `cancelled`.
//!   Only a create whose answer never arrives (timed out; it is not repeated, see
//!   `Call::not_idempotent`) can leave an upload S4 never learns of.
//!
//! S3 may answer a copy or a completion with `200 OK` and an `<Error>` document
//! (the status is sent before the work ends): that is a failure too.
//!
//! [`Backend::copy_object`]: crate::storage::Backend::copy_object

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;

use super::request::{object_path, Call, Requester};
use super::sign::{has_dot_segment, header, uri_encode};
use super::{parse_xml, S3Backend};
use crate::error::{from_s3_response, Error, ErrorKind, Result};
use crate::names::{BucketName, ObjectKey};
use crate::storage::{ServerCopy, ServerCopyOptions};

/// Objects above this size are copied as multipart copies by default (S3's limit
/// of one CopyObject).
pub const DEFAULT_MULTIPART_COPY_THRESHOLD: u64 = 5 << 30;
/// S3's smallest part (except the last).
pub(super) const MIN_PART: u64 = 5 << 20;
/// S3's largest part.
const MAX_PART: u64 = 5 << 30;
/// S3's largest part count.
const MAX_PARTS: u64 = 10_000;
/// Part size of multipart copies when the threshold allows it: few requests, each
/// short enough to be retried.
const PREFERRED_PART: u64 = 512 << 20;
/// Parts copied at the same time.
const PARTS_IN_FLIGHT: usize = 4;

/// What an [`S3Backend`] copied server-side since it was created
/// ([`S3Backend::server_copy_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCopyStats {
    /// Objects copied (single and multipart).
    pub objects: u64,
    /// Of these, objects copied as multipart copies.
    pub multipart_objects: u64,
    /// Parts copied by multipart copies.
    pub parts: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    objects: AtomicU64,
    multipart_objects: AtomicU64,
    parts: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ServerCopyStats {
        ServerCopyStats {
            objects: self.objects.load(Ordering::Relaxed),
            multipart_objects: self.multipart_objects.load(Ordering::Relaxed),
            parts: self.parts.load(Ordering::Relaxed),
        }
    }
}

/// A multipart upload started and neither completed nor aborted
/// ([`S3Backend::pending_uploads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// Destination key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
}

/// The part size of a multipart copy of `size` bytes.
fn part_size(size: u64, threshold: u64) -> u64 {
    let wanted = threshold.clamp(MIN_PART, PREFERRED_PART);
    wanted.max(size.div_ceil(MAX_PARTS)).min(MAX_PART)
}

fn part_ranges(size: u64, part: u64) -> Vec<Range<u64>> {
    let part = part.max(1);
    (0..size.div_ceil(part))
        .map(|i| i * part..((i + 1) * part).min(size))
        .collect()
}

fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "Copy cancelled")
}

/// `/<bucket>/<key>` as `x-amz-copy-source` wants it (URL-encoded).
fn copy_source(bucket: &BucketName, key: &ObjectKey) -> String {
    format!(
        "/{}/{}",
        uri_encode(bucket.as_str(), false),
        uri_encode(key.as_str(), true)
    )
}

/// Fails when a `200 OK` body is an S3 `<Error>` document.
fn reject_error_body(body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let mut rest = text.trim_start();
    if rest.starts_with("<?xml") {
        rest = rest.find("?>").map_or("", |i| rest[i + 2..].trim_start());
    }
    if rest.starts_with("<Error>") || rest.starts_with("<Error ") {
        return Err(from_s3_response(500, &text));
    }
    Ok(())
}

/// Whether `e` is the engine refusing the operation itself (stream instead).
fn refused(e: &Error) -> bool {
    e.backend_status() == Some(501) || e.code() == Some("NotImplemented")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateResult {
    upload_id: String,
}

#[derive(Deserialize)]
struct CopyPartResult {
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploadsResult {
    #[serde(default)]
    upload: Vec<UploadXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadXml {
    key: String,
    upload_id: String,
}

/// Aborts the upload when dropped armed (the copy future was dropped mid-way).
struct AbortOnDrop {
    requests: Requester,
    path: String,
    upload_id: String,
    armed: bool,
}

impl AbortOnDrop {
    /// Aborts now (failure or cancel); the guard is disarmed.
    async fn abort(mut self) {
        self.armed = false;
        abort_upload(&self.requests, &self.path, &self.upload_id).await;
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let requests = self.requests.clone();
        let path = std::mem::take(&mut self.path);
        let upload_id = std::mem::take(&mut self.upload_id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { abort_upload(&requests, &path, &upload_id).await });
        }
    }
}

/// A CreateMultipartUpload running in its own task. Awaited through
/// [`Self::upload_id`]; dropped before its answer was taken (the copy future was
/// dropped meanwhile), it leaves a task that waits for the answer and aborts the
/// upload it names, so an upload created for a dropped copy never stays pending.
struct CreateGuard {
    task: Option<tokio::task::JoinHandle<Result<String>>>,
    requests: Requester,
    path: String,
}

impl CreateGuard {
    fn start(requests: &Requester, path: &str, call: Call) -> Self {
        let sender = requests.clone();
        let task = tokio::spawn(async move {
            let created = sender.send_ok(&call).await?;
            Ok::<String, Error>(parse_xml::<InitiateResult>(&created)?.upload_id)
        });
        CreateGuard {
            task: Some(task),
            requests: requests.clone(),
            path: path.to_string(),
        }
    }

    /// The new upload's id, once the engine answered. Cancel-safe: if this future
    /// is dropped, the guard still holds the task.
    async fn upload_id(&mut self) -> Result<String> {
        let Some(task) = self.task.as_mut() else {
            return Err(Error::internal("multipart copy created twice"));
        };
        let joined = task.await;
        self.task = None;
        joined.map_err(|e| Error::internal("CreateMultipartUpload task failed").with_source(e))?
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let requests = self.requests.clone();
        let path = std::mem::take(&mut self.path);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Ok(Ok(upload_id)) = task.await {
                    abort_upload(&requests, &path, &upload_id).await;
                }
            });
        }
    }
}

async fn abort_upload(requests: &Requester, path: &str, upload_id: &str) {
    let call = Call::new(http::Method::DELETE, path.to_string()).query("uploadId", upload_id);
    match requests.send_ok(&call).await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchUpload") => {}
        Err(e) => tracing::warn!(error = %e, upload_id, "aborting a multipart copy failed"),
    }
}

/// The source's metadata a multipart copy carries over.
struct SourceHead {
    size: u64,
    etag: Option<String>,
    headers: Vec<(String, String)>,
}

impl S3Backend {
    pub(super) async fn server_copy(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        options: &ServerCopyOptions,
    ) -> Result<ServerCopy> {
        if !self.verbatim_paths()
            && (has_dot_segment(from.1.as_str()) || has_dot_segment(to.1.as_str()))
        {
            return Ok(ServerCopy::Unsupported);
        }
        if options.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let copied = if options.size > self.multipart_copy_threshold {
            self.multipart_copy(from, to, options).await
        } else {
            self.copy_whole(from, to, options.size).await
        };
        match copied {
            Ok(size) => {
                self.copies.objects.fetch_add(1, Ordering::Relaxed);
                if let Some(progress) = &options.progress {
                    progress(size);
                }
                Ok(ServerCopy::Copied { size })
            }
            Err(e) if refused(&e) => {
                tracing::info!(error = %e, "the S3 engine refuses server-side copies");
                Ok(ServerCopy::Unsupported)
            }
            Err(e) => Err(e),
        }
    }

    /// One CopyObject.
    async fn copy_whole(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        size: u64,
    ) -> Result<u64> {
        let call = Call::new(
            http::Method::PUT,
            object_path(to.0.as_str(), Some(to.1.as_str())),
        )
        .header("x-amz-copy-source", copy_source(from.0, from.1))
        .work(size);
        let body = self.requests.send_ok(&call).await?;
        reject_error_body(&body)?;
        Ok(size)
    }

    async fn head_source(&self, bucket: &BucketName, key: &ObjectKey) -> Result<SourceHead> {
        let response = self
            .raw_request(http::Method::HEAD, bucket, key, None)
            .await?;
        let headers = response.headers();
        let size = header(headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut carried = Vec::new();
        for (name, value) in headers {
            let name = name.as_str();
            let keep = name.starts_with("x-amz-meta-")
                || matches!(
                    name,
                    "content-type"
                        | "cache-control"
                        | "content-disposition"
                        | "content-encoding"
                        | "content-language"
                        | "expires"
                );
            if let (true, Ok(value)) = (keep, value.to_str()) {
                carried.push((name.to_string(), value.to_string()));
            }
        }
        Ok(SourceHead {
            size,
            etag: header(headers, "etag").map(str::to_string),
            headers: carried,
        })
    }

    /// CreateMultipartUpload, UploadPartCopy × n, CompleteMultipartUpload; aborted
    /// on failure, cancel or drop.
    async fn multipart_copy(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        options: &ServerCopyOptions,
    ) -> Result<u64> {
        let source = self.head_source(from.0, from.1).await?;
        if source.size <= self.multipart_copy_threshold {
            return self.copy_whole(from, to, source.size).await;
        }
        if options.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let path = object_path(to.0.as_str(), Some(to.1.as_str()));
        let mut create = Call::new(http::Method::POST, path.clone()).query("uploads", "");
        for (name, value) in &source.headers {
            create = create.header(name, value.clone());
        }
        // The create runs in its own task, so an upload created while this future
        // is dropped is still aborted (`CreateGuard`). A cancel meanwhile is seen
        // once the id is known: the upload is aborted before `cancelled` returns.
        let mut creating = CreateGuard::start(&self.requests, &path, create);
        let upload_id = creating.upload_id().await?;
        drop(creating);
        let guard = AbortOnDrop {
            requests: self.requests.clone(),
            path: path.clone(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        if options.cancel.is_cancelled() {
            guard.abort().await;
            return Err(cancelled());
        }
        let result = self
            .copy_parts(from, &path, &upload_id, &source, options)
            .await;
        match result {
            Ok(()) => {
                guard.disarm();
                self.copies
                    .multipart_objects
                    .fetch_add(1, Ordering::Relaxed);
                Ok(source.size)
            }
            Err(e) => {
                guard.abort().await;
                Err(e)
            }
        }
    }

    async fn copy_parts(
        &self,
        from: (&BucketName, &ObjectKey),
        path: &str,
        upload_id: &str,
        source: &SourceHead,
        options: &ServerCopyOptions,
    ) -> Result<()> {
        let part = part_size(source.size, self.multipart_copy_threshold);
        let ranges = part_ranges(source.size, part);
        let copy_source = copy_source(from.0, from.1);
        let mut calls = Vec::with_capacity(ranges.len());
        for (i, range) in ranges.iter().enumerate() {
            let mut call = Call::new(http::Method::PUT, path.to_string())
                .query("partNumber", (i + 1).to_string())
                .query("uploadId", upload_id)
                .header("x-amz-copy-source", copy_source.clone())
                .header(
                    "x-amz-copy-source-range",
                    format!("bytes={}-{}", range.start, range.end - 1),
                )
                .work(range.end - range.start);
            if let Some(etag) = &source.etag {
                call = call.header("x-amz-copy-source-if-match", etag.clone());
            }
            calls.push((i, range.end - range.start, call));
        }
        let mut parts = futures::stream::iter(calls)
            .map(|(i, len, call)| self.copy_part(i, len, call))
            .buffer_unordered(PARTS_IN_FLIGHT);
        let mut etags: Vec<Option<String>> = vec![None; ranges.len()];
        let mut done = 0u64;
        loop {
            let next = tokio::select! {
                biased;
                _ = options.cancel.cancelled() => return Err(cancelled()),
                next = parts.next() => next,
            };
            let Some(copied) = next else { break };
            let (i, len, etag) = copied?;
            etags[i] = Some(etag);
            done += len;
            self.copies.parts.fetch_add(1, Ordering::Relaxed);
            if let Some(progress) = &options.progress {
                progress(done);
            }
        }
        drop(parts);
        if options.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            let etag = etag
                .as_deref()
                .ok_or_else(|| Error::internal("multipart copy part missing"))?;
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                super::tags::escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let complete = Call::new(http::Method::POST, path.to_string())
            .query("uploadId", upload_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(xml))
            .work(source.size);
        let body = self.requests.send_ok(&complete).await?;
        reject_error_body(&body)
    }

    /// One UploadPartCopy: `(index, length, ETag)`.
    async fn copy_part(&self, i: usize, len: u64, call: Call) -> Result<(usize, u64, String)> {
        let body = self.requests.send_ok(&call).await?;
        reject_error_body(&body)?;
        let etag = parse_xml::<CopyPartResult>(&body)?.etag;
        Ok((i, len, etag))
    }

    /// The multipart uploads of `bucket` started and neither completed nor aborted
    /// (the first 1000, ListMultipartUploads): what a failed or cancelled multipart
    /// write would leave behind.
    ///
    /// # Errors
    /// Backend failures (`NoSuchBucket`, transport errors).
    pub async fn pending_uploads(&self, bucket: &BucketName) -> Result<Vec<PendingUpload>> {
        let call =
            Call::new(http::Method::GET, object_path(bucket.as_str(), None)).query("uploads", "");
        let body = self.requests.send_ok(&call).await?;
        let parsed: ListUploadsResult = parse_xml(&body)?;
        Ok(parsed
            .upload
            .into_iter()
            .map(|u| PendingUpload {
                key: u.key,
                upload_id: u.upload_id,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits() {
        // A lowered threshold: parts of that size (12 MiB at 5 MiB → 3 parts).
        assert_eq!(part_size(12 << 20, 5 << 20), 5 << 20);
        assert_eq!(part_ranges(12 << 20, 5 << 20).len(), 3);
        // The default: 512 MiB parts, more once 10 000 would not do.
        assert_eq!(
            part_size(6 << 30, DEFAULT_MULTIPART_COPY_THRESHOLD),
            512 << 20
        );
        let huge = 5u64 << 40;
        let part = part_size(huge, DEFAULT_MULTIPART_COPY_THRESHOLD);
        assert!(part_ranges(huge, part).len() as u64 <= MAX_PARTS);
        assert!((MIN_PART..=MAX_PART).contains(&part));
        let ranges = part_ranges(11, 5);
        assert_eq!(ranges, vec![0..5, 5..10, 10..11]);
    }

    #[test]
    fn error_documents_in_200_answers_fail() {
        let e = reject_error_body(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
        )
        .expect_err("an error document");
        assert_eq!(e.code(), Some("InternalError"));
        assert!(
            reject_error_body(b"<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>").is_ok()
        );
        assert!(reject_error_body(b"").is_ok());
        assert_eq!(
            copy_source(
                &BucketName::try_from("src").expect("bucket"),
                &ObjectKey::try_from("a b/ü?.bin").expect("key")
            ),
            "/src/a%20b/%C3%BC%3F.bin"
        );
    }
}

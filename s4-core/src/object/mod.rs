//! Object operations on the [`S4`] handle: list, get (ranged, conditional), head,
//! streaming put, and delete with folder semantics.
//!
//! Nothing here buffers an object: reads hand out a byte stream, writes consume one.
//! A put that fails, is cancelled, or whose future is dropped leaves no object and
//! no multipart parts behind.
//!
//! Layout: the options and results, listing and HEAD here; reads in `read.rs`,
//! writes in `write.rs`, deletes in `delete.rs`.

mod delete;
mod read;
mod write;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, GetRange, GetResultPayload, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::events::ObjectChange;
use crate::names::{BucketName, ObjectKey, Prefix};
use crate::storage::{Page, PageRequest, RawObject};
use crate::S4;

/// The threshold below which a single PUT is used (every backend), and the size of
/// one multipart part unless the backend takes smaller ones
/// ([`crate::Backend::part_size`]: the local backend writes 1 MiB parts).
///
/// S3's smallest allowed part: a put holds at most `PARTS_IN_FLIGHT` parts in
/// flight and one being filled (20–25 MiB), which keeps a 1 GiB upload through the
/// daemon under 64 MiB of resident memory. Bigger parts bought no throughput on the
/// S3 engine measured (`benches/README.md`): it is CPU-bound, not request-bound,
/// at this size.
pub const PART_SIZE: usize = 5 << 20;
/// Parts uploaded concurrently by one streaming put.
pub const PARTS_IN_FLIGHT: usize = 4;

use crate::io::{ByteRange, ProgressFn};
pub use crate::storage::ObjectInfo;

/// Options of [`S4::get_object`].
#[derive(Debug, Clone, Default)]
pub struct GetObjectOptions {
    /// Only part of the object.
    pub range: Option<ByteRange>,
    /// Fail with [`ErrorKind::NotModified`] when the ETag matches.
    pub if_none_match: Option<String>,
}

impl GetObjectOptions {
    /// Requests a byte range.
    pub fn with_range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }
    /// Makes the read conditional on the ETag differing from `etag`.
    pub fn with_if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }
}

/// An object being read: metadata, the byte range served, and the bytes.
pub struct ObjectStream {
    /// Metadata of the whole object.
    pub info: ObjectInfo,
    /// The byte range this stream yields (the whole object without a range request).
    pub range: Range<u64>,
    /// Whether a range was requested (and so only `range` is served).
    pub partial: bool,
    /// The bytes; ends early with an error if the backend fails mid-stream.
    /// Dropping the stream stops the read.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Options of [`S4::put_object`].
#[derive(Clone, Default)]
pub struct PutObjectOptions {
    /// Fail with [`ErrorKind::TooLarge`] as soon as more bytes than this arrive.
    pub max_size: Option<u64>,
    /// Content type to store (where the backend keeps one). Without one (or with
    /// `application/octet-stream`) the type is guessed from the key's extension.
    pub content_type: Option<String>,
    /// User metadata to store (`x-amz-meta-<name>` on S3), `(name, value)`.
    pub metadata: Vec<(String, String)>,
    /// Called as bytes are consumed (at most once per received chunk).
    pub progress: Option<ProgressFn>,
    /// Cancels the put ([`ErrorKind::Cancelled`]); nothing is left behind.
    pub cancel: Option<CancellationToken>,
    /// Multipart parts uploaded concurrently (default [`PARTS_IN_FLIGHT`]); lower
    /// it to bound memory when several puts run at once (transfers do).
    pub parts_in_flight: Option<usize>,
    /// ETag to record instead of the content's own (local and memory backends):
    /// an S3 multipart upload completed from staged parts keeps S3's
    /// `"<md5 of part md5s>-N"` form (see [`crate::multipart`]).
    pub etag: Option<String>,
}

impl std::fmt::Debug for PutObjectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutObjectOptions")
            .field("max_size", &self.max_size)
            .field("content_type", &self.content_type)
            .field("metadata", &self.metadata)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

impl PutObjectOptions {
    /// Sets the size limit.
    pub fn with_max_size(mut self, max: u64) -> Self {
        self.max_size = Some(max);
        self
    }
    /// Sets the stored content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
    /// Adds one user metadata entry (`name` is stored lower-case, as S3 does).
    pub fn with_metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }
    /// Sets the progress callback.
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }
    /// Sets the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
    /// Sets the number of parts uploaded concurrently (at least 1).
    pub fn with_parts_in_flight(mut self, parts: usize) -> Self {
        self.parts_in_flight = Some(parts.max(1));
        self
    }
}

/// What a successful put wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// Bytes written.
    pub size: u64,
    /// ETag of the new object, when reported.
    pub etag: Option<String>,
}

/// One key a delete could not remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key, as the backend listed it: text, because a listed key need not be
    /// a valid [`ObjectKey`] (an S3 engine may hold keys with control characters,
    /// which are refused here with `InvalidKey`).
    pub key: String,
    /// Backend error code (e.g. `AccessDenied`).
    pub code: String,
    /// Backend message.
    pub message: String,
}

/// Result of [`S4::delete_object`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// `true` when objects existed under the folder prefix and were deleted as a folder;
    /// `false` for a single-key delete.
    pub folder: bool,
    /// Keys deleted (only valid keys are ever deleted; see [`DeleteFailure`] for
    /// the listed keys that were refused, which may not be).
    pub deleted: Vec<ObjectKey>,
    /// Keys that could not be deleted.
    pub failed: Vec<DeleteFailure>,
}

/// Options of [`S4::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// Key prefix (folder prefixes end in `/`).
    pub prefix: Prefix,
    /// Maximum entries per page (objects and folders), 1..=2000.
    pub max_keys: usize,
    /// Continuation token from a previous page.
    pub continuation_token: Option<String>,
    /// Group by `/` into folders (`true` for browsing).
    pub delimited: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            prefix: Prefix::root(),
            max_keys: 500,
            continuation_token: None,
            delimited: true,
        }
    }
}

impl ListOptions {
    /// Sets the prefix.
    pub fn with_prefix(mut self, prefix: Prefix) -> Self {
        self.prefix = prefix;
        self
    }
    /// Sets the page size (clamped to 1..=2000).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.clamp(1, 2000);
        self
    }
    /// Sets the continuation token.
    pub fn with_continuation_token(mut self, token: Option<String>) -> Self {
        self.continuation_token = token;
        self
    }
    /// Lists recursively (no folders) when `false`.
    pub fn with_delimited(mut self, delimited: bool) -> Self {
        self.delimited = delimited;
        self
    }
}

fn info_from(key: &str, meta: &object_store::ObjectMeta, attributes: &Attributes) -> ObjectInfo {
    let mut content_type = None;
    let mut storage_class = None;
    let mut metadata = Vec::new();
    for (attribute, value) in attributes {
        match attribute {
            Attribute::ContentType => content_type = Some(value.to_string()),
            Attribute::StorageClass => storage_class = Some(value.to_string()),
            Attribute::Metadata(name) => metadata.push((name.to_string(), value.to_string())),
            _ => {}
        }
    }
    ObjectInfo {
        key: key.to_string(),
        size: meta.size,
        last_modified: Some(meta.last_modified),
        etag: meta.e_tag.clone(),
        content_type,
        metadata,
        storage_class,
    }
}

impl S4 {
    async fn store_for(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>> {
        self.backend().store(bucket).await
    }

    /// Where the object `key` lives: a path in the bucket's object store (after the
    /// backend has confined it), or, for a key that is not a plain path on a backend
    /// that holds such keys, the backend's raw access.
    async fn address(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Address> {
        match key.to_path() {
            Some(path) => {
                self.backend().confine(bucket, key).await?;
                Ok(Address::Store(self.store_for(bucket).await?, path))
            }
            None if self.backend().holds_any_key() => Ok(Address::Raw),
            None => Err(key.portable_path().err().unwrap_or_else(|| {
                Error::internal("a key without a path must fail portable_path")
            })),
        }
    }

    /// Refuses a prefix the backend cannot hold (`InvalidPrefix`).
    pub(crate) fn check_prefix(&self, prefix: &Prefix) -> Result<()> {
        if prefix.is_portable() || self.backend().holds_any_key() {
            return Ok(());
        }
        Err(Error::invalid(
            "Prefix must not start with '/' or contain empty, '.' or '..' folders on this storage backend.",
        )
        .with_code("InvalidPrefix"))
    }

    /// Lists one page of a bucket. Does not buffer beyond the page.
    ///
    /// # Errors
    /// `NoSuchBucket`, `InvalidContinuationToken`, or backend failures.
    pub async fn list_objects(&self, bucket: &BucketName, options: &ListOptions) -> Result<Page> {
        self.check_prefix(&options.prefix)?;
        let request = PageRequest {
            prefix: options.prefix.clone(),
            delimited: options.delimited,
            max_keys: options.max_keys.clamp(1, 2000),
            token: options.continuation_token.clone(),
        };
        self.backend().list_page(bucket, &request).await
    }

    /// Metadata of one object (a HEAD).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when absent; backend failures.
    pub async fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectInfo> {
        let (store, path) = match self.address(bucket, key).await? {
            Address::Store(store, path) => (store, path),
            Address::Raw => {
                let raw = self.backend().get_raw(bucket, key, None, true).await;
                return raw.map(|r| r.info).map_err(head_not_found);
            }
        };
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = store
            .get_opts(&path, options)
            .await
            .map_err(|e| head_not_found(Error::from(e)))?;
        Ok(info_from(key.as_str(), &result.meta, &result.attributes))
    }
}

/// What a HEAD reports for a missing key: every backend answers a bare `NotFound`
/// (a HEAD response has no error body).
fn head_not_found(e: Error) -> Error {
    if e.kind() == ErrorKind::NotFound && e.code() == Some("NoSuchKey") {
        e.with_code("NotFound")
    } else {
        e
    }
}

/// Where an object lives (see `S4::address`).
enum Address {
    Store(Arc<dyn ObjectStore>, object_store::path::Path),
    Raw,
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let etag = strip(etag);
    header
        .split(',')
        .any(|candidate| candidate.trim() == "*" || strip(candidate) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(ByteRange::Bounded(0, 9).resolve(100), Some(0..10));
        assert_eq!(ByteRange::Bounded(90, 200).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Bounded(100, 200).resolve(100), None);
        assert_eq!(ByteRange::Bounded(5, 4).resolve(100), None);
        assert_eq!(ByteRange::From(99).resolve(100), Some(99..100));
        assert_eq!(ByteRange::From(100).resolve(100), None);
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(1000).resolve(100), Some(0..100));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}

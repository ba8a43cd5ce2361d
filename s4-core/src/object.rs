//! Object operations on the [`S4`] handle: list, get (ranged, conditional), head,
//! streaming put, and delete with folder semantics.
//!
//! Nothing here buffers an object: reads hand out a byte stream, writes consume one.
//! A put that fails, is cancelled, or whose future is dropped leaves no object and
//! no multipart parts behind.

use std::io::{Read, Seek, SeekFrom};
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

/// Size of one multipart part, and the threshold below which a single PUT is used.
///
/// S3's smallest allowed part: a put holds at most `PARTS_IN_FLIGHT + 1` parts
/// (25 MiB), which keeps a 1 GiB upload through the daemon under 64 MiB of
/// resident memory. Bigger parts bought no throughput on the S3 engine measured
/// (`benches/README.md`): it is CPU-bound, not request-bound, at this size.
pub const PART_SIZE: usize = 5 << 20;
/// Parts uploaded concurrently by one streaming put.
pub const PARTS_IN_FLIGHT: usize = 4;
/// Read buffer for local-file object streams.
const FILE_CHUNK: usize = 1 << 20;
/// Keys per backend multi-delete batch.
const DELETE_BATCH: usize = 1000;

pub use crate::storage::ObjectInfo;

/// A byte range request, before it is resolved against the object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..=end` (end clamped to the object).
    Bounded(u64, u64),
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves against `size`; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::Bounded(start, end) if start <= end && start < size => {
                Some(start..end.min(size - 1) + 1)
            }
            ByteRange::From(start) if start < size => Some(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

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

/// Callback receiving the cumulative number of bytes consumed by a put.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

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
    /// The key.
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
    /// Keys deleted.
    pub deleted: Vec<String>,
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

/// Streams a local file's `range` in [`FILE_CHUNK`] pieces, one chunk read ahead.
///
/// Each chunk is one blocking-pool call reading straight into the chunk's own
/// buffer (object_store's file stream reads 8 KiB per blocking call, and
/// `tokio::fs::File` copies out of a private buffer in 256 KiB hops at most). The
/// next chunk is read while the consumer sends the current one, so the disk and
/// the network overlap; at most two chunks are held. Dropping the stream stops
/// reading after the chunk in flight.
fn file_stream(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, Result<Bytes>> {
    type Read = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;
    fn read_next(mut file: std::fs::File, pos: u64, end: u64, seek: bool) -> Read {
        tokio::task::spawn_blocking(move || {
            if seek {
                file.seek(SeekFrom::Start(pos))?;
            }
            let want = (end - pos).min(FILE_CHUNK as u64);
            // `read_to_end` fills the spare capacity without zeroing it first.
            let mut chunk = Vec::with_capacity(want as usize);
            (&mut file).take(want).read_to_end(&mut chunk)?;
            Ok((file, chunk))
        })
    }
    if range.start >= range.end {
        return futures::stream::empty().boxed();
    }
    let first = read_next(file, range.start, range.end, true);
    futures::stream::try_unfold(
        (Some(first), range.start, range.end),
        |(pending, pos, end)| async move {
            let Some(pending) = pending else {
                return Ok(None);
            };
            let (file, chunk) = pending
                .await
                .map_err(|e| Error::internal("file read task failed").with_source(e))?
                .map_err(|e| Error::from_io(e, "cannot read object"))?;
            if chunk.is_empty() {
                // The file shrank under us: fail rather than serve a short body.
                return Err(Error::internal(
                    "object file ended before its recorded size",
                ));
            }
            let next = pos + chunk.len() as u64;
            let pending = (next < end).then(|| read_next(file, next, end, false));
            Ok(Some((Bytes::from(chunk), (pending, next, end))))
        },
    )
    .boxed()
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

    /// Opens an object for streaming, optionally a byte range of it and
    /// conditionally on its ETag. Does not buffer; dropping the stream cancels the read.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::NotModified`],
    /// [`ErrorKind::RangeNotSatisfiable`] (with [`Error::object_size`]), backend failures.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        options: GetObjectOptions,
    ) -> Result<ObjectStream> {
        let address = self.address(bucket, key).await?;
        let mut get = GetOptions {
            if_none_match: options.if_none_match.clone(),
            ..GetOptions::default()
        };
        if let Some(range) = options.range {
            // Resolve against the real size first, so an unsatisfiable range is a
            // clean error on every backend.
            let head = self.head_object(bucket, key).await?;
            if let (Some(tag), Some(etag)) = (&options.if_none_match, &head.etag) {
                if etag_matches(tag, etag) {
                    return Err(Error::new(ErrorKind::NotModified, "Not modified"));
                }
            }
            let resolved = range.resolve(head.size).ok_or_else(|| {
                Error::new(
                    ErrorKind::RangeNotSatisfiable,
                    "Requested range not satisfiable",
                )
                .with_object_size(head.size)
            })?;
            get.range = Some(GetRange::Bounded(resolved));
        }
        let (store, path) = match address {
            Address::Store(store, path) => (store, path),
            Address::Raw => {
                let range = match &get.range {
                    Some(GetRange::Bounded(r)) => Some(r.clone()),
                    _ => None,
                };
                let raw = self.backend().get_raw(bucket, key, range, false).await?;
                if let (Some(tag), Some(etag)) = (&options.if_none_match, &raw.info.etag) {
                    if etag_matches(tag, etag) {
                        return Err(Error::new(ErrorKind::NotModified, "Not modified"));
                    }
                }
                let RawObject { info, range, body } = raw;
                return Ok(ObjectStream {
                    info,
                    range,
                    partial: options.range.is_some(),
                    body,
                });
            }
        };
        let result = store.get_opts(&path, get).await?;
        let info = info_from(key.as_str(), &result.meta, &result.attributes);
        let range = result.range.clone();
        let body = match result.payload {
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(Error::from).boxed(),
        };
        Ok(ObjectStream {
            info,
            range,
            partial: options.range.is_some(),
            body,
        })
    }

    /// Writes an object from a byte stream, overwriting any existing object.
    ///
    /// Small bodies (under [`PART_SIZE`]) are written with one PUT; larger ones as a
    /// multipart upload with [`PARTS_IN_FLIGHT`] parts in flight, so memory stays
    /// bounded whatever the size. On any failure (including an error item from
    /// `body`, the size limit, cancellation, or the returned future being dropped)
    /// the upload is aborted and nothing is left behind. Emits an
    /// [`ObjectChange::Created`] on success.
    ///
    /// # Errors
    /// [`ErrorKind::TooLarge`], [`ErrorKind::Cancelled`], the error `body` yielded,
    /// backend failures (`StorageFull` for a full backend).
    pub async fn put_object<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: S,
        options: PutObjectOptions,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let path = key.portable_path()?;
        self.backend().confine(bucket, key).await?;
        let store = self.store_for(bucket).await?;
        match self
            .write_object(store, path, bucket, key, body, options)
            .await
        {
            Ok(outcome) => {
                self.publish(ObjectChange::created(bucket, key.as_str(), outcome.size));
                Ok(outcome)
            }
            Err(e) => {
                self.backend()
                    .discard_write_traces(bucket, key.as_str())
                    .await;
                Err(e)
            }
        }
    }

    /// The write of [`Self::put_object`]: aborts a multipart upload on failure (the
    /// caller removes other traces and publishes the change).
    async fn write_object<S>(
        &self,
        store: Arc<dyn ObjectStore>,
        path: object_store::path::Path,
        bucket: &BucketName,
        key: &ObjectKey,
        body: S,
        options: PutObjectOptions,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let mut attributes = Attributes::new();
        if self.backend().supports_attributes() {
            let content_type = options
                .content_type
                .clone()
                .filter(|ct| !ct.is_empty() && ct != "application/octet-stream")
                .or_else(|| crate::storage::guess_content_type(key.as_str()));
            if let Some(ct) = content_type {
                attributes.insert(Attribute::ContentType, AttributeValue::from(ct));
            }
            for (name, value) in &options.metadata {
                validate_metadata(name, value)?;
                attributes.insert(
                    Attribute::Metadata(name.clone().into()),
                    AttributeValue::from(value.clone()),
                );
            }
        }
        if let Some(etag) = &options.etag {
            if self.backend().name() != "s3" {
                attributes.insert(
                    crate::storage::objmeta::etag_override_attribute(),
                    AttributeValue::from(etag.clone()),
                );
            }
        }
        let cancel = options.cancel.clone().unwrap_or_default();
        let parts_in_flight = options.parts_in_flight.unwrap_or(PARTS_IN_FLIGHT).max(1);
        let mut body = std::pin::pin!(body);
        let mut total: u64 = 0;
        let cancelled = || Error::new(ErrorKind::Cancelled, "Upload aborted by client");
        macro_rules! next {
            () => {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Some(Err(cancelled())),
                    item = body.next() => item,
                }
            };
        }
        let account = |chunk: &Bytes, total: &mut u64| -> Result<()> {
            *total += chunk.len() as u64;
            if let Some(max) = options.max_size {
                if *total > max {
                    return Err(Error::new(ErrorKind::TooLarge, "File too large"));
                }
            }
            if let Some(progress) = &options.progress {
                progress(*total);
            }
            Ok(())
        };

        // Collect up to one part: small objects take a single PUT.
        let mut first: Vec<Bytes> = Vec::new();
        let mut first_len = 0usize;
        let mut ended = false;
        while first_len < PART_SIZE {
            match next!() {
                Some(Ok(chunk)) => {
                    account(&chunk, &mut total)?;
                    first_len += chunk.len();
                    first.push(chunk);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            let payload = PutPayload::from_iter(first);
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            let result = store.put_opts(&path, payload, opts).await?;
            return Ok(PutOutcome {
                size: total,
                etag: result.e_tag,
            });
        }

        let upload = store
            .put_multipart_opts(
                &path,
                PutMultipartOptions {
                    attributes,
                    ..PutMultipartOptions::default()
                },
            )
            .await?;
        let mut guard = AbortGuard {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
            traces: Some((
                Arc::clone(self.backend()),
                bucket.clone(),
                key.as_str().to_string(),
            )),
        };
        let result: Result<()> = async {
            let writer = guard.writer()?;
            for chunk in first {
                writer.put(chunk);
            }
            loop {
                guard.writer()?.wait_for_capacity(parts_in_flight).await?;
                match next!() {
                    Some(Ok(chunk)) => {
                        account(&chunk, &mut total)?;
                        guard.writer()?.put(chunk);
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        }
        .await;
        let writer = guard.take()?;
        match result {
            Ok(()) => {
                let result = writer.finish().await?;
                Ok(PutOutcome {
                    size: total,
                    etag: result.e_tag,
                })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting multipart upload failed");
                }
                Err(e)
            }
        }
    }

    /// Deletes an object, or a folder.
    ///
    /// `key` ending in `/` deletes every object under it. Otherwise the object `key`
    /// and every object under `key/` are deleted (but not `key.csv`). When nothing
    /// exists under the folder prefix a single delete of `key` is issued, which
    /// succeeds even if `key` does not exist. Backend multi-delete is used in batches.
    /// Emits one [`ObjectChange::Removed`] per deleted key.
    ///
    /// # Errors
    /// Listing or deletion calls rejected by the backend. Per-key failures are
    /// reported in [`DeleteOutcome::failed`].
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<DeleteOutcome> {
        let folder = Prefix::folder_of(key.as_str());
        if !folder.is_portable() && !self.backend().holds_any_key() {
            return Err(key
                .portable_path()
                .err()
                .unwrap_or_else(|| Error::invalid("Invalid folder key.").with_code("InvalidKey")));
        }
        let mut outcome = DeleteOutcome::default();
        // Pages are deleted as they arrive: memory stays bounded by one batch
        // whatever the size of the folder, and the listing continues after the
        // last key of the previous page, which deleting does not disturb.
        let mut token = None;
        loop {
            let page = self
                .backend()
                .list_page(
                    bucket,
                    &PageRequest {
                        prefix: folder.clone(),
                        delimited: false,
                        max_keys: DELETE_BATCH,
                        token: token.take(),
                    },
                )
                .await?;
            if !page.objects.is_empty() {
                outcome.folder = true;
                let keys = page.objects.into_iter().map(|o| o.key).collect();
                self.delete_batch(bucket, keys, &mut outcome).await?;
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if key.as_str().ends_with('/') {
            return Ok(outcome);
        }
        // The key itself: counted only when it existed; deleting a missing key
        // is not an error (idempotent delete).
        let existed = match self.head_object(bucket, key).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) if !outcome.folder => return Err(e),
            Err(_) => false,
        };
        if !existed && outcome.folder {
            return Ok(outcome);
        }
        match self.address(bucket, key).await? {
            Address::Store(store, path) => match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            Address::Raw => self.backend().delete_raw(bucket, key).await?,
        }
        if existed {
            self.publish(ObjectChange::removed(bucket, key.as_str()));
            outcome.deleted.push(key.as_str().to_string());
        }
        Ok(outcome)
    }

    /// Deletes one listed batch: plain paths with the backend's multi-delete, other
    /// keys (S3 only) one by one. Per-key failures go to `outcome.failed`.
    async fn delete_batch(
        &self,
        bucket: &BucketName,
        keys: Vec<String>,
        outcome: &mut DeleteOutcome,
    ) -> Result<()> {
        let store = self.store_for(bucket).await?;
        let mut paths = Vec::with_capacity(keys.len());
        let mut raw = Vec::new();
        for k in keys {
            match ObjectKey::parse(&k).ok().and_then(|key| key.to_path()) {
                Some(path) => paths.push(path),
                None => raw.push(k),
            }
        }
        let mut results =
            store.delete_stream(futures::stream::iter(paths.clone().into_iter().map(Ok)).boxed());
        let mut done = 0usize;
        while let Some(result) = results.next().await {
            match result {
                Ok(path) => {
                    let k = path.to_string();
                    self.publish(ObjectChange::removed(bucket, &k));
                    outcome.deleted.push(k);
                }
                Err(e) => {
                    let fallback = paths.get(done).map(|p| p.to_string());
                    let (k, code, message) = delete_failure(&e, fallback.as_ref());
                    outcome.failed.push(DeleteFailure {
                        key: k,
                        code,
                        message,
                    });
                }
            }
            done += 1;
        }
        drop(results);
        for k in raw {
            let deleted = match ObjectKey::parse(&k) {
                Ok(key) if self.backend().holds_any_key() => {
                    self.backend().delete_raw(bucket, &key).await
                }
                Ok(key) => Err(key
                    .portable_path()
                    .err()
                    .unwrap_or_else(|| Error::invalid("Invalid key").with_code("InvalidKey"))),
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) => {
                    self.publish(ObjectChange::removed(bucket, &k));
                    outcome.deleted.push(k);
                }
                Err(e) => outcome.failed.push(DeleteFailure {
                    code: e.code().unwrap_or("InternalError").to_string(),
                    message: e.to_string(),
                    key: k,
                }),
            }
        }
        Ok(())
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

fn delete_failure(e: &object_store::Error, fallback: Option<&String>) -> (String, String, String) {
    let (key, code) = match e {
        object_store::Error::PermissionDenied { path, .. } => (path.clone(), "AccessDenied"),
        object_store::Error::NotFound { path, .. } => (path.clone(), "NoSuchKey"),
        _ => (fallback.cloned().unwrap_or_default(), "InternalError"),
    };
    (key, code.to_string(), e.to_string())
}

/// User metadata travels as HTTP headers on S3: names are header tokens, values
/// visible ASCII; 2 KiB in all, as S3 allows.
fn validate_metadata(name: &str, value: &str) -> Result<()> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(
            Error::invalid(format!("Invalid metadata name {name:?}")).with_code("InvalidArgument")
        );
    }
    if !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) || name.len() + value.len() > 2048 {
        return Err(
            Error::invalid(format!("Invalid metadata value for {name:?}"))
                .with_code("InvalidArgument"),
        );
    }
    Ok(())
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let etag = strip(etag);
    header
        .split(',')
        .any(|candidate| candidate.trim() == "*" || strip(candidate) == etag)
}

/// Aborts a multipart upload whose put future is dropped before finishing, and
/// removes the write's traces.
struct AbortGuard {
    writer: Option<WriteMultipart>,
    traces: Option<(Arc<dyn crate::Backend>, BucketName, String)>,
}

impl AbortGuard {
    fn writer(&mut self) -> Result<&mut WriteMultipart> {
        self.writer
            .as_mut()
            .ok_or_else(|| Error::internal("multipart writer already consumed"))
    }
    fn take(&mut self) -> Result<WriteMultipart> {
        self.traces = None;
        self.writer
            .take()
            .ok_or_else(|| Error::internal("multipart writer already consumed"))
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let traces = self.traces.take();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(error = %e, "aborting dropped multipart upload failed");
                    }
                    if let Some((backend, bucket, key)) = traces {
                        backend.discard_write_traces(&bucket, &key).await;
                    }
                });
            }
        }
    }
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

//! S3-style multipart uploads (create, upload part, complete, abort, list) over
//! any backend, for the S3 protocol endpoint.
//!
//! Parts are staged outside the visible namespace: as files under the local
//! backend's `<data>/.s4/multipart` (written as they stream in, never held in
//! memory), or in memory for the other backends (the memory backend holds its
//! objects there anyway). Nothing is visible in the bucket until
//! [`MultipartUploads::complete`], which streams the parts in order into one
//! atomic [`S4::put_object`] (so the usual change event is published) recording
//! S3's multipart ETag `"<md5 of the part MD5s>-N"`. An aborted or never
//! completed upload leaves nothing in the bucket; staged files of a previous run
//! are removed at start.
//!
//! Upload records live in this process only: a restart forgets pending uploads.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};

use crate::error::{Error, ErrorKind, Result};
use crate::names::{BucketName, ObjectKey};
use crate::object::{PutObjectOptions, PutOutcome};
use crate::storage::objmeta;
use crate::S4;

/// Smallest size of a part that is not the last one (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Largest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Largest part (S3's 5 GiB).
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// One staged part as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number (1..=10000).
    pub part_number: u32,
    /// ETag of the part (quoted hex MD5).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When the part was uploaded.
    pub last_modified: DateTime<Utc>,
}

/// One pending upload as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// Upload id.
    pub upload_id: String,
    /// Object key.
    pub key: String,
    /// When the upload was created.
    pub initiated: DateTime<Utc>,
}

/// A part named by a complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number.
    pub part_number: u32,
    /// ETag the client received for it (checked when given).
    pub etag: Option<String>,
}

/// Options of a new upload: what the completed object will carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadOptions {
    /// Content type.
    pub content_type: Option<String>,
    /// User metadata `(name, value)`.
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug)]
enum PartData {
    File(PathBuf),
    Memory(Vec<Bytes>),
}

#[derive(Debug)]
struct Part {
    info: PartInfo,
    md5: [u8; 16],
    data: PartData,
}

#[derive(Debug)]
struct Upload {
    bucket: BucketName,
    key: ObjectKey,
    options: UploadOptions,
    initiated: DateTime<Utc>,
    parts: BTreeMap<u32, Part>,
    /// Set by complete/abort: parts arriving later are refused.
    closed: bool,
}

/// The pending multipart uploads of one [`S4`] handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MultipartUploads {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    s4: S4,
    /// Staging directory for part files; `None`: parts in memory.
    dir: Option<PathBuf>,
    uploads: Mutex<HashMap<String, Upload>>,
}

fn no_such_upload() -> Error {
    Error::not_found(
        "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
    .with_code("NoSuchUpload")
}

fn lock_poisoned() -> Error {
    Error::internal("multipart upload registry lock poisoned")
}

fn random_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

impl MultipartUploads {
    /// The uploads of `s4`: parts are staged under the backend's data directory
    /// when it has one (removing what a previous run left there), else in memory.
    ///
    /// # Errors
    /// When the staging directory cannot be prepared.
    pub async fn new(s4: S4) -> Result<Self> {
        let dir = s4
            .backend()
            .data_dir()
            .map(|d| d.join(".s4").join("multipart"));
        if let Some(dir) = &dir {
            match tokio::fs::remove_dir_all(dir).await {
                Ok(()) => tracing::info!("removed staged parts of unfinished multipart uploads"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::from_io(e, "cannot clear the multipart staging")),
            }
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::from_io(e, "cannot create the multipart staging"))?;
        }
        Ok(MultipartUploads {
            inner: Arc::new(Inner {
                s4,
                dir,
                uploads: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn with_upload<T>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        f: impl FnOnce(&mut Upload) -> Result<T>,
    ) -> Result<T> {
        let mut uploads = self.inner.uploads.lock().map_err(|_| lock_poisoned())?;
        match uploads.get_mut(upload_id) {
            Some(u) if &u.bucket == bucket && &u.key == key && !u.closed => f(u),
            _ => Err(no_such_upload()),
        }
    }

    /// Starts an upload of `key`; returns its id.
    ///
    /// # Errors
    /// `NoSuchBucket`, an invalid key for the backend, backend failures.
    pub async fn create(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        options: UploadOptions,
    ) -> Result<String> {
        key.portable_path()?;
        self.inner.s4.backend().head_bucket(bucket).await?;
        self.inner.s4.backend().confine(bucket, key).await?;
        let id = random_id();
        let mut uploads = self.inner.uploads.lock().map_err(|_| lock_poisoned())?;
        uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.clone(),
                key: key.clone(),
                options,
                initiated: Utc::now(),
                parts: BTreeMap::new(),
                closed: false,
            },
        );
        Ok(id)
    }

    /// Stages one part from a byte stream (replacing a previous part of the same
    /// number). A body that fails leaves the previous part, if any, in place.
    ///
    /// # Errors
    /// `NoSuchUpload`, `InvalidArgument` (part number), `EntityTooLarge`, the
    /// error the body yielded, staging I/O failures.
    pub async fn upload_part<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: S,
    ) -> Result<PartInfo>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(Error::invalid(format!(
                "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
            ))
            .with_code("InvalidArgument"));
        }
        self.with_upload(bucket, key, upload_id, |_| Ok(()))?;
        let (md5, size, data) = match &self.inner.dir {
            Some(dir) => {
                let path = dir.join(format!("{upload_id}-{part_number}-{}", random_id()));
                let (md5, size, path) = stage_file(path, body).await?;
                (md5, size, PartData::File(path))
            }
            None => {
                let (md5, size, chunks) = stage_memory(body).await?;
                (md5, size, PartData::Memory(chunks))
            }
        };
        let info = PartInfo {
            part_number,
            etag: objmeta::single_etag(&md5),
            size,
            last_modified: Utc::now(),
        };
        let part = Part {
            info: info.clone(),
            md5,
            data,
        };
        let staged = {
            let mut uploads = self.inner.uploads.lock().map_err(|_| lock_poisoned())?;
            match uploads.get_mut(upload_id) {
                Some(u) if !u.closed => Ok(u.parts.insert(part_number, part)),
                // Aborted or completed meanwhile: drop what was staged.
                _ => Err(part),
            }
        };
        match staged {
            Ok(old) => {
                if let Some(old) = old {
                    discard(old.data).await;
                }
                Ok(info)
            }
            Err(part) => {
                discard(part.data).await;
                Err(no_such_upload())
            }
        }
    }

    /// Completes an upload: checks the named parts (ascending numbers, known,
    /// ETags matching, every part but the last at least [`MIN_PART_SIZE`]),
    /// streams them into one atomic write of the object, then drops the upload.
    ///
    /// # Errors
    /// `NoSuchUpload`, `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`,
    /// `MalformedXML` (no parts), put failures.
    pub async fn complete(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<PutOutcome> {
        if parts.is_empty() {
            return Err(Error::invalid(
                "You must specify at least one part in a complete multipart upload request.",
            )
            .with_code("MalformedXML"));
        }
        // Validate and take the parts under the lock; the upload is closed so no
        // part can be replaced while the object is written.
        let (chosen, options, unused) = self.with_upload(bucket, key, upload_id, |u| {
            let mut last = 0u32;
            for p in parts {
                if p.part_number <= last {
                    return Err(Error::invalid(
                        "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
                    )
                    .with_code("InvalidPartOrder"));
                }
                last = p.part_number;
            }
            for p in parts {
                let staged = u.parts.get(&p.part_number).ok_or_else(invalid_part)?;
                if let Some(etag) = &p.etag {
                    if etag.trim_matches('"') != staged.info.etag.trim_matches('"') {
                        return Err(invalid_part());
                    }
                }
            }
            for (i, p) in parts.iter().enumerate() {
                let size = u.parts.get(&p.part_number).map_or(0, |s| s.info.size);
                if i + 1 < parts.len() && size < MIN_PART_SIZE {
                    return Err(Error::invalid(
                        "Your proposed upload is smaller than the minimum allowed size",
                    )
                    .with_code("EntityTooSmall"));
                }
            }
            u.closed = true;
            let mut chosen = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(part) = u.parts.remove(&p.part_number) {
                    chosen.push(part);
                }
            }
            let unused: Vec<Part> = std::mem::take(&mut u.parts).into_values().collect();
            Ok((chosen, u.options.clone(), unused))
        })?;
        for part in unused {
            discard(part.data).await;
        }
        let digests: Vec<[u8; 16]> = chosen.iter().map(|p| p.md5).collect();
        let etag = objmeta::multipart_etag(&digests);
        let mut put = PutObjectOptions {
            content_type: options.content_type,
            etag: Some(etag.clone()),
            ..PutObjectOptions::default()
        };
        put.metadata = options.metadata;
        let result = self
            .inner
            .s4
            .put_object(bucket, key, parts_stream(&chosen), put)
            .await;
        for part in chosen {
            discard(part.data).await;
        }
        if let Ok(mut uploads) = self.inner.uploads.lock() {
            uploads.remove(upload_id);
        }
        let mut outcome = result?;
        if outcome.etag.is_none() || self.inner.s4.backend().name() != "s3" {
            outcome.etag = Some(etag);
        }
        Ok(outcome)
    }

    /// Aborts an upload and removes its staged parts.
    ///
    /// # Errors
    /// `NoSuchUpload`.
    pub async fn abort(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &str) -> Result<()> {
        let parts = self.with_upload(bucket, key, upload_id, |u| {
            u.closed = true;
            Ok(std::mem::take(&mut u.parts))
        })?;
        if let Ok(mut uploads) = self.inner.uploads.lock() {
            uploads.remove(upload_id);
        }
        for part in parts.into_values() {
            discard(part.data).await;
        }
        Ok(())
    }

    /// The staged parts of an upload, by part number.
    ///
    /// # Errors
    /// `NoSuchUpload`.
    pub fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>> {
        self.with_upload(bucket, key, upload_id, |u| {
            Ok(u.parts.values().map(|p| p.info.clone()).collect())
        })
    }

    /// The pending uploads of a bucket whose key starts with `prefix`, by key then
    /// initiation time.
    pub fn list_uploads(&self, bucket: &BucketName, prefix: &str) -> Vec<UploadInfo> {
        let Ok(uploads) = self.inner.uploads.lock() else {
            return Vec::new();
        };
        let mut out: Vec<UploadInfo> = uploads
            .iter()
            .filter(|(_, u)| &u.bucket == bucket && !u.closed && u.key.as_str().starts_with(prefix))
            .map(|(id, u)| UploadInfo {
                upload_id: id.clone(),
                key: u.key.as_str().to_string(),
                initiated: u.initiated,
            })
            .collect();
        out.sort_by(|a, b| (&a.key, a.initiated).cmp(&(&b.key, b.initiated)));
        out
    }
}

fn invalid_part() -> Error {
    Error::invalid(
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    )
    .with_code("InvalidPart")
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::TooLarge,
        "Your proposed upload exceeds the maximum allowed size",
    )
    .with_code("EntityTooLarge")
}

/// Writes a part's stream to a new file at `path` with the shared writer,
/// hashing it; returns `(md5, size, path)`. On failure, or when the future is
/// dropped midway, the file is removed.
async fn stage_file<S>(path: PathBuf, body: S) -> Result<([u8; 16], u64, PathBuf)>
where
    S: Stream<Item = Result<Bytes>> + Send,
{
    let fail = |e| Error::from_io(e, "cannot stage the part");
    let (file, staging) = crate::io::StagingFile::create(path, fail).await?;
    let spec = crate::io::StreamWrite {
        max: Some(MAX_PART_SIZE),
        too_large,
        md5: true,
        ..Default::default()
    };
    let written = crate::io::write_stream(file, body, spec, fail).await?;
    drop(written.file);
    let md5 = written.md5.unwrap_or_default();
    Ok((md5, written.size, staging.keep()))
}

/// Collects a part's stream in memory (memory and S3 backends), hashing it.
async fn stage_memory<S>(body: S) -> Result<([u8; 16], u64, Vec<Bytes>)>
where
    S: Stream<Item = Result<Bytes>> + Send,
{
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut chunks = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > MAX_PART_SIZE {
            return Err(too_large());
        }
        md5.update(&chunk);
        chunks.push(chunk);
    }
    Ok((md5.finalize().into(), size, chunks))
}

/// The bytes of the parts in order; staged files through the shared file
/// streamer ([`crate::io::file_stream`]).
fn parts_stream(parts: &[Part]) -> BoxStream<'static, Result<Bytes>> {
    let streams: Vec<BoxStream<'static, Result<Bytes>>> = parts
        .iter()
        .map(|part| match &part.data {
            PartData::Memory(chunks) => {
                futures::stream::iter(chunks.clone().into_iter().map(Ok)).boxed()
            }
            PartData::File(path) => {
                let (path, size) = (path.clone(), part.info.size);
                futures::stream::once(async move {
                    let file = tokio::fs::File::open(&path)
                        .await
                        .map_err(|e| Error::from_io(e, "cannot read a staged part"))?;
                    Ok::<_, Error>(crate::io::file_stream(
                        file.into_std().await,
                        0..size,
                        crate::io::FileStreamErrors {
                            read: "cannot read a staged part".into(),
                            short: "a staged part is shorter than it was uploaded".into(),
                        },
                    ))
                })
                .try_flatten()
                .boxed()
            }
        })
        .collect();
    futures::stream::iter(streams).flatten().boxed()
}

async fn discard(data: PartData) {
    if let PartData::File(path) = data {
        let _ = tokio::fs::remove_file(path).await;
    }
}

#[cfg(test)]
mod tests;

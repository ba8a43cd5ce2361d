//! The local backend's object store: reads and writes of one bucket's files with
//! their metadata ([`super::objmeta`]) kept in extended attributes.
//!
//! Writes never leave a stray file: the bytes go to a staging file in the data
//! directory's hidden `.s4/tmp` directory (outside every bucket, so no listing or
//! search ever walks it; emptied at start-up), its MD5 is computed while it is
//! written, the metadata is set on it, it is `fsync`ed (unless turned off), and one
//! `rename(2)` publishes data and metadata together; the directory entry is then
//! `fsync`ed. Listing, deleting and copying are delegated to `object_store`'s
//! [`LocalFileSystem`] (a delete unlinks the file and so its metadata).

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::FutureExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use super::objmeta::{self, StoredMeta};
use crate::io::StagingFile;

type OsResult<T> = object_store::Result<T>;

const STORE: &str = "LocalFileSystem";

fn os_err(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

fn join_err(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::JoinError { source: e }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> OsResult<T> + Send + 'static,
) -> OsResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(join_err)?
}

/// Options of a local bucket store.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    /// Staging directory (same file system as the buckets).
    pub(crate) tmp: PathBuf,
    /// `fsync` files and directory entries before acknowledging a write.
    pub(crate) fsync: bool,
}

/// One bucket's objects. See the module documentation.
#[derive(Debug)]
pub(crate) struct LocalObjects {
    inner: Arc<LocalFileSystem>,
    config: Arc<StoreConfig>,
}

impl LocalObjects {
    pub(crate) fn new(inner: Arc<LocalFileSystem>, config: Arc<StoreConfig>) -> Self {
        Self { inner, config }
    }
}

impl fmt::Display for LocalObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalObjects({})", self.inner)
    }
}

/// A staging file ([`StagingFile`]: removed unless it was published).
struct Staged {
    staging: StagingFile,
    file: File,
}

impl Staged {
    fn create(config: &StoreConfig) -> std::io::Result<Self> {
        let (file, staging) = StagingFile::create_in_blocking(&config.tmp)?;
        Ok(Staged { staging, file })
    }

    fn file(&self) -> std::io::Result<&File> {
        Ok(&self.file)
    }

    /// Sets the metadata, syncs, and renames the file to `dest` (blocking).
    fn publish(self, dest: &FsPath, meta: &StoredMeta, fsync: bool) -> std::io::Result<()> {
        let file = &self.file;
        objmeta::write_meta_fd(file, meta)?;
        if fsync {
            file.sync_all()?;
        }
        let parent = dest.parent();
        if let Some(parent) = parent {
            if let Err(e) = std::fs::create_dir_all(parent) {
                // A file where a folder is needed: the key conflicts with an object.
                return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                    std::io::Error::from(std::io::ErrorKind::NotADirectory)
                } else {
                    e
                });
            }
        }
        std::fs::rename(self.staging.path(), dest)?;
        self.staging.keep();
        if fsync {
            if let Some(parent) = parent {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(())
    }
}

fn to_utc(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
}

/// The ETag of a file written before metadata was kept (or by another program):
/// `object_store`'s `LocalFileSystem` form (inode, mtime, size), the same in
/// listings and reads. `object_store` is pinned to an exact version for it; the
/// test `legacy_etag_is_object_stores` checks the form still matches.
pub(crate) fn legacy_etag(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{:x}-{:x}-{:x}\"", meta.ino(), mtime, meta.len())
}

fn not_found(location: &Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::NotFound {
        path: location.to_string(),
        source: Box::new(source),
    }
}

fn resolve_range(range: &GetRange, size: u64) -> Option<std::ops::Range<u64>> {
    match range {
        GetRange::Bounded(r) if r.start < r.end && r.start < size => Some(r.start..r.end.min(size)),
        GetRange::Offset(start) if *start < size => Some(*start..size),
        GetRange::Suffix(n) => Some(size.saturating_sub(*n)..size),
        _ => None,
    }
}

/// Opens an object file with its metadata (blocking).
pub(crate) fn open_object(
    path: &FsPath,
    location: &Path,
) -> OsResult<(File, std::fs::Metadata, StoredMeta)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => not_found(location, e),
        _ => os_err(e),
    })?;
    let meta = file.metadata().map_err(os_err)?;
    if meta.is_dir() {
        return Err(not_found(
            location,
            std::io::Error::new(std::io::ErrorKind::NotFound, "is a directory"),
        ));
    }
    let stored = objmeta::read_meta_fd(&file)
        .map_err(os_err)?
        .unwrap_or_default();
    Ok((file, meta, stored))
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> OsResult<PutResult> {
        if !matches!(opts.mode, object_store::PutMode::Overwrite) {
            return Err(object_store::Error::NotImplemented {
                operation: "conditional put".into(),
                implementer: "LocalObjects".into(),
            });
        }
        let dest = self.inner.path_to_filesystem(location)?;
        let config = Arc::clone(&self.config);
        blocking(move || {
            let staged = Staged::create(&config).map_err(os_err)?;
            let file = staged.file().map_err(os_err)?;
            let mut offset = 0u64;
            for chunk in payload.iter() {
                file.write_all_at(chunk, offset).map_err(os_err)?;
                offset += chunk.len() as u64;
            }
            let etag = objmeta::etag_for(
                &opts.attributes,
                objmeta::single_etag(&objmeta::md5_of(payload.iter().map(|b| &b[..]))),
            );
            let meta = StoredMeta::from_attributes(&opts.attributes, etag.clone());
            staged.publish(&dest, &meta, config.fsync).map_err(os_err)?;
            Ok(PutResult {
                e_tag: Some(etag),
                version: None,
                extensions: Default::default(),
            })
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> OsResult<Box<dyn MultipartUpload>> {
        let dest = self.inner.path_to_filesystem(location)?;
        let config = Arc::clone(&self.config);
        let staged = {
            let config = Arc::clone(&config);
            blocking(move || Staged::create(&config).map_err(os_err)).await?
        };
        Ok(Box::new(LocalMultipart {
            state: Arc::new(UploadState {
                staged: Mutex::new(Some(staged)),
                digests: Mutex::new(Vec::new()),
            }),
            dest,
            config,
            attributes: opts.attributes,
            offset: 0,
            parts: 0,
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> OsResult<GetResult> {
        let path = self.inner.path_to_filesystem(location)?;
        let location = location.clone();
        blocking(move || {
            let (file, meta, stored) = open_object(&path, &location)?;
            let etag = stored.etag.clone().unwrap_or_else(|| legacy_etag(&meta));
            let object = ObjectMeta {
                location: location.clone(),
                last_modified: to_utc(&meta),
                size: meta.len(),
                e_tag: Some(etag),
                version: None,
            };
            options.check_preconditions(&object)?;
            let range = match &options.range {
                None => 0..object.size,
                Some(r) => {
                    resolve_range(r, object.size).ok_or_else(|| object_store::Error::Generic {
                        store: STORE,
                        source: format!("range not satisfiable for {location}").into(),
                    })?
                }
            };
            Ok(GetResult {
                payload: GetResultPayload::File(file, path),
                attributes: stored.attributes(location.as_ref()),
                meta: object,
                range,
                extensions: Default::default(),
            })
        })
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, OsResult<Path>>,
    ) -> BoxStream<'static, OsResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, OsResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> OsResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> OsResult<()> {
        // A copy carries the extended attributes only through the staging path.
        let src = self.inner.path_to_filesystem(from)?;
        let dest = self.inner.path_to_filesystem(to)?;
        if !matches!(options.mode, object_store::CopyMode::Overwrite) {
            return self.inner.copy_opts(from, to, options).await;
        }
        let config = Arc::clone(&self.config);
        let from = from.clone();
        blocking(move || {
            let (mut file, _, stored) = open_object(&src, &from)?;
            let staged = Staged::create(&config).map_err(os_err)?;
            let mut out = staged.file().map_err(os_err)?;
            std::io::copy(&mut file, &mut out).map_err(os_err)?;
            if let Some(tags) = objmeta::get_fd(&file, objmeta::TAGS_XATTR).map_err(os_err)? {
                objmeta::set_fd(out, objmeta::TAGS_XATTR, &tags).map_err(os_err)?;
            }
            staged.publish(&dest, &stored, config.fsync).map_err(os_err)
        })
        .await
    }
}

#[derive(Debug)]
struct UploadState {
    staged: Mutex<Option<Staged>>,
    digests: Mutex<Vec<Option<[u8; 16]>>>,
}

impl fmt::Debug for Staged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Staged")
            .field("path", &self.staging.path())
            .finish()
    }
}

/// A multipart write into one staging file: parts are written at their offsets
/// (concurrently), each part's MD5 computed as it is written.
#[derive(Debug)]
struct LocalMultipart {
    state: Arc<UploadState>,
    dest: PathBuf,
    config: Arc<StoreConfig>,
    attributes: object_store::Attributes,
    offset: u64,
    parts: usize,
}

fn lock_err() -> object_store::Error {
    os_err(std::io::Error::other("upload state lock poisoned"))
}

fn aborted() -> object_store::Error {
    os_err(std::io::Error::other("upload already completed or aborted"))
}

#[async_trait]
impl MultipartUpload for LocalMultipart {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        let index = self.parts;
        self.offset += data.content_length() as u64;
        self.parts += 1;
        let state = Arc::clone(&self.state);
        async move {
            tokio::task::spawn_blocking(move || -> OsResult<()> {
                // Clone the handle so parts write concurrently (pwrite needs no lock).
                let file = {
                    let staged = state.staged.lock().map_err(|_| lock_err())?;
                    let staged = staged.as_ref().ok_or_else(aborted)?;
                    staged.file().and_then(File::try_clone).map_err(os_err)?
                };
                let mut at = offset;
                for chunk in data.iter() {
                    file.write_all_at(chunk, at).map_err(os_err)?;
                    at += chunk.len() as u64;
                }
                let digest = objmeta::md5_of(data.iter().map(|b| &b[..]));
                let mut digests = state.digests.lock().map_err(|_| lock_err())?;
                if digests.len() <= index {
                    digests.resize(index + 1, None);
                }
                digests[index] = Some(digest);
                Ok(())
            })
            .await
            .map_err(join_err)?
        }
        .boxed()
    }

    async fn complete(&mut self) -> OsResult<PutResult> {
        let state = Arc::clone(&self.state);
        let dest = self.dest.clone();
        let fsync = self.config.fsync;
        let attributes = std::mem::take(&mut self.attributes);
        let parts = self.parts;
        blocking(move || {
            let staged = state
                .staged
                .lock()
                .map_err(|_| lock_err())?
                .take()
                .ok_or_else(aborted)?;
            let digests = state.digests.lock().map_err(|_| lock_err())?;
            let all: Option<Vec<[u8; 16]>> = digests.iter().copied().collect();
            let all = all
                .filter(|d| d.len() == parts)
                .ok_or_else(|| os_err(std::io::Error::other("a part was not written")))?;
            let etag = objmeta::etag_for(&attributes, objmeta::multipart_etag(&all));
            let meta = StoredMeta::from_attributes(&attributes, etag.clone());
            staged.publish(&dest, &meta, fsync).map_err(os_err)?;
            Ok(PutResult {
                e_tag: Some(etag),
                version: None,
                extensions: Default::default(),
            })
        })
        .await
    }

    async fn abort(&mut self) -> OsResult<()> {
        let state = Arc::clone(&self.state);
        blocking(move || {
            // Dropping the staging file removes it.
            drop(state.staged.lock().map_err(|_| lock_err())?.take());
            Ok(())
        })
        .await
    }
}

impl Drop for LocalMultipart {
    fn drop(&mut self) {
        let Ok(mut staged) = self.state.staged.lock() else {
            return;
        };
        if let Some(staged) = staged.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn_blocking(move || drop(staged))),
                Err(_) => drop(staged),
            }
        }
    }
}

/// Empties the staging directory (start-up: whatever is there is from a crash).
pub(crate) fn sweep_staging(tmp: &FsPath) -> std::io::Result<usize> {
    let mut removed = 0;
    match std::fs::read_dir(tmp) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(tmp)?;
    Ok(removed)
}

/// Reads the tags of the object file `path` (blocking).
pub(crate) fn read_tags(path: &FsPath, location: &Path) -> OsResult<Vec<(String, String)>> {
    let (file, _, _) = open_object(path, location)?;
    Ok(objmeta::get_fd(&file, objmeta::TAGS_XATTR)
        .map_err(os_err)?
        .map(|raw| objmeta::decode_tags(&raw))
        .unwrap_or_default())
}

/// Replaces the tags of the object file `path` (blocking; empty removes them).
pub(crate) fn write_tags(
    path: &FsPath,
    location: &Path,
    tags: &[(String, String)],
    fsync: bool,
) -> OsResult<()> {
    let (file, _, _) = open_object(path, location)?;
    if tags.is_empty() {
        objmeta::remove_fd(&file, objmeta::TAGS_XATTR).map_err(os_err)?;
    } else {
        objmeta::set_fd(&file, objmeta::TAGS_XATTR, &objmeta::encode_tags(tags)).map_err(os_err)?;
    }
    if fsync {
        file.sync_all().map_err(os_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::storage::LocalBackend;
    use crate::{BucketName, ListOptions, ObjectKey, S4};

    /// A file written before metadata was kept (or by another program) reads back
    /// with a type guessed from its extension and the old ETag form, the same in
    /// listings and reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn legacy_files_keep_working() {
        let dir = tempfile::tempdir().expect("tmp");
        let s4 = S4::builder()
            .backend(LocalBackend::open(dir.path()).await.expect("open"))
            .build();
        let bucket = BucketName::try_from("legacy").expect("bucket");
        s4.create_bucket(&bucket).await.expect("create");
        std::fs::create_dir_all(dir.path().join("legacy/a")).expect("mkdir");
        std::fs::write(dir.path().join("legacy/a/old.json"), b"{}").expect("write");
        let key = ObjectKey::try_from("a/old.json").expect("key");
        let info = s4.head_object(&bucket, &key).await.expect("head");
        assert_eq!(info.content_type.as_deref(), Some("application/json"));
        let etag = info.etag.expect("etag");
        assert!(etag.contains('-'), "old form: {etag}");
        let page = s4
            .list_objects(
                &bucket,
                &ListOptions::default().with_prefix(crate::Prefix::try_from("a/").expect("prefix")),
            )
            .await
            .expect("list");
        assert_eq!(page.objects[0].etag.as_deref(), Some(etag.as_str()));
        let page = s4
            .list_objects(
                &bucket,
                &ListOptions::default()
                    .with_prefix(crate::Prefix::try_from("a/").expect("prefix"))
                    .with_delimited(false),
            )
            .await
            .expect("list");
        assert_eq!(page.objects[0].etag.as_deref(), Some(etag.as_str()));
    }

    /// Files without stored metadata carry `object_store`'s own ETag form, so an
    /// `object_store` upgrade that changes it fails here rather than in listings.
    #[tokio::test]
    async fn legacy_etag_is_object_stores() {
        use object_store::ObjectStoreExt;

        use super::{legacy_etag, LocalFileSystem, Path};
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("plain.bin"), b"written elsewhere").expect("write");
        let fs = LocalFileSystem::new_with_prefix(dir.path()).expect("fs");
        let theirs = fs.head(&Path::from("plain.bin")).await.expect("head").e_tag;
        let meta = std::fs::metadata(dir.path().join("plain.bin")).expect("metadata");
        assert_eq!(theirs, Some(legacy_etag(&meta)));
    }

    /// Start-up empties the staging directory; `.s4` is never a bucket.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn staging_is_swept_and_hidden() {
        let dir = tempfile::tempdir().expect("tmp");
        let tmp = dir.path().join(".s4/tmp");
        std::fs::create_dir_all(&tmp).expect("mkdir");
        std::fs::write(tmp.join("0123.part"), b"partial").expect("write");
        let s4 = S4::builder()
            .backend(LocalBackend::open(dir.path()).await.expect("open"))
            .build();
        assert_eq!(std::fs::read_dir(&tmp).expect("read").count(), 0);
        let buckets = s4.list_buckets().await.expect("buckets");
        assert!(buckets.buckets.is_empty(), "{buckets:?}");
    }
}

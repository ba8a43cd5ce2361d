//! The local-filesystem backend, S4's embedded default.
//!
//! Buckets are directories directly under a data directory; objects are files below
//! them, with `/` in keys mapping to sub-directories. Object I/O is delegated to
//! `object_store`'s [`LocalFileSystem`], which writes atomically (staging file, then
//! rename) and removes directories emptied by deletes.
//!
//! Listing is done here, one directory level at a time, instead of through
//! `object_store`: a delimited page then costs one `readdir` of the folder plus a
//! `stat` of only the entries on the page, whatever the size of the bucket, and a
//! recursive page walks only the folders under the prefix, in key order.
//!
//! ## Confinement
//!
//! No client text becomes a file-system path except through [`confined`], which
//! joins plain segments (never empty, `.`, `..`, or containing `/` or NUL) one by
//! one under the bucket directory, so an absolute prefix or key cannot replace the
//! base. Bucket directories must be real directories, listings never show or
//! enter symbolic links, and before any object read, write or delete the deepest
//! existing ancestor of the object's path is resolved and must still lie inside
//! the bucket ([`Backend::confine`]), so a link planted in a bucket by someone with
//! file-system access leads nowhere.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use super::local_store::{self, LocalObjects, StoreConfig};
use super::memory::bucket_not_empty;
use super::{
    decode_token, no_such_bucket, page_sorted, split_prefix, Backend, BucketInfo, BucketListing,
    CreatedBucket, ObjectSummary, Page, PageRequest, Tag,
};
use crate::error::{Error, ErrorKind, Result};
use crate::names::{BucketName, ObjectKey};

mod listing;

use listing::*;

/// Options of [`LocalBackend::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// `fsync` every written file and its directory entry before a write is
    /// acknowledged (`S4_FSYNC`, default `true`).
    pub fsync: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions { fsync: true }
    }
}

/// Buckets as directories under a data directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    // A std lock: never held across an await point.
    stores: RwLock<HashMap<String, Arc<LocalFileSystem>>>,
    listings: Arc<ListingCache>,
    config: Arc<StoreConfig>,
}

impl LocalBackend {
    /// Opens (creating if needed) the data directory `root`.
    ///
    /// # Errors
    /// When the directory cannot be created or resolved.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with(root, LocalOptions::default()).await
    }

    /// Opens (creating if needed) the data directory `root` with `options`, and
    /// removes staging files a crashed process left in `<root>/.s4/tmp`.
    ///
    /// # Errors
    /// When the directory cannot be created or resolved.
    pub async fn open_with(root: impl Into<PathBuf>, options: LocalOptions) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await.map_err(|e| {
            Error::from_io(
                e,
                format!("cannot create data directory {}", root.display()),
            )
        })?;
        let root = tokio::fs::canonicalize(&root).await.map_err(|e| {
            Error::from_io(
                e,
                format!("cannot resolve data directory {}", root.display()),
            )
        })?;
        let tmp = root.join(".s4").join("tmp");
        let swept = {
            let tmp = tmp.clone();
            tokio::task::spawn_blocking(move || local_store::sweep_staging(&tmp))
                .await
                .map_err(|e| Error::internal("staging sweep failed").with_source(e))?
                .map_err(|e| Error::from_io(e, "cannot prepare the staging directory"))?
        };
        if swept > 0 {
            tracing::info!(files = swept, "removed staging files of interrupted writes");
        }
        Ok(Self {
            root,
            stores: RwLock::new(HashMap::new()),
            listings: Arc::default(),
            config: Arc::new(StoreConfig {
                tmp,
                fsync: options.fsync,
            }),
        })
    }

    /// The resolved data directory.
    pub fn root(&self) -> &FsPath {
        &self.root
    }

    fn bucket_dir(&self, bucket: &BucketName) -> Result<PathBuf> {
        // Names reach here unvalidated on some routes: never let one leave the root.
        let name = bucket.as_str();
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
            return Err(no_such_bucket());
        }
        Ok(self.root.join(name))
    }

    async fn bucket_exists(&self, bucket: &BucketName) -> Result<PathBuf> {
        let dir = self.bucket_dir(bucket)?;
        // `symlink_metadata`: a bucket is a real directory, never a link to one.
        match tokio::fs::symlink_metadata(&dir).await {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(no_such_bucket()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such_bucket()),
            Err(e) => Err(Error::from_io(e, "cannot access bucket")),
        }
    }

    fn cached_store(&self, bucket: &BucketName, dir: &FsPath) -> Result<Arc<LocalFileSystem>> {
        if let Ok(stores) = self.stores.read() {
            if let Some(store) = stores.get(bucket.as_str()) {
                return Ok(Arc::clone(store));
            }
        }
        let store = Arc::new(
            LocalFileSystem::new_with_prefix(dir)
                .map_err(Error::from)?
                .with_automatic_cleanup(true),
        );
        if let Ok(mut stores) = self.stores.write() {
            stores.insert(bucket.as_str().to_string(), Arc::clone(&store));
        }
        Ok(store)
    }
}

/// Longest file name the file systems S4 runs on accept (bytes).
const NAME_MAX: usize = 255;

/// Part size of streamed writes above [`crate::PART_SIZE`]: parts are written in
/// place (`pwrite` at their offset), so any size works, and 1 MiB (the chunk of a
/// file read) keeps four concurrent 1 GiB transfers far below 64 MiB of resident
/// memory (`benches/README.md`).
const LOCAL_PART_SIZE: usize = 1 << 20;

/// `base` joined with the `/`-separated plain segments of `rel` (the empty text is
/// `base` itself); `None` when any segment is empty, `.`, `..`, holds a NUL or is
/// longer than a file name can be.
/// Each segment is a single path component, so the result is always below `base`.
fn confined(base: &FsPath, rel: &str) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    if rel.is_empty() {
        return Some(path);
    }
    for segment in rel.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains('\0')
            || segment.len() > NAME_MAX
        {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

/// Whether the deepest existing ancestor of `path` (itself included) resolves to a
/// place inside `bucket_dir` (blocking). Symbolic links leading out fail this.
fn resolves_inside(bucket_dir: &FsPath, path: &FsPath) -> bool {
    let mut probe = path;
    loop {
        match std::fs::canonicalize(probe) {
            Ok(real) => return real.starts_with(bucket_dir),
            Err(_) => match probe.parent() {
                Some(parent) if parent.starts_with(bucket_dir) => probe = parent,
                _ => return false,
            },
        }
    }
}

fn invalid_prefix() -> Error {
    Error::invalid("Prefix must not start with '/' or contain empty, '.' or '..' folders on this storage backend.")
        .with_code("InvalidPrefix")
}

/// `LocalFileSystem` stages multipart uploads as `<name>#<digits>`; those are not objects.
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn to_utc(time: std::io::Result<SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from).unwrap_or_default()
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn part_size(&self) -> usize {
        LOCAL_PART_SIZE
    }

    fn allows_key_folder_overlap(&self) -> bool {
        false
    }

    async fn list_buckets(&self) -> Result<BucketListing> {
        let root = self.root.clone();
        let buckets = tokio::task::spawn_blocking(move || -> Result<Vec<BucketInfo>> {
            let mut out = Vec::new();
            let read =
                std::fs::read_dir(&root).map_err(|e| Error::from_io(e, "cannot list buckets"))?;
            for entry in read.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if BucketName::parse(&name).is_err() {
                    continue; // S4's own state (".s4") and foreign directories.
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_dir() {
                    continue;
                }
                let created = meta.created().or_else(|_| meta.modified());
                out.push(BucketInfo {
                    name,
                    created: Some(to_utc(created)),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
        .map_err(|e| Error::internal("bucket listing task failed").with_source(e))??;
        Ok(BucketListing {
            buckets,
            owner: None,
        })
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.bucket_exists(bucket).await.map(|_| ())
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket> {
        let dir = self.bucket_dir(bucket)?;
        match tokio::fs::create_dir(&dir).await {
            Ok(()) => Ok(CreatedBucket {
                location: Some(format!("/{bucket}")),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::new(
                ErrorKind::AlreadyExists,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with_code("BucketAlreadyOwnedByYou")),
            Err(e) => Err(Error::from_io(e, "cannot create bucket")),
        }
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        let dir = self.bucket_exists(bucket).await?;
        // remove_dir refuses non-empty directories atomically: no check-then-act race.
        match tokio::fs::remove_dir(&dir).await {
            Ok(()) => {
                if let Ok(mut stores) = self.stores.write() {
                    stores.remove(bucket.as_str());
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Err(bucket_not_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such_bucket()),
            Err(e) => Err(Error::from_io(e, "cannot delete bucket")),
        }
    }

    async fn store(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>> {
        let dir = self.bucket_exists(bucket).await?;
        let inner = self.cached_store(bucket, &dir)?;
        Ok(Arc::new(LocalObjects::new(inner, Arc::clone(&self.config))) as Arc<dyn ObjectStore>)
    }

    async fn get_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        self.confine(bucket, key).await?;
        let dir = self.bucket_exists(bucket).await?;
        let store = self.cached_store(bucket, &dir)?;
        let location = key.portable_path()?;
        let path = store.path_to_filesystem(&location)?;
        tokio::task::spawn_blocking(move || local_store::read_tags(&path, &location))
            .await
            .map_err(|e| Error::internal("tag task failed").with_source(e))?
            .map_err(Error::from)
    }

    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[Tag],
    ) -> Result<()> {
        self.confine(bucket, key).await?;
        let dir = self.bucket_exists(bucket).await?;
        let store = self.cached_store(bucket, &dir)?;
        let location = key.portable_path()?;
        let path = store.path_to_filesystem(&location)?;
        let tags = tags.to_vec();
        let fsync = self.config.fsync;
        tokio::task::spawn_blocking(move || local_store::write_tags(&path, &location, &tags, fsync))
            .await
            .map_err(|e| Error::internal("tag task failed").with_source(e))?
            .map_err(Error::from)
    }

    fn data_dir(&self) -> Option<&FsPath> {
        Some(&self.root)
    }

    async fn discard_write_traces(&self, bucket: &BucketName, key: &str) {
        let Ok(root) = self.bucket_dir(bucket) else {
            return;
        };
        let key = key.to_string();
        // rmdir only removes empty directories, so this never deletes data, and stops
        // at the first directory still in use (or at the bucket itself).
        let _ = tokio::task::spawn_blocking(move || {
            let mut dir = root.join(&key);
            while dir.pop() && dir.starts_with(&root) && dir != root {
                if std::fs::remove_dir(&dir).is_err() {
                    break;
                }
            }
        })
        .await;
    }

    async fn confine(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        let dir = self.bucket_exists(bucket).await?;
        let no_such_key =
            || Error::not_found("The specified key does not exist.").with_code("NoSuchKey");
        let path = confined(&dir, key.as_str()).ok_or_else(|| {
            key.portable_path().err().unwrap_or_else(|| {
                Error::invalid("Object key has a segment longer than 255 bytes.")
                    .with_code("InvalidKey")
            })
        })?;
        let inside = tokio::task::spawn_blocking(move || resolves_inside(&dir, &path))
            .await
            .map_err(|e| Error::internal("path check task failed").with_source(e))?;
        if inside {
            Ok(())
        } else {
            Err(no_such_key())
        }
    }

    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page> {
        let dir = self.bucket_exists(bucket).await?;
        let start_after = request.token.as_deref().map(decode_token).transpose()?;
        let request = request.clone();
        let cache = Arc::clone(&self.listings);
        tokio::task::spawn_blocking(move || {
            if request.delimited {
                list_dir_page(&cache, &dir, &request, start_after.as_deref())
            } else {
                walk_page(&cache, &dir, &request, start_after.as_deref())
            }
        })
        .await
        .map_err(|e| Error::internal("listing task failed").with_source(e))?
    }
}

#[cfg(test)]
mod tests;

/// Property tests of the confinement: whatever key or prefix validation accepts as
/// portable becomes a path of normal components under the bucket directory, and
/// no text at all can make [`confined`] leave its base.
#[cfg(test)]
mod proptests;

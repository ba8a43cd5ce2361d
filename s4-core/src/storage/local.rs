//! The local-filesystem backend, S4's embedded default.
//!
//! Buckets are directories directly under a data directory; objects are files below
//! them, with `/` in keys mapping to sub-directories. Object I/O is delegated to
//! `object_store`'s [`LocalFileSystem`], which writes atomically (staging file, then
//! rename) and removes directories emptied by deletes.
//!
//! Listing is done here, one directory level at a time, instead of through
//! `object_store`: a delimited page then costs one `readdir` of the folder plus a
//! `stat` of only the entries on the page, whatever the size of the bucket.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use super::memory::{bucket_not_empty, page_from_metas};
use super::{
    decode_token, no_such_bucket, page_sorted, split_prefix, Backend, BucketInfo, BucketListing,
    CreatedBucket, ObjectSummary, Page, PageRequest,
};
use crate::error::{Error, ErrorKind, Result};
use crate::names::BucketName;

/// Buckets as directories under a data directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    // A std lock: never held across an await point.
    stores: RwLock<HashMap<String, Arc<LocalFileSystem>>>,
}

impl LocalBackend {
    /// Opens (creating if needed) the data directory `root`.
    ///
    /// # Errors
    /// When the directory cannot be created or resolved.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
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
        Ok(Self {
            root,
            stores: RwLock::new(HashMap::new()),
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
        match tokio::fs::metadata(&dir).await {
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

/// The ETag `LocalFileSystem` reports for a file, so listings and reads agree.
fn local_etag(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{:x}-{:x}-{:x}\"", meta.ino(), mtime, meta.len())
}

/// Lists one directory level of a bucket (blocking; run on the blocking pool).
fn list_dir_page(
    bucket_dir: &FsPath,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Result<Page> {
    let (dir_part, leaf_prefix) = split_prefix(&request.prefix);
    let dir = bucket_dir.join(dir_part.trim_end_matches('/'));
    let read = match std::fs::read_dir(&dir) {
        Ok(read) => read,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Page::default())
        }
        Err(e) => return Err(Error::from_io(e, "cannot list bucket")),
    };
    let mut entries: Vec<(String, bool)> = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::from_io(e, "cannot list bucket"))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // Not UTF-8: cannot be an object key.
        };
        if !name.starts_with(leaf_prefix) || is_staging_name(&name) {
            continue;
        }
        // `file_type` comes from readdir's d_type: no stat per entry.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => continue,
        };
        let full = if is_dir {
            format!("{dir_part}{name}/")
        } else {
            format!("{dir_part}{name}")
        };
        entries.push((full, is_dir));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let (page, next_token) = page_sorted(entries.into_iter(), start_after, request.max_keys);
    let mut out = Page {
        next_token,
        ..Page::default()
    };
    for (name, is_dir) in page {
        if is_dir {
            out.prefixes.push(name);
            continue;
        }
        let path = bucket_dir.join(&name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // Deleted since readdir.
        };
        out.objects.push(ObjectSummary {
            last_modified: to_utc(meta.modified()),
            etag: Some(local_etag(&meta)),
            size: meta.len(),
            storage_class: "STANDARD".to_string(),
            key: name,
        });
    }
    Ok(out)
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn supports_attributes(&self) -> bool {
        false
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
        Ok(self.cached_store(bucket, &dir)? as Arc<dyn ObjectStore>)
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

    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page> {
        let dir = self.bucket_exists(bucket).await?;
        let start_after = request.token.as_deref().map(decode_token).transpose()?;
        if !request.delimited {
            let store = self.cached_store(bucket, &dir)?;
            let metas: Vec<_> = store
                .list(None)
                .try_filter(|m| {
                    futures::future::ready(m.location.as_ref().starts_with(&request.prefix))
                })
                .try_collect()
                .await?;
            return Ok(page_from_metas(metas, request, start_after.as_deref()));
        }
        let request = request.clone();
        tokio::task::spawn_blocking(move || list_dir_page(&dir, &request, start_after.as_deref()))
            .await
            .map_err(|e| Error::internal("listing task failed").with_source(e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging_name("file.bin#1"));
        assert!(is_staging_name("a#b#12"));
        assert!(!is_staging_name("a#b"));
        assert!(!is_staging_name("a#"));
        assert!(!is_staging_name("plain"));
    }
}

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

/// Directories with fewer entries are read on every page: that is cheap.
const CACHE_MIN_ENTRIES: usize = 1000;
/// Most names kept by the listing cache (about 15 bytes each).
const CACHE_MAX_NAMES: usize = 1_000_000;
/// A directory modified more recently than this is not cached: file-system
/// timestamps are coarse (a clock tick), so two changes within one tick could
/// leave the modification time unchanged. Past this age any change moves it.
const CACHE_SETTLE: Duration = Duration::from_secs(2);

/// What identifies one state of a directory's entry list: any entry added,
/// removed or renamed changes its modification (and change) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirStamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    nlink: u64,
}

impl DirStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        DirStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            nlink: meta.nlink(),
        }
    }
}

/// The sorted entry names of one directory, packed in one string: object names
/// as they are, sub-directories with a trailing `/` (so they sort as keys do).
/// Staging files and non-UTF-8 names are left out.
#[derive(Debug, Default)]
struct SortedNames {
    text: String,
    ends: Vec<u32>,
}

impl SortedNames {
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// Sorted names of large directories, reused while a directory is unchanged, so a
/// listing page costs a `stat` of the directory and of the entries on the page
/// instead of reading and sorting the whole directory every time.
#[derive(Debug, Default)]
struct ListingCache {
    // A std lock: held only to look up or swap an entry, never during I/O.
    dirs: Mutex<HashMap<PathBuf, (DirStamp, Arc<SortedNames>)>>,
}

impl ListingCache {
    fn get(&self, dir: &FsPath, stamp: DirStamp) -> Option<Arc<SortedNames>> {
        let dirs = self.dirs.lock().ok()?;
        match dirs.get(dir) {
            Some((cached, names)) if *cached == stamp => Some(Arc::clone(names)),
            _ => None,
        }
    }

    fn put(&self, dir: &FsPath, stamp: DirStamp, names: &Arc<SortedNames>) {
        let Ok(mut dirs) = self.dirs.lock() else {
            return;
        };
        dirs.remove(dir);
        if names.len() < CACHE_MIN_ENTRIES || names.len() > CACHE_MAX_NAMES {
            return;
        }
        let held: usize = dirs.values().map(|(_, n)| n.len()).sum();
        if held + names.len() > CACHE_MAX_NAMES {
            dirs.clear();
        }
        dirs.insert(dir.to_path_buf(), (stamp, Arc::clone(names)));
    }
}

/// Reads and sorts the names of `dir` (blocking).
fn read_sorted_names(dir: &FsPath) -> std::io::Result<SortedNames> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(mut name) = entry.file_name().into_string() else {
            continue; // Not UTF-8: cannot be an object key.
        };
        if is_staging_name(&name) {
            continue;
        }
        // `file_type` comes from readdir's d_type: no stat per entry. Symbolic
        // links are not objects: they are neither shown nor followed.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => continue,
            Ok(t) => t.is_dir(),
            Err(_) => continue,
        };
        if is_dir {
            name.push('/');
        }
        names.push(name);
    }
    names.sort_unstable();
    let mut sorted = SortedNames {
        text: String::with_capacity(names.iter().map(String::len).sum()),
        ends: Vec::with_capacity(names.len()),
    };
    for name in names {
        sorted.text.push_str(&name);
        let end = u32::try_from(sorted.text.len())
            .map_err(|_| std::io::Error::other("directory listing too large"))?;
        sorted.ends.push(end);
    }
    Ok(sorted)
}

/// Lists one directory level of a bucket (blocking; run on the blocking pool).
fn list_dir_page(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Result<Page> {
    let (dir_part, leaf_prefix) = split_prefix(request.prefix.as_str());
    let dir = confined(bucket_dir, dir_part.trim_end_matches('/')).ok_or_else(invalid_prefix)?;
    let Some(names) = dir_names(cache, bucket_dir, &dir)? else {
        return Ok(Page::default());
    };
    // Names with the leaf prefix are one run of the sorted list; start after the
    // token's key (a full key: compare it with `dir_part` + name).
    let all = names.len();
    let first = partition_point(all, |i| names.get(i) < leaf_prefix);
    let after = start_after.map_or(0, |after| {
        partition_point(all, |i| {
            dir_part
                .bytes()
                .chain(names.get(i).bytes())
                .le(after.bytes())
        })
    });
    let entries = (first.max(after)..all)
        .map(|i| names.get(i))
        .take_while(|name| name.starts_with(leaf_prefix))
        .map(|name| (format!("{dir_part}{name}"), name.ends_with('/')));
    let (page, next_token) = page_sorted(entries, start_after, request.max_keys);
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
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // Deleted since readdir.
        };
        if !meta.is_file() {
            continue;
        }
        out.objects.push(ObjectSummary {
            last_modified: to_utc(meta.modified()),
            etag: Some(super::objmeta::etag_at(&path).unwrap_or_else(|| local_etag(&meta))),
            size: meta.len(),
            storage_class: "STANDARD".to_string(),
            key: name,
        });
    }
    Ok(out)
}

/// The sorted names of the directory `dir` of the bucket at `bucket_dir`
/// (blocking), from the cache while it is unchanged; `None` when `dir` is not a
/// directory inside the bucket (missing, a file, or reached through a link).
fn dir_names(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    dir: &FsPath,
) -> Result<Option<Arc<SortedNames>>> {
    let not_found = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        )
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => return Ok(None),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(Error::from_io(e, "cannot list bucket")),
    };
    // Only plain segments were joined and the last one is not a link; an
    // intermediate one could be (planted from outside S4): resolve once.
    if dir != bucket_dir && !resolves_inside(bucket_dir, dir) {
        return Ok(None);
    }
    let stamp = DirStamp::of(&meta);
    if let Some(names) = cache.get(dir, stamp) {
        return Ok(Some(names));
    }
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= CACHE_SETTLE);
    let names = match read_sorted_names(dir) {
        Ok(names) => Arc::new(names),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(Error::from_io(e, "cannot list bucket")),
    };
    if settled {
        // Stamped before the read: a change during it invalidates the entry.
        cache.put(dir, stamp, &names);
    }
    Ok(Some(names))
}

/// One directory being walked by [`walk_page`].
struct WalkFrame {
    path: PathBuf,
    /// Key text of the directory (`""` or ending in `/`).
    key_prefix: String,
    names: Arc<SortedNames>,
    next: usize,
    /// Name prefix entries must have (only the first directory's leaf prefix).
    leaf: String,
}

/// One page of a recursive (non-delimited) listing (blocking): a depth-first walk
/// of the folders under the prefix only, in key order (sorted names, folders with
/// their trailing `/`, yield keys in byte order), skipping whole folders that lie
/// before the continuation key, and stopping after `max_keys` objects.
fn walk_page(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Result<Page> {
    let (dir_part, leaf_prefix) = split_prefix(request.prefix.as_str());
    let dir = confined(bucket_dir, dir_part.trim_end_matches('/')).ok_or_else(invalid_prefix)?;
    let Some(names) = dir_names(cache, bucket_dir, &dir)? else {
        return Ok(Page::default());
    };
    // Where to start in a directory: the first entry that is not entirely before
    // the continuation key (a folder holding it is not before it).
    let start_in = |key_prefix: &str, names: &SortedNames, leaf: &str| -> usize {
        let all = names.len();
        let first = partition_point(all, |i| names.get(i) < leaf);
        let after = start_after.map_or(0, |after| {
            partition_point(all, |i| {
                let full = format!("{key_prefix}{}", names.get(i));
                full.as_str() < after && !after.starts_with(full.as_str())
            })
        });
        first.max(after)
    };
    let next = start_in(dir_part, &names, leaf_prefix);
    let mut stack = vec![WalkFrame {
        path: dir,
        key_prefix: dir_part.to_string(),
        names,
        next,
        leaf: leaf_prefix.to_string(),
    }];
    let mut objects: Vec<ObjectSummary> = Vec::new();
    let mut more = false;
    while let Some(frame) = stack.last_mut() {
        if frame.next >= frame.names.len() {
            stack.pop();
            continue;
        }
        let name = frame.names.get(frame.next).to_string();
        frame.next += 1;
        if !name.starts_with(frame.leaf.as_str()) {
            stack.pop(); // Sorted: the run of matching names is over.
            continue;
        }
        let key = format!("{}{name}", frame.key_prefix);
        if let Some(folder) = name.strip_suffix('/') {
            if start_after.is_some_and(|after| after >= key.as_str() && !after.starts_with(&key)) {
                continue; // Every key below sorts before the continuation key.
            }
            let path = frame.path.join(folder);
            if let Some(names) = dir_names(cache, bucket_dir, &path)? {
                let next = start_in(&key, &names, "");
                stack.push(WalkFrame {
                    path,
                    key_prefix: key,
                    names,
                    next,
                    leaf: String::new(),
                });
            }
            continue;
        }
        if start_after.is_some_and(|after| key.as_str() <= after) {
            continue;
        }
        if objects.len() == request.max_keys {
            more = true;
            break;
        }
        let path = frame.path.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // Deleted since readdir.
        };
        if !meta.is_file() {
            continue;
        }
        objects.push(ObjectSummary {
            last_modified: to_utc(meta.modified()),
            // As reads report it: one getxattr per object on the page.
            etag: Some(super::objmeta::etag_at(&path).unwrap_or_else(|| local_etag(&meta))),
            size: meta.len(),
            storage_class: "STANDARD".to_string(),
            key,
        });
    }
    let next_token = if more {
        objects.last().map(|o| super::encode_token(&o.key))
    } else {
        None
    };
    Ok(Page {
        objects,
        prefixes: Vec::new(),
        next_token,
    })
}

/// The first index in `0..len` for which `before` is false (`before` must be true
/// for a prefix of the range and false after it).
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
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
mod tests {
    use super::*;

    /// Pages of a large, settled directory come from the cache, and any change to
    /// the directory is seen on the next page.
    #[test]
    fn cached_listing_pages_and_invalidates() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let bucket = tmp.path();
        let n = CACHE_MIN_ENTRIES + 200;
        for i in 0..n {
            std::fs::write(bucket.join(format!("k{i:05}")), b"x").expect("write");
        }
        std::fs::create_dir(bucket.join("k00003-dir")).expect("mkdir");
        std::fs::write(bucket.join("k00001#123"), b"staging").expect("write");
        let old = SystemTime::now() - Duration::from_secs(3600);
        let settle = || {
            std::fs::File::open(bucket)
                .and_then(|d| d.set_modified(old))
                .expect("set directory mtime");
        };
        settle();
        let cache = ListingCache::default();
        let request = |prefix: &str, token: Option<String>| PageRequest {
            prefix: crate::names::Prefix::parse(prefix).expect("test prefix"),
            delimited: true,
            max_keys: 500,
            token,
        };
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page =
                list_dir_page(&cache, bucket, &request("", None), after.as_deref()).expect("page");
            keys.extend(page.objects.iter().map(|o| o.key.clone()));
            keys.extend(page.prefixes.iter().cloned());
            match page.next_token {
                Some(t) => after = Some(decode_token(&t).expect("token")),
                None => break,
            }
        }
        assert_eq!(keys.len(), n + 1);
        assert!(keys.contains(&"k00003-dir/".to_string()));
        assert!(!keys.iter().any(|k| k.contains('#')));
        let dir = bucket.to_path_buf();
        let stamp = DirStamp::of(&std::fs::metadata(&dir).expect("stat"));
        assert!(
            cache.get(&dir, stamp).is_some(),
            "settled directory is cached"
        );

        // A prefix query is served from the same cache.
        let page = list_dir_page(&cache, bucket, &request("k010", None), None).expect("page");
        assert_eq!(page.objects.len(), 100);
        assert_eq!(page.objects[0].key, "k01000");

        // A new file changes the directory: the next page sees it.
        std::fs::write(bucket.join("a-new"), b"x").expect("write");
        let page = list_dir_page(&cache, bucket, &request("", None), None).expect("page");
        assert_eq!(page.objects[0].key, "a-new");
        settle();
        std::fs::remove_file(bucket.join("a-new")).expect("remove");
        let page = list_dir_page(&cache, bucket, &request("", None), None).expect("page");
        assert_eq!(page.objects[0].key, "k00000");
    }

    #[test]
    fn staging_names() {
        assert!(is_staging_name("file.bin#1"));
        assert!(is_staging_name("a#b#12"));
        assert!(!is_staging_name("a#b"));
        assert!(!is_staging_name("a#"));
        assert!(!is_staging_name("plain"));
    }
}

/// Property tests of the confinement: whatever key or prefix validation accepts as
/// portable becomes a path of normal components under the bucket directory, and
/// no text at all can make [`confined`] leave its base.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::names::Prefix;
    use proptest::prelude::*;
    use std::path::Component;

    /// `path` is `base` plus exactly `segments` normal components.
    fn normal_below(base: &FsPath, path: &FsPath, segments: usize) -> bool {
        path.strip_prefix(base).is_ok_and(|rest| {
            rest.components().count() == segments
                && rest.components().all(|c| matches!(c, Component::Normal(_)))
        })
    }

    /// Path-like text: segments that are empty, `.`, `..`, absolute-looking,
    /// backslashed, NUL-bearing, overlong or plain.
    fn pathlike() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just(String::new()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("..\\..".to_string()),
            Just("a\0b".to_string()),
            Just("%2e%2e".to_string()),
            Just("x".repeat(256)),
            "[a-z. ~\\\\-]{1,6}",
        ];
        prop::collection::vec(segment, 0..6).prop_map(|s| s.join("/"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn confined_never_leaves_base(rel in prop_oneof![pathlike(), any::<String>()]) {
            let base = FsPath::new("/data/bucket");
            if let Some(path) = confined(base, &rel) {
                let segments = if rel.is_empty() { 0 } else { rel.split('/').count() };
                prop_assert!(normal_below(base, &path, segments), "{rel:?} -> {path:?}");
            }
        }

        /// Every portable key (with segments a file name can hold) is confined to
        /// normal components under the bucket; no other key is.
        #[test]
        fn portable_keys_are_confined(key in prop_oneof![pathlike(), any::<String>()]) {
            let base = FsPath::new("/data/bucket");
            if let Ok(key) = ObjectKey::parse(&key) {
                let path = confined(base, key.as_str());
                if key.is_portable() && key.as_str().split('/').all(|s| s.len() <= NAME_MAX) {
                    let path = path.ok_or_else(|| TestCaseError::fail(format!("{key:?} refused")))?;
                    prop_assert!(normal_below(base, &path, key.as_str().split('/').count()));
                } else if !key.is_portable() {
                    prop_assert!(path.is_none(), "non-portable {key:?} confined");
                }
            }
        }

        /// The folder part of every portable prefix is confined under the bucket, the
        /// way listing and search build it.
        #[test]
        fn portable_prefixes_are_confined(prefix in prop_oneof![pathlike(), any::<String>()]) {
            let base = FsPath::new("/data/bucket");
            if let Ok(prefix) = Prefix::parse(&prefix) {
                let (dir_part, _) = split_prefix(prefix.as_str());
                let rel = dir_part.trim_end_matches('/');
                let path = confined(base, rel);
                if prefix.is_portable() && rel.split('/').all(|s| s.len() <= NAME_MAX) {
                    let path = path.ok_or_else(|| TestCaseError::fail(format!("{prefix:?} refused")))?;
                    let segments = if rel.is_empty() { 0 } else { rel.split('/').count() };
                    prop_assert!(normal_below(base, &path, segments));
                } else if let Some(path) = path {
                    prop_assert!(path.starts_with(base));
                }
            }
        }
    }

    /// On a real bucket holding a symbolic link to a sibling directory, a confined
    /// path resolves inside the bucket exactly when it does not pass the link.
    #[test]
    fn symlinks_out_are_caught() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let bucket = root.join("bucket");
        std::fs::create_dir_all(bucket.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(root.join("outside/etc")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("outside"), bucket.join("out")).expect("symlink");
        std::os::unix::fs::symlink(root.join("outside"), bucket.join("a/out")).expect("symlink");
        let segment = prop_oneof![Just("a"), Just("b"), Just("out"), Just("etc"), Just("new")];
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        runner
            .run(&prop::collection::vec(segment, 1..5), |segments| {
                let rel = segments.join("/");
                let path = confined(&bucket, &rel)
                    .ok_or_else(|| TestCaseError::fail(format!("{rel:?} refused")))?;
                let passes_link = segments.iter().position(|s| *s == "out").is_some_and(|i| {
                    // The links are `out` and `a/out`; any other `.../out` does not exist.
                    i == 0 || (i == 1 && segments[0] == "a")
                });
                prop_assert_eq!(resolves_inside(&bucket, &path), !passes_link, "{:?}", rel);
                Ok(())
            })
            .expect("confinement property");
    }
}

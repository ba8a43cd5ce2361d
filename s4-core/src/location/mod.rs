//! Local storage locations (`LOCAL_STORAGE_PATHS`), confined to their roots.
//!
//! Each configured directory is a location `local-<n>`. [`Locations`] lists them and
//! lists, stats, reads, uploads into, creates directories in and deletes from them,
//! with the rules of API §17 (file-type policy, quota, size limit) and the path safety
//! of §7.3. Callers pass *decoded* relative paths (Base64 decoding is the adapter's
//! job, see [`crate::codec`]); nothing here knows about HTTP.
//!
//! # Confinement design
//!
//! A request path is untrusted, and so is the tree under the root: anyone with write
//! access to a location can plant symlinks, or swap a directory for a symlink to `/`
//! between two system calls. Checking a string path ("canonicalize, then verify it
//! starts with the root, then open it") is therefore not enough: the check and the
//! use resolve the path twice, and the tree can change in between (TOCTOU).
//!
//! So:
//!
//! 1. **Lexical checks first** (§7.3 steps 3–4): backslash, NUL,
//!    absolute paths and `..` climbing above the root are refused with the contract's
//!    messages before the file system is touched. The text is used verbatim
//!    (`%2e%2e` is a file name).
//! 2. **Every operation is relative to an open handle of the root.** Each root is
//!    canonicalized and opened once as a [`cap_std::fs::Dir`]; ambient authority is used
//!    for that and nothing else. cap-std resolves every path relative to that handle
//!    and refuses, at the moment of use, any `..` or symlink that would lead outside
//!    (on Linux with `openat2(RESOLVE_BENEATH)`, else by resolving component by
//!    component with `O_NOFOLLOW`). There is no check-then-open window: the check *is*
//!    the open. Its refusals become 403 `Forbidden` ("Path escapes allowed directory").
//! 3. **Mutations go through the parent's handle and one name** (`unlinkat`, `mkdirat`,
//!    `linkat`), which the kernel does not resolve further; recursive deletes enter a
//!    subdirectory only after checking the opened handle is the inode `lstat` saw, so
//!    they never follow symlinks.
//! 4. **Uploads never replace anything**: bytes go to a hidden temporary file created
//!    with `O_EXCL` in the destination directory, which is hard-linked to its final name
//!    (failing if that name exists) only when complete, then unlinked. A guard removes
//!    the temporary file on every failure and when the future is dropped.
//!
//! Symlinks that stay inside the root are followed for reads and listings (relative
//! ones; an *absolute* symlink is refused even when it points inside, because the
//! sandbox cannot tell). A symlink whose target leaves the root is never followed.
//!
//! The root handle is opened once: a root directory that is deleted and recreated
//! (rather than its contents) needs a restart. A root missing at start-up is retried
//! on each use, so a volume mounted later is picked up.
//!
//! # Errors
//!
//! Every error is an [`Error`] whose kind the adapter maps (§7.3 table):
//!
//! | Condition | Kind | Code |
//! |---|---|---|
//! | traversal / forbidden path, root delete | `PermissionDenied` | `Forbidden` |
//! | `EACCES` / `EPERM` | `PermissionDenied` | none |
//! | unknown location, missing file | `NotFound` | none |
//! | disk full | `StorageFull` (`Disk full`) | none |
//! | size limit | `TooLarge` | none |
//! | quota | `TooLarge` | `QuotaExceeded` |
//! | file-type policy | `InvalidInput` | `InvalidFileType` |
//! | bad input, `ENOTDIR`, `EISDIR`, `ENAMETOOLONG` | `InvalidInput` | none |
//! | upload destination exists | `AlreadyExists` | none |
//! | mkdir with a file in the way | `Conflict` | none |

mod config;
mod ops;
mod path;
mod transfer_io;
mod upload;

#[cfg(all(test, unix))]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cap_std::fs::Dir;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

pub use config::{
    FileTypePolicy, LocationsConfig, DEFAULT_ALLOWED_EXTENSIONS, DEFAULT_BLOCKED_EXTENSIONS,
    DEFAULT_MAX_FILE_SIZE, INVALID_FILE_TYPE,
};
pub use transfer_io::{WalkEntry, MAX_WALK_PATH};
pub use upload::{UploadTarget, WriteOptions};

use self::ops::{Removed, Target};
use self::path::{forbidden, parse_location_id, RelPath};
use crate::error::{Error, ErrorKind, Result};
use crate::ByteRange;

/// Code of every traversal / forbidden-path refusal ([`ErrorKind::PermissionDenied`]).
/// A `PermissionDenied` *without* this code is a file-system permission problem.
pub const FORBIDDEN: &str = path::FORBIDDEN;

/// Code of a quota refusal ([`ErrorKind::TooLarge`]).
pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";

/// Upload quota per location: bytes recorded by this process (100 GiB).
pub const QUOTA_MAX_BYTES: u64 = 100 << 30;

/// Upload quota per location: files recorded by this process.
pub const QUOTA_MAX_FILES: u64 = 10_000;

/// Size of the chunks a download stream yields.
pub const READ_CHUNK: usize = 256 << 10;

/// How much of a file a preview reads (§9.5).
pub const PREVIEW_MAX: usize = 1 << 20;

/// `1024`-based size text with two decimals (API §15.7): `0 Bytes`, `512.00 Bytes`,
/// `117.19 KB`, `12.00 GB` (units up to `PB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["Bytes", "KB", "MB", "GB", "TB", "PB"];
    if bytes == 0 {
        return "0 Bytes".to_string();
    }
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.2} {}", UNITS[unit])
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("file system task failed: {e}")))?
}

/// What an entry is (its own type: a symlink is a symlink, whatever it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (or another non-directory, such as a FIFO).
    File,
    /// A directory.
    Directory,
    /// A symbolic link whose target resolves inside the location.
    Symlink,
}

impl EntryKind {
    /// The API's `type` value: `file`, `directory` or `symlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
        }
    }
}

impl Serialize for EntryKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One entry of a listing, or the subject of [`Locations::stat`] (API §17.2 shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Last path component (for the root: the location's name).
    pub name: String,
    /// Path relative to the location root (`""` for the root).
    pub path: String,
    /// The entry's own type.
    pub kind: EntryKind,
    /// Size in bytes: files, and symlinks (their target's); `None` for directories.
    pub size: Option<u64>,
    /// Last modification: files, and symlinks (their target's); `None` for directories.
    pub modified: Option<DateTime<Utc>>,
    /// For symlinks: the link text, as stored.
    pub target: Option<String>,
}

impl Entry {
    fn directory(name: String, path: String) -> Self {
        Self {
            name,
            path,
            kind: EntryKind::Directory,
            size: None,
            modified: None,
            target: None,
        }
    }

    fn file(name: String, path: String, size: u64, modified: Option<DateTime<Utc>>) -> Self {
        Self {
            name,
            path,
            kind: EntryKind::File,
            size: Some(size),
            modified,
            target: None,
        }
    }
}

/// Serializes as `{"name","path","type","size"?,"modified"?,"target"?}` with `modified`
/// as ISO-8601 UTC with milliseconds; absent fields are omitted.
impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Entry", 6)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("path", &self.path)?;
        s.serialize_field("type", &self.kind)?;
        if let Some(size) = self.size {
            s.serialize_field("size", &size)?;
        } else {
            s.skip_field("size")?;
        }
        if let Some(modified) = &self.modified {
            s.serialize_field(
                "modified",
                &modified.to_rfc3339_opts(SecondsFormat::Millis, true),
            )?;
        } else {
            s.skip_field("modified")?;
        }
        if let Some(target) = &self.target {
            s.serialize_field("target", target)?;
        } else {
            s.skip_field("target")?;
        }
        s.end()
    }
}

/// One page of a directory listing (API §17.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirListing {
    /// The page: directories first, then the rest, each group by name
    /// case-insensitively (ties broken on the raw name); sorted before slicing.
    pub files: Vec<Entry>,
    /// The normalized listed path (`""` at the root).
    pub current_path: String,
    /// `None` at the root, `"."` for a top-level directory, else the parent path.
    pub parent_path: Option<String>,
    /// Number of entries before `limit`/`offset`.
    pub total_count: usize,
}

/// Serializes as `{"files","currentPath","parentPath" (null at the root),"totalCount"}`.
impl Serialize for DirListing {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DirListing", 4)?;
        s.serialize_field("files", &self.files)?;
        s.serialize_field("currentPath", &self.current_path)?;
        s.serialize_field("parentPath", &self.parent_path)?;
        s.serialize_field("totalCount", &self.total_count)?;
        s.end()
    }
}

/// A configured location (API §17.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationInfo {
    /// `local-<n>`.
    pub id: String,
    /// Last component of the configured path (or the whole path).
    pub name: String,
    /// The configured path, as given.
    pub path: String,
    /// Whether the path exists and is a directory (checked on every call).
    pub available: bool,
}

/// Serializes as `{"id","name","path","type":"local","available"}`.
impl Serialize for LocationInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LocationInfo", 5)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("path", &self.path)?;
        s.serialize_field("type", "local")?;
        s.serialize_field("available", &self.available)?;
        s.end()
    }
}

/// A file being read: what is read, the byte range served, and the bytes.
pub struct FileStream {
    /// Last path component.
    pub name: String,
    /// Normalized path relative to the location root.
    pub path: String,
    /// Size of the whole file (of the opened file, symlinks followed).
    pub size: u64,
    /// Last modification of the opened file.
    pub modified: Option<DateTime<Utc>>,
    /// The range this stream yields (`0..size` without a range request).
    pub range: Range<u64>,
    /// Whether a range was requested.
    pub partial: bool,
    /// The bytes in chunks of up to [`READ_CHUNK`]. Ends with an error if reading fails
    /// or the file shrinks midway. Dropping the stream stops the read.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl FileStream {
    /// Number of bytes `body` yields (the `Content-Length`).
    pub fn content_length(&self) -> u64 {
        self.range.end - self.range.start
    }
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Upload usage recorded by this process for one location (§17.9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Bytes uploaded minus bytes deleted (never below 0).
    pub bytes: u64,
    /// Files uploaded minus files deleted (never below 0).
    pub files: u64,
}

/// The local locations service. Cheap to clone (`Arc` inside); every clone shares the
/// root handles and quota usage.
#[derive(Clone, Debug)]
pub struct Locations {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LocationsConfig,
    roots: Vec<Root>,
}

struct Root {
    id: String,
    /// The configured path, as given.
    path: PathBuf,
    name: String,
    /// The open root handle; `None` while the directory is unavailable.
    dir: Mutex<Option<Arc<Dir>>>,
    usage: Mutex<QuotaUsage>,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self
            .dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("Root")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("open", &open)
            .field("usage", &self.usage())
            .finish()
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned())
}

/// Canonicalizes and opens a root (the one use of ambient authority). Blocking.
fn open_root(path: &Path) -> std::io::Result<Dir> {
    let canonical = std::fs::canonicalize(path)?;
    Dir::open_ambient_dir(canonical, cap_std::ambient_authority())
}

impl Root {
    fn new(index: usize, path: PathBuf) -> Self {
        Self {
            id: format!("local-{index}"),
            name: display_name(&path),
            path,
            dir: Mutex::new(None),
            usage: Mutex::new(QuotaUsage::default()),
        }
    }

    /// The root handle, opening it if it was not available before. Blocking.
    fn dir(&self) -> Result<Arc<Dir>> {
        let mut slot = self.dir.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = slot.as_ref() {
            return Ok(Arc::clone(dir));
        }
        match open_root(&self.path) {
            Ok(dir) => {
                let dir = Arc::new(dir);
                *slot = Some(Arc::clone(&dir));
                tracing::info!(location = %self.id, path = %self.path.display(), "local storage location opened");
                Ok(dir)
            }
            Err(err) => Err(Error::not_found(format!(
                "Storage location not available: {}",
                self.id
            ))
            .with_source(err)),
        }
    }

    fn usage(&self) -> QuotaUsage {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_upload(&self, bytes: u64) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.bytes = usage.bytes.saturating_add(bytes);
        usage.files = usage.files.saturating_add(1);
    }

    fn release(&self, removed: Removed) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.bytes = usage.bytes.saturating_sub(removed.bytes);
        usage.files = usage.files.saturating_sub(removed.files);
    }
}

/// Directories first, then by name case-insensitively, ties on the raw name.
fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by_cached_key(|e| {
        (
            e.kind != EntryKind::Directory,
            e.name.to_lowercase(),
            e.name.clone(),
        )
    });
}

impl Locations {
    /// Builds the service: canonicalizes and opens each configured root once (a root
    /// that is itself a symlink is fine). Missing roots are logged at `warn` and
    /// retried on use. Never fails.
    pub async fn new(config: LocationsConfig) -> Self {
        let roots: Vec<Root> = config
            .paths
            .iter()
            .enumerate()
            .map(|(i, p)| Root::new(i, p.clone()))
            .collect();
        let locations = Self {
            inner: Arc::new(Inner { config, roots }),
        };
        let opening = locations.clone();
        let _ = blocking(move || {
            for root in &opening.inner.roots {
                if let Err(err) = root.dir() {
                    let cause = std::error::Error::source(&err)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    tracing::warn!(
                        location = %root.id,
                        path = %root.path.display(),
                        error = %cause,
                        "local storage location is not available"
                    );
                }
            }
            Ok(())
        })
        .await;
        locations
    }

    /// A service with no locations (local storage disabled); every id is out of
    /// bounds. Synchronous, for handles built without a configuration.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                config: LocationsConfig::default(),
                roots: Vec::new(),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &LocationsConfig {
        &self.inner.config
    }

    /// Number of configured locations.
    pub fn len(&self) -> usize {
        self.inner.roots.len()
    }

    /// Whether no location is configured (local storage disabled).
    pub fn is_empty(&self) -> bool {
        self.inner.roots.is_empty()
    }

    fn root(&self, index: usize) -> Result<&Root> {
        self.inner
            .roots
            .get(index)
            .ok_or_else(|| Error::not_found(format!("Location index out of bounds: {index}")))
    }

    /// Upload usage recorded for a location (§17.9).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an invalid or unknown id.
    pub fn quota_usage(&self, id: &str) -> Result<QuotaUsage> {
        let index = parse_location_id(id, self.len())?;
        Ok(self.root(index)?.usage())
    }

    /// Runs `work` on a blocking thread with the location's root handle and the
    /// checked path.
    async fn run<T, F>(&self, index: usize, rel: RelPath, raw: &str, work: F) -> Result<T>
    where
        F: FnOnce(&Root, &Target<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.clone();
        let raw = raw.to_string();
        blocking(move || {
            let root = this.root(index)?;
            let dir = root.dir()?;
            let target = Target {
                root: &dir,
                rel: &rel,
                raw: &raw,
            };
            work(root, &target)
        })
        .await
    }

    /// §7.3 steps 1, 3 and 4: the location index and the normalized path.
    fn resolve(&self, id: &str, rel_path: &str) -> Result<(usize, RelPath)> {
        let index = parse_location_id(id, self.len())?;
        Ok((index, RelPath::parse(rel_path)?))
    }

    /// All configured locations, in order, with `available` checked now.
    pub async fn list_locations(&self) -> Vec<LocationInfo> {
        let this = self.clone();
        blocking(move || {
            Ok(this
                .inner
                .roots
                .iter()
                .map(|root| LocationInfo {
                    id: root.id.clone(),
                    name: root.name.clone(),
                    path: root.path.to_string_lossy().into_owned(),
                    available: std::fs::metadata(&root.path).is_ok_and(|m| m.is_dir()),
                })
                .collect())
        })
        .await
        .unwrap_or_default()
    }

    /// Lists a directory (API §17.2): immediate children, sorted, then `offset` and
    /// `limit` (`None` = all) applied. Dangling symlinks and symlinks leading outside
    /// the location are omitted; in-flight upload temporaries are hidden. Buffers the
    /// directory's entries (they must be sorted before slicing).
    ///
    /// # Errors
    /// `NotFound` (unknown location, missing directory), `PermissionDenied` with code
    /// `Forbidden` (traversal) or without (EACCES), `InvalidInput`
    /// `Not a directory: <path>` when the path is a file.
    pub async fn list_dir(
        &self,
        id: &str,
        rel_path: &str,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<DirListing> {
        let (index, rel) = self.resolve(id, rel_path)?;
        let current_path = rel.display();
        let parent_path = rel.parent_display();
        let mut entries = self
            .run(index, rel, rel_path, |_, target| ops::list(target))
            .await?;
        sort_entries(&mut entries);
        let total_count = entries.len();
        let files = entries
            .into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        Ok(DirListing {
            files,
            current_path,
            parent_path,
            total_count,
        })
    }

    /// The entry at a path (for view metadata). A symlink reports its target's size
    /// and time; one leading outside the location is refused.
    ///
    /// # Errors
    /// As [`Self::list_dir`] (without the `Not a directory` case).
    pub async fn stat(&self, id: &str, rel_path: &str) -> Result<Entry> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, |root, target| {
            ops::stat(target, &root.name)
        })
        .await
    }

    /// Opens a regular file for streaming (download, raw view), optionally a byte
    /// range of it. Symlinks inside the location are followed. Size, type and range
    /// are those of the opened file, so a later change of the path does not matter.
    ///
    /// # Errors
    /// As [`Self::stat`], plus `InvalidInput` `Not a file: <path>` (directory or other
    /// non-regular file), `TooLarge` `File size <X.XX>GB exceeds limit of <Y.YY>GB`
    /// (GB = 2^30 bytes) above `max_file_size`, `RangeNotSatisfiable` (with
    /// [`Error::object_size`]).
    pub async fn open_read(
        &self,
        id: &str,
        rel_path: &str,
        range: Option<ByteRange>,
    ) -> Result<FileStream> {
        use std::io::{Seek, SeekFrom};
        let (index, rel) = self.resolve(id, rel_path)?;
        let name = rel.file_name().unwrap_or_default().to_string();
        let path = rel.display();
        let max = self.inner.config.max_file_size;
        let (file, size, modified, span) = self
            .run(index, rel, rel_path, move |_, target| {
                let (file, meta) = ops::open_file(target)?;
                let size = meta.len();
                if size > max {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!(
                            "File size {:.2}GB exceeds limit of {:.2}GB",
                            gib(size),
                            gib(max)
                        ),
                    ));
                }
                let span = match range {
                    None => 0..size,
                    Some(range) => range.resolve(size).ok_or_else(|| {
                        Error::new(ErrorKind::RangeNotSatisfiable, "Range Not Satisfiable")
                            .with_object_size(size)
                    })?,
                };
                let mut file = file.into_std();
                if span.start > 0 {
                    file.seek(SeekFrom::Start(span.start))
                        .map_err(|e| target.fail(e, "read"))?;
                }
                let modified = meta
                    .modified()
                    .ok()
                    .map(|t| DateTime::<Utc>::from(t.into_std()));
                Ok((file, size, modified, span))
            })
            .await?;
        let body = file_body(file, span.end - span.start, path.clone());
        Ok(FileStream {
            name,
            path,
            size,
            modified,
            range: span,
            partial: range.is_some(),
            body,
        })
    }

    /// The first `max` bytes (or fewer) of a regular file, for previews
    /// ([`PREVIEW_MAX`]). Not subject to `max_file_size`.
    ///
    /// # Errors
    /// As [`Self::open_read`] (without the size limit and range cases).
    pub async fn read_prefix(&self, id: &str, rel_path: &str, max: usize) -> Result<Bytes> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, move |_, target| {
            let (file, _) = ops::open_file(target)?;
            ops::read_prefix(file, max, target).map(Bytes::from)
        })
        .await
    }

    /// Upload steps 2 and 3 of API §17.3: the path is required (`File path is
    /// required`), the location id and the §7.3 checks, then the missing parent
    /// directories are created (`mkdir -p`, inside the location). A destination that
    /// is a symlink leading outside is refused here.
    ///
    /// The HTTP order of §17.3 is kept by calling, in this order:
    /// 1. `prepare_upload` (steps 2–3);
    /// 2. find the multipart file part (step 4, `No file provided`: adapter side);
    /// 3. [`UploadTarget::write`] with the part's byte stream: it runs steps 5
    ///    (file-type policy), 6 (no overwrite), 7 (quota) before pulling any byte, then
    ///    step 8 (streaming, size limit).
    ///
    /// # Errors
    /// `InvalidInput` `File path is required`; `NotFound` (location);
    /// `PermissionDenied`/`Forbidden` (traversal); `Conflict` `A file exists at this
    /// path` (a file in the way of a parent directory); `StorageFull`; EACCES.
    pub async fn prepare_upload(&self, id: &str, rel_path: &str) -> Result<UploadTarget> {
        if rel_path.is_empty() {
            return Err(Error::invalid("File path is required"));
        }
        let (index, rel) = self.resolve(id, rel_path)?;
        if rel.is_root() {
            return Err(Error::invalid("File path is required"));
        }
        let this = self.clone();
        let raw = rel_path.to_string();
        self.run(index, rel.clone(), rel_path, move |_, target| {
            let parent = ops::create_dirs(target.root, &rel.parent(), target.raw)?;
            let name = rel.file_name().unwrap_or_default();
            if let Ok(meta) = parent.symlink_metadata(name) {
                if meta.is_symlink() {
                    if let Err(err) = target.root.metadata(rel.fs_path()) {
                        if path::is_escape(&err) {
                            return Err(path::escapes(target.raw));
                        }
                    }
                }
            }
            UploadTarget::new(this, index, parent, rel, raw)
        })
        .await
    }

    /// [`Self::prepare_upload`] then [`UploadTarget::write`]: the whole upload
    /// (for callers without a step between them). Returns the bytes written.
    ///
    /// # Errors
    /// Those of both steps.
    pub async fn write_file<S>(
        &self,
        id: &str,
        rel_path: &str,
        body: S,
        options: WriteOptions,
    ) -> Result<u64>
    where
        S: futures::Stream<Item = Result<Bytes>> + Send,
    {
        self.prepare_upload(id, rel_path)
            .await?
            .write(body, options)
            .await
    }

    /// `mkdir -p` inside the location (API §17.7); idempotent for an existing
    /// directory (or a symlink to one inside the location). Returns the normalized path.
    ///
    /// # Errors
    /// `InvalidInput` `Directory path is required` (empty path or the root);
    /// `Conflict` `A file exists at this path` (a non-directory in the way);
    /// `PermissionDenied`/`Forbidden`; EACCES; `StorageFull` `Disk full`.
    pub async fn create_dir(&self, id: &str, rel_path: &str) -> Result<String> {
        if rel_path.is_empty() {
            return Err(Error::invalid("Directory path is required"));
        }
        let (index, rel) = self.resolve(id, rel_path)?;
        if rel.is_root() {
            return Err(Error::invalid("Directory path is required"));
        }
        let display = rel.display();
        self.run(index, rel, rel_path, |_, target| {
            ops::create_dirs(target.root, target.rel, target.raw).map(drop)
        })
        .await?;
        Ok(display)
    }

    /// Deletes a file, a symlink (the link itself, never its target) or a directory
    /// recursively (API §17.5), without ever following symlinks. Returns the item
    /// count: 1 for a file, entries at any depth + 1 for a directory. The quota usage
    /// decreases by the files and bytes removed (never below 0), also for a delete
    /// that fails midway.
    ///
    /// # Errors
    /// `PermissionDenied` code `Forbidden` `Cannot delete the root of a storage
    /// location` for the root, or for traversal (including a symlink leading outside);
    /// `NotFound`; EACCES; `Conflict` if a directory is swapped while being deleted.
    pub async fn delete(&self, id: &str, rel_path: &str) -> Result<u64> {
        let (index, rel) = self.resolve(id, rel_path)?;
        if rel.is_root() {
            return Err(forbidden("Cannot delete the root of a storage location"));
        }
        self.run(index, rel, rel_path, |root, target| {
            let mut removed = Removed::default();
            let outcome = ops::delete(target, &mut removed);
            root.release(removed);
            outcome.map(|()| removed.items)
        })
        .await
    }
}

/// Streams `len` bytes from the current position of `file` in [`READ_CHUNK`] chunks,
/// failing (rather than ending quietly) if the file turns out shorter.
fn file_body(file: std::fs::File, len: u64, path: String) -> BoxStream<'static, Result<Bytes>> {
    use tokio::io::AsyncReadExt;
    let reader = tokio::fs::File::from_std(file).take(len);
    let chunks = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK);
    futures::stream::unfold(
        (chunks, 0u64, false, path),
        move |(mut chunks, seen, done, path)| async move {
            if done {
                return None;
            }
            match chunks.next().await {
                Some(Ok(bytes)) => {
                    let seen = seen + bytes.len() as u64;
                    Some((Ok(bytes), (chunks, seen, false, path)))
                }
                Some(Err(err)) => {
                    let err = Error::from_io(err, format_args!("Cannot read '{path}'"));
                    Some((Err(err), (chunks, seen, true, path)))
                }
                None if seen < len => {
                    let err = Error::internal(format!("File '{path}' shrank while being read"));
                    Some((Err(err), (chunks, seen, true, path)))
                }
                None => None,
            }
        },
    )
    .boxed()
}

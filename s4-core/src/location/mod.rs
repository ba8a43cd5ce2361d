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
mod entry;
mod ops;
mod path;
mod read;
mod transfer_io;
mod upload;

#[cfg(all(test, unix))]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cap_std::fs::Dir;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;

pub use config::{
    FileTypePolicy, LocationsConfig, DEFAULT_ALLOWED_EXTENSIONS, DEFAULT_BLOCKED_EXTENSIONS,
    DEFAULT_MAX_FILE_SIZE, INVALID_FILE_TYPE,
};
use entry::sort_entries;
pub use entry::{DirListing, Entry, EntryKind, FileStream, LocationInfo, QuotaUsage};
use read::file_body;
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

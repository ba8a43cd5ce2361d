//! File operations for the transfer engine (API §15): reads without the upload size
//! limit, a recursive walk, existence checks, and an atomic writer without the
//! upload file-type policy and quota that may replace an existing file.
//!
//! Everything keeps the confinement rules of the module (paths resolved by cap-std
//! relative to the root handle; symlinks never followed by the walk).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use cap_std::fs::{Dir, OpenOptions};
use futures::Stream;

use super::ops::{self, is_temp_name, TEMP_PREFIX, TEMP_SUFFIX};
use super::path::{escapes, is_escape, RelPath};
use super::upload::metered_write;
use super::{blocking, file_body, FileStream, Locations, WriteOptions};
use crate::error::{Error, ErrorKind, Result};

/// Longest full path the walk accepts (API §15.1).
pub const MAX_WALK_PATH: usize = 4096;

/// One entry produced by [`Locations::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkEntry {
    /// A regular file: path relative to the location root, size.
    File {
        /// Path relative to the location root.
        path: String,
        /// Size in bytes.
        size: u64,
    },
    /// A directory with no regular file and no sub-directory (symlinks only, or
    /// nothing): path relative to the location root.
    EmptyDir {
        /// Path relative to the location root.
        path: String,
    },
}

/// Removes the temporary file when dropped unless disarmed (see `upload.rs`).
struct Temp {
    dir: Arc<Dir>,
    name: String,
    armed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            if let Err(err) = self.dir.remove_file(&self.name) {
                tracing::warn!(file = %self.name, error = %err, "cannot remove transfer temporary file");
            }
        }
    }
}

impl Locations {
    /// Opens a regular file for streaming, whatever its size (the upload/download
    /// size limit does not apply to transfers). Symlinks inside the location are
    /// followed. Does not buffer beyond one chunk.
    ///
    /// # Errors
    /// As [`Locations::open_read`], without the size-limit and range cases.
    pub async fn open_read_unlimited(&self, id: &str, rel_path: &str) -> Result<FileStream> {
        let (index, rel) = self.resolve(id, rel_path)?;
        let name = rel.file_name().unwrap_or_default().to_string();
        let path = rel.display();
        let (file, size, modified) = self
            .run(index, rel, rel_path, move |_, target| {
                let (file, meta) = ops::open_file(target)?;
                let modified = meta
                    .modified()
                    .ok()
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t.into_std()));
                Ok((file.into_std(), meta.len(), modified))
            })
            .await?;
        let body = file_body(file, size, path.clone());
        Ok(FileStream {
            name,
            path,
            size,
            modified,
            range: 0..size,
            partial: false,
            body,
        })
    }

    /// Whether anything (file, directory, symlink, even dangling) exists at the path.
    ///
    /// # Errors
    /// §7.3 errors for the path; I/O errors other than "not found".
    pub async fn exists(&self, id: &str, rel_path: &str) -> Result<bool> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, |_, target| {
            match target.root.symlink_metadata(target.rel.fs_path()) {
                Ok(_) => Ok(true),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(false)
                }
                Err(err) => Err(target.fail(err, "stat")),
            }
        })
        .await
    }

    /// The size of the regular file at the path (symlinks inside the location
    /// followed); `None` when the path is missing.
    ///
    /// # Errors
    /// `InvalidInput` `Not a file: <path>` for a directory or special file; §7.3
    /// errors; EACCES.
    pub async fn file_size(&self, id: &str, rel_path: &str) -> Result<Option<u64>> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, |_, target| {
            match target.root.metadata(target.rel.fs_path()) {
                Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
                Ok(_) => Err(Error::invalid(format!(
                    "Not a file: {}",
                    target.rel.display()
                ))),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(target.fail(err, "stat")),
            }
        })
        .await
    }

    /// Walks a directory recursively (API §15.1 local expansion): regular files and
    /// empty directories, in name order per directory, paths relative to the
    /// location root. Symbolic links are skipped (never followed), other special
    /// files ignored, upload temporaries hidden. `None` when the directory is missing.
    /// Buffers the entry list (paths and sizes only).
    ///
    /// # Errors
    /// `InvalidInput` `Not a directory: <path>` when the path is not a directory;
    /// `InvalidInput` `Path too long (>4096 chars): <rel>`; §7.3 errors; EACCES.
    pub async fn walk(&self, id: &str, rel_path: &str) -> Result<Option<Vec<WalkEntry>>> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, |root, target| {
            let dir = match target.root.open_dir(target.rel.fs_path()) {
                Ok(dir) => dir,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) if err.kind() == io::ErrorKind::NotADirectory => {
                    return Err(Error::invalid(format!(
                        "Not a directory: {}",
                        target.rel.display()
                    )))
                }
                Err(err) => return Err(target.fail(err, "list")),
            };
            let base = root.path.to_string_lossy().len();
            let mut out = Vec::new();
            walk_dir(&dir, target.rel, base, &mut out, target)?;
            Ok(Some(out))
        })
        .await
    }

    /// Streams `body` into a hidden temporary file next to the destination and
    /// renames it into place when complete, replacing an existing file (transfer
    /// overwrite semantics). Parent directories are created. No file-type policy,
    /// quota or size limit applies. Returns the bytes written.
    ///
    /// A failure, a body error, cancellation ([`ErrorKind::Cancelled`]) or dropping
    /// the future leaves neither the temporary file nor a partial destination; an
    /// existing destination is untouched until the final rename. Buffers at most
    /// 256 KiB.
    ///
    /// # Errors
    /// §7.3 errors; `Conflict` (a file in the way of a parent directory, or a
    /// directory at the destination); `StorageFull`; EACCES; the error `body` yielded.
    pub async fn write_replace<S>(
        &self,
        id: &str,
        rel_path: &str,
        body: S,
        options: WriteOptions,
    ) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let (index, rel) = self.resolve(id, rel_path)?;
        let Some(name) = rel.file_name().map(str::to_string) else {
            return Err(Error::invalid("File path is required"));
        };
        let shown = rel.display();
        let raw = rel_path.to_string();
        let (parent, file, temp) = self
            .run(index, rel.clone(), rel_path, move |_, target| {
                let parent = Arc::new(ops::create_dirs(target.root, &rel.parent(), target.raw)?);
                let (file, temp) = create_temp(&parent, target.raw)?;
                Ok((parent, file, temp))
            })
            .await?;
        let fail = move |err: io::Error| -> Error {
            if is_escape(&err) {
                escapes(&raw)
            } else {
                Error::from_io(err, format_args!("Cannot write '{shown}'"))
            }
        };
        let streamed = metered_write(file, body, &options, None, "Cancelled by user", &fail).await;
        let (file, total) = match streamed {
            Ok(written) => written,
            Err(err) => {
                let _ = blocking(move || {
                    drop(temp);
                    Ok(())
                })
                .await;
                return Err(err);
            }
        };
        blocking(move || {
            drop(file);
            let mut temp = temp;
            parent
                .rename(&temp.name, &parent, &name)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty => {
                        Error::new(ErrorKind::Conflict, "A directory exists at this path")
                    }
                    _ => fail(e),
                })?;
            temp.armed = false;
            Ok(total)
        })
        .await
    }
}

/// Creates a temporary file (exclusive create) in `parent`.
fn create_temp(parent: &Arc<Dir>, raw: &str) -> Result<(std::fs::File, Temp)> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    let mut attempts = 0;
    loop {
        let name = format!("{TEMP_PREFIX}{:016x}{TEMP_SUFFIX}", rand::random::<u64>());
        match parent.open_with(&name, &options) {
            Ok(file) => {
                let temp = Temp {
                    dir: Arc::clone(parent),
                    name,
                    armed: true,
                };
                return Ok((file.into_std(), temp));
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
            }
            Err(err) if is_escape(&err) => return Err(escapes(raw)),
            Err(err) => return Err(Error::from_io(err, "Cannot create temporary file")),
        }
    }
}

/// Opens the sub-directory `name` only if it is still the inode `seen` (an `lstat`
/// result), so a directory swapped for a symlink is never entered.
fn open_same_dir(dir: &Dir, name: &str, seen: &cap_std::fs::Metadata) -> io::Result<Option<Dir>> {
    let sub = dir.open_dir(name)?;
    let now = sub.dir_metadata()?;
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        if now.dev() != seen.dev() || now.ino() != seen.ino() {
            return Ok(None);
        }
    }
    #[cfg(not(unix))]
    let _ = (now, seen);
    Ok(Some(sub))
}

/// Recursive part of [`Locations::walk`]: never follows symlinks (entries are
/// `lstat`-ed and a sub-directory is opened through its parent's handle, which
/// refuses a symlink swapped in at that name).
fn walk_dir(
    dir: &Dir,
    rel: &RelPath,
    base: usize,
    out: &mut Vec<WalkEntry>,
    target: &super::ops::Target<'_>,
) -> Result<()> {
    let fail = |err: io::Error| {
        if err.kind() == io::ErrorKind::PermissionDenied {
            Error::new(
                ErrorKind::PermissionDenied,
                format!("Permission denied accessing directory: {}", rel.display()),
            )
        } else {
            target.fail(err, "list")
        }
    };
    let mut children: Vec<(String, cap_std::fs::Metadata)> = Vec::new();
    for item in dir.entries().map_err(fail)? {
        let item = item.map_err(fail)?;
        let name = item.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) {
            continue;
        }
        let Ok(meta) = item.metadata() else { continue };
        children.push((name, meta));
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    let mut has_content = false;
    let mut nested = Vec::new();
    for (name, meta) in children {
        let path = rel.join(&name);
        if meta.is_symlink() {
            tracing::info!(path = %path.display(), "transfer: symbolic link skipped");
            continue;
        }
        if meta.is_dir() {
            has_content = true;
            let Some(sub) = open_same_dir(dir, &name, &meta).map_err(fail)? else {
                // Swapped for something else while walking: skip it.
                continue;
            };
            walk_dir(&sub, &path, base, &mut nested, target)?;
            out.append(&mut nested);
        } else if meta.is_file() {
            has_content = true;
            let shown = path.display();
            if base + 1 + shown.len() > MAX_WALK_PATH {
                return Err(Error::invalid(format!(
                    "Path too long (>{MAX_WALK_PATH} chars): {shown}"
                )));
            }
            out.push(WalkEntry::File {
                path: shown,
                size: meta.len(),
            });
        }
    }
    if !has_content && !rel.is_root() {
        out.push(WalkEntry::EmptyDir {
            path: rel.display(),
        });
    }
    Ok(())
}

//! Local uploads (API §17.3 steps 2, 3 and 5–8): destination preparation, the checks,
//! and streaming into a temporary file that is linked into place only once complete,
//! without ever replacing an existing file.
//!
//! On Linux the temporary file has no name at all (`O_TMPFILE`): an aborted upload, a
//! dropped request and even a crash (kill -9, power loss) leave nothing in the tree,
//! and linking it into place (`linkat`, which fails if the name exists) makes exactly
//! one of several concurrent writers win. Where `O_TMPFILE` is not supported (other
//! systems, some network file systems) a hidden `.s4-upload-<hex>.tmp` file in the
//! destination directory is used instead; it is removed on every failure and never
//! listed, but a crash can leave it behind.
//!
//! With `S4_FSYNC` on (the default) the file's data and its directory entry are
//! fsynced before the upload succeeds: a success means the bytes are on disk.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use cap_std::fs::{Dir, OpenOptions};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::ops::{TEMP_PREFIX, TEMP_SUFFIX};
use super::path::{escapes, is_escape, RelPath};
use super::{
    blocking, format_size, Locations, QuotaUsage, QUOTA_EXCEEDED, QUOTA_MAX_BYTES, QUOTA_MAX_FILES,
};
use crate::error::{Error, ErrorKind, Result};
use crate::io::{write_stream, StreamWrite};
use crate::ProgressFn;

/// Options of [`UploadTarget::write`] and [`Locations::write_file`].
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// Called with the cumulative byte count as chunks are written.
    pub progress: Option<ProgressFn>,
    /// Cancels the write ([`ErrorKind::Cancelled`] `Upload aborted by client`); nothing
    /// is left behind.
    pub cancel: Option<CancellationToken>,
    /// The size the client declared (the request's `Content-Length`), checked
    /// against the upload quota before any byte is read (API §17.9); 0 when absent.
    pub declared_size: u64,
}

impl fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOptions")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("declared_size", &self.declared_size)
            .finish()
    }
}

impl WriteOptions {
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

    /// Sets the declared size checked against the quota.
    pub fn with_declared_size(mut self, bytes: u64) -> Self {
        self.declared_size = bytes;
        self
    }
}

/// The quota check of API §17.9 (as amended): `used + declared size ≤ 100 GiB`
/// and `files + 1 ≤ 10 000`. The declared size is the request's, not
/// `MAX_FILE_SIZE` (which would refuse every upload once that limit is > 100 GiB).
pub(super) fn check_quota(usage: QuotaUsage, declared: u64) -> Result<()> {
    if usage.bytes.saturating_add(declared) > QUOTA_MAX_BYTES {
        let remaining = QUOTA_MAX_BYTES.saturating_sub(usage.bytes);
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "Storage quota exceeded. {} remaining.",
                format_size(remaining)
            ),
        )
        .with_code(QUOTA_EXCEEDED));
    }
    if usage.files.saturating_add(1) > QUOTA_MAX_FILES {
        let remaining = QUOTA_MAX_FILES.saturating_sub(usage.files);
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("File count quota exceeded. {remaining} files remaining."),
        )
        .with_code(QUOTA_EXCEEDED));
    }
    Ok(())
}

fn already_exists() -> Error {
    Error::new(ErrorKind::AlreadyExists, "File already exists")
}

/// A prepared upload destination: the path passed the §7.3 checks, its parent
/// directories exist, and a handle on the parent directory is held, so the rest of
/// the upload works on that directory and one file name (no path is resolved again).
///
/// Obtained from [`Locations::prepare_upload`]; see there for the call order. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct UploadTarget {
    state: Arc<State>,
}

struct State {
    locations: Locations,
    index: usize,
    parent: Arc<Dir>,
    name: String,
    rel: RelPath,
    raw: String,
}

impl fmt::Debug for UploadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadTarget")
            .field("location", &self.state.index)
            .field("path", &self.state.rel.display())
            .finish_non_exhaustive()
    }
}

/// Removes the temporary file when dropped unless disarmed: on errors, and when the
/// write future is dropped midway.
///
/// Dropping is the one place a file-system call (a single `unlinkat` of one name in an
/// already open directory) runs on the async thread: a `Drop` cannot await, and
/// removing synchronously is what guarantees nothing is left once the future is gone.
/// Every other path removes it through `spawn_blocking`.
struct TempFile {
    dir: Arc<Dir>,
    name: String,
    armed: bool,
}

/// The temporary file of an upload: nameless (`O_TMPFILE`, nothing to clean up) or a
/// hidden named file removed unless disarmed.
enum Temp {
    Anonymous,
    Named(TempFile),
}

impl Temp {
    fn remove(self) {
        if let Temp::Named(temp) = self {
            temp.remove();
        }
    }
}

/// Opens a nameless file in `dir` (`O_TMPFILE`), if the system and file system
/// support it and `/proc/self/fd` is there to link it later.
#[cfg(target_os = "linux")]
fn open_anonymous(dir: &Dir) -> Option<std::fs::File> {
    use rustix::fs::{openat, Mode, OFlags};
    if !std::path::Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    match openat(dir, ".", flags, Mode::from_bits_truncate(0o666)) {
        Ok(fd) => Some(std::fs::File::from(fd)),
        Err(err) => {
            tracing::debug!(error = %err, "O_TMPFILE unavailable; using a named temporary file");
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn open_anonymous(_dir: &Dir) -> Option<std::fs::File> {
    None
}

/// Gives the nameless `file` the name `name` in `dir`; fails with `AlreadyExists` when
/// the name exists (never replaces anything, never follows a symlink there).
#[cfg(target_os = "linux")]
fn link_anonymous(file: &std::fs::File, dir: &Dir, name: &str) -> io::Result<()> {
    use rustix::fs::{linkat, AtFlags, CWD};
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", file.as_raw_fd());
    linkat(CWD, source.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn link_anonymous(_file: &std::fs::File, _dir: &Dir, _name: &str) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Fsyncs the directory `dir` (its entries: a new name in it).
fn sync_dir(dir: &Dir) -> io::Result<()> {
    use rustix::fs::{openat, Mode, OFlags};
    let fd = openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fsync(&fd).map_err(io::Error::from)
}

impl TempFile {
    fn remove(mut self) {
        self.armed = false;
        if let Err(err) = self.dir.remove_file(&self.name) {
            tracing::warn!(file = %self.name, error = %err, "cannot remove upload temporary file");
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            if let Err(err) = self.dir.remove_file(&self.name) {
                tracing::warn!(file = %self.name, error = %err, "cannot remove upload temporary file");
            }
        }
    }
}

impl UploadTarget {
    pub(super) fn new(
        locations: Locations,
        index: usize,
        parent: Dir,
        rel: RelPath,
        raw: String,
    ) -> Result<Self> {
        let name = rel
            .file_name()
            .ok_or_else(|| Error::invalid("File path is required"))?
            .to_string();
        Ok(Self {
            state: Arc::new(State {
                locations,
                index,
                parent: Arc::new(parent),
                name,
                rel,
                raw,
            }),
        })
    }

    /// The normalized destination path relative to the location root (for the
    /// response's `path`).
    pub fn path(&self) -> String {
        self.state.rel.display()
    }

    /// The destination file name (the last component).
    pub fn file_name(&self) -> &str {
        &self.state.name
    }

    /// Runs steps 5–7 (file-type policy, destination must not exist, quota) without
    /// writing anything. [`Self::write`] runs them again itself; this is only for a
    /// caller that wants to answer before it starts reading a body.
    ///
    /// # Errors
    /// See [`Self::write`] (everything before the streaming).
    pub async fn check(&self) -> Result<()> {
        let state = Arc::clone(&self.state);
        blocking(move || state.check_blocking(0)).await
    }

    /// Steps 5–8: checks, then streams `body` into a hidden temporary file
    /// (`.s4-upload-<random>.tmp` in the destination directory) and links it into place
    /// when complete, never replacing a file that appeared meanwhile. Records the
    /// upload in the location's quota usage. Returns the number of bytes written.
    ///
    /// Nothing is pulled from `body` before the checks passed. A failure, a body error,
    /// an oversized body, cancellation, or dropping the future leaves neither the
    /// destination nor the temporary file behind. Does not buffer beyond 256 KiB.
    ///
    /// # Errors
    /// * [`ErrorKind::InvalidInput`] code `InvalidFileType` (policy, §17.8);
    /// * [`ErrorKind::AlreadyExists`] `File already exists` (also when the file appears
    ///   while the body streams);
    /// * [`ErrorKind::TooLarge`] code `QuotaExceeded` (§17.9), or without code
    ///   `File too large` once more than `max_file_size` bytes arrived;
    /// * [`ErrorKind::StorageFull`] `Disk full`; [`ErrorKind::PermissionDenied`] (EACCES);
    /// * [`ErrorKind::Cancelled`] `Upload aborted by client`;
    /// * the error `body` yielded, unchanged.
    pub async fn write<S>(self, body: S, options: WriteOptions) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let this = self.state;
        let begin = Arc::clone(&this);
        let declared = options.declared_size;
        let (file, temp) = blocking(move || {
            begin.check_blocking(declared)?;
            begin.create_temp()
        })
        .await?;

        let config = &this.locations.inner.config;
        let io_error = {
            let this = Arc::clone(&this);
            move |e| this.io_error(e)
        };
        // The data is synced here (when `S4_FSYNC` is on), the directory entry
        // once linked.
        let spec = StreamWrite {
            cancel: options.cancel.as_ref(),
            cancelled: "Upload aborted by client",
            max: Some(config.max_file_size),
            progress: options.progress.as_ref(),
            fsync: config.fsync,
            ..StreamWrite::default()
        };
        let streamed = write_stream(file, body, spec, io_error).await;
        let (file, total) = match streamed {
            Ok(written) => (written.file, written.size),
            Err(err) => {
                // Removal on a blocking thread; should this await be cut short by a
                // drop, the closure still runs to completion.
                let _ = blocking(move || {
                    temp.remove();
                    Ok(())
                })
                .await;
                return Err(err);
            }
        };
        let finish = Arc::clone(&this);
        blocking(move || {
            finish.link_into_place(file, temp)?;
            finish.locations.root(finish.index)?.record_upload(total);
            Ok(total)
        })
        .await
    }
}

impl State {
    fn io_error(&self, err: io::Error) -> Error {
        if is_escape(&err) {
            return escapes(&self.raw);
        }
        Error::from_io(err, format_args!("Cannot write '{}'", self.rel.display()))
    }

    /// Steps 5–7 on a blocking thread: file-type policy, no existing destination, quota.
    fn check_blocking(&self, declared: u64) -> Result<()> {
        self.locations.inner.config.policy.check(&self.name)?;
        match self.parent.symlink_metadata(&self.name) {
            Ok(_) => return Err(already_exists()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(self.io_error(err)),
        }
        let usage = self.locations.root(self.index)?.usage();
        check_quota(usage, declared)
    }

    /// Creates the temporary file: nameless where supported, else a hidden named file
    /// (exclusive create, so never an existing file or a symlink planted under that
    /// name).
    fn create_temp(&self) -> Result<(std::fs::File, Temp)> {
        if let Some(file) = open_anonymous(&self.parent) {
            return Ok((file, Temp::Anonymous));
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let mut attempts = 0;
        loop {
            let name = format!("{TEMP_PREFIX}{:016x}{TEMP_SUFFIX}", rand::random::<u64>());
            match self.parent.open_with(&name, &options) {
                Ok(file) => {
                    let temp = TempFile {
                        dir: Arc::clone(&self.parent),
                        name,
                        armed: true,
                    };
                    return Ok((file.into_std(), Temp::Named(temp)));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(err) => return Err(self.io_error(err)),
            }
        }
    }

    /// Gives the complete (and, with `S4_FSYNC`, already synced) temporary file its
    /// final name without replacing anything, fsyncing the directory entry after
    /// (when `S4_FSYNC` is on).
    ///
    /// A nameless file is linked (`linkat`, fails if the name exists). A named one is
    /// hard-linked (which fails if the name exists) and its temporary name removed;
    /// file systems without hard links fall back to checking the name is free and
    /// renaming (a narrow window in which a file created by someone else in between
    /// could be replaced).
    fn link_into_place(&self, file: std::fs::File, temp: Temp) -> Result<()> {
        let fsync = self.locations.inner.config.fsync;
        let linked = match temp {
            Temp::Anonymous => match link_anonymous(&file, &self.parent, &self.name) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(already_exists()),
                Err(err) => Err(self.io_error(err)),
            },
            Temp::Named(temp) => {
                drop(file);
                self.link_named(temp)
            }
        };
        linked?;
        if fsync {
            sync_dir(&self.parent).map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    fn link_named(&self, temp: TempFile) -> Result<()> {
        match self.parent.hard_link(&temp.name, &self.parent, &self.name) {
            Ok(()) => {
                temp.remove();
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(already_exists()),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) && !is_escape(&err) =>
            {
                match self.parent.symlink_metadata(&self.name) {
                    Ok(_) => return Err(already_exists()),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(self.io_error(err)),
                }
                self.parent
                    .rename(&temp.name, &self.parent, &self.name)
                    .map_err(|e| self.io_error(e))?;
                temp.disarm();
                Ok(())
            }
            Err(err) => Err(self.io_error(err)),
        }
    }
}

/// The metered write of local locations (uploads and transfers) over the one
/// streaming writer ([`crate::io::write_stream`]): checks `options.cancel`
/// between chunks (then [`ErrorKind::Cancelled`] with `cancelled`), fails with
/// [`ErrorKind::TooLarge`] `File too large` as soon as more than `max` bytes
/// arrived, and reports the cumulative count to `options.progress`. Returns the
/// file and the bytes written. On error the caller removes the file.
///
/// # Errors
/// The error `body` yielded; cancellation; the size limit; `fail(e)` for I/O.
pub(super) async fn metered_write<S>(
    file: std::fs::File,
    body: S,
    options: &WriteOptions,
    max: Option<u64>,
    cancelled: &'static str,
    fail: impl Fn(io::Error) -> Error,
) -> Result<(std::fs::File, u64)>
where
    S: Stream<Item = Result<Bytes>> + Send,
{
    let spec = StreamWrite {
        cancel: options.cancel.as_ref(),
        cancelled,
        max,
        progress: options.progress.as_ref(),
        ..StreamWrite::default()
    };
    let written = write_stream(file, body, spec, fail).await?;
    Ok((written.file, written.size))
}

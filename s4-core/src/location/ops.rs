//! The blocking file-system operations, each performed relative to a location's root
//! `cap_std::fs::Dir` (callers run them inside `spawn_blocking`).
//!
//! Rules that keep every operation inside the root even while the tree changes:
//!
//! * A path is only ever resolved by cap-std, relative to the root `Dir` (never as an
//!   ambient string path), so `..` and symlinks leading outside are refused by the
//!   sandbox at the moment of use: there is no check-then-open window.
//! * Mutations of a directory entry (unlink, rmdir, link, mkdir) go through a handle on
//!   the *parent* directory and a single name, which the kernel does not resolve further.
//! * A recursive delete never follows symlinks: a subdirectory is entered only after
//!   checking that the handle opened is the very inode `lstat` saw.

use std::ffi::OsString;
use std::io;
use std::path::Path;

use cap_std::fs::{Dir, File, Metadata, OpenOptions};
use chrono::{DateTime, Utc};

use super::path::{escapes, forbidden, is_escape, RelPath};
use super::{Entry, EntryKind};
use crate::error::{Error, ErrorKind, Result};

/// Prefix of the temporary file an upload streams into (in the destination directory).
pub(super) const TEMP_PREFIX: &str = ".s4-upload-";
/// Suffix of the temporary file an upload streams into.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is an in-flight upload's temporary file (hidden from listings).
pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A request path resolved against one location: the root handle, the normalized
/// path, and the caller's text (for messages).
pub(super) struct Target<'a> {
    pub(super) root: &'a Dir,
    pub(super) rel: &'a RelPath,
    pub(super) raw: &'a str,
}

impl Target<'_> {
    /// Maps an I/O error met while working on this path (§7.3 error table).
    pub(super) fn fail(&self, err: io::Error, action: &str) -> Error {
        if is_escape(&err) {
            return escapes(self.raw);
        }
        if err.kind() == io::ErrorKind::NotFound {
            return self.missing();
        }
        Error::from_io(
            err,
            format_args!("Cannot {action} '{}'", self.rel.display()),
        )
    }

    /// The 404 for this path: `Parent directory not found: <parent>` when the parent is
    /// missing too, else `Path not found: <path>`. (The extra look-up only shapes the
    /// message; it decides nothing.)
    pub(super) fn missing(&self) -> Error {
        let parent = self.rel.parent();
        let parent_missing = !parent.is_root()
            && self
                .root
                .metadata(parent.fs_path())
                .map_or(true, |m| !m.is_dir());
        if parent_missing {
            Error::not_found(format!("Parent directory not found: {}", parent.display()))
        } else {
            Error::not_found(format!("Path not found: {}", self.rel.display()))
        }
    }
}

fn modified(meta: &Metadata) -> Option<DateTime<Utc>> {
    meta.modified()
        .ok()
        .map(|t| DateTime::<Utc>::from(t.into_std()))
}

/// Same inode on the same device.
#[cfg(unix)]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    use cap_std::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.is_dir() && b.is_dir()
}

fn link_text(dir: &Dir, path: &Path) -> Option<String> {
    dir.read_link_contents(path)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// The immediate children of a directory, unsorted (API §17.2 entry rules).
pub(super) fn list(target: &Target<'_>) -> Result<Vec<Entry>> {
    let dir = target.root.open_dir(target.rel.fs_path()).map_err(|err| {
        if err.kind() == io::ErrorKind::NotADirectory {
            Error::invalid(format!("Not a directory: {}", target.rel.display()))
        } else {
            target.fail(err, "list")
        }
    })?;
    let mut entries = Vec::new();
    for item in dir.entries().map_err(|e| target.fail(e, "list"))? {
        let item = item.map_err(|e| target.fail(e, "list"))?;
        let os_name = item.file_name();
        // Names that are not UTF-8 cannot be addressed through the API (paths travel as
        // Base64 of UTF-8); they are shown lossily rather than hidden.
        let name = os_name.to_string_lossy().into_owned();
        if is_temp_name(&name) {
            continue;
        }
        // lstat: the entry itself, not what it may point to. An entry that vanished
        // meanwhile is skipped.
        let Ok(meta) = item.metadata() else { continue };
        let path = target.rel.join(&name).display();
        let entry = if meta.is_dir() {
            Entry::directory(name, path)
        } else if meta.is_symlink() {
            // The target's size and time, resolved inside the *root* sandbox (a link to
            // `../x` that stays in the location is fine); dangling links and links
            // leading outside cannot be stat-ed and are omitted (§17.2).
            let Ok(target_meta) = target.root.metadata(target.rel.fs_path().join(&os_name)) else {
                continue;
            };
            Entry {
                name,
                path,
                kind: EntryKind::Symlink,
                size: Some(target_meta.len()),
                modified: modified(&target_meta),
                target: link_text(&dir, Path::new(&os_name)),
            }
        } else {
            Entry::file(name, path, meta.len(), modified(&meta))
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// The entry at the target path (its own type; a symlink reports its target's size).
pub(super) fn stat(target: &Target<'_>, root_name: &str) -> Result<Entry> {
    if target.rel.is_root() {
        target
            .root
            .dir_metadata()
            .map_err(|e| target.fail(e, "stat"))?;
        return Ok(Entry::directory(root_name.to_string(), String::new()));
    }
    let path = target.rel.fs_path();
    let meta = target
        .root
        .symlink_metadata(&path)
        .map_err(|e| target.fail(e, "stat"))?;
    let name = target.rel.file_name().unwrap_or_default().to_string();
    let display = target.rel.display();
    Ok(if meta.is_dir() {
        Entry::directory(name, display)
    } else if meta.is_symlink() {
        // Following is sandboxed: a link leading outside the root is refused here.
        let target_meta = target
            .root
            .metadata(&path)
            .map_err(|e| target.fail(e, "stat"))?;
        Entry {
            name,
            path: display,
            kind: EntryKind::Symlink,
            size: Some(target_meta.len()),
            modified: modified(&target_meta),
            target: link_text(target.root, &path),
        }
    } else {
        Entry::file(name, display, meta.len(), modified(&meta))
    })
}

/// Opens a regular file for reading (symlinks followed inside the root) and returns it
/// with the metadata of the opened file itself (so size and type are those of what is
/// read, whatever happens to the path afterwards).
pub(super) fn open_file(target: &Target<'_>) -> Result<(File, Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    // O_NONBLOCK: opening a FIFO someone placed (or swapped in) at the path must not
    // park a blocking thread until a writer shows up; the fstat below then refuses it.
    // Regular files ignore the flag. (cap-fs-ext's `OpenOptionsSyncExt::nonblock` is the
    // public spelling of this hook; that crate is not a dependency.)
    options._cap_fs_ext_nonblock(true);
    let file = target
        .root
        .open_with(target.rel.fs_path(), &options)
        .map_err(|e| target.fail(e, "open"))?;
    let meta = file.metadata().map_err(|e| target.fail(e, "open"))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "Not a file: {}",
            target.rel.display()
        )));
    }
    Ok((file, meta))
}

/// Reads at most `max` bytes from the start of `file`.
pub(super) fn read_prefix(file: File, max: usize, target: &Target<'_>) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    file.take(max as u64)
        .read_to_end(&mut buf)
        .map_err(|e| target.fail(e, "read"))?;
    Ok(buf)
}

/// What a delete removed (counted as it goes, so a failure midway still reports what
/// is gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Removed {
    /// Entries removed, directories included.
    pub(super) items: u64,
    /// Non-directory entries removed.
    pub(super) files: u64,
    /// Bytes of the regular files removed.
    pub(super) bytes: u64,
}

/// Deletes the target: a file or symlink (the link itself), or a directory
/// recursively. Symlinks are never followed.
pub(super) fn delete(target: &Target<'_>, removed: &mut Removed) -> Result<()> {
    let Some(name) = target.rel.file_name() else {
        return Err(forbidden("Cannot delete the root of a storage location"));
    };
    let parent = target
        .root
        .open_dir(target.rel.parent().fs_path())
        .map_err(|e| target.fail(e, "delete"))?;
    let meta = parent
        .symlink_metadata(name)
        .map_err(|e| target.fail(e, "delete"))?;
    if meta.is_symlink() {
        // Per §7.3 a path that resolves outside the root is refused, even though
        // unlinking the link itself would not touch the outside.
        if let Err(err) = target.root.metadata(target.rel.fs_path()) {
            if is_escape(&err) {
                return Err(escapes(target.raw));
            }
        }
        parent
            .remove_file(name)
            .map_err(|e| target.fail(e, "delete"))?;
        removed.items += 1;
        removed.files += 1;
    } else if meta.is_dir() {
        let dir = open_same_dir(&parent, name.as_ref(), &meta).map_err(|e| match e {
            Some(err) => target.fail(err, "delete"),
            None => changed(target.rel),
        })?;
        remove_tree(&dir, target, removed)?;
        drop(dir);
        parent
            .remove_dir(name)
            .map_err(|e| target.fail(e, "delete"))?;
        removed.items += 1;
    } else {
        parent
            .remove_file(name)
            .map_err(|e| target.fail(e, "delete"))?;
        removed.items += 1;
        removed.files += 1;
        if meta.is_file() {
            removed.bytes += meta.len();
        }
    }
    Ok(())
}

fn changed(rel: &RelPath) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("Path changed while it was being deleted: {}", rel.display()),
    )
}

/// Opens the subdirectory `name` of `parent` only if it is still the inode `seen`
/// (an `lstat` result): a directory swapped for a symlink is never entered.
/// `Err(None)` means it changed.
fn open_same_dir(parent: &Dir, name: &Path, seen: &Metadata) -> Result<Dir, Option<io::Error>> {
    let dir = parent.open_dir(name).map_err(Some)?;
    let now = dir.dir_metadata().map_err(Some)?;
    if same_inode(seen, &now) {
        Ok(dir)
    } else {
        Err(None)
    }
}

/// Empties `dir`, counting into `removed`.
fn remove_tree(dir: &Dir, target: &Target<'_>, removed: &mut Removed) -> Result<()> {
    let fail = |err: io::Error| {
        Error::from_io(
            err,
            format_args!("Cannot delete '{}'", target.rel.display()),
        )
    };
    // Names first, then removals: no reliance on readdir behaviour while unlinking.
    let mut children: Vec<(OsString, Metadata)> = Vec::new();
    for item in dir.entries().map_err(fail)? {
        let item = item.map_err(fail)?;
        match item.metadata() {
            Ok(meta) => children.push((item.file_name(), meta)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(fail(err)),
        }
    }
    for (name, meta) in children {
        let name = Path::new(&name);
        if meta.is_dir() {
            let sub = open_same_dir(dir, name, &meta).map_err(|e| match e {
                Some(err) if is_escape(&err) => changed(target.rel),
                Some(err) => fail(err),
                None => changed(target.rel),
            })?;
            remove_tree(&sub, target, removed)?;
            drop(sub);
            dir.remove_dir(name).map_err(fail)?;
            removed.items += 1;
        } else {
            match dir.remove_file(name) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(fail(err)),
            }
            removed.items += 1;
            removed.files += 1;
            if meta.is_file() {
                removed.bytes += meta.len();
            }
        }
    }
    Ok(())
}

/// `mkdir -p` of `rel` inside the root; returns a handle on the final directory.
///
/// Each level is opened from the root (so the sandbox checks the whole path again)
/// and created, when missing, through the handle of its parent. Symlinks to
/// directories inside the root are followed; anything leading outside is refused.
///
/// # Errors
/// `Forbidden` escapes; [`ErrorKind::Conflict`] `A file exists at this path` when a
/// non-directory (file, dangling symlink) is in the way; `from_io` kinds otherwise.
pub(super) fn create_dirs(root: &Dir, rel: &RelPath, raw: &str) -> Result<Dir> {
    let in_the_way = || Error::new(ErrorKind::Conflict, "A file exists at this path");
    let fail = |err: io::Error, at: &RelPath| -> Error {
        if is_escape(&err) {
            escapes(raw)
        } else if err.kind() == io::ErrorKind::NotADirectory {
            in_the_way()
        } else {
            Error::from_io(
                err,
                format_args!("Cannot create directory '{}'", at.display()),
            )
        }
    };
    let mut current = root.try_clone().map_err(|e| fail(e, &RelPath::root()))?;
    let mut prefix = RelPath::root();
    for part in rel.parts() {
        let next = prefix.join(part);
        current = match root.open_dir(next.fs_path()) {
            Ok(dir) => dir,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match current.create_dir(part) {
                    // AlreadyExists: a concurrent mkdir (fine) or a non-directory such
                    // as a dangling symlink (mkdir never follows it); re-opening decides.
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(fail(err, &next)),
                }
                match root.open_dir(next.fs_path()) {
                    Ok(dir) => dir,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(in_the_way()),
                    Err(err) => return Err(fail(err, &next)),
                }
            }
            Err(err) => return Err(fail(err, &next)),
        };
        prefix = next;
    }
    Ok(current)
}

//! The values the locations service hands out: entries, listings, configured
//! locations, open files and quota usage. Their JSON is the adapter's business.

use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::error::Result;

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
    pub(super) fn directory(name: String, path: String) -> Self {
        Self {
            name,
            path,
            kind: EntryKind::Directory,
            size: None,
            modified: None,
            target: None,
        }
    }

    pub(super) fn file(
        name: String,
        path: String,
        size: u64,
        modified: Option<DateTime<Utc>>,
    ) -> Self {
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

/// Directories first, then by name case-insensitively, ties on the raw name.
pub(super) fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by_cached_key(|e| {
        (
            e.kind != EntryKind::Directory,
            e.name.to_lowercase(),
            e.name.clone(),
        )
    });
}

//! Out-of-band changes (API §14.5): a file-system watcher (`notify` crate) on the
//! directories of buckets that have configurations, under the directory holding
//! one sub-directory per bucket (`BUCKET_DATA_PATH`; by default the local
//! backend's data directory).
//!
//! The watcher translates each event's paths back to `(bucket, key)` (on disk a
//! key's `/` are sub-directories) and hands them to the dispatcher, which
//! coalesces them with S4's own changes and decides, from the file's current state,
//! what to report. Temporary files (`object_store`'s staging files `<name>#<n>`)
//! and directories never produce events; keys starting with `.` are dropped by the
//! dispatcher.
//!
//! `notify` reports from its own thread: the callback hands events over with
//! `blocking_send` on a bounded channel, so a burst waits in the kernel queue
//! rather than in unbounded memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ::notify::event::{CreateKind, EventKind, ModifyKind, RemoveKind};
use ::notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Capacity of the watcher → dispatcher channel.
pub(crate) const FS_CHANNEL_CAPACITY: usize = 8192;

/// A path under a watched bucket directory changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FsChange {
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// `key` names a directory that just appeared: the dispatcher scans it again
    /// once the kernel watch on it is in place (see [`translate`]).
    pub(crate) dir: bool,
}

/// The watcher and the set of watched buckets.
pub(crate) struct BucketWatcher {
    root: PathBuf,
    watcher: Option<RecommendedWatcher>,
    sender: mpsc::Sender<FsChange>,
    watched: HashSet<String>,
}

impl std::fmt::Debug for BucketWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketWatcher")
            .field("root", &self.root)
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl BucketWatcher {
    /// A watcher for bucket directories under `root` (`BUCKET_DATA_PATH`, by
    /// default the local backend's data directory), reporting on `sender`. Nothing
    /// is watched yet.
    pub(crate) fn new(root: PathBuf, sender: mpsc::Sender<FsChange>) -> Self {
        BucketWatcher {
            root,
            watcher: None,
            sender,
            watched: HashSet::new(),
        }
    }

    /// Watches exactly `buckets` (those whose directory exists). Blocking: walks
    /// the directories to add kernel watches; call it from `spawn_blocking`.
    pub(crate) fn sync(&mut self, buckets: &HashSet<String>) {
        let stale: Vec<String> = self.watched.difference(buckets).cloned().collect();
        for bucket in stale {
            if let Some(w) = self.watcher.as_mut() {
                let _ = w.unwatch(&self.root.join(&bucket));
            }
            self.watched.remove(&bucket);
            tracing::debug!(bucket, "stopped watching bucket directory");
        }
        for bucket in buckets {
            // `.` and separators never name a bucket directory (as in the backend).
            if self.watched.contains(bucket)
                || bucket.is_empty()
                || bucket.starts_with('.')
                || bucket.contains(['/', '\\', '\0'])
            {
                continue;
            }
            let dir = self.root.join(bucket);
            if !dir.is_dir() {
                continue; // A bucket whose directory does not exist is not watched.
            }
            let Some(watcher) = self.ensure_watcher() else {
                return;
            };
            match watcher.watch(&dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    self.watched.insert(bucket.clone());
                    tracing::debug!(bucket, "watching bucket directory");
                }
                Err(e) => {
                    tracing::warn!(bucket, error = %e, "cannot watch bucket directory")
                }
            }
        }
    }

    fn ensure_watcher(&mut self) -> Option<&mut RecommendedWatcher> {
        if self.watcher.is_none() {
            let root = self.root.clone();
            let sender = self.sender.clone();
            let created =
                ::notify::recommended_watcher(move |res: ::notify::Result<::notify::Event>| {
                    match res {
                        Ok(event) => {
                            for change in translate(&root, &event) {
                                // Fails only when the dispatcher is gone (shutdown).
                                if sender.blocking_send(change).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "file-system watcher error"),
                    }
                });
            match created {
                Ok(w) => self.watcher = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the file-system watcher");
                    return None;
                }
            }
        }
        self.watcher.as_mut()
    }
}

/// Most files reported from one directory that appeared (created or moved in).
const SCAN_LIMIT: usize = 100_000;

/// The `(bucket, key)` changes an event stands for. Runs on the watcher's own
/// thread, so the blocking directory scan below is allowed here.
fn translate(root: &Path, event: &::notify::Event) -> Vec<FsChange> {
    match event.kind {
        EventKind::Access(_)
        | EventKind::Remove(RemoveKind::Folder)
        | EventKind::Modify(ModifyKind::Metadata(_)) => return Vec::new(),
        _ => {}
    }
    let mut out = Vec::new();
    for path in &event.paths {
        // A directory that appeared (mkdir, or moved in): files written into it
        // before the kernel watch was added would go unseen, so report what it
        // holds; the dispatcher merges any duplicate.
        let appeared = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder)
                | EventKind::Create(CreateKind::Any)
                | EventKind::Modify(ModifyKind::Name(_))
        );
        if appeared && path.is_dir() {
            scan_dir(root, path, &mut out);
            // `notify` adds the watch on a new directory only after this handler
            // returns: a file written in between is in neither this scan nor a
            // later event. The dispatcher scans the directory again a moment later.
            out.extend(change_for_path(root, path).map(|c| FsChange { dir: true, ..c }));
        } else if !matches!(event.kind, EventKind::Create(CreateKind::Folder)) {
            out.extend(change_for_path(root, path));
        }
    }
    out
}

/// Every file under `dir`, as changes (at most [`SCAN_LIMIT`]).
pub(crate) fn scan_dir(root: &Path, dir: &Path, out: &mut Vec<FsChange>) {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    out.extend(change_for_path(root, &path));
                    seen += 1;
                    if seen >= SCAN_LIMIT {
                        tracing::warn!(dir = %dir.display(), "new directory holds too many files; not all are reported");
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// `root/<bucket>/<key...>` → the change, unless the path is not an object's.
pub(crate) fn change_for_path(root: &Path, path: &Path) -> Option<FsChange> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = rel.components().map(|c| c.as_os_str().to_str());
    let bucket = parts.next()??.to_string();
    let segments: Vec<&str> = parts.collect::<Option<Vec<&str>>>()?;
    if segments.is_empty() || bucket.starts_with('.') {
        return None;
    }
    let name = segments.last()?;
    if is_staging_name(name) {
        return None;
    }
    Some(FsChange {
        bucket,
        key: segments.join("/"),
        dir: false,
    })
}

/// `LocalFileSystem` stages writes as `<name>#<digits>`; those are not objects.
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_report_their_files() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("b1/d/e")).expect("mkdir");
        std::fs::write(root.join("b1/d/x"), b"1").expect("write");
        std::fs::write(root.join("b1/d/e/y"), b"2").expect("write");
        let event =
            ::notify::Event::new(EventKind::Create(CreateKind::Folder)).add_path(root.join("b1/d"));
        let changes = translate(root, &event);
        let mut keys: Vec<String> = changes
            .iter()
            .filter(|c| !c.dir)
            .map(|c| c.key.clone())
            .collect();
        keys.sort();
        assert_eq!(keys, vec!["d/e/y", "d/x"]);
        // ... and asks for a second scan of the directory.
        let dirs: Vec<&str> = changes
            .iter()
            .filter(|c| c.dir)
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(dirs, vec!["d"]);
        let access = ::notify::Event::new(EventKind::Access(::notify::event::AccessKind::Any))
            .add_path(root.join("b1/d/x"));
        assert!(translate(root, &access).is_empty());
    }

    #[test]
    fn paths_translate_to_keys() {
        let root = Path::new("/data");
        assert_eq!(
            change_for_path(root, Path::new("/data/b1/a/b.csv")),
            Some(FsChange {
                bucket: "b1".into(),
                key: "a/b.csv".into(),
                dir: false,
            })
        );
        assert_eq!(change_for_path(root, Path::new("/data/b1")), None);
        assert_eq!(change_for_path(root, Path::new("/data/b1/x#12")), None);
        assert_eq!(change_for_path(root, Path::new("/data/.s4/n.json")), None);
        assert_eq!(change_for_path(root, Path::new("/elsewhere/b1/x")), None);
        assert!(change_for_path(root, Path::new("/data/b1/x#y")).is_some());
    }
}

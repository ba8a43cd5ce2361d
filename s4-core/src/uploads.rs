//! In-flight object uploads: progress records and abort handles.
//!
//! Records are keyed by the decoded object key (bucket-agnostic, as the API
//! contract's upload-progress and abort-upload routes address them). A finished
//! record (completed or failed) is kept until a progress stream collects it, or for
//! [`FINISHED_RETENTION`] at most.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a finished record waits for a progress stream to collect it.
pub const FINISHED_RETENTION: Duration = Duration::from_secs(60);

/// State of one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStatus {
    /// Bytes are flowing.
    Uploading,
    /// Finished successfully.
    Completed,
    /// Failed with this message.
    Failed(String),
}

/// A snapshot of one upload's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    /// Bytes received so far.
    pub loaded: u64,
    /// Expected size in bytes (the declared file size, or an upper bound; 0 when
    /// unknown); the exact size once completed.
    pub total: u64,
    /// Current status.
    pub status: UploadStatus,
}

#[derive(Debug)]
struct Record {
    id: u64,
    loaded: u64,
    total: u64,
    status: UploadStatus,
    cancel: CancellationToken,
    finished_at: Option<Instant>,
}

/// The registry of in-flight uploads. Cheap operations under a std mutex that is
/// never held across an await point.
#[derive(Debug, Default)]
pub struct UploadTracker {
    records: Mutex<HashMap<String, Record>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Handle of one registered upload; updates its record.
#[derive(Debug)]
pub struct UploadHandle<'a> {
    tracker: &'a UploadTracker,
    key: String,
    id: u64,
    cancel: CancellationToken,
}

impl UploadTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A poisoned map only means a panic elsewhere mid-update; the data is plain.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an upload of `key` (replacing any earlier record of that key).
    pub fn start(&self, key: &str) -> UploadHandle<'_> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let mut records = self.lock();
        purge(&mut records);
        records.insert(
            key.to_string(),
            Record {
                id,
                loaded: 0,
                total: 0,
                status: UploadStatus::Uploading,
                cancel: cancel.clone(),
                finished_at: None,
            },
        );
        UploadHandle {
            tracker: self,
            key: key.to_string(),
            id,
            cancel,
        }
    }

    /// The current progress of `key`, if a record exists.
    pub fn progress(&self, key: &str) -> Option<UploadProgress> {
        let mut records = self.lock();
        purge(&mut records);
        records.get(key).map(|r| UploadProgress {
            loaded: r.loaded,
            total: r.total,
            status: r.status.clone(),
        })
    }

    /// Records `loaded` bytes for the running upload `id` (see [`UploadHandle::id`])
    /// of `key`. A record that meanwhile belongs to a newer upload of the same key
    /// is left alone, so two uploads of one key never write into each other's record.
    pub fn update_loaded(&self, key: &str, id: u64, loaded: u64) {
        let mut records = self.lock();
        if let Some(r) = records.get_mut(key) {
            if r.id == id && r.status == UploadStatus::Uploading {
                r.loaded = loaded;
            }
        }
    }

    /// Removes a finished record (after a progress stream delivered it).
    pub fn collect(&self, key: &str) {
        let mut records = self.lock();
        if records.get(key).is_some_and(|r| r.finished_at.is_some()) {
            records.remove(key);
        }
    }

    /// Aborts a running upload of `key` and drops its record. Returns whether one ran.
    pub fn abort(&self, key: &str) -> bool {
        let mut records = self.lock();
        match records.get(key) {
            Some(r) if r.status == UploadStatus::Uploading => {
                r.cancel.cancel();
                records.remove(key);
                true
            }
            _ => false,
        }
    }
}

fn purge(records: &mut HashMap<String, Record>) {
    let now = Instant::now();
    records.retain(|_, r| {
        r.finished_at
            .is_none_or(|t| now.duration_since(t) < FINISHED_RETENTION)
    });
}

impl UploadHandle<'_> {
    /// This upload's id, unique in the tracker (for [`UploadTracker::update_loaded`]
    /// from a `'static` progress callback).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The token that aborts this upload.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn update(&self, f: impl FnOnce(&mut Record)) {
        let mut records = self.tracker.lock();
        if let Some(r) = records.get_mut(&self.key) {
            if r.id == self.id {
                f(r);
            }
        }
    }

    /// Records `loaded` bytes received.
    pub fn set_loaded(&self, loaded: u64) {
        self.update(|r| r.loaded = loaded);
    }

    /// Records the expected size (see [`UploadProgress::total`]).
    pub fn set_total(&self, total: u64) {
        self.update(|r| r.total = total);
    }

    /// Marks the upload completed with `loaded` bytes (also its exact total).
    pub fn complete(self, loaded: u64) {
        self.update(|r| {
            r.loaded = loaded;
            r.total = loaded;
            r.status = UploadStatus::Completed;
            r.finished_at = Some(Instant::now());
        });
    }

    /// Marks the upload failed.
    pub fn fail(self, message: &str) {
        self.update(|r| {
            r.status = UploadStatus::Failed(message.to_string());
            r.finished_at = Some(Instant::now());
        });
    }
}

impl Drop for UploadHandle<'_> {
    /// An upload whose handler went away without finishing (e.g. the client
    /// disconnected) is recorded as failed, so progress streams end.
    fn drop(&mut self) {
        let mut records = self.tracker.lock();
        if let Some(r) = records.get_mut(&self.key) {
            if r.id == self.id && r.status == UploadStatus::Uploading {
                r.status = UploadStatus::Failed("Upload interrupted".to_string());
                r.finished_at = Some(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_goes_only_to_its_own_upload() {
        let tracker = UploadTracker::default();
        let first = tracker.start("k");
        let first_id = first.id();
        let second = tracker.start("k"); // replaces the record of `first`
        assert_ne!(first_id, second.id());
        tracker.update_loaded("k", first_id, 7);
        assert_eq!(tracker.progress("k").map(|p| p.loaded), Some(0));
        tracker.update_loaded("k", second.id(), 9);
        assert_eq!(tracker.progress("k").map(|p| p.loaded), Some(9));
    }

    #[test]
    fn lifecycle() {
        let t = UploadTracker::default();
        assert_eq!(t.progress("k"), None);
        let h = t.start("k");
        h.set_total(100);
        h.set_loaded(5);
        assert_eq!(t.progress("k").map(|p| (p.loaded, p.total)), Some((5, 100)));
        h.complete(10);
        assert_eq!(
            t.progress("k"),
            Some(UploadProgress {
                loaded: 10,
                total: 10,
                status: UploadStatus::Completed
            })
        );
        t.collect("k");
        assert_eq!(t.progress("k"), None);
    }

    #[test]
    fn dropped_handle_fails() {
        let t = UploadTracker::default();
        drop(t.start("k"));
        assert_eq!(
            t.progress("k").map(|p| p.status),
            Some(UploadStatus::Failed("Upload interrupted".into()))
        );
    }

    #[test]
    fn abort_cancels() {
        let t = UploadTracker::default();
        let h = t.start("k");
        let token = h.cancel_token();
        assert!(t.abort("k"));
        assert!(token.is_cancelled());
        assert!(!t.abort("k"));
        assert_eq!(t.progress("k"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_records_expire() {
        let t = UploadTracker::default();
        t.start("k").fail("boom");
        assert!(t.progress("k").is_some());
        tokio::time::advance(FINISHED_RETENTION + Duration::from_secs(1)).await;
        assert_eq!(t.progress("k"), None);
    }
}

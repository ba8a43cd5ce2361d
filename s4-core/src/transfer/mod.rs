//! Transfer jobs (API §15, §21): copy files between any two locations (buckets of
//! the backend, local directories) as background jobs with live progress, conflict
//! handling, cancel and cleanup.
//!
//! * [`Transfers`] (from [`S4::transfers`]) is the typed API: [`Transfers::create`],
//!   [`Transfers::check_conflicts`], [`Transfers::get`], [`Transfers::subscribe`],
//!   [`Transfers::cancel`], [`Transfers::cleanup`], and
//!   [`Transfers::create_from_source`] for jobs fed by an external source (the
//!   HuggingFace import).
//! * A job expands its items into file tasks (`expand.rs`), queues them all at once
//!   on one global FIFO limit of copies running at the same time (`limit.rs`,
//!   [`Transfers::set_max_concurrent`]), and copies each one as a stream with
//!   progress counted as bytes pass (`engine.rs`). Metadata calls (HEAD, listing,
//!   existence checks) have their own cap of 20 so they never wait for copies.
//! * Bucket → bucket (the same or another bucket) is copied **server-side** when the
//!   backend can ([`crate::Backend::copy_object`]): on the S3 backend one CopyObject
//!   up to 5 GiB, a multipart copy (UploadPartCopy, aborted on failure or cancel)
//!   above; the bytes never pass through S4 and the file counts as done when the
//!   copy completes. The memory and local backends, a key the engine cannot
//!   address, or an engine that refuses (e.g. answers `NotImplemented`) stream
//!   instead, as every other pair does.
//! * Job state is fanned out through a `watch` channel: the copy only bumps it, each
//!   listener reads the latest snapshot when it wakes (`progress.rs`), so listeners
//!   never slow a copy and never miss the latest or the terminal state.
//! * Jobs live in memory; terminal ones are kept for [`RETENTION`] then purged.
//!
//! ```no_run
//! # async fn demo(s4: s4_core::S4) -> s4_core::Result<()> {
//! use futures::StreamExt;
//! use s4_core::transfer::{ConflictMode, Endpoint, Item, TransferRequest};
//!
//! let request = TransferRequest {
//!     source: Endpoint::bucket("models", "llama")?,
//!     destination: Endpoint::local("local-0", "/backup/"),
//!     items: vec![Item::file("config.json"), Item::directory("weights")],
//!     conflict: ConflictMode::Rename,
//! };
//! let conflicts = s4.transfers().check_conflicts(&request).await?;
//! println!("{} would be renamed", conflicts.conflicts.len());
//! let created = s4.transfers().create(request).await?;
//! let mut events = s4.transfers().subscribe(&created.id).expect("job exists");
//! while let Some(job) = events.next().await {
//!     let p = job.progress();
//!     println!("{:?} {}/{} bytes", job.status, p.loaded_bytes, p.total_bytes);
//! }
//! // A cancelled job's written files can be removed again:
//! if s4.transfers().cancel(&created.id) {
//!     let report = s4.transfers().cleanup(&created.id).await?;
//!     println!("{} files removed", report.deleted);
//! }
//! # Ok(()) }
//! ```

mod engine;
mod expand;
mod limit;
mod progress;
mod types;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::S4;

pub use expand::{ConflictReport, LargeWarning};
pub use limit::DEFAULT_MAX_CONCURRENT;
pub use progress::{JobEvents, THROTTLE};
pub use types::*;

/// How long a terminal job stays queryable after `completedAt`.
pub const RETENTION: Duration = Duration::from_secs(3600);
/// Global cap on concurrent metadata calls (HEAD, listings, existence checks).
pub const METADATA_CONCURRENCY: usize = 20;
/// Large-operation warning thresholds of check-conflicts (§15.7).
pub const WARN_FILES: usize = 1000;
/// Large-operation warning size threshold (10 GiB).
pub const WARN_BYTES: u64 = 10 << 30;
/// Code of errors raised while expanding items: the adapter answers 500 with the
/// message as both `error` and `message` (§15.1).
pub const EXPANSION_FAILED: &str = "TransferExpansionFailed";
/// Code of a traversal attempt found in item paths (400, §15.2).
pub const PATH_TRAVERSAL: &str = "TransferPathTraversal";
/// Message of files ended by a cancel.
pub const CANCELLED_MESSAGE: &str = "Cancelled by user";

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum FileSource {
    /// A path inside the job's source endpoint location.
    Location { full_path: String },
    /// An external file.
    External(ExternalFile),
}

/// Immutable plan of one file.
#[derive(Debug, Clone)]
pub(crate) struct FilePlan {
    pub(crate) source: FileSource,
    /// Destination path relative to the destination location, before renames.
    pub(crate) destination: String,
    pub(crate) marker: bool,
}

/// Mutable job state, behind a std `Mutex` (never held across an `.await`).
#[derive(Debug)]
pub(crate) struct JobState {
    pub(crate) job: Job,
    /// Destination paths chosen so far by this job's files (rename collisions
    /// between files of the same job).
    pub(crate) claimed: HashSet<String>,
}

/// One job in the registry.
pub(crate) struct JobEntry {
    pub(crate) id: JobId,
    pub(crate) state: Mutex<JobState>,
    pub(crate) changed: watch::Sender<()>,
    pub(crate) cancel: CancellationToken,
    pub(crate) runner: Mutex<Option<JoinHandle<()>>>,
    pub(crate) source_endpoint: Option<Endpoint>,
    pub(crate) external: Option<Arc<dyn TransferSource>>,
    pub(crate) destination: Endpoint,
    pub(crate) conflict: ConflictMode,
    pub(crate) plans: Vec<FilePlan>,
}

impl fmt::Debug for JobEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEntry")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl JobEntry {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> Job {
        self.lock().job.clone()
    }

    /// Applies `change` to the state and wakes listeners.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut JobState) -> T) -> T {
        let out = change(&mut self.lock());
        self.changed.send_replace(());
        out
    }
}

/// Shared state of the transfer service, held by the [`S4`] handle.
#[derive(Debug)]
pub(crate) struct TransferState {
    jobs: Mutex<HashMap<JobId, Arc<JobEntry>>>,
    pub(crate) limiter: limit::Limiter,
    pub(crate) metadata: Arc<Semaphore>,
}

impl TransferState {
    pub(crate) fn new(max_concurrent: usize) -> Self {
        Self {
            jobs: Mutex::new(HashMap::new()),
            limiter: limit::Limiter::new(max_concurrent),
            metadata: Arc::new(Semaphore::new(METADATA_CONCURRENCY)),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<JobEntry>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The transfer service of an [`S4`] handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Transfers {
    s4: S4,
}

impl S4 {
    /// The transfer service (jobs, concurrency limit).
    pub fn transfers(&self) -> Transfers {
        Transfers { s4: self.clone() }
    }
}

/// `..`/absolute check of a relative path after normalization (§15.2).
pub(crate) fn is_traversal(rel: &str) -> bool {
    if rel.starts_with('/') || rel.starts_with('\\') {
        return true;
    }
    let mut depth: usize = 0;
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    false
}

fn traversal(rel: &str) -> Error {
    Error::invalid(format!(
        "Invalid file path detected (path traversal attempt): {rel}"
    ))
    .with_code(PATH_TRAVERSAL)
}

impl Transfers {
    fn state(&self) -> &TransferState {
        self.s4.transfer_state()
    }

    /// The current limit on files copied at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.state().limiter.limit()
    }

    /// Changes the limit (values below 1 become 1). Applies to files not started
    /// yet: raising it starts waiting files at once; lowering it never interrupts
    /// running copies.
    pub fn set_max_concurrent(&self, limit: usize) {
        self.state().limiter.set_limit(limit);
    }

    /// Copies running now, across all jobs.
    pub fn running_copies(&self) -> usize {
        self.state().limiter.running()
    }

    fn purge(&self) {
        let now = Utc::now();
        let keep = chrono::Duration::from_std(RETENTION).unwrap_or(chrono::Duration::hours(1));
        self.state().jobs().retain(|_, entry| {
            let job = entry.lock();
            !(job.job.status.is_terminal()
                && job.job.completed_at.is_some_and(|at| now - at > keep))
        });
    }

    fn entry(&self, id: &JobId) -> Option<Arc<JobEntry>> {
        self.purge();
        self.state().jobs().get(id).cloned()
    }

    /// Pre-flight check (§15.7): which entries already exist at the destination,
    /// plus the large-operation warning.
    ///
    /// # Errors
    /// Those of [`Self::create`] before the job is created (expansion, traversal),
    /// and destination listing failures (code [`EXPANSION_FAILED`]).
    pub async fn check_conflicts(&self, request: &TransferRequest) -> Result<ConflictReport> {
        check_items(&request.items)?;
        let entries = expand::expand(&self.s4, request).await?;
        expand::conflicts(&self.s4, request, &entries).await
    }

    /// Creates and starts a job (§15.2): expands the items, then queues every file
    /// at once. Returns as soon as the job is registered.
    ///
    /// # Errors
    /// `InvalidInput` (empty items; code [`PATH_TRAVERSAL`] for traversal;
    /// `Selected items contain no files to transfer`); expansion failures (code
    /// [`EXPANSION_FAILED`]); §7.3 errors of local paths.
    pub async fn create(&self, request: TransferRequest) -> Result<Created> {
        check_items(&request.items)?;
        if let Place::Local(id) = &request.destination.place {
            // §7.3 for the destination base path (unknown location 404, traversal
            // 403) before anything is read or written.
            self.s4
                .locations()
                .exists(id, &request.destination.path)
                .await?;
        }
        let entries = expand::expand(&self.s4, &request).await?;
        if let Some(bad) = entries.iter().find(|e| is_traversal(&e.rel)) {
            return Err(traversal(&bad.rel));
        }
        if entries.is_empty() {
            return Err(Error::invalid(
                "Selected items contain no files to transfer",
            ));
        }
        let plans: Vec<(FilePlan, u64)> = entries
            .into_iter()
            .map(|e| {
                (
                    FilePlan {
                        source: FileSource::Location {
                            full_path: request.source.join(&e.rel),
                        },
                        destination: request.destination.join(&e.rel),
                        marker: e.marker,
                    },
                    e.size,
                )
            })
            .collect();
        Ok(self.start(
            JobType::CrossStorage,
            Some(request.source),
            None,
            request.destination,
            request.conflict,
            plans,
        ))
    }

    /// Creates and starts a job whose files come from `source` (e.g. a HuggingFace
    /// import): same limit, progress, cancel and cleanup as any transfer. Each
    /// file's destination is `destination.path/file.path`.
    ///
    /// # Errors
    /// `InvalidInput` when `files` is empty or a path is absolute or climbs with `..`.
    pub fn create_from_source(
        &self,
        source: Arc<dyn TransferSource>,
        files: Vec<ExternalFile>,
        destination: Endpoint,
        conflict: ConflictMode,
    ) -> Result<Created> {
        if files.is_empty() {
            return Err(Error::invalid(
                "Selected items contain no files to transfer",
            ));
        }
        if let Some(bad) = files
            .iter()
            .find(|f| f.path.is_empty() || is_traversal(&f.path))
        {
            return Err(traversal(&bad.path));
        }
        let plans = files
            .into_iter()
            .map(|f| {
                let size = f.size;
                (
                    FilePlan {
                        destination: destination.join(&f.path),
                        source: FileSource::External(f),
                        marker: false,
                    },
                    size,
                )
            })
            .collect();
        let job_type = source.job_type();
        Ok(self.start(job_type, None, Some(source), destination, conflict, plans))
    }

    fn start(
        &self,
        job_type: JobType,
        source_endpoint: Option<Endpoint>,
        external: Option<Arc<dyn TransferSource>>,
        destination: Endpoint,
        conflict: ConflictMode,
        plans: Vec<(FilePlan, u64)>,
    ) -> Created {
        self.purge();
        let id = JobId::next();
        let files: Vec<FileState> = plans
            .iter()
            .map(|(plan, size)| FileState {
                source: match (&plan.source, &source_endpoint) {
                    (FileSource::Location { full_path }, Some(src)) => src.display(full_path),
                    (FileSource::External(f), _) => f.source.clone(),
                    (FileSource::Location { full_path }, None) => full_path.clone(),
                },
                destination: destination.display(&plan.destination),
                destination_path: plan.destination.clone(),
                size: *size,
                loaded: 0,
                status: FileStatus::Queued,
                error: None,
                skipped: false,
                started: false,
                marker: plan.marker,
            })
            .collect();
        let created = Created {
            id: id.clone(),
            file_count: files.len(),
            total_size: files.iter().map(|f| f.size).sum(),
        };
        let (changed, _) = watch::channel(());
        let entry = Arc::new(JobEntry {
            id: id.clone(),
            state: Mutex::new(JobState {
                job: Job {
                    id: id.clone(),
                    job_type,
                    status: JobStatus::Queued,
                    files,
                    created_at: Utc::now(),
                    started_at: None,
                    completed_at: None,
                    error: None,
                },
                claimed: HashSet::new(),
            }),
            changed,
            cancel: CancellationToken::new(),
            runner: Mutex::new(None),
            source_endpoint,
            external,
            destination,
            conflict,
            plans: plans.into_iter().map(|(p, _)| p).collect(),
        });
        // Queue every file now, in order, so FIFO holds across jobs.
        let tickets: Vec<_> = entry
            .plans
            .iter()
            .map(|_| self.state().limiter.enqueue())
            .collect();
        self.state().jobs().insert(id.clone(), Arc::clone(&entry));
        let runner = tokio::spawn(engine::run_job(
            self.s4.clone(),
            Arc::clone(&entry),
            tickets,
        ));
        *entry.runner.lock().unwrap_or_else(PoisonError::into_inner) = Some(runner);
        created
    }

    /// A snapshot of a job; `None` when unknown (or purged).
    pub fn get(&self, id: &JobId) -> Option<Job> {
        self.entry(id).map(|e| e.snapshot())
    }

    /// Follows a job: an immediate snapshot, then changes (at most one per second,
    /// status changes and the terminal state at once, always the latest state),
    /// ending after the terminal state. `None` when unknown.
    pub fn subscribe(&self, id: &JobId) -> Option<JobEvents> {
        self.entry(id).map(JobEvents::new)
    }

    /// Cancels a job that is not terminal (§15.5): in-flight copies are aborted,
    /// queued files never start, every file not completed becomes `error`
    /// `Cancelled by user`. Returns `false` for an unknown or terminal job.
    pub fn cancel(&self, id: &JobId) -> bool {
        let Some(entry) = self.entry(id) else {
            return false;
        };
        let cancelled = entry.update(|state| {
            if state.job.status.is_terminal() {
                return false;
            }
            for file in &mut state.job.files {
                if file.status != FileStatus::Completed {
                    file.status = FileStatus::Error;
                    file.error = Some(CANCELLED_MESSAGE.to_string());
                }
            }
            state.job.status = JobStatus::Cancelled;
            state.job.completed_at = Some(Utc::now());
            true
        });
        if cancelled {
            entry.cancel.cancel();
        }
        cancelled
    }

    /// Deletes the destination of every file of a cancelled job whose copy started
    /// (§15.6); skipped files and files that never started are untouched. Already
    /// missing files count as deleted. Bucket deletions publish change events.
    ///
    /// # Errors
    /// `NotFound` `Job not found`; `InvalidInput` code `InvalidStatus` when the job
    /// is not cancelled.
    pub async fn cleanup(&self, id: &JobId) -> Result<CleanupReport> {
        let Some(entry) = self.entry(id) else {
            return Err(Error::not_found("Job not found"));
        };
        let job = entry.snapshot();
        if job.status != JobStatus::Cancelled {
            return Err(
                Error::invalid("Job must be cancelled to cleanup files").with_code("InvalidStatus")
            );
        }
        // In-flight copies were told to stop; wait for them so nothing lands after
        // the cleanup.
        let runner = entry
            .runner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runner) = runner {
            let _ = runner.await;
        }
        let job = entry.snapshot();
        let mut report = CleanupReport::default();
        for file in job.files.iter().filter(|f| f.started && !f.skipped) {
            match engine::remove_destination(&self.s4, &entry.destination, file).await {
                Ok(()) => report.deleted += 1,
                Err(e) => report
                    .errors
                    .push(format!("{}: {}", file.destination, e.message())),
            }
        }
        Ok(report)
    }

    /// Ids of the jobs currently held (for diagnostics and tests).
    pub fn job_ids(&self) -> Vec<JobId> {
        self.purge();
        self.state().jobs().keys().cloned().collect()
    }
}

/// Items must be non-empty; no item path may be empty or climb out (`..`, absolute).
fn check_items(items: &[Item]) -> Result<()> {
    if items.is_empty() {
        return Err(Error::invalid(
            "body/items must NOT have fewer than 1 items",
        ));
    }
    for item in items {
        if item.path.is_empty() {
            return Err(Error::invalid(
                "body/items/path must NOT have fewer than 1 characters",
            ));
        }
        if is_traversal(&item.path) || item.path.contains('\0') {
            return Err(traversal(&item.path));
        }
    }
    Ok(())
}

pub(crate) fn cancelled_error() -> Error {
    Error::new(ErrorKind::Cancelled, CANCELLED_MESSAGE)
}

#[cfg(test)]
mod tests;

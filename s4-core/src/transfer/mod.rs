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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::names::BucketName;
use crate::S4;

pub use expand::{ConflictReport, LargeWarning};
pub use limit::DEFAULT_MAX_CONCURRENT;
pub use progress::{JobEvents, THROTTLE};

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

/// A job id: `transfer-<epoch ms>-<n>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        JobId(format!("transfer-{}-{n}", Utc::now().timestamp_millis()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobId {
    /// Any text: an id that was never issued simply names no job.
    fn from(value: &str) -> Self {
        JobId(value.to_string())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which kind of location an endpoint names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A bucket of the backend (`"s3"` in the API).
    Bucket(BucketName),
    /// A local location `local-<n>`.
    Local(String),
}

/// A location plus a base path (§15.1 location descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The location.
    pub place: Place,
    /// Base path with leading and trailing `/` removed (`""` = the root).
    pub path: String,
}

fn trim_base(path: &str) -> String {
    path.trim_matches('/').to_string()
}

impl Endpoint {
    /// A bucket endpoint.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid bucket name.
    pub fn bucket(bucket: &str, path: &str) -> Result<Self> {
        Ok(Endpoint {
            place: Place::Bucket(BucketName::try_from(bucket)?),
            path: trim_base(path),
        })
    }

    /// A local endpoint (the id is checked when used).
    pub fn local(id: &str, path: &str) -> Self {
        Endpoint {
            place: Place::Local(id.to_string()),
            path: trim_base(path),
        }
    }

    /// `s3` or `local`.
    pub fn type_name(&self) -> &'static str {
        match self.place {
            Place::Bucket(_) => "s3",
            Place::Local(_) => "local",
        }
    }

    /// The bucket name or location id.
    pub fn location_id(&self) -> &str {
        match &self.place {
            Place::Bucket(b) => b.as_str(),
            Place::Local(id) => id,
        }
    }

    /// `path/rel`, or `rel` at the root.
    pub fn join(&self, rel: &str) -> String {
        if self.path.is_empty() {
            rel.to_string()
        } else if rel.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{rel}", self.path)
        }
    }

    /// `<type>:<locationId>/<path>` of a path inside this location.
    pub fn display(&self, full_path: &str) -> String {
        format!("{}:{}/{full_path}", self.type_name(), self.location_id())
    }
}

/// Kind of a requested item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// One file.
    File,
    /// A directory, recursively.
    Directory,
}

/// One requested item, relative to the source base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Path relative to `source.path` (a trailing `/` on a directory is ignored).
    pub path: String,
    /// File or directory.
    pub kind: ItemKind,
}

impl Item {
    /// A file item.
    pub fn file(path: impl Into<String>) -> Self {
        Item {
            path: path.into(),
            kind: ItemKind::File,
        }
    }
    /// A directory item.
    pub fn directory(path: impl Into<String>) -> Self {
        Item {
            path: path.into(),
            kind: ItemKind::Directory,
        }
    }
}

/// What to do when a destination exists when its file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictMode {
    /// Replace it.
    Overwrite,
    /// Leave it; the file ends `completed` with `skipped`.
    Skip,
    /// Write to `<stem>-<n><ext>` with the smallest free `n ≥ 1`.
    Rename,
}

impl ConflictMode {
    /// Parses `overwrite` | `skip` | `rename`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "overwrite" => Some(Self::Overwrite),
            "skip" => Some(Self::Skip),
            "rename" => Some(Self::Rename),
            _ => None,
        }
    }
}

/// A transfer request (§15.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// Where files are read.
    pub source: Endpoint,
    /// Where files are written.
    pub destination: Endpoint,
    /// What to copy (non-empty).
    pub items: Vec<Item>,
    /// Conflict handling.
    pub conflict: ConflictMode,
}

/// A file of an external source ([`Transfers::create_from_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalFile {
    /// Path relative to the destination base path (e.g. `config.json`, `a/b.bin`).
    pub path: String,
    /// Size in bytes, known up front (`0` when unknown; replaced as bytes pass).
    pub size: u64,
    /// How the source is shown in job details (`sourcePath`), e.g. a URL.
    pub source: String,
}

/// A source of bytes outside S4 (e.g. the HuggingFace Hub) feeding a transfer job,
/// so it runs under the same limit, progress, cancel and cleanup as any transfer.
///
/// ```no_run
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use futures::stream::{self, BoxStream, StreamExt};
/// use s4_core::transfer::{ConflictMode, Endpoint, ExternalFile, TransferSource};
///
/// #[derive(Debug)]
/// struct Hello;
///
/// #[async_trait]
/// impl TransferSource for Hello {
///     async fn open(&self, _file: &ExternalFile)
///         -> s4_core::Result<BoxStream<'static, s4_core::Result<Bytes>>> {
///         Ok(stream::iter([Ok(Bytes::from_static(b"hello"))]).boxed())
///     }
/// }
///
/// # async fn demo(s4: s4_core::S4) -> s4_core::Result<()> {
/// let files = vec![ExternalFile { path: "hello.txt".into(), size: 5, source: "mem://hello".into() }];
/// let created = s4.transfers().create_from_source(
///     std::sync::Arc::new(Hello), files, Endpoint::bucket("models", "greetings")?,
///     ConflictMode::Overwrite,
/// )?;
/// println!("job {}", created.id);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait TransferSource: Send + Sync + fmt::Debug + 'static {
    /// Opens one file as a byte stream. Called when the file starts (under the
    /// concurrency limit); dropping the stream must stop the read. Connection-level
    /// failures (kind `Backend` without a status) are retried like backend reads.
    async fn open(&self, file: &ExternalFile) -> Result<BoxStream<'static, Result<Bytes>>>;

    /// Like [`TransferSource::open`], plus the file's size when opening it tells
    /// (e.g. a `Content-Length`); the engine uses it for a file listed with size 0.
    async fn open_sized(
        &self,
        file: &ExternalFile,
    ) -> Result<(BoxStream<'static, Result<Bytes>>, Option<u64>)> {
        Ok((self.open(file).await?, None))
    }

    /// Checks a file after all its bytes were written (e.g. a checksum). An error
    /// fails the file and removes what was written.
    async fn verify(&self, file: &ExternalFile, written: u64) -> Result<()> {
        let _ = (file, written);
        Ok(())
    }

    /// The job `type` shown by job details: `huggingface` for imports.
    fn job_type(&self) -> JobType {
        JobType::HuggingFace
    }
}

/// `type` of a job (§15.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobType {
    /// A transfer between locations.
    CrossStorage,
    /// A HuggingFace import.
    HuggingFace,
}

impl JobType {
    /// `cross-storage` | `huggingface`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::CrossStorage => "cross-storage",
            JobType::HuggingFace => "huggingface",
        }
    }
}

/// Job status (§15.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// No file started yet.
    Queued,
    /// Some file transferring (or finished while others wait).
    Active,
    /// Every file completed.
    Completed,
    /// Every file finished, at least one in error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobStatus {
    /// `queued` | `active` | `completed` | `failed` | `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Active => "active",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
    /// The alternate vocabulary of `job.status`: `pending` | `in_progress` | …
    pub fn alt_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "pending",
            JobStatus::Active => "in_progress",
            other => other.as_str(),
        }
    }
    /// Completed, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// File status (§15.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Waiting for a slot.
    Queued,
    /// Being copied.
    Transferring,
    /// Copied (or skipped).
    Completed,
    /// Failed or cancelled.
    Error,
}

impl FileStatus {
    /// `queued` | `transferring` | `completed` | `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Queued => "queued",
            FileStatus::Transferring => "transferring",
            FileStatus::Completed => "completed",
            FileStatus::Error => "error",
        }
    }
}

/// One file of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// Source as `<type>:<locationId>/<path>` (or the external source's text).
    pub source: String,
    /// Destination path relative to the destination location (final name after a
    /// rename).
    pub destination_path: String,
    /// Destination as `<type>:<locationId>/<path>`.
    pub destination: String,
    /// Size in bytes (the real size once known).
    pub size: u64,
    /// Bytes copied so far.
    pub loaded: u64,
    /// Status.
    pub status: FileStatus,
    /// Error message, for `error` files.
    pub error: Option<String>,
    /// Skipped because the destination existed (`skip` mode).
    pub skipped: bool,
    /// Whether the copy started writing (cleanup deletes exactly these).
    pub started: bool,
    /// An empty-directory marker entry (`.s3keep`).
    pub marker: bool,
}

/// Aggregate progress of a job (§15.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Number of files.
    pub total_files: usize,
    /// Completed files (skipped ones included).
    pub completed_files: usize,
    /// Files in error.
    pub failed_files: usize,
    /// Σ size.
    pub total_bytes: u64,
    /// Σ loaded.
    pub loaded_bytes: u64,
    /// `round(100 × loaded / total)`, 0 when total is 0.
    pub percentage: u64,
}

/// A snapshot of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// `cross-storage` or `huggingface`.
    pub job_type: JobType,
    /// Status.
    pub status: JobStatus,
    /// Files in job order.
    pub files: Vec<FileState>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the first file started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job became terminal.
    pub completed_at: Option<DateTime<Utc>>,
    /// Job-level error, if any.
    pub error: Option<String>,
}

impl Job {
    /// The aggregate progress.
    pub fn progress(&self) -> Progress {
        let mut p = Progress {
            total_files: self.files.len(),
            ..Progress::default()
        };
        for f in &self.files {
            match f.status {
                FileStatus::Completed => p.completed_files += 1,
                FileStatus::Error => p.failed_files += 1,
                _ => {}
            }
            p.total_bytes += f.size;
            p.loaded_bytes += f.loaded;
        }
        if p.total_bytes > 0 {
            p.percentage = ((p.loaded_bytes as f64 * 100.0) / p.total_bytes as f64).round() as u64;
        }
        p
    }

    /// The first file being copied, in job order.
    pub fn current_file(&self) -> Option<&FileState> {
        self.files
            .iter()
            .find(|f| f.status == FileStatus::Transferring)
    }
}

/// What [`Transfers::create`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The job id.
    pub id: JobId,
    /// Entries (markers included).
    pub file_count: usize,
    /// Σ expansion sizes.
    pub total_size: u64,
}

/// Result of [`Transfers::cleanup`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Files deleted (already missing ones included).
    pub deleted: usize,
    /// `<type>:<location>/<path>: <message>` for each failed deletion.
    pub errors: Vec<String>,
}

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

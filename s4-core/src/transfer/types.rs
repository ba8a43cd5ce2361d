//! The public values of transfers: job ids, endpoints, items, requests, the
//! external-source trait, job and file states, progress. The job registry and the
//! operations are in `mod.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::error::Result;
use crate::names::BucketName;

/// A job id: `transfer-<epoch ms>-<n>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    pub(super) fn next() -> Self {
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

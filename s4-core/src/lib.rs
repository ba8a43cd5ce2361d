//! # s4-core
//!
//! The embeddable, async core of S4: a typed API to browse, move and watch data in
//! buckets of a storage backend (local file system, memory, or any S3-compatible
//! engine) and in local directories. It knows nothing about HTTP; the `s4-http`
//! crate is a thin adapter over it, and any Rust service can link it directly.
//!
//! ```no_run
//! # async fn demo() -> s4_core::Result<()> {
//! use futures::StreamExt;
//! use s4_core::{BucketName, ObjectKey, S4, storage::MemoryBackend};
//!
//! let s4 = S4::builder().backend(MemoryBackend::new()).build();
//! let bucket = BucketName::try_from("models")?;
//! s4.create_bucket(&bucket).await?;
//! let key = ObjectKey::try_from("llama/config.json")?;
//! let body = futures::stream::iter([Ok(bytes::Bytes::from_static(b"{}"))]);
//! s4.put_object(&bucket, &key, body, Default::default()).await?;
//! let mut object = s4.get_object(&bucket, &key, Default::default()).await?;
//! while let Some(chunk) = object.body.next().await {
//!     let _bytes = chunk?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! * [`S4`]: the handle (cheap to clone, `Arc` inside). Its methods live next to their
//!   domain: buckets in `bucket.rs`, objects in `object.rs`, search in `search.rs`.
//! * [`storage`]: the [`storage::Backend`] trait (a bucket provider over
//!   `object_store`) and its three implementations, one module each.
//! * [`error`]: the one [`Error`] type with its [`ErrorKind`].
//! * [`settings`]: environment → validated [`Settings`], checked before start.
//! * [`names`] and [`codec`]: validated bucket names and keys; the Base64 path codec.
//! * [`events`]: every successful write/delete is published as an [`events::ObjectChange`].
//! * [`uploads`]: progress records and abort handles of in-flight uploads.
//! * [`multipart`]: S3-style multipart uploads (staged parts, atomic complete) and,
//!   in `exact.rs`, single-key deletes with S3 semantics, for the S3 endpoint.
//! * [`notify`]: bucket notifications: webhook configurations and event delivery.
//! * [`auth`], [`ratelimit`]: credentials, JWTs, SSE tickets, rate limits.
//! * [`transfer`]: transfer jobs between buckets and local directories, with
//!   progress, conflicts, cancel and cleanup ([`S4::transfers`]).
//! * [`location`]: local directories (`LOCAL_STORAGE_PATHS`), confined to their roots.
//! * `testing` (feature `testing`): the backend-agnostic conformance suite.
//! * [`config_store`]: runtime settings (S3, HuggingFace token, proxies, limits),
//!   persisted, secrets redacted; [`outbound`]: proxied outbound HTTP clients;
//!   [`backend_slot`]: the replaceable backend behind [`S4::replace_backend`].
//! * [`hf`]: the HuggingFace Hub client of model imports (plan, download, verify).
//! * `fakes` (feature `testing`): fake Hub, HTTP server and forward proxy for tests.
//!
//! ## Conventions
//!
//! Nothing buffers an object: reads return streams, writes consume streams, and a
//! failed or dropped write leaves nothing behind. No blocking file-system call runs
//! on the async runtime.

#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod backend_slot;
mod bucket;
pub mod codec;
pub mod config_store;
pub mod error;
pub mod events;
mod exact;
pub mod github;
pub mod hf;
pub mod location;
pub mod multipart;
pub mod names;
pub mod notify;
mod object;
pub mod outbound;
pub mod preview;
pub mod ratelimit;
mod search;
pub mod settings;
pub mod storage;
pub mod tagging;
pub mod transfer;
pub mod uploads;

#[cfg(any(test, feature = "testing"))]
pub mod fakes;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use error::{Error, ErrorKind, Result};
pub use events::{ChangeKind, ObjectChange};
pub use names::{BucketName, ObjectKey, Prefix};
pub use object::{
    etag_matches, ByteRange, DeleteFailure, DeleteOutcome, GetObjectOptions, ListOptions,
    ObjectInfo, ObjectStream, ProgressFn, PutObjectOptions, PutOutcome, PARTS_IN_FLIGHT, PART_SIZE,
};
pub use search::{
    match_offsets, MatchList, ScanStop, SearchMode, SearchOptions, SearchResult, SCAN_MAX_PAGES,
    SCAN_PAGE_SIZE,
};
pub use settings::{BackendSettings, Settings};
pub use storage::{Backend, ObjectSummary, Page};

/// The S4 handle: a storage backend plus the services around it.
///
/// Cheap to clone; every clone shares the same state.
#[derive(Clone, Debug)]
pub struct S4 {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Arc<dyn Backend>,
    /// The same backend as `backend`, replaceable at run time (API §16.2).
    slot: Arc<backend_slot::BackendSlot>,
    locations: location::Locations,
    changes: broadcast::Sender<ObjectChange>,
    uploads: uploads::UploadTracker,
    transfers: transfer::TransferState,
    notifications: notify::Notifications,
}

/// Builder of an [`S4`] handle.
#[derive(Debug, Default)]
pub struct S4Builder {
    backend: Option<Arc<dyn Backend>>,
    locations: Option<location::Locations>,
    max_concurrent_transfers: Option<usize>,
    notify: Option<notify::NotifyOptions>,
}

impl S4Builder {
    /// Uses `backend` for buckets.
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// Uses an already shared backend.
    pub fn shared_backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Exposes local directories (see [`location::Locations::new`]).
    pub fn locations(mut self, locations: location::Locations) -> Self {
        self.locations = Some(locations);
        self
    }

    /// Sets the initial limit on files copied at the same time by transfer jobs
    /// (default [`transfer::DEFAULT_MAX_CONCURRENT`]; see
    /// [`transfer::Transfers::set_max_concurrent`]).
    pub fn max_concurrent_transfers(mut self, limit: usize) -> Self {
        self.max_concurrent_transfers = Some(limit);
        self
    }

    /// Configures bucket notifications (default: an in-memory store).
    pub fn notifications(mut self, options: notify::NotifyOptions) -> Self {
        self.notify = Some(options);
        self
    }

    /// Builds the handle; without a backend, an in-memory one is used; without
    /// locations, local storage is disabled.
    pub fn build(self) -> S4 {
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(storage::MemoryBackend::new()));
        let (changes, _) = broadcast::channel(events::CHANGE_CHANNEL_CAPACITY);
        let slot = Arc::new(backend_slot::BackendSlot::new(backend));
        let backend: Arc<dyn Backend> = Arc::clone(&slot) as Arc<dyn Backend>;
        let notifications = notify::Notifications::new(
            self.notify.unwrap_or_default(),
            backend.data_dir().map(std::path::Path::to_path_buf),
        );
        S4 {
            inner: Arc::new(Inner {
                backend,
                slot,
                locations: self.locations.unwrap_or_else(location::Locations::disabled),
                changes,
                uploads: uploads::UploadTracker::default(),
                transfers: transfer::TransferState::new(
                    self.max_concurrent_transfers
                        .unwrap_or(transfer::DEFAULT_MAX_CONCURRENT),
                ),
                notifications,
            }),
        }
    }
}

impl S4 {
    /// A builder.
    pub fn builder() -> S4Builder {
        S4Builder::default()
    }

    /// Opens the backend `settings` select (creating the local data directory).
    ///
    /// # Errors
    /// When the backend cannot be opened (e.g. the data directory is not writable).
    pub async fn open_backend(settings: &BackendSettings) -> Result<Arc<dyn Backend>> {
        Ok(match settings {
            BackendSettings::Local { data_dir } => {
                Arc::new(storage::LocalBackend::open(data_dir).await?)
            }
            BackendSettings::Memory => Arc::new(storage::MemoryBackend::new()),
            BackendSettings::S3(config) => Arc::new(storage::S3Backend::with_timeouts(
                config.clone(),
                storage::S3Timeouts::from_env(),
            )?),
        })
    }

    /// Opens the backend `settings` select, with its options (`S4_FSYNC`).
    ///
    /// # Errors
    /// When the backend cannot be opened (e.g. the data directory is not writable).
    pub async fn open_backend_from(settings: &Settings) -> Result<Arc<dyn Backend>> {
        match &settings.backend {
            BackendSettings::Local { data_dir } => Ok(Arc::new(
                storage::LocalBackend::open_with(
                    data_dir,
                    storage::LocalOptions {
                        fsync: settings.fsync,
                    },
                )
                .await?,
            )),
            other => Self::open_backend(other).await,
        }
    }

    /// The storage backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// Replaces the storage backend (e.g. after `PUT /settings/s3`): calls that start
    /// afterwards use `backend`; calls already running finish on the old one.
    /// Returns the previous backend.
    pub fn replace_backend(&self, backend: Arc<dyn Backend>) -> Arc<dyn Backend> {
        self.inner.slot.replace(backend)
    }

    /// The backend currently in use, without the swapping wrapper.
    pub fn current_backend(&self) -> Arc<dyn Backend> {
        self.inner.slot.current()
    }

    /// Local storage locations (`LOCAL_STORAGE_PATHS`).
    pub fn locations(&self) -> &location::Locations {
        &self.inner.locations
    }

    /// Subscribes to object changes made through this handle.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<ObjectChange> {
        self.inner.changes.subscribe()
    }

    /// In-flight uploads (progress records and abort handles).
    pub fn uploads(&self) -> &uploads::UploadTracker {
        &self.inner.uploads
    }

    pub(crate) fn transfer_state(&self) -> &transfer::TransferState {
        &self.inner.transfers
    }

    /// Bucket notifications (webhook configurations and delivery).
    pub fn notifications(&self) -> &notify::Notifications {
        &self.inner.notifications
    }

    pub(crate) fn publish(&self, change: ObjectChange) {
        self.inner.notifications.observe(&change);
        // No subscriber is fine: nobody is listening.
        let _ = self.inner.changes.send(change);
    }
}

//! The [`S4`] handle and its [`S4Builder`]: a storage backend plus the services
//! around it (locations, change events, uploads, transfers, notifications). The
//! operations live next to their domain (`bucket.rs`, `object.rs`, `search.rs`,
//! `transfer/`, …) as further `impl S4` blocks.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::error::Result;
use crate::events::{self, ObjectChange};
#[cfg(feature = "locations")]
use crate::location;
#[cfg(feature = "notifications")]
use crate::notify;
use crate::settings::{BackendSettings, Settings};
use crate::storage::{self, Backend};
#[cfg(feature = "transfers")]
use crate::transfer;
use crate::{backend_slot, uploads};

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
    #[cfg(feature = "locations")]
    locations: location::Locations,
    changes: broadcast::Sender<ObjectChange>,
    uploads: uploads::UploadTracker,
    #[cfg(feature = "transfers")]
    transfers: transfer::TransferState,
    #[cfg(feature = "notifications")]
    notifications: notify::Notifications,
}

/// Builder of an [`S4`] handle.
///
/// A backend must be chosen before [`build`](S4Builder::build) exists: with
/// [`backend`](S4Builder::backend), [`shared_backend`](S4Builder::shared_backend)
/// or, explicitly, [`memory`](S4Builder::memory). Building without one is a
/// compile error rather than a silent in-memory store.
///
/// ```compile_fail
/// let s4 = s4_core::S4::builder().build(); // no backend chosen
/// ```
#[derive(Debug)]
pub struct S4Builder<B = NoBackend> {
    backend: B,
    #[cfg(feature = "locations")]
    locations: Option<location::Locations>,
    #[cfg(feature = "transfers")]
    max_concurrent_transfers: Option<usize>,
    #[cfg(feature = "notifications")]
    notify: Option<notify::NotifyOptions>,
}

/// The state of an [`S4Builder`] before a backend is chosen.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackend;

/// The state of an [`S4Builder`] whose backend is chosen.
#[derive(Debug, Clone)]
pub struct WithBackend(Arc<dyn Backend>);

impl Default for S4Builder {
    fn default() -> Self {
        S4Builder {
            backend: NoBackend,
            #[cfg(feature = "locations")]
            locations: None,
            #[cfg(feature = "transfers")]
            max_concurrent_transfers: None,
            #[cfg(feature = "notifications")]
            notify: None,
        }
    }
}

impl<B> S4Builder<B> {
    /// Uses `backend` for buckets.
    pub fn backend(self, backend: impl Backend) -> S4Builder<WithBackend> {
        self.shared_backend(Arc::new(backend))
    }

    /// Uses an already shared backend.
    pub fn shared_backend(self, backend: Arc<dyn Backend>) -> S4Builder<WithBackend> {
        S4Builder {
            backend: WithBackend(backend),
            #[cfg(feature = "locations")]
            locations: self.locations,
            #[cfg(feature = "transfers")]
            max_concurrent_transfers: self.max_concurrent_transfers,
            #[cfg(feature = "notifications")]
            notify: self.notify,
        }
    }

    /// Uses a fresh in-memory backend ([`storage::MemoryBackend`]): nothing
    /// outlives the process.
    pub fn memory(self) -> S4Builder<WithBackend> {
        self.backend(storage::MemoryBackend::new())
    }

    #[cfg(feature = "locations")]
    /// Exposes local directories (see [`location::Locations::new`]).
    pub fn locations(mut self, locations: location::Locations) -> Self {
        self.locations = Some(locations);
        self
    }

    #[cfg(feature = "transfers")]
    /// Sets the initial limit on files copied at the same time by transfer jobs
    /// (default [`transfer::DEFAULT_MAX_CONCURRENT`]; see
    /// [`transfer::Transfers::set_max_concurrent`]).
    pub fn max_concurrent_transfers(mut self, limit: usize) -> Self {
        self.max_concurrent_transfers = Some(limit);
        self
    }

    #[cfg(feature = "notifications")]
    /// Configures bucket notifications (default: an in-memory store).
    pub fn notifications(mut self, options: notify::NotifyOptions) -> Self {
        self.notify = Some(options);
        self
    }
}

impl S4Builder<WithBackend> {
    /// Builds the handle; without locations, local storage is disabled.
    pub fn build(self) -> S4 {
        let WithBackend(backend) = self.backend;
        let (changes, _) = broadcast::channel(events::CHANGE_CHANNEL_CAPACITY);
        let slot = Arc::new(backend_slot::BackendSlot::new(backend));
        let backend: Arc<dyn Backend> = Arc::clone(&slot) as Arc<dyn Backend>;
        #[cfg(feature = "notifications")]
        let notifications = notify::Notifications::new(
            self.notify.unwrap_or_default(),
            backend.data_dir().map(std::path::Path::to_path_buf),
        );
        S4 {
            inner: Arc::new(Inner {
                backend,
                slot,
                #[cfg(feature = "locations")]
                locations: self.locations.unwrap_or_else(location::Locations::disabled),
                changes,
                uploads: uploads::UploadTracker::default(),
                #[cfg(feature = "transfers")]
                transfers: transfer::TransferState::new(
                    self.max_concurrent_transfers
                        .unwrap_or(transfer::DEFAULT_MAX_CONCURRENT),
                ),
                #[cfg(feature = "notifications")]
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
            #[cfg(feature = "local")]
            BackendSettings::Local { data_dir } => {
                Arc::new(storage::LocalBackend::open(data_dir).await?)
            }
            BackendSettings::Memory => Arc::new(storage::MemoryBackend::new()),
            #[cfg(feature = "s3")]
            BackendSettings::S3 { config, timeouts } => Arc::new(
                storage::S3Backend::with_timeouts(config.clone(), *timeouts)?,
            ),
            #[cfg(not(all(feature = "local", feature = "s3")))]
            other => return Err(not_compiled_in(other)),
        })
    }

    /// Opens the backend `settings` select, with its options (`S4_FSYNC`).
    ///
    /// # Errors
    /// When the backend cannot be opened (e.g. the data directory is not writable).
    pub async fn open_backend_from(settings: &Settings) -> Result<Arc<dyn Backend>> {
        match &settings.backend {
            #[cfg(feature = "local")]
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

    #[cfg(feature = "locations")]
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

    #[cfg(feature = "transfers")]
    pub(crate) fn transfer_state(&self) -> &transfer::TransferState {
        &self.inner.transfers
    }

    #[cfg(feature = "notifications")]
    /// Bucket notifications (webhook configurations and delivery).
    pub fn notifications(&self) -> &notify::Notifications {
        &self.inner.notifications
    }

    pub(crate) fn publish(&self, change: ObjectChange) {
        #[cfg(feature = "notifications")]
        self.inner.notifications.observe(&change);
        // No subscriber is fine: nobody is listening.
        let _ = self.inner.changes.send(change);
    }
}

/// The error of a backend whose Cargo feature is off.
#[cfg(not(all(feature = "local", feature = "s3")))]
fn not_compiled_in(settings: &BackendSettings) -> crate::Error {
    let name = match settings {
        BackendSettings::Local { .. } => "local",
        BackendSettings::Memory => "memory",
        BackendSettings::S3 { .. } => "s3",
    };
    crate::Error::new(
        crate::ErrorKind::Unsupported,
        format!("the {name} backend is not compiled in (Cargo feature `{name}` of s4-core)"),
    )
}

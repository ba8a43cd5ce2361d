//! Bucket notifications (API §14): per-bucket webhook configurations and the
//! delivery of an event for every change to a configured bucket.
//!
//! * [`Notifications`] (from [`crate::S4::notifications`]) is the typed API:
//!   list, replace, remove, test an endpoint, proxy settings. No HTTP needed.
//! * `store.rs`: the JSON configuration file, cached, written temp-then-rename.
//! * `matching.rs`: event names, wildcards, prefix/suffix filters.
//! * `dispatch.rs`: one task consuming every write and delete s4-core makes, on
//!   every backend (handed over where [`crate::S4`] publishes its changes), and the
//!   watcher's reports, coalescing them per key and turning them into events.
//!
//! Why not [`crate::S4::subscribe_changes`]: that broadcast channel holds 4096
//! changes and a consumer that falls behind loses the oldest, which one folder
//! delete of more keys than that can cause. Changes to configured buckets go
//! instead into a dedicated intake queue ([`INTAKE_CAPACITY`]), filled
//! synchronously where s4-core publishes, so only a dispatcher stalled for that
//! many changes loses any (logged). The broadcast channel is unchanged.
//! * `watcher.rs`: a file-system watcher on configured buckets' directories under
//!   the local backend's data directory (or [`NotifyOptions::with_bucket_data_path`]),
//!   for changes made by other programs.
//! * `delivery.rs`: per-endpoint bounded queues, retries with backoff, HMAC
//!   signatures, the outbound client behind [`WebhookClient`].
//!
//! The dispatcher starts on [`Notifications::start`] (or the first configuration
//! change) and stops when the last clone of the `S4` handle is dropped; its
//! endpoint workers are owned by it and stop with it.

mod delivery;
mod dispatch;
mod matching;
mod store;
mod watcher;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use delivery::{
    payload, signature, uuid_v4, DeliveryOptions, HttpClientOptions, ProxyConfig, Unreachable,
    WebhookClient, WebhookRequest, HEADER_ATTEMPT, HEADER_EVENT_ID, HEADER_SIGNATURE,
};
pub use matching::{
    event_matches, EVENT_PATTERNS, OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, TEST_EVENT,
};

use crate::error::{Error, Result};
use crate::events::ObjectChange;
use crate::names::BucketName;

/// What GET shows instead of a secret; sent back in a PUT it keeps the stored one.
pub const REDACTED: &str = "***REDACTED***";

/// Changes to one key within this window are merged into one event.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(200);

/// Most changes waiting for the dispatcher before the oldest is dropped (logged).
pub const INTAKE_CAPACITY: usize = 1_000_000;

/// Environment variable overriding the store location.
pub const STORE_PATH_VAR: &str = "NOTIFICATION_STORE_PATH";

/// One webhook configuration entry of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEntry {
    /// Entry id (a UUID v4 unless the client chose one).
    #[serde(default)]
    pub id: String,
    /// `http://` or `https://` URL events are POSTed to.
    pub endpoint: String,
    /// Subscribed event patterns: `s3:ObjectCreated:*`, `s3:ObjectRemoved:*`.
    pub events: Vec<String>,
    /// Only keys starting with this (absent or empty: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only keys ending with this (absent or empty: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// HMAC key of `X-S4-Signature`; never shown (see [`NotificationEntry::redacted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl NotificationEntry {
    /// The entry as shown to clients: a set secret becomes [`REDACTED`].
    pub fn redacted(&self) -> Self {
        let mut shown = self.clone();
        if shown.secret.is_some() {
            shown.secret = Some(REDACTED.to_string());
        }
        shown
    }
}

/// Whether `endpoint` matches `^https?://.+`.
pub fn valid_endpoint(endpoint: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        endpoint
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// Options of the notification service.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    store_path: Option<PathBuf>,
    delivery: DeliveryOptions,
    coalesce_window: Duration,
    client: Option<Arc<dyn WebhookClient>>,
    bucket_data_path: Option<PathBuf>,
}

impl Default for NotifyOptions {
    /// An in-memory store (nothing persisted), §14.5 delivery parameters.
    fn default() -> Self {
        NotifyOptions {
            store_path: None,
            delivery: DeliveryOptions::default(),
            coalesce_window: COALESCE_WINDOW,
            client: None,
            bucket_data_path: None,
        }
    }
}

impl NotifyOptions {
    /// The store path S4 uses: `NOTIFICATION_STORE_PATH` (read through `lookup`)
    /// or `<data_dir>/.s4/notifications.json`.
    pub fn default_store_path(data_dir: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        match lookup(STORE_PATH_VAR).filter(|v| !v.trim().is_empty()) {
            Some(path) => PathBuf::from(path.trim()),
            None => data_dir.join(".s4").join("notifications.json"),
        }
    }

    /// Persists configurations in the JSON file at `path`.
    pub fn with_store_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.store_path = Some(path.into());
        self
    }

    /// Delivery parameters (attempts, backoff, timeout, queue size).
    pub fn with_delivery(mut self, delivery: DeliveryOptions) -> Self {
        self.delivery = delivery;
        self
    }

    /// The coalescing window (default [`COALESCE_WINDOW`]).
    pub fn with_coalesce_window(mut self, window: Duration) -> Self {
        self.coalesce_window = window;
        self
    }

    /// Watches `path` for out-of-band changes (API §14.5, `BUCKET_DATA_PATH`): the
    /// directory holding one sub-directory per bucket, e.g. where a bundled storage
    /// engine keeps its buckets. Default: the backend's own data directory
    /// ([`crate::Backend::data_dir`]; none for the memory and S3 backends). A
    /// bucket whose directory does not exist under it is not watched.
    pub fn with_bucket_data_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.bucket_data_path = Some(path.into());
        self
    }

    /// The directory set by [`Self::with_bucket_data_path`], if any.
    pub fn bucket_data_path(&self) -> Option<&Path> {
        self.bucket_data_path.as_deref()
    }

    /// Uses `client` for outbound POSTs instead of the default HTTP client.
    pub fn with_client(mut self, client: Arc<dyn WebhookClient>) -> Self {
        self.client = Some(client);
        self
    }
}

/// Changes to configured buckets, waiting for the dispatcher.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    /// Whether a dispatcher runs (nothing is queued for none).
    active: std::sync::atomic::AtomicBool,
    // A std lock: held only to push or drain.
    queue: Mutex<std::collections::VecDeque<ObjectChange>>,
    ready: tokio::sync::Notify,
}

impl Intake {
    /// Everything queued so far.
    pub(crate) fn drain(&self) -> Vec<ObjectChange> {
        self.queue
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Waits until something may have been queued.
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }
}

/// State shared with the dispatcher task.
#[derive(Debug)]
pub(crate) struct Shared {
    intake: Intake,
    store: store::Store,
    options: NotifyOptions,
    client: delivery::ClientSlot,
    /// The directory holding one sub-directory per bucket, watched for
    /// out-of-band changes (`BUCKET_DATA_PATH`, by default the local backend's
    /// data directory); `None` = nothing is watched.
    bucket_root: Option<PathBuf>,
    // A std lock, taken only inside `spawn_blocking` (watching walks directories).
    watcher: Option<Arc<Mutex<watcher::BucketWatcher>>>,
}

#[derive(Debug)]
struct Running {
    // Shared so that a restarted dispatcher gets the same watcher channel back.
    fs_events: Arc<tokio::sync::Mutex<mpsc::Receiver<watcher::FsChange>>>,
    task: Option<JoinHandle<()>>,
}

/// The notification service of an [`crate::S4`] handle. See the module docs.
#[derive(Debug)]
pub struct Notifications {
    shared: Arc<Shared>,
    running: Mutex<Running>,
}

impl Drop for Notifications {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            if let Some(task) = running.task.take() {
                task.abort();
            }
        }
    }
}

/// The answer of an endpoint test.
pub type TestOutcome = std::result::Result<u16, Unreachable>;

impl Notifications {
    /// The service of `options`; `backend_data_dir` is the watched directory unless
    /// [`NotifyOptions::with_bucket_data_path`] names another.
    pub(crate) fn new(options: NotifyOptions, backend_data_dir: Option<PathBuf>) -> Self {
        let bucket_root = options.bucket_data_path.clone().or(backend_data_dir);
        let client = match options.client.clone() {
            Some(client) => client,
            None => HttpClientOptions::new().build().unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build the webhook client; deliveries will fail");
                Arc::new(NoClient)
            }),
        };
        let (fs_tx, fs_rx) = mpsc::channel(watcher::FS_CHANNEL_CAPACITY);
        let watcher = bucket_root
            .clone()
            .map(|root| Arc::new(Mutex::new(watcher::BucketWatcher::new(root, fs_tx))));
        Notifications {
            shared: Arc::new(Shared {
                intake: Intake::default(),
                store: store::Store::new(options.store_path.clone()),
                options,
                client: Arc::new(RwLock::new(client)),
                bucket_root,
                watcher,
            }),
            running: Mutex::new(Running {
                fs_events: Arc::new(tokio::sync::Mutex::new(fs_rx)),
                task: None,
            }),
        }
    }

    /// The store file, when configurations are persisted.
    pub fn store_path(&self) -> Option<&Path> {
        self.shared.store.path()
    }

    /// Loads the store, watches the configured buckets (their directories under
    /// [`NotifyOptions::with_bucket_data_path`] or the local backend's data
    /// directory) and starts delivering. Idempotent; call it once at start-up so
    /// configurations from a previous run take effect before their bucket's next
    /// change.
    ///
    /// # Errors
    /// None today (an unreadable store reads as empty); kept for future checks.
    pub async fn start(&self) -> Result<()> {
        self.shared.store.snapshot().await;
        self.ensure_running();
        self.sync_watches().await;
        Ok(())
    }

    fn ensure_running(&self) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let fs = Arc::clone(&running.fs_events);
        self.shared.intake.active.store(true, SeqCst);
        let dispatcher = dispatch::Dispatcher::new(Arc::clone(&self.shared));
        running.task = Some(tokio::spawn(dispatcher.run(fs)));
    }

    /// A bucket was created: configurations written before it existed start
    /// watching its directory (when one is watched).
    pub(crate) async fn bucket_created(&self, bucket: &BucketName) {
        if self.shared.watcher.is_some()
            && self
                .shared
                .store
                .cached()
                .buckets
                .contains_key(bucket.as_str())
        {
            self.sync_watches().await;
        }
    }

    /// Hands a successful write or delete to the dispatcher (called by
    /// [`crate::S4`] for every change it publishes). Never waits.
    pub(crate) fn observe(&self, change: &ObjectChange) {
        if !self.shared.intake.active.load(SeqCst)
            || !self
                .shared
                .store
                .cached()
                .buckets
                .contains_key(change.bucket.as_str())
        {
            return;
        }
        if let Ok(mut queue) = self.shared.intake.queue.lock() {
            if queue.len() >= INTAKE_CAPACITY {
                if let Some(dropped) = queue.pop_front() {
                    tracing::warn!(bucket = %dropped.bucket, key = %dropped.key, "notification intake full: dropped the oldest change");
                }
            }
            queue.push_back(change.clone());
        }
        self.shared.intake.ready.notify_one();
    }

    /// Stops delivering and watching (pending and queued events are dropped).
    /// Configurations stay; [`Self::start`] or a configuration change resumes.
    pub async fn stop(&self) {
        if let Ok(mut running) = self.running.lock() {
            if let Some(task) = running.task.take() {
                task.abort();
            }
        }
        self.shared.intake.active.store(false, SeqCst);
        self.shared.intake.drain();
        if let Some(watcher) = self.shared.watcher.clone() {
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut watcher) = watcher.lock() {
                    watcher.sync(&HashSet::new());
                }
            })
            .await;
        }
    }

    /// Watches exactly the configured buckets (under the watched directory, if
    /// any).
    async fn sync_watches(&self) {
        let Some(watcher) = self.shared.watcher.clone() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let synced = tokio::task::spawn_blocking(move || {
            // Read the configuration under the watcher lock, so the last sync
            // always applies the latest configuration.
            if let Ok(mut watcher) = watcher.lock() {
                let buckets: HashSet<String> =
                    shared.store.cached().buckets.keys().cloned().collect();
                watcher.sync(&buckets);
            }
        })
        .await;
        if let Err(e) = synced {
            tracing::warn!(error = %e, "watcher update failed");
        }
    }

    /// The entries of `bucket` (secrets included: use
    /// [`NotificationEntry::redacted`] before showing them). Empty if none.
    pub async fn list(&self, bucket: &BucketName) -> Vec<NotificationEntry> {
        self.shared
            .store
            .snapshot()
            .await
            .buckets
            .get(bucket.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the entries of `bucket` (an empty list removes them) and returns
    /// what was stored. Empty ids get a new UUID v4; a secret equal to
    /// [`REDACTED`] keeps the stored secret of the entry with the same id; an
    /// empty secret means none. Watching and delivery follow the new list.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an invalid entry (nothing is
    /// changed); [`crate::ErrorKind::Internal`] when the store cannot be written.
    pub async fn replace(
        &self,
        bucket: &BucketName,
        entries: Vec<NotificationEntry>,
    ) -> Result<Vec<NotificationEntry>> {
        for (i, entry) in entries.iter().enumerate() {
            if !valid_endpoint(&entry.endpoint) {
                return Err(Error::invalid(format!(
                    "notifications/{i}/endpoint must match pattern \"^https?://.+\""
                )));
            }
            if entry.events.is_empty() {
                return Err(Error::invalid(format!(
                    "notifications/{i}/events must NOT have fewer than 1 items"
                )));
            }
            if let Some(bad) = entry
                .events
                .iter()
                .find(|e| !EVENT_PATTERNS.contains(&e.as_str()))
            {
                return Err(Error::invalid(format!(
                    "notifications/{i}/events has an unknown event {bad:?}"
                )));
            }
        }
        let name = bucket.as_str().to_string();
        let stored = self
            .shared
            .store
            .update(move |file| {
                let previous = file.buckets.get(&name).cloned().unwrap_or_default();
                let mut next = Vec::with_capacity(entries.len());
                for (i, mut entry) in entries.into_iter().enumerate() {
                    if entry.id.is_empty() {
                        entry.id = uuid_v4();
                    }
                    entry.secret = match entry.secret.take() {
                        Some(s) if s == REDACTED => {
                            let kept = previous
                                .iter()
                                .find(|p| p.id == entry.id)
                                .and_then(|p| p.secret.clone());
                            match kept {
                                Some(secret) => Some(secret),
                                None => {
                                    return Err(Error::invalid(format!(
                                        "notifications/{i}/secret is {REDACTED:?} but no entry with id {:?} has a secret",
                                        entry.id
                                    )))
                                }
                            }
                        }
                        Some(s) if s.is_empty() => None,
                        other => other,
                    };
                    next.push(entry);
                }
                file.buckets.insert(name, next.clone());
                Ok(next)
            })
            .await?;
        self.ensure_running();
        self.sync_watches().await;
        Ok(stored)
    }

    /// Removes the entry `id` of `bucket`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] (code `NotFound`) for an unknown id;
    /// [`crate::ErrorKind::Internal`] when the store cannot be written.
    pub async fn remove(&self, bucket: &BucketName, id: &str) -> Result<()> {
        let name = bucket.as_str().to_string();
        let id = id.to_string();
        self.shared
            .store
            .update(move |file| {
                let entries = file.buckets.get_mut(&name);
                let position = entries
                    .as_ref()
                    .and_then(|e| e.iter().position(|entry| entry.id == id));
                match (entries, position) {
                    (Some(entries), Some(i)) => {
                        entries.remove(i);
                        Ok(())
                    }
                    _ => Err(Error::not_found("Notification not found").with_code("NotFound")),
                }
            })
            .await?;
        self.sync_watches().await;
        Ok(())
    }

    /// Removes every entry of `bucket` (done when the bucket is deleted).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Internal`] when the store cannot be written.
    pub async fn remove_bucket(&self, bucket: &BucketName) -> Result<()> {
        let name = bucket.as_str().to_string();
        let present = self
            .shared
            .store
            .snapshot()
            .await
            .buckets
            .contains_key(&name);
        if !present {
            return Ok(());
        }
        self.shared
            .store
            .update(move |file| {
                file.buckets.remove(&name);
                Ok(())
            })
            .await?;
        self.sync_watches().await;
        Ok(())
    }

    /// POSTs the §14.4 sample event to `endpoint` (5 s timeout, up to 5
    /// redirects): the answer's status, or why there was none.
    pub async fn test_endpoint(&self, endpoint: &str) -> TestOutcome {
        let client = self.client();
        let body = test_payload();
        client
            .post(WebhookRequest {
                url: endpoint.to_string(),
                headers: Vec::new(),
                body,
                timeout: self.shared.options.delivery.attempt_timeout,
            })
            .await
    }

    fn client(&self) -> Arc<dyn WebhookClient> {
        match self.shared.client.read() {
            Ok(c) => Arc::clone(&c),
            Err(_) => Arc::new(NoClient),
        }
    }

    /// Rebuilds the outbound client with `proxy` (`None`: direct connections).
    /// Deliveries in progress finish with the old client.
    ///
    /// # Errors
    /// As [`HttpClientOptions::build`]; the old client stays in place.
    pub fn set_proxy(&self, proxy: Option<ProxyConfig>) -> Result<()> {
        let client = HttpClientOptions::new().with_proxy(proxy).build()?;
        self.set_client(client);
        Ok(())
    }

    /// Uses `client` for outbound POSTs from now on.
    pub fn set_client(&self, client: Arc<dyn WebhookClient>) {
        if let Ok(mut slot) = self.shared.client.write() {
            *slot = client;
        }
    }
}

/// The §14.4 sample, with the current time.
fn test_payload() -> Bytes {
    payload(TEST_EVENT, "test-bucket", "test-object.txt", 0)
}

/// Stand-in when no HTTP client could be built: every POST is unreachable.
#[derive(Debug)]
struct NoClient;

#[async_trait::async_trait]
impl WebhookClient for NoClient {
    async fn post(&self, _request: WebhookRequest) -> TestOutcome {
        Err(Unreachable {
            reason: "no HTTP client available".into(),
        })
    }
}

#[cfg(test)]
mod tests;

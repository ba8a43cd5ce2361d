//! Runtime settings (API §16): one typed store, persisted, secrets never shown.
//!
//! [`ConfigStore`] holds the settings that can change while S4 runs: the S3
//! connection, the HuggingFace token, the proxies, the transfer concurrency limit and
//! the UI page size. They start from the environment (API §22); every change made
//! through the store is written to one JSON file under the data directory
//! (`<S4_DATA_DIR>/.s4/settings.json`, temp file then rename, never partial) and
//! survives restarts. At start-up an environment variable that is explicitly set wins
//! over the persisted value, and a log line says so. A corrupt settings file stops
//! the start with an error naming the file.
//!
//! Secrets (S3 secret, HuggingFace token, proxy passwords) are read back only
//! through [`RuntimeSettings`]; what is shown to clients comes from the `redacted`
//! views, where they are [`REDACTED`]. Sending the placeholder back in an update or
//! a test keeps the stored value.
//!
//! ```no_run
//! # async fn demo() -> s4_core::Result<()> {
//! use s4_core::config_store::{ConfigStore, S3Settings, StoreOptions};
//! use s4_core::S4;
//!
//! let store = ConfigStore::open(StoreOptions::new("./s4-data".as_ref())).await?;
//! let s4 = S4::builder().memory().build();
//! // Point S4 at another S3 engine without a restart:
//! store
//!     .update_s3(&s4, S3Settings {
//!         access_key_id: "key".into(),
//!         secret_access_key: "secret".into(),
//!         region: "us-east-1".into(),
//!         endpoint: "http://127.0.0.1:3900".into(),
//!         default_bucket: String::new(),
//!     })
//!     .await?;
//! let mut limit = store.subscribe_max_concurrent_transfers();
//! store.update_max_concurrent_transfers(4).await?;
//! assert_eq!(*limit.borrow_and_update(), 4);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::{watch, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::hf::HubClient;
use crate::outbound::{NoProxy, Outbound, ProxySettings};
use crate::settings::BackendSettings;
use crate::storage::{Backend, S3Backend, S3Timeouts};
use crate::S4;

mod checks;
mod disclaimer;
mod persist;
mod values;

use persist::{effective, read_persisted, write_atomic};
pub use values::*;

/// The outcome of a settings change, for audit lines.
#[derive(Debug)]
struct State {
    effective: RuntimeSettings,
    persisted: Persisted,
    outbound: Outbound,
}

/// The runtime settings store. Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct ConfigStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    settings_path: Option<PathBuf>,
    disclaimer_path: PathBuf,
    hf_endpoint: reqwest::Url,
    no_proxy: NoProxy,
    /// `NO_PROXY` as given, one entry per item (for clients configured by list).
    no_proxy_entries: Vec<String>,
    /// Timeouts of the S3 backends the store opens.
    s3_timeouts: S3Timeouts,
    // A std lock: held only to read or replace the state, never across an await.
    state: RwLock<State>,
    /// Serializes updates (validate → persist → apply).
    updates: Mutex<()>,
    max_concurrent: watch::Sender<usize>,
}

impl ConfigStore {
    /// Opens the store: reads the settings file (missing = nothing persisted) and
    /// applies the environment over it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] (code `CorruptSettings`) naming the file when it
    /// is not valid; an I/O error when it cannot be read; an invalid `HF_ENDPOINT`.
    pub async fn open(options: StoreOptions) -> Result<Self> {
        let persisted = match &options.settings_path {
            Some(path) => read_persisted(path).await?,
            None => Persisted::default(),
        };
        let mut store = Self::build(options.clone(), persisted)?;
        if options.ca_bundles {
            let outbound = store.outbound().with_ca_bundles().await;
            store = store.with_outbound_state(outbound);
        }
        Ok(store)
    }

    /// A store with defaults that keeps changes in memory only (files under
    /// `./s4-data` only for the disclaimer): for tests and embedders.
    pub fn ephemeral() -> Self {
        let options = StoreOptions {
            settings_path: None,
            ..StoreOptions::new(Path::new("./s4-data"))
        };
        match Self::build(options, Persisted::default()) {
            Ok(store) => store,
            // The defaults are valid; `build` fails only on a bad HF_ENDPOINT.
            Err(_) => unreachable_store(),
        }
    }

    fn with_outbound_state(self, outbound: Outbound) -> Self {
        if let Ok(mut state) = self.inner.state.write() {
            state.outbound = outbound;
        }
        self
    }

    fn build(options: StoreOptions, persisted: Persisted) -> Result<Self> {
        let env = &options.env;
        let effective = effective(env, options.initial_s3.as_ref(), &persisted);
        let hf_endpoint = values::hf_endpoint(env)?;
        let raw_no_proxy = env.no_proxy.as_deref().unwrap_or("");
        let no_proxy = NoProxy::parse(raw_no_proxy);
        let no_proxy_entries = raw_no_proxy
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let outbound = Outbound::new(effective.proxy.clone(), no_proxy.clone());
        let (max_concurrent, _) = watch::channel(effective.max_concurrent_transfers);
        Ok(ConfigStore {
            inner: Arc::new(StoreInner {
                settings_path: options.settings_path,
                disclaimer_path: options.disclaimer_path,
                hf_endpoint,
                no_proxy,
                no_proxy_entries,
                s3_timeouts: options.s3_timeouts,
                state: RwLock::new(State {
                    effective,
                    persisted,
                    outbound,
                }),
                updates: Mutex::new(()),
                max_concurrent,
            }),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.inner.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// The effective settings, secrets included (never send them to a client).
    pub fn settings(&self) -> RuntimeSettings {
        self.read(|s| s.effective.clone())
    }

    /// The S3 settings, secret included.
    pub fn s3(&self) -> S3Settings {
        self.read(|s| s.effective.s3.clone())
    }

    /// Whether S3 settings were persisted by an earlier update.
    pub fn has_persisted_s3(&self) -> bool {
        self.read(|s| s.persisted.s3.is_some())
    }

    /// The HuggingFace token (`""` = none).
    pub fn hf_token(&self) -> String {
        self.read(|s| s.effective.hf_token.clone())
    }

    /// The HuggingFace Hub base URL (`HF_ENDPOINT`).
    pub fn hf_endpoint(&self) -> reqwest::Url {
        self.inner.hf_endpoint.clone()
    }

    /// The proxy settings, passwords included.
    pub fn proxy(&self) -> ProxySettings {
        self.read(|s| s.effective.proxy.clone())
    }

    /// The outbound settings every client must use (current proxies, `NO_PROXY`,
    /// CA roots).
    pub fn outbound(&self) -> Outbound {
        self.read(|s| s.outbound.clone())
    }

    /// A `reqwest::Client` following the current proxy settings (for webhooks and
    /// other outbound calls). Build a new one after a proxy change.
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        self.outbound().client()
    }

    /// A Hub client at `HF_ENDPOINT` with the current proxies; the token is
    /// `token_override` when non-empty, else the configured token, else none.
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn hub(&self, token_override: Option<&str>) -> Result<HubClient> {
        let token = token_override
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| Some(self.hf_token()).filter(|t| !t.is_empty()));
        HubClient::new(self.hf_endpoint(), &self.outbound(), token)
    }

    /// The global concurrency limit of file copies.
    pub fn max_concurrent_transfers(&self) -> usize {
        self.read(|s| s.effective.max_concurrent_transfers)
    }

    /// A receiver of the concurrency limit: the transfer engine subscribes and calls
    /// its `set_max_concurrent(n)` on every change.
    pub fn subscribe_max_concurrent_transfers(&self) -> watch::Receiver<usize> {
        self.inner.max_concurrent.subscribe()
    }

    /// The UI page size.
    pub fn max_files_per_page(&self) -> u32 {
        self.read(|s| s.effective.max_files_per_page)
    }

    /// The backend S4 should start with: `settings` (from the environment), except
    /// that S3 settings persisted by `PUT /settings/s3` select the S3 backend when
    /// `S4_BACKEND` is not explicitly set, and an S3 backend uses the effective S3
    /// settings (environment over persisted).
    pub fn startup_backend(
        &self,
        settings: &BackendSettings,
        backend_explicit: bool,
    ) -> BackendSettings {
        let s3 = self.s3();
        match settings {
            BackendSettings::S3 { timeouts, .. } => BackendSettings::S3 {
                config: s3.config(),
                timeouts: *timeouts,
            },
            _ if !backend_explicit && self.has_persisted_s3() && !s3.endpoint.is_empty() => {
                tracing::info!(endpoint = %s3.endpoint, "using the S3 backend persisted in the settings file");
                BackendSettings::S3 {
                    config: s3.config(),
                    timeouts: self.inner.s3_timeouts,
                }
            }
            other => other.clone(),
        }
    }

    /// Opens `settings`' backend, an S3 one with the current outbound settings.
    ///
    /// # Errors
    /// As [`S4::open_backend`].
    pub async fn open_backend(&self, settings: &BackendSettings) -> Result<Arc<dyn Backend>> {
        match settings {
            BackendSettings::S3 { config, timeouts } => Ok(Arc::new(S3Backend::with_options(
                config.clone(),
                &self.outbound(),
                *timeouts,
            )?)),
            other => S4::open_backend(other).await,
        }
    }

    async fn persist(&self, persisted: &Persisted) -> Result<()> {
        let Some(path) = &self.inner.settings_path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(persisted)
            .map_err(|e| Error::internal("cannot encode settings").with_source(e))?;
        write_atomic(path, &bytes).await
    }

    /// Persists `persisted` and then installs it with `effective`.
    async fn commit(&self, persisted: Persisted, effective: RuntimeSettings) -> Result<()> {
        self.persist(&persisted).await?;
        let outbound = self.outbound().with_proxy(effective.proxy.clone());
        let limit = effective.max_concurrent_transfers;
        match self.inner.state.write() {
            Ok(mut state) => {
                *state = State {
                    effective,
                    persisted,
                    outbound,
                }
            }
            Err(poisoned) => {
                *poisoned.into_inner() = State {
                    effective,
                    persisted,
                    outbound,
                }
            }
        }
        self.inner.max_concurrent.send_if_modified(|current| {
            let changed = *current != limit;
            *current = limit;
            changed
        });
        Ok(())
    }

    fn snapshot(&self) -> (Persisted, RuntimeSettings) {
        self.read(|s| (s.persisted.clone(), s.effective.clone()))
    }

    /// Replaces the S3 settings (`secretAccessKey` = [`REDACTED`] keeps the stored
    /// secret) and swaps `s4`'s backend for a new S3 client at once (no restart).
    /// A rejected update changes nothing, in memory or on disk.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid endpoint; an I/O error when the
    /// file cannot be written.
    pub async fn update_s3(&self, s4: &S4, mut update: S3Settings) -> Result<()> {
        let _guard = self.inner.updates.lock().await;
        let (mut persisted, mut effective) = self.snapshot();
        if update.secret_access_key == REDACTED {
            update.secret_access_key = effective.s3.secret_access_key.clone();
        }
        let backend =
            S3Backend::with_options(update.config(), &self.outbound(), self.inner.s3_timeouts)?;
        persisted.s3 = Some(update.clone());
        effective.s3 = update;
        self.commit(persisted, effective).await?;
        s4.replace_backend(Arc::new(backend));
        tracing::info!(target: "audit", action = "PUT", resource = "settings:s3", status = "success", "S3 settings updated; backend client rebuilt");
        Ok(())
    }

    /// Replaces the HuggingFace token (`""` clears it, [`REDACTED`] keeps it).
    ///
    /// # Errors
    /// An I/O error when the file cannot be written.
    pub async fn update_hf_token(&self, token: String) -> Result<()> {
        let _guard = self.inner.updates.lock().await;
        let (mut persisted, mut effective) = self.snapshot();
        let token = if token == REDACTED {
            effective.hf_token.clone()
        } else {
            token
        };
        persisted.hf_token = Some(token.clone());
        effective.hf_token = token;
        self.commit(persisted, effective).await
    }

    /// Replaces the proxies (a [`REDACTED`] password keeps the stored one); an S3
    /// backend in `s4` is rebuilt with them.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid proxy URL; an I/O error.
    pub async fn update_proxy(&self, s4: &S4, proxy: ProxySettings) -> Result<()> {
        let _guard = self.inner.updates.lock().await;
        let (mut persisted, mut effective) = self.snapshot();
        let proxy = proxy.keep_passwords_from(&effective.proxy)?;
        proxy.validate()?;
        let outbound = self.outbound().with_proxy(proxy.clone());
        let rebuilt = if s4.current_backend().name() == "s3" {
            Some(S3Backend::with_options(
                effective.s3.config(),
                &outbound,
                self.inner.s3_timeouts,
            )?)
        } else {
            None
        };
        persisted.proxy = Some(proxy.clone());
        effective.proxy = proxy;
        self.commit(persisted, effective).await?;
        if let Some(backend) = rebuilt {
            s4.replace_backend(Arc::new(backend));
        }
        Ok(())
    }

    /// Sets the concurrency limit (≥ 1); subscribers see the change at once.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] below 1; an I/O error.
    pub async fn update_max_concurrent_transfers(&self, limit: usize) -> Result<()> {
        if limit < 1 {
            return Err(validation("maxConcurrentTransfers must be an integer >= 1"));
        }
        let _guard = self.inner.updates.lock().await;
        let (mut persisted, mut effective) = self.snapshot();
        persisted.max_concurrent_transfers = Some(limit);
        effective.max_concurrent_transfers = limit;
        self.commit(persisted, effective).await
    }

    /// Sets the UI page size (one of [`PAGE_SIZES`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for another value; an I/O error.
    pub async fn update_max_files_per_page(&self, size: u32) -> Result<()> {
        if !PAGE_SIZES.contains(&size) {
            return Err(validation(format!(
                "maxFilesPerPage must be one of {PAGE_SIZES:?}"
            )));
        }
        let _guard = self.inner.updates.lock().await;
        let (mut persisted, mut effective) = self.snapshot();
        persisted.max_files_per_page = Some(size);
        effective.max_files_per_page = size;
        self.commit(persisted, effective).await
    }

    /// The settings file, when persisted.
    pub fn settings_path(&self) -> Option<&Path> {
        self.inner.settings_path.as_deref()
    }

    /// The `NO_PROXY` exemptions.
    pub fn no_proxy(&self) -> &NoProxy {
        &self.inner.no_proxy
    }

    /// The `NO_PROXY` entries as configured (trimmed, empties dropped), for
    /// clients that take the list itself (webhook delivery).
    pub fn no_proxy_entries(&self) -> &[String] {
        &self.inner.no_proxy_entries
    }

    /// The timeouts and retries of the S3 backends this store opens.
    pub fn s3_timeouts(&self) -> S3Timeouts {
        self.inner.s3_timeouts
    }
}

fn unreachable_store() -> ConfigStore {
    let effective = effective(&EnvSettings::default(), None, &Persisted::default());
    let (max_concurrent, _) = watch::channel(effective.max_concurrent_transfers);
    ConfigStore {
        inner: Arc::new(StoreInner {
            settings_path: None,
            disclaimer_path: PathBuf::from("./s4-data").join(DISCLAIMER_FILE),
            hf_endpoint: reqwest::Url::parse(DEFAULT_HF_ENDPOINT)
                .unwrap_or_else(|_| unreachable!("constant URL")),
            no_proxy: NoProxy::default(),
            no_proxy_entries: Vec::new(),
            s3_timeouts: S3Timeouts::default(),
            state: RwLock::new(State {
                effective,
                persisted: Persisted::default(),
                outbound: Outbound::default(),
            }),
            updates: Mutex::new(()),
            max_concurrent,
        }),
    }
}

#[cfg(test)]
mod tests;

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
//! let store = ConfigStore::open(StoreOptions::from_env("./s4-data".as_ref())).await?;
//! let s4 = S4::builder().build();
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

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{watch, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::hf::HubClient;
pub use crate::outbound::REDACTED;
use crate::outbound::{NoProxy, Outbound, ProxySettings};
use crate::settings::BackendSettings;
use crate::storage::{Backend, S3Backend, S3Config};
use crate::S4;

/// The page sizes the UI may use (API §16.6).
pub const PAGE_SIZES: [u32; 7] = [10, 25, 50, 100, 250, 500, 1000];
/// Default concurrency limit (`MAX_CONCURRENT_TRANSFERS`).
pub use crate::settings::DEFAULT_MAX_CONCURRENT_TRANSFERS;
/// Default page size (`MAX_FILES_PER_PAGE`).
pub const DEFAULT_MAX_FILES_PER_PAGE: u32 = 100;
/// Default HuggingFace Hub base URL (`HF_ENDPOINT`).
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";
/// The settings file, relative to the data directory.
pub const SETTINGS_FILE: &str = ".s4/settings.json";
/// The disclaimer file, relative to the data directory (API §16.7).
pub const DISCLAIMER_FILE: &str = ".s4/config";

fn validation(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid(message).with_code("ValidationError")
}

/// S3 connection settings (API §16.1).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Settings {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region.
    pub region: String,
    /// Endpoint URL.
    pub endpoint: String,
    /// Default bucket reported by the bucket listing (may be empty).
    #[serde(default)]
    pub default_bucket: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &REDACTED)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("default_bucket", &self.default_bucket)
            .finish()
    }
}

impl S3Settings {
    /// The view shown to clients: the secret is [`REDACTED`] when set, `""` otherwise.
    pub fn redacted(&self) -> Self {
        S3Settings {
            secret_access_key: redact(&self.secret_access_key),
            ..self.clone()
        }
    }

    /// The backend configuration.
    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: self.endpoint.trim().to_string(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            region: self.region.clone(),
        }
    }

    /// Settings from a backend configuration and a default bucket.
    pub fn from_config(config: &S3Config, default_bucket: &str) -> Self {
        S3Settings {
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
            region: config.region.clone(),
            endpoint: config.endpoint.clone(),
            default_bucket: default_bucket.to_string(),
        }
    }

    /// Parses the body of `PUT /settings/s3` (`with_default_bucket`) or of
    /// `POST /settings/test-s3`: the four strings are required and non-empty,
    /// `defaultBucket` is a string (absent = `""` for the test).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] (code `ValidationError`) naming the field.
    pub fn parse(body: &Value, with_default_bucket: bool) -> Result<Self> {
        let object = body
            .as_object()
            .ok_or_else(|| validation("body must be a JSON object"))?;
        let required = |name: &str| -> Result<String> {
            match object.get(name) {
                None | Some(Value::Null) => Err(validation(format!("{name} is required"))),
                Some(Value::String(s)) if s.trim().is_empty() => {
                    Err(validation(format!("{name} must not be empty")))
                }
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(validation(format!("{name} must be a string"))),
            }
        };
        let settings = S3Settings {
            access_key_id: required("accessKeyId")?,
            secret_access_key: required("secretAccessKey")?,
            region: required("region")?,
            endpoint: required("endpoint")?,
            default_bucket: match object.get("defaultBucket") {
                Some(Value::String(s)) => s.trim().to_string(),
                None | Some(Value::Null) if !with_default_bucket => String::new(),
                None | Some(Value::Null) => {
                    return Err(validation("defaultBucket is required"));
                }
                Some(_) => return Err(validation("defaultBucket must be a string")),
            },
        };
        let url = reqwest::Url::parse(&settings.endpoint)
            .map_err(|e| validation(format!("endpoint is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(validation("endpoint must be an http(s)://host[:port] URL"));
        }
        Ok(settings)
    }
}

fn redact(secret: &str) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        REDACTED.to_string()
    }
}

/// The effective runtime settings (secrets included: never send this to a client;
/// use [`RuntimeSettings::redacted`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// S3 connection.
    pub s3: S3Settings,
    /// HuggingFace token (`""` = none).
    pub hf_token: String,
    /// Proxies.
    pub proxy: ProxySettings,
    /// Global limit of files copied at once (≥ 1).
    pub max_concurrent_transfers: usize,
    /// UI page size, one of [`PAGE_SIZES`].
    pub max_files_per_page: u32,
}

impl std::fmt::Debug for RuntimeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted();
        f.debug_struct("RuntimeSettings")
            .field("s3", &shown.s3)
            .field("hf_token", &shown.hf_token)
            .field("proxy", &shown.proxy)
            .field("max_concurrent_transfers", &self.max_concurrent_transfers)
            .field("max_files_per_page", &self.max_files_per_page)
            .finish()
    }
}

impl RuntimeSettings {
    /// The view shown to clients: every secret [`REDACTED`].
    pub fn redacted(&self) -> Self {
        RuntimeSettings {
            s3: self.s3.redacted(),
            hf_token: redact(&self.hf_token),
            proxy: self.proxy.redacted(),
            ..self.clone()
        }
    }
}

/// What is persisted: only values that were set through the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Persisted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3: Option<S3Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hf_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy: Option<ProxySettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_concurrent_transfers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_files_per_page: Option<u32>,
}

/// Initial values from the environment (API §22); `None` = not explicitly set.
#[derive(Clone, Default)]
pub struct EnvSettings {
    /// `AWS_S3_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_S3_BUCKET`.
    pub default_bucket: Option<String>,
    /// `HF_TOKEN`.
    pub hf_token: Option<String>,
    /// `HF_ENDPOINT`.
    pub hf_endpoint: Option<String>,
    /// `HTTP_PROXY`.
    pub http_proxy: Option<String>,
    /// `HTTPS_PROXY`.
    pub https_proxy: Option<String>,
    /// `NO_PROXY`.
    pub no_proxy: Option<String>,
    /// `MAX_CONCURRENT_TRANSFERS` (raw).
    pub max_concurrent_transfers: Option<String>,
    /// `MAX_FILES_PER_PAGE` (raw).
    pub max_files_per_page: Option<String>,
}

impl std::fmt::Debug for EnvSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSettings")
            .field("endpoint", &self.endpoint)
            .field("hf_endpoint", &self.hf_endpoint)
            .field("no_proxy", &self.no_proxy)
            .finish_non_exhaustive()
    }
}

impl EnvSettings {
    /// Reads the variables through `lookup` (empty = unset; `NO_PROXY` also as `no_proxy`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| crate::settings::var(lookup, name).map(|v| v.trim().to_string());
        EnvSettings {
            endpoint: get("AWS_S3_ENDPOINT"),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            region: get("AWS_DEFAULT_REGION"),
            default_bucket: get("AWS_S3_BUCKET"),
            hf_token: get("HF_TOKEN"),
            hf_endpoint: get("HF_ENDPOINT"),
            http_proxy: get("HTTP_PROXY"),
            https_proxy: get("HTTPS_PROXY"),
            no_proxy: get("NO_PROXY").or_else(|| get("no_proxy")),
            max_concurrent_transfers: get("MAX_CONCURRENT_TRANSFERS"),
            max_files_per_page: get("MAX_FILES_PER_PAGE"),
        }
    }
}

/// `MAX_CONCURRENT_TRANSFERS`: an integer ≥ 1, else 2.
pub fn parse_max_concurrent(raw: &str) -> usize {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .unwrap_or(DEFAULT_MAX_CONCURRENT_TRANSFERS)
}

/// `MAX_FILES_PER_PAGE`: snapped to the nearest of [`PAGE_SIZES`] (ties → the
/// smaller); non-numeric → 100.
pub fn snap_page_size(raw: &str) -> u32 {
    let Ok(n) = raw.trim().parse::<f64>() else {
        return DEFAULT_MAX_FILES_PER_PAGE;
    };
    if !n.is_finite() {
        return DEFAULT_MAX_FILES_PER_PAGE;
    }
    let mut best = PAGE_SIZES[0];
    for size in PAGE_SIZES {
        if (f64::from(size) - n).abs() < (f64::from(best) - n).abs() {
            best = size;
        }
    }
    best
}

/// Where the store keeps its files, and the environment it starts from.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The settings file; `None` keeps changes in memory only.
    pub settings_path: Option<PathBuf>,
    /// The disclaimer file (API §16.7).
    pub disclaimer_path: PathBuf,
    /// Initial values.
    pub env: EnvSettings,
    /// Initial S3 settings when the environment names no endpoint (e.g. from the
    /// start-up [`BackendSettings`]).
    pub initial_s3: Option<S3Settings>,
    /// Also trust the cluster CA bundles (API §20). Default true.
    pub ca_bundles: bool,
}

impl StoreOptions {
    /// Files under `data_dir`, no environment.
    pub fn new(data_dir: &Path) -> Self {
        StoreOptions {
            settings_path: Some(data_dir.join(SETTINGS_FILE)),
            disclaimer_path: data_dir.join(DISCLAIMER_FILE),
            env: EnvSettings::default(),
            initial_s3: None,
            ca_bundles: true,
        }
    }

    /// Files under `data_dir`, initial values through `lookup`.
    pub fn from_lookup(data_dir: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        StoreOptions {
            env: EnvSettings::from_lookup(lookup),
            ..Self::new(data_dir)
        }
    }

    /// Files under `data_dir`, initial values from the process environment.
    pub fn from_env(data_dir: &Path) -> Self {
        Self::from_lookup(data_dir, &|name| std::env::var(name).ok())
    }
}

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
    // A std lock: held only to read or replace the state, never across an await.
    state: RwLock<State>,
    /// Serializes updates (validate → persist → apply).
    updates: Mutex<()>,
    max_concurrent: watch::Sender<usize>,
}

fn env_wins<T: PartialEq + Clone>(
    name: &str,
    env: Option<T>,
    persisted: Option<&T>,
    default: T,
) -> T {
    match (env, persisted) {
        (Some(env), Some(stored)) => {
            if env != *stored {
                tracing::info!(
                    variable = name,
                    "environment variable is set and wins over the persisted setting"
                );
            }
            env
        }
        (Some(env), None) => env,
        (None, Some(stored)) => stored.clone(),
        (None, None) => default,
    }
}

fn effective(env: &EnvSettings, initial_s3: Option<&S3Settings>, p: &Persisted) -> RuntimeSettings {
    let base = initial_s3.cloned().unwrap_or_else(|| S3Settings {
        access_key_id: "s4admin".into(),
        secret_access_key: "s4secret".into(),
        region: "us-east-1".into(),
        endpoint: String::new(),
        default_bucket: String::new(),
    });
    let ps = p.s3.as_ref();
    let s3 = S3Settings {
        access_key_id: env_wins(
            "AWS_ACCESS_KEY_ID",
            env.access_key_id.clone(),
            ps.map(|s| &s.access_key_id),
            base.access_key_id,
        ),
        secret_access_key: env_wins(
            "AWS_SECRET_ACCESS_KEY",
            env.secret_access_key.clone(),
            ps.map(|s| &s.secret_access_key),
            base.secret_access_key,
        ),
        region: env_wins(
            "AWS_DEFAULT_REGION",
            env.region.clone(),
            ps.map(|s| &s.region),
            base.region,
        ),
        endpoint: env_wins(
            "AWS_S3_ENDPOINT",
            env.endpoint.clone(),
            ps.map(|s| &s.endpoint),
            base.endpoint,
        ),
        default_bucket: env_wins(
            "AWS_S3_BUCKET",
            env.default_bucket.clone(),
            ps.map(|s| &s.default_bucket),
            base.default_bucket,
        ),
    };
    let pp = p.proxy.as_ref();
    RuntimeSettings {
        s3,
        hf_token: env_wins(
            "HF_TOKEN",
            env.hf_token.clone(),
            p.hf_token.as_ref(),
            String::new(),
        ),
        proxy: ProxySettings {
            http_proxy: env_wins(
                "HTTP_PROXY",
                env.http_proxy.clone(),
                pp.map(|x| &x.http_proxy),
                String::new(),
            ),
            https_proxy: env_wins(
                "HTTPS_PROXY",
                env.https_proxy.clone(),
                pp.map(|x| &x.https_proxy),
                String::new(),
            ),
        },
        max_concurrent_transfers: env_wins(
            "MAX_CONCURRENT_TRANSFERS",
            env.max_concurrent_transfers
                .as_deref()
                .map(parse_max_concurrent),
            p.max_concurrent_transfers.as_ref(),
            DEFAULT_MAX_CONCURRENT_TRANSFERS,
        ),
        max_files_per_page: env_wins(
            "MAX_FILES_PER_PAGE",
            env.max_files_per_page.as_deref().map(snap_page_size),
            p.max_files_per_page.as_ref(),
            DEFAULT_MAX_FILES_PER_PAGE,
        ),
    }
}

async fn read_persisted(path: &Path) -> Result<Persisted> {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let persisted: Persisted = serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!(
                    "settings file {} is corrupt ({e}); fix or remove it",
                    path.display()
                ))
                .with_code("CorruptSettings")
            })?;
            if persisted
                .max_files_per_page
                .is_some_and(|n| !PAGE_SIZES.contains(&n))
                || persisted.max_concurrent_transfers == Some(0)
            {
                return Err(Error::invalid(format!(
                    "settings file {} is corrupt (value out of range); fix or remove it",
                    path.display()
                ))
                .with_code("CorruptSettings"));
            }
            Ok(persisted)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
        Err(e) => Err(Error::from_io(
            e,
            format!("cannot read settings file {}", path.display()),
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename: readers see the old or the new content, never a part.
async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::from_io(e, format!("cannot create {}", dir.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", rand::random::<u64>()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::from_io(
            e,
            format!("cannot write {}", path.display()),
        ));
    }
    Ok(())
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
        let raw_endpoint = env
            .hf_endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_HF_ENDPOINT.to_string());
        let hf_endpoint = reqwest::Url::parse(raw_endpoint.trim_end_matches('/')).map_err(|e| {
            Error::invalid(format!(
                "HF_ENDPOINT={raw_endpoint:?} is not a valid URL: {e}"
            ))
        })?;
        let no_proxy = NoProxy::parse(env.no_proxy.as_deref().unwrap_or(""));
        let outbound = Outbound::new(effective.proxy.clone(), no_proxy.clone());
        let (max_concurrent, _) = watch::channel(effective.max_concurrent_transfers);
        Ok(ConfigStore {
            inner: Arc::new(StoreInner {
                settings_path: options.settings_path,
                disclaimer_path: options.disclaimer_path,
                hf_endpoint,
                no_proxy,
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
            BackendSettings::S3(_) => BackendSettings::S3(s3.config()),
            _ if !backend_explicit && self.has_persisted_s3() && !s3.endpoint.is_empty() => {
                tracing::info!(endpoint = %s3.endpoint, "using the S3 backend persisted in the settings file");
                BackendSettings::S3(s3.config())
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
            BackendSettings::S3(config) => Ok(Arc::new(S3Backend::with_options(
                config.clone(),
                &self.outbound(),
                crate::storage::S3Timeouts::from_env(),
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
        let backend = S3Backend::with_outbound(update.config(), &self.outbound())?;
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
            Some(S3Backend::with_outbound(effective.s3.config(), &outbound)?)
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

    /// Connects with `creds` (`secretAccessKey` = [`REDACTED`] means the stored
    /// secret) through the current proxies and lists buckets. Changes nothing.
    ///
    /// # Errors
    /// The backend's refusal (with its status and code), or a network failure
    /// ([`ErrorKind::Backend`], code `Error`).
    pub async fn test_s3(&self, mut creds: S3Settings) -> Result<()> {
        if creds.secret_access_key == REDACTED {
            creds.secret_access_key = self.s3().secret_access_key;
        }
        let backend = S3Backend::with_outbound(creds.config(), &self.outbound())?;
        backend.list_buckets().await.map(|_| ())
    }

    /// Calls `whoami-v2` with `token` ([`REDACTED`] = the stored token) and returns
    /// the access token's display name.
    ///
    /// # Errors
    /// Any failure, as [`HubClient::whoami`] reports it.
    pub async fn test_hf(&self, token: &str) -> Result<Option<String>> {
        let token = if token == REDACTED {
            self.hf_token()
        } else {
            token.to_string()
        };
        if token.is_empty() {
            return Err(validation("hfToken must not be empty"));
        }
        let hub = HubClient::new(self.hf_endpoint(), &self.outbound(), Some(token))?;
        hub.whoami().await.map(|w| w.access_token_display_name)
    }

    /// `GET test_url` through the proxies given (not the stored ones; a [`REDACTED`]
    /// password means the stored one), redirects followed (API §16.4).
    ///
    /// # Errors
    /// Code `ProxyTestError`: a non-2xx answer carries its status
    /// ([`Error::backend_status`]); no answer and other failures are 500s.
    pub async fn test_proxy(&self, proxy: ProxySettings, test_url: &str) -> Result<()> {
        let fail =
            |message: String| Error::new(ErrorKind::Backend, message).with_code("ProxyTestError");
        let stored = self.proxy();
        let proxy = proxy.clone().keep_passwords_from(&stored).unwrap_or(proxy);
        let url = reqwest::Url::parse(test_url.trim()).map_err(|e| fail(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(format!("unsupported URL scheme: {}", url.scheme())));
        }
        let client = self
            .outbound()
            .with_proxy(proxy)
            .client_builder()
            .map_err(|e| fail(e.message().to_string()))?
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                Err(fail(format!(
                    "Connection failed with status: {} - {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ))
                .with_backend_status(status.as_u16()))
            }
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                Err(fail("No response received from the server.".into()).with_source(e))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// The disclaimer status: `unknown` when the file is missing, unreadable,
    /// malformed or has none (API §16.7).
    pub async fn disclaimer(&self) -> String {
        let unknown = || "unknown".to_string();
        let Ok(bytes) = tokio::fs::read(&self.inner.disclaimer_path).await else {
            return unknown();
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return unknown();
        };
        value
            .pointer("/disclaimer/status")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(unknown)
    }

    /// Stores the disclaimer status (non-empty), keeping the file's other keys.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty status; I/O errors other than a
    /// missing file.
    pub async fn set_disclaimer(&self, status: &str) -> Result<()> {
        if status.trim().is_empty() {
            return Err(validation("status is required"));
        }
        let _guard = self.inner.updates.lock().await;
        let path = &self.inner.disclaimer_path;
        let mut root = match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(Default::default())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Default::default()),
            Err(e) => return Err(Error::from_io(e, format!("cannot read {}", path.display()))),
        };
        if let Some(object) = root.as_object_mut() {
            object.insert("disclaimer".into(), serde_json::json!({ "status": status }));
        }
        let bytes = serde_json::to_vec_pretty(&root)
            .map_err(|e| Error::internal("cannot encode disclaimer").with_source(e))?;
        write_atomic(path, &bytes).await
    }

    /// The settings file, when persisted.
    pub fn settings_path(&self) -> Option<&Path> {
        self.inner.settings_path.as_deref()
    }

    /// The `NO_PROXY` exemptions.
    pub fn no_proxy(&self) -> &NoProxy {
        &self.inner.no_proxy
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
mod tests {
    use super::*;

    fn options(dir: &Path, env: &[(&str, &str)]) -> StoreOptions {
        let map: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StoreOptions {
            ca_bundles: false,
            ..StoreOptions::from_lookup(dir, &move |k| map.get(k).cloned())
        }
    }

    #[test]
    fn page_size_snapping() {
        assert_eq!(snap_page_size("100"), 100);
        assert_eq!(snap_page_size("30"), 25);
        assert_eq!(snap_page_size("75"), 50);
        assert_eq!(snap_page_size("5000"), 1000);
        assert_eq!(snap_page_size("x"), 100);
        assert_eq!(parse_max_concurrent("x"), 2);
        assert_eq!(parse_max_concurrent("0"), 2);
        assert_eq!(parse_max_concurrent("7"), 7);
    }

    #[tokio::test]
    async fn persists_and_env_wins() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ConfigStore::open(options(dir.path(), &[]))
            .await
            .expect("open");
        assert_eq!(store.max_concurrent_transfers(), 2);
        let mut rx = store.subscribe_max_concurrent_transfers();
        store.update_max_concurrent_transfers(5).await.expect("set");
        assert!(rx.has_changed().expect("open channel"));
        assert_eq!(*rx.borrow_and_update(), 5);
        store
            .update_hf_token("hf_secret".into())
            .await
            .expect("set");
        store.update_max_files_per_page(250).await.expect("set");
        assert!(store.update_max_files_per_page(7).await.is_err());
        assert!(store.update_max_concurrent_transfers(0).await.is_err());
        drop(store);

        let again = ConfigStore::open(options(dir.path(), &[]))
            .await
            .expect("reopen");
        assert_eq!(again.max_concurrent_transfers(), 5);
        assert_eq!(again.hf_token(), "hf_secret");
        assert_eq!(again.max_files_per_page(), 250);
        assert_eq!(again.settings().redacted().hf_token, REDACTED);
        assert!(!format!("{:?}", again.settings()).contains("hf_secret"));

        let env = ConfigStore::open(options(
            dir.path(),
            &[("MAX_CONCURRENT_TRANSFERS", "9"), ("HF_TOKEN", "from-env")],
        ))
        .await
        .expect("reopen with env");
        assert_eq!(env.max_concurrent_transfers(), 9);
        assert_eq!(env.hf_token(), "from-env");
        assert_eq!(env.max_files_per_page(), 250);
    }

    #[tokio::test]
    async fn corrupt_file_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(SETTINGS_FILE);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"{ not json").expect("write");
        let err = ConfigStore::open(options(dir.path(), &[]))
            .await
            .expect_err("corrupt");
        assert!(err.message().contains(&path.display().to_string()), "{err}");
    }

    #[tokio::test]
    async fn placeholder_keeps_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ConfigStore::open(options(dir.path(), &[]))
            .await
            .expect("open");
        let s4 = S4::builder().build();
        let s3 = S3Settings {
            access_key_id: "k".into(),
            secret_access_key: "very-secret".into(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:1".into(),
            default_bucket: String::new(),
        };
        store.update_s3(&s4, s3.clone()).await.expect("set");
        assert_eq!(s4.backend().name(), "s3");
        store
            .update_s3(
                &s4,
                S3Settings {
                    region: "eu-1".into(),
                    ..s3.redacted()
                },
            )
            .await
            .expect("keep");
        assert_eq!(store.s3().secret_access_key, "very-secret");
        assert_eq!(store.s3().region, "eu-1");
        store.update_hf_token("tok".into()).await.expect("set");
        store.update_hf_token(REDACTED.into()).await.expect("keep");
        assert_eq!(store.hf_token(), "tok");
        let text = std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).expect("file");
        assert!(text.contains("very-secret"), "persisted for restarts");
        // A rejected update changes nothing.
        let bad = S3Settings {
            endpoint: "ftp://x".into(),
            ..s3.clone()
        };
        assert!(store.update_s3(&s4, bad).await.is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).expect("file"),
            text
        );
    }

    #[tokio::test]
    async fn disclaimer_round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ConfigStore::open(options(dir.path(), &[]))
            .await
            .expect("open");
        assert_eq!(store.disclaimer().await, "unknown");
        let path = dir.path().join(DISCLAIMER_FILE);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, br#"{"other":1}"#).expect("write");
        store.set_disclaimer("accepted").await.expect("set");
        assert_eq!(store.disclaimer().await, "accepted");
        let value: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(value["other"], 1);
        assert!(store.set_disclaimer("").await.is_err());
    }
}

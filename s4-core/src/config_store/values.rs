//! The values of the runtime settings: the S3 connection, the effective settings,
//! what is persisted, the environment's initial values and the store's options.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::outbound::ProxySettings;
pub use crate::outbound::REDACTED;
use crate::storage::{S3Config, S3Timeouts};

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

pub(super) fn validation(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
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

pub(super) fn redact(secret: &str) -> String {
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
pub(super) struct Persisted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) s3: Option<S3Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) hf_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) proxy: Option<ProxySettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) max_concurrent_transfers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) max_files_per_page: Option<u32>,
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
    /// Timeouts and retries of the S3 backends the store opens (at start and after
    /// `PUT /settings/s3` or a proxy change).
    pub s3_timeouts: S3Timeouts,
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
            s3_timeouts: S3Timeouts::default(),
        }
    }

    /// Files under `data_dir`, initial values (and the `S4_S3_*` timeouts, invalid
    /// ones kept at their defaults) through `lookup`.
    pub fn from_lookup(data_dir: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        StoreOptions {
            env: EnvSettings::from_lookup(lookup),
            s3_timeouts: S3Timeouts::from_lookup(lookup),
            ..Self::new(data_dir)
        }
    }

    /// Test options: files under `data_dir`, `env` as the whole environment, and
    /// no system CA bundles (tests talk to plain-HTTP fakes). Feature `testing`.
    #[cfg(any(test, feature = "testing"))]
    pub fn for_tests(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<&str, &str> = env.iter().copied().collect();
        StoreOptions {
            ca_bundles: false,
            ..Self::from_lookup(data_dir, &|k| map.get(k).map(|v| (*v).to_string()))
        }
    }

    /// Checks the initial values that [`super::ConfigStore::open`] would otherwise
    /// accept or reject only later: `HF_ENDPOINT` and the proxies (`HTTP_PROXY`,
    /// `HTTPS_PROXY`) must be valid URLs. Returns every problem
    /// ([`crate::ErrorKind::InvalidInput`], naming its variable); empty = valid.
    pub fn problems(&self) -> Vec<Error> {
        let mut problems = Vec::new();
        if let Err(e) = hf_endpoint(&self.env) {
            problems.push(e);
        }
        for (name, value) in [
            ("HTTP_PROXY", &self.env.http_proxy),
            ("HTTPS_PROXY", &self.env.https_proxy),
        ] {
            let Some(value) = value else { continue };
            let proxy = ProxySettings {
                http_proxy: value.clone(),
                https_proxy: String::new(),
            };
            if proxy.validate().is_err() {
                problems.push(Error::invalid(format!(
                    "{name}={value:?} is not an http(s)://host[:port] URL"
                )));
            }
        }
        problems
    }
}

/// The HuggingFace Hub base URL of `HF_ENDPOINT` (default [`DEFAULT_HF_ENDPOINT`]).
pub(super) fn hf_endpoint(env: &EnvSettings) -> Result<reqwest::Url> {
    let raw = env
        .hf_endpoint
        .clone()
        .unwrap_or_else(|| DEFAULT_HF_ENDPOINT.to_string());
    reqwest::Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| Error::invalid(format!("HF_ENDPOINT={raw:?} is not a valid URL: {e}")))
}

//! Start-up configuration: raw environment → validated [`Settings`].
//!
//! Everything is read and checked before anything listens, so a bad value fails the
//! start with a clear message instead of surfacing on the first request. Values the
//! API contract says fall back to a default when invalid (e.g. `MAX_FILE_SIZE_GB`)
//! do so; values that would silently change behaviour (a bad `PORT`, `IP`,
//! `S4_BACKEND`, an S3 backend without endpoint) are errors.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::storage::S3Config;

/// Default limit on files copied at the same time by transfer jobs
/// (`MAX_CONCURRENT_TRANSFERS`).
pub const DEFAULT_MAX_CONCURRENT_TRANSFERS: usize = 2;

/// Which storage backend holds the buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// Buckets are directories under `data_dir` (the embedded default).
    Local {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// Buckets live in process memory.
    Memory,
    /// Buckets live on an S3-compatible endpoint.
    S3(S3Config),
}

impl BackendSettings {
    /// Short name: `local`, `memory` or `s3`.
    pub fn name(&self) -> &'static str {
        match self {
            BackendSettings::Local { .. } => "local",
            BackendSettings::Memory => "memory",
            BackendSettings::S3(_) => "s3",
        }
    }
}

/// Validated start-up settings (see the README's configuration table).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bind address (`IP`, default `127.0.0.1`).
    pub ip: IpAddr,
    /// Listen port (`PORT`, else `BACKEND_PORT`, default 5000).
    pub port: u16,
    /// Storage backend (`S4_BACKEND`, `S4_DATA_DIR`, `AWS_*`).
    pub backend: BackendSettings,
    /// S4's data directory (`S4_DATA_DIR`, default `./s4-data`), also used for
    /// state files whatever the backend.
    pub data_dir: PathBuf,
    /// Default bucket reported by the bucket listing (`AWS_S3_BUCKET`).
    pub default_bucket: String,
    /// Upload size limit in bytes (`MAX_FILE_SIZE_GB` × 2^30, default 20 GiB).
    pub max_file_size: u64,
    /// The configured `MAX_FILE_SIZE_GB` value, for messages.
    pub max_file_size_gb: u64,
    /// Log filter (`LOG_LEVEL`, default `info`): a level name, or a tracing
    /// directive list (`info,s4_core=debug`), which the daemon parses.
    pub log_level: String,
    /// Audit lines enabled (`AUDIT_LOG_ENABLED`, default true).
    pub audit_log: bool,
    /// Initial limit on files copied at the same time by transfer jobs
    /// (`MAX_CONCURRENT_TRANSFERS`, integer ≥ 1, default 2; anything else → 2).
    pub max_concurrent_transfers: usize,
    /// `fsync` written files and directory entries before acknowledging a write
    /// (`S4_FSYNC`, default `true`; `false` turns it off).
    pub fsync: bool,
}

/// Every environment variable S4 reads, with its meaning, for `--help` and docs.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "PORT",
        "Listen port (default 5000; BACKEND_PORT is used when PORT is unset)",
    ),
    ("BACKEND_PORT", "Fallback listen port"),
    (
        "IP",
        "Bind address (default 127.0.0.1; use 0.0.0.0 in containers)",
    ),
    (
        "S4_BACKEND",
        "local | memory | s3 (default: s3 if AWS_S3_ENDPOINT is set, else local)",
    ),
    (
        "S4_DATA_DIR",
        "Data directory of the local backend and S4's state (default ./s4-data)",
    ),
    (
        "AWS_S3_ENDPOINT",
        "S3-compatible endpoint to manage; selects the s3 backend",
    ),
    ("AWS_ACCESS_KEY_ID", "Backend access key (default s4admin)"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "Backend secret key (default s4secret)",
    ),
    ("AWS_DEFAULT_REGION", "Backend region (default us-east-1)"),
    (
        "AWS_S3_BUCKET",
        "Default bucket reported by GET /api/buckets",
    ),
    ("MAX_FILE_SIZE_GB", "Upload size limit in GiB (default 20)"),
    (
        "NOTIFICATION_STORE_PATH",
        "Webhook configuration file (default <S4_DATA_DIR>/.s4/notifications.json)",
    ),
    (
        "NB_PREFIX",
        "URL prefix of the whole app, e.g. /notebook/ns/name",
    ),
    (
        "LOG_LEVEL",
        "Log verbosity: error, warn, info, debug, trace, off, or a directive list (default info)",
    ),
    (
        "LOG_FORMAT",
        "text (default; colours only on a terminal) or json (one object per line)",
    ),
    (
        "LOG_HEALTH_CHECKS",
        "true: also log GET /api, /api/kernels, /api/terminals",
    ),
    (
        "AUDIT_LOG_ENABLED",
        "false: disable audit log lines (default true)",
    ),
    (
        "S4_FSYNC",
        "false: do not fsync written files and their directory entries (default true)",
    ),
    (
        "UI_USERNAME",
        "Login user name; with UI_PASSWORD enables authentication",
    ),
    (
        "UI_PASSWORD",
        "Login password; with UI_USERNAME enables authentication",
    ),
    (
        "DISABLE_AUTH",
        "false: require JWTs even without login credentials",
    ),
    (
        "JWT_SECRET",
        "HS256 key for tokens (default: random per process)",
    ),
    (
        "JWT_EXPIRATION_HOURS",
        "Token lifetime in hours (default 8)",
    ),
    (
        "COOKIE_REQUIRE_HTTPS",
        "false: session cookie without Secure",
    ),
    (
        "NODE_ENV",
        "development: cookie SameSite=Lax and never Secure",
    ),
    (
        "APP_ENV",
        "development: extra dev origins in the CSP connect-src",
    ),
    (
        "SSE_TICKET_TTL_SECONDS",
        "SSE ticket lifetime in seconds (default 60)",
    ),
    (
        "ALLOWED_ORIGINS",
        "Comma-separated CORS origins (default: localhost dev origins)",
    ),
    (
        "LOCAL_STORAGE_PATHS",
        "Comma-separated directories exposed as local-0, local-1, ...",
    ),
    (
        "ALLOWED_FILE_EXTENSIONS",
        "Replace the local-upload extension allow-list",
    ),
    (
        "ALLOWED_FILE_EXTENSIONS_APPEND",
        "Extend the local-upload extension allow-list",
    ),
    (
        "BLOCKED_FILE_EXTENSIONS",
        "Replace the local-upload extension block-list",
    ),
    (
        "BLOCKED_FILE_EXTENSIONS_APPEND",
        "Extend the local-upload extension block-list",
    ),
    ("HF_TOKEN", "Initial HuggingFace token"),
    (
        "HF_ENDPOINT",
        "HuggingFace Hub base URL (default https://huggingface.co)",
    ),
    ("HTTP_PROXY", "Initial proxy for http:// targets"),
    ("HTTPS_PROXY", "Initial proxy for https:// targets"),
    (
        "NO_PROXY",
        "Proxy exemptions: hosts, .domains, host:port, IPs, *",
    ),
    (
        "MAX_CONCURRENT_TRANSFERS",
        "Initial limit of files copied at once (default 2)",
    ),
    ("MAX_FILES_PER_PAGE", "Initial UI page size (default 100)"),
    (
        "S4_FSYNC",
        "false: do not fsync uploads before answering (throw-away data; default true)",
    ),
    (
        "S4_S3_CONNECT_TIMEOUT",
        "S3 backend connect timeout in seconds (default 3)",
    ),
    (
        "S4_S3_TIMEOUT",
        "S3 backend response timeout in seconds: headers due, longest body stall (default 30)",
    ),
    (
        "S4_S3_RETRIES",
        "S3 backend retries of refused or reset requests (default 2)",
    ),
];

/// Reads a variable through `lookup`, treating empty as unset.
pub(crate) fn var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// The log levels `LOG_LEVEL` may name.
const LOG_LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// Validates `LOG_LEVEL`: a level name (any case), or a directive list (it holds
/// `=` or `,`; the daemon checks its syntax). A lone word that is no level (a typo
/// such as `verbose`) is an error instead of silently filtering everything out.
fn log_level(raw: Option<String>) -> Result<String> {
    let Some(raw) = raw else {
        return Ok("info".into());
    };
    let value = raw.trim();
    if value.contains(['=', ',']) || LOG_LEVELS.iter().any(|l| value.eq_ignore_ascii_case(l)) {
        return Ok(value.to_string());
    }
    Err(Error::invalid(format!(
        "LOG_LEVEL={raw:?} is not one of {} (or a directive list such as info,s4_core=debug)",
        LOG_LEVELS.join(", ")
    )))
}

impl Settings {
    /// Reads settings from the process environment.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the offending variable.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (a variable name → value function), so tests
    /// and embedders need not touch the process environment.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the offending variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(lookup, name);
        let port_var = if get("PORT").is_some() {
            "PORT"
        } else {
            "BACKEND_PORT"
        };
        let port = match get(port_var) {
            None => 5000,
            Some(v) => v.trim().parse::<u16>().map_err(|_| {
                Error::invalid(format!("{port_var}={v:?} is not a valid port (0-65535)"))
            })?,
        };
        let ip = match get("IP") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| Error::invalid(format!("IP={v:?} is not a valid IP address")))?,
        };
        let data_dir = PathBuf::from(get("S4_DATA_DIR").unwrap_or_else(|| "./s4-data".into()));
        let endpoint = get("AWS_S3_ENDPOINT");
        let backend_name = match get("S4_BACKEND") {
            Some(v) => v.trim().to_ascii_lowercase(),
            None if endpoint.is_some() => "s3".to_string(),
            None => "local".to_string(),
        };
        let backend = match backend_name.as_str() {
            "local" => BackendSettings::Local {
                data_dir: data_dir.clone(),
            },
            "memory" => BackendSettings::Memory,
            "s3" => {
                let endpoint = endpoint.ok_or_else(|| {
                    Error::invalid(
                        "S4_BACKEND=s3 needs AWS_S3_ENDPOINT (e.g. http://127.0.0.1:9000)",
                    )
                })?;
                let parsed = url::Url::parse(endpoint.trim()).map_err(|e| {
                    Error::invalid(format!(
                        "AWS_S3_ENDPOINT={endpoint:?} is not a valid URL: {e}"
                    ))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(Error::invalid(format!(
                        "AWS_S3_ENDPOINT={endpoint:?} must start with http:// or https://"
                    )));
                }
                BackendSettings::S3(S3Config {
                    endpoint: endpoint.trim().to_string(),
                    access_key_id: get("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "s4admin".into()),
                    secret_access_key: get("AWS_SECRET_ACCESS_KEY")
                        .unwrap_or_else(|| "s4secret".into()),
                    region: get("AWS_DEFAULT_REGION").unwrap_or_else(|| "us-east-1".into()),
                })
            }
            other => {
                return Err(Error::invalid(format!(
                    "S4_BACKEND={other:?} is not one of local, memory, s3"
                )))
            }
        };
        let max_file_size_gb = get("MAX_FILE_SIZE_GB")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0 && *v < (1 << 33))
            .unwrap_or(20);
        Ok(Settings {
            ip,
            port,
            backend,
            data_dir,
            default_bucket: get("AWS_S3_BUCKET").unwrap_or_default(),
            max_file_size: max_file_size_gb << 30,
            max_file_size_gb,
            log_level: log_level(get("LOG_LEVEL"))?,
            audit_log: !get("AUDIT_LOG_ENABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            max_concurrent_transfers: get("MAX_CONCURRENT_TRANSFERS")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|v| *v >= 1)
                .unwrap_or(DEFAULT_MAX_CONCURRENT_TRANSFERS),
            fsync: !get("S4_FSYNC").is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
        })
    }

    /// Settings for an in-memory backend with defaults: for tests and embedders.
    pub fn memory() -> Self {
        let mut settings = Self::from_lookup(&|_| None).unwrap_or_else(|_| unreachable_defaults());
        settings.backend = BackendSettings::Memory;
        settings
    }
}

fn unreachable_defaults() -> Settings {
    Settings {
        ip: IpAddr::from([127, 0, 0, 1]),
        port: 5000,
        backend: BackendSettings::Memory,
        data_dir: PathBuf::from("./s4-data"),
        default_bucket: String::new(),
        max_file_size: 20 << 30,
        max_file_size_gb: 20,
        log_level: "info".into(),
        audit_log: true,
        max_concurrent_transfers: DEFAULT_MAX_CONCURRENT_TRANSFERS,
        fsync: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.port, 5000);
        assert_eq!(s.ip.to_string(), "127.0.0.1");
        assert_eq!(s.backend.name(), "local");
        assert_eq!(s.max_file_size, 20 << 30);
    }

    #[test]
    fn fsync_switch() {
        assert!(settings(&[]).expect("valid").fsync);
        assert!(settings(&[("S4_FSYNC", "true")]).expect("valid").fsync);
        assert!(!settings(&[("S4_FSYNC", "FALSE")]).expect("valid").fsync);
    }

    #[test]
    fn backend_selection() {
        let s = settings(&[("AWS_S3_ENDPOINT", "http://127.0.0.1:3900")]).expect("valid");
        assert_eq!(s.backend.name(), "s3");
        let s = settings(&[("AWS_S3_ENDPOINT", "http://x:1"), ("S4_BACKEND", "memory")])
            .expect("valid");
        assert_eq!(s.backend.name(), "memory");
        assert!(settings(&[("S4_BACKEND", "s3")]).is_err());
        assert!(settings(&[("S4_BACKEND", "ftp")]).is_err());
        assert!(settings(&[("AWS_S3_ENDPOINT", "ftp://x")]).is_err());
    }

    #[test]
    fn invalid_values() {
        assert!(settings(&[("PORT", "http")]).is_err());
        assert!(settings(&[("PORT", "70000")]).is_err());
        assert!(settings(&[("IP", "localhost:1")]).is_err());
        assert_eq!(
            settings(&[("BACKEND_PORT", "8080")]).map(|s| s.port).ok(),
            Some(8080)
        );
        assert_eq!(
            settings(&[("MAX_FILE_SIZE_GB", "x")])
                .map(|s| s.max_file_size_gb)
                .ok(),
            Some(20)
        );
        assert_eq!(
            settings(&[("MAX_FILE_SIZE_GB", "-1")])
                .map(|s| s.max_file_size_gb)
                .ok(),
            Some(20)
        );
        assert_eq!(
            settings(&[("MAX_FILE_SIZE_GB", "1")])
                .map(|s| s.max_file_size)
                .ok(),
            Some(1 << 30)
        );
    }

    #[test]
    fn log_level_is_validated() {
        let level = |v: &str| settings(&[("LOG_LEVEL", v)]).map(|s| s.log_level);
        assert_eq!(
            settings(&[]).map(|s| s.log_level).ok().as_deref(),
            Some("info")
        );
        assert_eq!(level(" DEBUG ").ok().as_deref(), Some("DEBUG"));
        assert_eq!(
            level("info,s4_core=debug").ok().as_deref(),
            Some("info,s4_core=debug")
        );
        let err = level("verbose").expect_err("not a level");
        assert!(err.message().contains("LOG_LEVEL=\"verbose\""), "{err}");
    }

    #[test]
    fn max_concurrent_transfers() {
        let limit = |v: &str| {
            settings(&[("MAX_CONCURRENT_TRANSFERS", v)])
                .map(|s| s.max_concurrent_transfers)
                .ok()
        };
        assert_eq!(
            settings(&[]).map(|s| s.max_concurrent_transfers).ok(),
            Some(2)
        );
        assert_eq!(limit("5"), Some(5));
        assert_eq!(limit("0"), Some(2));
        assert_eq!(limit("many"), Some(2));
    }
}

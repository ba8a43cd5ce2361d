//! Start-up configuration: raw variables → validated [`Settings`].
//!
//! The parsers here take a *lookup* (variable name → value), never the process
//! environment: the `s4` daemon reads its environment once, in one place
//! (`s4_http::config`), and hands the snapshot to [`Settings::from_lookup`] and the
//! other section parsers. Everything is checked before anything listens, so a bad
//! value fails the start with a clear message instead of surfacing on the first
//! request. Values the API contract says fall back to a default when invalid (e.g.
//! `MAX_FILE_SIZE_GB`) do so; values that would silently change behaviour (a bad
//! `PORT`, `IP`, `S4_BACKEND`, `LOG_LEVEL`, `S4_FSYNC`, an S3 timeout, an S3 backend
//! without endpoint) are errors, every one of them reported at once.

use std::net::IpAddr;
use std::path::PathBuf;
#[cfg(feature = "s3")]
use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::S3Config;
#[cfg(feature = "s3")]
use crate::storage::S3Timeouts;

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
    S3 {
        /// Endpoint, credentials and region (`AWS_*`).
        config: S3Config,
        /// Timeouts and retries of the requests to the engine
        /// (`S4_S3_CONNECT_TIMEOUT`, `S4_S3_TIMEOUT`, `S4_S3_RETRIES`).
        #[cfg(feature = "s3")]
        timeouts: S3Timeouts,
    },
}

impl BackendSettings {
    /// Short name: `local`, `memory` or `s3`.
    pub fn name(&self) -> &'static str {
        match self {
            BackendSettings::Local { .. } => "local",
            BackendSettings::Memory => "memory",
            BackendSettings::S3 { .. } => "s3",
        }
    }

    /// The S3 backend with default timeouts.
    pub fn s3(config: S3Config) -> Self {
        BackendSettings::S3 {
            config,
            #[cfg(feature = "s3")]
            timeouts: S3Timeouts::default(),
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
    /// (`S4_FSYNC`, default `true`; `false`, `0`, `no` or `off` turn it off).
    pub fsync: bool,
    /// Timeouts and retries of requests to an S3 engine (`S4_S3_*`): those of the
    /// `s3` backend (also inside [`BackendSettings::S3`]), and of S3 backends
    /// opened later (runtime settings).
    #[cfg(feature = "s3")]
    pub s3_timeouts: S3Timeouts,
}

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

/// Parses an on/off switch such as `S4_FSYNC`: `true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off` (any case, surrounding spaces ignored); unset is `default`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `name` for any other value.
pub fn switch(name: &str, raw: Option<&str>, default: bool) -> Result<bool> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(format!(
            "{name}={raw:?} is not one of true, false (1/0, yes/no, on/off)"
        ))),
    }
}

/// `S4_S3_CONNECT_TIMEOUT` / `S4_S3_TIMEOUT`: seconds (fractions allowed), more
/// than 0 and less than a day.
#[cfg(feature = "s3")]
fn seconds(name: &str, raw: Option<String>, default: Duration) -> Result<Duration> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{name}={raw:?} is not a number of seconds (more than 0, less than 86400)"
            ))
        })
}

/// The S3 engine timeouts (`S4_S3_CONNECT_TIMEOUT`, `S4_S3_TIMEOUT`,
/// `S4_S3_RETRIES`), strictly: an invalid value is an error naming it.
#[cfg(feature = "s3")]
fn s3_timeouts(get: &dyn Fn(&str) -> Option<String>, problems: &mut Problems) -> S3Timeouts {
    use crate::storage::s3_client::{ENV_CONNECT_TIMEOUT, ENV_RETRIES, ENV_TIMEOUT};
    let defaults = S3Timeouts::default();
    let retries = match get(ENV_RETRIES) {
        None => Ok(defaults.retries),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|r| *r <= 10)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{ENV_RETRIES}={raw:?} is not a number of retries (0-10)"
                ))
            }),
    };
    S3Timeouts {
        connect: problems
            .take(seconds(
                ENV_CONNECT_TIMEOUT,
                get(ENV_CONNECT_TIMEOUT),
                defaults.connect,
            ))
            .unwrap_or(defaults.connect),
        response: problems
            .take(seconds(ENV_TIMEOUT, get(ENV_TIMEOUT), defaults.response))
            .unwrap_or(defaults.response),
        min_upload_rate: defaults.min_upload_rate,
        retries: problems.take(retries).unwrap_or(defaults.retries),
    }
}

/// The errors found so far: every variable is checked, and all problems are
/// reported together.
#[derive(Default)]
struct Problems(Vec<Error>);

impl Problems {
    fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
}

impl Settings {
    /// Reads settings through `lookup` (a variable name → value function; unset and
    /// empty are equivalent), so tests and embedders need not touch the process
    /// environment. Every variable is checked; the error lists every problem.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming each offending variable
    /// (`NAME="value" ...`, separated by `; `).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_lookup_all(lookup).map_err(|problems| {
            let messages: Vec<&str> = problems.iter().map(Error::message).collect();
            Error::invalid(messages.join("; "))
        })
    }

    /// [`Self::from_lookup`], with every problem as an error of its own (each
    /// [`crate::ErrorKind::InvalidInput`], naming its variable).
    ///
    /// # Errors
    /// The problems, in the order the variables are read.
    pub fn from_lookup_all(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, Vec<Error>> {
        let get = |name: &str| var(lookup, name);
        let mut problems = Problems::default();
        let port_var = if get("PORT").is_some() {
            "PORT"
        } else {
            "BACKEND_PORT"
        };
        let port = match get(port_var) {
            None => 5000,
            Some(v) => problems
                .take(v.trim().parse::<u16>().map_err(|_| {
                    Error::invalid(format!("{port_var}={v:?} is not a valid port (0-65535)"))
                }))
                .unwrap_or(5000),
        };
        let ip = match get("IP") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => problems
                .take(
                    v.trim()
                        .parse::<IpAddr>()
                        .map_err(|_| Error::invalid(format!("IP={v:?} is not a valid IP address"))),
                )
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
        };
        let data_dir = PathBuf::from(get("S4_DATA_DIR").unwrap_or_else(|| "./s4-data".into()));
        #[cfg(feature = "s3")]
        let timeouts = s3_timeouts(&get, &mut problems);
        let endpoint = get("AWS_S3_ENDPOINT");
        let s3_config = S3Config {
            endpoint: endpoint.as_deref().unwrap_or_default().trim().to_string(),
            access_key_id: get("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "s4admin".into()),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "s4secret".into()),
            region: get("AWS_DEFAULT_REGION").unwrap_or_else(|| "us-east-1".into()),
        };
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
                let checked = s3_endpoint(endpoint.as_deref());
                problems.take(checked);
                BackendSettings::S3 {
                    config: s3_config,
                    #[cfg(feature = "s3")]
                    timeouts,
                }
            }
            other => {
                problems.take::<()>(Err(Error::invalid(format!(
                    "S4_BACKEND={other:?} is not one of local, memory, s3"
                ))));
                BackendSettings::Memory
            }
        };
        let max_file_size_gb = get("MAX_FILE_SIZE_GB")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0 && *v < (1 << 33))
            .unwrap_or(20);
        let log_level = problems
            .take(log_level(get("LOG_LEVEL")))
            .unwrap_or_else(|| "info".into());
        let fsync = problems
            .take(switch("S4_FSYNC", get("S4_FSYNC").as_deref(), true))
            .unwrap_or(true);
        if !problems.0.is_empty() {
            return Err(problems.0);
        }
        Ok(Settings {
            ip,
            port,
            backend,
            data_dir,
            default_bucket: get("AWS_S3_BUCKET").unwrap_or_default(),
            max_file_size: max_file_size_gb << 30,
            max_file_size_gb,
            log_level,
            audit_log: !get("AUDIT_LOG_ENABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            max_concurrent_transfers: get("MAX_CONCURRENT_TRANSFERS")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|v| *v >= 1)
                .unwrap_or(DEFAULT_MAX_CONCURRENT_TRANSFERS),
            fsync,
            #[cfg(feature = "s3")]
            s3_timeouts: timeouts,
        })
    }

    /// Settings for an in-memory backend with defaults: for tests and embedders.
    pub fn memory() -> Self {
        let mut settings = Self::from_lookup(&|_| None).unwrap_or_else(|_| unreachable_defaults());
        settings.backend = BackendSettings::Memory;
        settings
    }
}

/// Checks `AWS_S3_ENDPOINT` for the `s3` backend: set, an `http(s)://` URL.
fn s3_endpoint(endpoint: Option<&str>) -> Result<()> {
    let endpoint = endpoint.ok_or_else(|| {
        Error::invalid("S4_BACKEND=s3 needs AWS_S3_ENDPOINT (e.g. http://127.0.0.1:9000)")
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
    Ok(())
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
        #[cfg(feature = "s3")]
        s3_timeouts: S3Timeouts::default(),
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
        assert!(!settings(&[("S4_FSYNC", " off ")]).expect("valid").fsync);
        assert!(!settings(&[("S4_FSYNC", "0")]).expect("valid").fsync);
        let err = settings(&[("S4_FSYNC", "maybe")]).expect_err("not a switch");
        assert!(err.message().contains("S4_FSYNC=\"maybe\""), "{err}");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = settings(&[
            ("PORT", "http"),
            ("IP", "nowhere"),
            ("LOG_LEVEL", "verbose"),
            ("S4_BACKEND", "s3"),
        ])
        .expect_err("invalid");
        for needle in [
            "PORT=\"http\"",
            "IP=\"nowhere\"",
            "LOG_LEVEL=\"verbose\"",
            "needs AWS_S3_ENDPOINT",
        ] {
            assert!(err.message().contains(needle), "{needle}: {err}");
        }
    }

    #[cfg(feature = "s3")]
    #[test]
    fn s3_timeouts_are_validated_and_reach_the_backend() {
        let s = settings(&[
            ("AWS_S3_ENDPOINT", "http://127.0.0.1:3900"),
            ("S4_S3_TIMEOUT", "2.5"),
            ("S4_S3_CONNECT_TIMEOUT", "1"),
            ("S4_S3_RETRIES", "0"),
        ])
        .expect("valid");
        let BackendSettings::S3 { config, timeouts } = &s.backend else {
            panic!("s3 backend expected: {:?}", s.backend);
        };
        assert_eq!(config.endpoint, "http://127.0.0.1:3900");
        assert_eq!(timeouts.response, std::time::Duration::from_millis(2500));
        assert_eq!(timeouts.connect, std::time::Duration::from_secs(1));
        assert_eq!(timeouts.retries, 0);
        assert_eq!(*timeouts, s.s3_timeouts);
        for (name, bad) in [
            ("S4_S3_TIMEOUT", "soon"),
            ("S4_S3_TIMEOUT", "0"),
            ("S4_S3_CONNECT_TIMEOUT", "-1"),
            ("S4_S3_RETRIES", "11"),
            ("S4_S3_RETRIES", "two"),
        ] {
            let err = settings(&[(name, bad)]).expect_err(bad);
            assert!(err.message().contains(&format!("{name}={bad:?}")), "{err}");
        }
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

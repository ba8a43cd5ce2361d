//! The `s4` daemon's configuration: every variable read once, in one place.
//!
//! The daemon takes one snapshot of its environment (after loading the `.env`
//! files) and hands it, with its command-line flags, to
//! [`DaemonConfig::from_lookup`]. That one function reads every variable the daemon
//! knows ([`ENV_VARS`], which `--help` prints) through the section parsers of
//! `s4-core` and of this crate, and checks all of them before anything starts: the
//! error lists every malformed variable by name, and the daemon exits with code 2.
//! Nothing else in the daemon or in `s4-core` reads the process environment.
//!
//! Flags win over variables: `--port 8080` is `PORT=8080` whatever the
//! environment says.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use s4_core::config_store::{S3Settings, StoreOptions};
use s4_core::location::LocationsConfig;
use s4_core::notify::NotifyOptions;
use s4_core::{BackendSettings, Settings};

use crate::app::HttpConfig;
use crate::s3::daemon::EndpointMode;
use crate::s3::{S3Credentials, DEFAULT_S3_PORT};
use crate::server::ServeOptions;

/// Every environment variable the daemon reads, with its meaning: the `--help`
/// table. A unit test checks that [`DaemonConfig::from_lookup`] reads exactly these.
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
        "BUCKET_DATA_PATH",
        "Directory holding one sub-directory per bucket, watched for out-of-band changes \
         (default: the local backend's S4_DATA_DIR; an absent directory is not watched)",
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
        "false (0, no, off): do not fsync written files and their directory entries \
         (throw-away data; default true)",
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
        "development: cookie SameSite=Lax and never Secure; also picks the .env.<NODE_ENV> files",
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
        "S4_GITHUB_REPO_API",
        "GitHub API address of the project repository (for the console's repo info)",
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
        "no_proxy",
        "Lower-case spelling of NO_PROXY (used when NO_PROXY is unset)",
    ),
    (
        "MAX_CONCURRENT_TRANSFERS",
        "Initial limit of files copied at once (default 2)",
    ),
    ("MAX_FILES_PER_PAGE", "Initial UI page size (default 100)"),
    (
        "S4_S3_CONNECT_TIMEOUT",
        "S3 backend connect timeout in seconds (default 3)",
    ),
    (
        "S4_S3_TIMEOUT",
        "S3 backend response timeout in seconds: headers due, longest body stall (default 10)",
    ),
    (
        "S4_S3_RETRIES",
        "S3 backend retries of refused requests, and of timed-out or reset idempotent ones (0-10, default 2)",
    ),
    (
        "S4_HEADER_READ_TIMEOUT",
        "Seconds a client has to send a request head (default 30; --header-read-timeout)",
    ),
    (
        "S4_IDLE_TIMEOUT",
        "Seconds an idle connection stays open (default 60; --idle-timeout)",
    ),
    (
        "S4_BODY_READ_TIMEOUT",
        "Seconds a request body may stall (default 60; --body-read-timeout)",
    ),
    (
        "S4_S3_ENDPOINT",
        "S3 protocol endpoint: auto (on for local and memory backends), on, off (--s3-endpoint)",
    ),
    (
        "S4_S3_PORT",
        "Port of the S3 protocol endpoint (default 7480; --s3-port)",
    ),
    (
        "S4_S3_ACCESS_KEY_ID",
        "Access key of the S3 protocol endpoint (with S4_S3_SECRET_ACCESS_KEY; default: random)",
    ),
    (
        "S4_S3_SECRET_ACCESS_KEY",
        "Secret key of the S3 protocol endpoint (with S4_S3_ACCESS_KEY_ID)",
    ),
];

/// Default of `S4_HEADER_READ_TIMEOUT` in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: u64 = 30;
/// Default of `S4_IDLE_TIMEOUT` in seconds.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 60;
/// Default of `S4_BODY_READ_TIMEOUT` in seconds.
pub const DEFAULT_BODY_READ_TIMEOUT: u64 = 60;

/// Command-line flags that override a variable (`None` = not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--ip` (`IP`).
    pub ip: Option<String>,
    /// `--port` (`PORT`).
    pub port: Option<u16>,
    /// `--backend` (`S4_BACKEND`).
    pub backend: Option<String>,
    /// `--data-dir` (`S4_DATA_DIR`).
    pub data_dir: Option<String>,
    /// `--header-read-timeout` (`S4_HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Option<u64>,
    /// `--idle-timeout` (`S4_IDLE_TIMEOUT`).
    pub idle_timeout: Option<u64>,
    /// `--body-read-timeout` (`S4_BODY_READ_TIMEOUT`).
    pub body_read_timeout: Option<u64>,
    /// `--s3-endpoint` (`S4_S3_ENDPOINT`).
    pub s3_endpoint: Option<EndpointMode>,
    /// `--s3-port` (`S4_S3_PORT`).
    pub s3_port: Option<u16>,
}

impl Overrides {
    /// The value a flag gives the variable `name`, if any.
    fn value(&self, name: &str) -> Option<String> {
        match name {
            "IP" => self.ip.clone(),
            "PORT" => self.port.map(|p| p.to_string()),
            "S4_BACKEND" => self.backend.clone(),
            "S4_DATA_DIR" => self.data_dir.clone(),
            "S4_HEADER_READ_TIMEOUT" => self.header_read_timeout.map(|s| s.to_string()),
            "S4_IDLE_TIMEOUT" => self.idle_timeout.map(|s| s.to_string()),
            "S4_BODY_READ_TIMEOUT" => self.body_read_timeout.map(|s| s.to_string()),
            "S4_S3_ENDPOINT" => self.s3_endpoint.map(|m| m.as_str().to_string()),
            "S4_S3_PORT" => self.s3_port.map(|p| p.to_string()),
            _ => None,
        }
    }
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when the output is a terminal (never
    /// in log files or journald).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging: the validated filter and the line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `tracing` filter directives: `LOG_LEVEL`, plus `audit=off` when
    /// `AUDIT_LOG_ENABLED=false` (audit lines are records of target `audit`).
    pub directives: String,
    /// `LOG_FORMAT`.
    pub format: LogFormat,
}

/// The S3 protocol endpoint of the daemon.
#[derive(Debug, Clone)]
pub struct S3EndpointConfig {
    /// On, off or automatic (`S4_S3_ENDPOINT`, `--s3-endpoint`).
    pub mode: EndpointMode,
    /// Port, bound to the API's address (`S4_S3_PORT`, `--s3-port`).
    pub port: u16,
    /// The access key pair (`S4_S3_ACCESS_KEY_ID`, `S4_S3_SECRET_ACCESS_KEY`);
    /// `None` = a random pair generated and logged at start.
    pub credentials: Option<S3Credentials>,
}

/// The daemon's whole configuration, validated: built once at start by
/// [`DaemonConfig::from_lookup`].
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Core start-up settings: address, backend (with its S3 timeouts), data
    /// directory, limits, log level, durability.
    pub settings: Settings,
    /// Whether `S4_BACKEND` (or `--backend`) was given: otherwise S3 settings
    /// persisted at runtime may select the S3 backend.
    pub backend_explicit: bool,
    /// Local locations (`LOCAL_STORAGE_PATHS`, file-type policy), with the size
    /// limit and durability of [`Self::settings`].
    pub locations: LocationsConfig,
    /// The runtime settings store: its files and initial values.
    pub store: StoreOptions,
    /// The notification configuration file (`NOTIFICATION_STORE_PATH`).
    pub notifications_store: PathBuf,
    /// `BUCKET_DATA_PATH` as given (`None` = unset or empty): see
    /// [`watched_bucket_root`] for the directory actually watched.
    pub bucket_data_path: Option<PathBuf>,
    /// The HTTP adapter: prefix, CORS, CSP, authentication.
    pub http: HttpConfig,
    /// The S3 protocol endpoint.
    pub s3_endpoint: S3EndpointConfig,
    /// Connection timeouts of both listeners.
    pub serve: ServeOptions,
    /// Logging.
    pub log: LogConfig,
}

/// Every problem found in the configuration, one message per problem, each naming
/// its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<String>,
}

impl ConfigError {
    /// The problems, in the order the variables were read.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Reads a variable, treating empty as unset.
fn var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

fn seconds(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, String> {
    let secs = match var(lookup, name) {
        None => default,
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{name}={raw:?} is not a whole number of seconds"))?,
    };
    // 0 would close every connection at once: at least a second.
    Ok(Duration::from_secs(secs.max(1)))
}

fn log_format(lookup: &dyn Fn(&str) -> Option<String>) -> Result<LogFormat, String> {
    match var(lookup, "LOG_FORMAT") {
        None => Ok(LogFormat::Text),
        Some(v) if v.trim().eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
        Some(v) if v.trim().eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(v) => Err(format!("LOG_FORMAT={v:?} is not one of text, json")),
    }
}

/// The directory whose per-bucket sub-directories are watched for out-of-band
/// changes (API §14.5): `BUCKET_DATA_PATH` when given (whatever the backend, e.g.
/// where a bundled engine behind the `s3` backend keeps its buckets), otherwise
/// the local backend's bucket root (`S4_DATA_DIR`); `None` (nothing watched) for
/// the memory and `s3` backends without it. `backend` is the backend the daemon
/// actually opens.
pub fn watched_bucket_root(
    bucket_data_path: Option<PathBuf>,
    backend: &BackendSettings,
) -> Option<PathBuf> {
    bucket_data_path.or_else(|| match backend {
        BackendSettings::Local { data_dir } => Some(data_dir.clone()),
        _ => None,
    })
}

impl DaemonConfig {
    /// Builds the configuration from the command-line `flags` and the variables of
    /// `env` (a name → value function over one snapshot of the environment; unset
    /// and empty are equivalent unless a variable says otherwise). Every variable
    /// is read and checked here.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every malformed variable.
    pub fn from_lookup(
        flags: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let lookup = |name: &str| flags.value(name).or_else(|| env(name));
        let mut problems = Vec::new();
        let settings = match Settings::from_lookup_all(&lookup) {
            Ok(settings) => settings,
            Err(errors) => {
                problems.extend(errors.iter().map(|e| e.message().to_string()));
                // The other sections are still checked against the defaults.
                Settings::memory()
            }
        };
        let backend_explicit = var(&lookup, "S4_BACKEND").is_some();
        let locations = LocationsConfig::from_lookup(&lookup)
            .with_max_file_size(settings.max_file_size)
            .with_fsync(settings.fsync);
        let store = StoreOptions {
            initial_s3: match &settings.backend {
                BackendSettings::S3 { config, .. } => {
                    Some(S3Settings::from_config(config, &settings.default_bucket))
                }
                _ => None,
            },
            s3_timeouts: settings.s3_timeouts,
            ..StoreOptions::from_lookup(&settings.data_dir, &lookup)
        };
        problems.extend(store.problems().iter().map(|e| e.message().to_string()));
        let notifications_store = NotifyOptions::default_store_path(&settings.data_dir, &lookup);
        let bucket_data_path = var(&lookup, "BUCKET_DATA_PATH").map(|p| PathBuf::from(p.trim()));
        let http = HttpConfig::from_lookup(&settings, &lookup);
        let mode = match var(&lookup, "S4_S3_ENDPOINT") {
            None => EndpointMode::Auto,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "S4_S3_ENDPOINT={raw:?} is not one of auto, on, off"
                ));
                EndpointMode::Auto
            }),
        };
        let port = match var(&lookup, "S4_S3_PORT") {
            None => DEFAULT_S3_PORT,
            Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
                problems.push(format!("S4_S3_PORT={raw:?} is not a valid port (0-65535)"));
                DEFAULT_S3_PORT
            }),
        };
        let credentials = S3Credentials::from_lookup(&lookup).unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let mut serve = ServeOptions::default();
        for (name, default, slot) in [
            (
                "S4_HEADER_READ_TIMEOUT",
                DEFAULT_HEADER_READ_TIMEOUT,
                &mut serve.header_read_timeout,
            ),
            (
                "S4_IDLE_TIMEOUT",
                DEFAULT_IDLE_TIMEOUT,
                &mut serve.idle_timeout,
            ),
            (
                "S4_BODY_READ_TIMEOUT",
                DEFAULT_BODY_READ_TIMEOUT,
                &mut serve.body_read_timeout,
            ),
        ] {
            match seconds(&lookup, name, default) {
                Ok(value) => *slot = value,
                Err(e) => problems.push(e),
            }
        }
        let directives = if settings.audit_log {
            settings.log_level.clone()
        } else {
            format!("{},audit=off", settings.log_level)
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&directives) {
            problems.push(format!("LOG_LEVEL={:?}: {e}", settings.log_level));
        }
        let format = log_format(&lookup).unwrap_or_else(|e| {
            problems.push(e);
            LogFormat::Text
        });
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(DaemonConfig {
            settings,
            backend_explicit,
            locations,
            store,
            notifications_store,
            bucket_data_path,
            http,
            s3_endpoint: S3EndpointConfig {
                mode,
                port,
                credentials,
            },
            serve,
            log: LogConfig { directives, format },
        })
    }
}

#[cfg(test)]
mod tests;

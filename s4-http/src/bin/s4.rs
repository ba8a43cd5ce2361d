//! The `s4` daemon: parse flags, set up logging, open the backend, bind, serve.

use std::process::ExitCode;

use clap::Parser;
use s4_core::settings::ENV_VARS;
use s4_core::{Settings, S4};
use s4_http::{serve_with, App, HttpConfig};

fn env_help() -> String {
    let mut out = String::from("Environment variables (also read from .env files):\n");
    for (name, meaning) in ENV_VARS {
        out.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    out
}

/// S4: browse, move and watch data across S3-compatible stores and local volumes.
#[derive(Debug, Parser)]
#[command(name = "s4", version, about, after_help = env_help())]
struct Flags {
    /// Bind address (overrides IP).
    #[arg(long)]
    ip: Option<String>,
    /// Listen port (overrides PORT).
    #[arg(long)]
    port: Option<u16>,
    /// Storage backend: local, memory or s3 (overrides S4_BACKEND).
    #[arg(long)]
    backend: Option<String>,
    /// Data directory (overrides S4_DATA_DIR).
    #[arg(long)]
    data_dir: Option<String>,
    /// Seconds a client has to send a complete request head (from connecting, or from
    /// its first byte after an idle period) before the connection is closed.
    #[arg(
        long,
        env = "S4_HEADER_READ_TIMEOUT",
        default_value_t = 30,
        value_name = "SECS"
    )]
    header_read_timeout: u64,
    /// Seconds an idle connection (HTTP/1.1 keep-alive or h2c, no request in flight)
    /// stays open.
    #[arg(
        long,
        env = "S4_IDLE_TIMEOUT",
        default_value_t = 60,
        value_name = "SECS"
    )]
    idle_timeout: u64,
    /// Seconds a request body may stall (nothing received) before the request is
    /// aborted like a client disconnect; slow but progressing uploads are not cut.
    #[arg(
        long,
        env = "S4_BODY_READ_TIMEOUT",
        default_value_t = 60,
        value_name = "SECS"
    )]
    body_read_timeout: u64,
    /// S3 protocol endpoint: auto (on for the local and memory backends, off for
    /// s3), on, or off.
    #[arg(
        long,
        env = "S4_S3_ENDPOINT",
        default_value = "auto",
        value_name = "auto|on|off"
    )]
    s3_endpoint: s4_http::s3::daemon::EndpointMode,
    /// Port of the S3 protocol endpoint (bound to IP like the API).
    #[arg(long, env = "S4_S3_PORT", default_value_t = s4_http::s3::DEFAULT_S3_PORT)]
    s3_port: u16,
}

impl Flags {
    fn serve_options(&self) -> s4_http::ServeOptions {
        let secs = |s: u64| std::time::Duration::from_secs(s.max(1));
        s4_http::ServeOptions {
            header_read_timeout: secs(self.header_read_timeout),
            idle_timeout: secs(self.idle_timeout),
            body_read_timeout: secs(self.body_read_timeout),
            ..s4_http::ServeOptions::default()
        }
    }
}

/// Loads the `.env` files. A missing file is fine; one that cannot be read or
/// parsed is an error naming it (a silently ignored typo would change behaviour).
fn load_dotenv() -> Result<(), String> {
    // Earlier files win and the real environment wins over all: dotenvy never
    // overrides a variable that is already set.
    let node_env = std::env::var("NODE_ENV").unwrap_or_else(|_| "production".into());
    for file in [
        format!(".env.{node_env}.local"),
        format!(".env.{node_env}"),
        ".env.local".to_string(),
        ".env".to_string(),
    ] {
        match dotenvy::from_filename(&file) {
            Ok(_) => {}
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{file}: {e}")),
        }
    }
    Ok(())
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines; ANSI colours only when stdout is a terminal (never in
    /// log files or journald).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

fn log_format(raw: Option<String>) -> Result<LogFormat, String> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(LogFormat::Text),
        Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
        Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(v) => Err(format!("LOG_FORMAT={v:?} is not one of text, json")),
    }
}

fn main() -> ExitCode {
    if let Err(e) = load_dotenv() {
        eprintln!("s4: invalid configuration: {e}");
        return ExitCode::from(2);
    }
    let flags = Flags::parse();
    let lookup = |name: &str| -> Option<String> {
        let flag = match name {
            "IP" => flags.ip.clone(),
            "PORT" => flags.port.map(|p| p.to_string()),
            "S4_BACKEND" => flags.backend.clone(),
            "S4_DATA_DIR" => flags.data_dir.clone(),
            _ => None,
        };
        flag.or_else(|| std::env::var(name).ok())
    };
    let settings = match Settings::from_lookup(&lookup) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("s4: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // Audit lines are records of target "audit"; AUDIT_LOG_ENABLED=false turns them off.
    let directives = if settings.audit_log {
        settings.log_level.clone()
    } else {
        format!("{},audit=off", settings.log_level)
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!(
                "s4: invalid configuration: LOG_LEVEL={:?}: {e}",
                settings.log_level
            );
            return ExitCode::from(2);
        }
    };
    let format = match log_format(lookup("LOG_FORMAT")) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("s4: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s4: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let backend_explicit = lookup("S4_BACKEND").is_some_and(|v| !v.trim().is_empty());
    let store_options = s4_core::config_store::StoreOptions {
        initial_s3: match &settings.backend {
            s4_core::BackendSettings::S3(c) => Some(
                s4_core::config_store::S3Settings::from_config(c, &settings.default_bucket),
            ),
            _ => None,
        },
        ..s4_core::config_store::StoreOptions::from_lookup(&settings.data_dir, &lookup)
    };
    let options = flags.serve_options();
    let s3 = (flags.s3_endpoint, flags.s3_port);
    match runtime.block_on(run(settings, store_options, backend_explicit, options, s3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s4: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    mut settings: Settings,
    store_options: s4_core::config_store::StoreOptions,
    backend_explicit: bool,
    options: s4_http::ServeOptions,
    (s3_mode, s3_port): (s4_http::s3::daemon::EndpointMode, u16),
) -> Result<(), Box<dyn std::error::Error>> {
    // Runtime settings (API §16): a corrupt settings file stops the start, naming it.
    let store = s4_core::config_store::ConfigStore::open(store_options).await?;
    settings.backend = store.startup_backend(&settings.backend, backend_explicit);
    // S3 engines follow the runtime outbound settings; the local backend its
    // durability switch (S4_FSYNC).
    let backend = match &settings.backend {
        s4_core::BackendSettings::S3(_) => store.open_backend(&settings.backend).await?,
        _ => S4::open_backend_from(&settings).await?,
    };
    match &settings.backend {
        s4_core::BackendSettings::Local { data_dir } => {
            tracing::info!(backend = "local", data_dir = %data_dir.display(), "storage backend")
        }
        s4_core::BackendSettings::Memory => tracing::info!(backend = "memory", "storage backend"),
        s4_core::BackendSettings::S3(c) => {
            tracing::info!(backend = "s3", endpoint = %c.endpoint, region = %c.region, "storage backend")
        }
    }
    let locations = s4_core::location::Locations::new(
        s4_core::location::LocationsConfig::from_env().with_max_file_size(settings.max_file_size),
    )
    .await;
    if !locations.is_empty() {
        tracing::info!(count = locations.len(), "local storage locations");
    }
    let s4 = S4::builder()
        .shared_backend(backend)
        .locations(locations)
        .max_concurrent_transfers(settings.max_concurrent_transfers)
        .notifications(s4_core::notify::NotifyOptions::default().with_store_path(
            s4_core::notify::NotifyOptions::default_store_path(&settings.data_dir, &|name| {
                std::env::var(name).ok()
            }),
        ))
        .build();
    // Configurations of a previous run: watch and deliver from the start.
    s4.notifications().start().await?;
    let config = HttpConfig::from_lookup(&settings, &|name| std::env::var(name).ok());
    let s3 = s4_http::s3::daemon::start(&s4, s3_mode, settings.ip, s3_port, &|name| {
        std::env::var(name).ok()
    })
    .await?;
    let app = App::with_settings(s4, config, store);
    let addr = std::net::SocketAddr::new(settings.ip, settings.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "s4 listening; API under {}/api", app.config().nb_prefix);
    tracing::info!(
        header_read_timeout = ?options.header_read_timeout,
        idle_timeout = ?options.idle_timeout,
        body_read_timeout = ?options.body_read_timeout,
        "connection timeouts"
    );
    // One shutdown signal stops both listeners.
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    let s3_task = s3.map(|s3| {
        tokio::spawn(s4_http::s3::serve(
            s3.listener,
            s3.endpoint,
            stop.clone().cancelled_owned(),
            options.clone(),
        ))
    });
    let served = serve_with(listener, app, stop.clone().cancelled_owned(), options).await;
    stop.cancel();
    if let Some(task) = s3_task {
        task.await??;
    }
    served?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

//! The `s4` daemon: parse flags, read the configuration once, set up logging, open
//! the backend, bind, serve.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use s4_core::{BackendSettings, S4};
use s4_http::config::{
    watched_bucket_root, DaemonConfig, LogFormat, Overrides, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, ENV_VARS,
};
use s4_http::{serve_with, App};

fn env_help() -> String {
    let mut out = String::from("Environment variables (also read from .env files):\n");
    for (name, meaning) in ENV_VARS {
        out.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    out
}

/// S4: browse, move and watch data across S3-compatible stores and local volumes.
///
/// Flags override the variable they name.
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
    #[arg(long, value_name = "SECS", help = timeout_help(
        "Seconds a client has to send a complete request head (from connecting, or from \
         its first byte after an idle period) before the connection is closed",
        "S4_HEADER_READ_TIMEOUT",
        DEFAULT_HEADER_READ_TIMEOUT,
    ))]
    header_read_timeout: Option<u64>,
    #[arg(long, value_name = "SECS", help = timeout_help(
        "Seconds an idle connection (HTTP/1.1 keep-alive or h2c, no request in flight) \
         stays open",
        "S4_IDLE_TIMEOUT",
        DEFAULT_IDLE_TIMEOUT,
    ))]
    idle_timeout: Option<u64>,
    #[arg(long, value_name = "SECS", help = timeout_help(
        "Seconds a request body may stall (nothing received) before the request is \
         aborted like a client disconnect; slow but progressing uploads are not cut",
        "S4_BODY_READ_TIMEOUT",
        DEFAULT_BODY_READ_TIMEOUT,
    ))]
    body_read_timeout: Option<u64>,
    /// S3 protocol endpoint: auto (on for the local and memory backends, off for
    /// s3), on, or off [env: S4_S3_ENDPOINT] [default: auto]
    #[arg(long, value_name = "auto|on|off")]
    s3_endpoint: Option<s4_http::s3::daemon::EndpointMode>,
    /// Port of the S3 protocol endpoint, bound to IP like the API
    /// [env: S4_S3_PORT] [default: 7480]
    #[arg(long)]
    s3_port: Option<u16>,
}

/// The help line of a timeout flag: what it does, its variable, its default.
fn timeout_help(what: &str, var: &str, default: u64) -> String {
    format!("{what} [env: {var}] [default: {default}]")
}

impl Flags {
    fn overrides(&self) -> Overrides {
        Overrides {
            ip: self.ip.clone(),
            port: self.port,
            backend: self.backend.clone(),
            data_dir: self.data_dir.clone(),
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
            s3_endpoint: self.s3_endpoint,
            s3_port: self.s3_port,
        }
    }
}

/// Loads the `.env` files into the process environment. A missing file is fine;
/// one that cannot be read or parsed is an error naming it (a silently ignored
/// typo would change behaviour).
fn load_dotenv() -> Result<(), String> {
    // Earlier files win and the real environment wins over all: dotenvy never
    // overrides a variable that is already set. `NODE_ENV` is the one variable read
    // before the snapshot: it names the files to load.
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

/// The one read of the environment: every variable with a Unicode value (others
/// count as unset, as `std::env::var` would have it).
fn environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

fn main() -> ExitCode {
    if let Err(e) = load_dotenv() {
        eprintln!("s4: invalid configuration: {e}");
        return ExitCode::from(2);
    }
    let flags = Flags::parse();
    let env = environment();
    let config = match DaemonConfig::from_lookup(&flags.overrides(), &|name| env.get(name).cloned())
    {
        Ok(config) => config,
        Err(e) => {
            for problem in e.problems() {
                eprintln!("s4: invalid configuration: {problem}");
            }
            return ExitCode::from(2);
        }
    };
    // The directives were checked by the configuration.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s4: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: DaemonConfig) -> Result<(), Box<dyn std::error::Error>> {
    let DaemonConfig {
        mut settings,
        backend_explicit,
        locations,
        store,
        notifications_store,
        bucket_data_path,
        http,
        s3_endpoint,
        serve: options,
        log: _,
    } = config;
    // Runtime settings (API §16): a corrupt settings file stops the start, naming it.
    let store = s4_core::config_store::ConfigStore::open(store).await?;
    settings.backend = store.startup_backend(&settings.backend, backend_explicit);
    // S3 engines follow the runtime outbound settings; the local backend its
    // durability switch (S4_FSYNC).
    let backend = match &settings.backend {
        BackendSettings::S3 { .. } => store.open_backend(&settings.backend).await?,
        _ => S4::open_backend_from(&settings).await?,
    };
    match &settings.backend {
        BackendSettings::Local { data_dir } => {
            tracing::info!(backend = "local", data_dir = %data_dir.display(), "storage backend")
        }
        BackendSettings::Memory => tracing::info!(backend = "memory", "storage backend"),
        BackendSettings::S3 { config, .. } => {
            tracing::info!(backend = "s3", endpoint = %config.endpoint, region = %config.region, "storage backend")
        }
    }
    let locations = s4_core::location::Locations::new(locations).await;
    if !locations.is_empty() {
        tracing::info!(count = locations.len(), "local storage locations");
    }
    let mut notify = s4_core::notify::NotifyOptions::default().with_store_path(notifications_store);
    if let Some(root) = watched_bucket_root(bucket_data_path, &settings.backend) {
        tracing::info!(directory = %root.display(), "watching bucket directories for out-of-band changes");
        notify = notify.with_bucket_data_path(root);
    }
    let s4 = S4::builder()
        .shared_backend(backend)
        .locations(locations)
        .max_concurrent_transfers(settings.max_concurrent_transfers)
        .notifications(notify)
        .build();
    // Configurations of a previous run: watch and deliver from the start.
    s4.notifications().start().await?;
    let s3 = s4_http::s3::daemon::start(
        &s4,
        s3_endpoint.mode,
        settings.ip,
        s3_endpoint.port,
        s3_endpoint.credentials,
    )
    .await?;
    let app = App::with_settings(s4, http, store);
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

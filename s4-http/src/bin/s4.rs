//! The `s4` daemon: parse flags, set up logging, open the backend, bind, serve.

use std::process::ExitCode;

use clap::Parser;
use s4_core::settings::ENV_VARS;
use s4_core::{Settings, S4};
use s4_http::{serve, App, HttpConfig};

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
}

fn load_dotenv() {
    // Earlier files win and the real environment wins over all: dotenvy never
    // overrides a variable that is already set.
    let node_env = std::env::var("NODE_ENV").unwrap_or_else(|_| "production".into());
    for file in [
        format!(".env.{node_env}.local"),
        format!(".env.{node_env}"),
        ".env.local".to_string(),
        ".env".to_string(),
    ] {
        let _ = dotenvy::from_filename(file);
    }
}

fn main() -> ExitCode {
    load_dotenv();
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
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
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
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s4: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let backend = S4::open_backend_from(&settings).await?;
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
        .build();
    let config = HttpConfig::from_lookup(&settings, &|name| std::env::var(name).ok());
    let app = App::new(s4, config);
    let addr = std::net::SocketAddr::new(settings.ip, settings.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "s4 listening; API under {}/api", settings.nb_prefix);
    serve(listener, app, shutdown_signal()).await?;
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

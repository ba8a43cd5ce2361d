//! How the `s4` daemon starts the S3 endpoint: on or off, port, credentials.

use std::net::{IpAddr, SocketAddr};

use s4_core::S4;
use tokio::net::TcpListener;

use super::{S3Credentials, S3Endpoint};

/// Whether the daemon runs the S3 endpoint (`--s3-endpoint`, `S4_S3_ENDPOINT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointMode {
    /// On for the local and memory backends, off for the `s3` backend (its clients
    /// can talk to that engine directly).
    #[default]
    Auto,
    /// Always on.
    On,
    /// Off.
    Off,
}

impl EndpointMode {
    /// `auto`, `on` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Auto => "auto",
            EndpointMode::On => "on",
            EndpointMode::Off => "off",
        }
    }
}

impl std::str::FromStr for EndpointMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(EndpointMode::Auto),
            "on" | "true" | "1" => Ok(EndpointMode::On),
            "off" | "false" | "0" => Ok(EndpointMode::Off),
            other => Err(format!("expected auto, on or off, got {other:?}")),
        }
    }
}

/// A bound S3 listener with its endpoint, ready for [`super::serve`].
#[derive(Debug)]
pub struct DaemonEndpoint {
    /// The bound listener.
    pub listener: TcpListener,
    /// The endpoint.
    pub endpoint: S3Endpoint,
}

/// Binds the S3 endpoint of the daemon at `ip:port` when `mode` says so for the
/// backend of `s4`, logging the decision. In [`EndpointMode::Auto`] a port that
/// cannot be bound is logged and the daemon runs without the endpoint. The
/// `credentials` are those of the configuration (`S4_S3_ACCESS_KEY_ID` /
/// `S4_S3_SECRET_ACCESS_KEY`); without them a random pair is generated and logged
/// once.
///
/// # Errors
/// A port that cannot be bound, or a staging area that cannot be prepared.
pub async fn start(
    s4: &S4,
    mode: EndpointMode,
    ip: IpAddr,
    port: u16,
    credentials: Option<S3Credentials>,
) -> Result<Option<DaemonEndpoint>, Box<dyn std::error::Error>> {
    let backend = s4.backend().name();
    match mode {
        EndpointMode::Off => {
            tracing::info!("S3 protocol endpoint off");
            return Ok(None);
        }
        EndpointMode::Auto if backend == "s3" => {
            tracing::info!(
                "S3 protocol endpoint off for the s3 backend (clients can use that engine directly; \
                 --s3-endpoint on or S4_S3_ENDPOINT=on starts it)"
            );
            return Ok(None);
        }
        _ => {}
    }
    let credentials = match credentials {
        Some(c) => {
            tracing::info!(access_key_id = %c.access_key_id, "S3 endpoint credentials from S4_S3_ACCESS_KEY_ID");
            c
        }
        None => {
            let c = S3Credentials::random();
            tracing::warn!(
                access_key_id = %c.access_key_id,
                secret_access_key = %c.secret_access_key,
                "S3 endpoint: S4_S3_ACCESS_KEY_ID / S4_S3_SECRET_ACCESS_KEY not set; generated credentials for this run"
            );
            c
        }
    };
    let addr = SocketAddr::new(ip, port);
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        // Started by default: a busy port (another s4 on this machine) costs the
        // endpoint, not the daemon. Asked for explicitly: fail.
        Err(e) if mode == EndpointMode::Auto => {
            tracing::warn!(address = %addr, error = %e, "S3 protocol endpoint not started: cannot listen (set S4_S3_PORT, or S4_S3_ENDPOINT=off)");
            return Ok(None);
        }
        Err(e) => {
            return Err(format!("cannot listen on {addr} (S3 endpoint, S4_S3_PORT): {e}").into())
        }
    };
    let endpoint = S3Endpoint::new(s4.clone(), credentials).await?;
    tracing::info!(address = %listener.local_addr()?, "S3 protocol endpoint up (path-style, SigV4)");
    Ok(Some(DaemonEndpoint { listener, endpoint }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!("auto".parse(), Ok(EndpointMode::Auto));
        assert_eq!("OFF".parse(), Ok(EndpointMode::Off));
        assert_eq!("on".parse(), Ok(EndpointMode::On));
        assert!("maybe".parse::<EndpointMode>().is_err());
    }

    #[tokio::test]
    async fn modes_and_credentials() -> Result<(), Box<dyn std::error::Error>> {
        let s4 = S4::builder().memory().build();
        let ip: IpAddr = "127.0.0.1".parse()?;
        let off = start(&s4, EndpointMode::Off, ip, 0, None).await?;
        assert!(off.is_none());
        let on = start(&s4, EndpointMode::Auto, ip, 0, None).await?;
        assert!(on.is_some());
        let given = S3Credentials::new("AKID", "secret");
        let on = start(&s4, EndpointMode::On, ip, 0, Some(given)).await?;
        assert!(on.is_some());
        for mode in [EndpointMode::Auto, EndpointMode::On, EndpointMode::Off] {
            assert_eq!(mode.as_str().parse(), Ok(mode));
        }
        Ok(())
    }
}

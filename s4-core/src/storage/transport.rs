//! Classification of the S3 clients' transport failures (timeout, refused, reset),
//! found in an error's source chain.
//!
//! Kept apart from `s3_client.rs` and free of `crate::error` so that the one
//! `From<object_store::Error>` (in `error.rs`) can use it without an import circle;
//! `error.rs` turns a [`TransportFailure`] into the typed error.

/// What went wrong on the wire between S4 and its S3 engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) enum TransportFailure {
    /// No answer in time.
    Timeout,
    /// Connection refused or not possible.
    Unavailable,
    /// Reset or closed mid-request.
    ConnectionLost,
}

/// Classifies a transport failure found in `err`'s source chain (an HTTP client
/// error of `object_store` or hyper), or `None` when the chain holds none
/// (then it is not a transport failure, e.g. a local file-system error). Without
/// the `s3` feature there is no HTTP client, so never a transport failure.
#[cfg(feature = "s3")]
pub(crate) fn classify(err: &(dyn std::error::Error + 'static)) -> Option<TransportFailure> {
    use object_store::client::{HttpError, HttpErrorKind};

    let mut transport = false;
    let mut timeout = false;
    let mut connect = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<HttpError>() {
            transport = true;
            match h.kind() {
                HttpErrorKind::Timeout => timeout = true,
                HttpErrorKind::Connect => connect = true,
                _ => {}
            }
        } else if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            transport = true;
            connect |= h.is_connect();
        } else if e.downcast_ref::<hyper::Error>().is_some() {
            transport = true;
        } else if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            timeout = true;
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::TimedOut => timeout = true,
                std::io::ErrorKind::ConnectionRefused => connect = true,
                _ => {}
            }
        }
        cur = e.source();
    }
    if !transport {
        return None;
    }
    Some(if timeout {
        TransportFailure::Timeout
    } else if connect {
        TransportFailure::Unavailable
    } else {
        TransportFailure::ConnectionLost
    })
}

/// Without the `s3` feature there is no HTTP client: never a transport failure.
#[cfg(not(feature = "s3"))]
pub(crate) fn classify(_err: &(dyn std::error::Error + 'static)) -> Option<TransportFailure> {
    None
}

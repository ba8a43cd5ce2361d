//! Timeouts, bounded retries and transport-failure classification of the S3
//! backend's HTTP client (`quickack`), so a hanging or dead engine never hangs S4.
//!
//! Every backend request gets
//!
//! * a **connect timeout** ([`S3Timeouts::connect`]);
//! * a **response timeout** ([`S3Timeouts::response`]): the response headers must
//!   arrive within it (plus the time the request body needs at
//!   [`S3Timeouts::min_upload_rate`]), and a response body that stalls (no data) for
//!   that long is cut;
//! * **bounded retries** ([`S3Timeouts::retries`]) of requests that failed to connect
//!   or were reset, never started later than one response timeout after the first
//!   attempt (a timed-out attempt is therefore not repeated).
//!
//! Transport failures become [`ErrorKind::Timeout`] (`GatewayTimeout`),
//! [`ErrorKind::Unavailable`] (`ServiceUnavailable`: connection refused or not
//! possible) and [`ErrorKind::ConnectionLost`] (`BadGateway`: reset or closed
//! mid-request). Nothing is cached about a failure: the next request opens a new
//! connection, so S4 recovers by itself when the engine is back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use object_store::client::{
    HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};
use object_store::{BackoffConfig, RetryConfig};

use super::transport::TransportFailure;

/// Why one attempt of a request failed: before sending (not retried) or on the
/// wire.
#[derive(Debug)]
pub(crate) enum Attempt {
    Build(Error),
    Http(object_store::client::HttpError),
}
use crate::error::{Error, ErrorKind, Result};

/// Environment variable of [`S3Timeouts::connect`] (seconds).
pub const ENV_CONNECT_TIMEOUT: &str = "S4_S3_CONNECT_TIMEOUT";
/// Environment variable of [`S3Timeouts::response`] (seconds).
pub const ENV_TIMEOUT: &str = "S4_S3_TIMEOUT";
/// Environment variable of [`S3Timeouts::retries`].
pub const ENV_RETRIES: &str = "S4_S3_RETRIES";

/// Timeouts and retries of the requests to an S3 engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Timeouts {
    /// TCP (and TLS) connect timeout. Default 3 s.
    pub connect: Duration,
    /// Time allowed until the response headers arrive, and the longest pause within
    /// a response body. Default 30 s.
    pub response: Duration,
    /// Bytes per second a request body is allowed to need on top of
    /// [`Self::response`] before its headers are due. Default 1 MiB/s.
    pub min_upload_rate: u64,
    /// Retries of a request that could not connect or was reset. Default 2.
    pub retries: usize,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        S3Timeouts {
            connect: Duration::from_secs(3),
            response: Duration::from_secs(30),
            min_upload_rate: 1 << 20,
            retries: 2,
        }
    }
}

impl S3Timeouts {
    /// Reads `S4_S3_CONNECT_TIMEOUT`, `S4_S3_TIMEOUT` (seconds, fractions allowed)
    /// and `S4_S3_RETRIES` through `lookup`; missing or invalid values keep their
    /// default.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let secs = |name: &str, default: Duration| {
            lookup(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                .map_or(default, Duration::from_secs_f64)
        };
        let defaults = S3Timeouts::default();
        S3Timeouts {
            connect: secs(ENV_CONNECT_TIMEOUT, defaults.connect),
            response: secs(ENV_TIMEOUT, defaults.response),
            min_upload_rate: defaults.min_upload_rate,
            retries: lookup(ENV_RETRIES)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|r| *r <= 10)
                .unwrap_or(defaults.retries),
        }
    }

    /// When the response headers of a request with a `body_len`-byte body are due.
    pub(crate) fn headers_due(&self, body_len: u64) -> Duration {
        let rate = self.min_upload_rate.max(1);
        self.response + Duration::from_secs(body_len / rate)
    }

    /// `object_store`'s retry policy: at most [`Self::retries`] retries, none
    /// started later than [`Self::response`] after the first attempt.
    pub(crate) fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.response,
        }
    }
}

/// Runs `send` (which resolves once the response headers arrived) under the
/// response timeout for a `body_len`-byte body, retrying connect failures and resets
/// of idempotent requests up to [`S3Timeouts::retries`] times.
pub(crate) async fn with_retries<F, Fut, T>(
    timeouts: &S3Timeouts,
    body_len: u64,
    idempotent: bool,
    mut send: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Attempt>>,
{
    let started = tokio::time::Instant::now();
    let mut attempt = 0usize;
    loop {
        let error = match tokio::time::timeout(timeouts.headers_due(body_len), send()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Attempt::Build(e))) => return Err(e),
            Ok(Err(Attempt::Http(e))) => classify_http(&e).with_source(e),
            Err(elapsed) => timed_out().with_source(elapsed),
        };
        let retryable = matches!(
            error.kind(),
            ErrorKind::Unavailable | ErrorKind::ConnectionLost
        ) && idempotent;
        if !retryable || attempt >= timeouts.retries || started.elapsed() >= timeouts.response {
            return Err(error);
        }
        let backoff = Duration::from_millis(100u64 << attempt.min(4));
        tracing::debug!(attempt, error = %error, "retrying S3 request");
        tokio::time::sleep(backoff).await;
        attempt += 1;
    }
}

/// Reads a whole (small) response body, failing when it stalls.
pub(crate) async fn read_body(timeouts: &S3Timeouts, response: HttpResponse) -> Result<Bytes> {
    // The client cuts a stalled body (`TimedService`); this bounds the total as well.
    match tokio::time::timeout(timeouts.response * 6, response.into_body().bytes()).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(classify_http(&e).with_source(e)),
        Err(elapsed) => Err(timed_out().with_source(elapsed)),
    }
}

/// The typed error of a failed request (without source).
pub(crate) fn classify_http(e: &HttpError) -> Error {
    transport_failure(e).unwrap_or_else(connection_lost)
}

/// A request extension: bytes the engine processes for the request without them
/// being sent (a server-side copy), so its response headers are due later, as if
/// they were uploaded (see [`S3Timeouts::headers_due`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpectedWork(pub(crate) u64);

fn timed_out() -> Error {
    Error::from(TransportFailure::Timeout)
}

fn connection_lost() -> Error {
    Error::from(TransportFailure::ConnectionLost)
}

/// The typed error of a transport failure in `err`'s source chain (see
/// [`super::transport::classify`]), or `None`.
pub(crate) fn transport_failure(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    super::transport::classify(err).map(Error::from)
}

/// An `object_store` HTTP service with the response timeout of [`S3Timeouts`]:
/// headers due within [`S3Timeouts::headers_due`], response bodies cut when they
/// stall for [`S3Timeouts::response`].
#[derive(Debug)]
pub(crate) struct TimedService<S> {
    pub(crate) inner: S,
    pub(crate) timeouts: S3Timeouts,
}

#[async_trait::async_trait]
impl<S: HttpService> HttpService for TimedService<S> {
    async fn call(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let work = request
            .extensions()
            .get::<ExpectedWork>()
            .map_or(0, |w| w.0);
        let body_len = request.body().content_length() as u64 + work;
        let due = self.timeouts.headers_due(body_len);
        let response = tokio::time::timeout(due, self.inner.call(request))
            .await
            .map_err(|elapsed| HttpError::new(HttpErrorKind::Timeout, elapsed))??;
        let stall = self.timeouts.response;
        Ok(response.map(|body| HttpResponseBody::new(StallBody::new(body, stall))))
    }
}

/// A response body that fails with a timeout when no data arrives for `limit`.
struct StallBody {
    inner: HttpResponseBody,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl StallBody {
    fn new(inner: HttpResponseBody, limit: Duration) -> Self {
        StallBody {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

#[derive(Debug)]
struct Stalled(Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backend response body stalled for {:?}", self.0)
    }
}

impl std::error::Error for Stalled {}

impl hyper::body::Body for StallBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<hyper::body::Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.limit;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    Stalled(this.limit),
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lookup_reads_and_falls_back() {
        let t = S3Timeouts::from_lookup(&|name| match name {
            ENV_CONNECT_TIMEOUT => Some("0.5".into()),
            ENV_TIMEOUT => Some("nonsense".into()),
            ENV_RETRIES => Some("1".into()),
            _ => None,
        });
        assert_eq!(t.connect, Duration::from_millis(500));
        assert_eq!(t.response, S3Timeouts::default().response);
        assert_eq!(t.retries, 1);
    }

    #[test]
    fn headers_due_grows_with_the_body() {
        let t = S3Timeouts::default();
        assert_eq!(t.headers_due(0), t.response);
        assert_eq!(t.headers_due(5 << 20), t.response + Duration::from_secs(5));
    }

    #[test]
    fn io_errors_alone_are_not_transport_failures() {
        let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(transport_failure(&io).is_none());
        let http = HttpError::new(HttpErrorKind::Timeout, io);
        let e = transport_failure(&http).map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::Timeout));
        let refused = HttpError::new(
            HttpErrorKind::Connect,
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(
            transport_failure(&refused).map(|e| e.kind()),
            Some(ErrorKind::Unavailable)
        );
        let reset = HttpError::new(
            HttpErrorKind::Request,
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        );
        assert_eq!(
            transport_failure(&reset).map(|e| e.kind()),
            Some(ErrorKind::ConnectionLost)
        );
    }
}

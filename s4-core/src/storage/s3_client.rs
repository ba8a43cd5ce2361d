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
//! * **bounded retries** ([`S3Timeouts::retries`]): a request that could not connect
//!   is retried whatever it is; one that timed out or was reset is retried when it
//!   is idempotent (GET, HEAD, PUT of an object, a part or a copy, DELETE), so a
//!   timed-out attempt is repeated up to the configured count. `object_store`'s
//!   own retry loop follows the same count; its time budget
//!   ([`S3Timeouts::retry_config`]) leaves room for every attempt to time out.
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
    /// a response body. Default 10 s: with the default two retries a hanging
    /// engine is answered (504) within about 30 s, while a part upload gets three
    /// attempts of 10 s plus its body allowance (15 s for a 5 MiB part).
    pub response: Duration,
    /// Bytes per second a request body is allowed to need on top of
    /// [`Self::response`] before its headers are due. Default 1 MiB/s.
    pub min_upload_rate: u64,
    /// Retries of a request that could not connect, timed out or was reset (the
    /// last two only for idempotent requests). Default 2.
    pub retries: usize,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        S3Timeouts {
            connect: Duration::from_secs(3),
            response: Duration::from_secs(10),
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

    /// `object_store`'s retry policy: at most [`Self::retries`] retries.
    ///
    /// `object_store` starts no retry once `retry_timeout` has passed since the
    /// first attempt, so that budget must hold every attempt timing out: each one
    /// is cut by [`TimedService`] after [`Self::headers_due`] of its body (S4's
    /// bodies through `object_store` are at most one part, under
    /// [`RETRY_BODY_ALLOWANCE`]), plus the backoff before each retry. (With the
    /// old budget of one response timeout, a timed-out attempt was never retried.)
    /// `object_store` retries a timeout only for idempotent requests: GET, HEAD,
    /// object and part PUTs, CopyObject, CreateMultipartUpload and
    /// CompleteMultipartUpload; not DELETE. Its retries reuse the first attempt's
    /// signature, which S3 accepts for 15 minutes: the budget stays below that
    /// for the allowed settings' defaults (about 80 s with the defaults).
    pub(crate) fn retry_config(&self) -> RetryConfig {
        let backoff = BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: MAX_BACKOFF,
            base: 2.0,
        };
        let attempts = u32::try_from(self.retries.saturating_add(1)).unwrap_or(u32::MAX);
        let waits = u32::try_from(self.retries).unwrap_or(u32::MAX);
        let retry_timeout = self
            .headers_due(RETRY_BODY_ALLOWANCE)
            .saturating_mul(attempts)
            .saturating_add(MAX_BACKOFF.saturating_mul(waits));
        RetryConfig {
            backoff,
            max_retries: self.retries,
            retry_timeout,
        }
    }
}

/// The longest wait between two attempts of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The largest request body S4 sends through `object_store` in one request (one
/// part, or a whole small object: `crate::PART_SIZE` = 5 MiB), with room to
/// spare: the time budget of `object_store`'s retries counts every attempt's body
/// allowance at this size.
const RETRY_BODY_ALLOWANCE: u64 = 16 << 20;

/// Which failed attempts of a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Repeating the request has the effect of sending it once: retried after a
    /// connect failure, a timeout or a reset.
    Idempotent,
    /// The engine may have acted on an attempt that timed out or was reset, and a
    /// second one would act again (CreateMultipartUpload makes a second upload) or
    /// answer differently (CreateBucket: "already yours"): retried only when it
    /// could not connect (nothing was sent).
    NotIdempotent,
}

/// Runs `send` (which resolves once the response headers arrived) under the
/// response timeout for a `body_len`-byte body, retrying up to
/// [`S3Timeouts::retries`] times: connect failures always, timeouts and resets
/// when the request is [`Idempotency::Idempotent`]. Each attempt is bounded by
/// its own timeout (and signed anew by `send`), so the count alone bounds the
/// whole.
pub(crate) async fn with_retries<F, Fut, T>(
    timeouts: &S3Timeouts,
    body_len: u64,
    idempotency: Idempotency,
    mut send: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Attempt>>,
{
    let mut attempt = 0usize;
    loop {
        let error = match tokio::time::timeout(timeouts.headers_due(body_len), send()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Attempt::Build(e))) => return Err(e),
            Ok(Err(Attempt::Http(e))) => classify_http(&e).with_source(e),
            Err(elapsed) => timed_out().with_source(elapsed),
        };
        if !retryable(error.kind(), idempotency) || attempt >= timeouts.retries {
            return Err(error);
        }
        let backoff = Duration::from_millis(100u64 << attempt.min(4));
        tracing::debug!(attempt, error = %error, "retrying S3 request");
        tokio::time::sleep(backoff).await;
        attempt += 1;
    }
}

/// Whether a failed attempt of kind `kind` may be repeated.
fn retryable(kind: ErrorKind, idempotency: Idempotency) -> bool {
    match kind {
        ErrorKind::Unavailable => true,
        ErrorKind::Timeout | ErrorKind::ConnectionLost => idempotency == Idempotency::Idempotent,
        _ => false,
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

    /// The retry budget of `object_store` holds every attempt timing out with a
    /// part-sized body, plus the backoffs (the old budget, one response timeout,
    /// allowed no retry after a timeout).
    #[test]
    fn retry_budget_holds_every_timed_out_attempt() {
        for retries in [0, 2, 10] {
            let t = S3Timeouts {
                retries,
                ..S3Timeouts::default()
            };
            let config = t.retry_config();
            assert_eq!(config.max_retries, retries);
            let attempts = u32::try_from(retries + 1).expect("small");
            let needed = t.headers_due(crate::PART_SIZE as u64) * attempts
                + MAX_BACKOFF * u32::try_from(retries).expect("small");
            assert!(config.retry_timeout >= needed, "{retries}: {config:?}");
        }
        let default = S3Timeouts::default().retry_config();
        assert!(default.retry_timeout < Duration::from_secs(15 * 60));
    }

    #[test]
    fn what_is_retried() {
        use Idempotency::{Idempotent, NotIdempotent};
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::ConnectionLost,
            ErrorKind::Unavailable,
        ] {
            assert!(retryable(kind, Idempotent), "{kind:?}");
        }
        assert!(retryable(ErrorKind::Unavailable, NotIdempotent));
        assert!(!retryable(ErrorKind::Timeout, NotIdempotent));
        assert!(!retryable(ErrorKind::ConnectionLost, NotIdempotent));
        assert!(!retryable(ErrorKind::NotFound, Idempotent));
    }

    /// An attempt that never answers times out and is repeated up to the
    /// configured count (paused clock: the timeouts pass at once).
    #[tokio::test(start_paused = true)]
    async fn timed_out_attempts_are_repeated_up_to_the_count() {
        let t = S3Timeouts {
            response: Duration::from_millis(300),
            retries: 2,
            ..S3Timeouts::default()
        };
        let run = |answer_at: usize, idempotency: Idempotency| {
            let calls = std::sync::atomic::AtomicUsize::new(0);
            async move {
                let result = with_retries(&t, 0, idempotency, || {
                    let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        if n < answer_at {
                            std::future::pending::<()>().await;
                        }
                        Ok::<usize, Attempt>(n)
                    }
                })
                .await;
                (result, calls.into_inner())
            }
        };
        let (result, calls) = run(1, Idempotency::Idempotent).await;
        assert_eq!(result.expect("second attempt answers"), 1);
        assert_eq!(calls, 2);
        let (result, calls) = run(2, Idempotency::Idempotent).await;
        assert_eq!(result.expect("third attempt answers"), 2);
        assert_eq!(calls, 3);
        let (result, calls) = run(3, Idempotency::Idempotent).await;
        assert_eq!(result.map_err(|e| e.kind()), Err(ErrorKind::Timeout));
        assert_eq!(calls, 3, "one attempt and two retries");
        let (result, calls) = run(1, Idempotency::NotIdempotent).await;
        assert_eq!(result.map_err(|e| e.kind()), Err(ErrorKind::Timeout));
        assert_eq!(calls, 1, "a timed-out POST may have acted: not repeated");
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

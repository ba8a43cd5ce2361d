//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) on one port, connection timeouts,
//! graceful shutdown.
//!
//! [`serve`] takes a bound listener and a shutdown future, so the daemon, tests and
//! embedders all run the same server. Every connection is a task in one `JoinSet`
//! with a watchdog that closes it when it
//!
//! * has not finished a request head within [`ServeOptions::header_read_timeout`]
//!   (counted from the connection's start, or from the first byte after an idle
//!   period: a silent client and a slowloris one are both closed), or
//! * has been idle (no request in flight, nothing sent or received) for
//!   [`ServeOptions::idle_timeout`] (HTTP/1.1 keep-alive and h2c alike).
//!
//! A connection with a request in flight is never cut by the watchdog: SSE streams
//! and slow but progressing transfers stay open. A request body that stalls for
//! longer than [`ServeOptions::body_read_timeout`] fails the body read (see
//! [`crate::body::data_stream`]), which aborts the request like a client disconnect.
//!
//! On shutdown the loop stops accepting, asks every connection to finish (HTTP/1.1:
//! close after the current response; h2c: GOAWAY), tells open SSE streams to end,
//! waits until [`ServeOptions::drain_timeout`], then aborts what remains and waits
//! for it: [`serve`] returns with nothing left running.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::app::App;
use crate::body::{BodyReadTimeout, BoxError};

/// Default of [`ServeOptions::header_read_timeout`].
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ServeOptions::idle_timeout`].
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ServeOptions::body_read_timeout`].
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Server tuning.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may run after shutdown starts.
    pub drain_timeout: Duration,
    /// Maximum concurrent connections (further accepts wait).
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from the connection's
    /// start or from the first byte after an idle period (`S4_HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// Time a connection without a request in flight may stay silent
    /// (`S4_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// Longest pause between two pieces of a request body (`S4_BODY_READ_TIMEOUT`).
    pub body_read_timeout: Duration,
}

impl ServeOptions {
    /// The defaults without connection timeouts ([`Duration::MAX`] disables a
    /// timeout): for tests that pause tokio's clock, where every timer fires as soon
    /// as the runtime waits on I/O.
    pub fn without_timeouts() -> Self {
        ServeOptions {
            header_read_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            body_read_timeout: Duration::MAX,
            ..ServeOptions::default()
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain_timeout: Duration::from_secs(30),
            max_connections: 4096,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
///
/// # Errors
/// Only unrecoverable listener failures; per-connection errors are logged.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, ServeOptions::default()).await
}

/// What the accept loop serves on each request: the REST [`App`], or the S3
/// protocol endpoint ([`crate::s3::S3Endpoint`]).
pub(crate) trait Handler: Clone + Send + Sync + 'static {
    /// Answers one request from `peer`.
    fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<crate::body::Body>> + Send;
}

impl Handler for App {
    fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<crate::body::Body>> + Send {
        App::handle(self, request, peer)
    }
}

/// [`serve`] with explicit [`ServeOptions`].
///
/// # Errors
/// Only unrecoverable listener failures; per-connection errors are logged.
pub async fn serve_with(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> std::io::Result<()> {
    serve_handler(listener, app, shutdown, options).await
}

/// [`serve_with`] for any [`Handler`]: the same connection handling, timeouts and
/// graceful shutdown.
///
/// # Errors
/// Only unrecoverable listener failures; per-connection errors are logged.
pub(crate) async fn serve_handler<H: Handler>(
    listener: TcpListener,
    app: H,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog below enforces the header-read timeout on both protocols (hyper's
    // own HTTP/1 one would also cut idle keep-alive connections at that shorter
    // timeout); the timer drives hyper's HTTP/2 keep-alive pings.
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    let pings = (options.idle_timeout < Duration::from_secs(86_400 * 365))
        .then_some(Duration::from_secs(20));
    builder
        .http2()
        .max_concurrent_streams(256)
        .timer(TokioTimer::new())
        .keep_alive_interval(pings)
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = Duration::from_millis(5);
                    conn
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new());
        let connection = serve_connection(
            Arc::clone(&builder),
            stream,
            peer,
            app.clone(),
            Arc::clone(&state),
            options.clone(),
            stop.clone(),
        );
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: draining in-flight requests"
    );
    stop.cancel();
    let drained = tokio::time::timeout(options.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => {
            tracing::warn!(timeout = ?options.drain_timeout, remaining = connections.len(), "drain deadline passed; aborting remaining connections");
            connections.shutdown().await;
        }
    }
    Ok(())
}

/// Serves one connection until it ends, its watchdog fires, or shutdown (then
/// gracefully).
async fn serve_connection<H: Handler>(
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    app: H,
    state: Arc<ConnState>,
    options: ServeOptions,
    stop: CancellationToken,
) {
    let service_state = Arc::clone(&state);
    let service_stop = stop.clone();
    let body_timeout = BodyReadTimeout(options.body_read_timeout);
    let service = service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
        let app = app.clone();
        let guard = InFlight::start(Arc::clone(&service_state));
        let stop = service_stop.clone();
        request.extensions_mut().insert(body_timeout);
        async move {
            let response = app.handle(request, peer).await;
            let is_sse = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let response = response.map(|inner| {
                TrackedBody {
                    inner,
                    _guard: guard,
                    stop: is_sse.then(|| Box::pin(stop.cancelled_owned())),
                }
                .boxed()
            });
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let io = TokioIo::new(ActivityIo {
        inner: stream,
        state: Arc::clone(&state),
    });
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                log_connection_error(peer, e.as_ref());
            }
        }
        reason = watchdog(&state, &options) => {
            tracing::debug!(%peer, reason, "closing connection");
        }
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                log_connection_error(peer, e.as_ref());
            }
        }
    }
}

fn log_connection_error(peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    // Clients closing connections mid-request are routine; log them quietly.
    tracing::debug!(%peer, error = %e, "connection ended with an error");
}

/// What the watchdog of one connection knows about it.
struct ConnState {
    origin: Instant,
    /// Milliseconds since `origin` of the last byte read or written, or of the end
    /// of the last response.
    last_activity: AtomicU64,
    /// 1 + milliseconds since `origin` of the first byte read while no request was
    /// in flight (a request head has begun); 0 when none.
    head_started: AtomicU64,
    /// Requests whose response has not been sent completely (or dropped).
    in_flight: AtomicUsize,
    /// Requests seen on this connection.
    requests: AtomicU64,
    /// Signalled when the watchdog's deadline may have moved earlier.
    changed: Notify,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            origin: Instant::now(),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `origin + ms + timeout`; `None` when that overflows (timeout disabled).
    fn after(&self, ms: u64, timeout: Duration) -> Option<Instant> {
        self.origin
            .checked_add(Duration::from_millis(ms))?
            .checked_add(timeout)
    }

    fn touch(&self, read: bool) {
        let now = self.now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if read
            && self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_waiters();
        }
    }

    /// When the connection is to be closed; `None` while a request is in flight (or
    /// when the timeouts are disabled).
    fn deadline(&self, options: &ServeOptions) -> Option<(Instant, &'static str)> {
        const HEAD: &str = "no complete request head within the header-read timeout";
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return self
                .after(0, options.header_read_timeout)
                .map(|at| (at, HEAD));
        }
        let idle = self
            .after(
                self.last_activity.load(Ordering::Relaxed),
                options.idle_timeout,
            )
            .map(|at| (at, "idle timeout"));
        // Bytes after an idle period (a new request head, or HTTP/2 control frames)
        // start the header-read clock; silence still ends the connection when idle.
        let head = match self.head_started.load(Ordering::Acquire) {
            0 => None,
            started => self
                .after(started - 1, options.header_read_timeout)
                .map(|at| (at, HEAD)),
        };
        match (head, idle) {
            (Some(h), Some(i)) => Some(if h.0 < i.0 { h } else { i }),
            (h, i) => h.or(i),
        }
    }
}

/// Completes when the connection is to be closed, with the reason.
async fn watchdog(state: &ConnState, options: &ServeOptions) -> &'static str {
    loop {
        let changed = state.changed.notified();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        match state.deadline(options) {
            None => changed.await,
            Some((at, reason)) => {
                if at <= Instant::now() {
                    return reason;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = changed => {}
                }
            }
        }
    }
}

/// Counts a request as in flight from the service call until its response body is
/// finished or dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: Arc<ConnState>) -> Self {
        state.requests.fetch_add(1, Ordering::AcqRel);
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.head_started.store(0, Ordering::Release);
        state.changed.notify_waiters();
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now_ms();
        self.0.last_activity.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A response body that keeps its request counted as in flight, and (for SSE) ends
/// cleanly when the server shuts down.
struct TrackedBody {
    inner: crate::body::Body,
    _guard: InFlight,
    stop: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl TrackedBody {
    fn boxed(self) -> crate::body::Body {
        http_body_util::BodyExt::boxed_unsync(self)
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(stop) = this.stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TCP stream of a connection, recording activity for the watchdog.
struct ActivityIo {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.touch(true);
        }
        polled
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.state.touch(false);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.state.touch(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

//! The HTTP client of the S3 backend: one stack for every request S4 sends to its
//! engine (object I/O through `object_store`, and the backend's own signed
//! requests: buckets, listings, tagging, verbatim keys, server-side copies).
//!
//! [`QuickAckConnector`] builds it from the `object_store` [`ClientOptions`] it is
//! given (connect and response timeouts, pool, user agent, default headers, proxy,
//! TLS roots), and routes each request (see [`route`], the one place deciding):
//!
//! * plain `http://` without a proxy: hyper with TCP connections that acknowledge
//!   every read at once (`TCP_QUICKACK`). Why: S3 engines that do not set
//!   `TCP_NODELAY` (Garage, measured in `benches/README.md`) write a GET's headers
//!   and body in two segments. On a keep-alive connection the client is in
//!   delayed-ACK mode and holds the ACK of the first segment for up to 40 ms, while
//!   the server's Nagle algorithm holds the body until that ACK arrives: every
//!   small GET on a reused connection costs ~44 ms. Leaving delayed-ACK mode after
//!   sending each request makes the ACK go out at once (a reused connection's
//!   small GET: 42 ms → ~1.5 ms). `reqwest` does not expose the socket, hence this
//!   connector.
//! * `https://`, or any request when a proxy is configured: `object_store`'s
//!   default reqwest client built from the same options (proxy, TLS roots, pool).
//!
//! Both sit under the same response timeouts (`s3_client::TimedService`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::{ClientConfigKey, ClientOptions};

use super::s3_client::{S3Timeouts, TimedService};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A TCP connector whose connections re-arm quick-ACK after every read.
#[derive(Debug, Clone)]
struct QuickAckTcp {
    inner: HttpConnector,
}

/// A TCP stream that re-arms quick-ACK after every read.
#[derive(Debug)]
struct QuickAckIo(TokioIo<tokio::net::TcpStream>);
impl tower_service::Service<Uri> for QuickAckTcp {
    type Response = QuickAckIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAckIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        Box::pin(async move { Ok(QuickAckIo(connecting.await?)) })
    }
}

impl QuickAckIo {
    /// Leaves delayed-ACK ("ping-pong") mode right after sending: sending a request
    /// shortly after a response is what puts the connection in that mode, and the
    /// next response's first segment is then acknowledged at once. Arming on writes
    /// (once per request, not per read) keeps bulk downloads on normal delayed ACKs.
    /// Failure only costs latency, never correctness.
    fn arm_quickack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(self.0.inner()).set_tcp_quickack(true);
    }
}

impl hyper::rt::Read for QuickAckIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for QuickAckIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = polled {
            this.arm_quickack();
        }
        polled
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.0).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(_)) = polled {
            this.arm_quickack();
        }
        polled
    }
}

impl Connection for QuickAckIo {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

/// The quick-ACK hyper client, adding the options' user agent and default headers
/// (reqwest adds them itself on the other route).
#[derive(Debug)]
struct QuickAckService {
    client: Client<QuickAckTcp, HttpRequestBody>,
    headers: http::HeaderMap,
}

impl QuickAckService {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        for (name, value) in &self.headers {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let response = self.client.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                HttpErrorKind::Connect
            } else {
                HttpErrorKind::Request
            };
            HttpError::new(kind, e)
        })?;
        Ok(response.map(|body| {
            HttpResponseBody::new(body.map_err(|e| HttpError::new(HttpErrorKind::Decode, e)))
        }))
    }
}

/// Routes each request to its client (see [`route`]); the reqwest client is built
/// on first use, so a plain-`http://` engine never loads TLS roots.
#[derive(Debug)]
struct Routed {
    /// `None` when a proxy is configured: every request goes through reqwest.
    quickack: Option<QuickAckService>,
    reqwest: tokio::sync::OnceCell<HttpClient>,
    options: ClientOptions,
}

#[async_trait::async_trait]
impl HttpService for Routed {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        // Timeouts: see `s3_client::TimedService`, which wraps this service.
        let scheme = request.uri().scheme_str().unwrap_or_default();
        if let (Some(quickack), Route::QuickAck) = (&self.quickack, route(scheme, false)) {
            return quickack.call(request).await;
        }
        let client = self
            .reqwest
            .get_or_try_init(|| async { reqwest_client(&self.options) })
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        client.execute(request).await
    }
}

/// `object_store`'s reqwest client for `options`, without its total request
/// timeout (it would cut long downloads; `TimedService` bounds the waits instead).
fn reqwest_client(options: &ClientOptions) -> object_store::Result<HttpClient> {
    use object_store::client::HttpConnector as _;
    object_store::client::ReqwestConnector::default()
        .connect(&options.clone().with_timeout_disabled())
}

/// Which client sends a request: the one place deciding it, for
/// [`QuickAckConnector`] and for the S3 backend's check that keys with `.`/`..`
/// segments can be addressed (only hyper sends a path verbatim; reqwest's URL
/// parser removes such segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Plain `http://` without a proxy: hyper on quick-ACK sockets.
    QuickAck,
    /// `https://`, or through a proxy: `object_store`'s reqwest client, built from
    /// the same `ClientOptions`.
    Reqwest,
}

/// The route of requests to a `scheme` endpoint, `proxied` or not.
pub(crate) fn route(scheme: &str, proxied: bool) -> Route {
    if scheme == "http" && !proxied {
        Route::QuickAck
    } else {
        Route::Reqwest
    }
}

/// An `object_store` [`HttpConnector`](object_store::client::HttpConnector) for S3
/// engines (see the module documentation): quick-ACK hyper for plain `http://`,
/// `object_store`'s reqwest client for `https://` or through a proxy, both under
/// the same response timeouts. What [`super::S3Backend`] uses for every request;
/// public so other `object_store` clients of the same engine (e.g. the benchmark
/// harness) can measure the same path.
///
/// The [`ClientOptions`] given to `connect` win: their connect timeout, their
/// timeout (here the time allowed until the response headers arrive, plus the
/// upload time of the request body at 1 MiB/s, and the longest pause within a
/// response body, never a cap on the whole transfer), pool settings, user agent,
/// default headers, proxy and TLS roots. The fields below apply only where the
/// options leave a setting unset.
#[derive(Debug, Clone)]
pub struct QuickAckConnector {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Response timeout (see above).
    pub request_timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub max_idle_per_host: usize,
}

impl Default for QuickAckConnector {
    /// 5 s to connect, 5 min to the response headers, 64 idle connections per host.
    fn default() -> Self {
        QuickAckConnector {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
            max_idle_per_host: 64,
        }
    }
}

fn duration_option(options: &ClientOptions, key: ClientConfigKey) -> Option<Duration> {
    options
        .get_config_value(&key)
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
}

impl object_store::client::HttpConnector for QuickAckConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let timeouts = S3Timeouts {
            connect: duration_option(options, ClientConfigKey::ConnectTimeout)
                .unwrap_or(self.connect_timeout),
            response: duration_option(options, ClientConfigKey::Timeout)
                .unwrap_or(self.request_timeout),
            ..S3Timeouts::default()
        };
        let proxied = options
            .get_config_value(&ClientConfigKey::ProxyUrl)
            .is_some_and(|p| !p.trim().is_empty());
        let quickack = if proxied {
            None
        } else {
            let max_idle = options
                .get_config_value(&ClientConfigKey::PoolMaxIdlePerHost)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(self.max_idle_per_host);
            let idle = duration_option(options, ClientConfigKey::PoolIdleTimeout)
                .unwrap_or(Duration::from_secs(60));
            let mut tcp = HttpConnector::new();
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(timeouts.connect));
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(max_idle)
                .pool_idle_timeout(idle)
                .build(QuickAckTcp { inner: tcp });
            let mut headers = options.get_default_headers().cloned().unwrap_or_default();
            if let Some(agent) = options
                .get_config_value(&ClientConfigKey::UserAgent)
                .and_then(|a| http::HeaderValue::from_str(&a).ok())
            {
                headers.insert(http::header::USER_AGENT, agent);
            }
            Some(QuickAckService { client, headers })
        };
        let reqwest = tokio::sync::OnceCell::new();
        if quickack.is_none() {
            // Proxied: every request takes reqwest; build it now to report errors.
            let _ = reqwest.set(reqwest_client(options)?);
        }
        Ok(HttpClient::new(TimedService {
            inner: Routed {
                quickack,
                reqwest,
                options: options.clone(),
            },
            timeouts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("http", false), Route::QuickAck);
        assert_eq!(route("http", true), Route::Reqwest);
        assert_eq!(route("https", false), Route::Reqwest);
    }

    #[test]
    fn options_durations_are_read_back() {
        let options = ClientOptions::new()
            .with_connect_timeout(Duration::from_millis(1500))
            .with_timeout(Duration::from_secs(100));
        assert_eq!(
            duration_option(&options, ClientConfigKey::ConnectTimeout),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            duration_option(&options, ClientConfigKey::Timeout),
            Some(Duration::from_secs(100))
        );
        let disabled = ClientOptions::new().with_timeout_disabled();
        assert_eq!(duration_option(&disabled, ClientConfigKey::Timeout), None);
    }
}

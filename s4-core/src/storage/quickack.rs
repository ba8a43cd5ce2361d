//! The HTTP client of the S3 backend for plain-`http://` endpoints: hyper with
//! TCP connections that acknowledge every read at once (`TCP_QUICKACK`).
//!
//! Why: S3 engines that do not set `TCP_NODELAY` (Garage, measured in
//! `benches/README.md`) write a GET's headers and body in two segments. On a
//! keep-alive connection the client is in delayed-ACK mode and holds the ACK of
//! the first segment for up to 40 ms, while the server's Nagle algorithm holds the
//! body until that ACK arrives: every small GET on a reused connection costs
//! ~44 ms. Leaving delayed-ACK mode after sending each request makes the ACK go
//! out at once (a reused connection's small GET: 42 ms → ~1.5 ms). `reqwest`, `object_store`'s default
//! client, does not expose the socket, hence this connector.
//!
//! Only for `http://` endpoints (in-cluster MinIO, Garage, Ceph RGW); `https://`
//! endpoints keep `object_store`'s default TLS client.

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
use object_store::ClientOptions;

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

#[derive(Debug)]
struct QuickAckService {
    client: Client<QuickAckTcp, HttpRequestBody>,
}

#[async_trait::async_trait]
impl HttpService for QuickAckService {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        // Timeouts: see `s3_client::TimedService`, which wraps this service.
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

/// An `object_store` [`HttpConnector`](object_store::client::HttpConnector) for
/// plain-`http://` S3 endpoints whose connections leave delayed-ACK mode after each
/// request (see the module documentation). What [`super::S3Backend`] uses for
/// `http://` endpoints; public so other `object_store` clients of the same engine
/// (e.g. the benchmark harness) can measure the same path.
#[derive(Debug, Clone)]
pub struct QuickAckConnector {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed until response headers arrive (plus the upload time of the
    /// request body at 1 MiB/s), and the longest pause within a response body.
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

impl object_store::client::HttpConnector for QuickAckConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(QuickAckTcp { inner: tcp });
        Ok(HttpClient::new(TimedService {
            inner: QuickAckService { client },
            timeouts: S3Timeouts {
                connect: self.connect_timeout,
                response: self.request_timeout,
                ..S3Timeouts::default()
            },
        }))
    }
}

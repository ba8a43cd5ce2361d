//! A prototype HTTP stack for `object_store` that acknowledges every read at
//! once (`TCP_QUICKACK`), to measure what Garage's small GETs cost without the
//! Nagle / delayed-ACK stall.
//!
//! Garage does not set `TCP_NODELAY` on its sockets and streams a GET's body in a
//! second write after the headers. On a keep-alive connection the client is in
//! delayed-ACK ("ping-pong") mode, so it holds the ACK of the headers for up to
//! 40 ms while Garage's Nagle algorithm holds the body until that ACK: every
//! small GET on a reused connection takes ~44 ms. Re-arming quick-ACK after each
//! read sends the ACK at once. `reqwest` (what `object_store` uses by default)
//! does not expose the socket, hence this hyper-util based `HttpConnector`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A TCP connector whose connections re-arm quick-ACK after every read.
#[derive(Debug, Clone)]
pub struct QuickAckTcp {
    inner: HttpConnector,
}

/// A TCP stream that re-arms quick-ACK after every read.
#[derive(Debug)]
pub struct QuickAckIo(TokioIo<tokio::net::TcpStream>);

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

impl hyper::rt::Read for QuickAckIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.0).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let _ = socket2::SockRef::from(this.0.inner()).set_tcp_quickack(true);
        }
        polled
    }
}

impl hyper::rt::Write for QuickAckIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
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
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
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

/// The `object_store` connector of the prototype.
#[derive(Debug, Default)]
pub struct QuickAckConnector;

impl object_store::client::HttpConnector for QuickAckConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(QuickAckTcp { inner: tcp });
        Ok(HttpClient::new(QuickAckService { client }))
    }
}

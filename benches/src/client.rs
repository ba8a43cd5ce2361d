//! A lean HTTP/1.1 client on hyper's connection API, so the client costs as little
//! CPU as possible next to the server on the same two cores: no pool, no
//! redirects, bodies streamed frame by frame, nothing buffered but small JSON.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::data::Payload;
use crate::report::quantile;
use crate::Result;

/// Request body type of every request.
pub type Body = BoxBody<Bytes, Infallible>;

/// An HTTP/1.1 connection to the server under test.
pub struct Conn {
    sender: SendRequest<Body>,
    host: String,
}

impl Conn {
    /// Opens a connection (the connection task runs until the sender is dropped).
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(1 << 20)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    fn request(&self, method: Method, path: &str, body: Body) -> Result<Request<Body>> {
        Ok(Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.host)
            .body(body)?)
    }

    /// Sends a request and returns the response with a streaming body.
    pub async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        self.sender.ready().await?;
        Ok(self.sender.send_request(request).await?)
    }

    /// A GET whose body is read and dropped; returns (status, bytes).
    pub async fn get_discard(&mut self, path: &str) -> Result<(StatusCode, u64)> {
        let request = self.request(Method::GET, path, empty())?;
        let response = self.send(request).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                bytes += data.len() as u64;
            }
        }
        Ok((status, bytes))
    }

    /// A request with a JSON answer.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, serde_json::Value)> {
        let mut request = match body {
            Some(v) => {
                let mut r = self.request(method, path, full(serde_json::to_vec(&v)?))?;
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                r
            }
            None => self.request(method, path, empty())?,
        };
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let response = self.send(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, value))
    }

    /// Uploads `payload` to `bucket`/`key` as a streamed multipart body.
    pub async fn upload(&mut self, bucket: &str, key: &str, payload: &Payload) -> Result<()> {
        let boundary = "s4benchBoundary0x5f3759df";
        let head = Bytes::from(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ));
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let length = head.len() as u64 + payload.size + tail.len() as u64;
        let frames = futures::stream::iter(
            std::iter::once(head)
                .chain(payload.iter())
                .chain(std::iter::once(tail)),
        )
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
        let mut request = self.request(
            Method::POST,
            &format!("/api/objects/upload/{bucket}/{}", b64(key)),
            BodyExt::boxed(StreamBody::new(frames)),
        )?;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))?,
        );
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(length),
        );
        let response = self.send(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!(
                "upload answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
            .into());
        }
        Ok(())
    }

    /// Downloads `bucket`/`key`; returns the byte count.
    pub async fn download(&mut self, bucket: &str, key: &str) -> Result<u64> {
        let (status, bytes) = self.get_discard(&download_path(bucket, key)).await?;
        if status != StatusCode::OK {
            return Err(format!("download answered {status}").into());
        }
        Ok(bytes)
    }
}

/// The download route of an object.
pub fn download_path(bucket: &str, key: &str) -> String {
    format!("/api/objects/download/{bucket}/{}", b64(key))
}

/// URL-safe Base64 without padding, as the API takes keys.
pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn empty() -> Body {
    Empty::<Bytes>::new().boxed()
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed()
}

/// Creates a bucket through the API (already existing is fine).
pub async fn create_bucket(addr: SocketAddr, name: &str) -> Result<()> {
    let mut conn = Conn::open(addr).await?;
    let (status, body) = conn
        .json(
            Method::POST,
            "/api/buckets",
            Some(serde_json::json!({ "bucketName": name })),
        )
        .await?;
    if status.is_success() || status == StatusCode::CONFLICT {
        Ok(())
    } else {
        Err(format!("create bucket {name}: {status} {body}").into())
    }
}

/// Outcome of a fixed-duration load of small GETs.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub requests: u64,
}

/// `concurrency` workers, each on its own keep-alive connection, GET `path` in a
/// loop for `warmup` (not counted) then `duration`.
pub async fn get_load(
    addr: SocketAddr,
    path: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadResult> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let path = path.to_string();
        tasks.spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut conn: Option<Conn> = None;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if conn.is_none() {
                    match Conn::open(addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let sent = Instant::now();
                let ok = matches!(c.get_discard(&path).await, Ok((StatusCode::OK, _)));
                let done = Instant::now();
                if sent >= start && done <= end {
                    if ok {
                        latencies.push(done.duration_since(sent).as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    conn = None;
                }
            }
            (latencies, errors)
        });
    }
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (latencies, e) = joined?;
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    Ok(LoadResult {
        requests_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50_ms: quantile(&all, 0.50) / 1000.0,
        p99_ms: quantile(&all, 0.99) / 1000.0,
        errors,
        requests: all.len() as u64,
    })
}

/// Walks every page of a bucket listing with `max_keys`; returns
/// (first page time, total time, objects seen, pages).
pub async fn walk_listing(
    addr: SocketAddr,
    bucket: &str,
    max_keys: usize,
) -> Result<(Duration, Duration, u64, u64)> {
    let mut conn = Conn::open(addr).await?;
    let started = Instant::now();
    let mut first = None;
    let mut token: Option<String> = None;
    let mut objects = 0u64;
    let mut pages = 0u64;
    loop {
        let mut path = format!("/api/objects/{bucket}?maxKeys={max_keys}");
        if let Some(t) = &token {
            path.push_str("&continuationToken=");
            path.push_str(t);
        }
        let (status, page) = conn.json(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(format!("listing answered {status}: {page}").into());
        }
        pages += 1;
        first.get_or_insert_with(|| started.elapsed());
        objects += page["objects"].as_array().map_or(0, |a| a.len() as u64);
        match page["nextContinuationToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    Ok((first.unwrap_or_default(), started.elapsed(), objects, pages))
}

/// Time of one listing page of `max_keys` from the start of the bucket.
pub async fn first_page(addr: SocketAddr, bucket: &str, max_keys: usize) -> Result<Duration> {
    let mut conn = Conn::open(addr).await?;
    let path = format!("/api/objects/{bucket}?maxKeys={max_keys}");
    let started = Instant::now();
    let (status, page) = conn.json(Method::GET, &path, None).await?;
    let elapsed = started.elapsed();
    let count = page["objects"].as_array().map_or(0, Vec::len);
    if status != StatusCode::OK || count != max_keys {
        return Err(format!("first page answered {status} with {count} objects").into());
    }
    Ok(elapsed)
}

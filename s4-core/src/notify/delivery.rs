//! Webhook delivery (API §14.5, "Delivery"): payloads, signatures, per-endpoint
//! queues with retries, and the outbound HTTP client.
//!
//! Each endpoint URL has its own bounded queue and one worker that delivers the
//! queue in order, so a slow or dead receiver delays only its own events, never
//! S4's writes or other endpoints. Enqueueing never waits: a full queue drops its
//! oldest event (logged). A delivery is retried on connection errors, timeouts,
//! 408, 429 and 5xx with exponential backoff; one that exhausts its attempts is
//! logged with its event. Queues live in memory: events pending at shutdown are
//! lost.
//!
//! The HTTP client sits behind [`WebhookClient`], so core carries no HTTP server
//! types and tests (or embedders) can replace it; [`HttpClientOptions`] builds the
//! default one, with optional proxy settings.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::error::{Error, Result};

/// Event-id header: the same on every attempt of one delivery.
pub const HEADER_EVENT_ID: &str = "X-S4-Event-Id";
/// 1-based attempt number header.
pub const HEADER_ATTEMPT: &str = "X-S4-Delivery-Attempt";
/// `sha256=<hex HMAC-SHA256(secret, body)>`, sent when the entry has a secret.
pub const HEADER_SIGNATURE: &str = "X-S4-Signature";

/// How deliveries are attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Timeout of one attempt (5 s).
    pub attempt_timeout: Duration,
    /// Attempts per delivery, first included (6).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one (1 s).
    pub backoff_base: Duration,
    /// Events queued per endpoint before the oldest is dropped (10 000).
    pub queue_capacity: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            attempt_timeout: Duration::from_secs(5),
            max_attempts: 6,
            backoff_base: Duration::from_secs(1),
            queue_capacity: 10_000,
        }
    }
}

impl DeliveryOptions {
    /// The wait after failed attempt `attempt` (1-based): base × 2^(attempt-1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
    }
}

/// Outbound proxy settings for webhook calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy for `http://` URLs.
    pub http_proxy: Option<String>,
    /// Proxy for `https://` URLs.
    pub https_proxy: Option<String>,
    /// Hosts (or domains, or IP ranges) reached directly, as in `NO_PROXY`.
    pub no_proxy: Vec<String>,
}

/// One outbound POST.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// Target URL.
    pub url: String,
    /// Extra headers (`Content-Type: application/json` is always sent).
    pub headers: Vec<(&'static str, String)>,
    /// Exact body bytes.
    pub body: Bytes,
    /// Timeout of the whole exchange.
    pub timeout: Duration,
}

/// Why a POST got no HTTP answer (refused, DNS, TLS, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// Human-readable reason, the cause chain included.
    pub reason: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The outbound HTTP client of webhooks.
#[async_trait]
pub trait WebhookClient: Send + Sync + fmt::Debug + 'static {
    /// POSTs `request`; the answer's status, or why there was none.
    async fn post(&self, request: WebhookRequest) -> std::result::Result<u16, Unreachable>;
}

/// Builds the default [`WebhookClient`] (reqwest, rustls, up to 5 redirects).
#[derive(Debug, Clone, Default)]
pub struct HttpClientOptions {
    proxy: Option<ProxyConfig>,
}

impl HttpClientOptions {
    /// Default options: no proxy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends requests through `proxy` (`None`: directly).
    pub fn with_proxy(mut self, proxy: Option<ProxyConfig>) -> Self {
        self.proxy = proxy;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unusable proxy URL,
    /// [`crate::ErrorKind::Internal`] when the TLS stack cannot be set up.
    pub fn build(self) -> Result<Arc<dyn WebhookClient>> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .no_proxy();
        if let Some(proxy) = &self.proxy {
            let no_proxy = reqwest::NoProxy::from_string(&proxy.no_proxy.join(","));
            let bad = |e: reqwest::Error| Error::invalid(format!("invalid proxy URL: {e}"));
            if let Some(url) = proxy.http_proxy.as_deref().filter(|u| !u.is_empty()) {
                builder = builder.proxy(
                    reqwest::Proxy::http(url)
                        .map_err(bad)?
                        .no_proxy(no_proxy.clone()),
                );
            }
            if let Some(url) = proxy.https_proxy.as_deref().filter(|u| !u.is_empty()) {
                builder =
                    builder.proxy(reqwest::Proxy::https(url).map_err(bad)?.no_proxy(no_proxy));
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::internal(format!("cannot build the webhook HTTP client: {e}")))?;
        Ok(Arc::new(ReqwestClient { client }))
    }
}

#[derive(Debug)]
struct ReqwestClient {
    client: reqwest::Client,
}

#[async_trait]
impl WebhookClient for ReqwestClient {
    async fn post(&self, request: WebhookRequest) -> std::result::Result<u16, Unreachable> {
        let mut builder = self
            .client
            .post(&request.url)
            .timeout(request.timeout)
            .header("Content-Type", "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        match builder.body(request.body).send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) => Err(Unreachable {
                reason: error_chain(&e),
            }),
        }
    }
}

/// `e` and its sources, joined with `: ` (reqwest's own text hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The §14.5 payload of one event.
pub fn payload(event_name: &str, bucket: &str, key: &str, size: u64) -> Bytes {
    let time = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let value = json!({ "Records": [ {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "eventTime": time,
        "s3": { "bucket": { "name": bucket }, "object": { "key": key, "size": size } },
    } ] });
    Bytes::from(value.to_string())
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A random UUID v4 (event ids, entry ids).
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One event for one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) event_id: String,
    pub(crate) endpoint: String,
    pub(crate) secret: Option<String>,
    pub(crate) body: Bytes,
    /// `<event name> <bucket>/<key>`, for logs.
    pub(crate) summary: String,
}

/// What an answer means for a delivery.
fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// The bounded in-memory queue of one endpoint.
#[derive(Debug)]
struct EndpointQueue {
    // A std lock: held only to push or pop.
    items: Mutex<VecDeque<Delivery>>,
    ready: Notify,
}

/// The source of the current client (swapped when proxy settings change).
pub(crate) type ClientSlot = Arc<std::sync::RwLock<Arc<dyn WebhookClient>>>;

/// Every endpoint's queue and worker. Dropping it aborts the workers.
#[derive(Debug)]
pub(crate) struct Deliverer {
    options: DeliveryOptions,
    client: ClientSlot,
    queues: HashMap<String, Arc<EndpointQueue>>,
    workers: JoinSet<()>,
}

impl Deliverer {
    pub(crate) fn new(options: DeliveryOptions, client: ClientSlot) -> Self {
        Deliverer {
            options,
            client,
            queues: HashMap::new(),
            workers: JoinSet::new(),
        }
    }

    /// Queues `delivery` on its endpoint's queue; never waits.
    pub(crate) fn enqueue(&mut self, delivery: Delivery) {
        let queue = match self.queues.get(&delivery.endpoint) {
            Some(q) => Arc::clone(q),
            None => {
                let q = Arc::new(EndpointQueue {
                    items: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                });
                self.queues
                    .insert(delivery.endpoint.clone(), Arc::clone(&q));
                self.workers.spawn(worker(
                    Arc::clone(&q),
                    self.options.clone(),
                    Arc::clone(&self.client),
                ));
                q
            }
        };
        if let Ok(mut items) = queue.items.lock() {
            if items.len() >= self.options.queue_capacity.max(1) {
                if let Some(dropped) = items.pop_front() {
                    tracing::warn!(
                        endpoint = %dropped.endpoint,
                        event_id = %dropped.event_id,
                        event = %dropped.summary,
                        "webhook queue full: dropped the oldest event"
                    );
                }
            }
            items.push_back(delivery);
        }
        queue.ready.notify_one();
    }
}

async fn worker(queue: Arc<EndpointQueue>, options: DeliveryOptions, client: ClientSlot) {
    loop {
        let next = queue.items.lock().ok().and_then(|mut q| q.pop_front());
        match next {
            Some(delivery) => deliver(&delivery, &options, &client).await,
            None => queue.ready.notified().await,
        }
    }
}

/// Attempts `delivery` until a final answer or the attempts run out.
async fn deliver(delivery: &Delivery, options: &DeliveryOptions, client: &ClientSlot) {
    let signature = delivery
        .secret
        .as_deref()
        .map(|s| signature(s, &delivery.body));
    let attempts = options.max_attempts.max(1);
    for attempt in 1..=attempts {
        let mut headers = vec![
            (HEADER_EVENT_ID, delivery.event_id.clone()),
            (HEADER_ATTEMPT, attempt.to_string()),
        ];
        if let Some(sig) = &signature {
            headers.push((HEADER_SIGNATURE, sig.clone()));
        }
        let current = match client.read() {
            Ok(c) => Arc::clone(&c),
            Err(_) => return,
        };
        let result = current
            .post(WebhookRequest {
                url: delivery.endpoint.clone(),
                headers,
                body: delivery.body.clone(),
                timeout: options.attempt_timeout,
            })
            .await;
        let failure = match result {
            Ok(status) if (200..300).contains(&status) => return,
            Ok(status) if !retryable(status) => {
                tracing::warn!(endpoint = %delivery.endpoint, event_id = %delivery.event_id, event = %delivery.summary, status, "webhook refused the event; not retried");
                return;
            }
            Ok(status) => format!("status {status}"),
            Err(e) => e.reason,
        };
        if attempt == attempts {
            tracing::error!(
                endpoint = %delivery.endpoint,
                event_id = %delivery.event_id,
                event = %delivery.summary,
                payload = %String::from_utf8_lossy(&delivery.body),
                attempts,
                last_error = %failure,
                "webhook delivery failed; event dropped"
            );
            return;
        }
        let wait = options.backoff(attempt);
        tracing::debug!(endpoint = %delivery.endpoint, event_id = %delivery.event_id, attempt, error = %failure, retry_in_ms = wait.as_millis() as u64, "webhook delivery attempt failed");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles() {
        let o = DeliveryOptions::default();
        let waits: Vec<u64> = (1..6).map(|a| o.backoff(a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16]);
        assert_eq!(o.max_attempts, 6);
    }

    #[test]
    fn uuid_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn payload_shape() {
        let body = payload("s3:ObjectCreated:Put", "b", "k/x.csv", 12);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let r = &v["Records"][0];
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventName"], "s3:ObjectCreated:Put");
        assert_eq!(r["s3"]["bucket"]["name"], "b");
        assert_eq!(r["s3"]["object"]["key"], "k/x.csv");
        assert_eq!(r["s3"]["object"]["size"], 12);
        let time = r["eventTime"].as_str().expect("time");
        assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    }

    #[test]
    fn retry_statuses() {
        for s in [408, 429, 500, 502, 503] {
            assert!(retryable(s), "{s}");
        }
        for s in [200, 301, 400, 404, 410] {
            assert!(!retryable(s), "{s}");
        }
    }

    #[derive(Debug, Default)]
    struct Scripted {
        answers: Mutex<VecDeque<std::result::Result<u16, Unreachable>>>,
        seen: Mutex<Vec<WebhookRequest>>,
        done: Notify,
    }

    #[async_trait]
    impl WebhookClient for Scripted {
        async fn post(&self, request: WebhookRequest) -> std::result::Result<u16, Unreachable> {
            self.seen.lock().expect("lock").push(request);
            let answer = self
                .answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(Ok(200));
            self.done.notify_one();
            answer
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_with_same_event_id() {
        let scripted = Arc::new(Scripted::default());
        scripted.answers.lock().expect("lock").extend([
            Err(Unreachable {
                reason: "refused".into(),
            }),
            Ok(503),
            Ok(204),
        ]);
        let client: Arc<dyn WebhookClient> = scripted.clone();
        let slot: ClientSlot = Arc::new(std::sync::RwLock::new(client));
        let options = DeliveryOptions::default();
        let delivery = Delivery {
            event_id: "e1".into(),
            endpoint: "http://x/".into(),
            secret: Some("s".into()),
            body: Bytes::from_static(b"{}"),
            summary: "test".into(),
        };
        deliver(&delivery, &options, &slot).await;
        let seen = scripted.seen.lock().expect("lock");
        assert_eq!(seen.len(), 3);
        for (i, r) in seen.iter().enumerate() {
            let get = |n: &str| {
                r.headers
                    .iter()
                    .find(|(h, _)| *h == n)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get(HEADER_EVENT_ID).as_deref(), Some("e1"));
            assert_eq!(get(HEADER_ATTEMPT), Some((i + 1).to_string()));
            assert_eq!(get(HEADER_SIGNATURE), Some(signature("s", b"{}")));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_not_on_4xx() {
        let scripted = Arc::new(Scripted::default());
        scripted
            .answers
            .lock()
            .expect("lock")
            .extend(std::iter::repeat_n(Ok(500), 10));
        let client: Arc<dyn WebhookClient> = scripted.clone();
        let slot: ClientSlot = Arc::new(std::sync::RwLock::new(client));
        let delivery = Delivery {
            event_id: "e".into(),
            endpoint: "http://x/".into(),
            secret: None,
            body: Bytes::from_static(b"{}"),
            summary: "test".into(),
        };
        deliver(&delivery, &DeliveryOptions::default(), &slot).await;
        assert_eq!(scripted.seen.lock().expect("lock").len(), 6);
        scripted.seen.lock().expect("lock").clear();
        scripted.answers.lock().expect("lock").clear();
        scripted.answers.lock().expect("lock").push_back(Ok(404));
        deliver(&delivery, &DeliveryOptions::default(), &slot).await;
        assert_eq!(scripted.seen.lock().expect("lock").len(), 1);
        assert!(scripted.seen.lock().expect("lock")[0]
            .headers
            .iter()
            .all(|(h, _)| *h != HEADER_SIGNATURE));
    }

    /// A one-shot HTTP server answering 200; yields the request head it got.
    async fn one_shot_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn proxy_settings_route_requests() {
        let request = |url: String| WebhookRequest {
            url,
            headers: vec![(HEADER_EVENT_ID, "e".into())],
            body: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(5),
        };
        // Through the proxy: the proxy sees the absolute target URL.
        let (proxy, seen) = one_shot_server().await;
        let client = HttpClientOptions::new()
            .with_proxy(Some(ProxyConfig {
                http_proxy: Some(format!("http://{proxy}")),
                ..ProxyConfig::default()
            }))
            .build()
            .expect("client");
        let status = client
            .post(request("http://hooks.example.invalid/x".into()))
            .await
            .expect("answered by the proxy");
        assert_eq!(status, 200);
        let head = seen.await.expect("proxy task");
        assert!(
            head.starts_with("POST http://hooks.example.invalid/x HTTP/1.1"),
            "{head}"
        );
        // A host in no_proxy is reached directly.
        let (direct, seen) = one_shot_server().await;
        let client = HttpClientOptions::new()
            .with_proxy(Some(ProxyConfig {
                http_proxy: Some("http://127.0.0.1:9".into()),
                https_proxy: None,
                no_proxy: vec!["127.0.0.1".into()],
            }))
            .build()
            .expect("client");
        let status = client
            .post(request(format!("http://{direct}/hook")))
            .await
            .expect("direct");
        assert_eq!(status, 200);
        let head = seen.await.expect("server task");
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        // A bad proxy URL is an input error.
        let bad = HttpClientOptions::new()
            .with_proxy(Some(ProxyConfig {
                http_proxy: Some("::not a url".into()),
                ..ProxyConfig::default()
            }))
            .build();
        assert!(bad.is_err());
    }

    #[tokio::test]
    async fn full_queue_drops_oldest() {
        let scripted = Arc::new(Scripted::default());
        let client: Arc<dyn WebhookClient> = scripted.clone();
        let slot: ClientSlot = Arc::new(std::sync::RwLock::new(client));
        let options = DeliveryOptions {
            queue_capacity: 2,
            ..DeliveryOptions::default()
        };
        let mut deliverer = Deliverer::new(options, slot);
        // The worker cannot run before this (current-thread runtime, no await):
        // three events go into a queue of two.
        for id in ["1", "2", "3"] {
            deliverer.enqueue(Delivery {
                event_id: id.into(),
                endpoint: "http://x/".into(),
                secret: None,
                body: Bytes::from_static(b"{}"),
                summary: "test".into(),
            });
        }
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), scripted.done.notified())
                .await
                .expect("delivered");
        }
        let ids: Vec<String> = scripted
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|r| {
                r.headers
                    .iter()
                    .find(|(h, _)| *h == HEADER_EVENT_ID)
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(ids, vec!["2", "3"]);
    }
}

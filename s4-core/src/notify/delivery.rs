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
mod tests;

//! Unit tests of `delivery.rs`.

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

//! Unit tests of `mod.rs`.

use super::*;

fn entry(id: &str, secret: Option<&str>) -> NotificationEntry {
    NotificationEntry {
        id: id.into(),
        endpoint: "https://example.com/hook".into(),
        events: vec!["s3:ObjectCreated:*".into()],
        prefix: None,
        suffix: None,
        secret: secret.map(str::to_string),
    }
}

fn service() -> Notifications {
    Notifications::new(NotifyOptions::default(), None)
}

#[test]
fn endpoint_pattern() {
    assert!(valid_endpoint("http://x"));
    assert!(valid_endpoint("https://example.com/hook"));
    assert!(!valid_endpoint("https://"));
    assert!(!valid_endpoint("ftp://x"));
    assert!(!valid_endpoint("HTTP://x"));
    assert!(!valid_endpoint("example.com"));
}

#[test]
fn store_path_default_and_override() {
    let dir = Path::new("/data");
    assert_eq!(
        NotifyOptions::default_store_path(dir, &|_| None),
        PathBuf::from("/data/.s4/notifications.json")
    );
    assert_eq!(
        NotifyOptions::default_store_path(dir, &|_| Some("/etc/n.json".into())),
        PathBuf::from("/etc/n.json")
    );
}

#[tokio::test]
async fn replace_assigns_ids_and_keeps_redacted_secrets() {
    let n = service();
    let b = BucketName::try_from("bucket-a").expect("name");
    let stored = n
        .replace(&b, vec![entry("", None), entry("fixed", Some("s3cret"))])
        .await
        .expect("replace");
    assert_eq!(stored[0].id.len(), 36);
    assert_eq!(stored[1].id, "fixed");
    assert_eq!(stored[1].redacted().secret.as_deref(), Some(REDACTED));
    // Round-trip of what GET shows keeps the secret.
    n.replace(&b, vec![entry("fixed", Some(REDACTED))])
        .await
        .expect("replace");
    assert_eq!(n.list(&b).await[0].secret.as_deref(), Some("s3cret"));
    // The placeholder for an id without a secret is refused; nothing changes.
    let err = n
        .replace(&b, vec![entry("other", Some(REDACTED))])
        .await
        .expect_err("unknown id");
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    assert_eq!(n.list(&b).await.len(), 1);
    // Remove, unknown id, empty list.
    assert_eq!(
        n.remove(&b, "nope").await.expect_err("unknown").kind(),
        crate::ErrorKind::NotFound
    );
    n.remove(&b, "fixed").await.expect("remove");
    assert!(n.list(&b).await.is_empty());
}

/// Counts delivered events by name.
#[derive(Debug, Default)]
struct Counting {
    removed: std::sync::atomic::AtomicUsize,
    created: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl WebhookClient for Counting {
    async fn post(&self, request: WebhookRequest) -> TestOutcome {
        let counter = if request.body.windows(14).any(|w| w == b"ObjectRemoved:") {
            &self.removed
        } else {
            &self.created
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_one();
        Ok(200)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_folder_delete_reports_every_key() {
    use std::sync::atomic::Ordering::SeqCst;
    const KEYS: usize = 6000; // more than the change channel holds
    let counting = Arc::new(Counting::default());
    let s4 = crate::S4::builder()
        .notifications(
            NotifyOptions::default()
                .with_client(counting.clone())
                .with_coalesce_window(Duration::from_millis(20)),
        )
        .build();
    let b = BucketName::try_from("bucket-big").expect("name");
    s4.create_bucket(&b).await.expect("bucket");
    s4.notifications()
        .replace(&b, vec![entry("", None)])
        .await
        .expect("configure");
    let mut all = entry("", None);
    all.events = EVENT_PATTERNS.iter().map(|e| e.to_string()).collect();
    s4.notifications()
        .replace(&b, vec![all])
        .await
        .expect("configure");
    for i in 0..KEYS {
        let key = crate::ObjectKey::try_from(format!("dir/{i:05}").as_str()).expect("key");
        let body = futures::stream::iter([Ok(Bytes::from_static(b"x"))]);
        s4.put_object(&b, &key, body, Default::default())
            .await
            .expect("put");
    }
    let wait_for = |counter: &'static str| {
        let counting = Arc::clone(&counting);
        async move {
            let value = |c: &Counting| match counter {
                "created" => c.created.load(SeqCst),
                _ => c.removed.load(SeqCst),
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while value(&counting) < KEYS {
                let wait = counting.changed.notified();
                if tokio::time::timeout_at(deadline, wait).await.is_err() {
                    break;
                }
            }
            value(&counting)
        }
    };
    // Every creation first (a delete within the window would merge with it).
    assert_eq!(wait_for("created").await, KEYS);
    let outcome = s4
        .delete_object(&b, &crate::ObjectKey::try_from("dir").expect("key"))
        .await
        .expect("delete");
    assert_eq!(outcome.deleted.len(), KEYS);
    assert_eq!(wait_for("removed").await, KEYS);
}

#[tokio::test]
async fn invalid_entries_are_refused() {
    let n = service();
    let b = BucketName::try_from("bucket-a").expect("name");
    let mut bad = entry("", None);
    bad.endpoint = "ftp://x".into();
    assert!(n.replace(&b, vec![bad]).await.is_err());
    let mut bad = entry("", None);
    bad.events = vec![];
    assert!(n.replace(&b, vec![bad]).await.is_err());
    let mut bad = entry("", None);
    bad.events = vec!["s3:ObjectCreated:Put".into()];
    assert!(n.replace(&b, vec![bad]).await.is_err());
    assert!(n.list(&b).await.is_empty());
}

//! Unit tests of `config_store.rs`.

use super::*;

#[test]
fn page_size_snapping() {
    assert_eq!(snap_page_size("100"), 100);
    assert_eq!(snap_page_size("30"), 25);
    assert_eq!(snap_page_size("75"), 50);
    assert_eq!(snap_page_size("5000"), 1000);
    assert_eq!(snap_page_size("x"), 100);
    assert_eq!(parse_max_concurrent("x"), 2);
    assert_eq!(parse_max_concurrent("0"), 2);
    assert_eq!(parse_max_concurrent("7"), 7);
}

#[tokio::test]
async fn persists_and_env_wins() {
    let dir = tempfile::tempdir().expect("dir");
    let store = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect("open");
    assert_eq!(store.max_concurrent_transfers(), 2);
    let mut rx = store.subscribe_max_concurrent_transfers();
    store.update_max_concurrent_transfers(5).await.expect("set");
    assert!(rx.has_changed().expect("open channel"));
    assert_eq!(*rx.borrow_and_update(), 5);
    store
        .update_hf_token("hf_secret".into())
        .await
        .expect("set");
    store.update_max_files_per_page(250).await.expect("set");
    assert!(store.update_max_files_per_page(7).await.is_err());
    assert!(store.update_max_concurrent_transfers(0).await.is_err());
    drop(store);

    let again = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect("reopen");
    assert_eq!(again.max_concurrent_transfers(), 5);
    assert_eq!(again.hf_token(), "hf_secret");
    assert_eq!(again.max_files_per_page(), 250);
    assert_eq!(again.settings().redacted().hf_token, REDACTED);
    assert!(!format!("{:?}", again.settings()).contains("hf_secret"));

    let env = ConfigStore::open(StoreOptions::for_tests(
        dir.path(),
        &[("MAX_CONCURRENT_TRANSFERS", "9"), ("HF_TOKEN", "from-env")],
    ))
    .await
    .expect("reopen with env");
    assert_eq!(env.max_concurrent_transfers(), 9);
    assert_eq!(env.hf_token(), "from-env");
    assert_eq!(env.max_files_per_page(), 250);
}

#[tokio::test]
async fn corrupt_file_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(SETTINGS_FILE);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, b"{ not json").expect("write");
    let err = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect_err("corrupt");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
}

#[tokio::test]
async fn placeholder_keeps_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let store = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect("open");
    let s4 = S4::builder().memory().build();
    let s3 = S3Settings {
        access_key_id: "k".into(),
        secret_access_key: "very-secret".into(),
        region: "us-east-1".into(),
        endpoint: "http://127.0.0.1:1".into(),
        default_bucket: String::new(),
    };
    store.update_s3(&s4, s3.clone()).await.expect("set");
    assert_eq!(s4.backend().name(), "s3");
    store
        .update_s3(
            &s4,
            S3Settings {
                region: "eu-1".into(),
                ..s3.redacted()
            },
        )
        .await
        .expect("keep");
    assert_eq!(store.s3().secret_access_key, "very-secret");
    assert_eq!(store.s3().region, "eu-1");
    store.update_hf_token("tok".into()).await.expect("set");
    store.update_hf_token(REDACTED.into()).await.expect("keep");
    assert_eq!(store.hf_token(), "tok");
    let text = std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).expect("file");
    assert!(text.contains("very-secret"), "persisted for restarts");
    // A rejected update changes nothing.
    let bad = S3Settings {
        endpoint: "ftp://x".into(),
        ..s3.clone()
    };
    assert!(store.update_s3(&s4, bad).await.is_err());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).expect("file"),
        text
    );
}

#[tokio::test]
async fn disclaimer_round_trip_keeps_other_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let store = ConfigStore::open(StoreOptions::for_tests(dir.path(), &[]))
        .await
        .expect("open");
    assert_eq!(store.disclaimer().await, "unknown");
    let path = dir.path().join(DISCLAIMER_FILE);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, br#"{"other":1}"#).expect("write");
    store.set_disclaimer("accepted").await.expect("set");
    assert_eq!(store.disclaimer().await, "accepted");
    let value: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert_eq!(value["other"], 1);
    assert!(store.set_disclaimer("").await.is_err());
}

#[test]
fn check_names_every_bad_initial_value() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(StoreOptions::for_tests(dir.path(), &[])
        .problems()
        .is_empty());
    let ok = StoreOptions::for_tests(
        dir.path(),
        &[
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HTTP_PROXY", "http://proxy:3128"),
        ],
    );
    assert!(ok.problems().is_empty());
    let problems = StoreOptions::for_tests(
        dir.path(),
        &[
            ("HF_ENDPOINT", "not a url"),
            ("HTTP_PROXY", "proxy:3128"),
            ("HTTPS_PROXY", "ftp://proxy"),
        ],
    )
    .problems();
    let messages: Vec<&str> = problems.iter().map(Error::message).collect();
    assert_eq!(messages.len(), 3, "one problem per variable: {messages:?}");
    for (message, needle) in messages.iter().zip([
        "HF_ENDPOINT=\"not a url\"",
        "HTTP_PROXY=\"proxy:3128\"",
        "HTTPS_PROXY=\"ftp://proxy\"",
    ]) {
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[tokio::test]
async fn no_proxy_entries_and_s3_timeouts_come_from_the_options() {
    let dir = tempfile::tempdir().expect("dir");
    let store = ConfigStore::open(StoreOptions::for_tests(
        dir.path(),
        &[
            ("NO_PROXY", " a.example , ,10.0.0.1:80"),
            ("S4_S3_RETRIES", "5"),
        ],
    ))
    .await
    .expect("open");
    assert_eq!(store.no_proxy_entries(), ["a.example", "10.0.0.1:80"]);
    assert_eq!(store.s3_timeouts().retries, 5);
    let memory = BackendSettings::Memory;
    assert_eq!(store.startup_backend(&memory, false), memory);
}

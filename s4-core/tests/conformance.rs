//! Runs the conformance suite (`s4_core::testing`) on every backend: the local file
//! system, memory, and a real S3-compatible engine (skipped with a printed reason
//! when `S4_TEST_S3_ENDPOINT` is unset, unless `S4_REQUIRE_S3=1`).

use s4_core::storage::{LocalBackend, MemoryBackend, S3Backend, S3Config};
use s4_core::{testing, S4};

/// The S3 test endpoint from the environment, or `None` (after printing why).
fn s3_config() -> Option<S3Config> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match var("S4_TEST_S3_ENDPOINT") {
        Some(endpoint) => Some(S3Config {
            endpoint,
            access_key_id: var("S4_TEST_S3_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: var("S4_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_default(),
            region: var("S4_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        }),
        None => {
            assert!(
                var("S4_REQUIRE_S3").as_deref() != Some("1"),
                "S4_REQUIRE_S3=1 but S4_TEST_S3_ENDPOINT is not set"
            );
            eprintln!("SKIPPED: S3 conformance test: S4_TEST_S3_ENDPOINT is not set (see README: running the S3 tests)");
            None
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s4 = s4_core::S4::builder().backend(super::MemoryBackend::new()).build();
                    s4_core::testing::$name(&s4).await;
                }
            )*
        }
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let backend = super::LocalBackend::open(dir.path()).await.expect("open local backend");
                    let s4 = s4_core::S4::builder().backend(backend).build();
                    s4_core::testing::$name(&s4).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(config) = super::s3_config() else { return };
                    let backend = super::S3Backend::new(config).expect("S3 backend");
                    let s4 = s4_core::S4::builder().backend(backend).build();
                    s4_core::testing::$name(&s4).await;
                }
            )*
        }
    };
}

conformance!(
    bucket_crud,
    object_roundtrip,
    large_object_streams,
    ranges,
    conditional_get,
    pagination_exactly_once,
    folder_delete,
    failed_puts_leave_nothing,
    dropped_put_leaves_nothing,
    search,
    change_events,
);

#[allow(dead_code)]
fn _uses(_: S4) {
    let _ = testing::run_all;
}

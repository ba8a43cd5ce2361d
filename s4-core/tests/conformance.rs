//! Runs the conformance suite (`s4_core::testing`) on every backend: the local file
//! system, memory, and a real S3-compatible engine (skipped with a printed reason
//! when `S4_TEST_S3_ENDPOINT` is unset, unless `S4_REQUIRE_S3=1`).

use s4_core::storage::{LocalBackend, MemoryBackend, S3Backend};

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
                #[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
                async fn $name() {
                    let Some(config) = s4_core::testing::s3_test_config() else { return };
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
    transfer_pairs,
    transfer_conflicts,
    transfer_cancel_cleanup,
    object_metadata,
    multipart_etag,
    object_tags,
);

/// Server-side copies need the S3 engine itself (its counters, its pending uploads).
mod s3_server_copy {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
    async fn transfer_server_side_copy() {
        let Some(config) = s4_core::testing::s3_test_config() else {
            return;
        };
        s4_core::testing::server_copy::transfer_server_side_copy(config).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
    async fn server_copy_cancel_and_drop_abort() {
        let Some(config) = s4_core::testing::s3_test_config() else {
            return;
        };
        s4_core::testing::server_copy::server_copy_cancel_and_drop_abort(config).await;
    }
}

//! Server-side copy conformance bodies: copies an S3 engine makes itself
//! (CopyObject, multipart UploadPartCopy), through transfer jobs and through
//! [`crate::Backend::copy_object`] with cancel, drop and a changing source. They
//! need the engine's own counters and pending uploads, so they take an
//! [`S3Config`] and run on Garage from `tests/conformance.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::transfer::run;
use super::{all_keys, fresh_bucket, get_all, pattern, put, remove_bucket};
use crate::storage::{S3Backend, S3Config, ServerCopyOptions};
use crate::transfer::{ConflictMode, Endpoint, Item, TransferRequest};
use crate::{
    Backend, BucketName, ChangeKind, Error, ErrorKind, GetObjectOptions, ObjectKey,
    PutObjectOptions, S4,
};

/// Server-side copies on an S3 engine (run on Garage): bucket → other bucket with
/// one CopyObject, then above a lowered multipart threshold as a multipart copy
/// (12 MiB at 5 MiB: three parts), both through transfer jobs; bytes, content
/// type, progress and change events as for streamed copies, and the backend's
/// counters show the bytes never passed through S4.
pub async fn transfer_server_side_copy(config: S3Config) {
    for multipart in [false, true] {
        let mut backend = S3Backend::new(config.clone()).expect("S3 backend");
        if multipart {
            backend = backend.with_multipart_copy_threshold(5 << 20);
        }
        let backend = Arc::new(backend);
        let s4 = S4::builder()
            .shared_backend(Arc::clone(&backend) as Arc<dyn Backend>)
            .build();
        let a = fresh_bucket(&s4, "ssa").await;
        let b = fresh_bucket(&s4, "ssb").await;
        let data = if multipart {
            pattern(12 << 20, 4)
        } else {
            pattern(300 << 10, 5)
        };
        s4.put_object(
            &a,
            &ObjectKey::try_from("src/data.bin").expect("key"),
            futures::stream::iter([Ok::<_, Error>(data.clone())]),
            PutObjectOptions::default().with_content_type("application/x-s4-test"),
        )
        .await
        .expect("put source");
        let mut changes = s4.subscribe_changes();
        let job = run(
            &s4,
            TransferRequest {
                source: Endpoint::bucket(a.as_str(), "src").expect("endpoint"),
                destination: Endpoint::bucket(b.as_str(), "copied").expect("endpoint"),
                items: vec![Item::file("data.bin")],
                conflict: ConflictMode::Overwrite,
            },
        )
        .await;
        assert_eq!(job.files[0].loaded, data.len() as u64);
        let stats = backend.server_copy_stats();
        assert_eq!(stats.objects, 1, "copied server-side: {stats:?}");
        if multipart {
            assert_eq!((stats.multipart_objects, stats.parts), (1, 3), "{stats:?}");
        } else {
            assert_eq!((stats.multipart_objects, stats.parts), (0, 0), "{stats:?}");
        }
        let got = get_all(&s4, &b, "copied/data.bin", GetObjectOptions::default())
            .await
            .expect("read copy");
        assert!(got == data.to_vec(), "bytes equal");
        let key = ObjectKey::try_from("copied/data.bin").expect("key");
        let info = s4.head_object(&b, &key).await.expect("head copy");
        assert_eq!(info.content_type.as_deref(), Some("application/x-s4-test"));
        let mut created = false;
        while let Ok(change) = changes.try_recv() {
            created |= matches!(change.kind, ChangeKind::Created { .. })
                && change.bucket == b
                && change.key == key;
        }
        assert!(created, "the copy publishes a change event");
        assert!(backend.pending_uploads(&b).await.expect("list").is_empty());
        remove_bucket(&s4, &a).await;
        remove_bucket(&s4, &b).await;
    }
}

/// The kind of error a HEAD of `key` gets; `None` when the object exists.
async fn head_error(s4: &S4, bucket: &BucketName, key: &ObjectKey) -> Option<ErrorKind> {
    s4.head_object(bucket, key).await.err().map(|e| e.kind())
}

/// A multipart copy cancelled between parts, one whose future is dropped mid-way,
/// and one failing (its source changed mid-copy) are aborted: no object at the
/// destination, no pending upload.
pub async fn server_copy_cancel_and_drop_abort(config: S3Config) {
    let backend = Arc::new(
        S3Backend::new(config)
            .expect("S3 backend")
            .with_multipart_copy_threshold(5 << 20),
    );
    let s4 = S4::builder()
        .shared_backend(Arc::clone(&backend) as Arc<dyn Backend>)
        .build();
    let a = fresh_bucket(&s4, "sxa").await;
    let b = fresh_bucket(&s4, "sxb").await;
    let data = pattern(16 << 20, 6);
    put(&s4, &a, "big.bin", data.clone()).await;
    let from = ObjectKey::try_from("big.bin").expect("key");
    let size = data.len() as u64;

    // Cancelled by the first part's progress report.
    let to = ObjectKey::try_from("cancelled.bin").expect("key");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let options = ServerCopyOptions::new(size)
        .with_cancel(cancel)
        .with_progress(Arc::new(move |_| trigger.cancel()));
    let e = backend
        .copy_object((&a, &from), (&b, &to), &options)
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(
        backend.server_copy_stats().parts >= 1,
        "cancelled after a part"
    );
    assert!(
        backend.pending_uploads(&b).await.expect("list").is_empty(),
        "aborted"
    );
    assert_eq!(head_error(&s4, &b, &to).await, Some(ErrorKind::NotFound));

    // Dropped after the first part: the guard aborts from a spawned task.
    let to = ObjectKey::try_from("dropped.bin").expect("key");
    let first_part = Arc::new(Notify::new());
    let signal = Arc::clone(&first_part);
    let options =
        ServerCopyOptions::new(size).with_progress(Arc::new(move |_| signal.notify_one()));
    tokio::select! {
        biased;
        _ = first_part.notified() => {}
        copied = backend.copy_object((&a, &from), (&b, &to), &options) => {
            panic!("the copy ended before the test dropped it: {copied:?}")
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = backend.pending_uploads(&b).await.expect("list");
        if pending.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dropped copy not aborted: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(head_error(&s4, &b, &to).await, Some(ErrorKind::NotFound));
    assert_eq!(all_keys(&s4, &b, "").await, Vec::<String>::new());

    // Failed: the source changes after the first part (six parts, four in flight:
    // the last two start after it), so the parts conditional on the old ETag fail.
    let changing = ObjectKey::try_from("changing.bin").expect("key");
    let data = pattern(30 << 20, 7);
    put(&s4, &a, changing.as_str(), data.clone()).await;
    let to = ObjectKey::try_from("failed.bin").expect("key");
    let overwrite = {
        let config = backend.config().clone();
        let (a, changing) = (a.clone(), changing.clone());
        let done = Arc::new(std::sync::Once::new());
        move |_| {
            let (config, a, changing) = (config.clone(), a.clone(), changing.clone());
            // Synchronously (the copy waits), on a runtime of its own.
            done.call_once(|| {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async {
                        let s4 = S4::builder()
                            .backend(S3Backend::new(config).expect("backend"))
                            .build();
                        put(&s4, &a, changing.as_str(), pattern(30 << 20, 8)).await;
                    });
                })
                .join()
                .expect("overwrite source");
            });
        }
    };
    let options = ServerCopyOptions::new(data.len() as u64).with_progress(Arc::new(overwrite));
    let e = backend
        .copy_object((&a, &changing), (&b, &to), &options)
        .await
        .expect_err("the source changed");
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e:?}");
    assert!(
        backend.pending_uploads(&b).await.expect("list").is_empty(),
        "aborted"
    );
    assert_eq!(all_keys(&s4, &b, "").await, Vec::<String>::new());
    remove_bucket(&s4, &a).await;
    remove_bucket(&s4, &b).await;
}

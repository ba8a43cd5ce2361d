//! The in-flight cap of a streamed multipart put, observed on a store whose part
//! uploads wait until the test releases them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutResult, UploadPart,
};
use tokio::sync::{Notify, Semaphore};

use super::*;
use crate::storage::{Backend, MemoryBackend};

/// Counts part uploads (started, running, most running at once); each waits for
/// one permit of `release` before it is written.
#[derive(Debug)]
struct Parts {
    started: AtomicUsize,
    running: AtomicUsize,
    most: AtomicUsize,
    changed: Notify,
    release: Semaphore,
    // (running, started) after each change, for the failure message.
    trace: Mutex<Vec<(usize, usize)>>,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            changed: Notify::new(),
            release: Semaphore::new(0),
            trace: Mutex::new(Vec::new()),
        }
    }
}

impl Parts {
    fn note(&self) {
        let pair = (
            self.running.load(Ordering::SeqCst),
            self.started.load(Ordering::SeqCst),
        );
        if let Ok(mut trace) = self.trace.lock() {
            trace.push(pair);
        }
        self.changed.notify_waiters();
    }

    /// Waits (deadline 10 s) until `ready(running, started)` holds.
    async fn until(&self, ready: impl Fn(usize, usize) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if ready(
                    self.running.load(Ordering::SeqCst),
                    self.started.load(Ordering::SeqCst),
                ) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("part uploads never got there: {:?}", self.trace));
    }
}

#[derive(Debug)]
struct GatedParts {
    inner: InMemory,
    parts: Arc<Parts>,
}

impl std::fmt::Display for GatedParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatedParts")
    }
}

#[derive(Debug)]
struct GatedUpload {
    inner: Box<dyn MultipartUpload>,
    parts: Arc<Parts>,
}

#[async_trait]
impl MultipartUpload for GatedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let parts = Arc::clone(&self.parts);
        parts.started.fetch_add(1, Ordering::SeqCst);
        let running = parts.running.fetch_add(1, Ordering::SeqCst) + 1;
        parts.most.fetch_max(running, Ordering::SeqCst);
        parts.note();
        let upload = self.inner.put_part(data);
        Box::pin(async move {
            let permit = parts.release.acquire().await;
            permit.expect("semaphore open").forget();
            let result = upload.await;
            parts.running.fetch_sub(1, Ordering::SeqCst);
            parts.note();
            result
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for GatedParts {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(GatedUpload {
            inner,
            parts: Arc::clone(&self.parts),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A put of `parts × part` bytes in 1 MiB chunks with `cap` parts in flight,
/// releasing one part upload each time the writer is as far as the cap lets it
/// go; returns the most part uploads running at once.
async fn most_in_flight(parts_total: usize, cap: usize) -> usize {
    let s4 = S4::builder().backend(MemoryBackend::new()).build();
    let part = s4.backend().part_size();
    let parts = Arc::new(Parts::default());
    let store: Arc<dyn ObjectStore> = Arc::new(GatedParts {
        inner: InMemory::new(),
        parts: Arc::clone(&parts),
    });
    let bucket = BucketName::try_from("parts-cap").expect("bucket");
    let key = ObjectKey::try_from("big.bin").expect("key");
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let chunks = parts_total * part / chunk.len();
    let body = futures::stream::iter((0..chunks).map(move |_| Ok(chunk.clone())));
    let writer = {
        let store = Arc::clone(&store);
        let s4 = s4.clone();
        tokio::spawn(async move {
            s4.write_object(
                store,
                Path::from("big.bin"),
                &bucket,
                &key,
                body,
                PutObjectOptions::default().with_parts_in_flight(cap),
            )
            .await
        })
    };
    for released in 0..parts_total {
        // The writer goes as far as it may: `cap` parts running, or every part
        // that is left once the body is all read.
        let left = parts_total - released;
        parts.until(|running, _| running >= cap.min(left)).await;
        // Give it every chance to start one more part than it may.
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        parts.release.add_permits(1);
    }
    let outcome = writer.await.expect("writer task").expect("put");
    assert_eq!(outcome.size, (parts_total * part) as u64);
    assert_eq!(parts.started.load(Ordering::SeqCst), parts_total);
    let stored = store
        .get(&Path::from("big.bin"))
        .await
        .expect("object")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(stored.len(), parts_total * part);
    parts.most.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_in_flight_is_the_real_cap() {
    assert_eq!(most_in_flight(5, 1).await, 1);
    assert_eq!(most_in_flight(6, 2).await, 2);
    assert_eq!(most_in_flight(6, PARTS_IN_FLIGHT).await, PARTS_IN_FLIGHT);
}

#[cfg(feature = "local")]
#[tokio::test]
async fn the_local_backend_writes_one_mib_parts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = crate::storage::LocalBackend::open(dir.path())
        .await
        .expect("local backend");
    assert_eq!(backend.part_size(), 1 << 20);
    assert_eq!(MemoryBackend::new().part_size(), PART_SIZE);
}

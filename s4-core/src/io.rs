//! Small types shared by every streamed read and write, of buckets and of local
//! locations alike: the byte range of a read and the progress callback of a write;
//! the one file streamer ([`file_stream`]) and the one streaming file writer
//! ([`write_stream`], with its [`StagingFile`]).

use std::ops::Range;
use std::sync::Arc;

/// A byte range request, before it is resolved against the object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..=end` (end clamped to the object).
    Bounded(u64, u64),
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves against `size`; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::Bounded(start, end) if start <= end && start < size => {
                Some(start..end.min(size - 1) + 1)
            }
            ByteRange::From(start) if start < size => Some(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// Callback receiving the cumulative number of bytes consumed by a put.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// Size of the chunks a file stream yields (objects of the local backend and
/// files of local locations, staged multipart parts).
pub(crate) const FILE_CHUNK: usize = 1 << 20;

/// Buffers of [`FILE_CHUNK`] bytes given back by dropped chunks, for reuse by
/// [`file_stream`].
///
/// A streamed copy allocates a chunk per MiB and frees it on another thread once
/// sent; with glibc every runtime thread keeps such memory in its own arena, so
/// four concurrent 1 GiB copies to an S3 engine held about twice their live
/// chunks. Recycling the buffers keeps chunk memory at what is in use, plus at
/// most `max` spares.
struct Spares {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    max: usize,
}

/// The spares of every file stream: 16 MiB at most.
static SPARES: Spares = Spares::new(16);

impl Spares {
    const fn new(max: usize) -> Self {
        Spares {
            free: std::sync::Mutex::new(Vec::new()),
            max,
        }
    }

    /// An empty buffer for a read of `want` bytes: a spare when `want` is a full
    /// chunk and there is one, else a new buffer.
    fn take(&self, want: usize) -> Vec<u8> {
        if want == FILE_CHUNK {
            if let Some(mut spare) = self.free.lock().ok().and_then(|mut free| free.pop()) {
                spare.clear();
                return spare;
            }
        }
        Vec::with_capacity(want)
    }

    /// Keeps `buffer` when it is a full chunk's and there is room.
    fn give(&self, buffer: Vec<u8>) {
        if buffer.capacity() != FILE_CHUNK {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.max {
                free.push(buffer);
            }
        }
    }
}

/// A chunk's buffer, given back to its [`Spares`] when its last `Bytes` is dropped.
struct Recycled(Vec<u8>, &'static Spares);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.1.give(std::mem::take(&mut self.0));
    }
}

/// The errors a [`file_stream`] reports, worded by its caller.
pub(crate) struct FileStreamErrors {
    /// Context of an I/O error (`Error::from_io`).
    pub read: String,
    /// Message of the internal error when the file ends before the range does.
    pub short: String,
}

/// Streams a file's `range` in [`FILE_CHUNK`] pieces, one chunk read ahead.
///
/// Each chunk is one blocking-pool call reading straight into the chunk's own
/// buffer (object_store's file stream reads 8 KiB per blocking call, and
/// `tokio::fs::File` copies out of a private buffer in 256 KiB hops at most). The
/// next chunk is read while the consumer sends the current one, so the disk and
/// the network overlap; at most two chunks are held, whatever the file's size.
/// Full-size chunk buffers are recycled through [`SPARES`] once their `Bytes` are
/// dropped.
/// Dropping the stream stops reading after the chunk in flight. A file that
/// ends before `range.end` (it shrank under us) fails the stream rather than
/// serving a short body.
pub(crate) fn file_stream(
    file: std::fs::File,
    range: Range<u64>,
    errors: FileStreamErrors,
) -> futures::stream::BoxStream<'static, crate::Result<bytes::Bytes>> {
    use std::io::{Read, Seek, SeekFrom};

    use futures::StreamExt;

    use crate::Error;

    type Pending = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;
    fn read_next(mut file: std::fs::File, pos: u64, end: u64, seek: bool) -> Pending {
        let want = (end - pos).min(FILE_CHUNK as u64);
        // Taken here, on the runtime's worker thread, not on the blocking thread
        // that reads: a new buffer then comes from the few workers' arenas
        // instead of one per blocking thread (with glibc, four concurrent 1 GiB
        // copies peaked 20 MiB higher the other way).
        let mut chunk = SPARES.take(want as usize);
        tokio::task::spawn_blocking(move || {
            if seek {
                file.seek(SeekFrom::Start(pos))?;
            }
            // `read_to_end` fills the spare capacity without zeroing it first.
            (&mut file).take(want).read_to_end(&mut chunk)?;
            Ok((file, chunk))
        })
    }
    if range.start >= range.end {
        return futures::stream::empty().boxed();
    }
    let first = read_next(file, range.start, range.end, true);
    let errors = Arc::new(errors);
    futures::stream::try_unfold(
        (Some(first), range.start, range.end, errors),
        |(pending, pos, end, errors)| async move {
            let Some(pending) = pending else {
                return Ok(None);
            };
            let (file, chunk) = pending
                .await
                .map_err(|e| Error::internal("file read task failed").with_source(e))?
                .map_err(|e| Error::from_io(e, &errors.read))?;
            if chunk.is_empty() {
                return Err(Error::internal(errors.short.clone()));
            }
            let next = pos + chunk.len() as u64;
            let pending = (next < end).then(|| read_next(file, next, end, false));
            Ok(Some((
                bytes::Bytes::from_owner(Recycled(chunk, &SPARES)),
                (pending, next, end, errors),
            )))
        },
    )
    .boxed()
}

/// Bytes buffered between a streamed body and its file (one write call per
/// 256 KiB, whatever the chunk sizes of the body).
pub(crate) const WRITE_BUFFER: usize = 256 << 10;

/// What [`write_stream`] enforces and computes while it streams a body into a
/// file. `Default` is: no cancellation, no size cap, no progress, no MD5, no fsync.
pub(crate) struct StreamWrite<'a> {
    /// Checked between chunks: once cancelled, the write fails with
    /// [`crate::ErrorKind::Cancelled`] and the message `cancelled`.
    pub cancel: Option<&'a tokio_util::sync::CancellationToken>,
    /// Message of the cancellation error.
    pub cancelled: &'static str,
    /// Most bytes accepted: the write fails with `too_large()` as soon as more
    /// arrived, before the chunk that crossed the cap is written.
    pub max: Option<u64>,
    /// The error of a body over `max`.
    pub too_large: fn() -> crate::Error,
    /// Receives the cumulative byte count after each chunk.
    pub progress: Option<&'a ProgressFn>,
    /// Computes the body's MD5 while writing.
    pub md5: bool,
    /// `fsync`s the file's data before returning.
    pub fsync: bool,
}

impl Default for StreamWrite<'_> {
    fn default() -> Self {
        StreamWrite {
            cancel: None,
            cancelled: "Cancelled",
            max: None,
            too_large: || crate::Error::new(crate::ErrorKind::TooLarge, "File too large"),
            progress: None,
            md5: false,
            fsync: false,
        }
    }
}

/// The result of [`write_stream`].
#[derive(Debug)]
pub(crate) struct Written {
    /// The file, flushed (and synced when asked).
    pub file: std::fs::File,
    /// Bytes written.
    pub size: u64,
    /// The body's MD5, when asked.
    pub md5: Option<[u8; 16]>,
}

/// The one streaming file writer (object staging, multipart parts, local
/// location uploads and transfers): streams `body` into `file` through a
/// [`WRITE_BUFFER`] buffer, as `spec` says. Memory stays at one buffer and one
/// chunk whatever the size.
///
/// The file is the caller's temporary file: on error it is dropped here and the
/// caller removes it (a [`StagingFile`], or the caller's own temporary), so a
/// failed, cancelled or dropped write never leaves a file in place.
///
/// # Errors
/// The error `body` yielded, unchanged; cancellation; the size cap; `fail(e)` for
/// an I/O error of the file.
pub(crate) async fn write_stream<S>(
    file: std::fs::File,
    body: S,
    spec: StreamWrite<'_>,
    fail: impl Fn(std::io::Error) -> crate::Error,
) -> crate::Result<Written>
where
    S: futures::Stream<Item = crate::Result<bytes::Bytes>> + Send,
{
    use futures::StreamExt;
    use md5::Digest;
    use tokio::io::AsyncWriteExt;

    let never = tokio_util::sync::CancellationToken::new();
    let cancel = spec.cancel.unwrap_or(&never);
    let mut out =
        tokio::io::BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut md5 = spec.md5.then(md5::Md5::new);
    let mut body = std::pin::pin!(body);
    let mut size: u64 = 0;
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                return Err(crate::Error::new(crate::ErrorKind::Cancelled, spec.cancelled));
            }
            item = body.next() => item,
        };
        let chunk = match item {
            None => break,
            Some(item) => item?,
        };
        size += chunk.len() as u64;
        if spec.max.is_some_and(|max| size > max) {
            return Err((spec.too_large)());
        }
        if let Some(md5) = &mut md5 {
            md5.update(&chunk);
        }
        out.write_all(&chunk).await.map_err(&fail)?;
        if let Some(progress) = spec.progress {
            progress(size);
        }
    }
    out.flush().await.map_err(&fail)?;
    let mut file = out.into_inner().into_std().await;
    if spec.fsync {
        file = tokio::task::spawn_blocking(move || file.sync_all().map(|()| file))
            .await
            .map_err(|e| crate::Error::internal(format!("fsync task failed: {e}")))?
            .map_err(&fail)?;
    }
    Ok(Written {
        file,
        size,
        md5: md5.map(|m| m.finalize().into()),
    })
}

/// A file created for staging (exclusive create at a fresh path) and removed
/// when dropped unless [`kept`](Self::keep): on errors, and when the future
/// writing it is dropped midway.
///
/// Removal on drop is one `unlink` on the async thread: a `Drop` cannot await,
/// and removing synchronously is what guarantees nothing is left once the
/// future is gone.
#[derive(Debug)]
pub(crate) struct StagingFile {
    path: std::path::PathBuf,
    armed: bool,
}

impl StagingFile {
    /// Creates `path` (never an existing file) for writing.
    ///
    /// # Errors
    /// `fail(e)` for the I/O error (`AlreadyExists` when `path` exists).
    pub(crate) async fn create(
        path: std::path::PathBuf,
        fail: impl Fn(std::io::Error) -> crate::Error,
    ) -> crate::Result<(std::fs::File, Self)> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(fail)?;
        Ok((file.into_std().await, StagingFile { path, armed: true }))
    }

    /// Creates a fresh file `<random>.part` in `dir` (created when missing), on a
    /// blocking thread's time: never an existing file. (The local backend's
    /// staging files.)
    ///
    /// # Errors
    /// The I/O error of the directory or the file.
    #[cfg(feature = "local")]
    pub(crate) fn create_in_blocking(
        dir: &std::path::Path,
    ) -> std::io::Result<(std::fs::File, Self)> {
        for _ in 0..8 {
            let path = dir.join(format!("{:016x}.part", rand::random::<u64>()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok((file, StagingFile { path, armed: true })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("cannot create a staging file"))
    }

    /// The staging path.
    #[cfg(any(test, feature = "local"))]
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Keeps the file (it is complete); returns its path.
    pub(crate) fn keep(mut self) -> std::path::PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %self.path.display(), error = %e, "cannot remove a staging file");
                }
            }
        }
    }
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use std::io::Write;

    use futures::StreamExt;

    use super::*;

    fn errors() -> FileStreamErrors {
        FileStreamErrors {
            read: "cannot read test file".into(),
            short: "test file ended early".into(),
        }
    }

    async fn collect(
        stream: futures::stream::BoxStream<'static, crate::Result<bytes::Bytes>>,
    ) -> (Vec<usize>, crate::Result<Vec<u8>>) {
        let mut sizes = Vec::new();
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    sizes.push(chunk.len());
                    out.extend_from_slice(&chunk);
                }
                Err(e) => return (sizes, Err(e)),
            }
        }
        (sizes, Ok(out))
    }

    #[test]
    fn spares_recycle_full_chunks_up_to_their_max() {
        static TEST: Spares = Spares::new(2);
        let spares = || TEST.free.lock().expect("lock").len();
        let first = TEST.take(FILE_CHUNK);
        let ptr = first.as_ptr();
        TEST.give(first);
        let again = TEST.take(FILE_CHUNK);
        assert_eq!(again.as_ptr(), ptr, "a spare is reused");
        assert!(again.is_empty());
        // Short reads take a buffer of their own; short buffers are not kept.
        assert_eq!(TEST.take(10).capacity(), 10);
        TEST.give(Vec::with_capacity(10));
        assert_eq!(spares(), 0);
        // A chunk's buffer comes back when its last `Bytes` is dropped.
        let mut buffer = again;
        buffer.extend_from_slice(b"abc");
        let chunk = bytes::Bytes::from_owner(Recycled(buffer, &TEST));
        let clone = chunk.slice(1..);
        drop(chunk);
        assert_eq!(spares(), 0);
        assert_eq!(&clone[..], b"bc");
        drop(clone);
        assert_eq!(spares(), 1);
        // At most `max` are kept.
        TEST.give(Vec::with_capacity(FILE_CHUNK));
        TEST.give(Vec::with_capacity(FILE_CHUNK));
        assert_eq!(spares(), 2);
    }

    #[tokio::test]
    async fn ranges_in_bounded_chunks() {
        let data: Vec<u8> = (0..FILE_CHUNK * 2 + 77).map(|i| (i % 253) as u8).collect();
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&data).expect("write");
        let len = data.len() as u64;
        for range in [0..len, 5..len - 3, 10..11, FILE_CHUNK as u64..len, 7..7] {
            let clone = file.try_clone().expect("clone");
            let (sizes, body) = collect(file_stream(clone, range.clone(), errors())).await;
            let body = body.expect("body");
            assert_eq!(
                body,
                data[range.start as usize..range.end as usize].to_vec(),
                "{range:?}"
            );
            assert!(
                sizes.iter().all(|s| *s > 0 && *s <= FILE_CHUNK),
                "{sizes:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_short_file_fails_the_stream() {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&[1u8; 100]).expect("write");
        let (sizes, body) = collect(file_stream(file, 0..200, errors())).await;
        assert_eq!(sizes, vec![100]);
        let e = body.expect_err("short file");
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        assert_eq!(e.message(), "test file ended early");
    }
}

/// The shared streaming writer: caps, cancellation and body errors leave no
/// staging file; MD5, size and progress are those of the body.
#[cfg(test)]
mod write_tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use futures::Stream;

    use super::*;
    use crate::{Error, ErrorKind};

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = crate::Result<Bytes>> + Send {
        let items: Vec<crate::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(items)
    }

    fn io_fail(e: std::io::Error) -> Error {
        Error::from_io(e, "test write")
    }

    async fn staging(dir: &tempfile::TempDir) -> (std::fs::File, StagingFile) {
        StagingFile::create(dir.path().join("part"), io_fail)
            .await
            .expect("create staging file")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn md5_size_and_progress() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, staged) = staging(&dir).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let progress: ProgressFn = {
            let seen = Arc::clone(&seen);
            Arc::new(move |n| seen.lock().expect("lock").push(n))
        };
        let spec = StreamWrite {
            progress: Some(&progress),
            md5: true,
            fsync: true,
            max: Some(11),
            ..StreamWrite::default()
        };
        let written = write_stream(file, body(&[b"hello ", b"world"]), spec, io_fail)
            .await
            .expect("write");
        assert_eq!(written.size, 11);
        assert_eq!(
            written.md5.map(|m| hex(&m)).as_deref(),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
        );
        assert_eq!(*seen.lock().expect("lock"), vec![6, 11]);
        drop(written);
        let path = staged.keep();
        assert_eq!(std::fs::read(&path).expect("read"), b"hello world");
        // Without `md5`, none is computed.
        let (file, _staged) = StagingFile::create(dir.path().join("other"), io_fail)
            .await
            .expect("create");
        let written = write_stream(file, body(&[b"x"]), StreamWrite::default(), io_fail)
            .await
            .expect("write");
        assert_eq!((written.size, written.md5), (1, None));
    }

    #[tokio::test]
    async fn over_the_cap_fails_and_removes_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, staged) = staging(&dir).await;
        let path = staged.path().to_path_buf();
        let spec = StreamWrite {
            max: Some(4),
            ..StreamWrite::default()
        };
        let err = write_stream(file, body(&[b"abc", b"de"]), spec, io_fail)
            .await
            .expect_err("over the cap");
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(path.exists());
        drop(staged);
        assert!(!path.exists(), "the staging file is removed");
    }

    #[tokio::test]
    async fn cancelled_fails_and_removes_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, staged) = staging(&dir).await;
        let path = staged.path().to_path_buf();
        let cancel = tokio_util::sync::CancellationToken::new();
        cancel.cancel();
        let spec = StreamWrite {
            cancel: Some(&cancel),
            cancelled: "Stopped",
            ..StreamWrite::default()
        };
        let err = write_stream(file, body(&[b"abc"]), spec, io_fail)
            .await
            .expect_err("cancelled");
        assert_eq!(
            (err.kind(), err.to_string()),
            (ErrorKind::Cancelled, "Stopped".to_string())
        );
        drop(staged);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn body_error_is_returned_and_removes_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, staged) = staging(&dir).await;
        let path = staged.path().to_path_buf();
        let items = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(Error::invalid("broken body").with_code("Broken")),
        ];
        let err = write_stream(
            file,
            futures::stream::iter(items),
            StreamWrite::default(),
            io_fail,
        )
        .await
        .expect_err("body error");
        assert_eq!(err.code(), Some("Broken"));
        drop(staged);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn staging_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("taken");
        std::fs::write(&path, b"keep").expect("write");
        let err = StagingFile::create(path.clone(), io_fail)
            .await
            .expect_err("exists");
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"keep");
    }
}

//! Small types shared by every streamed read and write, of buckets and of local
//! locations alike: the byte range of a read and the progress callback of a write.

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
        tokio::task::spawn_blocking(move || {
            if seek {
                file.seek(SeekFrom::Start(pos))?;
            }
            let want = (end - pos).min(FILE_CHUNK as u64);
            // `read_to_end` fills the spare capacity without zeroing it first.
            let mut chunk = Vec::with_capacity(want as usize);
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
                bytes::Bytes::from(chunk),
                (pending, next, end, errors),
            )))
        },
    )
    .boxed()
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

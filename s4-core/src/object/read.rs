//! Reading objects: [`S4::get_object`] (ranged, conditional), and the local
//! file streamer behind the local backend's reads.

#[cfg(feature = "local")]
use std::io::{Read, Seek, SeekFrom};

use super::*;

/// Read buffer for local-file object streams.
#[cfg(feature = "local")]
const FILE_CHUNK: usize = 1 << 20;
#[cfg(feature = "local")]
/// Streams a local file's `range` in [`FILE_CHUNK`] pieces, one chunk read ahead.
///
/// Each chunk is one blocking-pool call reading straight into the chunk's own
/// buffer (object_store's file stream reads 8 KiB per blocking call, and
/// `tokio::fs::File` copies out of a private buffer in 256 KiB hops at most). The
/// next chunk is read while the consumer sends the current one, so the disk and
/// the network overlap; at most two chunks are held. Dropping the stream stops
/// reading after the chunk in flight.
fn file_stream(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, Result<Bytes>> {
    type Read = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;
    fn read_next(mut file: std::fs::File, pos: u64, end: u64, seek: bool) -> Read {
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
    futures::stream::try_unfold(
        (Some(first), range.start, range.end),
        |(pending, pos, end)| async move {
            let Some(pending) = pending else {
                return Ok(None);
            };
            let (file, chunk) = pending
                .await
                .map_err(|e| Error::internal("file read task failed").with_source(e))?
                .map_err(|e| Error::from_io(e, "cannot read object"))?;
            if chunk.is_empty() {
                // The file shrank under us: fail rather than serve a short body.
                return Err(Error::internal(
                    "object file ended before its recorded size",
                ));
            }
            let next = pos + chunk.len() as u64;
            let pending = (next < end).then(|| read_next(file, next, end, false));
            Ok(Some((Bytes::from(chunk), (pending, next, end))))
        },
    )
    .boxed()
}

impl S4 {
    /// Opens an object for streaming, optionally a byte range of it and
    /// conditionally on its ETag. Does not buffer; dropping the stream cancels the read.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::NotModified`],
    /// [`ErrorKind::RangeNotSatisfiable`] (with [`Error::object_size`]), backend failures.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        options: GetObjectOptions,
    ) -> Result<ObjectStream> {
        let address = self.address(bucket, key).await?;
        let mut get = GetOptions {
            if_none_match: options.if_none_match.clone(),
            ..GetOptions::default()
        };
        if let Some(range) = options.range {
            // Resolve against the real size first, so an unsatisfiable range is a
            // clean error on every backend.
            let head = self.head_object(bucket, key).await?;
            if let (Some(tag), Some(etag)) = (&options.if_none_match, &head.etag) {
                if etag_matches(tag, etag) {
                    return Err(Error::new(ErrorKind::NotModified, "Not modified"));
                }
            }
            let resolved = range.resolve(head.size).ok_or_else(|| {
                Error::new(
                    ErrorKind::RangeNotSatisfiable,
                    "Requested range not satisfiable",
                )
                .with_object_size(head.size)
            })?;
            get.range = Some(GetRange::Bounded(resolved));
        }
        let (store, path) = match address {
            Address::Store(store, path) => (store, path),
            Address::Raw => {
                let range = match &get.range {
                    Some(GetRange::Bounded(r)) => Some(r.clone()),
                    _ => None,
                };
                let raw = self.backend().get_raw(bucket, key, range, false).await?;
                if let (Some(tag), Some(etag)) = (&options.if_none_match, &raw.info.etag) {
                    if etag_matches(tag, etag) {
                        return Err(Error::new(ErrorKind::NotModified, "Not modified"));
                    }
                }
                let RawObject { info, range, body } = raw;
                return Ok(ObjectStream {
                    info,
                    range,
                    partial: options.range.is_some(),
                    body,
                });
            }
        };
        let result = store.get_opts(&path, get).await?;
        let info = info_from(key.as_str(), &result.meta, &result.attributes);
        let range = result.range.clone();
        let body = match result.payload {
            #[cfg(feature = "local")]
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(Error::from).boxed(),
        };
        Ok(ObjectStream {
            info,
            range,
            partial: options.range.is_some(),
            body,
        })
    }
}

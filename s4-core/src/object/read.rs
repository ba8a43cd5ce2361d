//! Reading objects: [`S4::get_object`] (ranged, conditional). The local
//! backend's file bodies stream through `crate::io::file_stream`.

use super::*;

/// The read options of a ranged GET whose object's HEAD said `head`: the range
/// resolved against the HEAD's size, and the HEAD's ETag as `if_match`, so an
/// overwrite between the HEAD and the read fails cleanly instead of serving a
/// range of the new version cut at the old version's size.
fn ranged_get(mut get: GetOptions, head: &ObjectInfo, range: ByteRange) -> Result<GetOptions> {
    if let (Some(tag), Some(etag)) = (&get.if_none_match, &head.etag) {
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
    get.if_match.clone_from(&head.etag);
    Ok(get)
}

/// A ranged read found another version than the HEAD it was resolved against.
fn changed_during_read() -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "The object changed while it was being read; retry the request",
    )
}

impl S4 {
    /// Opens an object for streaming, optionally a byte range of it and
    /// conditionally on its ETag. Does not buffer; dropping the stream cancels the read.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::NotModified`],
    /// [`ErrorKind::RangeNotSatisfiable`] (with [`Error::object_size`]),
    /// [`ErrorKind::PreconditionFailed`] when a ranged read's object is replaced
    /// between its HEAD and its read (the caller may retry), backend failures.
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
        // The version the range was resolved against: the read must serve that one.
        let mut resolved_etag = None;
        if let Some(range) = options.range {
            // Resolve against the real size first, so an unsatisfiable range is a
            // clean error on every backend.
            let head = self.head_object(bucket, key).await?;
            get = ranged_get(get, &head, range)?;
            resolved_etag = head.etag;
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
                // `get_raw` takes no condition: compare afterwards instead.
                if let (Some(before), Some(now)) = (&resolved_etag, &raw.info.etag) {
                    if before != now {
                        return Err(changed_during_read());
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
        let result = store.get_opts(&path, get).await.map_err(|e| {
            let e = Error::from(e);
            // Only the ranged read carries `if_match`, so a failed precondition here
            // means the object was replaced between its HEAD and this read.
            if e.kind() == ErrorKind::PreconditionFailed && resolved_etag.is_some() {
                changed_during_read().with_source(e)
            } else {
                e
            }
        })?;
        let info = info_from(key.as_str(), &result.meta, &result.attributes);
        let range = result.range.clone();
        let body = match result.payload {
            #[cfg(feature = "local")]
            GetResultPayload::File(file, _) => crate::io::file_stream(
                file,
                range.clone(),
                crate::io::FileStreamErrors {
                    read: "cannot read object".into(),
                    short: "object file ended before its recorded size".into(),
                },
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "local")]
    use crate::storage::LocalBackend;
    use crate::storage::MemoryBackend;
    use crate::testing::{chunked, fresh_bucket, pattern, remove_bucket};

    /// The window a ranged GET used to race: the object is replaced after its HEAD
    /// and before the ranged read. The read must fail cleanly with
    /// `PreconditionFailed`, not serve bytes of the new version.
    async fn overwrite_between_head_and_read_fails(s4: &S4) {
        let bucket = fresh_bucket(s4, "race").await;
        let key = ObjectKey::parse("raced.bin").expect("key");
        let put = |data: Bytes| {
            s4.put_object(
                &bucket,
                &key,
                chunked(data, 4096),
                PutObjectOptions::default(),
            )
        };
        put(pattern(10_000, 1)).await.expect("first put");
        let head = s4.head_object(&bucket, &key).await.expect("head");
        let get = ranged_get(GetOptions::default(), &head, ByteRange::Bounded(100, 199))
            .expect("range resolves");
        assert_eq!(
            get.if_match, head.etag,
            "the read is pinned to the HEAD's version"
        );
        assert_eq!(get.range, Some(GetRange::Bounded(100..200)));

        // Unchanged object: the pinned read serves the range.
        let Address::Store(store, path) = s4.address(&bucket, &key).await.expect("address") else {
            panic!("memory and local objects live in an object store");
        };
        let same = store
            .get_opts(&path, get.clone())
            .await
            .expect("pinned read");
        assert_eq!(same.range, 100..200);

        // Replaced object (other content, other size): the pinned read fails.
        put(pattern(20_000, 2)).await.expect("overwrite");
        let err = match store.get_opts(&path, get).await {
            Ok(result) => panic!("read of a replaced object served {:?}", result.meta),
            Err(e) => Error::from(e),
        };
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err:?}");

        // A fresh ranged GET resolves against the new version.
        let mut object = s4
            .get_object(
                &bucket,
                &key,
                GetObjectOptions::default().with_range(ByteRange::Suffix(10)),
            )
            .await
            .expect("ranged get");
        assert_eq!(object.range, 19_990..20_000);
        let mut body = Vec::new();
        while let Some(chunk) = object.body.next().await {
            body.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(body, pattern(20_000, 2)[19_990..].to_vec());
        remove_bucket(s4, &bucket).await;
    }

    #[tokio::test]
    async fn ranged_read_is_pinned_to_its_head_memory() {
        let s4 = S4::builder().backend(MemoryBackend::new()).build();
        overwrite_between_head_and_read_fails(&s4).await;
    }

    #[cfg(feature = "local")]
    #[tokio::test]
    async fn ranged_read_is_pinned_to_its_head_local() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = LocalBackend::open(dir.path()).await.expect("local backend");
        let s4 = S4::builder().backend(backend).build();
        overwrite_between_head_and_read_fails(&s4).await;
    }

    #[test]
    fn ranged_get_checks_if_none_match_and_size() {
        let head = ObjectInfo {
            key: "k".into(),
            size: 10,
            last_modified: None,
            etag: Some("\"e1\"".into()),
            content_type: None,
            metadata: Vec::new(),
            storage_class: None,
        };
        let get = GetOptions {
            if_none_match: Some("\"e1\"".into()),
            ..GetOptions::default()
        };
        let e = ranged_get(get, &head, ByteRange::From(0)).expect_err("not modified");
        assert_eq!(e.kind(), ErrorKind::NotModified);
        let e = ranged_get(GetOptions::default(), &head, ByteRange::From(10))
            .expect_err("past the end");
        assert_eq!(e.kind(), ErrorKind::RangeNotSatisfiable);
        assert_eq!(e.object_size(), Some(10));
    }
}

//! Writing objects: [`S4::put_object`], one PUT or a bounded multipart upload,
//! aborted (nothing left behind) on failure, cancel or drop.

use super::*;

impl S4 {
    /// Writes an object from a byte stream, overwriting any existing object.
    ///
    /// Small bodies (under [`PART_SIZE`]) are written with one PUT; larger ones as a
    /// multipart upload of the backend's part size ([`crate::Backend::part_size`])
    /// with at most [`PARTS_IN_FLIGHT`] (or
    /// [`PutObjectOptions::with_parts_in_flight`]) parts in flight, the next one
    /// filled only while fewer run, so memory stays bounded whatever the size. On
    /// any failure (including an error item from `body`, the size limit,
    /// cancellation, or the returned future being dropped) the upload is aborted
    /// and nothing is left behind. Emits an
    /// [`ObjectChange::Created`] on success.
    ///
    /// # Errors
    /// [`ErrorKind::TooLarge`], [`ErrorKind::Cancelled`], the error `body` yielded,
    /// backend failures (`StorageFull` for a full backend).
    pub async fn put_object<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: S,
        options: PutObjectOptions,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let path = key.portable_path()?;
        self.backend().confine(bucket, key).await?;
        let store = self.store_for(bucket).await?;
        match self
            .write_object(store, path, bucket, key, body, options)
            .await
        {
            Ok(outcome) => {
                self.publish(ObjectChange::created(bucket, key, outcome.size));
                Ok(outcome)
            }
            Err(e) => {
                self.backend()
                    .discard_write_traces(bucket, key.as_str())
                    .await;
                Err(e)
            }
        }
    }

    /// The write of [`Self::put_object`]: aborts a multipart upload on failure (the
    /// caller removes other traces and publishes the change).
    async fn write_object<S>(
        &self,
        store: Arc<dyn ObjectStore>,
        path: object_store::path::Path,
        bucket: &BucketName,
        key: &ObjectKey,
        body: S,
        options: PutObjectOptions,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let mut attributes = Attributes::new();
        if self.backend().supports_attributes() {
            let content_type = options
                .content_type
                .clone()
                .filter(|ct| !ct.is_empty() && ct != "application/octet-stream")
                .or_else(|| crate::storage::guess_content_type(key.as_str()));
            if let Some(ct) = content_type {
                attributes.insert(Attribute::ContentType, AttributeValue::from(ct));
            }
            for (name, value) in &options.metadata {
                validate_metadata(name, value)?;
                attributes.insert(
                    Attribute::Metadata(name.clone().into()),
                    AttributeValue::from(value.clone()),
                );
            }
        }
        if let Some(etag) = &options.etag {
            if self.backend().name() != "s3" {
                attributes.insert(
                    crate::storage::objmeta::etag_override_attribute(),
                    AttributeValue::from(etag.clone()),
                );
            }
        }
        let cancel = options.cancel.clone().unwrap_or_default();
        let parts_in_flight = options.parts_in_flight.unwrap_or(PARTS_IN_FLIGHT).max(1);
        let part_size = self.backend().part_size().max(1);
        let mut body = std::pin::pin!(body);
        let mut total: u64 = 0;
        let cancelled = || Error::new(ErrorKind::Cancelled, "Upload aborted by client");
        macro_rules! next {
            () => {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Some(Err(cancelled())),
                    item = body.next() => item,
                }
            };
        }
        let account = |chunk: &Bytes, total: &mut u64| -> Result<()> {
            *total += chunk.len() as u64;
            if let Some(max) = options.max_size {
                if *total > max {
                    return Err(Error::new(ErrorKind::TooLarge, "File too large"));
                }
            }
            if let Some(progress) = &options.progress {
                progress(*total);
            }
            Ok(())
        };

        // Collect up to one part: small objects take a single PUT.
        let mut first: Vec<Bytes> = Vec::new();
        let mut first_len = 0usize;
        let mut ended = false;
        while first_len < PART_SIZE {
            match next!() {
                Some(Ok(chunk)) => {
                    account(&chunk, &mut total)?;
                    first_len += chunk.len();
                    first.push(chunk);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            let payload = PutPayload::from_iter(first);
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            let result = store.put_opts(&path, payload, opts).await?;
            return Ok(PutOutcome {
                size: total,
                etag: result.e_tag,
            });
        }

        let upload = store
            .put_multipart_opts(
                &path,
                PutMultipartOptions {
                    attributes,
                    ..PutMultipartOptions::default()
                },
            )
            .await?;
        let mut guard = AbortGuard {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, part_size)),
            traces: Some((
                Arc::clone(self.backend()),
                bucket.clone(),
                key.as_str().to_string(),
            )),
        };
        let result: Result<()> = async {
            // `put` starts a part as soon as one is full, and `wait_for_capacity(n)`
            // returns once fewer than `n` run: waiting before every chunk keeps
            // at most `parts_in_flight` parts in flight, and fills the next part
            // only while fewer run.
            for chunk in first {
                guard.writer()?.wait_for_capacity(parts_in_flight).await?;
                guard.writer()?.put(chunk);
            }
            loop {
                guard.writer()?.wait_for_capacity(parts_in_flight).await?;
                match next!() {
                    Some(Ok(chunk)) => {
                        account(&chunk, &mut total)?;
                        guard.writer()?.put(chunk);
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        }
        .await;
        let writer = guard.take()?;
        match result {
            Ok(()) => {
                let result = writer.finish().await?;
                Ok(PutOutcome {
                    size: total,
                    etag: result.e_tag,
                })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting multipart upload failed");
                }
                Err(e)
            }
        }
    }
}

/// User metadata travels as HTTP headers on S3: names are header tokens, values
/// visible ASCII; 2 KiB in all, as S3 allows.
fn validate_metadata(name: &str, value: &str) -> Result<()> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(
            Error::invalid(format!("Invalid metadata name {name:?}")).with_code("InvalidArgument")
        );
    }
    if !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) || name.len() + value.len() > 2048 {
        return Err(
            Error::invalid(format!("Invalid metadata value for {name:?}"))
                .with_code("InvalidArgument"),
        );
    }
    Ok(())
}

/// Aborts a multipart upload whose put future is dropped before finishing, and
/// removes the write's traces.
struct AbortGuard {
    writer: Option<WriteMultipart>,
    traces: Option<(Arc<dyn crate::Backend>, BucketName, String)>,
}

impl AbortGuard {
    fn writer(&mut self) -> Result<&mut WriteMultipart> {
        self.writer
            .as_mut()
            .ok_or_else(|| Error::internal("multipart writer already consumed"))
    }
    fn take(&mut self) -> Result<WriteMultipart> {
        self.traces = None;
        self.writer
            .take()
            .ok_or_else(|| Error::internal("multipart writer already consumed"))
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let traces = self.traces.take();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(error = %e, "aborting dropped multipart upload failed");
                    }
                    if let Some((backend, bucket, key)) = traces {
                        backend.discard_write_traces(&bucket, &key).await;
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Deleting objects and folders: [`S4::delete_object`] with backend multi-delete
//! in batches.

use super::*;

/// Keys per backend multi-delete batch.
const DELETE_BATCH: usize = 1000;

impl S4 {
    /// Deletes an object, or a folder.
    ///
    /// `key` ending in `/` deletes every object under it. Otherwise the object `key`
    /// and every object under `key/` are deleted (but not `key.csv`). When nothing
    /// exists under the folder prefix a single delete of `key` is issued, which
    /// succeeds even if `key` does not exist. Backend multi-delete is used in batches.
    /// Emits one [`ObjectChange::Removed`] per deleted key.
    ///
    /// # Errors
    /// Listing or deletion calls rejected by the backend. Per-key failures are
    /// reported in [`DeleteOutcome::failed`].
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<DeleteOutcome> {
        let folder = Prefix::folder_of(key.as_str());
        if !folder.is_portable() && !self.backend().holds_any_key() {
            return Err(key
                .portable_path()
                .err()
                .unwrap_or_else(|| Error::invalid("Invalid folder key.").with_code("InvalidKey")));
        }
        let mut outcome = DeleteOutcome::default();
        // Pages are deleted as they arrive: memory stays bounded by one batch
        // whatever the size of the folder, and the listing continues after the
        // last key of the previous page, which deleting does not disturb.
        let mut token = None;
        loop {
            let page = self
                .backend()
                .list_page(
                    bucket,
                    &PageRequest {
                        prefix: folder.clone(),
                        delimited: false,
                        max_keys: DELETE_BATCH,
                        token: token.take(),
                    },
                )
                .await?;
            if !page.objects.is_empty() {
                outcome.folder = true;
                let keys = page.objects.into_iter().map(|o| o.key).collect();
                self.delete_batch(bucket, keys, &mut outcome).await?;
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if key.as_str().ends_with('/') {
            return Ok(outcome);
        }
        // The key itself: counted only when it existed; deleting a missing key
        // is not an error (idempotent delete).
        let existed = match self.head_object(bucket, key).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) if !outcome.folder => return Err(e),
            Err(_) => false,
        };
        if !existed && outcome.folder {
            return Ok(outcome);
        }
        match self.address(bucket, key).await? {
            Address::Store(store, path) => match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            Address::Raw => self.backend().delete_raw(bucket, key).await?,
        }
        if existed {
            self.publish(ObjectChange::removed(bucket, key));
            outcome.deleted.push(key.clone());
        }
        Ok(outcome)
    }

    /// Deletes one listed batch: plain paths with the backend's multi-delete, other
    /// keys (S3 only) one by one. Per-key failures go to `outcome.failed`.
    async fn delete_batch(
        &self,
        bucket: &BucketName,
        keys: Vec<String>,
        outcome: &mut DeleteOutcome,
    ) -> Result<()> {
        let store = self.store_for(bucket).await?;
        let mut paths = Vec::with_capacity(keys.len());
        let mut raw = Vec::new();
        for k in keys {
            match ObjectKey::parse(&k).ok().and_then(|key| key.to_path()) {
                Some(path) => paths.push(path),
                None => raw.push(k),
            }
        }
        let mut results =
            store.delete_stream(futures::stream::iter(paths.clone().into_iter().map(Ok)).boxed());
        let mut done = 0usize;
        while let Some(result) = results.next().await {
            match result {
                // Every path in `paths` is a parsed key's verbatim path, so it
                // parses back to that key.
                Ok(path) => match ObjectKey::parse(path.as_ref()) {
                    Ok(key) => {
                        self.publish(ObjectChange::removed(bucket, &key));
                        outcome.deleted.push(key);
                    }
                    Err(e) => outcome.failed.push(DeleteFailure {
                        key: path.to_string(),
                        code: "InternalError".to_string(),
                        message: e.to_string(),
                    }),
                },
                Err(e) => {
                    let fallback = paths.get(done).map(|p| p.to_string());
                    let (k, code, message) = delete_failure(&e, fallback.as_ref());
                    outcome.failed.push(DeleteFailure {
                        key: k,
                        code,
                        message,
                    });
                }
            }
            done += 1;
        }
        drop(results);
        for k in raw {
            // A listed key that is not a valid `ObjectKey` (control characters,
            // over 1024 bytes) is refused here, never deleted: so every published
            // change names a valid key.
            let deleted = match ObjectKey::parse(&k) {
                Ok(key) if self.backend().holds_any_key() => {
                    self.backend().delete_raw(bucket, &key).await.map(|()| key)
                }
                Ok(key) => Err(key
                    .portable_path()
                    .err()
                    .unwrap_or_else(|| Error::invalid("Invalid key").with_code("InvalidKey"))),
                Err(e) => Err(e),
            };
            match deleted {
                Ok(key) => {
                    self.publish(ObjectChange::removed(bucket, &key));
                    outcome.deleted.push(key);
                }
                Err(e) => outcome.failed.push(DeleteFailure {
                    code: e.code().unwrap_or("InternalError").to_string(),
                    message: e.to_string(),
                    key: k,
                }),
            }
        }
        Ok(())
    }
}

fn delete_failure(e: &object_store::Error, fallback: Option<&String>) -> (String, String, String) {
    let (key, code) = match e {
        object_store::Error::PermissionDenied { path, .. } => (path.clone(), "AccessDenied"),
        object_store::Error::NotFound { path, .. } => (path.clone(), "NoSuchKey"),
        _ => (fallback.cloned().unwrap_or_default(), "InternalError"),
    };
    (key, code.to_string(), e.to_string())
}

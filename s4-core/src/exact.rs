//! Single-key deletes with S3's semantics, for the S3 protocol endpoint: exactly
//! the named object goes (the REST API's [`S4::delete_object`] also deletes the
//! folder below the key).

use object_store::ObjectStoreExt;

use crate::error::{ErrorKind, Result};
use crate::events::ObjectChange;
use crate::names::{BucketName, ObjectKey};
use crate::S4;

impl S4 {
    /// Deletes exactly the object `key`; a missing key is not an error. Returns
    /// whether it existed; publishes an [`ObjectChange::removed`] when it did.
    ///
    /// # Errors
    /// `NoSuchBucket`, an invalid key for the backend, backend failures.
    pub async fn delete_exact(&self, bucket: &BucketName, key: &ObjectKey) -> Result<bool> {
        let existed = match self.head_object(bucket, key).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound && e.code() != Some("NoSuchBucket") => false,
            Err(e) => return Err(e),
        };
        if !existed {
            return Ok(false);
        }
        match key.to_path() {
            Some(path) => {
                self.backend().confine(bucket, key).await?;
                let store = self.backend().store(bucket).await?;
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => self.backend().delete_raw(bucket, key).await?,
        }
        self.publish(ObjectChange::removed(bucket, key));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn deletes_only_the_key() -> Result<()> {
        let s4 = S4::builder().memory().build();
        let bucket = BucketName::try_from("exact")?;
        s4.create_bucket(&bucket).await?;
        let mut changes = s4.subscribe_changes();
        for k in ["a", "a.csv"] {
            let key = ObjectKey::try_from(k)?;
            let body = futures::stream::iter([Ok(Bytes::from_static(b"x"))]);
            s4.put_object(&bucket, &key, body, Default::default())
                .await?;
        }
        let key = ObjectKey::try_from("a")?;
        assert!(s4.delete_exact(&bucket, &key).await?);
        assert!(!s4.delete_exact(&bucket, &key).await?);
        assert!(s4
            .head_object(&bucket, &ObjectKey::try_from("a.csv")?)
            .await
            .is_ok());
        let mut removed = 0;
        while let Ok(change) = changes.try_recv() {
            if change == ObjectChange::removed(&bucket, &key) {
                removed += 1;
            }
        }
        assert_eq!(removed, 1);
        let missing = BucketName::try_from("nope")?;
        let err = s4.delete_exact(&missing, &key).await.err();
        assert_eq!(
            err.and_then(|e| e.code().map(str::to_string)).as_deref(),
            Some("NoSuchBucket")
        );
        Ok(())
    }
}

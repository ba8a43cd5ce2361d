//! Bucket operations on the [`S4`] handle.

use futures::StreamExt;

use crate::error::Result;
use crate::names::BucketName;
use crate::storage::{BucketListing, CreatedBucket};
use crate::S4;

/// Concurrent HEAD probes while listing buckets.
const PROBE_CONCURRENCY: usize = 16;

impl S4 {
    /// Lists the buckets the backend reports, then probes each with a HEAD and drops
    /// those the configured credentials cannot access (probe failures are not errors).
    ///
    /// # Errors
    /// When the backend's bucket listing itself fails.
    pub async fn list_buckets(&self) -> Result<BucketListing> {
        let listing = self.backend().list_buckets().await?;
        let backend = self.backend();
        let probed: Vec<_> = futures::stream::iter(listing.buckets)
            .map(|b| async move {
                let ok = backend
                    .head_bucket(&BucketName::from_backend(b.name.clone()))
                    .await
                    .is_ok();
                ok.then_some(b)
            })
            .buffered(PROBE_CONCURRENCY)
            .collect()
            .await;
        Ok(BucketListing {
            buckets: probed.into_iter().flatten().collect(),
            owner: listing.owner,
        })
    }

    /// Creates a bucket.
    ///
    /// # Errors
    /// `BucketAlreadyOwnedByYou` / `BucketAlreadyExists` ([`crate::ErrorKind::AlreadyExists`]),
    /// backend failures.
    pub async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket> {
        let created = self.backend().create_bucket(bucket).await?;
        // Configurations may predate the bucket: watch its new directory.
        #[cfg(feature = "notifications")]
        self.notifications().bucket_created(bucket).await;
        Ok(created)
    }

    /// Deletes an empty bucket; on success its notification configurations go too
    /// (a failure to update that store is logged: the bucket is gone either way).
    ///
    /// # Errors
    /// `NoSuchBucket`, `BucketNotEmpty` ([`crate::ErrorKind::Conflict`]), backend failures.
    pub async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.backend().delete_bucket(bucket).await?;
        #[cfg(feature = "notifications")]
        if let Err(e) = self.notifications().remove_bucket(bucket).await {
            tracing::error!(bucket = %bucket, error = %e, "bucket deleted but its notification configurations could not be removed");
        }
        Ok(())
    }
}

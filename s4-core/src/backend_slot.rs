//! A backend that can be replaced while S4 runs (`PUT /settings/s3`, API §16.2).
//!
//! [`BackendSlot`] implements [`Backend`] by delegating every call to the backend
//! currently in the slot, so the [`crate::S4`] handle's `backend()` keeps its type
//! and callers need not know about swapping. A swap affects calls that start after
//! it; calls already running finish (or fail) on the backend they started with.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use object_store::ObjectStore;

use crate::error::Result;
use crate::names::{BucketName, ObjectKey};
use crate::storage::{
    Backend, BucketListing, CreatedBucket, Page, PageRequest, RawObject, ServerCopy,
    ServerCopyOptions,
};

/// A replaceable [`Backend`]. Cheap to share (`Arc<BackendSlot>`).
#[derive(Debug)]
pub struct BackendSlot {
    // A std lock: held only to clone the `Arc`, never across an await point.
    current: RwLock<Arc<dyn Backend>>,
    /// The data directory of the first backend (a borrow cannot outlive a swap,
    /// so it is kept here; swaps go to S3 engines, which have none to watch).
    data_dir: Option<std::path::PathBuf>,
}

impl BackendSlot {
    /// A slot holding `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        BackendSlot {
            data_dir: backend.data_dir().map(std::path::Path::to_path_buf),
            current: RwLock::new(backend),
        }
    }

    /// The backend currently in the slot.
    pub fn current(&self) -> Arc<dyn Backend> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `backend` in the slot; returns the previous one.
    pub fn replace(&self, backend: Arc<dyn Backend>) -> Arc<dyn Backend> {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *guard, backend)
    }
}

// Every method forwards: a default body would silently bypass the real backend.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Backend for BackendSlot {
    fn name(&self) -> &'static str {
        self.current().name()
    }

    async fn list_buckets(&self) -> Result<BucketListing> {
        self.current().list_buckets().await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.current().head_bucket(bucket).await
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket> {
        self.current().create_bucket(bucket).await
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.current().delete_bucket(bucket).await
    }

    async fn store(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>> {
        self.current().store(bucket).await
    }

    fn supports_attributes(&self) -> bool {
        self.current().supports_attributes()
    }

    fn part_size(&self) -> usize {
        self.current().part_size()
    }

    fn allows_key_folder_overlap(&self) -> bool {
        self.current().allows_key_folder_overlap()
    }

    async fn discard_write_traces(&self, bucket: &BucketName, key: &str) {
        self.current().discard_write_traces(bucket, key).await
    }

    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page> {
        self.current().list_page(bucket, request).await
    }

    fn holds_any_key(&self) -> bool {
        self.current().holds_any_key()
    }

    async fn get_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Vec<crate::storage::Tag>> {
        self.current().get_object_tags(bucket, key).await
    }

    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[crate::storage::Tag],
    ) -> Result<()> {
        self.current().put_object_tags(bucket, key, tags).await
    }

    async fn delete_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.current().delete_object_tags(bucket, key).await
    }

    fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    async fn confine(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.current().confine(bucket, key).await
    }

    async fn get_raw(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
        head: bool,
    ) -> Result<RawObject> {
        self.current().get_raw(bucket, key, range, head).await
    }

    async fn delete_raw(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.current().delete_raw(bucket, key).await
    }

    async fn copy_object(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        options: &ServerCopyOptions,
    ) -> Result<ServerCopy> {
        self.current().copy_object(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;

    #[tokio::test]
    async fn swap_takes_effect_for_new_calls() {
        let first: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let slot = BackendSlot::new(Arc::clone(&first));
        let bucket = BucketName::try_from("swap-one").expect("valid");
        slot.create_bucket(&bucket).await.expect("create");
        assert_eq!(slot.list_buckets().await.expect("list").buckets.len(), 1);
        let previous = slot.replace(Arc::new(MemoryBackend::new()));
        assert_eq!(
            previous.list_buckets().await.expect("list").buckets.len(),
            1
        );
        assert!(slot.list_buckets().await.expect("list").buckets.is_empty());
        assert_eq!(slot.name(), "memory");
    }
}

//! The in-memory backend: every bucket is an `object_store` [`InMemory`] store.
//!
//! Nothing is persisted; for tests and for embedders that want scratch storage.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectMeta, ObjectStore};

use super::memory_store::MemoryObjects;
use super::{
    decode_token, no_such_bucket, page_sorted, Backend, BucketInfo, BucketListing, CreatedBucket,
    ObjectSummary, Page, PageRequest, Tag,
};
use crate::error::{Error, ErrorKind, Result};
use crate::names::{BucketName, ObjectKey};

/// A bucket's store and creation time.
type MemoryBucket = (Arc<InMemory>, DateTime<Utc>);

/// Buckets in process memory.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    // A std lock: it is never held across an await point.
    buckets: RwLock<BTreeMap<String, MemoryBucket>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, bucket: &BucketName) -> Result<Arc<InMemory>> {
        let buckets = self
            .buckets
            .read()
            .map_err(|_| Error::internal("memory backend lock poisoned"))?;
        buckets
            .get(bucket.as_str())
            .map(|(s, _)| Arc::clone(s))
            .ok_or_else(no_such_bucket)
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn list_buckets(&self) -> Result<BucketListing> {
        let buckets = self
            .buckets
            .read()
            .map_err(|_| Error::internal("memory backend lock poisoned"))?;
        Ok(BucketListing {
            buckets: buckets
                .iter()
                .map(|(name, (_, created))| BucketInfo {
                    name: name.clone(),
                    created: Some(*created),
                })
                .collect(),
            owner: None,
        })
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.get(bucket).map(|_| ())
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket> {
        let mut buckets = self
            .buckets
            .write()
            .map_err(|_| Error::internal("memory backend lock poisoned"))?;
        if buckets.contains_key(bucket.as_str()) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with_code("BucketAlreadyOwnedByYou"));
        }
        buckets.insert(
            bucket.as_str().to_string(),
            (Arc::new(InMemory::new()), Utc::now()),
        );
        Ok(CreatedBucket {
            location: Some(format!("/{bucket}")),
        })
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        let store = self.get(bucket)?;
        let mut listing = store.list(None);
        if listing.try_next().await?.is_some() {
            return Err(bucket_not_empty());
        }
        let mut buckets = self
            .buckets
            .write()
            .map_err(|_| Error::internal("memory backend lock poisoned"))?;
        buckets.remove(bucket.as_str());
        Ok(())
    }

    async fn store(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>> {
        Ok(Arc::new(MemoryObjects::new(self.get(bucket)?)) as Arc<dyn ObjectStore>)
    }

    async fn get_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        let store = MemoryObjects::new(self.get(bucket)?);
        Ok(store.tags(&key.portable_path()?).await?)
    }

    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[Tag],
    ) -> Result<()> {
        let store = MemoryObjects::new(self.get(bucket)?);
        Ok(store.set_tags(&key.portable_path()?, tags).await?)
    }

    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page> {
        let store = MemoryObjects::new(self.get(bucket)?);
        let start_after = request.token.as_deref().map(decode_token).transpose()?;
        // The in-memory store is ordered; list everything and group here. Memory
        // buckets are small by nature, so a linear scan is the simple, right tool.
        let metas: Vec<ObjectMeta> = store.list(None).try_collect().await?;
        Ok(page_from_metas(metas, request, start_after.as_deref()))
    }
}

/// The `BucketNotEmpty` error every backend uses.
pub(crate) fn bucket_not_empty() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "The bucket you tried to delete is not empty",
    )
    .with_code("BucketNotEmpty")
}

/// Builds an S3-style page from a complete listing of `metas`.
pub(crate) fn page_from_metas(
    mut metas: Vec<ObjectMeta>,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Page {
    metas.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    enum Entry {
        Object(ObjectSummary),
        Prefix,
    }
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for meta in metas {
        let key = meta.location.as_ref();
        let Some(rest) = key.strip_prefix(request.prefix.as_str()) else {
            continue;
        };
        if request.delimited {
            if let Some(i) = rest.find('/') {
                let prefix = format!("{}{}", request.prefix, &rest[..=i]);
                if entries.last().map(|(n, _)| n.as_str()) != Some(prefix.as_str()) {
                    entries.push((prefix, Entry::Prefix));
                }
                continue;
            }
        }
        entries.push((
            key.to_string(),
            Entry::Object(ObjectSummary {
                key: key.to_string(),
                last_modified: meta.last_modified,
                etag: meta.e_tag.clone(),
                size: meta.size,
                storage_class: "STANDARD".to_string(),
            }),
        ));
    }
    // Prefixes sort by their name including the trailing '/'.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next_token) = page_sorted(entries.into_iter(), start_after, request.max_keys);
    let mut out = Page {
        next_token,
        ..Page::default()
    };
    for (name, entry) in page {
        match entry {
            Entry::Object(o) => out.objects.push(o),
            Entry::Prefix => out.prefixes.push(name),
        }
    }
    out
}

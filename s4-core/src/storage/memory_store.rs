//! The memory backend's object store: `object_store`'s [`InMemory`] with S3 ETags
//! and tags kept in each entry's own attributes (so they change atomically with
//! the bytes), under internal names that reads strip again.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload,
    ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UpdateVersion, UploadPart,
};

use super::objmeta;
use super::Tag;

type OsResult<T> = object_store::Result<T>;

/// Internal attribute: the content ETag.
const ETAG_ATTR: &str = "\u{1}s4-etag";
/// Internal attribute: the tag set (JSON).
const TAGS_ATTR: &str = "\u{1}s4-tags";

fn internal(name: &str) -> Attribute {
    Attribute::Metadata(name.to_string().into())
}

/// One bucket of the memory backend. See the module documentation.
#[derive(Debug)]
pub(crate) struct MemoryObjects {
    inner: Arc<InMemory>,
}

impl MemoryObjects {
    pub(crate) fn new(inner: Arc<InMemory>) -> Self {
        Self { inner }
    }

    /// The raw entry: `InMemory`'s own ETag (a version counter) and attributes.
    async fn raw_head(&self, location: &Path) -> OsResult<GetResult> {
        self.inner
            .get_opts(
                location,
                GetOptions {
                    head: true,
                    ..GetOptions::default()
                },
            )
            .await
    }

    pub(crate) async fn tags(&self, location: &Path) -> OsResult<Vec<Tag>> {
        let raw = self.raw_head(location).await?;
        Ok(raw
            .attributes
            .get(&internal(TAGS_ATTR))
            .map(|v| objmeta::decode_tags(v.as_ref().as_bytes()))
            .unwrap_or_default())
    }

    /// Replaces the tag set with a conditional rewrite of the entry (retried when
    /// a concurrent write got there first), so bytes and tags never mix.
    pub(crate) async fn set_tags(&self, location: &Path, tags: &[Tag]) -> OsResult<()> {
        loop {
            let raw = self.inner.get(location).await?;
            let version = UpdateVersion {
                e_tag: raw.meta.e_tag.clone(),
                version: raw.meta.version.clone(),
            };
            let mut attributes = raw.attributes.clone();
            let chunks: Vec<Bytes> = match raw.payload {
                GetResultPayload::Stream(s) => s.try_collect().await?,
                #[cfg(feature = "local")]
                GetResultPayload::File(..) => {
                    return Err(object_store::Error::NotImplemented {
                        operation: "file payload".into(),
                        implementer: "MemoryObjects".into(),
                    })
                }
            };
            if tags.is_empty() {
                attributes.remove(&internal(TAGS_ATTR));
            } else {
                let encoded = String::from_utf8(objmeta::encode_tags(tags)).unwrap_or_default();
                attributes.insert(internal(TAGS_ATTR), AttributeValue::from(encoded));
            }
            let opts = PutOptions {
                mode: PutMode::Update(version),
                attributes,
                ..PutOptions::default()
            };
            match self
                .inner
                .put_opts(location, PutPayload::from_iter(chunks), opts)
                .await
            {
                Ok(_) => return Ok(()),
                Err(object_store::Error::Precondition { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl fmt::Display for MemoryObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemoryObjects")
    }
}

/// Moves the internal ETag into `meta` and drops internal attributes.
fn publicize(meta: &mut ObjectMeta, attributes: &mut Attributes) {
    if let Some(etag) = attributes.remove(&internal(ETAG_ATTR)) {
        meta.e_tag = Some(etag.to_string());
    }
    attributes.remove(&internal(TAGS_ATTR));
}

fn with_etag(mut attributes: Attributes, etag: &str) -> Attributes {
    attributes.remove(&internal(TAGS_ATTR));
    attributes.insert(internal(ETAG_ATTR), AttributeValue::from(etag.to_string()));
    attributes
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> OsResult<PutResult> {
        let etag = objmeta::etag_for(
            &opts.attributes,
            objmeta::single_etag(&objmeta::md5_of(payload.iter().map(|b| &b[..]))),
        );
        let opts = PutOptions {
            attributes: with_etag(opts.attributes, &etag),
            ..opts
        };
        let mut result = self.inner.put_opts(location, payload, opts).await?;
        result.e_tag = Some(etag);
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> OsResult<Box<dyn MultipartUpload>> {
        Ok(Box::new(MemoryMultipart {
            inner: Arc::clone(&self.inner),
            location: location.clone(),
            attributes: opts.attributes,
            parts: Vec::new(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> OsResult<GetResult> {
        // Conditions are checked against the content ETag, not InMemory's counter.
        let conditions = GetOptions {
            if_match: options.if_match.clone(),
            if_none_match: options.if_none_match.clone(),
            if_modified_since: options.if_modified_since,
            if_unmodified_since: options.if_unmodified_since,
            ..GetOptions::default()
        };
        let plain = GetOptions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
            ..options
        };
        let mut result = self.inner.get_opts(location, plain).await?;
        publicize(&mut result.meta, &mut result.attributes);
        conditions.check_preconditions(&result.meta)?;
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, OsResult<Path>>,
    ) -> BoxStream<'static, OsResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, OsResult<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        self.inner
            .list(prefix)
            .and_then(move |meta| {
                let inner = Arc::clone(&inner);
                async move {
                    let head = GetOptions {
                        head: true,
                        ..GetOptions::default()
                    };
                    match inner.get_opts(&meta.location, head).await {
                        Ok(mut result) => {
                            publicize(&mut result.meta, &mut result.attributes);
                            Ok(ObjectMeta {
                                e_tag: result.meta.e_tag,
                                ..meta
                            })
                        }
                        Err(_) => Ok(meta), // Deleted since listed.
                    }
                }
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> OsResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> OsResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A multipart write: parts are kept (memory holds the object anyway) with their
/// MD5s, and written as one entry on completion.
#[derive(Debug)]
struct MemoryMultipart {
    inner: Arc<InMemory>,
    location: Path,
    attributes: Attributes,
    parts: Vec<(PutPayload, [u8; 16])>,
}

#[async_trait]
impl MultipartUpload for MemoryMultipart {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let digest = objmeta::md5_of(data.iter().map(|b| &b[..]));
        self.parts.push((data, digest));
        futures::future::ready(Ok(())).boxed()
    }

    async fn complete(&mut self) -> OsResult<PutResult> {
        let parts = std::mem::take(&mut self.parts);
        let digests: Vec<[u8; 16]> = parts.iter().map(|(_, d)| *d).collect();
        let etag = objmeta::etag_for(&self.attributes, objmeta::multipart_etag(&digests));
        let payload: PutPayload = parts.iter().flat_map(|(p, _)| p.iter().cloned()).collect();
        let opts = PutOptions {
            attributes: with_etag(std::mem::take(&mut self.attributes), &etag),
            ..PutOptions::default()
        };
        let mut result = self.inner.put_opts(&self.location, payload, opts).await?;
        result.e_tag = Some(etag);
        Ok(result)
    }

    async fn abort(&mut self) -> OsResult<()> {
        self.parts.clear();
        Ok(())
    }
}

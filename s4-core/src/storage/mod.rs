//! Storage backends: where buckets live.
//!
//! A [`Backend`] is a thin *bucket provider* over `object_store`: it lists, creates
//! and deletes buckets (which `object_store` does not model), hands out one
//! [`ObjectStore`] per bucket for object I/O, and lists one page of a bucket with
//! S3 semantics (delimiter `/`, opaque continuation tokens), which `object_store`'s
//! own listing cannot express for every store.
//!
//! Three backends ship, one module each:
//!
//! * [`local`]: the embedded default; buckets are directories under a data directory.
//! * [`memory`]: in process memory; for tests and embedders.
//! * [`s3`]: any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, Garage).
//!
//! Object reads and writes always go through the `ObjectStore` returned by
//! [`Backend::store`], so everything built on top (transfers, imports) streams the
//! same way on every backend.

#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "local")]
mod local_store;
pub mod memory;
mod memory_store;
pub(crate) mod objmeta;
#[cfg(feature = "s3")]
mod quickack;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "s3")]
pub mod s3_client;
mod s3_config;
pub(crate) mod transport;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::ObjectStore;

use std::ops::Range;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::names::{BucketName, ObjectKey, Prefix};

#[cfg(feature = "local")]
pub use local::{LocalBackend, LocalOptions};
pub use memory::MemoryBackend;
#[cfg(feature = "s3")]
pub use quickack::QuickAckConnector;
#[cfg(feature = "s3")]
pub use s3::{PendingUpload, S3Backend, ServerCopyStats};
#[cfg(feature = "s3")]
pub use s3_client::S3Timeouts;
pub use s3_config::S3Config;

/// A bucket as listed by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Bucket name.
    pub name: String,
    /// Creation time, when the backend reports one.
    pub created: Option<DateTime<Utc>>,
}

/// The result of listing buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketListing {
    /// Buckets in the backend's order.
    pub buckets: Vec<BucketInfo>,
    /// The owner record, when the backend reports one.
    pub owner: Option<BucketOwner>,
}

/// The owner record of a bucket listing, as an S3 engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketOwner {
    /// Display name.
    pub display_name: String,
    /// Canonical id.
    pub id: String,
}

/// One entry of an object listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// Full object key.
    pub key: String,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// Entity tag, quotes included, when known.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Storage class (`STANDARD` when the backend reports none).
    pub storage_class: String,
}

/// A request for one page of a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Key prefix (not necessarily ending in `/`).
    pub prefix: Prefix,
    /// Group keys below the next `/` after the prefix into common prefixes.
    pub delimited: bool,
    /// Maximum number of entries (objects plus prefixes) to return, at least 1.
    pub max_keys: usize,
    /// Continuation token of a previous page.
    pub token: Option<String>,
}

/// One page of a bucket listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Objects directly under the prefix (or all, without delimiter).
    pub objects: Vec<ObjectSummary>,
    /// Common prefixes, each ending in `/`.
    pub prefixes: Vec<String>,
    /// Token for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

/// What a bucket create returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedBucket {
    /// The bucket's location (e.g. `/my-bucket`), when the backend reports one.
    pub location: Option<String>,
}

/// A provider of buckets. See the module documentation.
///
/// Errors use the S3 vocabulary on every backend, so clients see the same codes:
/// `NoSuchBucket`, `BucketAlreadyOwnedByYou`, `BucketNotEmpty`, `NoSuchKey`.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Short name for logs: `local`, `memory` or `s3`.
    fn name(&self) -> &'static str;

    /// Lists the buckets the configured credentials can see.
    async fn list_buckets(&self) -> Result<BucketListing>;

    /// Succeeds if the bucket exists and is accessible.
    async fn head_bucket(&self, bucket: &BucketName) -> Result<()>;

    /// Creates a bucket.
    async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket>;

    /// Deletes an empty bucket.
    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()>;

    /// The object store of a bucket. Local and memory backends fail with
    /// `NoSuchBucket` when the bucket does not exist; S3 lets the backend answer.
    async fn store(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>>;

    /// Whether objects keep attributes such as a content type.
    fn supports_attributes(&self) -> bool {
        true
    }

    /// Size of the parts of a streamed multipart write ([`crate::S4::put_object`]
    /// above [`crate::PART_SIZE`]); a put holds at most `parts in flight + 1` of them.
    /// Default [`crate::PART_SIZE`], S3's smallest part. The local backend writes
    /// parts in place with `pwrite` and takes smaller ones, so concurrent streamed
    /// writes hold a fifth of the memory.
    fn part_size(&self) -> usize {
        crate::PART_SIZE
    }

    /// Whether a key may also be the folder of other keys (`a` and `a/b` together).
    /// File-system backends cannot, and refuse the second write with
    /// [`crate::ErrorKind::Conflict`] (code `KeyConflict`).
    fn allows_key_folder_overlap(&self) -> bool {
        true
    }

    /// Removes traces a failed write of `key` may have left outside the object
    /// itself (the local backend's empty parent directories). Best effort.
    async fn discard_write_traces(&self, bucket: &BucketName, key: &str) {
        let _ = (bucket, key);
    }

    /// The directory holding one sub-directory per bucket, for file-system
    /// backends (watched for out-of-band changes by notifications).
    fn data_dir(&self) -> Option<&std::path::Path> {
        None
    }

    /// Lists one page of a bucket.
    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page>;

    /// The tag set of an object (API §12.9), in stored order.
    async fn get_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        let _ = (bucket, key);
        Err(tagging_unsupported(self.name()))
    }

    /// Replaces the tag set of an object; an empty set removes every tag.
    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[Tag],
    ) -> Result<()> {
        let _ = (bucket, key, tags);
        Err(tagging_unsupported(self.name()))
    }

    /// Removes every tag of an object.
    async fn delete_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.put_object_tags(bucket, key, &[]).await
    }

    /// Whether keys that are not plain relative paths (`x/`, `/a`, `a//b`, `./a`,
    /// see [`ObjectKey::is_portable`]) can exist here: an S3 engine holds whatever
    /// other tools wrote. Backends that answer `false` (file system, memory) get only
    /// portable keys and prefixes; S4 refuses the others with `InvalidKey` /
    /// `InvalidPrefix` before calling them.
    fn holds_any_key(&self) -> bool {
        false
    }

    /// Checks, before any read, write or delete of the portable `key`, that it
    /// stays inside the bucket. The local backend refuses keys whose path crosses a
    /// symbolic link leading out of the bucket directory (`NoSuchKey`).
    async fn confine(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        let _ = (bucket, key);
        Ok(())
    }

    /// Reads an object whose key is not portable (only when [`Backend::holds_any_key`]).
    /// With `head`, only the metadata is fetched and the body is empty; `range` is an
    /// already resolved byte range.
    async fn get_raw(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<Range<u64>>,
        head: bool,
    ) -> Result<RawObject> {
        let _ = (bucket, range, head);
        Err(key.portable_path().err().unwrap_or_else(not_raw))
    }

    /// Deletes an object whose key is not portable (only when
    /// [`Backend::holds_any_key`]). Deleting a missing key succeeds.
    async fn delete_raw(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        let _ = bucket;
        Err(key.portable_path().err().unwrap_or_else(not_raw))
    }

    /// Copies the object `from` to `to` inside the storage engine, the bytes never
    /// passing through S4 (same or different bucket). `to` is overwritten.
    ///
    /// Answers [`ServerCopy::Unsupported`] when the backend cannot (the default, kept
    /// by the memory and local backends: the local store's copy hard-links, and
    /// copying over a file that is already a link of the same source leaves its
    /// staging link behind; streaming is a plain file copy there anyway), or when
    /// the engine refuses the request; the caller then streams the object. Like a
    /// streamed write the copy is atomic: on failure, cancel or drop nothing is left
    /// at `to` (a multipart copy is aborted). Publishes no change event (the caller
    /// does, as for its other writes).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Cancelled`] when `options.cancel` fires; backend
    /// failures (`NoSuchKey` for a missing source, transport errors).
    async fn copy_object(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        options: &ServerCopyOptions,
    ) -> Result<ServerCopy> {
        let _ = (from, to, options);
        Ok(ServerCopy::Unsupported)
    }
}

/// What [`Backend::copy_object`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerCopy {
    /// The engine copied the object (`size` bytes) without S4 reading it.
    Copied {
        /// Size of the copy.
        size: u64,
    },
    /// Not copied: this backend or its engine cannot copy server-side; stream it.
    Unsupported,
}

/// Options of [`Backend::copy_object`].
#[derive(Clone, Default)]
pub struct ServerCopyOptions {
    /// The source's size as listed (a hint: the backend may check it).
    pub size: u64,
    /// Stops the copy (between the parts of a multipart copy) and aborts it.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Receives the bytes copied so far, after each part of a multipart copy and
    /// once at the end.
    pub progress: Option<crate::ProgressFn>,
}

impl ServerCopyOptions {
    /// Options for a source of `size` bytes.
    pub fn new(size: u64) -> Self {
        ServerCopyOptions {
            size,
            ..ServerCopyOptions::default()
        }
    }

    /// Stops the copy when `cancel` fires.
    pub fn with_cancel(mut self, cancel: tokio_util::sync::CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: crate::ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl fmt::Debug for ServerCopyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCopyOptions")
            .field("size", &self.size)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

fn not_raw() -> crate::Error {
    crate::Error::internal("raw key access used for a portable key")
}

/// Metadata of one object (defined here, with the backends that report it;
/// re-exported by the object API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when known.
    pub last_modified: Option<DateTime<Utc>>,
    /// Entity tag with its quotes, when known.
    pub etag: Option<String>,
    /// Stored content type, when the backend keeps one.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`), when the backend keeps it.
    pub metadata: Vec<(String, String)>,
    /// Storage class, when reported.
    pub storage_class: Option<String>,
}

/// An object read by key verbatim ([`Backend::get_raw`]).
pub struct RawObject {
    /// Metadata of the whole object.
    pub info: ObjectInfo,
    /// The byte range the body yields.
    pub range: Range<u64>,
    /// The bytes (empty for a HEAD).
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for RawObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawObject")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// The content type of a key guessed from its extension (`mime_guess`).
pub fn guess_content_type(key: &str) -> Option<String> {
    objmeta::guess_type(key)
}

/// One object tag: `(key, value)`.
pub type Tag = (String, String);

/// The error of a backend (or engine) that does not implement object tagging.
pub(crate) fn tagging_unsupported(backend: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Unsupported,
        format!("Object tagging is not implemented by the {backend} backend"),
    )
    .with_code("NotImplemented")
}

/// The `NoSuchBucket` error every backend uses.
pub(crate) fn no_such_bucket() -> crate::Error {
    crate::Error::not_found("The specified bucket does not exist").with_code("NoSuchBucket")
}

/// Longest continuation token accepted: the Base64 of the longest key (1024
/// bytes → 1366 characters) with room to spare. (API §8.1 says 512, which a key
/// longer than 384 bytes exceeds: its next page could never be fetched.)
pub const MAX_TOKEN_CHARS: usize = 1400;

/// Encodes a backend-native continuation position as an opaque token made only of
/// characters the API contract allows (`[A-Za-z0-9_-]`).
pub(crate) fn encode_token(native: &str) -> String {
    crate::codec::encode_b64_text(native)
}

/// Decodes a token made by [`encode_token`].
pub(crate) fn decode_token(token: &str) -> Result<String> {
    crate::codec::decode_b64_text(token).map_err(|_| {
        crate::Error::invalid("Continuation token format is invalid.")
            .with_code("InvalidContinuationToken")
    })
}

/// Splits a raw prefix into its directory part (ending in `/`, or empty) and the
/// leaf-name prefix after it.
#[cfg_attr(not(feature = "local"), allow(dead_code))]
pub(crate) fn split_prefix(prefix: &str) -> (&str, &str) {
    match prefix.rfind('/') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    }
}

/// Pages a sorted, de-duplicated sequence of listing entries (`(name, entry)` where a
/// prefix's name ends in `/`) after `start_after`, producing at most `max_keys`.
pub(crate) fn page_sorted<T>(
    entries: impl Iterator<Item = (String, T)>,
    start_after: Option<&str>,
    max_keys: usize,
) -> (Vec<(String, T)>, Option<String>) {
    let mut out = Vec::new();
    let mut more = false;
    for (name, entry) in entries {
        if let Some(after) = start_after {
            if name.as_str() <= after {
                continue;
            }
        }
        if out.len() == max_keys {
            more = true;
            break;
        }
        out.push((name, entry));
    }
    let next = if more {
        out.last().map(|(n, _)| encode_token(n))
    } else {
        None
    };
    (out, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_split() {
        assert_eq!(split_prefix(""), ("", ""));
        assert_eq!(split_prefix("a/"), ("a/", ""));
        assert_eq!(split_prefix("a/b"), ("a/", "b"));
        assert_eq!(split_prefix("abc"), ("", "abc"));
    }

    #[test]
    fn paging() {
        let items = || ["a", "b", "c"].into_iter().map(|s| (s.to_string(), ()));
        let (page, next) = page_sorted(items(), None, 2);
        assert_eq!(page.len(), 2);
        let token = next.expect("more pages");
        let after = decode_token(&token).expect("valid token");
        let (page, next) = page_sorted(items(), Some(&after), 2);
        assert_eq!(page.len(), 1);
        assert_eq!(next, None);
    }
}

/// Property tests of continuation tokens and paging.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The character set the contract allows in `continuationToken` (§8.1).
    fn contract_chars(token: &str) -> bool {
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=._-".contains(&b))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_token_decodes_or_is_invalid(token in prop_oneof![any::<String>(), "[A-Za-z0-9+/=._-]{0,64}"]) {
            if let Err(e) = decode_token(&token) {
                prop_assert_eq!(e.code(), Some("InvalidContinuationToken"));
            }
        }

        /// Tokens round-trip and use only the contract's characters; a token of
        /// any key (at most 1024 bytes) fits the route's limit (`MAX_TOKEN_CHARS`).
        #[test]
        fn tokens_round_trip(name in any::<String>()) {
            let token = encode_token(&name);
            prop_assert!(contract_chars(&token));
            if !name.is_empty() && name.len() <= crate::names::MAX_KEY_BYTES {
                prop_assert!(token.len() <= MAX_TOKEN_CHARS);
            }
            prop_assert_eq!(decode_token(&token).ok(), Some(name));
        }

        /// Following the tokens of `page_sorted` visits every entry once, in order.
        #[test]
        fn paging_visits_everything_once(
            names in prop::collection::btree_set("[a-c/]{1,6}", 0..40),
            max_keys in 1usize..7,
        ) {
            let all: Vec<String> = names.into_iter().collect();
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            for _ in 0..=all.len() {
                let (page, next) = page_sorted(all.iter().map(|n| (n.clone(), ())), after.as_deref(), max_keys);
                prop_assert!(page.len() <= max_keys);
                seen.extend(page.into_iter().map(|(n, ())| n));
                match next {
                    Some(token) => after = Some(decode_token(&token).map_err(|e| TestCaseError::fail(e.to_string()))?),
                    None => break,
                }
            }
            prop_assert_eq!(seen, all);
        }

        #[test]
        fn split_prefix_reassembles(prefix in any::<String>()) {
            let (dir, leaf) = split_prefix(&prefix);
            prop_assert_eq!(format!("{dir}{leaf}"), prefix.as_str());
            prop_assert!(dir.is_empty() || dir.ends_with('/'));
            prop_assert!(!leaf.contains('/'));
        }
    }
}

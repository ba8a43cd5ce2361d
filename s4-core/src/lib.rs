//! # s4-core
//!
//! The embeddable, async core of S4: a typed API to browse, move and watch data in
//! buckets of a storage backend (local file system, memory, or any S3-compatible
//! engine) and in local directories. It knows nothing about HTTP; the `s4-http`
//! crate is a thin adapter over it, and any Rust service can link it directly.
//!
//! ```no_run
//! # async fn demo() -> s4_core::Result<()> {
//! use futures::StreamExt;
//! use s4_core::{BucketName, ObjectKey, S4, storage::MemoryBackend};
//!
//! let s4 = S4::builder().backend(MemoryBackend::new()).build();
//! let bucket = BucketName::try_from("models")?;
//! s4.create_bucket(&bucket).await?;
//! let key = ObjectKey::try_from("llama/config.json")?;
//! let body = futures::stream::iter([Ok(bytes::Bytes::from_static(b"{}"))]);
//! s4.put_object(&bucket, &key, body, Default::default()).await?;
//! let mut object = s4.get_object(&bucket, &key, Default::default()).await?;
//! while let Some(chunk) = object.body.next().await {
//!     let _bytes = chunk?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! * [`S4`] (`handle.rs`): the handle (cheap to clone, `Arc` inside) and its
//!   [`S4Builder`]. Its methods live next to their domain: buckets in `bucket.rs`,
//!   objects in `object.rs`, search in `search.rs`. [`ByteRange`] and
//!   [`ProgressFn`] (`io.rs`) are shared by bucket and location I/O.
//! * [`storage`]: the [`storage::Backend`] trait (a bucket provider over
//!   `object_store`) and its three implementations, one module each.
//! * [`error`]: the one [`Error`] type with its [`ErrorKind`].
//! * [`settings`]: environment → validated [`Settings`], checked before start.
//! * [`names`] and [`codec`]: validated bucket names and keys; the Base64 path codec.
//! * [`events`]: every successful write/delete is published as an [`events::ObjectChange`].
//! * [`uploads`]: progress records and abort handles of in-flight uploads.
//! * [`multipart`]: S3-style multipart uploads (staged parts, atomic complete) and,
//!   in `exact.rs`, single-key deletes with S3 semantics, for the S3 endpoint.
//! * [`notify`]: bucket notifications: webhook configurations and event delivery.
//! * [`auth`], [`ratelimit`]: credentials, JWTs, SSE tickets, rate limits.
//! * [`transfer`]: transfer jobs between buckets and local directories, with
//!   progress, conflicts, cancel and cleanup ([`S4::transfers`]).
//! * [`location`]: local directories (`LOCAL_STORAGE_PATHS`), confined to their roots.
//! * `testing` (feature `testing`): the backend-agnostic conformance suite.
//! * [`config_store`]: runtime settings (S3, HuggingFace token, proxies, limits),
//!   persisted, secrets redacted; [`outbound`]: proxied outbound HTTP clients;
//!   [`backend_slot`]: the replaceable backend behind [`S4::replace_backend`].
//! * [`hf`]: the HuggingFace Hub client of model imports (plan, download, verify).
//! * `fakes` (feature `testing`): fake Hub, HTTP server and forward proxy for tests.
//!
//! ## Features
//!
//! Everything is on by default (what the `s4` daemon uses). With
//! `default-features = false` the crate keeps the memory backend, buckets,
//! objects, search, change events and upload tracking, and pulls in no HTTP client
//! or server crate; add back what you need: `s3`, `local` (backends), `auth`,
//! `locations`, `transfers`, `notifications`, `huggingface`, `outbound`,
//! `settings-store`, `github`, and `testing` (the conformance suite and fakes).
//!
//! ## Conventions
//!
//! Nothing buffers an object: reads return streams, writes consume streams, and a
//! failed or dropped write leaves nothing behind. No blocking file-system call runs
//! on the async runtime.

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "auth")]
pub mod auth;
pub mod backend_slot;
mod bucket;
pub mod codec;
#[cfg(feature = "settings-store")]
pub mod config_store;
pub mod error;
pub mod events;
mod exact;
#[cfg(feature = "github")]
pub mod github;
mod handle;
#[cfg(feature = "huggingface")]
pub mod hf;
mod io;
#[cfg(feature = "locations")]
pub mod location;
pub mod multipart;
pub mod names;
#[cfg(feature = "notifications")]
pub mod notify;
mod object;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod preview;
pub mod ratelimit;
mod search;
pub mod settings;
pub mod storage;
pub mod tagging;
#[cfg(feature = "transfers")]
pub mod transfer;
pub mod uploads;

#[cfg(any(test, feature = "testing"))]
pub mod fakes;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use events::{ChangeKind, ObjectChange};
pub use handle::{NoBackend, S4Builder, WithBackend, S4};
pub use io::{ByteRange, ProgressFn};
pub use names::{BucketName, ObjectKey, Prefix};
pub use object::{
    etag_matches, DeleteFailure, DeleteOutcome, GetObjectOptions, ListOptions, ObjectInfo,
    ObjectStream, PutObjectOptions, PutOutcome, PARTS_IN_FLIGHT, PART_SIZE,
};
pub use search::{
    match_offsets, KeyMatches, MatchList, ScanStop, SearchMode, SearchOptions, SearchResult,
    SCAN_MAX_PAGES, SCAN_PAGE_SIZE,
};
pub use settings::{BackendSettings, Settings};
pub use storage::{Backend, ObjectSummary, Page};

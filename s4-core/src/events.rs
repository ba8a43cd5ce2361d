//! Object change events: the one place every successful write and delete is seen.
//!
//! Every write or delete S4 performs through its core API (uploads, deletes, and
//! later transfers, imports and cleanups) publishes an [`ObjectChange`] on a
//! broadcast channel. Consumers (webhook notifications, embedders) subscribe with
//! [`crate::S4::subscribe_changes`]. The channel is bounded: a consumer that falls
//! behind loses the oldest events (`RecvError::Lagged`) instead of slowing writers.

use crate::names::BucketName;

/// Capacity of the change channel.
pub const CHANGE_CHANNEL_CAPACITY: usize = 4096;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created or overwritten, with its new size in bytes.
    Created {
        /// Size in bytes.
        size: u64,
    },
    /// Deleted.
    Removed,
}

/// One change to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// What happened.
    pub kind: ChangeKind,
}

impl ObjectChange {
    /// A creation or overwrite of `key` with `size` bytes.
    pub fn created(bucket: &BucketName, key: &str, size: u64) -> Self {
        ObjectChange {
            bucket: bucket.as_str().to_string(),
            key: key.to_string(),
            kind: ChangeKind::Created { size },
        }
    }

    /// A deletion of `key`.
    pub fn removed(bucket: &BucketName, key: &str) -> Self {
        ObjectChange {
            bucket: bucket.as_str().to_string(),
            key: key.to_string(),
            kind: ChangeKind::Removed,
        }
    }
}

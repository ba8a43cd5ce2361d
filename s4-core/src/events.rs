//! Object change events: the one place every successful write and delete is seen.
//!
//! Every write or delete S4 performs through its core API (uploads, deletes, and
//! later transfers, imports and cleanups) publishes an [`ObjectChange`] on a
//! broadcast channel. Consumers (webhook notifications, embedders) subscribe with
//! [`crate::S4::subscribe_changes`]. The channel is bounded: a consumer that falls
//! behind loses the oldest events (`RecvError::Lagged`) instead of slowing writers.

use crate::names::{BucketName, ObjectKey};

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
///
/// Only keys that are valid [`ObjectKey`]s are ever written or deleted through the
/// core API (a key an S3 engine lists that is not one, e.g. with control
/// characters, is refused with `InvalidKey` by a folder delete, never deleted), so
/// every change names a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// Bucket name.
    pub bucket: BucketName,
    /// Object key.
    pub key: ObjectKey,
    /// What happened.
    pub kind: ChangeKind,
}

impl ObjectChange {
    /// A creation or overwrite of `key` with `size` bytes.
    pub fn created(bucket: &BucketName, key: &ObjectKey, size: u64) -> Self {
        ObjectChange {
            bucket: bucket.clone(),
            key: key.clone(),
            kind: ChangeKind::Created { size },
        }
    }

    /// A deletion of `key`.
    pub fn removed(bucket: &BucketName, key: &ObjectKey) -> Self {
        ObjectChange {
            bucket: bucket.clone(),
            key: key.clone(),
            kind: ChangeKind::Removed,
        }
    }
}

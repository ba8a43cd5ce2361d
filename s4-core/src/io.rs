//! Small types shared by every streamed read and write, of buckets and of local
//! locations alike: the byte range of a read and the progress callback of a write.

use std::ops::Range;
use std::sync::Arc;

/// A byte range request, before it is resolved against the object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..=end` (end clamped to the object).
    Bounded(u64, u64),
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves against `size`; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::Bounded(start, end) if start <= end && start < size => {
                Some(start..end.min(size - 1) + 1)
            }
            ByteRange::From(start) if start < size => Some(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// Callback receiving the cumulative number of bytes consumed by a put.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

//! Upload data generated on the fly, without repeating blocks.
//!
//! Garage stores objects as content-addressed 1 MiB blocks and de-duplicates
//! identical ones, so a body made of one repeated buffer would never reach its
//! disk. Each upload gets a fresh 2 MiB random pool; chunk `i` is the 1 MiB window
//! of it starting at `(i × 1031) mod 1 MiB`, distinct for the first 1 Mi chunks.
//! Chunks are zero-copy slices, so generating a GiB costs nothing on the client.

use bytes::Bytes;

/// Size of one generated chunk.
pub const CHUNK: usize = 1 << 20;

/// A generator of non-repeating chunks.
#[derive(Debug, Clone)]
pub struct Payload {
    pool: Bytes,
    /// Total size of the object.
    pub size: u64,
}

impl Payload {
    /// A new payload of `size` bytes; `seed` varies its content.
    pub fn new(size: u64, seed: u64) -> Self {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15 ^ now_nanos();
        let mut pool = Vec::with_capacity(2 * CHUNK);
        while pool.len() < 2 * CHUNK {
            // xorshift64*: fast, and random enough to defeat de-duplication.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            pool.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        Payload {
            pool: Bytes::from(pool),
            size,
        }
    }

    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(CHUNK as u64)
    }

    /// Chunk `i` (the last one may be short).
    pub fn chunk(&self, i: u64) -> Bytes {
        let start = ((i as usize).wrapping_mul(1031)) % CHUNK;
        let len = (self.size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        self.pool.slice(start..start + len)
    }

    /// All chunks, lazily.
    pub fn iter(&self) -> impl Iterator<Item = Bytes> + Send + 'static {
        let this = self.clone();
        (0..this.chunks()).map(move |i| this.chunk(i))
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_size_and_differ() {
        let p = Payload::new(3 * CHUNK as u64 + 10, 1);
        let total: usize = p.iter().map(|c| c.len()).sum();
        assert_eq!(total as u64, p.size);
        assert_ne!(p.chunk(0), p.chunk(1));
    }
}

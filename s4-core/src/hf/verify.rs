//! Streaming verification of a downloaded file: size and SHA-256 (API §13.2 step 4).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::{HubFile, CHECKSUM_MISMATCH, SIZE_MISMATCH};
use crate::error::{Error, ErrorKind, Result};

/// A byte stream that hashes and counts what passes through and ends with an error
/// (code [`CHECKSUM_MISMATCH`] or [`SIZE_MISMATCH`]) instead of its end when the
/// bytes do not match the listing. Since the error is the last item, an atomic
/// write consuming the stream never commits a mismatching file.
pub struct Verified {
    inner: BoxStream<'static, Result<Bytes>>,
    path: String,
    expected_size: Option<u64>,
    expected_sha256: Option<String>,
    hasher: Sha256,
    seen: u64,
    done: bool,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("path", &self.path)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

/// Wraps `body` (the download of `file`) in a [`Verified`] stream checking the
/// listed size (when known) and the LFS sha256 (when listed).
pub fn verify(file: &HubFile, body: BoxStream<'static, Result<Bytes>>) -> Verified {
    Verified::new(
        &file.path,
        file.size_known.then_some(file.size),
        file.sha256.clone(),
        body,
    )
}

impl Verified {
    /// Verifies `body` against an expected size and sha256 (lower-case hex).
    pub fn new(
        path: &str,
        expected_size: Option<u64>,
        expected_sha256: Option<String>,
        body: BoxStream<'static, Result<Bytes>>,
    ) -> Self {
        Verified {
            inner: body,
            path: path.to_string(),
            expected_size,
            expected_sha256: expected_sha256.map(|s| s.to_ascii_lowercase()),
            hasher: Sha256::new(),
            seen: 0,
            done: false,
        }
    }

    fn size_error(&self) -> Error {
        Error::new(
            ErrorKind::Backend,
            format!(
                "Size mismatch for {}: expected {}, got {}",
                self.path,
                self.expected_size.unwrap_or(0),
                self.seen
            ),
        )
        .with_code(SIZE_MISMATCH)
    }

    fn finish(&mut self) -> Option<Error> {
        if self.expected_size.is_some_and(|n| n != self.seen) {
            return Some(self.size_error());
        }
        let expected = self.expected_sha256.as_ref()?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        let got: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        (got != *expected).then(|| {
            Error::new(
                ErrorKind::Backend,
                format!(
                    "Checksum mismatch for {}: expected {expected}, got {got}",
                    self.path
                ),
            )
            .with_code(CHECKSUM_MISMATCH)
        })
    }
}

impl Stream for Verified {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.expected_size.is_some_and(|n| self.seen > n) {
                    self.done = true;
                    return Poll::Ready(Some(Err(self.size_error())));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(self.finish().map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> BoxStream<'static, Result<Bytes>> {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    async fn drain(mut s: Verified) -> Result<u64> {
        let mut n = 0;
        while let Some(chunk) = s.next().await {
            n += chunk?.len() as u64;
        }
        Ok(n)
    }

    // sha256("hello world")
    const HELLO: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    #[tokio::test]
    async fn good_bad_and_short() {
        let ok = Verified::new(
            "f",
            Some(11),
            Some(HELLO.into()),
            body(&[b"hello ", b"world"]),
        );
        assert_eq!(drain(ok).await.expect("valid"), 11);
        let bad = Verified::new(
            "f",
            Some(11),
            Some(HELLO.into()),
            body(&[b"hello ", b"WORLD"]),
        );
        let err = drain(bad).await.expect_err("mismatch");
        assert_eq!(err.code(), Some(CHECKSUM_MISMATCH));
        assert!(
            err.message()
                .starts_with("Checksum mismatch for f: expected b94d"),
            "{err}"
        );
        let short = Verified::new("f", Some(12), None, body(&[b"hello world"]));
        let err = drain(short).await.expect_err("short");
        assert_eq!(err.message(), "Size mismatch for f: expected 12, got 11");
        let long = Verified::new("f", Some(3), None, body(&[b"hello world"]));
        assert_eq!(
            drain(long).await.expect_err("long").code(),
            Some(SIZE_MISMATCH)
        );
        let unknown = Verified::new("f", None, None, body(&[b"x"]));
        assert_eq!(drain(unknown).await.expect("no expectations"), 1);
        let empty = Verified::new(
            "e",
            Some(0),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
            body(&[]),
        );
        assert_eq!(drain(empty).await.expect("empty ok"), 0);
    }
}

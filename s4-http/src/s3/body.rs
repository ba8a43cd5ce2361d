//! The request body of the S3 endpoint with the server's body-read timeout
//! ([`crate::body::BodyReadTimeout`]): a body that stalls for longer fails like
//! a client disconnect, so the write it feeds is aborted (as on the REST API).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::{BodyStalled, BoxError};

/// `inner` failing with [`BodyStalled`] when no frame arrives for `limit` while
/// it is being read. Size hints pass through (the S3 layer relies on them).
pub(super) struct StallTimeout<B> {
    inner: Pin<Box<B>>,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl<B> StallTimeout<B> {
    pub(super) fn new(inner: B, limit: Duration) -> Self {
        StallTimeout {
            inner: Box::pin(inner),
            limit,
            sleep: None,
            failed: false,
        }
    }
}

/// A failed read of the request body (stalled, or the connection's own error).
#[derive(Debug)]
pub(super) struct BodyReadError(BoxError);

impl std::fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl<B> Body for StallTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(|e| BodyReadError(e.into()))))
            }
            Poll::Pending => {
                let Some(deadline) = Instant::now().checked_add(this.limit) else {
                    return Poll::Pending; // no limit
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.failed = true;
                        Poll::Ready(Some(Err(BodyReadError(BoxError::from(BodyStalled(
                            this.limit,
                        ))))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_and_a_flowing_one_does_not() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let body = StreamBody::new(tokio_stream_from(rx));
        let mut body = StallTimeout::new(body, Duration::from_secs(5));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .ok();
        let first = body.frame().await;
        assert!(matches!(first, Some(Ok(_))));
        // Nothing more arrives: the paused clock runs to the deadline.
        let stalled = body.frame().await;
        assert!(matches!(stalled, Some(Err(_))), "{stalled:?}");
        assert!(body.frame().await.is_none());
        drop(tx);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn size_hint_passes_through() {
        let body = http_body_util::Full::new(Bytes::from_static(b"abc"));
        let wrapped = StallTimeout::new(body, Duration::from_secs(1));
        assert_eq!(wrapped.size_hint().exact(), Some(3));
    }
}

//! Server-Sent Events framing: one `data: <json>` line per event, and a
//! `: keepalive` comment every 15 s while the stream is open.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::Response;

use crate::body::{self, Body};

/// Interval of keep-alive comments.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(15);

enum Item {
    Event(String),
    KeepAlive,
    End,
}

/// An SSE response streaming `events` (compact JSON texts). The response ends when
/// `events` ends; dropping it (client gone) drops `events` and the keep-alive timer.
pub(crate) fn response<S>(events: S) -> Response<Body>
where
    S: Stream<Item = String> + Send + 'static,
{
    let events = events
        .map(Item::Event)
        .chain(futures::stream::once(async { Item::End }));
    let start = tokio::time::Instant::now() + KEEPALIVE;
    let keepalive = futures::stream::unfold(
        tokio::time::interval_at(start, KEEPALIVE),
        |mut t| async move {
            t.tick().await;
            Some((Item::KeepAlive, t))
        },
    );
    let frames = futures::stream::select(events, keepalive)
        .take_while(|item| std::future::ready(!matches!(item, Item::End)))
        .map(|item| {
            let text = match item {
                Item::Event(json) => format!("data: {json}\n\n"),
                _ => ": keepalive\n\n".to_string(),
            };
            Ok::<_, std::convert::Infallible>(Bytes::from(text))
        });
    let mut response = Response::new(body::stream(frames));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

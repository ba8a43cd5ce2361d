//! The one response body type of every route and its plain constructors (empty,
//! full, streamed). A leaf: error responses (`error.rs`) are built from it, and
//! the JSON helpers of the parent module build on both.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

/// Boxed error carried by response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The response body of every route: full JSON, empty, or a byte stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streamed body. A stream error aborts the response mid-way (the client sees a
/// truncated transfer, never a fake success).
pub(crate) fn stream<S, E>(stream: S) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    StreamBody::new(stream.map_ok(Frame::data).map_err(Into::into)).boxed_unsync()
}

/// A response with `status` carrying already encoded JSON `bytes`.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

//! One response body type for every route (`plain.rs`), JSON responses, and
//! request-body helpers.

use bytes::Bytes;
use futures::Stream;
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;

pub(crate) use self::plain::{empty, full, stream, Body, BoxError};
use crate::error::ApiError;

pub(crate) mod plain;

/// The longest pause allowed between two pieces of a request body, set by the server
/// as a request extension (see [`crate::ServeOptions::body_read_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyReadTimeout(pub std::time::Duration);

/// The request body stalled for longer than its [`BodyReadTimeout`].
#[derive(Debug)]
pub(crate) struct BodyStalled(pub std::time::Duration);

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body stalled for more than {:?}", self.0)
    }
}

impl std::error::Error for BodyStalled {}

/// The request body as a stream of data chunks that fails with [`BodyStalled`] when
/// the client sends nothing for longer than the request's [`BodyReadTimeout`] while
/// the stream is being read (the upload then fails like a client disconnect). Without
/// the extension (a request not from [`crate::serve`]) there is no limit.
pub(crate) fn data_stream(
    request: http::Request<Incoming>,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
    use futures::StreamExt;
    let timeout = request.extensions().get::<BodyReadTimeout>().map(|t| t.0);
    let stream = request.into_body().into_data_stream();
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        let next = match timeout {
            Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
                Ok(next) => next,
                Err(_) => return Some((Err(BoxError::from(BodyStalled(limit))), None)),
            },
            None => stream.next().await,
        };
        match next {
            None => None,
            Some(Ok(bytes)) => Some((Ok(bytes), Some(stream))),
            Some(Err(e)) => Some((Err(BoxError::from(e)), None)),
        }
    })
    .fuse()
}

/// Largest JSON request body accepted (1 MiB).
pub(crate) const JSON_LIMIT: usize = 1 << 20;

/// A JSON response with `status`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => plain::json_bytes(status, bytes),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

/// A 200 JSON response.
pub(crate) fn ok<T: Serialize>(value: &T) -> Response<Body> {
    json(StatusCode::OK, value)
}

/// Reads a small JSON request body (at most [`JSON_LIMIT`]) as a
/// [`serde_json::Value`]. An empty body is `null`.
///
/// # Errors
/// 415 for a non-JSON content type, 413 when too large, 400 when malformed.
pub(crate) async fn read_json_value(
    request: http::Request<Incoming>,
) -> Result<serde_json::Value, ApiError> {
    let timeout = request
        .extensions()
        .get::<BodyReadTimeout>()
        .map_or(std::time::Duration::MAX, |t| t.0);
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(timeout, Limited::new(body, JSON_LIMIT).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout",
                "The request body was not received in time",
            )
        })?;
    let bytes = collected
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large",
                    "Request body is larger than 1 MiB",
                )
            } else {
                ApiError::bad_request("Could not read request body")
            }
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json")
        && !essence.to_ascii_lowercase().ends_with("+json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            format!("Unsupported Media Type: {content_type}"),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Body is not valid JSON: {e}")))
}

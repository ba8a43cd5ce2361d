//! Conversions between `s3s` types and S4's: names, errors, times, ETags, bodies.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::{ETag, StreamingBlob, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode};
use s4_core::{BucketName, ErrorKind, ObjectKey};

/// An S4 error as the S3 error of the same meaning: the core's S3 code when it
/// has one (`NoSuchKey`, `BucketNotEmpty`, ...), else one for its kind; the
/// status is the REST API's ([`crate::error::status_of`]).
pub(crate) fn s3_err(e: s4_core::Error) -> S3Error {
    let kind = e.kind();
    let code = match e.code() {
        Some("InvalidKey" | "InvalidPrefix" | "InvalidContinuationToken") => {
            S3ErrorCode::InvalidArgument
        }
        Some("NotFound") => S3ErrorCode::NoSuchKey,
        Some("StorageFull") => S3ErrorCode::Custom("StorageFull".into()),
        Some(code) => S3ErrorCode::from_bytes(code.as_bytes())
            .unwrap_or_else(|| S3ErrorCode::Custom(code.to_string().into())),
        None => match kind {
            ErrorKind::NotFound => S3ErrorCode::NoSuchKey,
            ErrorKind::AlreadyExists => S3ErrorCode::BucketAlreadyOwnedByYou,
            ErrorKind::InvalidInput => S3ErrorCode::InvalidArgument,
            ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => S3ErrorCode::AccessDenied,
            ErrorKind::RateLimited => S3ErrorCode::SlowDown,
            ErrorKind::Conflict => S3ErrorCode::Custom("Conflict".into()),
            ErrorKind::PreconditionFailed => S3ErrorCode::PreconditionFailed,
            ErrorKind::NotModified => S3ErrorCode::NotModified,
            ErrorKind::RangeNotSatisfiable => S3ErrorCode::InvalidRange,
            ErrorKind::TooLarge => S3ErrorCode::EntityTooLarge,
            ErrorKind::Unsupported => S3ErrorCode::NotImplemented,
            ErrorKind::Timeout | ErrorKind::Unavailable => S3ErrorCode::ServiceUnavailable,
            _ => S3ErrorCode::InternalError,
        },
    };
    let status = crate::error::status_of(kind);
    let message = if status.is_server_error() {
        tracing::warn!(error = %e, "S3 request failed");
        "We encountered an internal error. Please try again.".to_string()
    } else {
        e.message().to_string()
    };
    let mut err = S3Error::with_message(code, message);
    err.set_status_code(status);
    err
}

/// An S3 error with a code and message.
pub(crate) fn err(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::with_message(code, message.into())
}

/// A bucket name by S4's rules (`InvalidBucketName`).
pub(crate) fn bucket(name: &str) -> Result<BucketName, S3Error> {
    BucketName::parse(name).map_err(|e| err(S3ErrorCode::InvalidBucketName, e.message()))
}

/// A key by S4's rules.
pub(crate) fn key(key: &str) -> Result<ObjectKey, S3Error> {
    ObjectKey::parse(key).map_err(s3_err)
}

/// A chrono time as an S3 timestamp.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from(std::time::SystemTime::from(t))
}

/// An S3 timestamp as seconds since the epoch.
pub(crate) fn epoch_secs(t: &Timestamp) -> Option<i64> {
    let mut out = Vec::new();
    t.format(TimestampFormat::EpochSeconds, &mut out).ok()?;
    let text = String::from_utf8(out).ok()?;
    text.split('.').next()?.parse().ok()
}

/// A stored ETag (with quotes) as an `s3s` ETag.
pub(crate) fn etag(stored: &str) -> ETag {
    let value = stored.trim_start_matches("W/").trim_matches('"');
    ETag::Strong(value.to_string())
}

/// A stored ETag without quotes (for comparisons).
pub(crate) fn etag_value(stored: &str) -> &str {
    stored.trim_start_matches("W/").trim_matches('"')
}

/// A request body as the core's byte stream.
pub(crate) fn body_stream(
    body: Option<StreamingBlob>,
) -> impl Stream<Item = s4_core::Result<Bytes>> + Send + 'static {
    match body {
        Some(blob) => blob
            .map_err(|e| {
                s4_core::Error::new(ErrorKind::Cancelled, "request body failed")
                    .with_message(format!("request body failed: {e}"))
            })
            .boxed(),
        None => futures::stream::empty().boxed(),
    }
}

/// A core byte stream as a response body.
pub(crate) fn blob<S>(stream: S) -> StreamingBlob
where
    S: Stream<Item = s4_core::Result<Bytes>> + Send + 'static,
{
    StreamingBlob::wrap(SyncStream(std::sync::Mutex::new(Box::pin(stream))))
}

/// Makes a `Send` stream `Sync` (as `StreamingBlob` requires) by polling it
/// through an uncontended mutex.
struct SyncStream<S>(std::sync::Mutex<std::pin::Pin<Box<S>>>);

impl<S> Stream for SyncStream<S>
where
    S: Stream<Item = s4_core::Result<Bytes>> + Send,
{
    type Item = Result<Bytes, s4_core::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.0.lock() {
            Ok(mut inner) => inner.as_mut().poll_next(cx),
            Err(_) => std::task::Poll::Ready(Some(Err(s4_core::Error::internal(
                "response stream lock poisoned",
            )))),
        }
    }
}

/// What `encoding-type=url` leaves unencoded: unreserved characters and `/`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// `text` encoded for `encoding-type=url` when `url`.
pub(crate) fn encode(text: String, url: bool) -> String {
    if url {
        utf8_percent_encode(&text, URL_ENCODE).to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(encode("a b/c+d".into(), true), "a%20b/c%2Bd");
        assert_eq!(encode("a b".into(), false), "a b");
        assert_eq!(encode("é".into(), true), "%C3%A9");
    }

    #[test]
    fn error_codes() {
        let e = s3_err(
            s4_core::Error::not_found("The specified bucket does not exist")
                .with_code("NoSuchBucket"),
        );
        assert_eq!(e.code(), &S3ErrorCode::NoSuchBucket);
        assert_eq!(e.status_code(), Some(http::StatusCode::NOT_FOUND));
        let e = s3_err(s4_core::Error::internal("disk exploded"));
        assert_eq!(e.code(), &S3ErrorCode::InternalError);
        assert!(!e.message().unwrap_or_default().contains("disk"));
        let e = s3_err(s4_core::Error::invalid("bad key").with_code("InvalidKey"));
        assert_eq!(e.code(), &S3ErrorCode::InvalidArgument);
        assert_eq!(e.status_code(), Some(http::StatusCode::BAD_REQUEST));
    }

    #[test]
    fn times_and_etags() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(epoch_secs(&timestamp(t)), Some(1_700_000_000));
        assert_eq!(etag("\"abc-2\"").value(), "abc-2");
        assert_eq!(etag_value("W/\"x\""), "x");
    }
}

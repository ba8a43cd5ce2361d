//! The one error type of s4-core.
//!
//! Every fallible operation returns [`Error`]: a boxed inner record holding an
//! [`ErrorKind`] (what went wrong, named after the condition, never after an HTTP
//! status), a human-readable message, an optional machine code (for example the S3
//! error code a backend answered with, such as `NoSuchKey`), and the source chain.
//!
//! Mapping a kind to a transport status is the job of the adapter (s4-http's
//! `error.rs`); nothing in this crate knows about HTTP.
//!
//! `From<object_store::Error>` lives here and only here, so every backend error is
//! classified in one place.

use std::borrow::Cow;
use std::fmt;

/// Result alias used throughout s4-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed error used as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is.
///
/// Named after conditions so that adapters (HTTP, CLI, embedders) can decide how to
/// present them. New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The addressed bucket, object, file, job or entry does not exist.
    NotFound,
    /// The thing being created already exists.
    AlreadyExists,
    /// The caller's input is malformed or fails validation.
    InvalidInput,
    /// Credentials are missing, invalid or expired.
    Unauthenticated,
    /// The caller is authenticated but may not do this (or a path escapes its root).
    PermissionDenied,
    /// A rate limit rejected the request; see [`Error::retry_at`].
    RateLimited,
    /// The operation conflicts with the current state (e.g. bucket not empty).
    Conflict,
    /// A conditional request's precondition failed.
    PreconditionFailed,
    /// A conditional read found the object unchanged (`If-None-Match` matched).
    NotModified,
    /// A requested byte range lies outside the object; see [`Error::object_size`].
    RangeNotSatisfiable,
    /// A size limit or quota was exceeded.
    TooLarge,
    /// The destination has no space left.
    StorageFull,
    /// The operation is not supported by this backend or configuration.
    Unsupported,
    /// The operation was cancelled or aborted by a user.
    Cancelled,
    /// The storage backend failed or rejected the request; see [`Error::backend_status`].
    Backend,
    /// An unexpected internal failure (a bug or an environment problem).
    Internal,
    /// The storage backend did not answer in time (connect, response headers, or a
    /// stalled response body).
    Timeout,
    /// The storage backend cannot be reached (connection refused or impossible).
    Unavailable,
    /// The storage backend reset or closed the connection mid-request.
    ConnectionLost,
}

impl ErrorKind {
    /// A short, stable, human-readable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::NotModified => "not modified",
            ErrorKind::RangeNotSatisfiable => "range not satisfiable",
            ErrorKind::TooLarge => "too large",
            ErrorKind::StorageFull => "storage full",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Backend => "backend error",
            ErrorKind::Internal => "internal error",
            ErrorKind::Timeout => "backend timeout",
            ErrorKind::Unavailable => "backend unavailable",
            ErrorKind::ConnectionLost => "backend connection lost",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of s4-core. Cheap to move (one pointer).
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    code: Option<Cow<'static, str>>,
    backend_status: Option<u16>,
    retry_at: Option<u64>,
    object_size: Option<u64>,
    source: Option<BoxError>,
}

impl Error {
    /// Creates an error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            code: None,
            backend_status: None,
            retry_at: None,
            object_size: None,
            source: None,
        }))
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Attaches a machine code (e.g. an S3 error code such as `NoSuchKey`, or a
    /// validation code such as `InvalidKey`).
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.0.code = Some(code.into());
        self
    }

    /// Attaches the status number the storage backend answered with.
    pub fn with_backend_status(mut self, status: u16) -> Self {
        self.0.backend_status = Some(status);
        self
    }

    /// Attaches the Unix time (seconds) at which a rate-limited request may be retried.
    pub fn with_retry_at(mut self, unix_secs: u64) -> Self {
        self.0.retry_at = Some(unix_secs);
        self
    }

    /// Attaches the size of the object a range was requested from.
    pub fn with_object_size(mut self, size: u64) -> Self {
        self.0.object_size = Some(size);
        self
    }

    /// Attaches a source error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Replaces the message, keeping everything else.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.0.message = message.into();
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The human-readable message (without the source chain).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The machine code, if one is known (backend S3 code or validation code).
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The status number the backend answered with, if the failure came from one.
    pub fn backend_status(&self) -> Option<u16> {
        self.0.backend_status
    }

    /// For [`ErrorKind::RateLimited`]: Unix seconds when the window ends.
    pub fn retry_at(&self) -> Option<u64> {
        self.0.retry_at
    }

    /// For [`ErrorKind::RangeNotSatisfiable`]: the size of the object.
    pub fn object_size(&self) -> Option<u64> {
        self.0.object_size
    }

    /// Maps an I/O error on a local file system path to an [`Error`] with a
    /// meaningful kind (ENOENT, EACCES, ENOSPC, ENAMETOOLONG, ...).
    pub fn from_io(err: std::io::Error, context: impl fmt::Display) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::StorageFull | Io::QuotaExceeded => ErrorKind::StorageFull,
            Io::InvalidInput
            | Io::InvalidFilename
            | Io::NotADirectory
            | Io::IsADirectory
            | Io::DirectoryNotEmpty => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        };
        let message = match kind {
            ErrorKind::StorageFull => "Disk full".to_string(),
            _ => format!("{context}: {err}"),
        };
        Self::new(kind, message).with_source(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(code) = &self.0.code {
            d.field("code", code);
        }
        if let Some(status) = self.0.backend_status {
            d.field("backend_status", &status);
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// The parts of an S3 XML error document S4 uses.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct S3ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

/// Extracts `<Code>` and `<Message>` from an S3 XML error body, parsed with
/// quick-xml (entities decoded). `body` may carry text around the document (an
/// error chain rendered by object_store): the `<Error>` element is taken from it.
/// Anything that is not such a document yields `(None, None)`.
fn parse_s3_error_body(body: &str) -> (Option<String>, Option<String>) {
    let document = body.find("<Error").and_then(|start| {
        let end = body[start..].find("</Error>")? + start + "</Error>".len();
        Some(&body[start..end])
    });
    match document.map(quick_xml::de::from_str::<S3ErrorBody>) {
        Some(Ok(parsed)) => (parsed.code, parsed.message),
        _ => (None, None),
    }
}

/// Builds an error for a response of an S3-compatible backend: `status` and the XML
/// error body (possibly empty, as for HEAD).
pub fn from_s3_response(status: u16, body: &str) -> Error {
    let (code, message) = parse_s3_error_body(body);
    let code = code.unwrap_or_else(|| match status {
        404 => "NotFound".to_string(),
        403 => "Forbidden".to_string(),
        _ => format!("HTTP{status}"),
    });
    let kind = match (status, code.as_str()) {
        (_, "XMinioStorageFull") | (507, _) => ErrorKind::StorageFull,
        (404, _) => ErrorKind::NotFound,
        (409, "BucketAlreadyExists" | "BucketAlreadyOwnedByYou") => ErrorKind::AlreadyExists,
        (409, _) => ErrorKind::Conflict,
        (401, _) => ErrorKind::Unauthenticated,
        (403, _) => ErrorKind::PermissionDenied,
        (412, _) => ErrorKind::PreconditionFailed,
        (304, _) => ErrorKind::NotModified,
        (416, _) => ErrorKind::RangeNotSatisfiable,
        (400, _) => ErrorKind::InvalidInput,
        _ => ErrorKind::Backend,
    };
    let message = message.unwrap_or_else(|| match status {
        404 => "Not Found".to_string(),
        403 => "Forbidden".to_string(),
        _ => format!("Backend answered with status {status}"),
    });
    Error::new(kind, message)
        .with_code(code)
        .with_backend_status(status)
}

/// The status and body of a backend error response found in `err`'s chain.
fn backend_response(err: &object_store::Error) -> Option<(u16, String)> {
    let mut text = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        text.push_str(&e.to_string());
        text.push('\n');
        cur = e.source();
    }
    let status = ["status code: ", "Received status "]
        .iter()
        .find_map(|marker| {
            let at = text.find(marker)? + marker.len();
            text[at..].get(..3)?.parse::<u16>().ok()
        })
        .or(match err {
            object_store::Error::NotFound { .. } => Some(404),
            object_store::Error::PermissionDenied { .. } => Some(403),
            object_store::Error::Unauthenticated { .. } => Some(401),
            object_store::Error::Precondition { .. } => Some(412),
            object_store::Error::NotModified { .. } => Some(304),
            _ => None,
        })?;
    // Only S3 responses carry XML error bodies; local and memory errors have none and
    // fall through to the variant mapping.
    if !text.contains("<Code>") && !text.contains("status code: ") {
        return None;
    }
    Some((status, text))
}

impl From<crate::storage::transport::TransportFailure> for Error {
    fn from(failure: crate::storage::transport::TransportFailure) -> Self {
        use crate::storage::transport::TransportFailure as T;
        match failure {
            T::Timeout => Error::new(
                ErrorKind::Timeout,
                "The storage backend did not answer in time",
            )
            .with_code("GatewayTimeout"),
            T::Unavailable => Error::new(
                ErrorKind::Unavailable,
                "Cannot connect to the storage backend",
            )
            .with_code("ServiceUnavailable"),
            T::ConnectionLost => Error::new(
                ErrorKind::ConnectionLost,
                "The storage backend closed the connection",
            )
            .with_code("BadGateway"),
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        use object_store::Error as OsError;
        // A backend response (S3) carries a status and usually an XML body: pass it
        // through. object_store 0.14 keeps its `RetryError` (which holds both) private,
        // but renders them into the error chain's text, so read them from there.
        if let Some((status, body)) = backend_response(&err) {
            return from_s3_response(status, &body).with_source(err);
        }
        // Transport failures of the S3 clients: timeout, refused, reset.
        if let Some(failure) = crate::storage::transport::classify(&err) {
            return Error::from(failure).with_source(err);
        }
        // I/O errors of the local file system store.
        let io_kind = {
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&err);
            let mut found = None;
            while let Some(e) = cur {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    found = Some(io.kind());
                    break;
                }
                cur = e.source();
            }
            found
        };
        if let Some(kind) = io_kind {
            use std::io::ErrorKind as Io;
            match kind {
                Io::StorageFull | Io::QuotaExceeded => {
                    return Error::new(ErrorKind::StorageFull, "Not enough disk space")
                        .with_code("InsufficientStorage")
                        .with_source(err)
                }
                Io::NotADirectory | Io::IsADirectory => {
                    // File-system backends cannot hold both `a` and `a/b`.
                    return Error::new(
                        ErrorKind::Conflict,
                        "This storage keeps keys as files and folders: an object and a folder cannot share a name",
                    )
                    .with_code("KeyConflict")
                    .with_source(err);
                }
                Io::PermissionDenied => {
                    return Error::new(ErrorKind::PermissionDenied, "Access Denied")
                        .with_code("AccessDenied")
                        .with_source(err)
                }
                _ => {}
            }
        }
        let (kind, message) = match &err {
            OsError::NotFound { .. } => (ErrorKind::NotFound, "The specified key does not exist."),
            OsError::AlreadyExists { .. } => (ErrorKind::AlreadyExists, "Object already exists"),
            OsError::Precondition { .. } => (ErrorKind::PreconditionFailed, "Precondition failed"),
            OsError::NotModified { .. } => (ErrorKind::NotModified, "Not modified"),
            OsError::InvalidPath { .. } => (ErrorKind::InvalidInput, "Invalid object key"),
            OsError::NotSupported { .. } | OsError::NotImplemented { .. } => (
                ErrorKind::Unsupported,
                "Operation not supported by the backend",
            ),
            OsError::PermissionDenied { .. } => (ErrorKind::PermissionDenied, "Access Denied"),
            OsError::Unauthenticated { .. } => (ErrorKind::Unauthenticated, "Unauthenticated"),
            _ => (ErrorKind::Internal, ""),
        };
        let mut out = if message.is_empty() {
            Error::new(kind, err.to_string())
        } else {
            Error::new(kind, message)
        };
        if kind == ErrorKind::NotFound {
            out = out.with_code("NoSuchKey");
        }
        out.with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_body_is_passed_through() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let e = from_s3_response(404, body);
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.code(), Some("NoSuchBucket"));
        assert_eq!(e.message(), "The specified bucket does not exist");
        assert_eq!(e.backend_status(), Some(404));
    }

    #[test]
    fn s3_error_xml_is_parsed() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>AccessDenied</Code>\n  <Message>Key &lt;a&amp;b&gt; is &quot;denied&quot;</Message>\n  <Resource>/b/k</Resource>\n</Error>";
        let e = from_s3_response(403, body);
        assert_eq!(e.code(), Some("AccessDenied"));
        assert_eq!(e.message(), "Key <a&b> is \"denied\"");
        // An error chain around the document, as object_store renders it.
        let chain = format!("Generic S3 error: status code: 409, body: {body}\ncaused by: x");
        assert_eq!(
            parse_s3_error_body(&chain).0.as_deref(),
            Some("AccessDenied")
        );
        // No document, or a broken one: nothing.
        assert_eq!(parse_s3_error_body("status code: 500"), (None, None));
        assert_eq!(
            parse_s3_error_body("<Error><Code>X</Cod></Error>"),
            (None, None)
        );
    }

    #[test]
    fn head_failure_without_body_uses_generic_names() {
        let e = from_s3_response(404, "");
        assert_eq!(e.code(), Some("NotFound"));
        let e = from_s3_response(403, "");
        assert_eq!(e.code(), Some("Forbidden"));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn storage_full_codes() {
        let e = from_s3_response(500, "<Error><Code>XMinioStorageFull</Code></Error>");
        assert_eq!(e.kind(), ErrorKind::StorageFull);
        assert_eq!(from_s3_response(507, "").kind(), ErrorKind::StorageFull);
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let e = Error::from_io(std::io::Error::from(std::io::ErrorKind::NotFound), "x");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = Error::from_io(std::io::Error::from(std::io::ErrorKind::StorageFull), "x");
        assert_eq!(e.kind(), ErrorKind::StorageFull);
        assert_eq!(e.message(), "Disk full");
    }
}

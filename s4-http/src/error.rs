//! The only place core errors become HTTP statuses and JSON error bodies.
//!
//! Every response that is not a success carries `{"error": <name>, "message": <text>}`
//! (plus `retryAfter` for 429). [`status_of`] lists every [`ErrorKind`] explicitly;
//! a kind added later falls to 500 until it is given a status here, and a table test
//! pins each mapping.

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use s4_core::{Error, ErrorKind};
use serde_json::{json, Map, Value};

use crate::body::plain::{self, Body};

/// The status for a core error kind (backend errors use the backend's own status).
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Cancelled => client_closed(),
        ErrorKind::Backend => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::ConnectionLost => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A process-unique id tying a 5xx answer to its log line.
fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: OnceLock<u64> = OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    format!("{start:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// 499: the upload was aborted on the client's request.
pub(crate) fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The contract's `error` name for a core error code: the domain codes whose
/// contract name is an HTTP status name (API §4.5, §10.5) are renamed here, every
/// other code (`NoSuchKey`, `InvalidKey`, …) is the name as it is.
pub(crate) fn wire_name(code: &str) -> &str {
    match code {
        "TicketWrongEndpoint" | "TicketFieldsRequired" | "InvalidResourceType" => "BadRequest",
        "TicketFailed" => "InternalServerError",
        "AuthenticationError" => "Internal Server Error",
        other => other,
    }
}

/// The default `error` name of a kind, used when the error has no code.
pub(crate) fn default_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "Not Found",
        ErrorKind::AlreadyExists | ErrorKind::Conflict => "Conflict",
        ErrorKind::InvalidInput => "Bad Request",
        ErrorKind::Unauthenticated => "Unauthorized",
        ErrorKind::PermissionDenied => "Forbidden",
        ErrorKind::RateLimited => "RateLimitExceeded",
        ErrorKind::PreconditionFailed => "Precondition Failed",
        ErrorKind::NotModified => "Not Modified",
        ErrorKind::RangeNotSatisfiable => "Range Not Satisfiable",
        ErrorKind::TooLarge => "Payload Too Large",
        ErrorKind::StorageFull => "Insufficient Storage",
        ErrorKind::Unsupported => "Not Implemented",
        ErrorKind::Cancelled => "AbortError",
        ErrorKind::Backend | ErrorKind::Internal => "Error",
        ErrorKind::Timeout => "GatewayTimeout",
        ErrorKind::Unavailable => "ServiceUnavailable",
        ErrorKind::ConnectionLost => "BadGateway",
        _ => "Error",
    }
}

/// An error response about to be sent.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// Status.
    pub(crate) status: StatusCode,
    /// The `error` field.
    pub(crate) name: String,
    /// The `message` field.
    pub(crate) message: String,
    /// Extra fields of the body.
    pub(crate) extra: Map<String, Value>,
    /// `Retry-After` seconds, for 429.
    pub(crate) retry_after: Option<u64>,
    /// The core error, kept for logging its source chain.
    pub(crate) source: Option<Error>,
}

impl ApiError {
    /// An error with `status`, `name` and `message`.
    pub(crate) fn new(
        status: StatusCode,
        name: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            name: name.into(),
            message: message.into(),
            extra: Map::new(),
            retry_after: None,
            source: None,
        }
    }

    /// 400 `Bad Request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", message)
    }

    /// 404 `Not Found` with message `Not Found`.
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", "Not Found")
    }

    /// 500 `Internal Server Error`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            message,
        )
    }

    /// Replaces the name.
    pub(crate) fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a body field.
    pub(crate) fn with_field(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Whether the message may carry internal detail (file-system paths, endpoint
    /// URLs, error chains): internal failures and backend failures that are not an
    /// S3 error answer passed through (§3.3).
    fn has_internal_detail(&self) -> bool {
        match &self.source {
            // An error given a code on purpose carries a message written for the
            // client (a contract message); one without a code came from below
            // (I/O, object_store, transport) and may name paths or URLs.
            Some(e) if e.code().is_some() => false,
            Some(e) => match e.kind() {
                ErrorKind::Internal => true,
                ErrorKind::Backend => e.backend_status().is_none(),
                _ => false,
            },
            None => false,
        }
    }

    /// The JSON response. A 5xx is logged with its whole source chain and a request
    /// id; the client gets the stable envelope with that id, never internal detail.
    pub(crate) fn into_response(mut self) -> Response<Body> {
        if self.status.is_server_error() {
            let request_id = next_request_id();
            match &self.source {
                Some(source) => {
                    let mut chain = String::new();
                    let mut cur: Option<&dyn std::error::Error> = Some(source);
                    while let Some(e) = cur {
                        chain.push_str(" <- ");
                        chain.push_str(&e.to_string());
                        cur = e.source();
                    }
                    tracing::warn!(request_id = %request_id, status = self.status.as_u16(), error = %self.name, chain = %chain, "request failed");
                }
                None => {
                    tracing::warn!(request_id = %request_id, status = self.status.as_u16(), error = %self.name, message = %self.message, "request failed")
                }
            }
            if self.has_internal_detail() {
                self.extra
                    .insert("requestId".into(), Value::String(request_id.clone()));
                let backend = self
                    .source
                    .as_ref()
                    .is_some_and(|e| e.kind() == ErrorKind::Backend);
                self.message = if backend {
                    format!("The storage backend request failed (request id {request_id}).")
                } else {
                    format!("Internal server error (request id {request_id}).")
                };
            }
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.name));
        body.insert("message".into(), Value::String(self.message));
        body.extend(self.extra);
        if self.status == StatusCode::NOT_MODIFIED {
            let mut response = Response::new(plain::empty());
            *response.status_mut() = self.status;
            return response;
        }
        // Encoding a `Value` cannot fail (its map keys are strings).
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut response = plain::json_bytes(self.status, bytes);
        if let Some(secs) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let status = err
            .backend_status()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| !s.is_success())
            .unwrap_or_else(|| status_of(kind));
        let name = err
            .code()
            .map(wire_name)
            .unwrap_or_else(|| default_name(kind))
            .to_string();
        let mut api = ApiError::new(status, name, err.message().to_string());
        if let Some(at) = err.retry_at() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            api.retry_after = Some(at.saturating_sub(now).max(1));
            api = api.with_field("retryAfter", json!(at));
        }
        api.source = Some(err);
        api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5xx never shows internal detail; the log and the body share a request id.
    #[tokio::test]
    async fn server_errors_hide_internal_detail() {
        use http_body_util::BodyExt;
        let io = std::io::Error::other("disk exploded");
        let err = Error::from_io(io, "cannot read /srv/secret/data/bucket/key");
        let response = ApiError::from(err).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        let text = body.to_string();
        assert!(!text.contains("/srv"), "{text}");
        assert!(!text.contains("exploded"), "{text}");
        let id = body["requestId"].as_str().expect("request id");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(id)));
        // A backend's own S3 error answer is passed through unchanged (§3.3).
        let passed = s4_core::error::from_s3_response(
            503,
            "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>",
        );
        let response = ApiError::from(passed).into_response();
        assert_eq!(response.status().as_u16(), 503);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(body["error"], "SlowDown");
        assert_eq!(body["message"], "Reduce your rate");
    }

    /// Core's domain codes get the contract's names; other codes pass through.
    #[test]
    fn domain_codes_get_contract_names() {
        let named = |code: &'static str| {
            ApiError::from(Error::new(ErrorKind::InvalidInput, "x").with_code(code)).name
        };
        assert_eq!(named("TicketWrongEndpoint"), "BadRequest");
        assert_eq!(named("TicketFieldsRequired"), "BadRequest");
        assert_eq!(named("InvalidResourceType"), "BadRequest");
        assert_eq!(named("TicketFailed"), "InternalServerError");
        assert_eq!(named("AuthenticationError"), "Internal Server Error");
        assert_eq!(named("NoSuchKey"), "NoSuchKey");
    }

    /// An operation a backend (or its engine) does not implement: 501 `NotImplemented`.
    #[test]
    fn not_implemented() {
        let e = ApiError::from(
            Error::new(ErrorKind::Unsupported, "Object tagging is not implemented")
                .with_code("NotImplemented"),
        );
        assert_eq!(e.status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(e.name, "NotImplemented");
    }

    /// Pins the status of every kind.
    #[test]
    fn kind_table() {
        let table = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 409),
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::PermissionDenied, 403),
            (ErrorKind::RateLimited, 429),
            (ErrorKind::Conflict, 409),
            (ErrorKind::PreconditionFailed, 412),
            (ErrorKind::NotModified, 304),
            (ErrorKind::RangeNotSatisfiable, 416),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::StorageFull, 507),
            (ErrorKind::Unsupported, 501),
            (ErrorKind::Cancelled, 499),
            (ErrorKind::Backend, 500),
            (ErrorKind::Internal, 500),
            (ErrorKind::Timeout, 504),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::ConnectionLost, 502),
        ];
        for (kind, status) in table {
            assert_eq!(status_of(kind).as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn backend_status_and_code_pass_through() {
        let err = Error::new(ErrorKind::NotFound, "The specified key does not exist.")
            .with_code("NoSuchKey")
            .with_backend_status(404);
        let api = ApiError::from(err);
        assert_eq!(api.status, StatusCode::NOT_FOUND);
        assert_eq!(api.name, "NoSuchKey");
        assert_eq!(api.message, "The specified key does not exist.");
    }

    /// Backend transport failures: 504 `GatewayTimeout`, 503 `ServiceUnavailable`,
    /// 502 `BadGateway`, with or without a code on the core error.
    #[test]
    fn backend_transport_failures() {
        for (kind, status, name) in [
            (ErrorKind::Timeout, 504, "GatewayTimeout"),
            (ErrorKind::Unavailable, 503, "ServiceUnavailable"),
            (ErrorKind::ConnectionLost, 502, "BadGateway"),
        ] {
            assert_eq!(default_name(kind), name);
            let api = ApiError::from(Error::new(kind, "backend"));
            assert_eq!((api.status.as_u16(), api.name.as_str()), (status, name));
        }
    }

    #[test]
    fn rate_limit_fields() {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 30;
        let api = ApiError::from(Error::new(ErrorKind::RateLimited, "slow down").with_retry_at(at));
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.extra.get("retryAfter"), Some(&json!(at)));
        assert!(api.retry_after.is_some_and(|s| (29..=30).contains(&s)));
    }
}

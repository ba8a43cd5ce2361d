//! Signed requests of the S3 backend that `object_store` does not make: bucket
//! operations, listings, tagging, verbatim-key reads and deletes, server-side
//! copies. One [`Requester`] per backend sends them all through the backend's one
//! HTTP client (the same connector, connection pool, timeouts and proxy as object
//! I/O), signs each attempt with SigV4 (`sign::sigv4_authorization`) and retries
//! transport failures of idempotent requests ([`S3Timeouts::retries`]).
//!
//! Paths are encoded once with S3's rules and that exact text is both sent and
//! signed, so keys are addressed verbatim (see `raw.rs` for the dot-segment caveat
//! of proxied and `https://` endpoints).

use bytes::Bytes;
use chrono::Utc;
use object_store::client::{HttpClient, HttpRequestBody, HttpResponse};
use sha2::{Digest, Sha256};

use super::sign::{hex, sigv4_authorization, uri_encode, Signer};
use crate::error::{from_s3_response, Error, Result};
use crate::storage::s3_client::{
    read_body, with_retries, Attempt, ExpectedWork, Idempotency, S3Timeouts,
};

/// Sends the backend's own signed requests. Cheap to clone (the client is shared),
/// so a dropped copy can still abort its upload from a spawned task.
#[derive(Debug, Clone)]
pub(super) struct Requester {
    pub(super) client: HttpClient,
    pub(super) endpoint: url::Url,
    pub(super) access_key: String,
    pub(super) secret: String,
    pub(super) region: String,
    pub(super) timeouts: S3Timeouts,
}

/// One request: method, the encoded path below the endpoint (starting with `/`),
/// query pairs (unencoded), extra headers to sign (lower-case names) and the body.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) method: http::Method,
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Bytes,
    /// Bytes the engine processes for this request without them being sent (a
    /// server-side copy): its response headers are due that much later.
    pub(super) work: u64,
    /// Whether an attempt that timed out or was reset may be repeated: by default
    /// every method but POST (CreateMultipartUpload would make a second upload;
    /// CompleteMultipartUpload would answer NoSuchUpload after a first success).
    pub(super) idempotency: Idempotency,
}

impl Call {
    pub(super) fn new(method: http::Method, path: String) -> Self {
        Call {
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            work: 0,
            idempotency: if method == http::Method::POST {
                Idempotency::NotIdempotent
            } else {
                Idempotency::Idempotent
            },
            method,
        }
    }

    /// Repeats the request only when an attempt could not connect (see
    /// [`Idempotency::NotIdempotent`]).
    pub(super) fn not_idempotent(mut self) -> Self {
        self.idempotency = Idempotency::NotIdempotent;
        self
    }

    pub(super) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub(super) fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub(super) fn work(mut self, bytes: u64) -> Self {
        self.work = bytes;
        self
    }
}

/// `/<bucket>` or `/<bucket>/<key>`, encoded with S3's rules (key slashes kept).
pub(super) fn object_path(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true)),
        None => format!("/{}", uri_encode(bucket, false)),
    }
}

/// The canonical (and sent) query string: pairs encoded, sorted by name then value.
fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl Requester {
    fn host(&self) -> String {
        let host = self.endpoint.host_str().unwrap_or_default();
        match self.endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// Builds and signs one attempt of `call`.
    fn build(&self, call: &Call) -> Result<http::Request<HttpRequestBody>> {
        let base = self.endpoint.path().trim_end_matches('/');
        let path = format!("{base}{}", call.path);
        let query = canonical_query(&call.query);
        let host = self.host();
        let now = Utc::now();
        let payload_hash = hex(&Sha256::digest(&call.body));
        let mut headers: Vec<(String, String)> = call.headers.clone();
        headers.push(("host".into(), host.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        headers.push((
            "x-amz-date".into(),
            now.format("%Y%m%dT%H%M%SZ").to_string(),
        ));
        headers.sort();
        let signer = Signer {
            access_key: &self.access_key,
            secret: &self.secret,
            region: &self.region,
        };
        let signed: Vec<(&str, String)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let authorization = sigv4_authorization(
            &signer,
            call.method.as_str(),
            &path,
            &query,
            &signed,
            now,
            &payload_hash,
        );
        let mut uri = format!("{}://{host}{path}", self.endpoint.scheme());
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query);
        }
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(uri);
        for (name, value) in &headers {
            if name != "host" {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        let mut request = builder
            .header(http::header::AUTHORIZATION, authorization)
            .body(HttpRequestBody::from(call.body.clone()))
            .map_err(|e| Error::internal("cannot build S3 request").with_source(e))?;
        if call.work > 0 {
            request.extensions_mut().insert(ExpectedWork(call.work));
        }
        Ok(request)
    }

    /// Sends `call` (retrying transport failures as its [`Idempotency`] allows,
    /// each attempt signed anew) and returns the response, whatever its status.
    pub(super) async fn send(&self, call: &Call) -> Result<HttpResponse> {
        let size = call.body.len() as u64 + call.work;
        with_retries(&self.timeouts, size, call.idempotency, || async {
            let request = self.build(call).map_err(Attempt::Build)?;
            self.client.execute(request).await.map_err(Attempt::Http)
        })
        .await
    }

    /// Sends `call` and returns the body of a 2xx answer; other answers become the
    /// S3 error they carry.
    pub(super) async fn send_ok(&self, call: &Call) -> Result<Bytes> {
        let response = self.send(call).await?;
        let status = response.status().as_u16();
        let body = read_body(&self.timeouts, response).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(from_s3_response(status, &String::from_utf8_lossy(&body)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_canonical() {
        let q = |pairs: &[(&str, &str)]| {
            canonical_query(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(q(&[("uploads", "")]), "uploads=");
        assert_eq!(
            q(&[("uploadId", "a/b+c"), ("partNumber", "2")]),
            "partNumber=2&uploadId=a%2Fb%2Bc"
        );
        assert_eq!(object_path("b", Some("x/ü y")), "/b/x/%C3%BC%20y");
        assert_eq!(object_path("b", None), "/b");
    }
}

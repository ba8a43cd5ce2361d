//! The S3 protocol endpoint: any S3 client (`aws s3`, boto3, rclone,
//! `object_store`) reads and writes S4's own buckets, on a second listener
//! (`S4_S3_PORT`, default 7480).
//!
//! Built on [`s3s`], which parses S3 requests into typed operations, verifies
//! SigV4 (header and presigned-URL forms) and renders S3's XML and error codes.
//! [`S4S3`] implements its [`s3s::S3`] trait as a thin layer over the [`S4`]
//! facade, one module per operation family: [`buckets`], [`objects`],
//! [`listing`], [`uploads`] (multipart). Operations not implemented here are
//! answered by `s3s` with `501 NotImplemented`.
//!
//! Writes and deletes go through the same [`S4`] calls as the REST API, so they are
//! streamed, atomic, and published as change events (webhooks fire for them).

mod body;
mod buckets;
mod convert;
pub mod daemon;
mod listing;
mod objects;
mod uploads;

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use s4_core::multipart::MultipartUploads;
use s4_core::S4;
use tokio::net::TcpListener;

use crate::body::Body;
use crate::server::{serve_handler, Handler, ServeOptions};

/// Default port of the S3 listener (`S4_S3_PORT`).
pub const DEFAULT_S3_PORT: u16 = 7480;

/// The one access key pair the endpoint accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Credentials {
    /// A pair.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }

    /// A random pair: a 20-character upper-case id and a 40-character secret.
    pub fn random() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        let mut rng = rand::rng();
        let id = Alphanumeric
            .sample_string(&mut rng, 16)
            .to_ascii_uppercase();
        S3Credentials {
            access_key_id: format!("S4AK{id}"),
            secret_access_key: Alphanumeric.sample_string(&mut rng, 40),
        }
    }

    /// The pair of `S4_S3_ACCESS_KEY_ID` / `S4_S3_SECRET_ACCESS_KEY`; `None` when
    /// neither is set.
    ///
    /// # Errors
    /// When only one of the two is set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (get("S4_S3_ACCESS_KEY_ID"), get("S4_S3_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Ok(Some(S3Credentials::new(id, secret))),
            (None, None) => Ok(None),
            _ => Err("S4_S3_ACCESS_KEY_ID and S4_S3_SECRET_ACCESS_KEY must be set together".into()),
        }
    }
}

/// Looks up the secret of the one configured key; any other key is
/// `InvalidAccessKeyId`.
struct SingleKey(S3Credentials);

#[async_trait::async_trait]
impl S3Auth for SingleKey {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.0.access_key_id {
            Ok(SecretKey::from(self.0.secret_access_key.clone()))
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

/// The [`s3s::S3`] implementation over an [`S4`] handle.
#[derive(Debug, Clone)]
pub struct S4S3 {
    s4: S4,
    uploads: MultipartUploads,
}

/// The S3 endpoint: an `s3s` service with SigV4 authentication, served by the
/// same accept loop as the REST API ([`serve`]).
#[derive(Clone)]
pub struct S3Endpoint {
    service: S3Service,
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint").finish_non_exhaustive()
    }
}

impl S3Endpoint {
    /// The endpoint over `s4`, accepting requests signed with `credentials`.
    ///
    /// # Errors
    /// When the multipart staging area cannot be prepared.
    pub async fn new(s4: S4, credentials: S3Credentials) -> s4_core::Result<Self> {
        let uploads = MultipartUploads::new(s4.clone()).await?;
        let mut builder = S3ServiceBuilder::new(S4S3 { s4, uploads });
        builder.set_auth(SingleKey(credentials));
        Ok(S3Endpoint {
            service: builder.build(),
        })
    }
}

impl Handler for S3Endpoint {
    fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
        _peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send {
        let service = self.service.clone();
        let close = empty_expect_continue(&request);
        let stall = request
            .extensions()
            .get::<crate::body::BodyReadTimeout>()
            .map(|t| t.0);
        async move {
            let result = match stall {
                // The server's body-read timeout, as on the REST API.
                Some(limit) => {
                    let request = request.map(|b| body::StallTimeout::new(b, limit));
                    tower_service::Service::call(&mut service.clone(), request).await
                }
                None => hyper::service::Service::call(&service, request).await,
            };
            let mut response = match result {
                Ok(response) => response.map(|body| body.boxed_unsync()),
                Err(e) => {
                    tracing::error!(error = ?e, "S3 request failed");
                    internal_error_response()
                }
            };
            if close {
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// Whether a request carries `Expect: 100-continue` with an empty body. hyper
/// sends no `100 Continue` for an empty body but answers at once, which botocore
/// takes as "final response received, body not sent" and keeps as connection
/// state: its next `Expect` request on that connection never sends its body and
/// hangs until the read timeout (`aws s3 sync` of a tree with an empty file).
/// Such a response closes the connection, so the client's next request starts on
/// a fresh one.
fn empty_expect_continue<B>(request: &http::Request<B>) -> bool {
    let headers = request.headers();
    let expects = headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let empty = match headers.get(http::header::CONTENT_LENGTH) {
        Some(len) => len.to_str().ok().is_some_and(|l| l.trim() == "0"),
        None => !headers.contains_key(http::header::TRANSFER_ENCODING),
    };
    expects && empty
}

fn internal_error_response() -> Response<Body> {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
               <Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
    let mut response = Response::new(crate::body::full(Bytes::from_static(xml.as_bytes())));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

/// Serves the S3 endpoint on `listener` until `shutdown` completes (same
/// connection handling, timeouts and draining as [`crate::serve_with`]).
///
/// # Errors
/// Only unrecoverable listener failures.
pub async fn serve(
    listener: TcpListener,
    endpoint: S3Endpoint,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> std::io::Result<()> {
    serve_handler(listener, endpoint, shutdown, options).await
}

#[async_trait::async_trait]
impl S3 for S4S3 {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        buckets::list_buckets(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        buckets::create_bucket(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        buckets::delete_bucket(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        buckets::head_bucket(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        buckets::get_bucket_location(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        listing::list_objects(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        listing::list_objects_v2(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        objects::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        objects::head_object(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        objects::put_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        objects::delete_object(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        objects::delete_objects(self, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        objects::copy_object(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        uploads::create(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        uploads::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        uploads::upload_part_copy(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        uploads::complete(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        uploads::abort(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        uploads::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        uploads::list_uploads(self, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_credentials_differ() {
        let a = S3Credentials::random();
        let b = S3Credentials::random();
        assert_ne!(a, b);
        assert_eq!(a.access_key_id.len(), 20);
        assert_eq!(a.secret_access_key.len(), 40);
        assert!(!format!("{a:?}").contains(&a.secret_access_key));
    }

    #[test]
    fn credentials_from_env() {
        let none = S3Credentials::from_lookup(&|_| None);
        assert_eq!(none, Ok(None));
        let both = S3Credentials::from_lookup(&|n| Some(format!("v-{n}")));
        assert_eq!(
            both,
            Ok(Some(S3Credentials::new(
                "v-S4_S3_ACCESS_KEY_ID",
                "v-S4_S3_SECRET_ACCESS_KEY"
            )))
        );
        let one =
            S3Credentials::from_lookup(&|n| (n == "S4_S3_ACCESS_KEY_ID").then(|| "x".to_string()));
        assert!(one.is_err());
    }

    #[test]
    fn empty_expect_continue_requests() {
        let req = |headers: &[(&str, &str)]| {
            let mut b = http::Request::builder();
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap_or_default()
        };
        assert!(empty_expect_continue(&req(&[
            ("expect", "100-continue"),
            ("content-length", "0")
        ])));
        assert!(empty_expect_continue(&req(&[("expect", "100-Continue")])));
        assert!(!empty_expect_continue(&req(&[
            ("expect", "100-continue"),
            ("content-length", "3")
        ])));
        assert!(!empty_expect_continue(&req(&[
            ("expect", "100-continue"),
            ("transfer-encoding", "chunked")
        ])));
        assert!(!empty_expect_continue(&req(&[("content-length", "0")])));
    }

    #[tokio::test]
    async fn unknown_key_is_invalid_access_key_id() {
        let auth = SingleKey(S3Credentials::new("AK", "SK"));
        assert!(auth.get_secret_key("AK").await.is_ok());
        let err = auth.get_secret_key("OTHER").await.err();
        assert_eq!(
            err.map(|e| e.code().as_str().to_string()),
            Some("InvalidAccessKeyId".to_string())
        );
    }
}

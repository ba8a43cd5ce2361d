//! Object requests for keys that `object_store`'s `Path` cannot express.
//!
//! An S3 engine holds whatever other tools wrote: folder markers (`x/`), keys with a
//! leading `/`, empty segments (`a//b`) or `.`/`..` segments (`./a`). `Path` strips
//! or refuses them, so S4 could list such keys but not read or delete them. These
//! few requests (GET, HEAD, DELETE) address the key verbatim instead.
//!
//! They are signed by S4 (SigV4, `sign.rs`, sent by `request.rs`) rather than with `object_store`'s
//! `AwsAuthorizer`, because that signer re-parses the URL with WHATWG rules, which
//! drop `.` and `..` segments, so the signed path would differ from the path sent.
//! The path is encoded once with S3's rules (RFC 3986 unreserved characters and
//! `/` kept, everything else `%XX`) and that exact text is both sent and signed.
//!
//! Over direct `http://` the requests go through the quick-ACK hyper client, which
//! sends the path untouched. Over `https://` or a proxy they go through reqwest,
//! whose URL parser removes dot segments: keys with `.`/`..` segments are refused
//! there with a clear error rather than sent to the wrong key.

use std::ops::Range;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::request::{object_path, Call};
use super::sign::{has_dot_segment, header};
use super::S3Backend;
use crate::error::{from_s3_response, Error, ErrorKind, Result};
use crate::names::{BucketName, ObjectKey};
use crate::object::ObjectInfo;
use crate::storage::RawObject;

impl S3Backend {
    /// Sends one signed request for `key` and returns the response of a 2xx answer.
    pub(super) async fn raw_request(
        &self,
        method: http::Method,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<&Range<u64>>,
    ) -> Result<object_store::client::HttpResponse> {
        if !self.verbatim_paths() && has_dot_segment(key.as_str()) {
            return Err(Error::invalid(
                "Keys with '.' or '..' segments can only be addressed over direct http:// endpoints by this server.",
            )
            .with_code("InvalidKey"));
        }
        let mut call = Call::new(
            method.clone(),
            object_path(bucket.as_str(), Some(key.as_str())),
        );
        if let Some(range) = range {
            call = call.header(
                "range",
                format!("bytes={}-{}", range.start, range.end.saturating_sub(1)),
            );
        }
        let response = self.requests.send(&call).await?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        if method == http::Method::HEAD || status == 404 && method == http::Method::DELETE {
            let e = from_s3_response(status, "");
            return Err(if status == 404 {
                Error::not_found("Not Found").with_code("NotFound")
            } else {
                e
            });
        }
        let body = response.into_body().bytes().await.unwrap_or_default();
        Err(from_s3_response(status, &String::from_utf8_lossy(&body)))
    }

    pub(super) async fn raw_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<Range<u64>>,
        head: bool,
    ) -> Result<RawObject> {
        let method = if head {
            http::Method::HEAD
        } else {
            http::Method::GET
        };
        let response = self
            .raw_request(method, bucket, key, range.as_ref())
            .await?;
        let headers = response.headers();
        let length: u64 = header(headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // `Content-Range: bytes a-b/size` carries the whole size of a ranged read.
        let size = header(headers, "content-range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(length);
        let served = match &range {
            Some(r) => r.clone(),
            None if head => 0..size,
            None => 0..length,
        };
        let metadata = headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let info = ObjectInfo {
            key: key.as_str().to_string(),
            size,
            last_modified: header(headers, "last-modified")
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|t| t.with_timezone(&Utc)),
            etag: header(headers, "etag").map(str::to_string),
            content_type: header(headers, "content-type").map(str::to_string),
            metadata,
            storage_class: header(headers, "x-amz-storage-class").map(str::to_string),
        };
        let body = if head {
            futures::stream::empty().boxed()
        } else {
            response
                .into_body()
                .bytes_stream()
                .map_err(|e| {
                    Error::new(ErrorKind::Backend, "Storage backend read failed").with_source(e)
                })
                .boxed()
        };
        Ok(RawObject {
            info,
            range: served,
            body,
        })
    }

    pub(super) async fn raw_delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        match self
            .raw_request(http::Method::DELETE, bucket, key, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound && e.code() == Some("NotFound") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

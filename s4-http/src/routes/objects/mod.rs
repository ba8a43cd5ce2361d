//! Object routes (§12): list/search, upload, download, delete, view, metadata,
//! upload progress (SSE) and abort.
//!
//! Layout: key decoding and delete here; listing in `list.rs`, uploads (with
//! progress and abort) in `upload.rs`, downloads, views and metadata in `read.rs`.

mod list;
mod read;
mod upload;

/// Multipart upload bodies: see [`crate::multipart`].
pub(crate) use crate::multipart::{field_stream, first_file_field};
pub(crate) use list::list;
pub(crate) use read::{download, metadata, preview_json, view};
pub(crate) use upload::{abort_upload, upload, upload_progress};

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{CONTENT_LENGTH, IF_NONE_MATCH};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use s4_core::codec::decode_b64_text;
use s4_core::preview::{build_preview, needs_bytes, preview_kind, Preview, PREVIEW_LIMIT};
use s4_core::uploads::UploadStatus;
use s4_core::{
    BucketName, ByteRange, Error, ErrorKind, GetObjectOptions, ListOptions, ObjectKey, Prefix,
    PutObjectOptions, SearchMode, SearchOptions,
};
use serde_json::{json, Map, Value};

use super::{iso, sse, HandlerResult};
use crate::app::{App, Ctx};
use crate::body;
use crate::download::{self, FileMeta};
use crate::error::{client_closed, ApiError};
use crate::router::{KeyParams, ListParams, ObjectParams, ResourceParams};

fn audit(method: &str, bucket: &str, key: &str, ok: bool) {
    tracing::info!(target: "audit", action = method, resource = %format!("s3:{bucket}/{key}"), status = if ok { "success" } else { "failure" }, "object");
}

/// Decodes the `:encodedKey` parameter into text (§7.1).
fn decode_key_text(raw: &str) -> Result<String, ApiError> {
    let text = decode_b64_text(raw).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidKey",
            "Object key is not valid base64.",
        )
    })?;
    if text.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidKey",
            "Object key must not be empty.",
        ));
    }
    Ok(text)
}

/// Decodes and validates the `:encodedKey` parameter.
fn decode_key(raw: &str) -> Result<ObjectKey, ApiError> {
    Ok(ObjectKey::parse(&decode_key_text(raw)?)?)
}

fn invalid(name: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, name, message)
}

/// `DELETE /api/objects/:bucketName/:encodedKey` (§12.5).
pub(crate) async fn delete(app: &App, p: &ObjectParams) -> HandlerResult {
    let bucket = super::bucket_param(&p.bucket)?;
    let key = decode_key(&p.key)?;
    let result = app.s4().delete_object(&bucket, &key).await;
    audit(
        "DELETE",
        bucket.as_str(),
        key.as_str(),
        result.as_ref().is_ok_and(|o| o.failed.is_empty()),
    );
    let outcome = result?;
    if !outcome.folder {
        return Ok(body::ok(
            &json!({ "message": "Object deleted successfully" }),
        ));
    }
    let count = outcome.deleted.len();
    if outcome.failed.is_empty() {
        return Ok(body::ok(&json!({
            "message": format!("Successfully deleted {count} object(s)"),
            "count": count,
        })));
    }
    let errors: Vec<Value> = outcome
        .failed
        .iter()
        .map(|f| json!({ "key": f.key, "code": f.code, "message": f.message }))
        .collect();
    Ok(body::json(
        StatusCode::MULTI_STATUS,
        &json!({
            "message": format!("Deleted {count} object(s) with errors"),
            "count": count,
            "errors": errors,
        }),
    ))
}

fn is_raw(ctx: &Ctx) -> bool {
    matches!(ctx.query("raw"), Some("true" | "1"))
}

/// Property tests of the `:encodedKey` decoder: any segment gives a key or a 400
/// `InvalidKey`, and every valid key sent as Base64 comes back verbatim.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_segment_is_a_key_or_400(raw in prop_oneof![any::<String>(), "[A-Za-z0-9+/_=%.-]{0,40}"]) {
            match decode_key(&raw) {
                Ok(key) => prop_assert!(ObjectKey::parse(key.as_str()).is_ok()),
                Err(e) => {
                    prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                    prop_assert_eq!(e.name.as_str(), "InvalidKey");
                }
            }
        }

        #[test]
        fn encoded_keys_round_trip(key in prop_oneof![any::<String>(), "[a./ ]{1,8}"]) {
            let decoded = decode_key(&s4_core::codec::encode_b64_text(&key));
            match ObjectKey::parse(&key) {
                Ok(_) => prop_assert_eq!(decoded.ok().map(|k| k.as_str().to_string()), Some(key)),
                Err(_) => prop_assert!(decoded.is_err()),
            }
        }
    }
}

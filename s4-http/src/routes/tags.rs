//! Object tag routes (§12.9): `GET`, `PUT` and `DELETE /api/objects/tags/:bucketName/:encodedKey`.

use http::Request;
use hyper::body::Incoming;
use s4_core::codec::decode_b64_text;
use s4_core::tagging::{MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE};
use s4_core::{BucketName, ObjectKey};
use serde_json::{json, Value};

use super::HandlerResult;
use crate::app::App;
use crate::body;
use crate::error::ApiError;
use crate::router::ObjectParams;

fn audit(method: &str, bucket: &str, key: &str, ok: bool) {
    tracing::info!(target: "audit", action = method, resource = %format!("s3:{bucket}/{key}"), status = if ok { "success" } else { "failure" }, "object tags");
}

fn target(p: &ObjectParams) -> Result<(BucketName, ObjectKey), ApiError> {
    let invalid_key = |m: &str| ApiError::new(http::StatusCode::BAD_REQUEST, "InvalidKey", m);
    let bucket = BucketName::parse(&p.bucket).map_err(|e| {
        ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            e.message(),
        )
    })?;
    let text =
        decode_b64_text(&p.key).map_err(|_| invalid_key("Object key is not valid base64."))?;
    if text.is_empty() {
        return Err(invalid_key("Object key must not be empty."));
    }
    Ok((bucket, ObjectKey::parse(&text)?))
}

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// Validates a `PUT` body against the §12.9 schema (§3.4 messages).
fn parse_body(value: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |m: String| ApiError::bad_request(m);
    let Some(object) = value.as_object() else {
        return Err(bad("body must be object".into()));
    };
    let Some(tags) = object.get("tags") else {
        return Err(bad("body must have required property 'tags'".into()));
    };
    let Some(tags) = tags.as_array() else {
        return Err(bad("body/tags must be array".into()));
    };
    if tags.len() > MAX_TAGS {
        return Err(bad(format!(
            "body/tags must NOT have more than {MAX_TAGS} items"
        )));
    }
    let mut out = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let Some(tag) = tag.as_object() else {
            return Err(bad(format!("body/tags/{i} must be object")));
        };
        let field = |name: &str| -> Result<String, ApiError> {
            match tag.get(name) {
                None => Err(bad(format!(
                    "body/tags/{i} must have required property '{name}'"
                ))),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(bad(format!("body/tags/{i}/{name} must be string"))),
            }
        };
        let key = field("Key")?;
        let value = field("Value")?;
        if key.is_empty() {
            return Err(bad(format!(
                "body/tags/{i}/Key must NOT have fewer than 1 characters"
            )));
        }
        if key.chars().count() > MAX_TAG_KEY {
            return Err(bad(format!(
                "body/tags/{i}/Key must NOT have more than {MAX_TAG_KEY} characters"
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(bad(format!(
                "body/tags/{i}/Value must NOT have more than {MAX_TAG_VALUE} characters"
            )));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// `GET /api/objects/tags/:bucketName/:encodedKey`.
pub(crate) async fn get(app: &App, p: &ObjectParams) -> HandlerResult {
    let (bucket, key) = target(p)?;
    let result = app.s4().get_object_tags(&bucket, &key).await;
    audit("GET", bucket.as_str(), key.as_str(), result.is_ok());
    Ok(body::ok(&json!({ "tags": tags_json(&result?) })))
}

/// `PUT /api/objects/tags/:bucketName/:encodedKey`.
pub(crate) async fn put(app: &App, request: Request<Incoming>, p: &ObjectParams) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    let tags = parse_body(&value)?;
    let (bucket, key) = target(p)?;
    let result = app.s4().put_object_tags(&bucket, &key, &tags).await;
    audit("PUT", bucket.as_str(), key.as_str(), result.is_ok());
    result?;
    Ok(body::ok(&json!({
        "message": "Tags updated successfully",
        "tags": tags_json(&tags),
    })))
}

/// `DELETE /api/objects/tags/:bucketName/:encodedKey`.
pub(crate) async fn delete(app: &App, p: &ObjectParams) -> HandlerResult {
    let (bucket, key) = target(p)?;
    let result = app.s4().delete_object_tags(&bucket, &key).await;
    audit("DELETE", bucket.as_str(), key.as_str(), result.is_ok());
    result?;
    Ok(body::ok(&json!({ "message": "Tags deleted successfully" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_table() {
        let long = |n: usize| "x".repeat(n);
        let ok = [
            json!({ "tags": [] }),
            json!({ "tags": [{ "Key": "project", "Value": "llm" }] }),
            json!({ "tags": [{ "Key": long(128), "Value": long(256) }] }),
            json!({ "tags": [{ "Key": "k", "Value": "" }] }),
        ];
        for body in ok {
            assert!(parse_body(&body).is_ok(), "{body}");
        }
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({ "Key": format!("k{i}"), "Value": "v" }))
            .collect();
        let bad = [
            (json!(null), "body must be object"),
            (json!({}), "body must have required property 'tags'"),
            (json!({ "tags": "x" }), "body/tags must be array"),
            (
                json!({ "tags": eleven }),
                "body/tags must NOT have more than 10 items",
            ),
            (json!({ "tags": [1] }), "body/tags/0 must be object"),
            (
                json!({ "tags": [{ "Value": "v" }] }),
                "body/tags/0 must have required property 'Key'",
            ),
            (
                json!({ "tags": [{ "Key": "k" }] }),
                "body/tags/0 must have required property 'Value'",
            ),
            (
                json!({ "tags": [{ "Key": 1, "Value": "v" }] }),
                "body/tags/0/Key must be string",
            ),
            (
                json!({ "tags": [{ "Key": "", "Value": "v" }] }),
                "body/tags/0/Key must NOT have fewer than 1 characters",
            ),
            (
                json!({ "tags": [{ "Key": long(129), "Value": "v" }] }),
                "body/tags/0/Key must NOT have more than 128 characters",
            ),
            (
                json!({ "tags": [{ "Key": "k", "Value": long(257) }] }),
                "body/tags/0/Value must NOT have more than 256 characters",
            ),
        ];
        for (body, message) in bad {
            let e = parse_body(&body).expect_err("invalid");
            assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
            assert_eq!(e.name, "Bad Request");
            assert_eq!(e.message, message);
        }
    }
}

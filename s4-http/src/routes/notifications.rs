//! Notification routes (§14): per-bucket webhook configurations and the endpoint
//! test. Storage, matching and delivery live in `s4_core::notify`; this module
//! validates the request schema (§14.2 table → 400) and renders the answers.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use s4_core::notify::{valid_endpoint, NotificationEntry, EVENT_PATTERNS};
use s4_core::BucketName;
use serde_json::{json, Map, Value};

use super::buckets::schema_bucket_name;
use super::HandlerResult;
use crate::app::App;
use crate::body;
use crate::error::ApiError;
use crate::router::{BucketParams, NotificationParams};

const ENDPOINT_PATTERN: &str = "must match pattern \"^https?://.+\"";

fn bucket_param(raw: &str) -> Result<BucketName, ApiError> {
    let raw = Value::String(raw.to_string());
    schema_bucket_name("params/bucketName", Some(&raw))
}

/// `GET /api/notifications/:bucketName`.
pub(crate) async fn get(app: &App, p: &BucketParams) -> HandlerResult {
    let bucket = bucket_param(&p.bucket)?;
    let entries: Vec<NotificationEntry> = app
        .s4()
        .notifications()
        .list(&bucket)
        .await
        .iter()
        .map(NotificationEntry::redacted)
        .collect();
    Ok(body::ok(&json!({ "notifications": entries })))
}

/// `PUT /api/notifications/:bucketName`: replaces the bucket's list.
pub(crate) async fn put(app: &App, request: Request<Incoming>, p: &BucketParams) -> HandlerResult {
    let bucket = bucket_param(&p.bucket)?;
    let value = body::read_json_value(request).await?;
    let entries = parse_entries(&value)?;
    let result = app.s4().notifications().replace(&bucket, entries).await;
    tracing::info!(target: "audit", action = "PUT", resource = %format!("notifications:{bucket}"), status = if result.is_ok() { "success" } else { "failure" }, "update notifications");
    result?;
    Ok(body::ok(
        &json!({ "message": "Notification configuration updated successfully" }),
    ))
}

/// `DELETE /api/notifications/:bucketName/:notificationId`.
pub(crate) async fn delete(app: &App, p: &NotificationParams) -> HandlerResult {
    let bucket = bucket_param(&p.bucket)?;
    let id = p.id.as_str();
    if id.is_empty() {
        return Err(ApiError::bad_request(
            "params/notificationId must NOT have fewer than 1 characters",
        ));
    }
    let result = app.s4().notifications().remove(&bucket, id).await;
    tracing::info!(target: "audit", action = "DELETE", resource = %format!("notifications:{bucket}/{id}"), status = if result.is_ok() { "success" } else { "failure" }, "remove notification");
    result?;
    Ok(body::ok(
        &json!({ "message": "Notification removed successfully" }),
    ))
}

/// `POST /api/notifications/test-endpoint`.
pub(crate) async fn test_endpoint(app: &App, request: Request<Incoming>) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request("body must be object"));
    };
    let endpoint = match object.get("endpoint") {
        None => {
            return Err(ApiError::bad_request(
                "body must have required property 'endpoint'",
            ))
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::bad_request("body/endpoint must be string")),
    };
    if !valid_endpoint(endpoint) {
        return Err(ApiError::bad_request(format!(
            "body/endpoint {ENDPOINT_PATTERN}"
        )));
    }
    let outcome = app.s4().notifications().test_endpoint(endpoint).await;
    tracing::info!(target: "audit", action = "POST", resource = %format!("webhook:{endpoint}"), status = if outcome.is_ok() { "success" } else { "failure" }, "test notification endpoint");
    match outcome {
        Ok(status) => {
            let mut out = json!({
                "success": true,
                "statusCode": status,
                "message": format!("Endpoint responded with status {status}"),
            });
            if !(200..300).contains(&status) {
                out["warning"] = json!(format!("Endpoint returned non-success status {status}"));
            }
            Ok(body::ok(&out))
        }
        Err(unreachable) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EndpointUnreachable",
            format!("Failed to reach endpoint: {unreachable}"),
        )
        .with_field("success", json!(false))),
    }
}

/// Validates a PUT body against the §14.2 table (values of the wrong JSON type
/// are rejected, never coerced).
fn parse_entries(value: &Value) -> Result<Vec<NotificationEntry>, ApiError> {
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request("body must be object"));
    };
    let list = match object.get("notifications") {
        None => {
            return Err(ApiError::bad_request(
                "body must have required property 'notifications'",
            ))
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::bad_request("body/notifications must be array")),
    };
    list.iter()
        .enumerate()
        .map(|(i, item)| parse_entry(&format!("body/notifications/{i}"), item))
        .collect()
}

fn parse_entry(at: &str, item: &Value) -> Result<NotificationEntry, ApiError> {
    let Some(fields) = item.as_object() else {
        return Err(ApiError::bad_request(format!("{at} must be object")));
    };
    let endpoint = required_string(at, fields, "endpoint")?;
    if !valid_endpoint(&endpoint) {
        return Err(ApiError::bad_request(format!(
            "{at}/endpoint {ENDPOINT_PATTERN}"
        )));
    }
    let events = match fields.get("events") {
        None => {
            return Err(ApiError::bad_request(format!(
                "{at} must have required property 'events'"
            )))
        }
        Some(Value::Array(events)) => events,
        Some(_) => return Err(ApiError::bad_request(format!("{at}/events must be array"))),
    };
    if events.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{at}/events must NOT have fewer than 1 items"
        )));
    }
    let mut names = Vec::with_capacity(events.len());
    for (j, event) in events.iter().enumerate() {
        let Some(name) = event.as_str() else {
            return Err(ApiError::bad_request(format!(
                "{at}/events/{j} must be string"
            )));
        };
        if !EVENT_PATTERNS.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "{at}/events/{j} must be equal to one of the allowed values"
            )));
        }
        names.push(name.to_string());
    }
    Ok(NotificationEntry {
        id: optional_string(at, fields, "id")?.unwrap_or_default(),
        endpoint,
        events: names,
        prefix: optional_string(at, fields, "prefix")?,
        suffix: optional_string(at, fields, "suffix")?,
        secret: optional_string(at, fields, "secret")?,
    })
}

fn required_string(at: &str, fields: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match fields.get(name) {
        None => Err(ApiError::bad_request(format!(
            "{at} must have required property '{name}'"
        ))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!("{at}/{name} must be string"))),
    }
}

fn optional_string(
    at: &str,
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{at}/{name} must be string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(value: Value) -> String {
        parse_entries(&value).expect_err("invalid").message
    }

    #[test]
    fn validation_table() {
        let ok = json!({ "endpoint": "http://h/x", "events": ["s3:ObjectCreated:*"] });
        assert_eq!(message(json!([])), "body must be object");
        assert_eq!(
            message(json!({})),
            "body must have required property 'notifications'"
        );
        assert_eq!(
            message(json!({ "notifications": {} })),
            "body/notifications must be array"
        );
        assert_eq!(
            message(json!({ "notifications": [ok, 5] })),
            "body/notifications/1 must be object"
        );
        assert!(
            message(json!({ "notifications": [{ "events": ["s3:ObjectCreated:*"] }] }))
                .contains("required property 'endpoint'")
        );
        assert!(message(
            json!({ "notifications": [{ "endpoint": "ftp://h", "events": ["s3:ObjectCreated:*"] }] })
        )
        .contains("must match pattern"));
        assert!(
            message(json!({ "notifications": [{ "endpoint": "http://h" }] }))
                .contains("required property 'events'")
        );
        assert!(
            message(json!({ "notifications": [{ "endpoint": "http://h", "events": [] }] }))
                .contains("fewer than 1 items")
        );
        assert!(message(
            json!({ "notifications": [{ "endpoint": "http://h", "events": ["s3:ObjectCreated:Put"] }] })
        )
        .contains("allowed values"));
        for field in ["id", "prefix", "suffix", "secret"] {
            let mut entry = ok.clone();
            entry[field] = json!(1);
            assert_eq!(
                message(json!({ "notifications": [entry] })),
                format!("body/notifications/0/{field} must be string")
            );
        }
        let parsed = parse_entries(&json!({ "notifications": [ok] })).expect("valid");
        assert_eq!(parsed[0].endpoint, "http://h/x");
        assert_eq!(parsed[0].id, "");
    }
}

//! Bucket routes (§11): list, create, delete.

use http::Request;
use hyper::body::Incoming;
use s4_core::names::BucketNameError;
use s4_core::storage::BucketOwner;
use s4_core::BucketName;
use serde_json::{json, Value};

use super::{iso, HandlerResult};
use crate::app::App;
use crate::body;
use crate::error::ApiError;
use crate::router::BucketParams;

/// `GET /api/buckets`.
pub(crate) async fn list(app: &App) -> HandlerResult {
    let listing = app.s4().list_buckets().await?;
    let buckets: Vec<Value> = listing
        .buckets
        .iter()
        .map(|b| {
            let mut entry = json!({ "Name": b.name });
            if let Some(created) = &b.created {
                entry["CreationDate"] = json!(iso(created));
            }
            entry
        })
        .collect();
    let mut out = json!({
        "defaultBucket": default_bucket(app),
        "buckets": buckets,
    });
    // Always present (§11.1): the engine's owner record, else S4's own.
    let owner = listing.owner.unwrap_or_else(|| BucketOwner {
        display_name: "S4".to_string(),
        id: "s4".to_string(),
    });
    out["owner"] = json!({ "DisplayName": owner.display_name, "ID": owner.id });
    Ok(body::ok(&out))
}

/// The default bucket: the runtime S3 setting (§16.2), else the start-up value.
fn default_bucket(app: &App) -> String {
    let runtime = app.settings().s3().default_bucket;
    if runtime.is_empty() {
        app.config().default_bucket.clone()
    } else {
        runtime
    }
}

/// Schema-style validation message for a bucket name in a body or path (§3.4, §7.2).
pub(crate) fn schema_bucket_name(
    location: &str,
    value: Option<&Value>,
) -> Result<BucketName, ApiError> {
    let field = location.rsplit('/').next().unwrap_or(location);
    let parent = location.split('/').next().unwrap_or(location);
    let name = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(format!(
                "{parent} must have required property '{field}'"
            )))
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::bad_request(format!("{location} must be string"))),
    };
    BucketName::parse(name).map_err(|e| {
        ApiError::bad_request(match e {
            BucketNameError::Missing | BucketNameError::Length if name.len() < 3 => {
                format!("{location} must NOT have fewer than 3 characters")
            }
            BucketNameError::Missing | BucketNameError::Length => {
                format!("{location} must NOT have more than 63 characters")
            }
            BucketNameError::Format => {
                format!("{location} must match pattern \"^[a-z0-9][a-z0-9-]*[a-z0-9]$\"")
            }
            BucketNameError::Pattern => format!("{location} must not contain \"--\""),
        })
    })
}

/// `POST /api/buckets`.
pub(crate) async fn create(app: &App, request: Request<Incoming>) -> HandlerResult {
    let value = body::read_json_value(request).await?;
    if !value.is_object() {
        return Err(ApiError::bad_request("body must be object"));
    }
    let bucket = schema_bucket_name("body/bucketName", value.get("bucketName"))?;
    let result = app.s4().create_bucket(&bucket).await;
    tracing::info!(target: "audit", action = "POST", resource = %format!("s3:{bucket}"), status = if result.is_ok() { "success" } else { "failure" }, "create bucket");
    let created = result?;
    let mut data = json!({});
    if let Some(location) = created.location {
        data["Location"] = json!(location);
    }
    Ok(body::ok(&json!({
        "message": "Bucket created successfully",
        "data": data,
    })))
}

/// `DELETE /api/buckets/:bucketName`.
pub(crate) async fn delete(app: &App, p: &BucketParams) -> HandlerResult {
    let bucket = super::bucket_param(&p.bucket)?;
    let result = app.s4().delete_bucket(&bucket).await;
    tracing::info!(target: "audit", action = "DELETE", resource = %format!("s3:{bucket}"), status = if result.is_ok() { "success" } else { "failure" }, "delete bucket");
    result?;
    Ok(body::ok(
        &json!({ "message": "Bucket deleted successfully" }),
    ))
}

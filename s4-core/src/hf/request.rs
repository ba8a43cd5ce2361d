//! The import request of API §13.1: parsing, validation, destination mapping.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::names::{BucketName, ObjectKey};

fn validation(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid(message).with_code("ValidationError")
}

/// Where an import writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportDestination {
    /// A bucket, under an optional key prefix (no trailing `/`).
    S3 {
        /// The bucket.
        bucket: BucketName,
        /// Key prefix without trailing `/` (may be empty).
        prefix: String,
    },
    /// A local location, under a directory (no trailing `/`).
    Local {
        /// `local-<n>`.
        location_id: String,
        /// Directory inside the location (may be empty).
        path: String,
    },
}

/// Where one file of the model goes (API §13.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDestination {
    /// An object.
    S3 {
        /// The bucket.
        bucket: BucketName,
        /// `[<prefix>/]<modelId>/<file>`.
        key: ObjectKey,
    },
    /// A file of a local location.
    Local {
        /// `local-<n>`.
        location_id: String,
        /// `[<localPath>/]<modelId>/<file>`.
        path: String,
    },
}

/// include/exclude glob patterns (API §13.1): `*` and `?` stay inside one
/// `/`-segment, `**` crosses segments; exclude wins over include.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn glob_set(field: &str, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| validation(format!("{field}: invalid pattern {pattern:?}: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| validation(format!("{field}: {e}")))
}

impl FileFilter {
    /// Compiles the patterns.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] (code `ValidationError`) for a bad pattern.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        Ok(FileFilter {
            include: glob_set("include", include)?,
            exclude: glob_set("exclude", exclude)?,
        })
    }

    /// Whether the repository-relative `path` is imported.
    pub fn accepts(&self, path: &str) -> bool {
        let included = self.include.as_ref().is_none_or(|set| set.is_match(path));
        let excluded = self.exclude.as_ref().is_some_and(|set| set.is_match(path));
        included && !excluded
    }
}

/// A validated `POST /objects/huggingface-import` body.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// `owner/name` or `name`.
    pub model_id: String,
    /// Where files go.
    pub destination: ImportDestination,
    /// Token overriding the configured one (non-empty), if any.
    pub hf_token: Option<String>,
    /// Branch, tag or commit (default `main`).
    pub revision: String,
    /// include patterns as given.
    pub include: Vec<String>,
    /// exclude patterns as given.
    pub exclude: Vec<String>,
    /// The compiled patterns.
    pub filter: FileFilter,
}

/// Whether `id` is a valid model id: `^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`
/// without `..`.
pub fn valid_model_id(id: &str) -> bool {
    let segment = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if id.contains("..") {
        return false;
    }
    match id.split_once('/') {
        Some((owner, name)) => segment(owner) && segment(name),
        None => segment(id),
    }
}

/// Whether `rev` is a valid revision: `^[A-Za-z0-9][A-Za-z0-9._/-]*$`, no `..`, at
/// most 256 characters.
pub fn valid_revision(rev: &str) -> bool {
    let mut chars = rev.chars();
    rev.len() <= 256
        && !rev.contains("..")
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
}

/// The lexical checks of §7.3 on a local directory (`Invalid local storage path: ...`).
fn check_local_path(path: &str) -> Result<()> {
    let reason = if path.contains('\\') {
        Some("Backslash characters not allowed in paths")
    } else if path.contains('\0') {
        Some("Null bytes not allowed in paths")
    } else if path.starts_with('/') {
        Some("Absolute paths not allowed")
    } else {
        let mut depth: i64 = 0;
        let mut escapes = false;
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    depth -= 1;
                    escapes |= depth < 0;
                }
                _ => depth += 1,
            }
        }
        escapes.then_some("Path escapes allowed directory")
    };
    match reason {
        Some(reason) => Err(validation(format!("Invalid local storage path: {reason}"))),
        None => Ok(()),
    }
}

fn string_list(object: &Map<String, Value>, field: &str) -> Result<Vec<String>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::String(_) => Err(validation(format!(
                    "{field} must not contain empty patterns"
                ))),
                _ => Err(validation(format!("{field} must be an array of strings"))),
            })
            .collect(),
        Some(_) => Err(validation(format!("{field} must be an array of strings"))),
    }
}

fn optional_string<'a>(object: &'a Map<String, Value>, names: &[&str]) -> Result<Option<&'a str>> {
    for name in names {
        match object.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(_) => return Err(validation(format!("{name} must be a string"))),
        }
    }
    Ok(None)
}

impl ImportRequest {
    /// Parses and validates a request body in the order of §13.1 (the location
    /// permission check and the Hub checks are the caller's). `revision`, `include`
    /// and `exclude` are checked here too, before any Hub call.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] with code `ValidationError` and the
    /// contract's message.
    pub fn parse(body: &Value) -> Result<Self> {
        let empty = Map::new();
        let object = body.as_object().unwrap_or(&empty);
        let model_error = || validation("modelId must be of the form owner/name");
        let model_id = optional_string(object, &["modelId", "hfRepoId"])
            .map_err(|_| model_error())?
            .map(str::trim)
            .filter(|m| valid_model_id(m))
            .ok_or_else(model_error)?
            .to_string();
        let destination_type = match object.get("destinationType") {
            None | Some(Value::Null) => "s3",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => "",
        };
        let destination = match destination_type {
            "s3" => {
                let bucket = match object.get("bucketName") {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    _ => {
                        return Err(validation("bucketName is required for S3 destination"));
                    }
                };
                let bucket = BucketName::try_from(bucket.as_str())
                    .map_err(|e| validation(format!("bucketName: {}", e.message())))?;
                let prefix = optional_string(object, &["prefix", "s3Prefix"])?
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                ImportDestination::S3 { bucket, prefix }
            }
            "local" => {
                let id = optional_string(object, &["localLocationId"]).ok().flatten();
                let path = optional_string(object, &["localPath"]).ok().flatten();
                let (Some(id), Some(path)) = (id.filter(|i| !i.is_empty()), path) else {
                    return Err(validation(
                        "localLocationId and localPath are required for local destination",
                    ));
                };
                let path = path.trim_end_matches('/');
                check_local_path(path)?;
                ImportDestination::Local {
                    location_id: id.to_string(),
                    path: path.to_string(),
                }
            }
            _ => return Err(validation("destinationType must be 's3' or 'local'")),
        };
        let hf_token = optional_string(object, &["hfToken"])?
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let revision = match object.get("revision") {
            None | Some(Value::Null) => "main".to_string(),
            Some(Value::String(r)) if valid_revision(r) => r.clone(),
            Some(Value::String(_)) => {
                return Err(validation(
                    "revision must match ^[A-Za-z0-9][A-Za-z0-9._/-]*$, contain no '..' and have at most 256 characters",
                ))
            }
            Some(_) => return Err(validation("revision must be a string")),
        };
        let include = string_list(object, "include")?;
        let exclude = string_list(object, "exclude")?;
        let filter = FileFilter::new(&include, &exclude)?;
        Ok(ImportRequest {
            model_id,
            destination,
            hf_token,
            revision,
            include,
            exclude,
            filter,
        })
    }

    /// Where the repository file `file` goes (API §13.3).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the resulting key is not valid.
    pub fn destination_of(&self, file: &str) -> Result<FileDestination> {
        let join = |base: &str| {
            if base.is_empty() {
                format!("{}/{file}", self.model_id)
            } else {
                format!("{base}/{}/{file}", self.model_id)
            }
        };
        Ok(match &self.destination {
            ImportDestination::S3 { bucket, prefix } => FileDestination::S3 {
                bucket: bucket.clone(),
                key: ObjectKey::try_from(join(prefix).as_str())?,
            },
            ImportDestination::Local { location_id, path } => FileDestination::Local {
                location_id: location_id.clone(),
                path: join(path),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> String {
        ImportRequest::parse(&body)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.message().to_string())
    }

    #[test]
    fn model_ids() {
        assert!(valid_model_id("meta-llama/Llama-2-7b-hf"));
        assert!(valid_model_id("gpt2"));
        assert!(!valid_model_id("a/b/c"));
        assert!(!valid_model_id("a..b"));
        assert!(!valid_model_id("-a"));
        assert!(!valid_model_id(""));
        assert!(!valid_model_id("a/"));
    }

    #[test]
    fn validation_order_and_messages() {
        assert_eq!(message(json!({})), "modelId must be of the form owner/name");
        assert_eq!(
            message(json!({"modelId": 5})),
            "modelId must be of the form owner/name"
        );
        assert_eq!(
            message(json!({"modelId": "a/b", "destinationType": "ftp"})),
            "destinationType must be 's3' or 'local'"
        );
        assert_eq!(
            message(json!({"modelId": "a/b"})),
            "bucketName is required for S3 destination"
        );
        assert_eq!(
            message(
                json!({"modelId": "a/b", "destinationType": "local", "localLocationId": "local-0"})
            ),
            "localLocationId and localPath are required for local destination"
        );
        assert!(message(
            json!({"modelId": "a/b", "destinationType": "local", "localLocationId": "local-0", "localPath": "../x"})
        )
        .starts_with("Invalid local storage path: "));
        assert!(
            message(json!({"hfRepoId": "a/b", "bucketName": "bkt", "revision": "a..b"}))
                .starts_with("revision")
        );
        assert!(
            message(json!({"hfRepoId": "a/b", "bucketName": "bkt", "include": "x"}))
                .starts_with("include")
        );
        assert!(
            message(json!({"hfRepoId": "a/b", "bucketName": "bkt", "exclude": ["a[" ]}))
                .starts_with("exclude")
        );
        let err = ImportRequest::parse(&json!({})).expect_err("invalid");
        assert_eq!(err.code(), Some("ValidationError"));
    }

    #[test]
    fn aliases_defaults_and_mapping() {
        let req = ImportRequest::parse(
            &json!({"hfRepoId": "meta-llama/Llama-2-7b-hf", "bucketName": "models", "s3Prefix": "llms/"}),
        )
        .expect("valid");
        assert_eq!(req.revision, "main");
        assert_eq!(
            req.destination_of("config.json").expect("key"),
            FileDestination::S3 {
                bucket: BucketName::try_from("models").expect("bucket"),
                key: ObjectKey::try_from("llms/meta-llama/Llama-2-7b-hf/config.json").expect("key"),
            }
        );
        let local = ImportRequest::parse(&json!({
            "modelId": "gpt2", "destinationType": "local",
            "localLocationId": "local-0", "localPath": "", "revision": "refs/pr/1"
        }))
        .expect("valid");
        assert_eq!(
            local.destination_of("sub/w.bin").expect("path"),
            FileDestination::Local {
                location_id: "local-0".into(),
                path: "gpt2/sub/w.bin".into()
            }
        );
    }

    #[test]
    fn globs() {
        let f = FileFilter::new(
            &["*.json".into(), "**/*.safetensors".into()],
            &["*tok*".into()],
        )
        .expect("valid");
        assert!(f.accepts("config.json"));
        assert!(!f.accepts("sub/config.json"), "* stays in one segment");
        assert!(f.accepts("model.safetensors"));
        assert!(f.accepts("a/b/model.safetensors"));
        assert!(!f.accepts("tokenizer.json"), "exclude wins");
        assert!(!f.accepts("README.md"));
        let all = FileFilter::new(&[], &[]).expect("valid");
        assert!(all.accepts("anything/at/all"));
        let q = FileFilter::new(&["model-0000?.bin".into()], &[]).expect("valid");
        assert!(q.accepts("model-00001.bin"));
        assert!(!q.accepts("model-0000/.bin"));
    }
}

//! Item expansion (§15.1) and the destination side of check-conflicts (§15.7).

use std::collections::HashSet;

use super::{Endpoint, ItemKind, Place, TransferRequest, EXPANSION_FAILED, WARN_BYTES, WARN_FILES};
use crate::error::{Error, ErrorKind, Result};
use crate::location::{format_size, WalkEntry, FORBIDDEN};
use crate::names::{BucketName, ObjectKey};
use crate::storage::PageRequest;
use crate::S4;

/// Keys per listing page while expanding.
const LIST_PAGE: usize = 1000;

/// One expansion entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Path relative to the source base path.
    pub(crate) rel: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// An empty-directory marker (`<dir>/.s3keep`, nothing to read).
    pub(crate) marker: bool,
}

/// The large-operation warning of check-conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeWarning {
    /// Entries (markers included).
    pub file_count: usize,
    /// Σ sizes.
    pub total_size: u64,
    /// `This operation will transfer N files (X). This may take significant time.`
    pub message: String,
}

/// Result of [`super::Transfers::check_conflicts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictReport {
    /// Entries (relative to the source base path) existing at the destination.
    pub conflicts: Vec<String>,
    /// Entries that do not.
    pub non_conflicting: Vec<String>,
    /// Present for ≥ 1000 entries or ≥ 10 GiB.
    pub warning: Option<LargeWarning>,
}

fn failed(message: String) -> Error {
    Error::new(ErrorKind::Internal, message).with_code(EXPANSION_FAILED)
}

fn http_status(e: &Error) -> String {
    e.backend_status()
        .map_or_else(|| "unknown".to_string(), |s| s.to_string())
}

/// Strips `base/` from a full path (`base` empty: unchanged).
fn relative(base: &str, full: &str) -> String {
    if base.is_empty() {
        full.to_string()
    } else {
        full.strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(full)
            .to_string()
    }
}

async fn metadata_permit(s4: &S4) -> Result<tokio::sync::SemaphorePermit<'_>> {
    s4.transfer_state()
        .metadata
        .acquire()
        .await
        .map_err(|_| Error::internal("transfer metadata limiter closed"))
}

/// Every key under `prefix` (no delimiter), with sizes.
pub(crate) async fn list_all(
    s4: &S4,
    bucket: &BucketName,
    prefix: &str,
) -> Result<Vec<(String, u64)>> {
    let checked_prefix = crate::names::Prefix::parse(prefix)?;
    s4.check_prefix(&checked_prefix)?;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = {
            let _permit = metadata_permit(s4).await?;
            s4.backend()
                .list_page(
                    bucket,
                    &PageRequest {
                        prefix: checked_prefix.clone(),
                        delimited: false,
                        max_keys: LIST_PAGE,
                        token: token.take(),
                    },
                )
                .await?
        };
        out.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Expands the request's items into entries, in order, duplicates collapsed.
pub(crate) async fn expand(s4: &S4, request: &TransferRequest) -> Result<Vec<Entry>> {
    let source = &request.source;
    let to_bucket = matches!(request.destination.place, Place::Bucket(_));
    let mut out: Vec<Entry> = Vec::new();
    for item in &request.items {
        let item_path = match item.kind {
            ItemKind::File => item.path.clone(),
            ItemKind::Directory => item.path.trim_end_matches('/').to_string(),
        };
        let full = source.join(&item_path);
        match (&source.place, item.kind) {
            (Place::Bucket(bucket), ItemKind::File) => {
                let key = ObjectKey::try_from(full.as_str())?;
                let head = {
                    let _permit = metadata_permit(s4).await?;
                    s4.head_object(bucket, &key).await
                };
                match head {
                    Ok(info) => out.push(Entry {
                        rel: item_path,
                        size: info.size,
                        marker: false,
                    }),
                    Err(e) => return Err(head_failure(e, &full, bucket)),
                }
            }
            (Place::Bucket(bucket), ItemKind::Directory) => {
                let prefix = format!("{full}/");
                let keys = list_all(s4, bucket, &prefix)
                    .await
                    .map_err(|e| list_failure(e, &prefix, bucket))?;
                for (key, size) in keys {
                    if key.ends_with('/') {
                        continue;
                    }
                    out.push(Entry {
                        rel: relative(&source.path, &key),
                        size,
                        marker: false,
                    });
                }
            }
            (Place::Local(id), ItemKind::File) => {
                let size = s4
                    .locations()
                    .file_size(id, &full)
                    .await
                    .map_err(|e| local_failure(e, &item.path, "file"))?
                    .ok_or_else(|| {
                        failed(format!("File not found in local storage: {}", item.path))
                    })?;
                out.push(Entry {
                    rel: item_path,
                    size,
                    marker: false,
                });
            }
            (Place::Local(id), ItemKind::Directory) => {
                let walked = s4
                    .locations()
                    .walk(id, &full)
                    .await
                    .map_err(|e| local_failure(e, &item.path, "directory"))?
                    .ok_or_else(|| {
                        failed(format!(
                            "Directory not found in local storage: {}",
                            item.path
                        ))
                    })?;
                for entry in walked {
                    match entry {
                        WalkEntry::File { path, size } => out.push(Entry {
                            rel: relative(&source.path, &path),
                            size,
                            marker: false,
                        }),
                        WalkEntry::EmptyDir { path } if to_bucket => out.push(Entry {
                            rel: format!("{}/.s3keep", relative(&source.path, &path)),
                            size: 0,
                            marker: true,
                        }),
                        WalkEntry::EmptyDir { .. } => {}
                    }
                }
            }
        }
    }
    let mut seen = HashSet::new();
    out.retain(|e| seen.insert(e.rel.clone()));
    Ok(out)
}

fn head_failure(e: Error, key: &str, bucket: &BucketName) -> Error {
    if e.code() == Some("NoSuchBucket") {
        return failed(format!("S3 bucket not found: {bucket}"));
    }
    match e.kind() {
        ErrorKind::NotFound => failed(format!("File not found in S3: {key}")),
        ErrorKind::PermissionDenied => failed(format!(
            "Access denied to S3 file: {key} in bucket {bucket}"
        )),
        ErrorKind::InvalidInput => e,
        _ => failed(format!(
            "S3 error accessing file {key}: {} (HTTP {})",
            e.message(),
            http_status(&e)
        )),
    }
}

fn list_failure(e: Error, prefix: &str, bucket: &BucketName) -> Error {
    if e.code() == Some("NoSuchBucket") {
        return failed(format!("S3 bucket not found: {bucket}"));
    }
    match e.kind() {
        ErrorKind::PermissionDenied => failed(format!(
            "Access denied to S3 directory: {prefix} in bucket {bucket}"
        )),
        _ => failed(format!(
            "S3 error listing directory {prefix}: {} (HTTP {})",
            e.message(),
            http_status(&e)
        )),
    }
}

/// Local errors: §7.3 refusals (traversal, unknown location) keep their status;
/// the rest become the expansion messages of §15.1.
fn local_failure(e: Error, item: &str, what: &str) -> Error {
    let forbidden = e.code() == Some(FORBIDDEN);
    match e.kind() {
        ErrorKind::PermissionDenied if !forbidden => {
            failed(format!("Permission denied accessing {what}: {item}"))
        }
        ErrorKind::InvalidInput if e.message().starts_with("Path too long") => {
            failed(e.message().to_string())
        }
        ErrorKind::InvalidInput if what == "file" => failed(format!("Path is not a file: {item}")),
        ErrorKind::InvalidInput => failed(format!("Path is not a directory: {item}")),
        _ => e,
    }
}

/// Relative paths of everything under the destination base path.
async fn destination_set(s4: &S4, destination: &Endpoint) -> Result<HashSet<String>> {
    match &destination.place {
        Place::Bucket(bucket) => {
            let prefix = if destination.path.is_empty() {
                String::new()
            } else {
                format!("{}/", destination.path)
            };
            let keys = list_all(s4, bucket, &prefix)
                .await
                .map_err(|e| failed(e.message().to_string()))?;
            Ok(keys
                .into_iter()
                .map(|(k, _)| relative(&destination.path, &k))
                .collect())
        }
        Place::Local(id) => match s4.locations().walk(id, &destination.path).await {
            Ok(Some(entries)) => Ok(entries
                .into_iter()
                .filter_map(|e| match e {
                    WalkEntry::File { path, .. } => Some(relative(&destination.path, &path)),
                    WalkEntry::EmptyDir { .. } => None,
                })
                .collect()),
            Ok(None) => Ok(HashSet::new()),
            Err(e) if e.kind() == ErrorKind::InvalidInput && e.message().starts_with("Not a") => {
                Ok(HashSet::new())
            }
            Err(e)
                if e.kind() == ErrorKind::PermissionDenied || e.kind() == ErrorKind::NotFound =>
            {
                Err(e)
            }
            Err(e) => Err(failed(e.message().to_string())),
        },
    }
}

/// §15.7 for already expanded entries.
pub(crate) async fn conflicts(
    s4: &S4,
    request: &TransferRequest,
    entries: &[Entry],
) -> Result<ConflictReport> {
    let existing = destination_set(s4, &request.destination).await?;
    let mut report = ConflictReport {
        conflicts: Vec::new(),
        non_conflicting: Vec::new(),
        warning: None,
    };
    for entry in entries.iter().filter(|e| !e.rel.ends_with(".s3keep")) {
        if existing.contains(&entry.rel) {
            report.conflicts.push(entry.rel.clone());
        } else {
            report.non_conflicting.push(entry.rel.clone());
        }
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if entries.len() >= WARN_FILES || total >= WARN_BYTES {
        report.warning = Some(LargeWarning {
            file_count: entries.len(),
            total_size: total,
            message: format!(
                "This operation will transfer {} files ({}). This may take significant time.",
                entries.len(),
                format_size(total)
            ),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative("", "a/b"), "a/b");
        assert_eq!(relative("models", "models/a/b"), "a/b");
        assert_eq!(relative("models", "modelsx/a"), "modelsx/a");
    }
}

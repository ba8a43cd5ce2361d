//! The HuggingFace import job (API §13): an [`ImportPlan`] fed to the transfer
//! engine as a [`TransferSource`], so an import runs under the global transfer
//! limit with the same progress, cancel and cleanup as any transfer.
//!
//! ```no_run
//! # async fn demo(s4: s4_core::S4, store: s4_core::config_store::ConfigStore) -> s4_core::Result<()> {
//! use s4_core::hf::{start_import, ImportRequest};
//!
//! let request = ImportRequest::parse(&serde_json::json!({
//!     "modelId": "openai-community/gpt2", "bucketName": "models", "prefix": "llms",
//!     "exclude": ["*.h5", "*.msgpack"],
//! }))?;
//! let hub = store.hub(request.hf_token.as_deref())?;
//! let created = start_import(&s4, hub, &request).await?;
//! println!("job {} ({} bytes)", created.id, created.total_size);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::{verify, HubClient, HubFile, ImportDestination, ImportRequest};
use super::{CHECKSUM_MISMATCH, SIZE_MISMATCH};
use crate::error::{Error, ErrorKind, Result};
use crate::transfer::{ConflictMode, Created, Endpoint, ExternalFile, JobType, TransferSource};
use crate::S4;

/// The `error` name of a model-info failure without a Hub answer (§13.1); its
/// message is the fixed `Error fetching model info from HuggingFace`, so adapters
/// may show it as is.
pub const HUB_API_ERROR: &str = "HuggingFace API error";

/// A [`TransferSource`] reading the files of an [`super::ImportPlan`] from the Hub:
/// each file is downloaded when the engine starts it (redirects followed, the
/// token kept on the Hub's host) and verified as it streams (size and LFS sha256),
/// so a mismatching file fails before its atomic write commits.
#[derive(Debug)]
pub struct HubSource {
    hub: HubClient,
    /// By destination-relative path (`<modelId>/<file>`).
    files: HashMap<String, HubFile>,
}

/// A verification failure is final: give it a kind the engine does not retry.
fn final_error(e: Error) -> Error {
    let code = match e.code() {
        Some(CHECKSUM_MISMATCH) => CHECKSUM_MISMATCH,
        Some(SIZE_MISMATCH) => SIZE_MISMATCH,
        _ => return e,
    };
    Error::new(ErrorKind::InvalidInput, e.message().to_string()).with_code(code)
}

impl HubSource {
    /// The source and the engine's file list for `files` (destination paths
    /// `<modelId>/<file>`, relative to the destination endpoint).
    pub fn new(hub: HubClient, model_id: &str, files: Vec<HubFile>) -> (Self, Vec<ExternalFile>) {
        let mut by_path = HashMap::with_capacity(files.len());
        let mut external = Vec::with_capacity(files.len());
        for file in files {
            let path = format!("{model_id}/{}", file.path);
            external.push(ExternalFile {
                path: path.clone(),
                size: file.size,
                source: file.url.to_string(),
            });
            by_path.insert(path, file);
        }
        (
            HubSource {
                hub,
                files: by_path,
            },
            external,
        )
    }
}

#[async_trait]
impl TransferSource for HubSource {
    async fn open(&self, file: &ExternalFile) -> Result<BoxStream<'static, Result<Bytes>>> {
        Ok(self.open_sized(file).await?.0)
    }

    /// The download's `Content-Length` sizes files of the siblings fallback.
    async fn open_sized(
        &self,
        file: &ExternalFile,
    ) -> Result<(BoxStream<'static, Result<Bytes>>, Option<u64>)> {
        let hub_file = self
            .files
            .get(&file.path)
            .ok_or_else(|| Error::internal(format!("{} is not part of the import", file.path)))?;
        let download = self.hub.open_file(hub_file).await?;
        let body = verify(hub_file, download.body)
            .map(|r| r.map_err(final_error))
            .boxed();
        Ok((body, download.content_length))
    }

    fn job_type(&self) -> JobType {
        JobType::HuggingFace
    }
}

/// The destination endpoint of an import (files go to `<endpoint>/<modelId>/<file>`).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for an invalid bucket name.
pub fn import_endpoint(destination: &ImportDestination) -> Result<Endpoint> {
    match destination {
        ImportDestination::S3 { bucket, prefix } => Endpoint::bucket(bucket.as_str(), prefix),
        ImportDestination::Local { location_id, path } => Ok(Endpoint::local(location_id, path)),
    }
}

/// Plans an import with `hub` (model info, gate, tree listing, include/exclude)
/// and starts it as a transfer job of type `huggingface` (API §13): every size is
/// known up front when the Hub lists its tree, files download in parallel under the
/// global transfer limit, LFS files are verified against their sha256, existing
/// destination files are overwritten.
///
/// # Errors
/// The §7.3 errors of a local destination (checked before any Hub call), then
/// those of [`HubClient::plan`].
pub async fn start_import(s4: &S4, hub: HubClient, request: &ImportRequest) -> Result<Created> {
    if let ImportDestination::Local { location_id, path } = &request.destination {
        s4.locations().exists(location_id, path).await?;
    }
    let endpoint = import_endpoint(&request.destination)?;
    let plan = hub.plan(request).await?;
    let (source, files) = HubSource::new(hub, &plan.model_id, plan.files);
    s4.transfers()
        .create_from_source(Arc::new(source), files, endpoint, ConflictMode::Overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_are_final() {
        let e = final_error(
            Error::new(ErrorKind::Backend, "Checksum mismatch").with_code(CHECKSUM_MISMATCH),
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.code(), Some(CHECKSUM_MISMATCH));
        let e = final_error(Error::new(ErrorKind::Backend, "reset"));
        assert_eq!(e.kind(), ErrorKind::Backend);
    }

    #[test]
    fn endpoints() {
        let req = ImportRequest::parse(&serde_json::json!({
            "modelId": "a/b", "bucketName": "models", "prefix": "llms/"
        }))
        .expect("valid");
        let e = import_endpoint(&req.destination).expect("endpoint");
        assert_eq!(e.join("a/b/config.json"), "llms/a/b/config.json");
    }
}

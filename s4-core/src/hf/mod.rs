//! HuggingFace Hub client for model imports (API §13).
//!
//! [`ImportRequest::parse`] validates an import body; [`HubClient::plan`] asks the
//! Hub (at `HF_ENDPOINT`) for the model info, checks gating, lists every file with
//! its size and LFS sha256 (recursive tree listing, paginated), applies
//! include/exclude and maps each file to its destination; [`HubClient::open_file`]
//! streams one file, following redirects itself so that `Authorization` never leaves
//! the Hub's host; [`verify`] wraps a file's stream so a wrong size or digest fails
//! it at the end (before the write commits).
//!
//! ```no_run
//! # async fn demo(store: s4_core::config_store::ConfigStore) -> s4_core::Result<()> {
//! use futures::StreamExt;
//! use s4_core::hf::{verify, ImportRequest};
//!
//! let request = ImportRequest::parse(&serde_json::json!({
//!     "modelId": "openai-community/gpt2", "bucketName": "models",
//!     "include": ["*.json"],
//! }))?;
//! let hub = store.hub(request.hf_token.as_deref())?;
//! let plan = hub.plan(&request).await?;
//! for file in &plan.files {
//!     let download = hub.open_file(file).await?;
//!     let mut body = verify(file, download.body);
//!     while let Some(chunk) = body.next().await {
//!         let _bytes = chunk?; // write to file.destination
//!     }
//! }
//! # Ok(()) }
//! ```

mod request;
mod source;
#[cfg(test)]
mod tests;
mod verify;

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, LINK, LOCATION};
use reqwest::Url;
use serde::Deserialize;

pub use request::{
    valid_model_id, valid_revision, FileDestination, FileFilter, ImportDestination, ImportRequest,
};
pub use source::{import_endpoint, start_import, HubSource, HUB_API_ERROR};
pub use verify::{verify, Verified};

use crate::error::{Error, ErrorKind, Result};
use crate::outbound::Outbound;

/// Most redirects followed by a download.
pub const MAX_REDIRECTS: usize = 10;
/// Most tree-listing pages followed.
const MAX_TREE_PAGES: usize = 10_000;
/// Timeout of metadata calls (model info, tree, whoami).
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout without progress... of a download's headers.
const DOWNLOAD_HEADERS_TIMEOUT: Duration = Duration::from_secs(300);

/// Error code of a checksum mismatch.
pub const CHECKSUM_MISMATCH: &str = "ChecksumMismatch";
/// Error code of a size mismatch.
pub const SIZE_MISMATCH: &str = "SizeMismatch";
/// Error code of a failed file download.
pub const DOWNLOAD_FAILED: &str = "DownloadFailed";

/// The fields of the model info S4 uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Gated (`gated` is anything but `false`).
    pub gated: bool,
    /// Repository-relative file paths.
    pub siblings: Vec<String>,
}

/// The answer of `whoami-v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    /// Account name.
    pub name: Option<String>,
    /// `auth.accessToken.displayName`.
    pub access_token_display_name: Option<String>,
}

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Repository-relative path.
    pub path: String,
    /// Size in bytes (0 when unknown, see `size_known`).
    pub size: u64,
    /// Whether `size` comes from the tree listing (false in the siblings fallback).
    pub size_known: bool,
    /// The LFS sha256 (lower-case hex), for LFS files.
    pub sha256: Option<String>,
    /// The `resolve` URL.
    pub url: Url,
    /// Where the file goes.
    pub destination: FileDestination,
}

/// Everything an import job needs before it starts.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    /// Model id.
    pub model_id: String,
    /// Revision.
    pub revision: String,
    /// Files in listing order, after include/exclude.
    pub files: Vec<HubFile>,
    /// Sum of the known sizes.
    pub total_bytes: u64,
    /// Whether every size is known (the tree listing was available).
    pub sizes_known: bool,
}

/// An opened download.
pub struct HubDownload {
    /// `Content-Length` of the final answer, when sent.
    pub content_length: Option<u64>,
    /// The bytes.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for HubDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubDownload")
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// A client of one Hub (`HF_ENDPOINT`) with an optional token.
#[derive(Clone)]
pub struct HubClient {
    client: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("base", &self.base.as_str())
            .field(
                "token",
                &self.token.as_ref().map(|_| crate::outbound::REDACTED),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct RawModelInfo {
    #[serde(default)]
    gated: Option<serde_json::Value>,
    #[serde(default)]
    siblings: Vec<RawSibling>,
}

#[derive(Deserialize)]
struct RawSibling {
    rfilename: String,
}

#[derive(Deserialize)]
struct RawTreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<RawLfs>,
}

#[derive(Deserialize)]
struct RawLfs {
    oid: String,
}

fn hub_error_text(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_string)
}

fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        404 => ErrorKind::NotFound,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::InvalidInput,
        _ => ErrorKind::Backend,
    }
}

/// The model-info failure of §13.1: the Hub's status (500 without one) and its
/// `error` text.
fn model_info_error(status: Option<u16>, body: &[u8]) -> Error {
    let text = hub_error_text(body);
    let code = text
        .clone()
        .unwrap_or_else(|| "HuggingFace API error".into());
    let message = text.unwrap_or_else(|| "Error fetching model info from HuggingFace".into());
    match status {
        Some(status) => Error::new(kind_for_status(status), message)
            .with_code(code)
            .with_backend_status(status),
        None => Error::new(ErrorKind::Backend, message).with_code(code),
    }
}

fn gated_error(message: &'static str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message).with_code("Unauthorized")
}

fn download_error(message: String) -> Error {
    Error::new(ErrorKind::Backend, message).with_code(DOWNLOAD_FAILED)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `<url>; rel="next"` of a `Link` header.
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

impl HubClient {
    /// A client of the Hub at `base` (e.g. `https://huggingface.co`) through
    /// `outbound`, sending `token` to that host only.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base: Url, outbound: &Outbound, token: Option<String>) -> Result<Self> {
        let client = outbound
            .client_builder()?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("cannot build HTTP client").with_source(e))?;
        Ok(HubClient {
            client,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// Whether a token is in effect.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for segment in segments {
                path.push(segment);
            }
        }
        url
    }

    fn model_segments<'a>(model_id: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = model_id.split('/').collect();
        out.extend_from_slice(tail);
        out
    }

    fn get(&self, url: Url) -> reqwest::RequestBuilder {
        let send_token = same_origin(&url, &self.base);
        let mut request = self.client.get(url);
        if let (true, Some(token)) = (send_token, &self.token) {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request
    }

    /// `GET {base}/api/models/{model}/revision/{revision}`.
    ///
    /// # Errors
    /// The Hub's status and `error` text (§13.1), 500 without an answer.
    pub async fn model_info(&self, model_id: &str, revision: &str) -> Result<ModelInfo> {
        let mut segments = vec!["api", "models"];
        segments.extend(Self::model_segments(model_id, &["revision", revision]));
        let response = self
            .get(self.url(&segments))
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| model_info_error(None, b"").with_source(e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| model_info_error(None, b"").with_source(e))?;
        if !(200..300).contains(&status) {
            return Err(model_info_error(Some(status), &body));
        }
        let raw: RawModelInfo = serde_json::from_slice(&body)
            .map_err(|e| model_info_error(None, b"").with_source(e))?;
        Ok(ModelInfo {
            gated: !matches!(raw.gated, Some(serde_json::Value::Bool(false))),
            siblings: raw.siblings.into_iter().map(|s| s.rfilename).collect(),
        })
    }

    /// `GET {base}/api/whoami-v2` with the token.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`] with the Hub's `error` text as code and message (or
    /// `Hugging Face API error` / `Error testing Hugging Face connection`).
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let fail = |body: &[u8]| {
            let text = hub_error_text(body);
            Error::new(
                ErrorKind::Backend,
                text.clone()
                    .unwrap_or_else(|| "Error testing Hugging Face connection".into()),
            )
            .with_code(text.unwrap_or_else(|| "Hugging Face API error".into()))
        };
        let response = self
            .get(self.url(&["api", "whoami-v2"]))
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| fail(b"").with_source(e))?;
        let ok = response.status().is_success();
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(b"").with_source(e))?;
        if !ok {
            return Err(fail(&body));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| fail(b"").with_source(e))?;
        Ok(WhoAmI {
            name: value
                .get("name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            access_token_display_name: value
                .pointer("/auth/accessToken/displayName")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }

    /// The recursive tree listing (files only, in listing order) with sizes and LFS
    /// digests, following `Link: rel="next"`; `None` when the Hub has no tree route
    /// (404).
    ///
    /// # Errors
    /// As [`HubClient::model_info`].
    pub async fn list_tree(
        &self,
        model_id: &str,
        revision: &str,
    ) -> Result<Option<Vec<(String, u64, Option<String>)>>> {
        let mut segments = vec!["api", "models"];
        segments.extend(Self::model_segments(model_id, &["tree", revision]));
        let mut url = self.url(&segments);
        url.query_pairs_mut().append_pair("recursive", "true");
        let mut files = Vec::new();
        for _ in 0..MAX_TREE_PAGES {
            let response = self
                .get(url.clone())
                .timeout(API_TIMEOUT)
                .send()
                .await
                .map_err(|e| model_info_error(None, b"").with_source(e))?;
            let status = response.status().as_u16();
            if status == 404 && files.is_empty() {
                return Ok(None);
            }
            let next = response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|n| url.join(n).ok());
            let body = response
                .bytes()
                .await
                .map_err(|e| model_info_error(None, b"").with_source(e))?;
            if !(200..300).contains(&status) {
                return Err(model_info_error(Some(status), &body));
            }
            let entries: Vec<RawTreeEntry> = serde_json::from_slice(&body)
                .map_err(|e| model_info_error(None, b"").with_source(e))?;
            files.extend(
                entries
                    .into_iter()
                    .filter(|e| e.kind == "file")
                    .map(|e| (e.path, e.size, e.lfs.map(|l| l.oid.to_ascii_lowercase()))),
            );
            match next {
                Some(next) => url = next,
                None => return Ok(Some(files)),
            }
        }
        Ok(Some(files))
    }

    /// Model info, gate check, file listing, include/exclude and destination mapping
    /// (API §13.1–13.3).
    ///
    /// # Errors
    /// The §13.1 errors: Hub failures, `Unauthorized` for gated models,
    /// `ValidationError` when no file is listed or none matches.
    pub async fn plan(&self, request: &ImportRequest) -> Result<ImportPlan> {
        let info = self
            .model_info(&request.model_id, &request.revision)
            .await?;
        if info.gated {
            if !self.has_token() {
                return Err(gated_error(
                    "This model is gated and requires a HuggingFace token.",
                ));
            }
            if self.whoami().await.is_err() {
                return Err(gated_error(
                    "This model requires a valid HuggingFace token to be downloaded, or you are not authorized.",
                ));
            }
        }
        let (listed, sizes_known) =
            match self.list_tree(&request.model_id, &request.revision).await? {
                Some(files) => (files, true),
                None => (
                    info.siblings
                        .into_iter()
                        .map(|path| (path, 0, None))
                        .collect(),
                    false,
                ),
            };
        if listed.is_empty() {
            return Err(Error::invalid("Model has no files to import").with_code("ValidationError"));
        }
        let mut files = Vec::new();
        for (path, size, sha256) in listed {
            if !request.filter.accepts(&path) {
                continue;
            }
            let mut segments =
                Self::model_segments(&request.model_id, &["resolve", &request.revision]);
            segments.extend(path.split('/'));
            let url = self.url(&segments);
            files.push(HubFile {
                destination: request.destination_of(&path)?,
                url,
                path,
                size,
                size_known: sizes_known,
                sha256,
            });
        }
        if files.is_empty() {
            return Err(
                Error::invalid("No files match the include/exclude patterns")
                    .with_code("ValidationError"),
            );
        }
        Ok(ImportPlan {
            model_id: request.model_id.clone(),
            revision: request.revision.clone(),
            total_bytes: files.iter().map(|f| f.size).sum(),
            sizes_known,
            files,
        })
    }

    /// Opens the download of `file`: redirects (at most [`MAX_REDIRECTS`]) are
    /// followed here, with `Authorization` sent only while the URL is on the Hub's
    /// host and port; no `Range` header is ever sent.
    ///
    /// # Errors
    /// Code `DownloadFailed`: `HTTP request failed: <status> <reason>`,
    /// `Too many redirects (max 10)`, `Redirect response missing Location header
    /// (<status>)`, or the transport error.
    pub async fn open_file(&self, file: &HubFile) -> Result<HubDownload> {
        let mut url = file.url.clone();
        let mut on_hub = same_origin(&url, &self.base);
        for redirects in 0..=MAX_REDIRECTS {
            let mut request = self.client.get(url.clone());
            if let (true, Some(token)) = (on_hub, &self.token) {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let response = tokio::time::timeout(DOWNLOAD_HEADERS_TIMEOUT, request.send())
                .await
                .map_err(|_| download_error("HTTP request failed: timed out".into()))?
                .map_err(|e| download_error(format!("HTTP request failed: {e}")).with_source(e))?;
            let status = response.status();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                if redirects == MAX_REDIRECTS {
                    return Err(download_error(format!(
                        "Too many redirects (max {MAX_REDIRECTS})"
                    ))
                    .with_backend_status(status.as_u16()));
                }
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        download_error(format!(
                            "Redirect response missing Location header ({})",
                            status.as_u16()
                        ))
                        .with_backend_status(status.as_u16())
                    })?;
                url = url.join(location).map_err(|e| {
                    download_error(format!("Invalid redirect location {location:?}: {e}"))
                })?;
                // Once the chain leaves the Hub, the token never follows it.
                on_hub = on_hub && same_origin(&url, &self.base);
                continue;
            }
            if status.as_u16() != 200 {
                return Err(download_error(format!(
                    "HTTP request failed: {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ))
                .with_backend_status(status.as_u16()));
            }
            let content_length = response.content_length();
            let path = file.path.clone();
            let body = response
                .bytes_stream()
                .map(move |chunk| {
                    chunk.map_err(|e| {
                        download_error(format!("Download of {path} failed: {e}")).with_source(e)
                    })
                })
                .boxed();
            return Ok(HubDownload {
                content_length,
                body,
            });
        }
        Err(download_error(format!(
            "Too many redirects (max {MAX_REDIRECTS})"
        )))
    }
}

#[cfg(test)]
mod unit_tests;

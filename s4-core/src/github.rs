//! The project's public repository figures (`GET /api/github/repo-info`, API §18):
//! fetched with a short timeout, cached for an hour per endpoint, and served stale
//! when a refresh fails.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// The GitHub API address of the project's repository.
pub const DEFAULT_REPO_API: &str = "https://api.github.com/repos/s4-project/s4";
/// A fetch gives up after this long (the UI must never hang on it).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fetched answer is served without asking again.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);

/// The figures the UI shows (parsed from GitHub's answer; the JSON shape served
/// to clients lives in the HTTP adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RepoInfo {
    /// Stars.
    pub stargazers_count: u64,
    /// Forks.
    pub forks_count: u64,
}

/// The HTTP client of outbound calls to GitHub. The one place to plug in the
/// proxy settings (API §20).
///
/// # Errors
/// When the client cannot be built (TLS roots unavailable).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("s4/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("cannot build the HTTP client").with_source(e))
}

type Cache = Mutex<HashMap<String, (Instant, RepoInfo)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn upstream(message: String) -> Error {
    Error::new(ErrorKind::Backend, message).with_code("Error")
}

async fn fetch(endpoint: &str) -> Result<RepoInfo> {
    let response = http_client(FETCH_TIMEOUT)?
        .get(endpoint)
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .map_err(|e| upstream(format!("GitHub is unreachable: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(upstream(format!("GitHub answered {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| upstream(format!("GitHub answer could not be read: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| upstream(format!("unexpected GitHub answer: {e}")))
}

/// The repository figures from `endpoint`: cached for [`CACHE_TTL`]; when a
/// refresh fails the stale answer is returned.
///
/// # Errors
/// [`ErrorKind::Backend`] when the fetch fails and nothing is cached.
pub async fn repo_info(endpoint: &str) -> Result<RepoInfo> {
    let cached = cache().lock().ok().and_then(|c| c.get(endpoint).copied());
    if let Some((at, info)) = cached {
        if at.elapsed() < CACHE_TTL {
            return Ok(info);
        }
    }
    match fetch(endpoint).await {
        Ok(info) => {
            if let Ok(mut c) = cache().lock() {
                c.insert(endpoint.to_string(), (Instant::now(), info));
            }
            Ok(info)
        }
        Err(e) => match cached {
            Some((_, info)) => {
                tracing::warn!(error = %e, "GitHub refresh failed; serving the cached answer");
                Ok(info)
            }
            None => Err(e),
        },
    }
}

//! `GET /api/github/repo-info` (§18): the project's repository figures, cached;
//! 502 when GitHub cannot be reached and nothing is cached.

use http::StatusCode;
use s4_core::github::RepoInfo;
use serde::Serialize;

use super::HandlerResult;
use crate::app::App;
use crate::body;
use crate::error::ApiError;

/// The body of `GET /api/github/repo-info`: `{"stargazers_count","forks_count"}`
/// (GitHub's own field names, kept for the UI).
#[derive(Debug, Serialize)]
struct RepoInfoWire {
    stargazers_count: u64,
    forks_count: u64,
}

impl From<RepoInfo> for RepoInfoWire {
    fn from(info: RepoInfo) -> Self {
        RepoInfoWire {
            stargazers_count: info.stargazers_count,
            forks_count: info.forks_count,
        }
    }
}

/// `GET /api/github/repo-info`.
pub(crate) async fn repo_info(app: &App) -> HandlerResult {
    match s4_core::github::repo_info(&app.config().github_repo_api).await {
        Ok(info) => Ok(body::ok(&RepoInfoWire::from(info))),
        Err(e) => {
            tracing::warn!(error = %e, "GitHub repository info unavailable");
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "Error", e.message()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_keeps_githubs_field_names() -> serde_json::Result<()> {
        let wire = RepoInfoWire::from(RepoInfo {
            stargazers_count: 7,
            forks_count: 3,
        });
        assert_eq!(
            serde_json::to_string(&wire)?,
            r#"{"stargazers_count":7,"forks_count":3}"#
        );
        Ok(())
    }
}

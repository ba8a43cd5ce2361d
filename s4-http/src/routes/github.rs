//! `GET /api/github/repo-info` (§18): the project's repository figures, cached;
//! 502 when GitHub cannot be reached and nothing is cached.

use http::StatusCode;
use serde_json::json;

use super::HandlerResult;
use crate::app::App;
use crate::body;
use crate::error::ApiError;

/// `GET /api/github/repo-info`.
pub(crate) async fn repo_info(app: &App) -> HandlerResult {
    match s4_core::github::repo_info(&app.config().github_repo_api).await {
        Ok(info) => Ok(body::ok(&json!({
            "stargazers_count": info.stargazers_count,
            "forks_count": info.forks_count,
        }))),
        Err(e) => {
            tracing::warn!(error = %e, "GitHub repository info unavailable");
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "Error", e.message()))
        }
    }
}

//! Route handlers, one module per operation family, dispatched on the typed
//! [`Params`] of the matched route.

pub(crate) mod auth;
pub(crate) mod buckets;
pub(crate) mod github;
pub(crate) mod import;
pub(crate) mod local;
pub(crate) mod local_wire;
pub(crate) mod notifications;
pub(crate) mod objects;
pub(crate) mod service;
pub(crate) mod settings;
pub(crate) mod sse;
pub(crate) mod tags;
pub(crate) mod transfer;
pub(crate) mod upload_progress;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::app::{App, Ctx};
use crate::body::Body;
use crate::error::ApiError;
use crate::router::Params;

/// Result of a handler.
pub(crate) type HandlerResult = Result<Response<Body>, ApiError>;

/// Runs the handler of `ctx.route`, handing it its typed parameters.
pub(crate) async fn dispatch(
    app: &App,
    request: Request<Incoming>,
    ctx: Ctx,
    params: Params,
) -> HandlerResult {
    match params {
        Params::Health => service::health(),
        Params::Kernels => service::kernels(app),
        Params::ListBuckets => buckets::list(app).await,
        Params::CreateBucket => buckets::create(app, request).await,
        Params::DeleteBucket(p) => buckets::delete(app, &p).await,
        Params::ListObjects(p) => objects::list(app, &ctx, &p).await,
        Params::UploadObject(p) => objects::upload(app, request, &p).await,
        Params::DownloadObject(p) => objects::download(app, &request, &p).await,
        Params::DeleteObject(p) => objects::delete(app, &p).await,
        Params::ViewObject(p) => objects::view(app, &ctx, &p).await,
        Params::ObjectMetadata(p) => objects::metadata(app, &p).await,
        Params::UploadProgress(p) => objects::upload_progress(app, &p),
        Params::AbortUpload(p) => objects::abort_upload(app, &p),
        Params::AuthInfo => auth::info(app),
        Params::AuthLogin => auth::login(app, request, &ctx).await,
        Params::AuthLogout => auth::logout(app, &request, &ctx),
        Params::AuthMe => auth::me(&ctx),
        Params::SseTicket => auth::sse_ticket(app, request, &ctx).await,
        Params::LocalLocations => local::locations(app, &ctx).await,
        Params::LocalList(p) => local::list(app, &ctx, &p).await,
        Params::LocalUpload(p) => local::upload(app, request, &ctx, &p).await,
        Params::LocalDownload(p) => local::download(app, &request, &ctx, &p).await,
        Params::LocalDelete(p) => local::delete(app, &ctx, &p).await,
        Params::LocalView(p) => local::view(app, &ctx, &p).await,
        Params::LocalMkdir(p) => local::create_dir(app, &ctx, &p).await,
        Params::LocalDebug => local::debug(app, &ctx).await,
        Params::TransferCreate => transfer::create(app, request, &ctx).await,
        Params::TransferCheckConflicts => transfer::check_conflicts(app, request, &ctx).await,
        Params::TransferProgress(p) => transfer::progress(app, &p),
        Params::TransferCancel(p) => transfer::cancel(app, &p),
        Params::TransferCleanup(p) => transfer::cleanup(app, &p).await,
        Params::TransferGet(p) => transfer::details(app, &p),
        Params::GetS3Settings
        | Params::PutS3Settings
        | Params::TestS3
        | Params::GetHfSettings
        | Params::PutHfSettings
        | Params::TestHf
        | Params::GetProxySettings
        | Params::PutProxySettings
        | Params::TestProxy
        | Params::GetMaxConcurrent
        | Params::PutMaxConcurrent
        | Params::GetMaxFilesPerPage
        | Params::PutMaxFilesPerPage
        | Params::GetDisclaimer
        | Params::PutDisclaimer => settings::dispatch(app, request, &ctx).await,
        Params::GetNotifications(p) => notifications::get(app, &p).await,
        Params::PutNotifications(p) => notifications::put(app, request, &p).await,
        Params::DeleteNotification(p) => notifications::delete(app, &p).await,
        Params::TestNotificationEndpoint => notifications::test_endpoint(app, request).await,
        Params::GetObjectTags(p) => tags::get(app, &p).await,
        Params::PutObjectTags(p) => tags::put(app, request, &p).await,
        Params::DeleteObjectTags(p) => tags::delete(app, &p).await,
        Params::GithubRepoInfo => github::repo_info(app).await,
        Params::HuggingFaceImport => import::huggingface_import(app, request, &ctx).await,
    }
}

/// ISO-8601 UTC with milliseconds, as every timestamp of the API.
pub(crate) fn iso(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `:bucketName` of a route that does not pre-validate it (§7.2): a name that
/// breaks the rules cannot exist on any backend, so it is answered as the
/// backend answers a missing bucket (404 `NoSuchBucket`), and no backend ever
/// receives an unchecked name.
pub(crate) fn bucket_param(raw: &str) -> Result<s4_core::BucketName, ApiError> {
    s4_core::BucketName::parse(raw).map_err(|_| {
        ApiError::new(
            http::StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    })
}

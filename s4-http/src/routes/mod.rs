//! Route handlers, one module per operation family, dispatched on [`RouteId`].

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
use crate::router::RouteId;

/// Result of a handler.
pub(crate) type HandlerResult = Result<Response<Body>, ApiError>;

/// Runs the handler of `ctx.route`.
pub(crate) async fn dispatch(app: &App, request: Request<Incoming>, ctx: Ctx) -> HandlerResult {
    match ctx.route.id {
        RouteId::Health => service::health(),
        RouteId::Kernels => service::kernels(app),
        RouteId::ListBuckets => buckets::list(app).await,
        RouteId::CreateBucket => buckets::create(app, request).await,
        RouteId::DeleteBucket => buckets::delete(app, &ctx).await,
        RouteId::ListObjects => objects::list(app, &ctx).await,
        RouteId::UploadObject => objects::upload(app, request, &ctx).await,
        RouteId::DownloadObject => objects::download(app, &request, &ctx).await,
        RouteId::DeleteObject => objects::delete(app, &ctx).await,
        RouteId::ViewObject => objects::view(app, &ctx).await,
        RouteId::ObjectMetadata => objects::metadata(app, &ctx).await,
        RouteId::UploadProgress => objects::upload_progress(app, &ctx),
        RouteId::AbortUpload => objects::abort_upload(app, &ctx),
        RouteId::AuthInfo => auth::info(app),
        RouteId::AuthLogin => auth::login(app, request, &ctx).await,
        RouteId::AuthLogout => auth::logout(app, &request, &ctx),
        RouteId::AuthMe => auth::me(&ctx),
        RouteId::SseTicket => auth::sse_ticket(app, request, &ctx).await,
        RouteId::LocalLocations => local::locations(app, &ctx).await,
        RouteId::LocalList => local::list(app, &ctx).await,
        RouteId::LocalUpload => local::upload(app, request, &ctx).await,
        RouteId::LocalDownload => local::download(app, &request, &ctx).await,
        RouteId::LocalDelete => local::delete(app, &ctx).await,
        RouteId::LocalView => local::view(app, &ctx).await,
        RouteId::LocalMkdir => local::create_dir(app, &ctx).await,
        RouteId::LocalDebug => local::debug(app, &ctx).await,
        RouteId::TransferCreate => transfer::create(app, request, &ctx).await,
        RouteId::TransferCheckConflicts => transfer::check_conflicts(app, request, &ctx).await,
        RouteId::TransferProgress => transfer::progress(app, &ctx),
        RouteId::TransferCancel => transfer::cancel(app, &ctx),
        RouteId::TransferCleanup => transfer::cleanup(app, &ctx).await,
        RouteId::TransferGet => transfer::details(app, &ctx),
        RouteId::GetS3Settings
        | RouteId::PutS3Settings
        | RouteId::TestS3
        | RouteId::GetHfSettings
        | RouteId::PutHfSettings
        | RouteId::TestHf
        | RouteId::GetProxySettings
        | RouteId::PutProxySettings
        | RouteId::TestProxy
        | RouteId::GetMaxConcurrent
        | RouteId::PutMaxConcurrent
        | RouteId::GetMaxFilesPerPage
        | RouteId::PutMaxFilesPerPage
        | RouteId::GetDisclaimer
        | RouteId::PutDisclaimer => settings::dispatch(app, request, &ctx).await,
        RouteId::GetNotifications => notifications::get(app, &ctx).await,
        RouteId::PutNotifications => notifications::put(app, request, &ctx).await,
        RouteId::DeleteNotification => notifications::delete(app, &ctx).await,
        RouteId::TestNotificationEndpoint => notifications::test_endpoint(app, request).await,
        RouteId::GetObjectTags => tags::get(app, &ctx).await,
        RouteId::PutObjectTags => tags::put(app, request, &ctx).await,
        RouteId::DeleteObjectTags => tags::delete(app, &ctx).await,
        RouteId::GithubRepoInfo => github::repo_info(app).await,
        RouteId::HuggingFaceImport => import::huggingface_import(app, request, &ctx).await,
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
pub(crate) fn bucket_param(ctx: &Ctx) -> Result<s4_core::BucketName, ApiError> {
    s4_core::BucketName::parse(ctx.params.get("bucket")).map_err(|_| {
        ApiError::new(
            http::StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    })
}

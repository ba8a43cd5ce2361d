//! The route table: every `(method, path)` the API serves, with its access rule.
//!
//! [`ROUTES`] is the single source of truth. The router is built from it, the
//! authentication step reads each route's [`Access`] from it, and the tests walk it
//! to prove that every protected route refuses requests without credentials, so a
//! route added here is covered automatically and cannot bypass authentication.

use std::collections::HashMap;

use http::Method;
use s4_core::auth::TicketType;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Never requires credentials.
    Public,
    /// Requires authentication when authentication is enabled.
    Protected,
    /// Like [`Access::Protected`], but also accepts a one-time SSE ticket of this
    /// resource type for the `{resource}` parameter.
    Ticket(TicketType),
}

/// What a route does. Handlers are dispatched on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum RouteId {
    Health,
    Kernels,
    AuthInfo,
    AuthLogin,
    AuthLogout,
    AuthMe,
    SseTicket,
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    ListObjects,
    UploadObject,
    DownloadObject,
    DeleteObject,
    ViewObject,
    ObjectMetadata,
    UploadProgress,
    AbortUpload,
    LocalLocations,
    LocalList,
    LocalUpload,
    LocalDownload,
    LocalDelete,
    LocalView,
    LocalMkdir,
    LocalDebug,
    TransferCreate,
    TransferCheckConflicts,
    TransferProgress,
    TransferCancel,
    TransferCleanup,
    TransferGet,
    GetS3Settings,
    PutS3Settings,
    TestS3,
    GetHfSettings,
    PutHfSettings,
    TestHf,
    GetProxySettings,
    PutProxySettings,
    TestProxy,
    GetMaxConcurrent,
    PutMaxConcurrent,
    GetMaxFilesPerPage,
    PutMaxFilesPerPage,
    GetDisclaimer,
    PutDisclaimer,
    GetNotifications,
    PutNotifications,
    DeleteNotification,
    TestNotificationEndpoint,
    GetObjectTags,
    PutObjectTags,
    DeleteObjectTags,
    GithubRepoInfo,
    HuggingFaceImport,
}

/// One route: method, path pattern (matchit syntax, relative to `/api`), handler
/// id and access rule.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path pattern under `/api`, e.g. `/objects/{bucket}/{key}`.
    pub path: &'static str,
    /// Handler.
    pub id: RouteId,
    /// Access rule.
    pub access: Access,
}

macro_rules! route {
    ($method:ident, $path:literal, $id:ident, $access:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            id: RouteId::$id,
            access: $access,
        }
    };
}

use Access::{Protected, Public, Ticket};

/// Every route of the API (paths relative to `/api`).
pub static ROUTES: &[Route] = &[
    route!(GET, "", Health, Public),
    route!(GET, "/", Health, Public),
    route!(GET, "/kernels", Kernels, Protected),
    route!(GET, "/kernels/", Kernels, Protected),
    route!(GET, "/terminals", Kernels, Protected),
    route!(GET, "/terminals/", Kernels, Protected),
    route!(GET, "/auth/info", AuthInfo, Public),
    route!(POST, "/auth/login", AuthLogin, Public),
    route!(POST, "/auth/logout", AuthLogout, Public),
    route!(GET, "/auth/me", AuthMe, Protected),
    route!(POST, "/auth/sse-ticket", SseTicket, Protected),
    route!(GET, "/buckets", ListBuckets, Protected),
    route!(POST, "/buckets", CreateBucket, Protected),
    route!(DELETE, "/buckets/{bucket}", DeleteBucket, Protected),
    route!(GET, "/objects/{bucket}", ListObjects, Protected),
    route!(GET, "/objects/{bucket}/{prefix}", ListObjects, Protected),
    route!(
        POST,
        "/objects/upload/{bucket}/{key}",
        UploadObject,
        Protected
    ),
    route!(
        GET,
        "/objects/download/{bucket}/{key}",
        DownloadObject,
        Protected
    ),
    route!(DELETE, "/objects/{bucket}/{key}", DeleteObject, Protected),
    route!(GET, "/objects/view/{bucket}/{key}", ViewObject, Protected),
    route!(
        GET,
        "/objects/metadata/{bucket}/{key}",
        ObjectMetadata,
        Protected
    ),
    route!(
        GET,
        "/objects/upload-progress/{resource}",
        UploadProgress,
        Ticket(TicketType::Upload)
    ),
    route!(GET, "/objects/abort-upload/{key}", AbortUpload, Protected),
    route!(GET, "/local/locations", LocalLocations, Protected),
    route!(GET, "/local/files/{location}", LocalList, Protected),
    route!(GET, "/local/files/{location}/", LocalList, Protected),
    route!(GET, "/local/files/{location}/{*path}", LocalList, Protected),
    route!(
        POST,
        "/local/upload/{location}/{*path}",
        LocalUpload,
        Protected
    ),
    route!(
        POST,
        "/local/files/{location}/{*path}",
        LocalUpload,
        Protected
    ),
    route!(
        GET,
        "/local/download/{location}/{*path}",
        LocalDownload,
        Protected
    ),
    route!(DELETE, "/local/{location}", LocalDelete, Protected),
    route!(DELETE, "/local/{location}/", LocalDelete, Protected),
    route!(DELETE, "/local/{location}/{*path}", LocalDelete, Protected),
    route!(DELETE, "/local/files/{location}", LocalDelete, Protected),
    route!(DELETE, "/local/files/{location}/", LocalDelete, Protected),
    route!(
        DELETE,
        "/local/files/{location}/{*path}",
        LocalDelete,
        Protected
    ),
    route!(GET, "/local/view/{location}/{*path}", LocalView, Protected),
    route!(
        POST,
        "/local/create-directory/{location}/{*path}",
        LocalMkdir,
        Protected
    ),
    route!(
        POST,
        "/local/directories/{location}/{*path}",
        LocalMkdir,
        Protected
    ),
    route!(GET, "/local/debug", LocalDebug, Protected),
    route!(POST, "/transfer", TransferCreate, Protected),
    route!(
        POST,
        "/transfer/check-conflicts",
        TransferCheckConflicts,
        Protected
    ),
    route!(
        GET,
        "/transfer/progress/{resource}",
        TransferProgress,
        Ticket(TicketType::Transfer)
    ),
    route!(POST, "/transfer/cancel/{job}", TransferCancel, Protected),
    route!(DELETE, "/transfer/{job}", TransferCancel, Protected),
    route!(POST, "/transfer/cleanup/{job}", TransferCleanup, Protected),
    route!(POST, "/transfer/{job}/cleanup", TransferCleanup, Protected),
    route!(GET, "/transfer/{job}", TransferGet, Protected),
    route!(GET, "/settings/s3", GetS3Settings, Protected),
    route!(PUT, "/settings/s3", PutS3Settings, Protected),
    route!(POST, "/settings/test-s3", TestS3, Protected),
    route!(GET, "/settings/huggingface", GetHfSettings, Protected),
    route!(PUT, "/settings/huggingface", PutHfSettings, Protected),
    route!(POST, "/settings/test-huggingface", TestHf, Protected),
    route!(GET, "/settings/proxy", GetProxySettings, Protected),
    route!(PUT, "/settings/proxy", PutProxySettings, Protected),
    route!(POST, "/settings/test-proxy", TestProxy, Protected),
    route!(
        GET,
        "/settings/max-concurrent-transfers",
        GetMaxConcurrent,
        Protected
    ),
    route!(
        PUT,
        "/settings/max-concurrent-transfers",
        PutMaxConcurrent,
        Protected
    ),
    route!(
        GET,
        "/settings/max-files-per-page",
        GetMaxFilesPerPage,
        Protected
    ),
    route!(
        PUT,
        "/settings/max-files-per-page",
        PutMaxFilesPerPage,
        Protected
    ),
    route!(GET, "/settings/disclaimer", GetDisclaimer, Protected),
    route!(PUT, "/settings/disclaimer", PutDisclaimer, Protected),
    route!(GET, "/disclaimer", GetDisclaimer, Protected),
    route!(PUT, "/disclaimer", PutDisclaimer, Protected),
    route!(GET, "/notifications/{bucket}", GetNotifications, Protected),
    route!(PUT, "/notifications/{bucket}", PutNotifications, Protected),
    route!(
        DELETE,
        "/notifications/{bucket}/{id}",
        DeleteNotification,
        Protected
    ),
    route!(
        POST,
        "/notifications/test-endpoint",
        TestNotificationEndpoint,
        Protected
    ),
    route!(
        GET,
        "/objects/tags/{bucket}/{key}",
        GetObjectTags,
        Protected
    ),
    route!(
        PUT,
        "/objects/tags/{bucket}/{key}",
        PutObjectTags,
        Protected
    ),
    route!(
        DELETE,
        "/objects/tags/{bucket}/{key}",
        DeleteObjectTags,
        Protected
    ),
    route!(GET, "/github/repo-info", GithubRepoInfo, Public),
    route!(
        POST,
        "/objects/huggingface-import",
        HuggingFaceImport,
        Protected
    ),
];

/// Path parameters of a matched route, percent-decoded once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value of parameter `name` (`""` for an absent catch-all).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// The result of routing a request.
#[derive(Debug)]
pub enum Matched {
    /// A route matched.
    Route(&'static Route, Params),
    /// No route: 404 (after authentication).
    NotFound,
    /// A parameter was not valid UTF-8 after percent-decoding.
    BadEncoding,
}

/// Routes requests through per-method `matchit` trees built from [`ROUTES`].
#[derive(Debug)]
pub struct Router {
    trees: HashMap<Method, matchit::Router<usize>>,
}

/// The names of the route parameters, in pattern order (`{*path}` → `path`).
fn param_names(pattern: &'static str) -> impl Iterator<Item = &'static str> {
    pattern.split('/').filter_map(|segment| {
        segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.trim_start_matches('*'))
    })
}

impl Router {
    /// Builds the router.
    ///
    /// # Panics
    /// If [`ROUTES`] holds conflicting patterns: a programming error caught by tests.
    pub fn new() -> Self {
        let mut trees: HashMap<Method, matchit::Router<usize>> = HashMap::new();
        for (i, route) in ROUTES.iter().enumerate() {
            if route.path.is_empty() {
                continue; // `""` and `"/"` are the same matchit path; "/" is registered.
            }
            #[allow(clippy::expect_used)]
            trees
                .entry(route.method.clone())
                .or_default()
                .insert(route.path, i)
                .expect("route table patterns must not conflict");
        }
        Router { trees }
    }

    /// Routes `method` and `path` (relative to `/api`, still percent-encoded).
    pub fn route(&self, method: &Method, path: &str) -> Matched {
        let path = if path.is_empty() { "/" } else { path };
        let Some(tree) = self.trees.get(method) else {
            return Matched::NotFound;
        };
        let Ok(found) = tree.at(path) else {
            return Matched::NotFound;
        };
        let route = &ROUTES[*found.value];
        let mut params = Vec::new();
        for name in param_names(route.path) {
            let raw = found.params.get(name).unwrap_or("");
            match percent_encoding::percent_decode_str(raw).decode_utf8() {
                Ok(value) => params.push((name, value.into_owned())),
                Err(_) => return Matched::BadEncoding,
            }
        }
        Matched::Route(route, Params(params))
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(router: &Router, method: Method, path: &str) -> Option<(RouteId, Params)> {
        match router.route(&method, path) {
            Matched::Route(r, p) => Some((r.id, p)),
            _ => None,
        }
    }

    #[test]
    fn table_builds_and_routes() {
        let r = Router::new();
        assert_eq!(id(&r, Method::GET, "").map(|x| x.0), Some(RouteId::Health));
        assert_eq!(id(&r, Method::GET, "/").map(|x| x.0), Some(RouteId::Health));
        let (rid, p) = id(&r, Method::GET, "/objects/b1/YQ%3D%3D").expect("matches");
        assert_eq!(rid, RouteId::ListObjects);
        assert_eq!(p.get("prefix"), "YQ==");
        assert_eq!(
            id(&r, Method::GET, "/objects/download/b1/YQ").map(|x| x.0),
            Some(RouteId::DownloadObject)
        );
        assert_eq!(
            id(&r, Method::DELETE, "/objects/b1/YQ").map(|x| x.0),
            Some(RouteId::DeleteObject)
        );
        let (rid, p) = id(&r, Method::GET, "/local/files/local-0/YS9i").expect("matches");
        assert_eq!(rid, RouteId::LocalList);
        assert_eq!(p.get("path"), "YS9i");
        let (_, p) = id(&r, Method::GET, "/local/files/local-0/").expect("matches");
        assert_eq!(p.get("path"), "");
        assert_eq!(
            id(&r, Method::DELETE, "/local/files/local-0/YQ").map(|x| x.0),
            Some(RouteId::LocalDelete)
        );
        assert!(id(&r, Method::GET, "/nope").is_none());
        assert!(id(&r, Method::PATCH, "/buckets").is_none());
    }

    #[test]
    fn standard_alphabet_slashes_in_local_tail() {
        let r = Router::new();
        let (_, p) = id(&r, Method::GET, "/local/download/local-0/a+b/c==").expect("matches");
        assert_eq!(p.get("path"), "a+b/c==");
    }

    #[test]
    fn bad_percent_encoding() {
        let r = Router::new();
        assert!(matches!(
            r.route(&Method::GET, "/objects/b1/%FF"),
            Matched::BadEncoding
        ));
    }
}

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

mod params;

pub use params::{
    BadEncoding, BucketParams, JobParams, KeyParams, ListParams, LocationParams, Lookup,
    NotificationParams, ObjectParams, ResourceParams, RouteParams,
};

/// The names of a parameter type (`()` for a route without parameters).
macro_rules! names_of {
    () => {
        (&[], &[])
    };
    ($ty:ty) => {
        (
            <$ty as RouteParams>::REQUIRED,
            <$ty as RouteParams>::OPTIONAL,
        )
    };
}

/// Declares [`RouteId`] and [`Params`] together, so that every id has exactly one
/// parameter type: `Id` for a route without parameters, `Id(Type)` otherwise.
macro_rules! route_ids {
    ($( $id:ident $( ( $ty:ty ) )? ),* $(,)?) => {
        /// What a route does. Handlers are dispatched on this.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum RouteId {
            $( $id ),*
        }

        /// The typed parameters of a matched route: one variant per [`RouteId`],
        /// holding that route's parameter struct. Handlers are dispatched on this
        /// and receive their struct.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Params {
            $( $id $( ( $ty ) )? ),*
        }

        impl RouteId {
            /// The parameter names of this id's type: `(required, optional)`.
            pub const fn param_names(self) -> (&'static [&'static str], &'static [&'static str]) {
                match self {
                    $( RouteId::$id => names_of!($($ty)?), )*
                }
            }
        }

        impl Params {
            /// Fills the parameters of `id` from a match.
            fn decode(id: RouteId, lookup: &mut Lookup<'_>) -> Result<Self, BadEncoding> {
                Ok(match id {
                    $( RouteId::$id => Params::$id $( (<$ty as RouteParams>::decode(lookup)?) )?, )*
                })
            }

            /// The route id these parameters belong to.
            pub fn id(&self) -> RouteId {
                match self {
                    $( Params::$id { .. } => RouteId::$id, )*
                }
            }

            /// Every parameter as `(name, value)` (none for most routes).
            pub fn fields(&self) -> Vec<(&'static str, Option<&str>)> {
                $($(
                    if let Params::$id(p) = self {
                        return <$ty as RouteParams>::fields(p);
                    }
                )?)*
                Vec::new()
            }
        }
    };
}

route_ids! {
    Health,
    Kernels,
    AuthInfo,
    AuthLogin,
    AuthLogout,
    AuthMe,
    SseTicket,
    ListBuckets,
    CreateBucket,
    DeleteBucket(BucketParams),
    ListObjects(ListParams),
    UploadObject(ObjectParams),
    DownloadObject(ObjectParams),
    DeleteObject(ObjectParams),
    ViewObject(ObjectParams),
    ObjectMetadata(ObjectParams),
    UploadProgress(ResourceParams),
    AbortUpload(KeyParams),
    LocalLocations,
    LocalList(LocationParams),
    LocalUpload(LocationParams),
    LocalDownload(LocationParams),
    LocalDelete(LocationParams),
    LocalView(LocationParams),
    LocalMkdir(LocationParams),
    LocalDebug,
    TransferCreate,
    TransferCheckConflicts,
    TransferProgress(ResourceParams),
    TransferCancel(JobParams),
    TransferCleanup(JobParams),
    TransferGet(JobParams),
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
    GetNotifications(BucketParams),
    PutNotifications(BucketParams),
    DeleteNotification(NotificationParams),
    TestNotificationEndpoint,
    GetObjectTags(ObjectParams),
    PutObjectTags(ObjectParams),
    DeleteObjectTags(ObjectParams),
    GithubRepoInfo,
    HuggingFaceImport,
}

impl Params {
    /// The `{resource}` a one-time ticket is checked against, on the routes whose
    /// access rule is [`Access::Ticket`] (checked at compile time to have one).
    pub fn ticket_resource(&self) -> Option<&str> {
        self.fields()
            .into_iter()
            .find(|(name, _)| *name == "resource")
            .and_then(|(_, value)| value)
    }
}

/// Whether a route row fits its id: the pattern `path` has every parameter the
/// id's type requires and none it does not read, and a ticket route has a
/// `{resource}`. Every row of [`ROUTES`] is checked with this at compile time:
///
/// ```
/// use s4_http::router::{pattern_fits, Access, RouteId};
/// const _: () = assert!(pattern_fits("/objects/{bucket}/{key}", RouteId::DeleteObject, Access::Protected));
/// ```
///
/// A row whose pattern lacks a parameter of its id does not build:
///
/// ```compile_fail,E0080
/// use s4_http::router::{pattern_fits, Access, RouteId};
/// const _: () = assert!(pattern_fits("/objects/{bucket}", RouteId::DeleteObject, Access::Protected));
/// ```
///
/// and a handler cannot read a parameter under a wrong name (here `kye`), or one
/// its route does not have:
///
/// ```
/// fn key(p: &s4_http::router::ObjectParams) -> &str { &p.key }
/// ```
///
/// ```compile_fail,E0609
/// fn key(p: &s4_http::router::ObjectParams) -> &str { &p.kye }
/// ```
///
/// ```compile_fail,E0609
/// fn key(p: &s4_http::router::BucketParams) -> &str { &p.key }
/// ```
pub const fn pattern_fits(path: &str, id: RouteId, access: Access) -> bool {
    let (required, optional) = id.param_names();
    params::names_fit(
        path,
        required,
        optional,
        matches!(access, Access::Ticket(_)),
    )
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
            id: {
                const {
                    assert!(
                        pattern_fits($path, RouteId::$id, $access),
                        concat!(
                            "a route row does not fit the parameters of ",
                            stringify!($id)
                        )
                    )
                };
                RouteId::$id
            },
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
        let mut lookup = |name: &'static str| {
            found
                .params
                .get(name)
                .map(|raw| {
                    percent_encoding::percent_decode_str(raw)
                        .decode_utf8()
                        .map(|value| value.into_owned())
                        .map_err(|_| BadEncoding)
                })
                .transpose()
        };
        match Params::decode(route.id, &mut lookup) {
            Ok(params) => Matched::Route(route, params),
            Err(BadEncoding) => Matched::BadEncoding,
        }
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

    fn routed(router: &Router, method: Method, path: &str) -> Option<(RouteId, Params)> {
        match router.route(&method, path) {
            Matched::Route(r, p) => Some((r.id, p)),
            _ => None,
        }
    }

    fn field<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
        params
            .fields()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v)
    }

    #[test]
    fn table_builds_and_routes() {
        let r = Router::new();
        assert_eq!(
            routed(&r, Method::GET, "").map(|x| x.1),
            Some(Params::Health)
        );
        assert_eq!(
            routed(&r, Method::GET, "/").map(|x| x.1),
            Some(Params::Health)
        );
        let (_, p) = routed(&r, Method::GET, "/objects/b1/YQ%3D%3D").expect("matches");
        assert_eq!(
            p,
            Params::ListObjects(ListParams {
                bucket: "b1".into(),
                prefix: Some("YQ==".into())
            })
        );
        let (_, p) = routed(&r, Method::GET, "/objects/b1").expect("matches");
        assert_eq!(
            p,
            Params::ListObjects(ListParams {
                bucket: "b1".into(),
                prefix: None
            })
        );
        assert_eq!(
            routed(&r, Method::GET, "/objects/download/b1/YQ").map(|x| x.1),
            Some(Params::DownloadObject(ObjectParams {
                bucket: "b1".into(),
                key: "YQ".into()
            }))
        );
        assert_eq!(
            routed(&r, Method::DELETE, "/objects/b1/YQ").map(|x| x.0),
            Some(RouteId::DeleteObject)
        );
        let (_, p) = routed(&r, Method::GET, "/local/files/local-0/YS9i").expect("matches");
        assert_eq!(
            p,
            Params::LocalList(LocationParams {
                location: "local-0".into(),
                path: Some("YS9i".into())
            })
        );
        let (_, p) = routed(&r, Method::GET, "/local/files/local-0/").expect("matches");
        assert_eq!(
            p,
            Params::LocalList(LocationParams {
                location: "local-0".into(),
                path: None
            })
        );
        assert_eq!(
            routed(&r, Method::DELETE, "/local/files/local-0/YQ").map(|x| x.0),
            Some(RouteId::LocalDelete)
        );
        assert!(routed(&r, Method::GET, "/nope").is_none());
        assert!(routed(&r, Method::PATCH, "/buckets").is_none());
    }

    /// Every row of the table routes to itself and yields each of its pattern's
    /// parameters, decoded, under its name; no other parameter is present.
    #[test]
    fn every_route_yields_its_params() {
        let r = Router::new();
        for route in ROUTES {
            let mut path = String::new();
            let mut expected = Vec::new();
            for segment in route.path.split('/').skip(1) {
                path.push('/');
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        let name = name.trim_start_matches('*');
                        // `%2D` decodes to `-`: values are decoded once.
                        path.push_str(&format!("v%2D{name}"));
                        expected.push((name, format!("v-{name}")));
                    }
                    None => path.push_str(segment),
                }
            }
            let Matched::Route(found, params) = r.route(&route.method, &path) else {
                panic!("{} {} does not route", route.method, route.path);
            };
            assert_eq!(found.id, route.id, "{} {}", route.method, route.path);
            assert_eq!(params.id(), route.id, "{} {}", route.method, route.path);
            for (name, value) in &expected {
                assert_eq!(
                    field(&params, name),
                    Some(value.as_str()),
                    "{} {}: {name}",
                    route.method,
                    route.path
                );
            }
            let present = params.fields().iter().filter(|(_, v)| v.is_some()).count();
            assert_eq!(present, expected.len(), "{} {}", route.method, route.path);
            let (required, _) = route.id.param_names();
            for name in required {
                assert!(field(&params, name).is_some(), "{} {name}", route.path);
            }
            if let Access::Ticket(_) = route.access {
                assert_eq!(
                    params.ticket_resource(),
                    Some("v-resource"),
                    "{}",
                    route.path
                );
            } else {
                assert_eq!(params.ticket_resource(), None, "{}", route.path);
            }
        }
    }

    #[test]
    fn standard_alphabet_slashes_in_local_tail() {
        let r = Router::new();
        let (_, p) = routed(&r, Method::GET, "/local/download/local-0/a+b/c==").expect("matches");
        assert_eq!(field(&p, "path"), Some("a+b/c=="));
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

//! The web console: static assets embedded in the binary and served for every
//! path outside `/api` (under `NB_PREFIX`).
//!
//! * `<prefix>/assets/<name>.<hash>.<ext>`: an asset, addressed by a hash of its
//!   content computed once at start, so it is cached for a year (`immutable`); a
//!   stale hash is 404 (never the wrong bytes under a cached name).
//! * `<prefix>/favicon.ico`, `<prefix>/favicon.svg`: the icon (the browser's own
//!   request never 404s).
//! * any other `GET`/`HEAD` path under the prefix: `index.html` (`no-cache`), so
//!   client-side routes survive a reload; it names the hashed assets.
//!
//! The console speaks only the public API under `/api`. Security headers (CSP
//! without `unsafe-inline` scripts) are added by the pipeline to every response.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};

use crate::body::{self, Body};

/// Cache policy of content-hashed assets.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of `index.html` and other unhashed answers.
pub(crate) const NO_CACHE: &str = "no-cache";

const INDEX: &str = include_str!("../console/index.html");

/// The embedded assets: (file name, content).
const FILES: &[(&str, &[u8])] = &[
    ("app.js", include_bytes!("../console/app.js")),
    ("app.css", include_bytes!("../console/app.css")),
    ("favicon.svg", include_bytes!("../console/favicon.svg")),
];

#[derive(Debug)]
struct Asset {
    bytes: &'static [u8],
    content_type: String,
}

/// The console's assets, hashed once.
#[derive(Debug)]
struct Console {
    /// Keyed by hashed name.
    assets: HashMap<String, Asset>,
    /// Hashed name by plain name.
    names: HashMap<&'static str, String>,
}

fn content_hash(bytes: &[u8]) -> String {
    // Cache busting only (not security): a fixed-key SipHash of the content.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn content_type(name: &str) -> String {
    if name.ends_with(".js") {
        // The type the HTML standard asks for (some tables still say application/).
        return "text/javascript; charset=utf-8".to_string();
    }
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

impl Console {
    fn build() -> Self {
        let mut assets = HashMap::new();
        let mut names = HashMap::new();
        for (name, bytes) in FILES {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed_name = format!("{stem}.{}.{ext}", content_hash(bytes));
            names.insert(*name, hashed_name.clone());
            assets.insert(
                hashed_name,
                Asset {
                    bytes,
                    content_type: content_type(name),
                },
            );
        }
        Console { assets, names }
    }

    fn get() -> &'static Console {
        static CONSOLE: OnceLock<Console> = OnceLock::new();
        CONSOLE.get_or_init(Console::build)
    }

    fn asset_url(&self, prefix: &str, name: &str) -> String {
        format!("{prefix}/assets/{}", self.names[name])
    }

    /// `index.html` with the prefix and the hashed asset URLs filled in.
    fn index(&self, prefix: &str) -> String {
        INDEX
            .replace("%BASE%", &html_attr(prefix))
            .replace("%APP_JS%", &html_attr(&self.asset_url(prefix, "app.js")))
            .replace("%APP_CSS%", &html_attr(&self.asset_url(prefix, "app.css")))
            .replace(
                "%FAVICON%",
                &html_attr(&self.asset_url(prefix, "favicon.svg")),
            )
    }
}

/// Escapes text for a double-quoted HTML attribute.
fn html_attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn respond_bytes(
    method: &Method,
    status: StatusCode,
    content_type: &str,
    cache: &'static str,
    bytes: Bytes,
) -> Response<Body> {
    let length = bytes.len();
    let body = if *method == Method::HEAD {
        body::empty()
    } else {
        body::full(bytes)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn not_found(method: &Method) -> Response<Body> {
    respond_bytes(
        method,
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        NO_CACHE,
        Bytes::from_static(b"Not Found"),
    )
}

/// Answers a request for `path` (the full request path) that is not an API route.
/// `prefix` is the normalized `NB_PREFIX` (`""` or `/x`).
pub(crate) fn respond(method: &Method, path: &str, prefix: &str) -> Response<Body> {
    let Some(rest) = path.strip_prefix(prefix) else {
        return not_found(method);
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return not_found(method);
    }
    if *method != Method::GET && *method != Method::HEAD {
        let mut response = respond_bytes(
            method,
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            NO_CACHE,
            Bytes::from_static(b"Method Not Allowed"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let console = Console::get();
    if let Some(name) = rest.strip_prefix("/assets/") {
        return match console.assets.get(name) {
            Some(asset) => respond_bytes(
                method,
                StatusCode::OK,
                &asset.content_type,
                IMMUTABLE,
                Bytes::from_static(asset.bytes),
            ),
            None => not_found(method),
        };
    }
    if rest == "/favicon.ico" || rest == "/favicon.svg" {
        let asset = &console.assets[&console.names["favicon.svg"]];
        return respond_bytes(
            method,
            StatusCode::OK,
            &asset.content_type,
            "public, max-age=86400",
            Bytes::from_static(asset.bytes),
        );
    }
    respond_bytes(
        method,
        StatusCode::OK,
        "text/html; charset=utf-8",
        NO_CACHE,
        Bytes::from(console.index(prefix)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `src`/`href` values of `index.html` that point at `/assets/`.
    fn asset_urls(index: &str) -> Vec<String> {
        index
            .split('"')
            .filter(|part| part.contains("/assets/"))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn index_names_hashed_assets_served_immutable_with_their_types() {
        let response = respond(&Method::GET, "/", "");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "cache-control"), NO_CACHE);
        let index = text(response).await;
        let urls = asset_urls(&index);
        assert_eq!(urls.len(), 3, "{index}");
        for url in urls {
            let response = respond(&Method::GET, &url, "");
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            assert_eq!(header(&response, "cache-control"), IMMUTABLE);
            let expected = if url.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else if url.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "image/svg+xml"
            };
            assert_eq!(header(&response, "content-type"), expected, "{url}");
            let name = url.trim_start_matches("/assets/");
            let (stem, rest) = name.split_once('.').expect("hashed name");
            let (hash, ext) = rest.split_once('.').expect("hashed name");
            let (_, bytes) = FILES
                .iter()
                .find(|(n, _)| *n == format!("{stem}.{ext}"))
                .expect("embedded file");
            assert_eq!(hash, content_hash(bytes));
            assert_eq!(text(response).await.as_bytes(), *bytes);
        }
    }

    #[tokio::test]
    async fn index_loads_no_inline_script() {
        let index = text(respond(&Method::GET, "/", "")).await;
        assert!(index.contains("<script type=\"module\" src=\"/assets/app."));
        assert!(!index.contains("<script>"), "inline script in index.html");
        assert!(!index.contains(" on"), "inline handler in index.html");
    }

    #[tokio::test]
    async fn unknown_paths_fall_back_to_index_but_unknown_assets_do_not() {
        for path in ["/browse/s3/bucket/a/b", "/settings", "/x.js"] {
            let response = respond(&Method::GET, path, "");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(text(response).await.contains("<title>S4</title>"));
        }
        for path in ["/assets/app.0000000000000000.js", "/assets/nothing"] {
            let response = respond(&Method::GET, path, "");
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn favicon_is_served() {
        for path in ["/favicon.ico", "/favicon.svg"] {
            let response = respond(&Method::GET, path, "");
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header(&response, "content-type"), "image/svg+xml");
            assert!(text(response).await.starts_with("<svg"));
        }
    }

    #[tokio::test]
    async fn prefix_is_honoured() {
        let response = respond(&Method::GET, "/nb/user/x/", "/nb/user/x");
        assert_eq!(response.status(), StatusCode::OK);
        let index = text(response).await;
        assert!(index.contains("content=\"/nb/user/x\""), "{index}");
        let urls = asset_urls(&index);
        assert!(urls.iter().all(|u| u.starts_with("/nb/user/x/assets/")));
        for url in urls {
            assert_eq!(
                respond(&Method::GET, &url, "/nb/user/x").status(),
                StatusCode::OK
            );
        }
        assert_eq!(
            respond(&Method::GET, "/nb/user/x", "/nb/user/x").status(),
            StatusCode::OK
        );
        for path in ["/", "/other", "/nb/user/xy"] {
            assert_eq!(
                respond(&Method::GET, path, "/nb/user/x").status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn head_has_no_body_and_other_methods_are_refused() {
        let response = respond(&Method::HEAD, "/", "");
        assert_eq!(response.status(), StatusCode::OK);
        assert_ne!(header(&response, "content-length"), "0");
        assert!(text(response).await.is_empty());
        let response = respond(&Method::POST, "/", "");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "allow"), "GET, HEAD");
    }

    #[test]
    fn first_load_is_small() {
        let total: usize = INDEX.len() + FILES.iter().map(|(_, b)| b.len()).sum::<usize>();
        // Uncompressed, so the compressed first load is far below 150 KiB.
        assert!(total < 150 * 1024, "first load is {total} bytes");
    }
}

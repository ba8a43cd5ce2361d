//! Download responses shared by object and local-file routes: headers per the API
//! contract (§9.4, §7.4), single byte ranges, conditional GETs.

use bytes::Bytes;
use futures::Stream;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED,
};
use http::{HeaderMap, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s4_core::ByteRange;

use crate::body::{self, Body, BoxError};

/// RFC 5987 `attr-char`s stay literal; everything else is percent-encoded.
const RFC5987: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The `Content-Disposition` value for a download of a file named `name`.
pub(crate) fn content_disposition(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| match c {
            '\r' | '\n' | '"' | ';' | '\\' => '_',
            c => c,
        })
        .collect();
    let truncate = |s: String| -> String { s.chars().take(255).collect() };
    if replaced.is_ascii() {
        format!("attachment; filename=\"{}\"", truncate(replaced))
    } else {
        let ascii: String = replaced
            .chars()
            .map(|c| if c.is_ascii() { c } else { '_' })
            .collect();
        format!(
            "attachment; filename=\"{}\"; filename*=UTF-8''{}",
            truncate(ascii),
            utf8_percent_encode(&replaced, RFC5987)
        )
    }
}

/// Parses a `Range` header holding one byte range. Several ranges, other units or
/// malformed values yield `None` (the whole file is served, as RFC 9110 allows).
pub(crate) fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(http::header::RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    match (start.is_empty(), end.is_empty()) {
        (true, false) => end.parse().ok().map(ByteRange::Suffix),
        (false, true) => start.parse().ok().map(ByteRange::From),
        (false, false) => Some(ByteRange::Bounded(start.parse().ok()?, end.parse().ok()?)),
        (true, true) => None,
    }
}

/// What a streamed file response describes.
#[derive(Debug)]
pub(crate) struct FileMeta<'a> {
    /// Total size of the file.
    pub(crate) size: u64,
    /// Served range.
    pub(crate) range: std::ops::Range<u64>,
    /// Whether a range was requested (206).
    pub(crate) partial: bool,
    /// Entity tag.
    pub(crate) etag: Option<&'a str>,
    /// Last modification.
    pub(crate) last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// `Some(name)` for an attachment; `None` for raw views.
    pub(crate) attachment: Option<&'a str>,
}

/// A streamed `application/octet-stream` response with the contract's headers.
pub(crate) fn file_response<S, E>(meta: FileMeta<'_>, stream: S) -> Response<Body>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    let mut response = Response::new(body::stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        CONTENT_LENGTH,
        HeaderValue::from(meta.range.end - meta.range.start),
    );
    if meta.partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!(
            "bytes {}-{}/{}",
            meta.range.start,
            meta.range.end.saturating_sub(1),
            meta.size
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(CONTENT_RANGE, v);
        }
    }
    let headers = response.headers_mut();
    if let Some(etag) = meta.etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(ETAG, etag);
    }
    if let Some(modified) = meta.last_modified {
        let text = modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.insert(LAST_MODIFIED, v);
        }
    }
    if let Some(name) = meta.attachment {
        if let Ok(v) = HeaderValue::from_str(&content_disposition(name)) {
            headers.insert(CONTENT_DISPOSITION, v);
        }
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Disposition"),
        );
    }
    response
}

/// A 416 response for an object of `size` bytes.
pub(crate) fn range_not_satisfiable(size: u64) -> Response<Body> {
    let mut response = crate::error::ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "Range Not Satisfiable",
        "Requested range not satisfiable",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(CONTENT_RANGE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("a.txt"),
            "attachment; filename=\"a.txt\""
        );
        assert_eq!(
            content_disposition("a\"b;c\\d\r\n.txt"),
            "attachment; filename=\"a_b_c_d__.txt\""
        );
        assert_eq!(
            content_disposition("résumé 😀.txt"),
            "attachment; filename=\"r_sum_ _.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%F0%9F%98%80.txt"
        );
        assert_eq!(
            content_disposition(&"a".repeat(300)).len(),
            "attachment; filename=\"\"".len() + 255
        );
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                http::header::RANGE,
                HeaderValue::from_str(v).expect("valid header"),
            );
            parse_range(&m)
        };
        assert_eq!(h("bytes=0-9"), Some(ByteRange::Bounded(0, 9)));
        assert_eq!(h("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(h("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(h("bytes=0-1,5-6"), None);
        assert_eq!(h("items=0-1"), None);
        assert_eq!(h("bytes=x-1"), None);
    }
}

/// Property tests of `Range` parsing: any header value is parsed or ignored without
/// panicking, and what is parsed is exactly the one range the value spells.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn parse(value: &str) -> Option<ByteRange> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RANGE, HeaderValue::from_str(value).ok()?);
        parse_range(&headers)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_value_parses_or_is_ignored(value in prop_oneof![
            any::<String>(),
            "(bytes|items|Bytes)?=? ?[0-9]{0,22} ?-? ?[0-9]{0,22}(,[0-9-]{0,4})?",
        ]) {
            if let Some(range) = parse(&value) {
                let spec = value.trim().strip_prefix("bytes=");
                prop_assert!(spec.is_some_and(|s| !s.contains(',')), "{value:?}");
                let digits = |n: u64| n.to_string();
                let compact: String = spec.unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
                let expected = match range {
                    ByteRange::Bounded(a, b) => format!("{}-{}", digits(a), digits(b)),
                    ByteRange::From(a) => format!("{}-", digits(a)),
                    ByteRange::Suffix(n) => format!("-{}", digits(n)),
                };
                // Leading zeros and `+` signs aside, the value spells the range.
                let canonical: String = compact
                    .split('-')
                    .map(|n| n.trim_start_matches('+').trim_start_matches('0'))
                    .map(|n| if n.is_empty() { "0" } else { n })
                    .collect::<Vec<_>>()
                    .join("-");
                let expected_canonical: String = expected
                    .split('-')
                    .map(|n| if n.is_empty() { "0" } else { n })
                    .collect::<Vec<_>>()
                    .join("-");
                prop_assert_eq!(canonical, expected_canonical, "{:?}", value);
            }
        }

        #[test]
        fn well_formed_ranges_round_trip(a in any::<u64>(), b in any::<u64>(), form in 0u8..3) {
            let (value, expected) = match form {
                0 => (format!("bytes={a}-{b}"), ByteRange::Bounded(a, b)),
                1 => (format!("bytes={a}-"), ByteRange::From(a)),
                _ => (format!("bytes=-{b}"), ByteRange::Suffix(b)),
            };
            prop_assert_eq!(parse(&value), Some(expected));
        }

        #[test]
        fn content_disposition_is_a_header_value(name in "\\PC{0,300}") {
            let value = content_disposition(&name);
            prop_assert!(HeaderValue::from_str(&value).is_ok(), "{value:?}");
            prop_assert!(value.starts_with("attachment; filename=\""));
        }
    }
}

//! The file part of a multipart upload, as a byte stream that only ends cleanly when
//! the whole request body did.
//!
//! A multipart parser sees a file part's end at the next boundary line, before the
//! request body is over: a client that vanishes one byte short of the end, or mid-way
//! through a chunked body's last chunk, would otherwise have sent a "complete" file.
//! [`field_stream`] therefore reads on after the file part — through any further
//! parts and the closing boundary to the very end of the body — and yields an error
//! instead of ending when the body turns out truncated, so the upload fails and
//! nothing is stored.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http::header::CONTENT_TYPE;
use http::Request;
use hyper::body::Incoming;
use s4_core::Error;

use crate::body::BoxError;
use crate::error::ApiError;

type Inner = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A request body read by the multipart parser first and by the final check after.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Inner>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.lock() {
            Ok(mut inner) => inner.as_mut().poll_next(cx),
            Err(_) => Poll::Ready(Some(Err(BoxError::from("request body lock poisoned")))),
        }
    }
}

/// The first file part of a multipart request, with what follows it.
pub(crate) struct FileField {
    field: multer::Field<'static>,
    rest: multer::Multipart<'static>,
    body: SharedBody,
}

impl FileField {
    /// The part's own headers (e.g. a `Content-Length` the client declared).
    pub(crate) fn headers(&self) -> &http::HeaderMap {
        self.field.headers()
    }
}

impl std::fmt::Debug for FileField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileField")
            .field("name", &self.field.name())
            .field("file_name", &self.field.file_name())
            .finish_non_exhaustive()
    }
}

/// Finds the first multipart part carrying a file name (§9.1), and its content type.
///
/// # Errors
/// 400 for a malformed multipart body before the file part.
pub(crate) async fn first_file_field(
    request: Request<Incoming>,
) -> Result<Option<(FileField, Option<String>)>, ApiError> {
    let Some(boundary) = boundary_of(request.headers()) else {
        return Ok(None);
    };
    first_file_field_in(Box::pin(crate::body::data_stream(request)), boundary).await
}

/// The multipart boundary a `Content-Type` header declares, if any. An empty
/// `boundary=` (which `multer` returns as `""`) is no boundary (RFC 2046: 1–70
/// characters).
fn boundary_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .filter(|b| !b.is_empty())
}

/// [`first_file_field`] over any body stream with a known boundary.
async fn first_file_field_in(
    body: Inner,
    boundary: String,
) -> Result<Option<(FileField, Option<String>)>, ApiError> {
    let body = SharedBody(Arc::new(Mutex::new(body)));
    let mut multipart = multer::Multipart::new(body.clone(), boundary);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.file_name().is_some() => {
                let content_type = field.content_type().map(|m| m.essence_str().to_string());
                return Ok(Some((
                    FileField {
                        field,
                        rest: multipart,
                        body,
                    },
                    content_type,
                )));
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid multipart body: {e}"
                )))
            }
        }
    }
}

fn stream_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamReadFailed(source) => {
            Error::invalid("Upload interrupted: the request body could not be read")
                .with_source(SourceText(source.to_string()))
        }
        other => Error::invalid(format!("Invalid multipart body: {other}")),
    }
}

/// Reads the rest of the request after the file part: further parts (discarded),
/// the closing boundary, and the body's end.
async fn finish(mut rest: multer::Multipart<'static>, body: SharedBody) -> Result<(), Error> {
    loop {
        match rest.next_field().await {
            Ok(Some(mut field)) => while field.chunk().await.map_err(stream_error)?.is_some() {},
            Ok(None) => break,
            Err(e) => return Err(stream_error(e)),
        }
    }
    drop(rest);
    let mut body = body;
    while let Some(item) = body.next().await {
        item.map_err(|e| {
            Error::invalid("Upload interrupted: the request body could not be read")
                .with_source(SourceText(e.to_string()))
        })?;
    }
    Ok(())
}

/// The file part's bytes as a stream of core results, ending only once the whole
/// request body arrived intact (see the module documentation).
pub(crate) fn field_stream(
    file: FileField,
) -> impl Stream<Item = s4_core::Result<Bytes>> + Send + 'static {
    let FileField { field, rest, body } = file;
    let data = field.map_err(stream_error);
    let tail = futures::stream::once(finish(rest, body))
        .filter_map(|done| std::future::ready(done.err().map(Err)));
    data.chain(tail)
}

#[derive(Debug)]
struct SourceText(String);
impl std::fmt::Display for SourceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SourceText {}

/// Property tests of multipart parsing: arbitrary `Content-Type` values and bodies
/// (cut into arbitrary chunks, truncated or corrupted) never panic; a well-formed
/// body streams exactly the file's bytes; a truncated one never ends cleanly.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("test runtime")
    }

    /// The body cut at `cuts` (positions taken modulo its length) into chunks.
    fn chunked(body: Vec<u8>, cuts: &[usize]) -> Inner {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        points.dedup();
        let chunks: Vec<Result<Bytes, BoxError>> = points
            .windows(2)
            .map(|w| Ok(Bytes::copy_from_slice(&body[w[0]..w[1]])))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    /// What parsing `body` yields: `None` without a file part, else the streamed
    /// bytes or the first error.
    fn parse(body: Inner, boundary: &str) -> Option<Result<Vec<u8>, String>> {
        runtime().block_on(async {
            let (field, _) = match first_file_field_in(body, boundary.to_string()).await {
                Ok(Some(found)) => found,
                Ok(None) => return None,
                Err(e) => return Some(Err(format!("{e:?}"))),
            };
            let mut stream = std::pin::pin!(field_stream(field));
            let mut out = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(bytes) => out.extend_from_slice(&bytes),
                    Err(e) => return Some(Err(e.to_string())),
                }
            }
            Some(Ok(out))
        })
    }

    fn well_formed(boundary: &str, data: &[u8], extra_field: bool) -> Vec<u8> {
        let mut body = Vec::new();
        if extra_field {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    /// Found by `any_content_type_yields_a_boundary_or_none`: `boundary=` with no
    /// value used to be parsed with an empty boundary.
    #[test]
    fn empty_boundary_is_no_boundary() {
        for value in [
            "multipart/form-data; boundary=",
            "multipart/form-data;boundary=\"\"",
        ] {
            let mut headers = http::HeaderMap::new();
            headers.insert(CONTENT_TYPE, http::HeaderValue::from_static(value));
            assert_eq!(boundary_of(&headers), None, "{value}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_content_type_yields_a_boundary_or_none(value in prop_oneof![
            "\\PC{0,60}",
            "multipart/form-data; ?boundary=\"?[ -~]{0,30}\"?(; ?charset=utf-8)?",
        ]) {
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                headers.insert(CONTENT_TYPE, v);
            }
            if let Some(boundary) = boundary_of(&headers) {
                prop_assert!(!boundary.is_empty(), "{value:?}");
            }
        }

        #[test]
        fn well_formed_bodies_stream_the_file(
            boundary in "[A-Za-z0-9'()+_,./:=?-]{1,40}",
            data in prop::collection::vec(any::<u8>(), 0..2048),
            extra_field in any::<bool>(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let delimiter = format!("\r\n--{boundary}");
            prop_assume!(!data.windows(delimiter.len()).any(|w| w == delimiter.as_bytes()));
            let body = well_formed(&boundary, &data, extra_field);
            prop_assert_eq!(parse(chunked(body, &cuts), &boundary), Some(Ok(data)));
        }

        /// A body cut short anywhere never yields a complete file.
        #[test]
        fn truncated_bodies_never_complete(
            data in prop::collection::vec(any::<u8>(), 1..512),
            keep in any::<prop::sample::Index>(),
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let boundary = "pTbOuNdArY";
            let mut body = well_formed(boundary, &data, false);
            // Keep at most the body up to the closing delimiter without its `--`.
            let end = body.len() - "--\r\n".len();
            body.truncate(keep.index(end + 1));
            let result = parse(chunked(body, &cuts), boundary);
            prop_assert!(!matches!(result, Some(Ok(ref bytes)) if *bytes == data), "{result:?}");
        }

        #[test]
        fn arbitrary_bodies_never_panic(
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..512),
                ("(--b\r\n|\r\n|Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n|--b--|[a-z]{0,8}){0,12}")
                    .prop_map(String::into_bytes),
            ],
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let _ = parse(chunked(body, &cuts), "b");
        }
    }
}

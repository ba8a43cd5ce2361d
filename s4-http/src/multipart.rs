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
pub struct FileField {
    field: multer::Field<'static>,
    rest: multer::Multipart<'static>,
    body: SharedBody,
}

impl FileField {
    /// The part's own headers (e.g. a `Content-Length` the client declared).
    pub fn headers(&self) -> &http::HeaderMap {
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
pub async fn first_file_field(
    request: Request<Incoming>,
) -> Result<Option<(FileField, Option<String>)>, ApiError> {
    let boundary = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        return Ok(None);
    };
    let body = SharedBody(Arc::new(Mutex::new(
        Box::pin(crate::body::data_stream(request)) as Inner,
    )));
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
pub fn field_stream(
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

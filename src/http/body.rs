//! Reading an upload from any of the accepted request forms, enforcing the byte limit
//! while the body streams in (never after buffering an unbounded body).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use crate::error::Error;
use crate::AppState;

/// Multipart part names that carry the image.
const FILE_PARTS: &[&str] = &["image", "file"];
const MAX_FILENAME_CHARS: usize = 255;

/// The image bytes of an upload and the file name the client gave, if any.
pub struct UploadBody {
    pub bytes: Bytes,
    pub filename: Option<String>,
}

/// The request's Content-Type, lowercased ("" when absent), for dispatching on the form.
pub fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Read the image from a multipart form, a raw body, or (JSON `{"url": …}`) a remote URL.
pub async fn read_upload(req: Request, state: &AppState) -> Result<UploadBody, Error> {
    let max_bytes = state.config.max_upload_bytes;
    let content_type = content_type(&req);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let is_multipart = content_type.starts_with("multipart/form-data");
    let overhead = if is_multipart {
        super::MULTIPART_OVERHEAD
    } else {
        0
    };
    if declared.is_some_and(|len| len > max_bytes + overhead) {
        return Err(Error::TooLarge(max_bytes));
    }
    // An upload needs the pool (hashing, validation): when it is full, refuse before
    // buffering up to the byte limit for nothing. Bodies being read at once are bounded
    // like the pool's admissions (workers + queue), so slow uploaders cannot make the
    // server hold more buffered bytes than the pool could ever take.
    let _reading = match state.upload_slots.clone().try_acquire_owned() {
        Ok(slot) if state.pool.has_room() => slot,
        _ => {
            state.telemetry.shed();
            return Err(Error::Overloaded);
        }
    };
    if is_multipart {
        return read_multipart(req, max_bytes).await;
    }
    if content_type.starts_with("application/json") {
        let (bytes, filename) = super::fetch::read_url_upload(req, state).await?;
        return Ok(UploadBody {
            bytes,
            filename: filename.as_deref().and_then(clean_filename),
        });
    }
    // Any other Content-Type is taken as the raw image: the format is sniffed from the
    // bytes anyway, and `curl --data-binary` sends form-urlencoded by default.
    let filename = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "filename")
            .map(|(_, v)| v.into_owned())
    });
    let stream = req.into_body().into_data_stream();
    let bytes = collect_limited(stream, max_bytes, |e: axum::Error| {
        stalled(&e).unwrap_or_else(|| Error::BadRequest(format!("could not read the body: {e}")))
    })
    .await?;
    Ok(UploadBody {
        bytes,
        filename: filename.and_then(|f| clean_filename(&f)),
    })
}

async fn read_multipart(req: Request, max_bytes: u64) -> Result<UploadBody, Error> {
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| Error::BadRequest(format!("malformed multipart body: {e}")))?;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| part_error(e, max_bytes))?
    {
        if is_file_part(&field) {
            return read_part(field, max_bytes).await;
        }
        // Other form fields are ignored (the parser drains them on the next call).
    }
    Err(Error::EmptyUpload)
}

/// The multipart upload path on a body given as chunks (as they might arrive off the
/// wire), for the fuzz target and its regression replay: the same parser, part
/// selection and limit as `POST /image`. Needs no runtime: nothing in it waits on I/O.
pub async fn read_multipart_chunks(
    content_type: &str,
    chunks: Vec<Bytes>,
    max_bytes: u64,
) -> Result<UploadBody, Error> {
    let body = Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/image")
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    read_multipart(req, max_bytes).await
}

/// Whether a part carries an image (`image` or `file`).
pub fn is_file_part(field: &Field<'_>) -> bool {
    field.name().is_some_and(|n| FILE_PARTS.contains(&n))
}

/// Read one part's bytes under the limit, keeping its file name.
pub async fn read_part(field: Field<'_>, max_bytes: u64) -> Result<UploadBody, Error> {
    let filename = field.file_name().and_then(clean_filename);
    let bytes = collect_limited(field, max_bytes, |e| part_error(e, max_bytes)).await?;
    Ok(UploadBody { bytes, filename })
}

pub fn part_error(e: MultipartError, max_bytes: u64) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(max_bytes)
    } else if let Some(timeout) = stalled(&e) {
        timeout
    } else {
        Error::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Concatenate a byte stream, failing with `too_large` as soon as it passes the limit.
async fn collect_limited<S, E>(
    stream: S,
    max_bytes: u64,
    to_error: impl Fn(E) -> Error,
) -> Result<Bytes, Error>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(&to_error)?;
        if buf.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(Error::TooLarge(max_bytes));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The error a request body yields when the client sent nothing for the idle timeout,
/// or the whole body took longer than the body timeout.
#[derive(Debug)]
pub struct BodyStalled(Duration);

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body did not arrive within {:?}", self.0)
    }
}

impl std::error::Error for BodyStalled {}

/// `request_timeout` when a body error was caused, however deeply wrapped (multipart,
/// body limit), by [`BodyStalled`].
fn stalled(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(BodyStalled(idle)) = err.downcast_ref::<BodyStalled>() {
            return Some(Error::RequestTimeout(idle.as_secs().max(1)));
        }
        source = err.source();
    }
    None
}

/// Give a request body its deadlines: when the handler waits for more body for `idle`
/// and nothing arrives, or the whole body has not arrived `total` after the headers,
/// the body ends with [`BodyStalled`]. For `idle`, only time spent waiting on the client
/// counts, so a handler that reads late is not penalised. Zero turns either off.
pub fn with_body_timeouts(
    req: axum::http::Request<Incoming>,
    idle: Duration,
    total: Duration,
) -> Request {
    if idle.is_zero() && total.is_zero() {
        return req.map(Body::new);
    }
    req.map(|inner| {
        Body::new(TimedBody {
            inner,
            idle: (!idle.is_zero()).then_some(idle),
            idle_deadline: None,
            total,
            total_at: (!total.is_zero()).then(|| tokio::time::Instant::now() + total),
            total_deadline: None,
        })
    })
}

struct TimedBody {
    inner: Incoming,
    idle: Option<Duration>,
    /// Armed when the handler starts waiting, cleared when a frame arrives.
    idle_deadline: Option<Pin<Box<Sleep>>>,
    total: Duration,
    /// When the whole body must be in, counted from the request's arrival: a body
    /// dripping a byte at a time still ends. Its timer is made at the first read, so
    /// requests whose body is never read cost no timer.
    total_at: Option<tokio::time::Instant>,
    total_deadline: Option<Pin<Box<Sleep>>>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(at) = this.total_at {
            let total = this
                .total_deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if total.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(Box::new(BodyStalled(this.total)))));
            }
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.idle_deadline = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(idle) = this.idle else {
            return Poll::Pending;
        };
        let deadline = this
            .idle_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyStalled(idle)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Keep only the last path component, without control characters, bounded in length.
fn clean_filename(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(
            clean_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_filename("C:\\x\\a\u{0}b.jpg").as_deref(),
            Some("ab.jpg")
        );
        assert_eq!(clean_filename("  "), None);
    }
}

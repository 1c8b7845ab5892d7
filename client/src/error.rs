//! The one error type of the client.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

/// Everything that can go wrong talking to progimage.
///
/// Errors the server answered carry its stable `code` (such as `not_found` or
/// `unsupported_format`), the HTTP status and the human message; [`Error::code`],
/// [`Error::status`] and [`Error::message`] read them whatever the variant.
///
/// ```
/// use progimage_client::Error;
///
/// fn explain(e: &Error) -> String {
///     match e.code() {
///         Some("not_found") => "no such image".to_owned(),
///         Some(code) => format!("the server refused it: {code}"),
///         None => format!("no answer from the server: {e}"),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status.
    #[error("{status} {code}: {message}")]
    Api {
        /// The HTTP status, e.g. `404`.
        status: StatusCode,
        /// The server's stable snake_case code, e.g. `not_found`. For an answer without
        /// a JSON error body (a proxy's page, say) it is `http_<status>`.
        code: String,
        /// The server's human-readable message.
        message: String,
        /// `Retry-After` of a `503`/`429`, when the server sent one.
        retry_after: Option<Duration>,
        /// The `X-Request-Id` of the failed request, for the server's logs.
        request_id: Option<String>,
    },
    /// The request could not be sent or its answer not read (connection refused,
    /// timeout, TLS, a body that is not the JSON expected).
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The base URL given to the client is not an absolute `http`/`https` URL.
    #[error("invalid base URL `{0}`: it must be an absolute http:// or https:// URL")]
    BaseUrl(String),
    /// An image id that is not 64 hex digits (refused before anything is sent).
    #[error("`{0}` is not an image id (64 hex digits)")]
    InvalidId(String),
    /// The server's answer was not what the API contract describes.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl Error {
    /// The server's stable error code (`not_found`, `bad_transform`, …), or `None`
    /// when the server never answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of a server error (or of a failed response read by `reqwest`).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Http(e) => e.status(),
            _ => None,
        }
    }

    /// The server's message for an [`Error::Api`], otherwise the error's own text.
    pub fn message(&self) -> String {
        match self {
            Error::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Build the error for a non-success response, reading its JSON body.
    pub(crate) async fn from_response(resp: reqwest::Response) -> Error {
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.code, b.message),
            Err(_) => (
                format!("http_{}", status.as_u16()),
                String::from_utf8_lossy(&body).trim().to_owned(),
            ),
        };
        Error::api(status, code, message, retry_after, request_id)
    }

    pub(crate) fn api(
        status: StatusCode,
        code: String,
        message: String,
        retry_after: Option<Duration>,
        request_id: Option<String>,
    ) -> Error {
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            message
        };
        Error::Api {
            status,
            code,
            message,
            retry_after,
            request_id,
        }
    }
}

/// `{"code": "…", "message": "…"}`, the body of every JSON error answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// `Retry-After` in whole seconds (the form progimage sends). An HTTP date is ignored,
/// and the client falls back to its own backoff.
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

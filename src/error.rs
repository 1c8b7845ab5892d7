//! The one error type of the HTTP surface. Every failure a client can see is a variant
//! here, and this file is the only place that maps failures to statuses and stable codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::fetch::FetchError;
use crate::imaging::ImagingError;
use crate::store::StoreError;

/// Seconds a client is told to wait before retrying a shed request.
const RETRY_AFTER_SECS: u64 = 1;

/// Errors carry owned strings only, so one rendered result can be shared with every
/// request waiting on the same single-flight render (hence `Clone`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the request carried no image")]
    EmptyUpload,
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    UnsupportedFormat(String),
    #[error("{0}")]
    CorruptImage(String),
    #[error("{0}")]
    TooManyPixels(String),
    #[error("no image with this id")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    /// With the `Allow` value when the handler knows it better than the router.
    #[error("method not allowed on this route")]
    MethodNotAllowed(Option<&'static str>),
    #[error("`If-Match` does not match this resource's ETag")]
    PreconditionFailed,
    #[error("{0}")]
    BadId(String),
    #[error("{0}")]
    BadFormat(String),
    #[error("{0}")]
    BadTransform(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body did not arrive within its time limit ({0} s)")]
    RequestTimeout(u64),
    /// Work the server started took longer than its deadline (504).
    #[error("{0}")]
    Timeout(String),
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    ForbiddenUrl(String),
    #[error("{0}")]
    FetchFailed(String),
    #[error("the server is at capacity; retry shortly")]
    Overloaded,
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    #[error("storage is unavailable: {0}")]
    StorageUnavailable(String),
    #[error("storage is full")]
    InsufficientStorage,
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code, safe to match on.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::EmptyUpload
            | Error::BadId(_)
            | Error::BadFormat(_)
            | Error::BadTransform(_)
            | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Error::BadSignature(_) | Error::ForbiddenUrl(_) => StatusCode::FORBIDDEN,
            Error::FetchFailed(_) => StatusCode::BAD_GATEWAY,
            Error::NotFound | Error::NoRoute => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::CorruptImage(_) | Error::TooManyPixels(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Overloaded | Error::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::EmptyUpload => "empty_upload",
            Error::TooLarge(_) => "too_large",
            Error::UnsupportedFormat(_) => "unsupported_format",
            Error::CorruptImage(_) => "corrupt_image",
            Error::TooManyPixels(_) => "too_many_pixels",
            Error::NotFound | Error::NoRoute => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::BadId(_) => "bad_id",
            Error::BadFormat(_) => "bad_format",
            Error::BadTransform(_) => "bad_transform",
            Error::BadRequest(_) => "bad_request",
            Error::RequestTimeout(_) => "request_timeout",
            Error::Unauthorized => "unauthorized",
            Error::PreconditionFailed => "precondition_failed",
            Error::BadSignature(_) => "bad_signature",
            Error::ForbiddenUrl(_) => "forbidden_url",
            Error::FetchFailed(_) => "fetch_failed",
            Error::Overloaded => "overloaded",
            Error::Timeout(_) => "timeout",
            Error::RateLimited(_) => "rate_limited",
            Error::StorageUnavailable(_) => "storage_unavailable",
            Error::InsufficientStorage => "insufficient_storage",
            Error::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, Error::Overloaded) {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after = match self {
            Error::Overloaded | Error::StorageUnavailable(_) => Some(RETRY_AFTER_SECS),
            Error::RateLimited(secs) => Some(secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Error::TooLarge(_) | Error::RequestTimeout(_)) {
            // The body was not read to its end, so the connection cannot carry another
            // request: say so (RFC 9112 §9.6) rather than just closing it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Error::MethodNotAllowed(Some(allow)) = self {
            // RFC 9110 §15.5.6: a 405 lists what the resource takes.
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if matches!(self, Error::Unauthorized) {
            // RFC 9110 §11.6.1: a 401 names the scheme it wants.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A path parameter axum could not extract (in practice: percent-encoded bytes that are
/// not UTF-8). Named by the parameter, so `/image/%ff` is a `bad_id` like any bad id.
impl From<axum::extract::rejection::PathRejection> for Error {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        let key = match &rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key }
                | ErrorKind::ParseErrorAtKey { key, .. } => Some(key.clone()),
                _ => None,
            },
            _ => None,
        };
        let message = format!("the URL path cannot be read: {}", rejection.body_text());
        match key.as_deref() {
            Some("id") => Error::BadId(message),
            Some("spec") => Error::BadTransform(message),
            _ => Error::BadRequest(message),
        }
    }
}

impl From<ImagingError> for Error {
    fn from(e: ImagingError) -> Self {
        match e {
            ImagingError::Unsupported(m) => Error::UnsupportedFormat(m),
            ImagingError::Corrupt(m) => Error::CorruptImage(m),
            ImagingError::TooManyPixels(m) => Error::TooManyPixels(m),
            ImagingError::BadSpec(m) => Error::BadTransform(m),
            ImagingError::Encode(m) => Error::Internal(format!("encoding failed: {m}")),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound,
            StoreError::Full => Error::InsufficientStorage,
            StoreError::Unavailable(m) => Error::StorageUnavailable(m),
        }
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Forbidden(m) => Error::ForbiddenUrl(m),
            FetchError::Failed(m) => Error::FetchFailed(m),
            FetchError::TooLarge(limit) => Error::TooLarge(limit),
            FetchError::BadUrl(m) => Error::BadRequest(m),
        }
    }
}

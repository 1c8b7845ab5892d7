//! Extractors whose rejections are the service's JSON errors: axum's own answer in plain
//! text (a path that is not UTF-8, say), and every error must be `{"code","message"}`.

use axum::extract::FromRequestParts;

use crate::error::Error;

/// `axum::extract::Path`, rejected as `bad_id` (an `id` parameter), `bad_transform` (a
/// `spec`) or `bad_request`; see `From<PathRejection> for Error`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

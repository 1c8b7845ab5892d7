//! Direct conversion: an image in the request, the transformed bytes in the response,
//! nothing stored (`POST /transform/{spec}.{ext}`, `POST /transform.{ext}?…`).

use std::sync::Arc;

use super::extract::Path;
use axum::extract::{RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::body::read_upload;
use super::conditional::protect_active_content;
use super::image::query_pairs;
use super::variant::{output_format, render_on_pool, split_spec_file};
use crate::error::{Error, ErrorBody};
use crate::imaging::Spec;
use crate::AppState;

/// Query keys of an upload that are not transforms.
const UPLOAD_KEYS: &[&str] = &["filename"];

/// `POST /transform/{spec}.{ext}`
#[utoipa::path(post, path = "/transform/{spec}.{ext}", tag = "transform",
    params(
        ("spec" = String, Path, description = "transforms, e.g. `w_300,h_200,fit_cover`"),
        ("ext" = String, Path, description = "output format"),
    ),
    request_body(description = "the image, in any upload form of POST /image", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "the transformed image"),
        (status = 400, description = "bad_format, bad_transform or empty_upload", body = ErrorBody),
        (status = 413, description = "too_large", body = ErrorBody),
        (status = 415, description = "unsupported_format", body = ErrorBody),
        (status = 422, description = "corrupt_image or too_many_pixels", body = ErrorBody),
    ))]
pub async fn with_path_spec(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, Error> {
    let (spec, ext) = split_spec_file(&file, "/transform")?;
    let spec = state
        .presets
        .resolve(Some(spec), transform_pairs(query.as_deref()))?;
    let body = read_upload(req, &state).await?;
    render_bytes(&state, body.bytes, spec, ext).await
}

/// `POST /transform.{ext}?w=…`: the one-segment root route for POST.
#[utoipa::path(post, path = "/transform.{ext}", tag = "transform",
    params(("ext" = String, Path, description = "output format"), super::image::TransformParams),
    request_body(description = "the image, in any upload form of POST /image", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "the transformed image"),
        (status = 400, description = "bad_format, bad_transform or empty_upload", body = ErrorBody),
    ))]
pub async fn with_query_spec(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, Error> {
    let Some(ext) = segment.strip_prefix("transform.") else {
        // `POST /fetch.{ext}` or `POST /{spec}?url=`: routes that exist for GET.
        let fetch_route = segment.starts_with("fetch.")
            || query_pairs(query.as_deref())
                .iter()
                .any(|(k, _)| k == "url");
        return Err(if fetch_route {
            Error::MethodNotAllowed(Some("GET,HEAD"))
        } else {
            Error::NoRoute
        });
    };
    let spec = state
        .presets
        .resolve(None, transform_pairs(query.as_deref()))?;
    let body = read_upload(req, &state).await?;
    render_bytes(&state, body.bytes, spec, ext).await
}

fn transform_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let mut pairs = query_pairs(query);
    pairs.retain(|(k, _)| !UPLOAD_KEYS.contains(&k.as_str()));
    pairs
}

/// Validate, transform and encode bytes that are not stored (direct conversion, fetch).
pub async fn render_bytes(
    state: &AppState,
    bytes: Bytes,
    spec: Spec,
    ext: &str,
) -> Result<Response, Error> {
    let format = output_format(ext)?;
    if bytes.is_empty() {
        return Err(Error::EmptyUpload);
    }
    state.rate_limit.check()?;
    state.telemetry.bytes_in(bytes.len() as u64);
    let rendered = render_on_pool(state, bytes, spec, format).await?;
    let mut response = (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        rendered,
    )
        .into_response();
    protect_active_content(response.headers_mut(), format.content_type());
    Ok(response)
}

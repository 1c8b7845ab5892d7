//! ASCII art without storing: `POST /ascii?width=N`, and the routes of the original
//! image-to-ASCII service (`POST /` multipart or JSON, `GET /image/{id}/ascii?size=N`).

use std::sync::Arc;

use super::extract::Path;
use axum::extract::{FromRequest, Multipart, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::body::{content_type, is_file_part, part_error, read_part, read_upload, UploadBody};
use super::image::{parse_id, query_pairs};
use super::transform::render_bytes;
use super::variant::{render_variant, VariantRequest};
use super::{signing, MULTIPART_OVERHEAD};
use crate::error::{Error, ErrorBody};
use crate::imaging::Spec;
use crate::AppState;

/// Turn the old services' parameters (`width`, `size`) into the transform grammar's `w`;
/// everything else (`charset`, `invert`, `bri`, …) passes through.
fn ascii_spec(state: &AppState, pairs: Vec<(String, String)>) -> Result<Spec, Error> {
    let pairs = pairs.into_iter().map(|(k, v)| match k.as_str() {
        "width" | "size" | "columns" => ("w".to_owned(), v),
        _ => (k, v),
    });
    let spec = Spec::parse_pairs(pairs)?;
    state.presets.check_free_form(&spec)?;
    Ok(spec)
}

/// ASCII art of the image in the body (any upload form), nothing stored.
#[utoipa::path(post, path = "/ascii", tag = "ascii",
    params(
        ("width" = Option<u32>, Query, description = "columns, 1..=1000 (default 100); `size` is a synonym"),
        ("charset" = Option<String>, Query, description = "2..=64 characters, lightest first"),
        ("invert" = Option<u8>, Query, description = "1: light pixels get dense characters"),
    ),
    request_body(description = "the image, in any upload form of POST /image", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "ASCII art, `w` characters per line", content_type = "text/plain"),
        (status = 400, description = "bad_transform or empty_upload", body = ErrorBody),
    ))]
pub async fn post_ascii(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, Error> {
    let mut pairs = query_pairs(query.as_deref());
    pairs.retain(|(k, _)| k != "filename");
    let spec = ascii_spec(&state, pairs)?;
    let body = read_upload(req, &state).await?;
    render_bytes(&state, body.bytes, spec, "txt").await
}

/// `GET /image/{id}/ascii?size=N`: the stored image's ASCII art, cached like any variant.
#[utoipa::path(get, path = "/image/{id}/ascii", tag = "compatibility",
    params(
        ("id" = String, Path, description = "image id"),
        ("size" = Option<u32>, Query, description = "columns (default 100); `width` and `w` work too"),
    ),
    responses(
        (status = 200, description = "ASCII art", content_type = "text/plain"),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub async fn stored_ascii(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    signing::verify(state.config.signing_key.as_deref(), &uri)?;
    let spec = ascii_spec(&state, query_pairs(query.as_deref()))?;
    let request = VariantRequest::new(parse_id(&id)?, "txt", spec)?;
    render_variant(&state, request, &headers).await
}

#[derive(Deserialize)]
struct LegacyJson {
    width: Option<u32>,
    image: String,
}

/// The original service's entry point. Multipart `image` (with optional form fields
/// `width`/`size`, `charset`, `invert`, `output`) answers with the ASCII text; JSON
/// `{"width": 80, "image": "<base64>"}` answers `{"art": "…"}`, and its errors are
/// `{"error": "…"}` with status 400, as that service's clients expect.
#[utoipa::path(post, path = "/", tag = "compatibility",
    request_body(description = "multipart/form-data with an `image` part (and `output=raw`), or JSON `{\"width\": 80, \"image\": \"<base64>\"}`", content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "ASCII text (multipart) or `{\"art\": \"…\"}` (JSON)"),
        (status = 400, description = "`{\"error\": \"…\"}` for JSON requests; the usual error body otherwise"),
    ))]
pub async fn legacy_root(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if content_type(&req).starts_with("application/json") {
        return match legacy_json(&state, req).await {
            Ok(art) => Json(json!({ "art": art })).into_response(),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response(),
        };
    }
    legacy_multipart(&state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn legacy_json(state: &AppState, req: Request) -> Result<String, Error> {
    let max = state.config.max_upload_bytes;
    // Base64 is 4/3 of the image, plus line breaks (MIME-style, CRLF every 76
    // characters at most) and the JSON around it. The decoded image is checked below.
    let encoded = max.div_ceil(3) * 4;
    let limit = usize::try_from(encoded + encoded / 38 + MULTIPART_OVERHEAD).unwrap_or(usize::MAX);
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| Error::TooLarge(max))?;
    let request: LegacyJson = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"width\", \"image\"}}: {e}")))?;
    let width = request.width;
    // Decoding up to ~67 MB of base64 is CPU work: keep it off the async threads.
    let image = state
        .pool
        .run(move || {
            // Python's `base64.encodebytes`, the `base64` tool and MIME wrap lines; the
            // old service's decoder ignored the line breaks, so this one does too.
            let mut text = request.image.into_bytes();
            text.retain(|b| !b.is_ascii_whitespace());
            base64::engine::general_purpose::STANDARD.decode(text)
        })
        .await?
        .map_err(|e| Error::BadRequest(format!("`image` is not base64: {e}")))?;
    if image.len() as u64 > max {
        return Err(Error::TooLarge(max));
    }
    let spec = Spec {
        width,
        ..Spec::default()
    };
    state.presets.check_free_form(&spec)?;
    let response = render_bytes(state, image.into(), spec, "txt").await?;
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| Error::Internal(e.to_string()))
}

async fn legacy_multipart(state: &AppState, req: Request) -> Result<Response, Error> {
    let max = state.config.max_upload_bytes;
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| Error::BadRequest(format!("expected a multipart form with `image`: {e}")))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut upload: Option<UploadBody> = None;
    while let Some(field) = form.next_field().await.map_err(|e| part_error(e, max))? {
        if is_file_part(&field) {
            if upload.is_none() {
                upload = Some(read_part(field, max).await?);
            }
            continue;
        }
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.map_err(|e| part_error(e, max))?;
        if name != "output" {
            fields.push((name, value));
        }
    }
    let upload = upload.ok_or(Error::EmptyUpload)?;
    render_bytes(state, upload.bytes, ascii_spec(state, fields)?, "txt").await
}

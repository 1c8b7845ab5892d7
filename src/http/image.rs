//! `/image…` routes: upload, metadata, originals, variants, listing and deletion.

use std::sync::Arc;
use std::time::Instant;

use super::extract::Path;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::{bearer_token, key_matches};
use super::body::{read_upload, UploadBody};
use super::conditional::immutable_bytes;
use super::signing;
use super::variant::{render_variant, split_spec_file, VariantRequest};
use crate::config::Originals;
use crate::error::{Error, ErrorBody};
use crate::imaging::{self, Format, Spec};
use crate::store::{is_valid_id, ImageMeta, StoreError};
use crate::AppState;

/// Upload an image (multipart part `image`/`file`, or the raw bytes as the body).
#[utoipa::path(post, path = "/image", tag = "images",
    params(("filename" = Option<String>, Query, description = "file name for a raw-body upload")),
    request_body(description = "multipart/form-data with a part named `image` or `file`, or the raw image bytes (`image/*`, `application/octet-stream`)", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored new bytes", body = ImageMeta),
        (status = 200, description = "these bytes were already stored", body = ImageMeta),
        (status = 400, description = "empty_upload", body = ErrorBody),
        (status = 413, description = "too_large", body = ErrorBody),
        (status = 415, description = "unsupported_format", body = ErrorBody),
        (status = 422, description = "corrupt_image or too_many_pixels", body = ErrorBody),
        (status = 503, description = "overloaded or storage_unavailable", body = ErrorBody),
        (status = 507, description = "insufficient_storage", body = ErrorBody),
    ))]
pub async fn upload(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, Error> {
    let body = read_upload(req, &state).await?;
    let (status, meta) = ingest(&state, body).await?;
    let location = format!("/image/{}", meta.id);
    Ok((status, [(header::LOCATION, location)], Json(meta)).into_response())
}

/// Validate and store uploaded bytes; 201 for new bytes, 200 when already stored.
pub async fn ingest(state: &AppState, body: UploadBody) -> Result<(StatusCode, ImageMeta), Error> {
    if body.bytes.is_empty() {
        return Err(Error::EmptyUpload);
    }
    state.rate_limit.check()?;
    state.telemetry.bytes_in(body.bytes.len() as u64);
    let bytes = body.bytes.clone();
    let id = state
        .pool
        .run(move || hex::encode(Sha256::digest(&bytes)))
        .await?;
    // Concurrent uploads of the same new bytes validate and store once: one caller gets
    // 201, the others share its record with 200.
    let mut stored_here = false;
    let owned = state.shared();
    let (status, meta) = state
        .uploads
        .run(id.clone(), || {
            stored_here = true;
            async move { store_new(&owned, id, body).await }
        })
        .await
        .unwrap_or_else(|| Err(Error::Internal("an upload task failed".into())))?;
    let status = if stored_here { status } else { StatusCode::OK };
    Ok((status, meta))
}

/// 200 with the existing record, or validate the bytes and store them (201).
async fn store_new(
    state: &AppState,
    id: String,
    body: UploadBody,
) -> Result<(StatusCode, ImageMeta), Error> {
    match state.images.meta(&id).await {
        Ok(existing) => {
            state.images.repair_original(&id, body.bytes).await?;
            return Ok((StatusCode::OK, existing));
        }
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }

    let (bytes, limits, telemetry) = (body.bytes.clone(), state.limits, state.telemetry.clone());
    let probe = state
        .pool
        .run(move || -> Result<imaging::Probe, imaging::ImagingError> {
            let probe = imaging::probe(&bytes, &limits)?;
            let started = Instant::now();
            let decoded = imaging::decode(&bytes, &limits)?;
            let pixels = u64::from(decoded.image.width()) * u64::from(decoded.image.height());
            telemetry.decoded(probe.format.name(), started.elapsed().as_secs_f64(), pixels);
            Ok(probe)
        })
        .await??;

    let meta = ImageMeta {
        url: format!("/image/{id}.{}", probe.format.ext()),
        id,
        format: probe.format.name().into(),
        content_type: probe.format.content_type().into(),
        width: probe.width,
        height: probe.height,
        bytes: body.bytes.len() as u64,
        has_alpha: probe.has_alpha,
        filename: body.filename,
        created_at: Utc::now(),
    };
    state.images.insert(&meta, body.bytes).await?;
    state.variants.revive(&meta.id);
    state.stats.record_upload();
    state.telemetry.uploaded();
    Ok((StatusCode::CREATED, meta))
}

/// `GET /image/{id}` (metadata) or `GET /image/{id}.{ext}` (a variant): one route, since
/// the router cannot split a path segment at a dot.
pub async fn get_by_file(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    match file.rsplit_once('.') {
        None => metadata(State(state), Path(file))
            .await
            .map(IntoResponse::into_response),
        Some((id, ext)) => {
            signing::verify(state.config.signing_key.as_deref(), &uri)?;
            let spec = state.presets.resolve(None, query_pairs(query.as_deref()))?;
            variant(&state, id, ext, spec, &headers).await
        }
    }
}

/// Image metadata (HEAD: 200 when stored, the cheap existence check before an upload).
#[utoipa::path(get, path = "/image/{id}", tag = "images",
    params(("id" = String, Path, description = "SHA-256 of the original bytes, 64 hex digits")),
    responses(
        (status = 200, body = ImageMeta),
        (status = 400, description = "bad_id", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ImageMeta>, Error> {
    let id = parse_id(&id)?;
    Ok(Json(state.images.meta(&id).await?))
}

/// The image converted to `ext` and transformed by query parameters.
#[utoipa::path(get, path = "/image/{id}.{ext}", tag = "variants",
    params(
        ("id" = String, Path, description = "image id"),
        ("ext" = String, Path, description = "jpg|jpeg|png|webp|gif|bmp|tiff|ico|avif|svg (traced)|txt|html|ansi (ASCII art)|auto (best format the Accept header allows)"),
        TransformParams,
    ),
    responses(
        (status = 200, description = "the variant bytes, with a strong ETag and immutable caching"),
        (status = 304, description = "If-None-Match matched"),
        (status = 400, description = "bad_id, bad_format or bad_transform", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 503, description = "overloaded", body = ErrorBody),
    ))]
pub async fn variant(
    state: &AppState,
    id: &str,
    ext: &str,
    spec: Spec,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let id = parse_id(id)?;
    if ext.eq_ignore_ascii_case("auto") {
        let meta = state.images.meta(&id).await?;
        let chosen = negotiate(headers, meta.has_alpha || spec.mask.is_some());
        let request = VariantRequest::new(id, chosen, spec)?;
        let mut response = render_variant(state, request, headers).await?;
        response
            .headers_mut()
            .append(header::VARY, header::HeaderValue::from_static("Accept"));
        return Ok(response);
    }
    if let Some(own) = Format::from_ext(ext).filter(|f| !f.can_encode() && spec.is_identity()) {
        // A format progimage reads but cannot write (JPEG XL, SVG): the URL of the image in
        // its own format, as metadata gives it, serves the original, stripped of personal
        // metadata where `imaging::publishable` knows how (JPEG XL's metadata boxes).
        let meta = state.images.meta(&id).await?;
        if meta.format == own.name() {
            let original = state.original(&id).await?;
            // The stripped file is another representation than `/original`'s: another ETag.
            let (original, etag) = match imaging::publishable(&original, own, 1) {
                Some(stripped) if stripped.len() != original.len() => {
                    (stripped.into(), format!("\"{id}-published\""))
                }
                _ => (original, format!("\"{id}\"")),
            };
            return Ok(immutable_bytes(
                headers,
                &etag,
                &meta.content_type,
                original,
            ));
        }
    }
    let request = VariantRequest::new(id, ext, spec)?;
    render_variant(state, request, headers).await
}

/// `.auto`: the best format the client's `Accept` lists — AVIF, then WebP, else JPEG
/// (PNG when the output has transparency). `image/*` alone does not count as asking.
fn negotiate(headers: &HeaderMap, alpha: bool) -> &'static str {
    let accepts = |media: &str| {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let refused = parts.clone().any(|p| {
                    p.replace(' ', "")
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                parts.next().is_some_and(|m| m.eq_ignore_ascii_case(media)) && !refused
            })
    };
    if accepts("image/avif") {
        "avif"
    } else if accepts("image/webp") {
        "webp"
    } else if alpha {
        "png"
    } else {
        "jpg"
    }
}

/// `GET /image/{id}/{spec}.{ext}`: transforms written in the path.
#[utoipa::path(get, path = "/image/{id}/{spec}.{ext}", tag = "variants",
    params(
        ("id" = String, Path, description = "image id"),
        ("spec" = String, Path, description = "transforms as key_value pairs joined by commas, e.g. `w_300,h_200,fit_cover`"),
        ("ext" = String, Path, description = "output format"),
    ),
    responses(
        (status = 200, description = "the variant bytes"),
        (status = 304, description = "If-None-Match matched"),
        (status = 400, description = "bad_id, bad_format or bad_transform", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub async fn get_by_path_spec(
    State(state): State<Arc<AppState>>,
    Path((id, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    signing::verify(state.config.signing_key.as_deref(), &uri)?;
    let (spec, ext) = split_spec_file(&file, "/image/{id}")?;
    let spec = state
        .presets
        .resolve(Some(spec), query_pairs(query.as_deref()))?;
    variant(&state, &id, ext, spec, &headers).await
}

/// The original bytes, exactly as uploaded.
#[utoipa::path(get, path = "/image/{id}/original", tag = "images",
    params(("id" = String, Path, description = "image id")),
    responses(
        (status = 200, description = "the original bytes with their sniffed Content-Type"),
        (status = 401, description = "unauthorized: `PROGIMAGE_ORIGINALS=keys` and no valid API key", body = ErrorBody),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub async fn original(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let id = parse_id(&id)?;
    if state.config.originals == Originals::Keys {
        let holds_key =
            bearer_token(&headers).is_some_and(|k| key_matches(&state.config.api_keys, k));
        if !holds_key {
            return Err(Error::Unauthorized);
        }
    }
    let meta = state.images.meta(&id).await?;
    let bytes = state.original(&id).await?;
    Ok(immutable_bytes(
        &headers,
        &format!("\"{id}\""),
        &meta.content_type,
        bytes,
    ))
}

/// Delete an image, its metadata and every cached variant.
#[utoipa::path(delete, path = "/image/{id}", tag = "images",
    params(("id" = String, Path, description = "image id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 405, description = "method_not_allowed: a variant URL (`{id}.{ext}`) cannot be deleted", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Error> {
    // `/image/{id}.{ext}` shares this route; a variant is derived, not deletable.
    if id.contains('.') {
        return Err(Error::MethodNotAllowed(Some("GET,HEAD")));
    }
    let id = parse_id(&id)?;
    let exists = state.images.exists(&id).await?;
    // The image's ETag is that of its original bytes: a client can delete "only if it is
    // still the image I think" (RFC 9110 §13.1.1).
    if exists && !super::conditional::if_match(&headers, &format!("\"{id}\"")) {
        return Err(Error::PreconditionFailed);
    }
    // Detached: a client that disconnects, or a store call that fails, must not leave
    // the purge undone. Without metadata (never stored, or an earlier delete that failed
    // halfway) only the cache is purged again, and the answer is still 404; the
    // original is left alone, as an upload may be writing it before its metadata.
    let owned = state.clone();
    tokio::spawn(async move {
        if exists {
            owned.variants.bury(&id);
        }
        let removed = if exists {
            owned.images.remove(&id).await.map_err(Error::from)
        } else {
            Err(Error::NotFound)
        };
        if let Err(e) = owned.forget_image(&id).await {
            tracing::warn!(error = %e, id, "could not purge a deleted image's cache");
        }
        match &removed {
            Ok(()) => owned.stats.record_delete(),
            // The metadata is still there (the store failed first): the image stays,
            // and may be cached again.
            Err(_) if exists && matches!(owned.images.exists(&id).await, Ok(true)) => {
                owned.variants.revive(&id)
            }
            Err(_) => {}
        }
        removed
    })
    .await
    .map_err(|e| Error::Internal(format!("the delete task failed: {e}")))??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1..=1000 (default 50).
    limit: Option<usize>,
    /// The `next` value of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    pub(crate) images: Vec<ImageMeta>,
    /// Cursor for the next page, or null on the last page.
    next: Option<String>,
}

/// List stored images in id order, a page at a time.
#[utoipa::path(get, path = "/image", tag = "images", params(ListParams),
    responses((status = 200, body = ImageList), (status = 400, description = "bad_request", body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ImageList>, Error> {
    let Query(params) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be in 1..=1000".into()));
    }
    if let Some(c) = &params.cursor {
        parse_id(c)
            .map_err(|_| Error::BadRequest("cursor is not one this server issued".into()))?;
    }
    Ok(Json(
        list_page(&state, params.cursor.as_deref(), limit).await?,
    ))
}

/// One page of images in id order, starting after `cursor`.
pub(crate) async fn list_page(
    state: &AppState,
    cursor: Option<&str>,
    limit: usize,
) -> Result<ImageList, Error> {
    let ids = state.images.ids().await?;
    let start = match cursor {
        Some(c) => ids.partition_point(|id| id.as_str() <= c),
        None => 0,
    };
    let page = &ids[start..ids.len().min(start + limit)];
    let mut images = Vec::with_capacity(page.len());
    for id in page {
        match state.images.meta(id).await {
            Ok(meta) => images.push(meta),
            Err(StoreError::NotFound) => {} // deleted while we listed
            Err(e) => return Err(e.into()),
        }
    }
    let next = (start + limit < ids.len())
        .then(|| page.last().cloned())
        .flatten();
    Ok(ImageList { images, next })
}

/// Transform keys accepted as query parameters (the same keys as path specs).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query keys for OpenAPI; parsing is done by `Spec`
pub struct TransformParams {
    /// Target width, 1..=8192 (for ASCII outputs: the column count, 1..=1000, default 100).
    w: Option<u32>,
    /// Target height, 1..=8192.
    h: Option<u32>,
    /// contain (default) | cover | fill
    fit: Option<String>,
    /// Where `fit=cover` and a `w:h` crop cut: center (default) | smart | n | s | e | w | ne | nw | se | sw
    gravity: Option<String>,
    /// 1 allows upscaling.
    enlarge: Option<u8>,
    /// x:y:w:h in source pixels, or w:h placed by `gravity`; applied before resizing.
    crop: Option<String>,
    /// 90 | 180 | 270
    rot: Option<u16>,
    /// h | v | hv
    flip: Option<String>,
    /// Gaussian sigma 0.1..=100.
    blur: Option<f32>,
    /// 0.1..=10
    sharpen: Option<f32>,
    /// 1 for grayscale.
    gray: Option<u8>,
    /// Brightness -100..=100.
    bri: Option<i32>,
    /// Contrast -100..=100.
    con: Option<i32>,
    /// circle | rounded
    mask: Option<String>,
    /// Background hex colour for formats without alpha, e.g. ffffff.
    bg: Option<String>,
    /// Quality 1..=100 for jpg, webp and avif (webp of a lossless source is lossless unless `q` is given).
    q: Option<u8>,
    /// ASCII outputs (txt, html, ansi): characters from lightest to densest, 2..=64 (query only).
    charset: Option<String>,
    /// ASCII outputs: 1 maps light pixels to dense characters.
    invert: Option<u8>,
    /// Traced SVG: colour precision 1..=8 (default 6).
    colors: Option<u8>,
    /// Traced SVG: detail 0..=100 (default 50).
    detail: Option<u8>,
    /// Watermark: id of a stored image drawn over the output.
    wm: Option<String>,
    /// Watermark position: se (default) | center | n | s | e | w | ne | nw | sw
    wm_pos: Option<String>,
    /// Watermark width as a fraction of the output width, 0.01..=1 (default 0.25).
    wm_scale: Option<f32>,
    /// Watermark opacity 0..=1 (default 1).
    wm_opacity: Option<f32>,
    /// srgb (default: pixels converted to sRGB) | keep (the source's colour profile kept, embedded in jpg, png, webp and tiff; other outputs are converted).
    color: Option<String>,
    /// Required when a signing key is configured: see README "Signed URLs".
    sig: Option<String>,
}

/// Accept ids in either case; store and compare them lowercase.
pub(crate) fn parse_id(raw: &str) -> Result<String, Error> {
    let id = raw.to_ascii_lowercase();
    if is_valid_id(&id) {
        Ok(id)
    } else {
        Err(Error::BadId(format!(
            "`{}` is not an image id (64 hex digits of SHA-256)",
            raw.chars().take(80).collect::<String>()
        )))
    }
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

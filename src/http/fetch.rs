//! Remote images over HTTP: `GET /fetch/{spec}.{ext}?url=…`, `GET /fetch.{ext}?url=…`,
//! the compatibility form `GET /{spec}?url=…`, and the JSON upload `{"url": …}`.
//! Nothing here is stored except through the upload path.

use std::sync::Arc;

use super::extract::Path;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

use super::image::query_pairs;
use super::signing;
use super::transform::render_bytes;
use super::variant::{output_format, split_spec_file};
use crate::error::{Error, ErrorBody};
use crate::fetch::url_file_name;
use crate::imaging::{Format, Spec};
use crate::AppState;

/// The query key that names the remote image; every other key is a transform.
const URL_KEY: &str = "url";

/// A `{"url": …}` body is a few hundred bytes; anything far larger is not one.
const MAX_JSON_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct UrlUpload {
    url: String,
}

/// The JSON upload form: fetch the URL and hand back its bytes and file name (the last
/// path segment), for the caller to ingest like any other upload.
pub async fn read_url_upload(
    req: Request,
    state: &AppState,
) -> Result<(Bytes, Option<String>), Error> {
    let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|e| Error::BadRequest(format!("could not read the JSON body: {e}")))?;
    let UrlUpload { url } = serde_json::from_slice(&body).map_err(|e| {
        Error::BadRequest(format!(
            "expected a JSON body {{\"url\": \"https://…\"}}: {e}"
        ))
    })?;
    let bytes = fetch_remote(state, &url).await?;
    Ok((bytes, url_file_name(&url)))
}

/// `GET /fetch/{spec}.{ext}?url=…`
#[utoipa::path(get, path = "/fetch/{spec}.{ext}", tag = "fetch",
    params(
        ("spec" = String, Path, description = "transforms, e.g. `w_300,h_200,fit_cover` (may be empty)"),
        ("ext" = String, Path, description = "output format"),
        ("url" = String, Query, description = "the http(s) URL of the source image"),
    ),
    responses(
        (status = 200, description = "the transformed remote image (not stored)"),
        (status = 400, description = "bad_request (missing or non-http(s) url), bad_format or bad_transform", body = ErrorBody),
        (status = 403, description = "forbidden_url: the URL or a redirect leads to a loopback, private, link-local or metadata address", body = ErrorBody),
        (status = 413, description = "too_large", body = ErrorBody),
        (status = 415, description = "unsupported_format", body = ErrorBody),
        (status = 422, description = "corrupt_image or too_many_pixels", body = ErrorBody),
        (status = 502, description = "fetch_failed: unreachable origin, non-2xx answer, too many redirects or timeout", body = ErrorBody),
    ))]
pub async fn with_path_spec(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> Result<Response, Error> {
    signing::verify(state.config.signing_key.as_deref(), &uri)?;
    let (spec, ext) = split_spec_file(&file, "/fetch")?;
    let (url, pairs) = split_url(query.as_deref())?;
    let spec = state.presets.resolve(Some(spec), pairs)?;
    fetch_and_render(&state, &url, spec, ext).await
}

/// `GET /fetch.{ext}?url=…&w=…`: transforms in the query.
#[utoipa::path(get, path = "/fetch.{ext}", tag = "fetch",
    params(
        ("ext" = String, Path, description = "output format"),
        ("url" = String, Query, description = "the http(s) URL of the source image"),
        super::image::TransformParams,
    ),
    responses(
        (status = 200, description = "the transformed remote image (not stored)"),
        (status = 400, description = "bad_request, bad_format or bad_transform", body = ErrorBody),
        (status = 403, description = "forbidden_url", body = ErrorBody),
        (status = 502, description = "fetch_failed", body = ErrorBody),
    ))]
pub async fn with_query_spec(
    state: &AppState,
    ext: &str,
    query: Option<&str>,
) -> Result<Response, Error> {
    let (url, pairs) = split_url(query)?;
    let spec = state.presets.resolve(None, pairs)?;
    fetch_and_render(state, &url, spec, ext).await
}

/// `GET /{spec}?url=…` (e.g. `/w_150,h_500?url=…`), kept for clients of earlier services:
/// the output keeps the remote image's own format (JPEG when that cannot be written).
/// This is the GET side of the one-segment root route, so it also serves
/// `/fetch.{ext}`, and answers 404 for any other path without a `url`.
#[utoipa::path(get, path = "/{spec}", tag = "fetch",
    params(
        ("spec" = String, Path, description = "transforms, e.g. `w_150,h_500`"),
        ("url" = String, Query, description = "the http(s) URL of the source image"),
    ),
    responses(
        (status = 200, description = "the transformed remote image, in its own format"),
        (status = 400, description = "bad_request or bad_transform", body = ErrorBody),
        (status = 403, description = "forbidden_url", body = ErrorBody),
        (status = 404, description = "not_found: no `url` query parameter", body = ErrorBody),
        (status = 502, description = "fetch_failed", body = ErrorBody),
    ))]
pub async fn compat_spec_url(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> Result<Response, Error> {
    if segment.starts_with("transform.") {
        return Err(Error::MethodNotAllowed(Some("POST")));
    }
    let is_fetch = segment.starts_with("fetch.");
    if !is_fetch
        && !query_pairs(query.as_deref())
            .iter()
            .any(|(k, _)| k == URL_KEY)
    {
        return Err(Error::NoRoute);
    }
    signing::verify(state.config.signing_key.as_deref(), &uri)?;
    if let Some(ext) = segment.strip_prefix("fetch.") {
        return with_query_spec(&state, ext, query.as_deref()).await;
    }
    let (url, pairs) = split_url(query.as_deref())?;
    let spec = state.presets.resolve(Some(&segment), pairs)?;
    let bytes = fetch_remote(&state, &url).await?;
    let ext = own_format(&bytes).ext();
    render_bytes(&state, bytes, spec, ext).await
}

/// Download a remote image: the client's rate-limit unit is taken first (and serves
/// the render or upload that follows), and at most `--fetch-concurrency` downloads run
/// at once; past that, 503 `overloaded` before a byte is fetched.
async fn fetch_remote(state: &AppState, url: &str) -> Result<Bytes, Error> {
    state.rate_limit.check_ahead()?;
    let _slot = state
        .fetch_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::Overloaded)?;
    Ok(state.fetcher.fetch(url).await?)
}

/// Validate the output format before the (slow) fetch, then fetch and render.
async fn fetch_and_render(
    state: &AppState,
    url: &str,
    spec: Spec,
    ext: &str,
) -> Result<Response, Error> {
    output_format(ext)?;
    let bytes = fetch_remote(state, url).await?;
    render_bytes(state, bytes, spec, ext).await
}

/// The `url` parameter and the remaining (transform) pairs.
fn split_url(query: Option<&str>) -> Result<(String, Vec<(String, String)>), Error> {
    let (urls, rest): (Vec<_>, Vec<_>) = query_pairs(query)
        .into_iter()
        .partition(|(k, _)| k == URL_KEY);
    match urls.as_slice() {
        [(_, url)] => Ok((url.clone(), rest)),
        [] => Err(Error::BadRequest(
            "the `url` query parameter (the image to fetch) is required".into(),
        )),
        _ => Err(Error::BadRequest("`url` is given more than once".into())),
    }
}

/// The format sniffed from the bytes, if progimage can write it; else JPEG.
fn own_format(bytes: &[u8]) -> Format {
    image::guess_format(bytes)
        .ok()
        .and_then(Format::from_image)
        .filter(|f| f.can_encode())
        .unwrap_or(Format::Jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("test-images")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn compat_output_keeps_writable_formats_else_jpeg() {
        assert_eq!(own_format(&corpus("webp-lossy.webp")), Format::Webp);
        assert_eq!(own_format(&corpus("gif-static.gif")), Format::Gif);
        assert_eq!(own_format(&corpus("png-rgba-alpha.png")), Format::Png);
        let avif = if Format::Avif.can_encode() {
            Format::Avif
        } else {
            Format::Jpeg
        };
        assert_eq!(own_format(&corpus("avif-8bit-yuv420.avif")), avif);
        // QOI is sniffed by the image crate but is no progimage format.
        assert_eq!(own_format(b"qoif\0\0\0\x01\0\0\0\x01\x04\0"), Format::Jpeg);
        assert_eq!(own_format(b"not an image"), Format::Jpeg);
    }

    #[test]
    fn url_is_split_from_the_transforms() {
        let (url, rest) =
            split_url(Some("w=10&url=http%3A%2F%2Fa.test%2Fx.png%3Fy%3D1&h=5")).expect("one url");
        assert_eq!(url, "http://a.test/x.png?y=1");
        assert_eq!(
            rest,
            vec![("w".into(), "10".into()), ("h".into(), "5".into())]
        );
        assert!(split_url(Some("w=10")).is_err());
        assert!(split_url(Some("url=a&url=b")).is_err());
    }
}

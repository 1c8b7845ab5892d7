//! Variants: look in the cache, else render once (single-flight) on the work pool, cache
//! the result atomically, and answer with immutable-caching headers.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::conditional::immutable_bytes;
use crate::error::Error;
use crate::imaging::{self, Output, Spec, OUTPUT_EXTS};
use crate::store::StoreError;
use crate::AppState;

/// Bump when rendering changes output for the same spec, so ETags and cache files of
/// older renders are not served as current ones.
const RENDER_VERSION: u32 = 6;

/// A validated variant request: which image, which transforms, which output format.
#[derive(Clone)]
pub struct VariantRequest {
    id: String,
    spec: Spec,
    pub(crate) format: Output,
    /// Cache file name: a digest of (id, canonical spec, format, render version) + ext.
    cache_key: String,
}

impl VariantRequest {
    pub fn new(id: String, ext: &str, spec: Spec) -> Result<Self, Error> {
        let format = output_format(ext)?;
        format.check(&spec)?;
        let digest = Sha256::new()
            .chain_update(id.as_bytes())
            .chain_update(b"\n")
            .chain_update(spec.canonical().as_bytes())
            .chain_update(b"\n")
            .chain_update(format.ext().as_bytes())
            .chain_update(format!("\n{RENDER_VERSION}").as_bytes())
            .finalize();
        let mut cache_key = hex::encode(&digest[..16]);
        cache_key.push('.');
        cache_key.push_str(format.ext());
        Ok(VariantRequest {
            id,
            spec,
            format,
            cache_key,
        })
    }

    fn etag(&self) -> String {
        self.etag_with("")
    }

    /// The ETag of another representation of this variant (`-gzip`).
    fn etag_with(&self, suffix: &str) -> String {
        let stem = self.cache_key.split('.').next().unwrap_or_default();
        format!("\"{stem}{suffix}\"")
    }

    /// The cache file name of this variant.
    #[cfg(test)]
    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }

    /// The 200 (or 304 for a matching `If-None-Match`) carrying this variant's bytes.
    pub fn response(&self, request_headers: &HeaderMap, bytes: Bytes) -> Response {
        immutable_bytes(
            request_headers,
            &self.etag(),
            self.format.content_type(),
            bytes,
        )
    }
}

/// Split a `{spec}.{ext}` path segment; `route` names the route for the error message.
pub fn split_spec_file<'a>(file: &'a str, route: &str) -> Result<(&'a str, &'a str), Error> {
    file.rsplit_once('.').ok_or_else(|| {
        Error::BadFormat(format!(
            "`{file}` has no extension: use {route}/{{spec}}.{{ext}}"
        ))
    })
}

/// The output named by a URL extension.
pub fn output_format(ext: &str) -> Result<Output, Error> {
    Output::from_ext(ext).ok_or_else(|| {
        Error::BadFormat(format!(
            "`{}` is not an output format; use one of {OUTPUT_EXTS}",
            ext.chars().take(20).collect::<String>()
        ))
    })
}

pub async fn render_variant(
    state: &AppState,
    req: VariantRequest,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let bytes = variant_bytes(state, &req).await?;
    if !req.format.is_text() {
        return Ok(req.response(headers, bytes));
    }
    let mut response = if super::gzip::accepted(headers) {
        let gzipped = gzipped(state, &req, bytes).await?;
        let mut response = immutable_bytes(
            headers,
            &req.etag_with("-gzip"),
            req.format.content_type(),
            gzipped,
        );
        if response.status().is_success() {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    } else {
        req.response(headers, bytes)
    };
    // On the 304 too (RFC 9110 §15.4.5): caches must key text variants by encoding.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(response)
}

/// The gzip of a text variant: from the cache (a file beside the variant, `<key>.gz`),
/// else compressed once on the work pool and cached.
async fn gzipped(state: &AppState, req: &VariantRequest, bytes: Bytes) -> Result<Bytes, Error> {
    let key = format!("{}.gz", req.cache_key);
    if let Some(gzipped) = state.variants.get(&req.id, &key).await? {
        return Ok(gzipped);
    }
    let gzipped = state
        .pool
        .run(move || super::gzip::compress(&bytes))
        .await?
        .map_err(|e| Error::Internal(format!("gzip failed: {e}")))?;
    if let Err(e) = state.variants.put(&req.id, &key, gzipped.clone()).await {
        tracing::warn!(error = %e, id = %req.id, "could not cache a gzipped variant");
    }
    Ok(gzipped)
}

/// The variant from this node's memory tier, if it is there and (nodes sharing a bucket)
/// its image is known to be still stored; `None` sends the request the long way, which
/// answers every other case, errors included.
pub async fn memory_hit(state: &AppState, req: &VariantRequest) -> Option<Bytes> {
    let bytes = state.variants.get_memory(&req.id, &req.cache_key)?;
    if state.config.shared_store() {
        let max_age = std::time::Duration::from_secs(state.config.presence_ttl_secs);
        if !matches!(
            state.images.recently_present(&req.id, max_age).await,
            Ok(true)
        ) {
            return None;
        }
    }
    state.telemetry.cache(true);
    Some(bytes)
}

/// The variant's bytes: from the cache, or a render that every concurrent caller shares.
/// The stored image's own URL (its format, no transform) is a variant too: its render is
/// the original stripped of personal metadata (`imaging::publish`).
pub async fn variant_bytes(state: &AppState, req: &VariantRequest) -> Result<Bytes, Error> {
    if let Some(bytes) = state.variants.get(&req.id, &req.cache_key).await? {
        if state.config.shared_store() && !still_stored(state, &req.id).await? {
            return Err(Error::NotFound);
        }
        state.telemetry.cache(true);
        return Ok(bytes);
    }
    // Unknown ids end here, before the rate limit and the render.
    state.images.meta(&req.id).await?;
    state.telemetry.cache(false);
    state.rate_limit.check()?;
    let flight_key = format!("{}/{}", req.id, req.cache_key);
    let (owned, req) = (state.shared(), req.clone());
    state
        .renders
        .run(flight_key, || async move {
            render_and_cache(&owned, &req).await
        })
        .await
        .unwrap_or_else(|| Err(Error::Internal("a render task failed".into())))
}

/// Nodes sharing a bucket: whether the image was deleted through another node (then drop
/// this node's cached variants of it).
async fn still_stored(state: &AppState, id: &str) -> Result<bool, Error> {
    let max_age = std::time::Duration::from_secs(state.config.presence_ttl_secs);
    if state.images.recently_present(id, max_age).await? {
        return Ok(true);
    }
    state.forget_image(id).await?;
    Ok(false)
}

/// Render `source` on the work pool (with the spec's watermark, if any) and record it.
pub async fn render_on_pool(
    state: &AppState,
    source: Bytes,
    spec: Spec,
    output: Output,
) -> Result<Bytes, Error> {
    let watermark = match &spec.watermark {
        None => None,
        Some(id) => match state.original(id).await {
            Ok(bytes) => Some(bytes),
            Err(StoreError::NotFound) => {
                return Err(Error::BadTransform(format!(
                    "transform `wm`: no stored image has id {id}"
                )))
            }
            Err(e) => return Err(e.into()),
        },
    };
    let limits = state.limits;
    let rendered = state
        .pool
        .run(move || {
            imaging::render_watermarked(&source, watermark.as_deref(), &limits, &spec, output)
        })
        .await??;
    state.telemetry.decoded(
        rendered.source.name(),
        rendered.decode_seconds,
        rendered.decoded_pixels,
    );
    state.telemetry.rendered(output.name());
    Ok(Bytes::from(rendered.bytes))
}

async fn render_and_cache(state: &AppState, req: &VariantRequest) -> Result<Bytes, Error> {
    let original = state.original(&req.id).await?;
    let bytes = render_on_pool(state, original, req.spec.clone(), req.format).await?;
    if let Err(e) = state
        .variants
        .put(&req.id, &req.cache_key, bytes.clone())
        .await
    {
        // A full or failing cache disk must not fail the read: serve the render uncached.
        tracing::warn!(error = %e, id = %req.id, "could not cache a variant");
    }
    // A DELETE that ran during the render removed the cache directory before this write
    // recreated it; drop the orphan so a deleted image never serves variants.
    if !state.images.exists(&req.id).await? {
        state.forget_image(&req.id).await?;
        return Err(Error::NotFound);
    }
    Ok(bytes)
}

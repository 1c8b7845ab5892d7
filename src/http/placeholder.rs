//! `GET /image/{id}/blurhash`: a placeholder string, computed once and cached like a
//! variant.

use std::sync::Arc;

use super::extract::Path;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use super::conditional::immutable_bytes;
use super::image::parse_id;
use crate::error::{Error, ErrorBody};
use crate::imaging::{self, Spec};
use crate::AppState;

/// Cache file name; bump the version if the hash parameters change.
const CACHE_KEY: &str = "blurhash-v1.json";

#[derive(Serialize, ToSchema)]
pub struct Placeholder {
    blurhash: String,
    /// Displayed width of the image the hash stands for.
    width: u32,
    /// Displayed height.
    height: u32,
}

/// A BlurHash placeholder for the image.
#[utoipa::path(get, path = "/image/{id}/blurhash", tag = "images",
    params(("id" = String, Path, description = "image id")),
    responses((status = 200, body = Placeholder), (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn blurhash(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let id = parse_id(&id)?;
    let json = match state.variants.get(&id, CACHE_KEY).await? {
        Some(bytes) => bytes,
        None => {
            // Charged to this client before joining: a flight is shared by many.
            state.rate_limit.check()?;
            let flight = format!("{id}/{CACHE_KEY}");
            let (owned, key) = (state.clone(), id.clone());
            state
                .renders
                .run(flight, || async move { compute(&owned, &key).await })
                .await
                .unwrap_or_else(|| Err(Error::Internal("a blurhash task failed".into())))?
        }
    };
    let etag = format!("\"{}-{id}\"", CACHE_KEY.trim_end_matches(".json"));
    Ok(immutable_bytes(&headers, &etag, "application/json", json))
}

async fn compute(state: &AppState, id: &str) -> Result<Bytes, Error> {
    let meta = state.images.meta(id).await?;
    let original = state.original(id).await?;
    let limits = state.limits;
    let hash = state
        .pool
        .run(move || {
            // A 64 px decode is all the hash needs: let JPEGs shrink on load.
            let hint = Spec {
                width: Some(64),
                height: Some(64),
                ..Spec::default()
            };
            let decoded = imaging::decode_for(&original, &limits, &hint)?;
            imaging::blurhash(&decoded.into_srgb()?)
        })
        .await??;
    let body = serde_json::to_vec(&Placeholder {
        blurhash: hash,
        width: meta.width,
        height: meta.height,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let body = Bytes::from(body);
    if let Err(e) = state.variants.put(id, CACHE_KEY, body.clone()).await {
        tracing::warn!(error = %e, "could not cache a blurhash");
    }
    Ok(body)
}

//! Operations: liveness, readiness, status counters, Prometheus metrics, OpenAPI.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ApiDoc;
use crate::error::{Error, ErrorBody};
use crate::AppState;

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "OK", body = String)))]
pub async fn health() -> &'static str {
    "OK"
}

/// Readiness: 200 only when storage can be written and read right now.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "ready", body = String),
        (status = 503, description = "storage_unavailable", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<&'static str, Error> {
    state.images.blobs().check().await?;
    Ok("ready")
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Uploads that stored new bytes since start-up.
    uploaded_count: u64,
    /// Responses with a 4xx or 5xx status since start-up.
    errors: u64,
    /// Images in the store.
    images: u64,
    /// Bytes of cached variants on local disk.
    cache_bytes: u64,
    uptime_s: u64,
    version: &'static str,
    workers: usize,
    queue: usize,
}

/// Counters for dashboards and humans.
#[utoipa::path(get, path = "/status", tag = "operations", responses((status = 200, body = Status)))]
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Status>, Error> {
    // Nodes sharing a bucket each count only their own uploads and deletes; the bucket
    // knows the real number (one listing, fine for a status page).
    let images = if state.config.shared_store() {
        state.images.ids().await?.len() as u64
    } else {
        state.stats.images()
    };
    Ok(Json(Status {
        uploaded_count: state.stats.uploaded(),
        errors: state.stats.errors(),
        images,
        cache_bytes: state.variants.total_bytes(),
        uptime_s: state.stats.uptime().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
        workers: state.config.worker_count(),
        queue: state.config.queue,
    }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state.publish_cache_metrics();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

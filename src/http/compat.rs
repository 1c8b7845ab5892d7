//! Routes kept for clients of the services progimage replaces. They call into the same
//! code as the main API and only reshape requests and responses.

use std::sync::Arc;

use super::extract::Path;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::body::read_upload;
use super::image::{ingest, list_page, metadata};
use crate::error::{Error, ErrorBody};
use crate::AppState;

/// Most images `/list` returns (it has no paging; use `GET /image` for more).
const LIST_MAX: usize = 1000;

/// Old upload: multipart part `file` (or `image`) → `{"image_id": "…"}`.
#[utoipa::path(post, path = "/upload", tag = "compatibility",
    request_body(description = "multipart/form-data with a part named `file`", content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "`{\"image_id\": \"…\"}`"),
        (status = 200, description = "already stored: `{\"image_id\": \"…\"}`"),
        (status = 400, description = "empty_upload", body = ErrorBody),
    ))]
pub async fn upload(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, Error> {
    let body = read_upload(req, &state).await?;
    let (status, meta) = ingest(&state, body).await?;
    let location = format!("/image/{}", meta.id);
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(json!({ "image_id": meta.id })),
    )
        .into_response())
}

/// Old metadata route: the metadata with an `image_id` alias of `id`.
#[utoipa::path(get, path = "/image/{id}/meta", tag = "compatibility",
    params(("id" = String, Path, description = "image id")),
    responses((status = 200, description = "metadata plus `image_id`"), (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn meta(state: State<Arc<AppState>>, id: Path<String>) -> Result<Json<Value>, Error> {
    let Json(meta) = metadata(state, id).await?;
    Ok(Json(with_image_id(&meta)))
}

/// Old listing: `{"images": [metadata + image_id, …], "count": n}`, first 1000 by id.
#[utoipa::path(get, path = "/list", tag = "compatibility",
    responses((status = 200, description = "`{\"images\": […], \"count\": n}`")))]
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, Error> {
    let page = list_page(&state, None, LIST_MAX).await?;
    let images: Vec<Value> = page.images.iter().map(with_image_id).collect();
    Ok(Json(json!({ "count": images.len(), "images": images })))
}

fn with_image_id(meta: &crate::store::ImageMeta) -> Value {
    let mut value = json!(meta);
    value["image_id"] = json!(meta.id);
    value
}

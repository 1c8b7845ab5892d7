//! `POST /batch`: many uploads (multipart) or many variants (JSON) in one request, answered
//! as NDJSON, one line per item as each finishes. Items run concurrently but bounded, so
//! memory follows the concurrency, not the number of items; one bad item never fails the
//! others.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::body::{content_type, is_file_part, part_error, read_part};
use super::image::{ingest, parse_id};
use super::signing;
use super::variant::{variant_bytes, VariantRequest};
use crate::error::{Error, ErrorBody};
use crate::AppState;

/// Most id × variant pairs one JSON batch may ask for.
const MAX_VARIANT_ITEMS: usize = 10_000;
/// Largest JSON batch request body.
const MAX_JSON_BYTES: usize = 4 << 20;

/// Render (and cache) every variant of every id.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchVariants {
    /// Image ids.
    pub ids: Vec<String>,
    /// Variants as `{spec}.{ext}`, e.g. `w_300.webp`, `w_64,h_64,fit_cover.png`, or just `png`.
    pub variants: Vec<String>,
}

/// Upload many images (multipart with many `image`/`file` parts) or render many variants
/// (JSON `{"ids": […], "variants": […]}`). The response streams one JSON line per item.
#[utoipa::path(post, path = "/batch", tag = "batch",
    request_body(content = BatchVariants, description = "JSON ids × variants, or multipart/form-data with many `image`/`file` parts"),
    responses(
        (status = 200, description = "NDJSON: per item `{\"index\",\"status\",\"image\"|\"url\"|\"error\"}`", content_type = "application/x-ndjson"),
        (status = 400, description = "bad_request", body = ErrorBody),
    ))]
pub async fn batch(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, Error> {
    state.rate_limit.check()?;
    let content_type = content_type(&req);
    if content_type.starts_with("multipart/form-data") {
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| Error::BadRequest(format!("malformed multipart body: {e}")))?;
        return Ok(ndjson(upload_lines(state, form)));
    }
    if content_type.starts_with("application/json") {
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|_| Error::BadRequest(format!("JSON batch over {MAX_JSON_BYTES} bytes")))?;
        let request: BatchVariants = serde_json::from_slice(&body)
            .map_err(|e| Error::BadRequest(format!("invalid batch JSON: {e}")))?;
        let items = request.ids.len().saturating_mul(request.variants.len());
        if items > MAX_VARIANT_ITEMS {
            return Err(Error::BadRequest(format!(
                "{items} id × variant pairs; at most {MAX_VARIANT_ITEMS} per batch"
            )));
        }
        return Ok(ndjson(variant_lines(state, request)));
    }
    Err(Error::BadRequest(
        "POST /batch takes multipart/form-data (uploads) or application/json (variants)".into(),
    ))
}

fn ndjson(lines: impl Stream<Item = Value> + Send + 'static) -> Response {
    let body = lines.map(|line| {
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(bytes))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

fn error_line(index: usize, e: &Error) -> Value {
    json!({ "index": index, "status": e.status().as_u16(), "error": e.body() })
}

/// How many items of one batch are worked on at once.
fn concurrency(state: &AppState) -> usize {
    state.config.worker_count() + 1
}

/// Read parts one after another while earlier ones are validated and stored, at most
/// `concurrency` at a time; lines are sent as items finish.
fn upload_lines(state: Arc<AppState>, mut form: Multipart) -> impl Stream<Item = Value> {
    let (tx, rx) = mpsc::channel::<Value>(16);
    tokio::spawn(async move {
        let max_bytes = state.config.max_upload_bytes;
        let limit = concurrency(&state);
        let mut running: JoinSet<Value> = JoinSet::new();
        let mut index = 0;
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(error_line(index, &part_error(e, max_bytes))).await;
                    break;
                }
            };
            if !is_file_part(&field) {
                continue;
            }
            let part = read_part(field, max_bytes).await;
            while running.len() >= limit {
                if let Some(Ok(line)) = running.join_next().await {
                    if tx.send(line).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            let state = state.clone();
            running.spawn(async move {
                match part {
                    Err(e) => error_line(index, &e),
                    Ok(body) => match ingest(&state, body).await {
                        Ok((status, meta)) => {
                            json!({ "index": index, "status": status.as_u16(), "image": meta })
                        }
                        Err(e) => error_line(index, &e),
                    },
                }
            });
            index += 1;
        }
        if index == 0 && running.is_empty() {
            let _ = tx.send(error_line(0, &Error::EmptyUpload)).await;
        }
        while let Some(joined) = running.join_next().await {
            if let Ok(line) = joined {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    })
}

fn variant_lines(state: Arc<AppState>, request: BatchVariants) -> impl Stream<Item = Value> {
    let limit = concurrency(&state);
    let items: Vec<(usize, String, String)> = request
        .ids
        .iter()
        .flat_map(|id| {
            request
                .variants
                .iter()
                .map(move |v| (id.clone(), v.clone()))
        })
        .enumerate()
        .map(|(index, (id, variant))| (index, id, variant))
        .collect();
    stream::iter(items)
        .map(move |(index, id, variant)| {
            let state = state.clone();
            async move {
                let outcome = render_one(&state, &id, &variant).await;
                let mut line = match outcome {
                    Ok(url) => json!({ "index": index, "status": 200, "url": url }),
                    Err(e) => error_line(index, &e),
                };
                line["id"] = json!(id);
                line["variant"] = json!(variant);
                line
            }
        })
        .buffer_unordered(limit)
}

/// Make sure one variant is rendered and cached; its canonical URL.
async fn render_one(state: &AppState, id: &str, variant: &str) -> Result<String, Error> {
    let id = parse_id(id)?;
    let (spec, ext) = match variant.rsplit_once('.') {
        Some((spec, ext)) => (state.presets.resolve(Some(spec), Vec::new())?, ext),
        None => (state.presets.resolve(None, Vec::new())?, variant),
    };
    let canonical = spec.canonical();
    let request = VariantRequest::new(id.clone(), ext, spec)?;
    variant_bytes(state, &request).await?;
    let ext = request.format.ext();
    // A preset keeps its name in the URL (the only spelling presets-only mode serves).
    let preset = variant
        .rsplit_once('.')
        .map(|(name, _)| name)
        .filter(|name| state.presets.contains(name));
    let url = match (preset, canonical.is_empty()) {
        (Some(name), _) => format!("/image/{id}/{name}.{ext}"),
        (None, true) => format!("/image/{id}.{ext}"),
        (None, false) => format!("/image/{id}/{canonical}.{ext}"),
    };
    // With signing on, hand out URLs the client can fetch as they are.
    Ok(match &state.config.signing_key {
        Some(key) => format!("{url}?sig={}", signing::sign(key.as_bytes(), &url)),
        None => url,
    })
}

//! `POST /batch`: many uploads (multipart) or many variants (JSON) in one request, answered
//! as NDJSON, one line per item as each finishes. Items run concurrently but bounded, so
//! memory follows the concurrency, not the number of items; one bad item never fails the
//! others.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::body::{content_type, is_file_part, part_error, read_part};
use super::image::{ingest, parse_id, query_pairs};
use super::rate_limit::RateLimit;
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
    // Every item costs one rate-limit unit of this client, taken as the item starts: the
    // items run off the request's task, so they are charged by name.
    let client = RateLimit::client();
    let content_type = content_type(&req);
    if content_type.starts_with("multipart/form-data") {
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| Error::BadRequest(format!("malformed multipart body: {e}")))?;
        return Ok(ndjson(upload_lines(state, form, client)));
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
        return Ok(ndjson(variant_lines(state, request, client)));
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
fn upload_lines(
    state: Arc<AppState>,
    mut form: Multipart,
    client: Option<String>,
) -> impl Stream<Item = Value> {
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
            let charged = state.rate_limit.check_client(client.as_deref());
            running.spawn(async move {
                match part.and_then(|body| charged.map(|()| body)) {
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

/// One entry of `variants`, resolved once for every id it is asked of.
struct PlannedVariant {
    /// The entry as sent, cut to [`MAX_ECHO_CHARS`] for the answer lines.
    echo: String,
    /// The path segment (`{spec}.{ext}`) and query (`sig=…`), or why the entry is refused.
    parsed: Result<(String, Option<String>), Error>,
}

/// Who may have URLs signed for them: with a signing key, only a caller holding an API
/// key (an operator). Anyone else must bring each item's own `sig`, as a GET would.
enum Signing {
    /// No signing key: URLs are plain.
    Off,
    /// The caller holds an API key: its URLs are signed for it.
    MintFor,
    /// No API keys configured: each item must carry the `sig` of the URL it names.
    CheckEach,
}

/// Ids and variants are validated before anything is built per item, and items are made
/// one at a time from their index, so memory follows the concurrency, not ids × variants.
fn variant_lines(
    state: Arc<AppState>,
    request: BatchVariants,
    client: Option<String>,
) -> impl Stream<Item = Value> {
    let limit = concurrency(&state);
    let ids: Arc<Vec<Result<String, Error>>> =
        Arc::new(request.ids.iter().map(|raw| parse_id(raw)).collect());
    let echoed_ids: Arc<Vec<String>> = Arc::new(request.ids.iter().map(|raw| echo(raw)).collect());
    let variants: Arc<Vec<PlannedVariant>> =
        Arc::new(request.variants.iter().map(|v| plan_variant(v)).collect());
    drop(request);
    let signing = match (&state.config.signing_key, state.config.api_keys.is_empty()) {
        (None, _) => Signing::Off,
        // With API keys set, the auth layer let only key holders reach a POST.
        (Some(_), false) => Signing::MintFor,
        (Some(_), true) => Signing::CheckEach,
    };
    let signing = Arc::new(signing);
    let per_id = variants.len();
    let total = ids.len() * per_id;
    let client = Arc::new(client);
    stream::iter(0..total)
        .map(move |index| {
            let (state, ids, echoed_ids, variants, signing, client) = (
                state.clone(),
                ids.clone(),
                echoed_ids.clone(),
                variants.clone(),
                signing.clone(),
                client.clone(),
            );
            async move {
                let (i, v) = (index / per_id, index % per_id);
                let outcome = match (&ids[i], &variants[v].parsed) {
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                    (Ok(id), Ok((file, query))) => {
                        match state.rate_limit.check_client(client.as_deref()) {
                            Err(e) => Err(e),
                            Ok(()) => {
                                render_one(&state, id, file, query.as_deref(), &signing).await
                            }
                        }
                    }
                };
                let mut line = match outcome {
                    Ok(url) => json!({ "index": index, "status": 200, "url": url }),
                    Err(e) => error_line(index, &e),
                };
                line["id"] = json!(ids[i].as_ref().unwrap_or(&echoed_ids[i]));
                line["variant"] = json!(variants[v].echo);
                line
            }
        })
        .buffer_unordered(limit)
}

/// Longest id or variant echoed back in an answer line.
const MAX_ECHO_CHARS: usize = 100;
/// Longest variant entry: a spec with every key, a watermark id and a `sig` fits.
const MAX_VARIANT_CHARS: usize = 1024;

fn echo(raw: &str) -> String {
    raw.chars().take(MAX_ECHO_CHARS).collect()
}

fn plan_variant(raw: &str) -> PlannedVariant {
    let parsed = if raw.len() > MAX_VARIANT_CHARS {
        Err(Error::BadTransform(format!(
            "a variant is at most {MAX_VARIANT_CHARS} bytes"
        )))
    } else {
        let (file, query) = match raw.split_once('?') {
            Some((file, query)) => (file, Some(query.to_owned())),
            None => (raw, None),
        };
        Ok((file.to_owned(), query))
    };
    PlannedVariant {
        echo: echo(raw),
        parsed,
    }
}

/// Make sure one variant is rendered and cached; its URL. `file` is `{spec}.{ext}` (or
/// just `{ext}`), `query` what followed a `?` (only `sig` is expected there).
async fn render_one(
    state: &AppState,
    id: &str,
    file: &str,
    query: Option<&str>,
    signing: &Signing,
) -> Result<String, Error> {
    let (path_spec, ext) = match file.rsplit_once('.') {
        Some((spec, ext)) => (Some(spec), ext),
        None => (None, file),
    };
    // What the client would GET: the path-spec spelling, or `/image/{id}.{ext}`.
    let asked = match path_spec {
        Some(spec) => format!("/image/{id}/{spec}.{ext}"),
        None => format!("/image/{id}.{ext}"),
    };
    let asked_uri = match query {
        Some(q) => format!("{asked}?{q}"),
        None => asked.clone(),
    };
    if matches!(signing, Signing::CheckEach) {
        let uri: Uri = asked_uri
            .parse()
            .map_err(|_| Error::BadTransform("the variant is not a valid URL part".into()))?;
        signing::verify(state.config.signing_key.as_deref(), &uri)?;
    }
    let spec = state.presets.resolve(path_spec, query_pairs(query))?;
    let canonical = spec.canonical();
    let request = VariantRequest::new(id.to_owned(), ext, spec)?;
    variant_bytes(state, &request).await?;
    if matches!(signing, Signing::CheckEach) {
        // The client's own signed URL: nothing new is minted.
        return Ok(asked_uri);
    }
    let ext = request.format.ext();
    // A preset keeps its name in the URL (the only spelling presets-only mode serves).
    let preset = path_spec.filter(|name| state.presets.contains(name));
    let url = match (preset, canonical.is_empty()) {
        (Some(name), _) => format!("/image/{id}/{name}.{ext}"),
        (None, true) => format!("/image/{id}.{ext}"),
        (None, false) => format!("/image/{id}/{canonical}.{ext}"),
    };
    // An operator (API key holder) gets URLs anyone can then fetch as they are.
    Ok(match (&state.config.signing_key, signing) {
        (Some(key), Signing::MintFor) => {
            format!("{url}?sig={}", signing::sign(key.as_bytes(), &url))
        }
        _ => url,
    })
}

//! The HTTP surface: routes (one file per resource) and the middleware every response
//! passes through.

mod ascii;
mod auth;
mod batch;
pub mod body;
pub(crate) mod client_connection;
mod compat;
mod conditional;
mod extract;
mod fetch;
mod gzip;
pub(crate) mod hot_hits;
mod image;
mod openapi;
mod ops;
mod placeholder;
mod playground;
pub mod presets;
pub mod rate_limit;
pub mod signing;
mod transform;
mod variant;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use openapi::ApiDoc;

use crate::error::Error;
use crate::AppState;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Room for multipart boundaries and part headers on top of the image byte limit.
pub(crate) const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Build the whole application. Tests serve exactly this router.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_upload_bytes + MULTIPART_OVERHEAD;
    let routes = Router::new()
        .route("/image", get(image::list).post(image::upload))
        .route("/image/{id}", get(image::get_by_file).delete(image::delete))
        .route("/image/{id}/original", get(image::original))
        .route("/image/{id}/{spec}", get(image::get_by_path_spec))
        .route("/transform/{file}", post(transform::with_path_spec))
        .route("/fetch/{file}", get(fetch::with_path_spec))
        .route(
            "/{segment}",
            post(transform::with_query_spec).get(fetch::compat_spec_url),
        )
        .route(
            "/batch",
            // Parts are limited one by one; the whole stream is not buffered.
            post(batch::batch).layer(DefaultBodyLimit::disable()),
        )
        .route("/", post(ascii::legacy_root).get(playground::root))
        .route("/ascii", post(ascii::post_ascii))
        .route("/image/{id}/ascii", get(ascii::stored_ascii))
        .route("/image/{id}/blurhash", get(placeholder::blurhash))
        .route("/upload", post(compat::upload))
        .route("/images", post(image::upload))
        .route("/images/{id}", get(image::get_by_file))
        .route("/image/{id}/meta", get(compat::meta))
        .route("/list", get(compat::list))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/status", get(ops::status))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(|| async { Error::NoRoute })
        .method_not_allowed_fallback(|uri: axum::http::Uri| async move {
            Error::MethodNotAllowed(methods_of_shared_pattern(uri.path()))
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::identify,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(DefaultBodyLimit::max(body_limit as usize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state);

    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, UuidRequestId))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(CatchPanicLayer::custom(|_| {
                Error::Internal("the request handler panicked".into()).into_response()
            }))
            // Compresses text (JSON, txt, html, svg) only: the default predicate skips
            // images, which are already compressed. Never a response with an ETag: a
            // gzip made on the fly would share the plain bytes' strong ETag (RFC 9110
            // §8.8.1). Text variants bring their own cached gzip (`variant.rs`), and
            // originals (an uploaded SVG) are sent as stored.
            .layer(
                CompressionLayer::new()
                    .gzip(true)
                    .compress_when(DefaultPredicate::new().and(without_etag)),
            ),
    )
}

/// What a path takes where one route pattern serves several resources, so the router's
/// `Allow` (the pattern's methods) would be wrong: `/image/{id}.{ext}` (a variant: read
/// only) shares `/image/{id}`, and `/fetch.{ext}` (GET) and `/transform.{ext}` (POST)
/// share `/{segment}`.
pub(crate) fn methods_of_shared_pattern(path: &str) -> Option<&'static str> {
    let variant = path
        .strip_prefix("/image/")
        .is_some_and(|rest| !rest.contains('/') && rest.contains('.'));
    if variant || path.starts_with("/fetch.") {
        Some("GET,HEAD")
    } else if path.starts_with("/transform.") {
        Some("POST")
    } else {
        None
    }
}

/// Compression predicate: only responses without an ETag (see the layer in `router`).
fn without_etag(
    _: axum::http::StatusCode,
    _: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _: &axum::http::Extensions,
) -> bool {
    !headers.contains_key(header::ETAG)
}

/// Request ids are UUID v4, as the contract asks, drawn from `rand`'s thread-local
/// generator (uuid's `fast-rng`): no random-number syscall on every request.
#[derive(Clone)]
struct UuidRequestId;

/// A client's `X-Request-Id` is echoed only when it can serve as one: 1 to 128 visible
/// ASCII characters. Anything else (empty, huge, spaces) is dropped, and the request gets
/// a new id like one that sent none.
pub(crate) fn drop_unusable_request_id(headers: &mut axum::http::HeaderMap) {
    let unusable = headers.get(&REQUEST_ID).is_some_and(|v| {
        v.is_empty() || v.len() > 128 || !v.as_bytes().iter().all(u8::is_ascii_graphic)
    });
    if unusable {
        headers.remove(&REQUEST_ID);
    }
}

/// What the router's layers add to every response, for the few answered before it: the
/// request id (the client's, or a new one) and `nosniff`.
pub(crate) fn add_router_headers(request: &axum::http::HeaderMap, response: &mut Response) {
    let request_id = request
        .get(&REQUEST_ID)
        .cloned()
        .unwrap_or_else(next_request_id);
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, request_id);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// RFC 9112 §3.2: an HTTP/1.1 request carries exactly one `Host` (hyper does not check).
/// The 400 for one that does not, or `None`.
pub(crate) fn host_error<B>(req: &axum::http::Request<B>) -> Option<Response> {
    if req.version() != axum::http::Version::HTTP_11 {
        return None;
    }
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts == 1 {
        return None;
    }
    let mut response = Error::BadRequest(format!(
        "an HTTP/1.1 request needs exactly one Host header; this one has {hosts}"
    ))
    .into_response();
    add_router_headers(req.headers(), &mut response);
    Some(response)
}

/// A new request id.
pub(crate) fn next_request_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

impl MakeRequestId for UuidRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        Some(RequestId::new(next_request_id()))
    }
}

fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
}

/// Count and time every request by route template and status, and count errors.
async fn record_metrics(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let response = next.run(req).await;
    count_response(&state, &route, &method, &response, started);
    response
}

/// Count and time one response (also for those the hot-hit fast path answers).
pub(crate) fn count_response(
    state: &AppState,
    route: &str,
    method: &axum::http::Method,
    response: &Response,
    started: Instant,
) {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        state.stats.record_error();
    }
    state.telemetry.request(
        route,
        method_label(method),
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
}

/// The `method` label: a closed set, so clients inventing methods (`FOO1`, `FOO2`, …)
/// cannot create metric series without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

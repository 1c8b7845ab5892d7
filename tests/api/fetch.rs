//! Remote images: `{"url": …}` uploads, `/fetch/{spec}.{ext}`, `/fetch.{ext}`, the
//! compatibility `/{spec}?url=…`, and the private-address guard. Every origin is a real
//! HTTP server on 127.0.0.1; no test sends a packet to any other address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode as AxumStatus};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use progimage::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, corpus, decode_jpeg, decode_png, TestServer};

const PNG: &str = "png-rgba-alpha.png";
const JPEG: &str = "jpeg-progressive.jpg";
const WEBP: &str = "webp-lossy.webp";
/// Every request a test makes is bounded, so a hung fetch fails the test instead of
/// hanging the suite.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A real origin on 127.0.0.1:0 that counts the requests it receives.
struct Origin {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    async fn start() -> Origin {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/img/{name}", get(serve_corpus))
            .route("/redirect/{n}", get(redirect_chain))
            .route("/to", get(redirect_to))
            .route("/missing", get(|| async { AxumStatus::NOT_FOUND }))
            .route("/slow", get(slow))
            .route("/huge", get(huge_streamed))
            .route("/huge-declared", get(|| async { vec![0u8; 64 * 1024] }))
            .layer(middleware::from_fn_with_state(hits.clone(), count));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Origin { addr, hits, task }
    }

    /// `http://127.0.0.1:PORT{path}`
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same origin by the name `localhost`.
    fn localhost(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn count(State(hits): State<Arc<AtomicUsize>>, req: Request, next: Next) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    next.run(req).await
}

async fn serve_corpus(Path(name): Path<String>) -> Response {
    // Deliberately a generic type: the format must come from the bytes.
    match std::fs::read(crate::support::corpus_dir().join(&name)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => AxumStatus::NOT_FOUND.into_response(),
    }
}

/// `/redirect/n` answers with exactly `n` relative redirects before the image.
async fn redirect_chain(Path(n): Path<u32>) -> Response {
    let next = if n <= 1 {
        format!("/img/{PNG}")
    } else {
        format!("/redirect/{}", n - 1)
    };
    (AxumStatus::FOUND, [(header::LOCATION, next)]).into_response()
}

#[derive(serde::Deserialize)]
struct To {
    loc: String,
}

async fn redirect_to(Query(to): Query<To>) -> Response {
    (AxumStatus::TEMPORARY_REDIRECT, [(header::LOCATION, to.loc)]).into_response()
}

async fn slow() -> Vec<u8> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    corpus(PNG)
}

/// 64 KiB in 1 KiB chunks without a Content-Length: only counting while streaming stops it.
async fn huge_streamed() -> Response {
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1024]));
    Body::from_stream(futures_util::stream::iter(chunks)).into_response()
}

/// A progimage server whose fetch allowlist is `allow`.
async fn server_allowing(allow: &[&str]) -> TestServer {
    server_with(allow, |_| {}).await
}

async fn server_with(allow: &[&str], configure: impl FnOnce(&mut Config)) -> TestServer {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    TestServer::with(move |c| {
        c.fetch_allow = allow;
        c.fetch_timeout_secs = 5;
        configure(c);
    })
    .await
}

/// `GET {path}` with `url` added to the query.
async fn get_with_url(server: &TestServer, path: &str, url: &str) -> reqwest::Response {
    let request = server.client.get(server.url(path)).query(&[("url", url)]);
    bounded(request).await
}

async fn upload_url(server: &TestServer, url: &str) -> reqwest::Response {
    let request = server
        .client
        .post(server.url("/image"))
        .json(&json!({ "url": url }));
    bounded(request).await
}

async fn bounded(request: reqwest::RequestBuilder) -> reqwest::Response {
    tokio::time::timeout(REQUEST_TIMEOUT, request.send())
        .await
        .expect("the request finished in time")
        .expect("the request was answered")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn upload_by_url_stores_the_bytes_like_an_upload() {
    let origin = Origin::start().await;
    let server = server_allowing(&["127.0.0.1/32"]).await;
    let url = origin.url(&format!("/img/{PNG}"));

    let resp = upload_url(&server, &url).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = sha256_hex(&corpus(PNG));
    assert_eq!(resp.headers()["location"], format!("/image/{id}").as_str());
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["id"], id.as_str());
    assert_eq!(meta["format"], "png");
    assert_eq!(meta["filename"], PNG);

    let again = upload_url(&server, &url).await;
    assert_eq!(again.status(), StatusCode::OK);
    let (status, direct) = server.upload_bytes(corpus(PNG)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the bytes were stored by the URL upload"
    );
    assert_eq!(direct["id"], id.as_str());
    assert_eq!(
        server.bytes(&format!("/image/{id}/original")).await,
        corpus(PNG)
    );
}

#[tokio::test]
async fn fetch_renders_a_variant_without_storing() {
    let origin = Origin::start().await;
    let server = server_allowing(&["127.0.0.1/32"]).await;
    let url = origin.url(&format!("/img/{JPEG}"));

    let resp = get_with_url(&server, "/fetch/w_50.png", &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(decode_png(&resp.bytes().await.unwrap()).width, 50);

    // Transforms in the query, with the one-segment spelling.
    let resp = get_with_url(&server, "/fetch.png?w=30", &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(decode_png(&resp.bytes().await.unwrap()).width, 30);

    // The path and the query combine, as on /image/{id}/{spec}.{ext}.
    let resp = get_with_url(&server, "/fetch/w_20.png?gray=1", &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(decode_png(&resp.bytes().await.unwrap()).width, 20);

    let list: Value = server.get("/image").await.json().await.unwrap();
    assert_eq!(list["images"], json!([]), "fetching stores nothing");
}

#[tokio::test]
async fn compat_spec_with_url_keeps_the_remote_format() {
    let origin = Origin::start().await;
    let server = server_allowing(&["127.0.0.1/32"]).await;

    let resp = get_with_url(&server, "/w_40", &origin.url(&format!("/img/{JPEG}"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(decode_jpeg(&resp.bytes().await.unwrap()).width, 40);

    let resp = get_with_url(&server, "/w_40,h_500", &origin.url(&format!("/img/{WEBP}"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/webp");
}

#[tokio::test]
async fn root_segments_without_url_stay_not_found() {
    let server = server_allowing(&[]).await;
    for path in ["/w_40", "/no-such-page", "/favicon.ico"] {
        assert_error(server.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn loopback_is_refused_unless_allowlisted() {
    let origin = Origin::start().await;
    let server = server_allowing(&[]).await;
    let path = format!("/img/{PNG}");
    for url in [
        origin.url(&path),
        format!("http://127.1:{}{path}", origin.addr.port()),
        format!("http://2130706433:{}{path}", origin.addr.port()),
        format!("http://0.0.0.0:{}{path}", origin.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}{path}", origin.addr.port()),
        format!("http://[::1]:{}{path}", origin.addr.port()),
    ] {
        let resp = get_with_url(&server, "/fetch/w_50.png", &url).await;
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
        assert_error(
            upload_url(&server, &url).await,
            StatusCode::FORBIDDEN,
            "forbidden_url",
        )
        .await;
        let resp = get_with_url(&server, "/w_50", &url).await;
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
    }
    assert_eq!(origin.hits(), 0, "a refused URL is never contacted");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused() {
    let origin = Origin::start().await;
    let server = server_allowing(&[]).await;
    let resp = get_with_url(
        &server,
        "/fetch/w_50.png",
        &origin.localhost(&format!("/img/{PNG}")),
    )
    .await;
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn an_allowlisted_name_does_not_allow_where_it_redirects() {
    let origin = Origin::start().await;
    let server = server_allowing(&["LocalHost"]).await;
    let image = format!("/img/{PNG}");

    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.localhost(&image)).await;
    assert_eq!(resp.status(), StatusCode::OK, "the name itself is allowed");
    assert_eq!(origin.hits(), 1);

    let hop = format!("/to?loc={}", origin.url(&image));
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.localhost(&hop)).await;
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
    assert_eq!(origin.hits(), 2, "only the redirecting hop was contacted");

    // The address itself is not allowed by the name.
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url(&image)).await;
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let origin = Origin::start().await;
    let server = server_with(&["127.0.0.1/32"], |c| c.fetch_max_redirects = 3).await;
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url("/redirect/3")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url("/redirect/4")).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "fetch_failed").await;
}

#[tokio::test]
async fn redirects_to_other_schemes_are_refused() {
    let origin = Origin::start().await;
    let server = server_allowing(&["127.0.0.1/32"]).await;
    for target in ["file:///etc/passwd", "ftp://127.0.0.1/x.png"] {
        let url = origin.url(&format!("/to?loc={target}"));
        let resp = get_with_url(&server, "/fetch/w_10.png", &url).await;
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden_url").await;
    }
}

#[tokio::test]
async fn failing_origins_are_bad_gateways() {
    let origin = Origin::start().await;
    let server = server_allowing(&["127.0.0.1/32"]).await;
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url("/missing")).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "fetch_failed").await;
    let resp = upload_url(&server, &origin.url("/missing")).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "fetch_failed").await;

    // A port that was just free: nothing listens, the connection is refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/img/{PNG}");
    let resp = get_with_url(&server, "/fetch/w_10.png", &url).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "fetch_failed").await;
}

#[tokio::test]
async fn a_slow_origin_times_out() {
    let origin = Origin::start().await;
    let server = server_with(&["127.0.0.1/32"], |c| c.fetch_timeout_secs = 1).await;
    let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url("/slow")).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "fetch_failed").await;
}

/// Issue 15, item 7: downloads are capped in number, and a client over its rate limit
/// is refused before anything is downloaded.
#[tokio::test]
async fn fetches_past_the_concurrency_cap_or_the_rate_limit_download_nothing() {
    let origin = Origin::start().await;
    let server = server_with(&["127.0.0.1/32"], |c| {
        c.fetch_timeout_secs = 3;
        c.fetch_concurrency = 1;
    })
    .await;
    let held = {
        let request = server
            .client
            .get(server.url("/fetch/w_10.png"))
            .query(&[("url", origin.url("/slow"))]);
        tokio::spawn(bounded(request))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = origin.hits();
    let resp = get_with_url(
        &server,
        "/fetch/w_10.png",
        &origin.url(&format!("/img/{PNG}")),
    )
    .await;
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    assert_eq!(origin.hits(), hits, "the refused fetch sent nothing");
    assert_error(held.await.unwrap(), StatusCode::BAD_GATEWAY, "fetch_failed").await;

    let limited = server_with(&["127.0.0.1/32"], |c| c.rate_limit = Some(1)).await;
    let first = get_with_url(
        &limited,
        "/fetch/w_10.png",
        &origin.url(&format!("/img/{PNG}")),
    )
    .await;
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "one unit for the fetch and its render"
    );
    let hits = origin.hits();
    let second = get_with_url(
        &limited,
        "/fetch/w_11.png",
        &origin.url(&format!("/img/{PNG}")),
    )
    .await;
    assert_error(second, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        origin.hits(),
        hits,
        "a client over its limit downloads nothing"
    );
}

#[tokio::test]
async fn bodies_over_the_upload_limit_are_too_large() {
    let origin = Origin::start().await;
    let server = server_with(&["127.0.0.1/32"], |c| c.max_upload_bytes = 4096).await;
    for path in ["/huge", "/huge-declared"] {
        let resp = get_with_url(&server, "/fetch/w_10.png", &origin.url(path)).await;
        assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
        let resp = upload_url(&server, &origin.url(path)).await;
        assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    }
}

#[tokio::test]
async fn the_pixel_limit_applies_to_remote_images() {
    let origin = Origin::start().await;
    let server = server_with(&["127.0.0.1/32"], |c| c.max_pixels = 100).await;
    let url = origin.url(&format!("/img/{PNG}"));
    let resp = get_with_url(&server, "/fetch/w_10.png", &url).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels").await;
    let resp = upload_url(&server, &url).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels").await;
}

#[tokio::test]
async fn only_http_and_https_urls_are_fetched() {
    let server = server_allowing(&["127.0.0.1/32"]).await;
    for url in [
        "ftp://127.0.0.1/a.png",
        "file:///etc/passwd",
        "http://user:secret@127.0.0.1/a.png",
        "not a url",
    ] {
        let resp = get_with_url(&server, "/fetch/w_10.png", url).await;
        assert_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
        let resp = upload_url(&server, url).await;
        assert_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

#[tokio::test]
async fn malformed_fetch_requests_are_bad_requests() {
    let server = server_allowing(&["127.0.0.1/32"]).await;
    assert_error(
        server.get("/fetch/w_10.png").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        server.get("/fetch.png?w=10").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let resp = get_with_url(&server, "/fetch/w_10.exe", "http://127.0.0.1:9/a.png").await;
    assert_error(resp, StatusCode::BAD_REQUEST, "bad_format").await;
    let resp = get_with_url(&server, "/fetch/zz_10.png", "http://127.0.0.1:9/a.png").await;
    assert_error(resp, StatusCode::BAD_REQUEST, "bad_transform").await;

    for body in ["{", "{}", "{\"url\": 5}", "[]"] {
        let request = server
            .client
            .post(server.url("/image"))
            .header("content-type", "application/json")
            .body(body);
        assert_error(
            bounded(request).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
}

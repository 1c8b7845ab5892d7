//! /health, /ready, /status, /metrics, /openapi.json, listing and deletion.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{assert_error, TestServer};

#[tokio::test]
async fn health_and_ready() {
    let server = TestServer::start().await;
    let health = server.get("/health").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "OK");
    assert_eq!(server.get("/ready").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn ready_fails_when_storage_is_unusable() {
    let server = TestServer::local(|_| {}).await;
    // Make the store directory unwritable by replacing it with a file.
    let store = server.dir.path().join("store");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, b"not a directory").unwrap();
    assert_error(
        server.get("/ready").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    assert_eq!(
        server.get("/health").await.status(),
        StatusCode::OK,
        "still alive"
    );
}

#[tokio::test]
async fn status_counts() {
    let server = TestServer::start().await;
    server.upload_corpus("png-rgba-alpha.png").await;
    let id = server.upload_corpus("gif-static.gif").await;
    server.bytes(&format!("/image/{id}.png?w=10")).await;
    server.upload_bytes(b"not an image".to_vec()).await;
    let status: Value = server.get("/status").await.json().await.unwrap();
    assert_eq!(status["uploaded_count"], 2);
    assert_eq!(status["images"], 2);
    assert_eq!(status["errors"], 1);
    assert!(status["cache_bytes"].as_u64().unwrap() > 0);
    assert!(status["uptime_s"].as_u64().is_some());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn metrics_expose_the_contracted_series() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    server.bytes(&format!("/image/{id}.webp")).await;
    server.bytes(&format!("/image/{id}.webp")).await;
    let resp = server.get("/metrics").await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for series in [
        "progimage_http_requests_total{route=\"/image\",method=\"POST\",status=\"201\"} 1",
        "progimage_http_request_duration_seconds_bucket{route=\"/image/{id}\",status=\"200\"",
        "progimage_decode_seconds_bucket{format=\"png\"",
        "progimage_pixels_processed_total",
        "progimage_bytes_in_total",
        "progimage_cache_hits_total 1",
        "progimage_cache_misses_total 1",
        "progimage_work_queue_depth",
        "progimage_work_in_flight",
        "progimage_renders_total{format=\"webp\"} 1",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let server = TestServer::start().await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/image",
        "/image/{id}",
        "/image/{id}.{ext}",
        "/image/{id}/{spec}.{ext}",
        "/image/{id}/original",
        "/image/{id}/ascii",
        "/image/{id}/blurhash",
        "/image/{id}/meta",
        "/images",
        "/images/{id}",
        "/images/{id}.{ext}",
        "/upload",
        "/list",
        "/batch",
        "/ascii",
        "/",
        "/health",
        "/ready",
        "/status",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
    assert!(doc["paths"]["/image"]["post"].is_object());
    assert!(doc["paths"]["/image/{id}"]["delete"].is_object());
    // The aliases carry only the methods their routes take, with their own operation ids.
    assert!(doc["paths"]["/images"]["post"].is_object());
    assert!(doc["paths"]["/images"]["get"].is_null());
    assert!(doc["paths"]["/images/{id}"]["delete"].is_null());
    assert_ne!(
        doc["paths"]["/images/{id}"]["get"]["operationId"],
        doc["paths"]["/image/{id}"]["get"]["operationId"]
    );
}

#[tokio::test]
async fn list_pages_through_everything_and_delete_removes_all_traces() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for f in [
        "png-rgba-alpha.png",
        "gif-static.gif",
        "bmp-24bit.bmp",
        "webp-lossy.webp",
        "jpeg-grayscale.jpg",
    ] {
        ids.push(server.upload_corpus(f).await);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/image?limit=2&cursor={c}"),
            None => "/image?limit=2".into(),
        };
        let page: Value = server.get(&path).await.json().await.unwrap();
        let images = page["images"].as_array().unwrap();
        assert!(images.len() <= 2);
        seen.extend(images.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert_error(
        server.get("/image?limit=0").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    let id = &ids[0];
    server.bytes(&format!("/image/{id}.png?w=10")).await;
    assert!(server.state.variants.total_bytes() > 0);
    let resp = server
        .client
        .delete(server.url(&format!("/image/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server.state.variants.total_bytes(),
        0,
        "cached variants removed"
    );
    for path in [
        format!("/image/{id}"),
        format!("/image/{id}/original"),
        format!("/image/{id}.png?w=10"),
    ] {
        assert_error(server.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    let again = server
        .client
        .delete(server.url(&format!("/image/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_variant_url_cannot_be_deleted() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    let resp = server
        .client
        .delete(server.url(&format!("/image/{id}.jpg")))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(
        server.get(&format!("/image/{id}")).await.status(),
        StatusCode::OK,
        "the image is still there"
    );
}

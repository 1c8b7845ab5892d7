//! Single-flight rendering and load shedding under concurrency.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::support::TestServer;

/// A hang guard only: these finish in seconds; the bound turns a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[tokio::test]
async fn identical_concurrent_misses_render_once() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("photo-8mp-jolla-exif.jpg").await;
    let path = format!("/image/{id}.webp?w=640");
    let requests = (0..64).map(|_| async {
        let resp = server.get(&path).await;
        (resp.status(), resp.bytes().await.unwrap())
    });
    let results = tokio::time::timeout(HANG_GUARD, join_all(requests))
        .await
        .expect("no hang");
    let first = &results[0].1;
    for (status, bytes) in &results {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(bytes, first, "everyone gets the same bytes");
    }
    assert_eq!(
        server
            .metric("progimage_renders_total{format=\"webp\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_full_queue_sheds_with_503_and_retry_after_then_recovers() {
    let server = TestServer::with(|c| {
        c.workers = Some(1);
        c.queue = 1;
    })
    .await;
    let id = server.upload_corpus("photo-8mp-jolla-exif.jpg").await;
    // 12 distinct variants at once: one runs, one waits, the rest must be shed at once.
    let requests = (0..12).map(|i| {
        let path = format!("/image/{id}.jpg?w={}", 200 + i);
        let server = &server;
        async move {
            let resp = server.get(&path).await;
            let retry_after = resp.headers().get("retry-after").cloned();
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            (status, retry_after, body)
        }
    });
    let results = tokio::time::timeout(HANG_GUARD, join_all(requests))
        .await
        .expect("no hang");
    let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
    let shed: Vec<_> = results
        .iter()
        .filter(|r| r.0 == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(ok + shed.len(), results.len(), "only 200s and 503s");
    assert!(ok >= 1, "the admitted work completes");
    assert!(!shed.is_empty(), "excess work is shed");
    for (_, retry_after, body) in shed {
        assert!(retry_after.is_some(), "503 carries Retry-After");
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["code"], "overloaded");
    }
    assert!(server.metric("progimage_work_shed_total").await >= 1.0);
    // Once the burst is over the server serves normally again.
    assert_eq!(
        server.get(&format!("/image/{id}.jpg?w=150")).await.status(),
        StatusCode::OK
    );
    assert_eq!(server.metric("progimage_work_queue_depth").await, 0.0);
    assert_eq!(server.metric("progimage_work_in_flight").await, 0.0);
}

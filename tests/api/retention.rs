//! The variant cache's tiers and limits: the memory tier, the disk budget with
//! least-recently-used eviction, and the TTL — all observed from outside.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{files_under, TestServer};

const PHOTO: &str = "photo-3mp-canon-exif6.jpg";

async fn renders(server: &TestServer) -> f64 {
    server
        .metric("progimage_renders_total{format=\"png\"}")
        .await
}

fn remove_cached_files(server: &TestServer) -> usize {
    let files = files_under(&server.dir.path().join("cache"));
    for file in &files {
        std::fs::remove_file(file).expect("remove");
    }
    files.len()
}

#[tokio::test]
async fn the_memory_tier_serves_hits_without_the_disk() {
    let server = TestServer::local(|_| {}).await;
    let id = server.upload_corpus(PHOTO).await;
    let path = format!("/image/{id}.png?w=64");
    let first = server.bytes(&path).await;
    assert_eq!(renders(&server).await, 1.0);
    assert_eq!(remove_cached_files(&server), 1);
    assert_eq!(server.bytes(&path).await, first);
    assert_eq!(
        renders(&server).await,
        1.0,
        "served from memory, not re-rendered"
    );
}

#[tokio::test]
async fn without_a_memory_tier_a_lost_file_is_rendered_again() {
    let server = TestServer::local(|c| c.hot_cache_bytes = 0).await;
    let id = server.upload_corpus(PHOTO).await;
    let path = format!("/image/{id}.png?w=64");
    let first = server.bytes(&path).await;
    assert_eq!(server.bytes(&path).await, first);
    assert_eq!(renders(&server).await, 1.0, "a disk hit");
    assert_eq!(remove_cached_files(&server), 1);
    assert_eq!(server.bytes(&path).await, first);
    assert_eq!(renders(&server).await, 2.0);
}

#[tokio::test]
async fn the_disk_budget_evicts_least_recently_used_variants() {
    let budget = 40_000;
    let server = TestServer::local(|c| {
        c.hot_cache_bytes = 0;
        c.cache_max_bytes = budget;
    })
    .await;
    let id = server.upload_corpus(PHOTO).await;
    let mut sizes = Vec::new();
    for w in 100..110 {
        sizes.push(server.bytes(&format!("/image/{id}.png?w={w}")).await.len() as u64);
    }
    let total: u64 = sizes.iter().sum();
    assert!(
        total > budget,
        "the variants ({total} B) must exceed the budget"
    );
    let status: serde_json::Value = server.get("/status").await.json().await.expect("json");
    let cached = status["cache_bytes"].as_u64().expect("cache_bytes");
    assert!(cached <= budget, "{cached} > {budget}");
    assert!(cached > 0);
    let evicted = server
        .metric("progimage_cache_evictions_total{reason=\"size\"}")
        .await;
    assert!(evicted >= 1.0, "evictions {evicted}");

    // The newest variant is still cached; the oldest was evicted and renders again,
    // to the same bytes.
    let before = renders(&server).await;
    server.bytes(&format!("/image/{id}.png?w=109")).await;
    assert_eq!(renders(&server).await, before);
    let again = server.bytes(&format!("/image/{id}.png?w=100")).await;
    assert_eq!(again.len() as u64, sizes[0]);
    assert_eq!(renders(&server).await, before + 1.0);
}

#[tokio::test]
async fn unused_variants_expire_after_the_ttl_and_originals_stay() {
    let server = TestServer::local(|c| c.variant_ttl = Some(Duration::from_secs(1))).await;
    let id = server.upload_corpus(PHOTO).await;
    let path = format!("/image/{id}.png?w=64");
    server.bytes(&path).await;
    let expired = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = server
                .metric("progimage_cache_evictions_total{reason=\"ttl\"}")
                .await;
            if n >= 1.0 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("the variant expires within 20 s");
    assert!(expired >= 1.0);
    let status: serde_json::Value = server.get("/status").await.json().await.expect("json");
    assert_eq!(status["cache_bytes"], 0);
    assert_eq!(
        server.get(&format!("/image/{id}/original")).await.status(),
        StatusCode::OK
    );
    server.bytes(&path).await;
    assert_eq!(renders(&server).await, 2.0, "rendered again after expiry");
}

#[tokio::test]
async fn renders_of_one_image_share_its_original_in_memory() {
    let server = TestServer::start().await;
    let id = server.upload_corpus(PHOTO).await;
    for w in [40, 50, 60, 70] {
        server.bytes(&format!("/image/{id}.png?w={w}")).await;
    }
    assert_eq!(renders(&server).await, 4.0);
    assert_eq!(server.metric("progimage_original_loads_total").await, 1.0);

    let off = TestServer::with(|c| c.originals_cache_bytes = 0).await;
    let id = off.upload_corpus(PHOTO).await;
    for w in [40, 50] {
        off.bytes(&format!("/image/{id}.png?w={w}")).await;
    }
    assert_eq!(off.metric("progimage_original_loads_total").await, 2.0);
}

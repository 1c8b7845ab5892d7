//! Nodes sharing an S3 bucket: any node serves any image and variant, renders are
//! shared through the bucket, deletes reach every node, counts come from the bucket, and
//! an unreachable bucket means fast 503s and recovery — against a real S3-compatible
//! server on loopback.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{assert_error, corpus, S3Server, TestServer};

const PHOTO: &str = "photo-3mp-canon-exif6.jpg";
const PREFIX: &str = "shared";

async fn node(s3: &S3Server) -> TestServer {
    TestServer::on(Some(s3), PREFIX, |c| c.presence_ttl_secs = 1).await
}

async fn renders(server: &TestServer) -> f64 {
    server
        .metric("progimage_renders_total{format=\"webp\"}")
        .await
}

#[tokio::test]
async fn two_nodes_serve_each_others_images_and_deletes() {
    let s3 = S3Server::start().await;
    let (a, b) = (node(&s3).await, node(&s3).await);

    let (status, meta) = a.upload_bytes(corpus(PHOTO)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = meta["id"].as_str().unwrap().to_owned();
    assert_eq!(s3.objects(&format!("{PREFIX}/originals")).len(), 1);
    assert_eq!(s3.objects(&format!("{PREFIX}/meta")).len(), 1);

    // B has never seen the image: metadata, original and a variant all come from the bucket.
    let meta_b: Value = b.get(&format!("/image/{id}")).await.json().await.unwrap();
    assert_eq!(meta_b["width"], meta["width"]);
    assert_eq!(
        b.bytes(&format!("/image/{id}/original")).await,
        corpus(PHOTO)
    );
    let variant = format!("/image/{id}.webp?w=120");
    let from_b = b.bytes(&variant).await;
    assert_eq!(renders(&b).await, 1.0);
    // B keeps a local copy of the original for its next renders of this image.
    let copy = b
        .dir
        .path()
        .join("cache")
        .join(&id[..2])
        .join(&id)
        .join("original");
    assert_eq!(std::fs::read(&copy).expect("local copy"), corpus(PHOTO));
    // The render landed in the bucket, so A downloads it instead of rendering.
    assert_eq!(s3.objects(&format!("{PREFIX}/variants")).len(), 1);
    assert_eq!(a.bytes(&variant).await, from_b);
    assert_eq!(renders(&a).await, 0.0);

    // Counts come from the bucket, not from the node that took the upload.
    for n in [&a, &b] {
        let status: Value = n.get("/status").await.json().await.unwrap();
        assert_eq!(status["images"], 1);
    }
    let listed: Value = b.get("/image").await.json().await.unwrap();
    assert_eq!(listed["images"].as_array().unwrap().len(), 1);

    // Delete through B: gone from the bucket and, within the presence TTL, from A too,
    // although A holds the variant in its memory and disk cache.
    assert_eq!(
        b.client
            .delete(b.url(&format!("/image/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(s3
        .objects(PREFIX)
        .iter()
        .all(|p| !p.to_string_lossy().contains(&id)));
    assert_eq!(
        a.get(&format!("/image/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if a.get(&variant).await.status() == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "A still serves a variant of a deleted image");
    let status: Value = a.get("/status").await.json().await.unwrap();
    assert_eq!(status["images"], 0);
}

#[tokio::test]
async fn two_nodes_rendering_the_same_new_variant_both_succeed() {
    let s3 = S3Server::start().await;
    let (a, b) = (node(&s3).await, node(&s3).await);
    let id = a.upload_corpus(PHOTO).await;
    let variant = format!("/image/{id}.webp?w=200&blur=2");
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.get(&variant), b.get(&variant));
        assert_eq!(ra.status(), StatusCode::OK);
        assert_eq!(rb.status(), StatusCode::OK);
        let (ba, bb) = (ra.bytes().await.unwrap(), rb.bytes().await.unwrap());
        assert_eq!(ba, bb, "renders are deterministic");
        image::load_from_memory(&ba).expect("a whole WebP");
    }
    let objects = s3.objects(&format!("{PREFIX}/variants"));
    assert_eq!(objects.len(), 1, "{objects:?}");
    let stored = std::fs::read(&objects[0]).unwrap();
    assert_eq!(stored, a.bytes(&variant).await);
}

/// Issue 15, item 9: a variant the bucket holds is served even when this node's cache
/// disk cannot take a copy.
#[tokio::test]
async fn a_failing_local_cache_disk_does_not_break_bucket_hits() {
    let s3 = S3Server::start().await;
    let (a, b) = (node(&s3).await, node(&s3).await);
    let id = a.upload_corpus(PHOTO).await;
    let variant = format!("/image/{id}.webp?w=120");
    let rendered = a.bytes(&variant).await;
    // Node b's cache shard for this id cannot be created: a file stands in its place.
    let shard = b.dir.path().join("cache").join(&id[..2]);
    let _ = std::fs::remove_dir_all(&shard);
    std::fs::write(&shard, b"not a directory").unwrap();
    assert_eq!(b.bytes(&variant).await, rendered);
    assert_eq!(
        renders(&b).await,
        0.0,
        "served from the bucket, not rendered"
    );
}

#[tokio::test]
async fn an_unreachable_bucket_gives_fast_503s_and_recovers() {
    let mut s3 = S3Server::start().await;
    let server = TestServer::on(Some(&s3), PREFIX, |c| c.store_timeout_secs = 2).await;
    let id = server.upload_corpus(PHOTO).await;
    let cached = format!("/image/{id}.webp?w=90");
    server.bytes(&cached).await;
    assert_eq!(server.get("/ready").await.status(), StatusCode::OK);

    s3.stop().await;
    let started = Instant::now();
    assert_error(
        server.get("/ready").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    let (status, body) = server.upload_bytes(corpus("png-rgba-alpha.png")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "storage_unavailable");
    assert_error(
        server.get(&format!("/image/{id}/original")).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    // Generous bound: "fast" means the store deadline, not a hang.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);

    s3.restart().await;
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while server.get("/ready").await.status() != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "ready again after the bucket returns");
    let (status, _) = server.upload_bytes(corpus("png-rgba-alpha.png")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        server.bytes(&format!("/image/{id}/original")).await,
        corpus(PHOTO)
    );
}

#[tokio::test]
async fn the_ttl_removes_unused_variants_from_the_bucket() {
    let s3 = S3Server::start().await;
    let server = TestServer::on(Some(&s3), PREFIX, |c| {
        c.variant_ttl = Some(Duration::from_secs(1));
    })
    .await;
    let id = server.upload_corpus(PHOTO).await;
    server.bytes(&format!("/image/{id}.webp?w=70")).await;
    assert_eq!(s3.objects(&format!("{PREFIX}/variants")).len(), 1);
    let swept = tokio::time::timeout(Duration::from_secs(20), async {
        while !s3.objects(&format!("{PREFIX}/variants")).is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(swept.is_ok(), "the variant left the bucket");
    assert_eq!(
        s3.objects(&format!("{PREFIX}/originals")).len(),
        1,
        "originals stay"
    );
    let evicted = server
        .metric("progimage_cache_evictions_total{reason=\"ttl\"}")
        .await;
    assert!(evicted >= 1.0);
}

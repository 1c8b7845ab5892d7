//! Issue 15: nothing a request can do takes the server down, bypasses a key, or serves
//! what was deleted. One test (or more) per defect class of the issue, each over real
//! HTTP on loopback and bounded in time; RELIABILITY.md maps them to the defects.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use progimage::{AppState, Config};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::time::timeout;

use crate::crash::{ServerProcess, XorShift};
use crate::malformed::peak_rss_kib;
use crate::support::{assert_error, corpus, files_under, rgb_png, TestServer};

const JPEG: &str = "jpeg-progressive.jpg";
/// Every wait in this file is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

fn png_of(w: u32, h: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&pixel(x, y));
        }
    }
    rgb_png(w, h, &pixels)
}

/// Noise: slow to trace, so a traced SVG of it keeps a worker busy for a while.
fn noise_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let noise: Vec<[u8; 3]> = (0..w * h)
        .map(|_| {
            let v = rng.next();
            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
        })
        .collect();
    png_of(w, h, |x, y| noise[(y * w + x) as usize])
}

/// A variant of a noise image that takes the (single) worker a while: tracing 400×400
/// noise took 0.9 s here, 500×500 about 2 s.
const SLOW: &str = "svg?colors=8&detail=100";

fn cache_dir(root: &Path, id: &str) -> std::path::PathBuf {
    root.join("cache").join(&id[..2]).join(id)
}

fn sign(key: &str, message: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
        .collect()
}

// 1. One anonymous request can exhaust memory (POST /batch).

#[tokio::test]
async fn a_batch_of_huge_bad_ids_is_refused_item_by_item_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[("PROGIMAGE_WORKERS", "1")]);
    let client = Client::builder().timeout(BOUND).build().unwrap();
    assert_eq!(
        client
            .get(format!("{}/health", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let before = peak_rss_kib(server.pid());
    // ~210 KB of JSON asking for 10,000 items, each naming a 100 KB id.
    let body = json!({ "ids": ["x".repeat(100_000)], "variants": vec!["w_1.png"; 10_000] });
    let resp = client
        .post(format!("{}/batch", server.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let lines = ndjson(&text);
    assert_eq!(lines.len(), 10_000);
    for line in &lines {
        assert_eq!(line["status"], 400, "{line}");
        assert_eq!(line["error"]["code"], "bad_id", "{line}");
        assert!(
            line["id"].as_str().unwrap().len() <= 100,
            "the id is echoed cut"
        );
    }
    assert!(text.len() < 4 << 20, "{} bytes of answer", text.len());
    let after = peak_rss_kib(server.pid());
    println!(
        "batch of 10,000 items naming a 100 KB id: peak RSS {} MiB before, {} MiB after",
        before / 1024,
        after / 1024
    );
    // Before the fix this peaked near 1 GB (every item cloned the 100 KB id).
    assert!(
        after < before + 100 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

// 2. Animated outputs are unbounded.

fn gif_frames(frames: u16, side: u16) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let palette = [0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255];
        let mut encoder = gif::Encoder::new(&mut out, side, side, &palette).unwrap();
        encoder.set_repeat(gif::Repeat::Infinite).unwrap();
        for i in 0..frames {
            let pixels: Vec<u8> = (0..side * side).map(|p| ((p + i) % 4) as u8).collect();
            let mut frame = gif::Frame::from_indexed_pixels(side, side, pixels, None);
            frame.delay = 5;
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}

fn gif_frame_count(bytes: &[u8]) -> (usize, (u16, u16)) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes).unwrap();
    let size = (decoder.width(), decoder.height());
    let mut count = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        count += 1;
    }
    (count, size)
}

#[tokio::test]
async fn animated_outputs_are_bounded_in_pixels_across_frames() {
    let server = TestServer::start().await;
    let (status, body) = server.upload_bytes(gif_frames(40, 4)).await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap();
    // 40 frames × 1024² = 42 MP of output from a 3.6 KB file: refused before rendering.
    for ext in ["gif", "webp"] {
        let started = Instant::now();
        let resp = server
            .get(&format!("/image/{id}.{ext}?w=1024&enlarge=1"))
            .await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels").await;
        assert!(started.elapsed() < Duration::from_secs(5), "refused early");
    }
    // Within the budget, every frame is still there.
    let small = server
        .bytes(&format!("/image/{id}.gif?w=64&enlarge=1"))
        .await;
    assert_eq!(gif_frame_count(&small), (40, (64, 64)));
}

// 3. `/batch` mints signed URLs, and one rate-limit unit buys 10,000 renders.

#[tokio::test]
async fn batch_items_need_their_own_signature_without_an_api_key() {
    let key = "batch-signing-key";
    let server = TestServer::with(|c| c.signing_key = Some(key.into())).await;
    let id = server.upload_corpus(JPEG).await;
    let unsigned = server.get(&format!("/image/{id}.png?w=77")).await;
    assert_error(unsigned, StatusCode::FORBIDDEN, "bad_signature").await;

    let path = format!("/image/{id}/w_77,blur_5.png");
    let signed = format!("w_77,blur_5.png?sig={}", sign(key, &path));
    let resp = server
        .post_json(
            "/batch",
            &json!({ "ids": [id], "variants": ["w_77,blur_5.png", signed] }),
        )
        .await;
    let mut lines = ndjson(&resp.text().await.unwrap());
    lines.sort_by_key(|l| l["index"].as_u64());
    assert_eq!(lines[0]["status"], 403, "{}", lines[0]);
    assert_eq!(lines[0]["error"]["code"], "bad_signature");
    assert!(lines[0].get("url").is_none(), "no URL is minted");
    assert_eq!(lines[1]["status"], 200, "{}", lines[1]);
    let url = lines[1]["url"].as_str().unwrap();
    assert_eq!(url, format!("{path}?sig={}", sign(key, &path)));
    assert_eq!(server.get(url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn batch_signs_urls_for_api_key_holders() {
    let key = "batch-signing-key";
    let server = TestServer::with(|c| {
        c.signing_key = Some(key.into());
        c.api_keys = vec!["operator".into()];
    })
    .await;
    let uploaded = server
        .client
        .post(server.url("/image"))
        .bearer_auth("operator")
        .body(corpus(JPEG))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let id = uploaded.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = server
        .client
        .post(server.url("/batch"))
        .bearer_auth("operator")
        .json(&json!({ "ids": [id], "variants": ["w_61.webp"] }))
        .send()
        .await
        .unwrap();
    let lines = ndjson(&resp.text().await.unwrap());
    assert_eq!(lines[0]["status"], 200, "{}", lines[0]);
    let url = lines[0]["url"].as_str().unwrap();
    let expected_path = format!("/image/{id}/w_61.webp");
    assert_eq!(
        url,
        format!("{expected_path}?sig={}", sign(key, &expected_path))
    );
    assert_eq!(server.get(url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_batch_item_takes_a_rate_limit_unit() {
    let server = TestServer::with(|c| c.rate_limit = Some(2)).await;
    let (status, body) = server.upload_bytes(corpus(JPEG)).await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the upload's unit back
    let variants: Vec<String> = (0..8).map(|i| format!("w_{}.png", 20 + i)).collect();
    let resp = server
        .post_json("/batch", &json!({ "ids": [id], "variants": variants }))
        .await;
    let lines = ndjson(&resp.text().await.unwrap());
    let rendered = lines.iter().filter(|l| l["status"] == 200).count();
    let limited = lines
        .iter()
        .filter(|l| l["status"] == 429 && l["error"]["code"] == "rate_limited")
        .count();
    assert_eq!(lines.len(), 8);
    assert!(
        rendered <= 3,
        "{rendered} of 8 items rendered under a limit of 2/s"
    );
    assert_eq!(rendered + limited, 8, "{lines:?}");
}

// 4. Metric series are unbounded.

#[tokio::test]
async fn invented_methods_share_one_metric_label() {
    let server = TestServer::start().await;
    for i in 1..=50 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let resp = server
            .client
            .request(method, server.url("/health"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    let text = server.get("/metrics").await.text().await.unwrap();
    let mut methods: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    for m in &methods {
        assert!(
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"].contains(m),
            "method label {m}"
        );
    }
    assert!(methods.contains(&"other"), "{methods:?}");
}

// 5. Deleted images can come back.

/// `GET path` in the background; its status.
fn spawn_get(
    server: &TestServer,
    path: &str,
) -> tokio::task::JoinHandle<reqwest::Result<StatusCode>> {
    let (client, url) = (server.client.clone(), server.url(path));
    tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
}

#[tokio::test]
async fn a_blurhash_queued_behind_a_delete_does_not_recreate_the_cache() {
    let server = TestServer::local(|c| c.workers = Some(1)).await;
    let slow = server.upload_bytes(noise_png(500, 500, 5)).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim = server.upload_bytes(noise_png(900, 700, 6)).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Keep the one worker busy, so the BlurHash job waits in the queue (its original
    // already read) while the image is deleted.
    let busy = spawn_get(&server, &format!("/image/{slow}.{SLOW}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hash = spawn_get(&server, &format!("/image/{victim}/blurhash"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deleted = server.delete(&format!("/image/{victim}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    timeout(BOUND, hash).await.unwrap().unwrap().unwrap();
    timeout(BOUND, busy).await.unwrap().unwrap().unwrap();
    let left: Vec<_> = files_under(&cache_dir(server.dir.path(), &victim));
    assert!(left.is_empty(), "cache files of a deleted image: {left:?}");
    let again = server.get(&format!("/image/{victim}/blurhash")).await;
    assert_error(again, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_retried_delete_purges_what_a_failed_one_left() {
    let server = TestServer::local(|_| {}).await;
    let id = server.upload_corpus(JPEG).await;
    let variant = format!("/image/{id}.png?w=50");
    server.bytes(&variant).await;
    // A delete that removed the metadata (the commit point) and then failed: the
    // original and the cached variants are still on disk.
    let meta = server
        .dir
        .path()
        .join("store/meta")
        .join(&id[..2])
        .join(format!("{id}.json"));
    std::fs::remove_file(&meta).unwrap();
    let retried = server.delete(&format!("/image/{id}")).await;
    assert_error(retried, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(
        server.get(&variant).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(files_under(&cache_dir(server.dir.path(), &id)).is_empty());
}

#[tokio::test]
async fn a_purge_cut_short_by_a_crash_is_finished_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let id = "ab".repeat(32);
    let variants = dir.path().join("cache/ab").join(&id);
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::write(variants.join("0123.png"), b"left by a crash mid-purge").unwrap();
    std::fs::create_dir_all(dir.path().join("cache/.purging")).unwrap();
    std::fs::write(dir.path().join("cache/.purging").join(&id), b"").unwrap();
    let _state = AppState::new(Config::with_data_dir(dir.path()))
        .await
        .unwrap();
    assert!(!variants.exists(), "the interrupted purge was finished");
    assert!(!dir.path().join("cache/.purging").join(&id).exists());
}

// 6. Metadata without its original.

#[tokio::test]
async fn uploading_again_repairs_an_image_whose_original_is_missing() {
    let server = TestServer::local(|_| {}).await;
    let bytes = corpus(JPEG);
    let id = server.upload_corpus(JPEG).await;
    // A store write that timed out after its metadata landed: no original.
    let original = server
        .dir
        .path()
        .join("store/originals")
        .join(&id[..2])
        .join(&id);
    std::fs::remove_file(&original).unwrap();
    let (status, _) = server.upload_bytes(bytes.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.bytes(&format!("/image/{id}/original")).await,
        bytes,
        "the re-upload wrote the original back"
    );
}

// 7. Work piles up before any limit.

/// Send `head` on a fresh connection and return the connection.
fn connect(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
}

/// Read until the connection closes or `limit` passes; what arrived.
fn read_for(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let until = Instant::now() + limit;
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Send the headers of a POST declaring a long body, then drip one byte every 200 ms
/// (never idle long enough for the idle timeout); how long until an answer, and it.
fn drip_upload(base: &str) -> (Duration, String) {
    let mut stream = connect(base);
    stream
        .write_all(
            b"POST /image HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n\
              Content-Length: 100000\r\n\r\n",
        )
        .unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    while started.elapsed() < Duration::from_secs(30) && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let _ = stream.write_all(b"x");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

#[tokio::test]
async fn a_body_dripped_a_byte_at_a_time_still_times_out() {
    let server = TestServer::with(|c| c.body_timeout = Duration::from_secs(2)).await;
    let base = server.base.clone();
    let (elapsed, text) = tokio::task::spawn_blocking(move || drip_upload(&base))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("request_timeout"), "{text:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
    assert!(server.state.images.ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn uploads_past_what_the_pool_can_take_are_refused_before_their_body() {
    // One worker, no queue: one body may be read at a time.
    let server = TestServer::with(|c| {
        c.workers = Some(1);
        c.queue = 0;
        c.body_timeout = Duration::from_secs(3); // ends the dripping upload below
    })
    .await;
    let base = server.base.clone();
    let slow = tokio::task::spawn_blocking(move || drip_upload(&base));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = server
        .client
        .post(server.url("/image"))
        .header("content-type", "application/octet-stream")
        .body(corpus(JPEG))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    let (_, answer) = slow.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let (status, body) = server.upload_bytes(corpus(JPEG)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the slot is free again: {body}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_one() {
    let server = TestServer::with(|c| c.max_connections = 2).await;
    let base = server.base.clone();
    tokio::task::spawn_blocking(move || {
        let first = connect(&base);
        let _second = connect(&base);
        std::thread::sleep(Duration::from_millis(300)); // both accepted, both idle
        let mut third = connect(&base);
        third
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let early = read_for(&mut third, Duration::from_millis(800));
        assert!(early.is_empty(), "answered over the cap: {early:?}");
        drop(first); // a slot frees up: the waiting connection is accepted
        let mut answer = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        while !answer.ends_with(b"OK") && Instant::now() < until {
            answer.extend(read_for(&mut third, Duration::from_millis(500)));
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let server = TestServer::with(|c| c.write_timeout = Duration::from_secs(1)).await;
    // 3000×2000 as BMP is 18 MB, far more than the sockets' buffers hold.
    let (status, body) = server
        .upload_bytes(png_of(3000, 2000, |x, y| [x as u8, y as u8, 7]))
        .await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    server.bytes(&format!("/image/{id}.bmp")).await; // rendered and cached
    let base = server.base.clone();
    let (declared, received) = tokio::task::spawn_blocking(move || {
        let mut stream = connect(&base);
        let request = format!("GET /image/{id}.bmp HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = vec![0u8; 1024];
        let n = stream.read(&mut head).unwrap();
        let text = String::from_utf8_lossy(&head[..n]).to_lowercase();
        let declared: usize = text
            .split("content-length: ")
            .nth(1)
            .and_then(|v| v.split("\r\n").next())
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length");
        std::thread::sleep(Duration::from_secs(4)); // not reading
        let rest = read_for(&mut stream, Duration::from_secs(20));
        (declared, n + rest.len())
    })
    .await
    .unwrap();
    assert!(
        received < declared,
        "the whole {declared}-byte answer was kept for a client that stopped reading"
    );
}

#[tokio::test]
async fn a_job_past_its_deadline_answers_504_and_the_server_goes_on() {
    let server = TestServer::with(|c| {
        c.workers = Some(1);
        c.job_timeout = Duration::from_millis(200);
    })
    .await;
    let (_, body) = server.upload_bytes(noise_png(400, 400, 9)).await;
    let id = body["id"].as_str().unwrap();
    let started = Instant::now();
    let resp = server.get(&format!("/image/{id}.{SLOW}")).await;
    assert_error(resp, StatusCode::GATEWAY_TIMEOUT, "timeout").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn shutdown_has_a_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        dir.path(),
        &[
            ("PROGIMAGE_SHUTDOWN_TIMEOUT", "1s"),
            ("PROGIMAGE_BODY_IDLE_TIMEOUT", "120s"),
        ],
    );
    // An upload whose body never comes: in flight until the body times out.
    let mut stalled = connect(&server.base);
    stalled
        .write_all(
            b"POST /image HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n\
              Content-Length: 1000\r\n\r\n\x89PNG",
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exited after {:?}",
        started.elapsed()
    );
    drop(stalled);
}

// 8. Single-flight does not survive cancellation.

#[tokio::test]
async fn a_render_whose_client_left_is_finished_once_for_the_next() {
    let server = TestServer::with(|c| c.workers = Some(1)).await;
    let (_, body) = server.upload_bytes(noise_png(400, 400, 11)).await;
    let id = body["id"].as_str().unwrap();
    let url = server.url(&format!("/image/{id}.{SLOW}"));
    let impatient = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(
        impatient.get(&url).send().await.is_err(),
        "the first client gave up"
    );
    let second = spawn_get(&server, &format!("/image/{id}.{SLOW}"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Had the second caller started a render of its own, it would be queued behind the
    // first one's job, which runs on in the one worker whoever waits for it.
    assert_eq!(server.metric("progimage_work_in_flight").await, 1.0);
    assert_eq!(
        server.metric("progimage_work_queue_depth").await,
        0.0,
        "the second caller queued a second render"
    );
    let status = timeout(BOUND, second).await.unwrap().unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    let renders = server
        .metric("progimage_renders_total{format=\"svg\"}")
        .await;
    assert_eq!(renders, 1.0, "the second caller joined the first render");
    assert!(server.state.renders.is_empty(), "no flight is left behind");
}

// 10. Disk-tier durability.

#[tokio::test]
async fn every_output_reads_back_whole_from_disk_and_torn_files_are_rendered_again() {
    let server = TestServer::local(|c| c.hot_cache_bytes = 0).await;
    let id = server.upload_corpus(JPEG).await;
    let exts = [
        "png", "jpg", "webp", "gif", "bmp", "tiff", "ico", "avif", "svg", "txt",
    ];
    let mut first = Vec::new();
    for ext in exts {
        first.push(server.bytes(&format!("/image/{id}.{ext}?w=40")).await);
    }
    let renders = server.metric("progimage_renders_total").await;
    for (ext, bytes) in exts.iter().zip(&first) {
        let again = server.bytes(&format!("/image/{id}.{ext}?w=40")).await;
        assert_eq!(&again, bytes, "{ext} from the disk tier");
    }
    assert_eq!(
        server.metric("progimage_renders_total").await,
        renders,
        "every whole file was a hit"
    );
    // A power loss after the rename but before the data: empty or zero-filled files.
    let files = files_under(&cache_dir(server.dir.path(), &id));
    for file in &files {
        let len = std::fs::metadata(file).unwrap().len() as usize;
        let torn = if file.extension().is_some_and(|e| e == "png") {
            Vec::new()
        } else {
            vec![0; len]
        };
        std::fs::write(file, torn).unwrap();
    }
    for (ext, bytes) in exts.iter().zip(&first) {
        let again = server.bytes(&format!("/image/{id}.{ext}?w=40")).await;
        assert_eq!(&again, bytes, "{ext} after its cache file was torn");
    }
}

/// A server on an existing data directory (the restart half of a test).
async fn serve_dir(dir: &Path, configure: impl FnOnce(&mut Config)) -> (String, Arc<AppState>) {
    let mut config = Config::with_data_dir(dir);
    configure(&mut config);
    let state = AppState::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(progimage::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (base, state)
}

#[tokio::test]
async fn a_restart_keeps_variants_used_within_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = |c: &mut Config| c.variant_ttl = Some(Duration::from_secs(4));
    let client = Client::new();
    let (base, state) = serve_dir(dir.path(), ttl).await;
    let (status, body) = {
        let resp = client
            .post(format!("{base}/image"))
            .body(corpus(JPEG))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let variant = format!("{base}/image/{id}.png?w=30");
    // Rendered at t=0, then used every half second (memory hits) for 4.5 s: always
    // within the TTL of its last use, though its render is older than the TTL.
    for _ in 0..10 {
        let resp = client.get(&variant).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(state);
    let (_base, _state) = serve_dir(dir.path(), ttl).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // one TTL sweep at least
    let left = files_under(&cache_dir(dir.path(), &id));
    assert!(
        left.iter()
            .any(|f| f.extension().is_some_and(|e| e == "png")),
        "a variant used a moment before the restart was expired by it"
    );
}

//! ASCII art and traced SVG over HTTP, and the old ASCII service's routes.

use std::io::Read;

use base64::Engine;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, corpus, TestServer};

/// A PNG whose left half is black and right half white.
fn half_black_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn assert_shape(text: &str, columns: usize, rows: usize) {
    assert!(text.ends_with('\n'), "every line ends with a newline");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), rows, "rows");
    for line in lines {
        assert_eq!(line.chars().count(), columns, "{line:?}");
    }
}

#[tokio::test]
async fn txt_follows_the_contract_shape_and_tone() {
    let server = TestServer::start().await;
    let (_, meta) = server.upload_bytes(half_black_png(200, 100)).await;
    let id = meta["id"].as_str().unwrap();
    let resp = server.get(&format!("/image/{id}.txt")).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text = resp.text().await.unwrap();
    // rows = max(1, floor(100 × 100 / 200 × 0.5)) = 25
    assert_shape(&text, 100, 25);
    let first = text.lines().next().unwrap();
    assert!(
        first[..45].chars().all(|c| c == '@'),
        "dark is dense: {first}"
    );
    assert!(
        first[55..].chars().all(|c| c == ' '),
        "light is sparse: {first}"
    );

    let inverted = server
        .get(&format!("/image/{id}.txt?w=10&invert=1"))
        .await
        .text()
        .await
        .unwrap();
    assert_shape(&inverted, 10, 2);
    assert!(inverted.starts_with("    "), "{inverted:?}");
    let custom = server
        .get(&format!("/image/{id}.txt?w=8&charset=%20%23"))
        .await
        .text()
        .await
        .unwrap();
    assert!(custom.lines().all(|l| l == "####    "), "{custom:?}");
}

#[tokio::test]
async fn ascii_of_a_photo_has_the_documented_size() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("photo-12mp-olympus-exif.jpg").await; // 4032x3024
    let text = server
        .get(&format!("/image/{id}.txt?w=120"))
        .await
        .text()
        .await
        .unwrap();
    assert_shape(&text, 120, 45); // floor(120 × 3024 / 4032 × 0.5) = 45
    let portrait = server.upload_corpus("photo-3mp-canon-exif6.jpg").await; // 1536x2048 upright
    let text = server
        .get(&format!("/image/{portrait}.txt?w=30"))
        .await
        .text()
        .await
        .unwrap();
    assert_shape(&text, 30, 20);
}

#[tokio::test]
async fn html_and_ansi_are_coloured_and_text_is_gzipped() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("face-astronaut.png").await;
    let resp = server
        .client
        .get(server.url(&format!("/image/{id}.html?w=40")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let mut html = String::new();
    flate2::read::GzDecoder::new(&resp.bytes().await.unwrap()[..])
        .read_to_string(&mut html)
        .unwrap();
    assert!(
        html.starts_with("<!doctype html>") || html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..40]
    );
    assert!(html.contains("<pre") && html.contains("<span style=\"color:#"));

    let ansi = server
        .get(&format!("/image/{id}.ansi?w=20"))
        .await
        .text()
        .await
        .unwrap();
    assert!(ansi.contains("\u{1b}[38;2;"));
    assert_eq!(ansi.lines().count(), 10);

    let refused = server.get(&format!("/image/{id}.txt?w=20&h=5")).await;
    assert_error(refused, StatusCode::BAD_REQUEST, "bad_transform").await;
    let refused = server.get(&format!("/image/{id}.png?charset=ab")).await;
    assert_error(refused, StatusCode::BAD_REQUEST, "bad_transform").await;
}

#[tokio::test]
async fn svg_is_a_traced_vector() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("logo-flag-3colour.png").await; // 900x600
    let resp = server.get(&format!("/image/{id}.svg")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    let svg = resp.text().await.unwrap();
    assert!(svg.contains("<path"), "paths, not pixels");
    assert!(
        svg.matches("<path").count() < 50,
        "a 3-colour flag needs few paths"
    );
    assert!(!svg.contains("<rect"));
    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    assert_eq!((size.width(), size.height()), (900, 600));
    let fewer = server
        .get(&format!("/image/{id}.svg?colors=2&detail=10"))
        .await;
    assert_eq!(fewer.status(), StatusCode::OK);
}

#[tokio::test]
async fn direct_and_stored_ascii_routes() {
    let server = TestServer::start().await;
    let png = half_black_png(100, 100);
    for query in ["width=20", "size=20"] {
        let resp = server.post(&format!("/ascii?{query}"), png.clone()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_shape(&resp.text().await.unwrap(), 20, 10);
    }
    let form = Form::new().part("file", Part::bytes(png.clone()).file_name("a.png"));
    let resp = server.post_form("/upload", form).await;
    let id = resp.json::<Value>().await.unwrap()["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = server
        .metric("progimage_renders_total{format=\"txt\"}")
        .await;
    let text = server
        .get(&format!("/image/{id}/ascii?size=30"))
        .await
        .text()
        .await
        .unwrap();
    assert_shape(&text, 30, 15);
    let again = server.get(&format!("/image/{id}/ascii?size=30")).await;
    assert_eq!(again.text().await.unwrap(), text);
    let after = server
        .metric("progimage_renders_total{format=\"txt\"}")
        .await;
    assert_eq!(after - before, 1.0, "the second request was a cache hit");
}

#[tokio::test]
async fn the_original_services_root_routes() {
    let server = TestServer::start().await;
    let png = half_black_png(80, 40);
    // Multipart `image` + `output=raw`, as its HTML form and scripts sent it.
    let form = Form::new()
        .text("output", "raw")
        .part("image", Part::bytes(png.clone()).file_name("x.png"));
    let resp = server.post_form("/", form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_shape(&resp.text().await.unwrap(), 100, 25);
    let form = Form::new()
        .text("width", "16")
        .part("image", Part::bytes(png.clone()));
    let resp = server.post_form("/", form).await;
    assert_shape(&resp.text().await.unwrap(), 16, 4);

    // JSON with base64 → {"art": …}
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let resp = server
        .post_json("/", &json!({"width": 8, "image": b64}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let art: Value = resp.json().await.unwrap();
    assert_shape(art["art"].as_str().unwrap(), 8, 2);

    // Its errors: {"error": …} with 400.
    for body in [
        json!({"width": 8, "image": "!!!not base64"}),
        json!({"width": 8}),
        json!({"width": 8, "image": ""}),
    ] {
        let resp = server.post_json("/", &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert!(
            err["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
    }
    let text_png = base64::engine::general_purpose::STANDARD.encode(corpus("bad-text-file.jpg"));
    let resp = server
        .post_json("/", &json!({"width": 8, "image": text_png}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Base64 wrapped at 76 characters (Python's `base64.encodebytes`, MIME) decodes.
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    assert!(wrapped.contains('\n'));
    let resp = server
        .post_json("/", &json!({"width": 8, "image": wrapped}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let art: Value = resp.json().await.unwrap();
    assert_shape(art["art"].as_str().unwrap(), 8, 2);
}

/// The legacy JSON form keeps the upload byte limit, answered in its own error shape.
#[tokio::test]
async fn the_legacy_json_form_keeps_the_byte_limit() {
    let png = half_black_png(80, 40);
    let server = TestServer::with(|c| c.max_upload_bytes = png.len() as u64 - 1).await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let resp = server
        .post_json("/", &json!({"width": 8, "image": b64}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().is_some_and(|m| m.contains("limit")),
        "{err}"
    );
    let server = TestServer::with(|c| c.max_upload_bytes = png.len() as u64).await;
    let resp = server
        .post_json("/", &json!({"width": 8, "image": b64}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "exactly at the limit");
}

//! Inputs and outputs beyond the raster basics: SVG in (rasterised safely), JPEG XL in,
//! AVIF out, lossless WebP from lossless sources.

use reqwest::StatusCode;

use crate::support::{corpus, decode_jpeg, decode_png, TestServer};

const LOGO_SVG: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 20 10">
  <rect width="10" height="10" fill="#00ff00"/>
  <circle cx="15" cy="5" r="4" fill="#0000ff"/>
</svg>"##;

#[tokio::test]
async fn svg_uploads_are_rasterised_at_their_size() {
    let server = TestServer::start().await;
    let (status, meta) = server.upload_bytes(LOGO_SVG.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{meta}");
    assert_eq!(meta["format"], "svg");
    assert_eq!(meta["content_type"], "image/svg+xml");
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(200), Some(100))
    );
    let id = meta["id"].as_str().unwrap();
    let png = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
    assert_eq!((png.width, png.height), (200, 100));
    assert_eq!(png.at(50, 50), [0, 255, 0, 255]);
    assert_eq!(png.at(150, 50), [0, 0, 255, 255]);
    assert_eq!(png.at(199, 0)[3], 0, "outside the shapes is transparent");
    let original = server.get(&format!("/image/{id}/original")).await;
    assert_eq!(original.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn hostile_svgs_are_contained() {
    let server = TestServer::start().await;
    // External references are never loaded: the image area stays transparent.
    let external = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="20">
        <rect width="20" height="20" fill="red"/>
        <image x="20" width="20" height="20" xlink:href="file:///etc/hostname"/>
        <image x="20" width="20" height="20" href="http://127.0.0.1:9/x.png"/>
        <script>while(true){}</script></svg>"#;
    let (status, meta) = server.upload_bytes(external.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{meta}");
    let png = decode_png(
        &server
            .bytes(&format!("/image/{}.png", meta["id"].as_str().unwrap()))
            .await,
    );
    assert_eq!(png.at(5, 5), [255, 0, 0, 255]);
    assert_eq!(png.at(30, 10)[3], 0);

    // A huge canvas is refused from its declared size, before rasterising.
    let huge = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>"#;
    let (status, body) = server.upload_bytes(huge.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "too_many_pixels");

    // Entity expansion ("billion laughs") is refused by the parser, not expanded.
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE svg [
        <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
        <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
        <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
        <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
        <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
        <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
        ]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&f;</text></svg>"#;
    let (status, body) = server.upload_bytes(laughs.as_bytes().to_vec()).await;
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CREATED,
        "{status} {body}"
    );

    // Not SVG after all: XML without an <svg> element.
    let (status, body) = server
        .upload_bytes(b"<?xml version='1.0'?><html/>".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = server.upload_bytes(b"<svg><rect></svg>".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "corrupt_image");
}

#[tokio::test]
async fn jxl_uploads_decode_like_their_sources_and_are_never_an_output() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for (file, source) in [
        ("jxl-lossless-alpha.jxl", "png-rgba-alpha.png"),
        ("jxl-lossy.jxl", "jpeg-progressive.jpg"),
    ] {
        let (status, meta) = server.upload_bytes(corpus(file)).await;
        assert_eq!(status, StatusCode::CREATED, "{file}: {meta}");
        assert_eq!(meta["format"], "jxl", "{file}");
        assert_eq!(meta["content_type"], "image/jxl", "{file}");
        let id = meta["id"].as_str().unwrap().to_string();
        let original = server.get(&format!("/image/{id}/original")).await;
        assert_eq!(original.headers()["content-type"], "image/jxl", "{file}");
        let out = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
        if file == "jxl-lossless-alpha.jxl" {
            // Lossless: every visible pixel exactly as an independent PNG decoder sees
            // the file cjxl was made from.
            let src = decode_png(&corpus(source));
            assert_eq!((out.width, out.height), (src.width, src.height));
            let changed = out
                .rgba
                .iter()
                .zip(&src.rgba)
                .filter(|(a, b)| b[3] > 0 && a != b)
                .count();
            assert_eq!(changed, 0, "{file}: visible pixels changed");
        } else {
            // Lossy at butteraugli distance 1 ("visually lossless"): against the source
            // JPEG this measures 1.2. This low-contrast photo makes mistakes cheap, so
            // the bar sits low: the same reference with red and blue swapped differs by
            // 9.4, turned grey by 7.6, shifted one pixel by 4.5. 3 is 2.5x the real
            // error (room for decoder rounding) and below all of those.
            let src = decode_jpeg(&corpus(source));
            let diff = out.mean_diff(&src);
            assert!(diff < 3.0, "{file}: mean difference {diff:.2}");
        }
        ids.push(id);
    }
    // Read only: asking for a transformed .jxl is a bad output format (the untransformed
    // URL serves the original, see below).
    let resp = server.get(&format!("/image/{}.jxl?w=10", ids[0])).await;
    crate::support::assert_error(resp, StatusCode::BAD_REQUEST, "bad_format").await;
}

#[tokio::test]
async fn avif_output_is_an_avif_file() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    let resp = server.get(&format!("/image/{id}.avif?w=64")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/avif");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[4..12], b"ftypavif", "an AVIF (ISO-BMFF) container");
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Avif
    );
    let small = server.bytes(&format!("/image/{id}.avif?w=64&q=20")).await;
    assert!(small.len() < bytes.len(), "q lowers bytes");
}

#[tokio::test]
async fn webp_is_lossless_for_lossless_sources_unless_q_is_given() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    let src = decode_png(&crate::support::corpus("png-rgba-alpha.png"));
    let webp = server.bytes(&format!("/image/{id}.webp")).await;
    assert_eq!(&webp[12..16], b"VP8L", "lossless bitstream");
    let back = image::load_from_memory(&webp).unwrap().to_rgba8();
    for (x, y) in [(0, 0), (64, 33), (128, 65)] {
        let p = back.get_pixel(x, y).0;
        if p[3] > 0 {
            assert_eq!(p, src.at(x, y), "({x},{y}) kept exactly");
        }
    }
    let lossy = server.bytes(&format!("/image/{id}.webp?q=50")).await;
    assert_ne!(&lossy[12..16], b"VP8L", "q asks for lossy");
    let photo = server.upload_corpus("jpeg-progressive.jpg").await;
    let webp = server.bytes(&format!("/image/{photo}.webp")).await;
    assert_ne!(&webp[12..16], b"VP8L", "a JPEG source gives lossy WebP");
}

#[tokio::test]
async fn formats_read_but_not_written_serve_their_original_at_the_metadata_url() {
    let server = TestServer::start().await;
    let bytes = crate::support::corpus("jxl-lossy.jxl");
    let (status, meta) = server.upload_bytes(bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{meta}");
    let url = meta["url"].as_str().unwrap();
    let resp = server.get(url).await;
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    assert_eq!(resp.headers()["content-type"], "image/jxl");
    assert_eq!(resp.bytes().await.unwrap(), bytes);
    let id = meta["id"].as_str().unwrap();
    let resp = server.get(&format!("/image/{id}.jxl?w=10")).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "JPEG XL cannot be written"
    );
}

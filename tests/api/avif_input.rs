//! AVIF input: a third-party file against the same picture in another format, and files
//! made by the project's own encoder (rav1e through `ravif`) at 8 and 10 bits, with and
//! without alpha, in odd sizes; damaged files are 4xx.

use reqwest::StatusCode;

use crate::support::{corpus, decode_png, TestServer};

async fn stored(server: &TestServer, bytes: Vec<u8>) -> serde_json::Value {
    let (status, body) = server.upload_bytes(bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Pillow's `hopper.avif` is the same picture as its `hopper.tif` (our TIFF corpus file).
#[tokio::test]
async fn a_third_party_avif_shows_the_same_picture_as_its_tiff() {
    let server = TestServer::start().await;
    let avif = stored(&server, corpus("avif-8bit-yuv420.avif")).await;
    assert_eq!(avif["format"], "avif");
    let tiff = stored(&server, corpus("tiff-8bit-rgb.tiff")).await;
    let from_avif = decode_png(
        &server
            .bytes(&format!(
                "/image/{}.png?w=128",
                avif["id"].as_str().unwrap()
            ))
            .await,
    );
    let from_tiff = decode_png(
        &server
            .bytes(&format!(
                "/image/{}.png?w=128",
                tiff["id"].as_str().unwrap()
            ))
            .await,
    );
    let diff = from_avif.mean_diff(&from_tiff);
    assert!(
        diff < 6.0,
        "mean difference {diff} between the AVIF and the TIFF"
    );
}

fn gradient(w: u32, h: u32) -> Vec<[u8; 4]> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                128,
                ((x + y) * 255 / (w + h)) as u8,
            ]
        })
        .collect()
}

fn encode(w: u32, h: u32, alpha: bool, depth: u8) -> Vec<u8> {
    let pixels = gradient(w, h);
    let encoder = ravif::Encoder::new()
        .with_quality(95.0)
        .with_alpha_quality(95.0)
        .with_speed(10)
        .with_bit_depth(match depth {
            8 => ravif::BitDepth::Eight,
            _ => ravif::BitDepth::Ten,
        });
    let (w, h) = (w as usize, h as usize);
    let encoded = if alpha {
        let rgba: Vec<ravif::RGBA8> = pixels
            .iter()
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(&rgba[..], w, h))
    } else {
        let rgb: Vec<ravif::RGB8> = pixels
            .iter()
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(&rgb[..], w, h))
    };
    encoded.unwrap().avif_file
}

#[tokio::test]
async fn avifs_at_8_and_10_bits_with_and_without_alpha_read_back() {
    let server = TestServer::start().await;
    let (w, h) = (37u32, 23u32);
    let source = gradient(w, h);
    for depth in [8u8, 10] {
        for alpha in [false, true] {
            let what = format!("{depth}-bit alpha={alpha}");
            let body = stored(&server, encode(w, h, alpha, depth)).await;
            assert_eq!(
                (body["width"].as_u64(), body["height"].as_u64()),
                (Some(37), Some(23)),
                "{what}"
            );
            assert_eq!(body["has_alpha"], alpha, "{what}");
            let out = decode_png(
                &server
                    .bytes(&format!("/image/{}.png?w=37", body["id"].as_str().unwrap()))
                    .await,
            );
            let channels = if alpha { 4 } else { 3 };
            let total: u64 = out
                .rgba
                .iter()
                .zip(&source)
                .map(|(got, want)| {
                    (0..channels)
                        .map(|c| u64::from(got[c].abs_diff(want[c])))
                        .sum::<u64>()
                })
                .sum();
            let mean = total as f64 / (source.len() * channels) as f64;
            assert!(mean < 4.0, "{what}: mean difference {mean}");
        }
    }
}

#[tokio::test]
async fn damaged_avifs_are_client_errors() {
    let server = TestServer::start().await;
    let good = encode(40, 30, true, 8);
    for cut in [40, good.len() / 2, good.len() - 10] {
        let resp = server.post("/image", good[..cut].to_vec()).await;
        assert!(
            resp.status().is_client_error(),
            "cut at {cut}: {}",
            resp.status()
        );
    }
    let mut flipped = good.clone();
    let len = flipped.len();
    for i in (len / 2..len).step_by(7) {
        flipped[i] ^= 0x55;
    }
    let resp = server.post("/image", flipped).await;
    assert!(
        resp.status().is_client_error() || resp.status() == StatusCode::CREATED,
        "{}",
        resp.status()
    );
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

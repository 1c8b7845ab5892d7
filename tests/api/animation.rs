//! Animated GIF/WebP keep every frame and its timing into gif/webp outputs; other outputs
//! take the first frame.

use image::AnimationDecoder;
use reqwest::StatusCode;

use crate::support::{corpus, decode_png, TestServer};

/// (frame count, per-frame delays in ms, canvas size) read with the `gif` crate directly.
fn gif_frames(bytes: &[u8]) -> (usize, Vec<u32>, (u32, u32)) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes).unwrap();
    let size = (u32::from(decoder.width()), u32::from(decoder.height()));
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        delays.push(u32::from(frame.delay) * 10);
    }
    (delays.len(), delays, size)
}

/// Frame delays of a WebP animation, read with image-webp (not libwebp, which encodes).
fn webp_frames(bytes: &[u8]) -> (Vec<u32>, (u32, u32)) {
    let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    let size = frames[0].buffer().dimensions();
    let delays = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .collect();
    (delays, size)
}

#[tokio::test]
async fn animated_webp_keeps_frames_and_timing_through_a_resize() {
    let server = TestServer::start().await;
    let source = corpus("webp-animated.webp");
    let (source_delays, _) = webp_frames(&source);
    assert!(source_delays.len() > 1);
    let id = server.upload_corpus("webp-animated.webp").await;

    let webp = server.bytes(&format!("/image/{id}.webp?w=100")).await;
    let (delays, size) = webp_frames(&webp);
    assert_eq!(delays, source_delays, "every frame, same timing");
    assert_eq!(size, (100, 100));

    let gif = server.bytes(&format!("/image/{id}.gif?w=50&flip=h")).await;
    let (count, gif_delays, size) = gif_frames(&gif);
    assert_eq!(count, source_delays.len());
    assert_eq!(size, (50, 50));
    for (got, want) in gif_delays.iter().zip(&source_delays) {
        assert!(
            got.abs_diff((*want).max(20)) <= 10,
            "GIF stores centiseconds: {got} vs {want}"
        );
    }

    let png = decode_png(&server.bytes(&format!("/image/{id}.png?w=100")).await);
    assert_eq!(
        (png.width, png.height),
        (100, 100),
        "still outputs take the first frame"
    );
}

#[tokio::test]
async fn animated_gif_keeps_its_frames() {
    let server = TestServer::start().await;
    let (source_count, source_delays, _) = gif_frames(&corpus("gif-animated.gif"));
    let id = server.upload_corpus("gif-animated.gif").await;
    let out = server.bytes(&format!("/image/{id}.gif?w=200&rot=90")).await;
    let (count, delays, size) = gif_frames(&out);
    assert_eq!(count, source_count);
    assert_eq!(size, (200, 200));
    for (got, want) in delays.iter().zip(&source_delays) {
        assert!(got.abs_diff((*want).max(20)) <= 10, "{got} vs {want}");
    }
    let webp = server.bytes(&format!("/image/{id}.webp?w=64")).await;
    assert_eq!(webp_frames(&webp).0.len(), source_count);
}

#[tokio::test]
async fn animations_over_the_pixel_budget_are_refused() {
    // 6 frames of 200x200 = 240,000 pixels in all: over a 100,000 budget.
    let server = TestServer::with(|c| c.max_pixels = 100_000).await;
    let id = server.upload_corpus("webp-animated.webp").await; // one 40,000-pixel canvas passes
    let resp = server.get(&format!("/image/{id}.webp?w=50")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_pixels");
    assert_eq!(
        server.get(&format!("/image/{id}.png?w=50")).await.status(),
        StatusCode::OK
    );
}

/// A GIF whose third frame's data is cut off before the trailer: browsers show the two
/// frames that decode, and so does progimage (it stored the file, so it must render it).
#[tokio::test]
async fn a_gif_damaged_after_its_first_frames_animates_what_decodes() {
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut bytes, 8, 6, &[0, 0, 0, 255, 255, 255]).unwrap();
        for (i, colour) in [0u8, 1, 0].into_iter().enumerate() {
            let mut frame = gif::Frame::from_indexed_pixels(8, 6, vec![colour; 48], None);
            frame.delay = 10 * (i as u16 + 1);
            encoder.write_frame(&frame).unwrap();
        }
    }
    // Cut inside the third frame's image data (the two earlier frames are whole).
    let (whole, _, _) = gif_frames(&bytes);
    assert_eq!(whole, 3);
    let third = bytes.len() - 1 - 10; // trailer, then the last frame's data
    let mut damaged = bytes[..third].to_vec();
    damaged.extend_from_slice(&[0x99, 0x3b]); // an unknown block, then the trailer
    let server = TestServer::start().await;
    let (status, body) = server.upload_bytes(damaged).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let resp = server.get(&format!("/image/{id}.gif?flip=h")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let out = resp.bytes().await.unwrap();
    let (count, delays, size) = gif_frames(&out);
    assert_eq!(size, (8, 6));
    assert_eq!(count, 2, "the frames before the damage");
    assert_eq!(delays, [100, 200]);
    assert_eq!(
        server.get(&format!("/image/{id}.webp")).await.status(),
        StatusCode::OK
    );
}

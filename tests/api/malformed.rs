//! Malformed input (issue 7, items 2 and 3): truncations and bit-flips of valid corpus
//! files, generated here from a fixed seed, are answered with the contract's 4xx codes
//! and never a 5xx; decompression bombs are refused, and the server's peak memory while
//! they arrive is measured.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::time::timeout;

use crate::crash::{ServerProcess, XorShift};
use crate::support::{corpus, TestServer};

/// Valid files of every input format, small enough to upload hundreds of variations.
const SOURCES: &[&str] = &[
    "png-interlaced-adam7.png",
    "logo-flag-3colour.png",
    "apng-animated.png",
    "png-palette-trns.png",
    "png-16bit-rgba.png",
    "png-rgba-alpha.png",
    "gif-animated.gif",
    "gif-static.gif",
    "ico-32bpp-alpha.ico",
    "webp-lossy.webp",
    "webp-lossless.webp",
    "webp-lossy-alpha.webp",
    "webp-animated.webp",
    "jpeg-grayscale.jpg",
    "jpeg-progressive.jpg",
    "jpeg-cmyk.jpg",
    "jpeg-icc-profile.jpg",
    "jxl-lossless-alpha.jxl",
    "jxl-lossy.jxl",
    "bmp-24bit.bmp",
    "tiff-8bit-rgb.tiff",
    "avif-8bit-yuv420.avif",
    "jpeg-arithmetic-progressive.jpg",
];

const INPUTS: usize = 300;

const SVG: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect x="4" y="4" width="40" height="30" fill="#c33"/><circle cx="40" cy="30" r="12" fill="#36c"/></svg>"##;

/// One corrupted copy of `bytes`: a truncation, scattered bit-flips, flips in the
/// header, or a run of the file overwritten with garbage.
fn mutate(bytes: &[u8], rng: &mut XorShift) -> (String, Vec<u8>) {
    let mut out = bytes.to_vec();
    let len = out.len() as u64;
    match rng.below(4) {
        0 => {
            let cut = rng.below(len) as usize;
            out.truncate(cut);
            (format!("truncated at {cut}"), out)
        }
        1 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = rng.below(len) as usize;
                out[at] ^= 1 << rng.below(8);
            }
            (format!("{flips} bit-flips"), out)
        }
        2 => {
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let at = rng.below(len.min(64)) as usize;
                out[at] ^= 1 << rng.below(8);
            }
            (format!("{flips} header bit-flips"), out)
        }
        _ => {
            let start = rng.below(len) as usize;
            let run = (1 + rng.below(256) as usize).min(out.len() - start);
            for b in &mut out[start..start + run] {
                *b = rng.next() as u8;
            }
            (format!("{run} garbage bytes at {start}"), out)
        }
    }
}

/// The codes the contract allows for a rejected upload, by status.
fn allowed_rejection(status: StatusCode, code: &str) -> bool {
    matches!(
        (status.as_u16(), code),
        (400, "empty_upload")
            | (415, "unsupported_format")
            | (422, "corrupt_image")
            | (422, "too_many_pixels")
    )
}

#[tokio::test]
async fn truncations_and_bit_flips_get_contract_4xx_never_5xx() {
    let seed = std::env::var("PROGIMAGE_MALFORMED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0007_u64);
    let server = TestServer::start().await;
    let mut rng = XorShift::new(seed);
    let mut sources: Vec<(String, Vec<u8>)> = SOURCES
        .iter()
        .map(|name| (name.to_string(), corpus(name)))
        .collect();
    sources.push(("generated.svg".into(), SVG.to_vec()));
    sources.push((
        "generated-animated.avif".into(),
        crate::avif_animation::sequence(Some(crate::avif_animation::Range::Limited)),
    ));
    let inputs: Vec<(String, Vec<u8>)> = (0..INPUTS)
        .map(|i| {
            let (name, bytes) = &sources[i % sources.len()];
            let (how, mutated) = mutate(bytes, &mut rng);
            (format!("{name}, {how}"), mutated)
        })
        .collect();
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = server.base.clone();
    let outcomes = timeout(Duration::from_secs(300), async {
        stream::iter(inputs)
            .map(|(what, bytes)| {
                let (client, base) = (client.clone(), base.clone());
                async move {
                    let resp = client
                        .post(format!("{base}/image"))
                        .header("content-type", "application/octet-stream")
                        .body(bytes)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{what}: no answer (hang or crash?): {e}"));
                    let status = resp.status();
                    let body: Value = resp.json().await.expect("JSON answer");
                    if status.is_success() {
                        // Accepted: a render of it must not fail on the server either.
                        let id = body["id"].as_str().unwrap();
                        // Animations render through their frames.
                        let ext = if what.contains("animated") {
                            "gif"
                        } else {
                            "png"
                        };
                        let resp = client
                            .get(format!("{base}/image/{id}/w_48.{ext}"))
                            .send()
                            .await
                            .unwrap_or_else(|e| panic!("{what}: render: no answer: {e}"));
                        let render = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        assert!(
                            !render.is_server_error(),
                            "{what}: render answered {render}: {text}"
                        );
                        (status.as_u16(), "accepted".to_owned(), render.as_u16())
                    } else {
                        let code = body["code"].as_str().unwrap_or("").to_owned();
                        assert!(
                            allowed_rejection(status, &code),
                            "{what}: {status} {body} is not a contract rejection"
                        );
                        (status.as_u16(), code, 0)
                    }
                }
            })
            .buffer_unordered(2)
            .collect::<Vec<_>>()
            .await
    })
    .await
    .expect("malformed inputs did not finish within the bound");

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for (status, code, render) in &outcomes {
        let key = if *render > 0 {
            format!("{status} {code}, render {render}")
        } else {
            format!("{status} {code}")
        };
        *tally.entry(key).or_default() += 1;
    }
    println!(
        "malformed: {} inputs (seed {seed}): {tally:?}",
        outcomes.len()
    );
    assert_eq!(outcomes.len(), INPUTS);
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

/// Peak resident memory of a process (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A GIF declaring a 65535×65535 canvas around a 1×1 frame.
fn gif_canvas_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, 65535, 65535, &[0, 0, 0, 255, 255, 255])
            .expect("gif header");
        let mut frame = gif::Frame::from_indexed_pixels(1, 1, vec![0], None);
        frame.left = 0;
        encoder.write_frame(&frame).expect("gif frame");
    }
    out
}

/// A PNG at exactly the pixel limit (8000×8000 gray, all zero): 64 MB of pixels in a
/// file of a few dozen KB. Within limits, so it is accepted; the point is the memory.
fn png_zlib_bomb() -> Vec<u8> {
    let (w, h) = (8000u32, 8000u32);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&vec![0u8; (w * h) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

#[tokio::test]
async fn decompression_bombs_are_refused_and_memory_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[("PROGIMAGE_WORKERS", "2")]);
    let client = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let base = server.base.clone();
    let upload = |bytes: Vec<u8>| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let resp = client
                .post(format!("{base}/image"))
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .expect("an answer");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("JSON"))
        }
    };
    let svg_bomb = br#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="100%" height="100%"/></svg>"#.to_vec();
    let bombs = [
        ("bomb-20000x14000.png", corpus("bomb-20000x14000.png")),
        ("svg 100000x100000", svg_bomb),
        ("gif canvas 65535x65535", gif_canvas_bomb()),
    ];
    timeout(Duration::from_secs(300), async {
        let (status, body) = upload(corpus("png-rgba-alpha.png")).await;
        assert!(status.is_success(), "{body}");
        let baseline = peak_rss_kib(server.pid());
        for (name, bytes) in bombs {
            let size = bytes.len();
            let (status, body) = upload(bytes).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
            assert_eq!(body["code"], "too_many_pixels", "{name}: {body}");
            println!("bomb {name} ({size} bytes): 422 too_many_pixels");
        }
        let after_bombs = peak_rss_kib(server.pid());
        let zlib = png_zlib_bomb();
        let zlib_size = zlib.len();
        let (status, body) = upload(zlib).await;
        assert!(status.is_success(), "64 MP zlib bomb: {status} {body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let thumb = client
            .get(format!("{base}/image/{id}/w_64.png"))
            .send()
            .await
            .unwrap();
        assert_eq!(thumb.status(), StatusCode::OK);
        let after_zlib = peak_rss_kib(server.pid());
        println!(
            "bomb memory (VmHWM of the server): {} MiB after start-up and one upload, \
             {} MiB after the refused bombs, {} MiB after accepting and rendering a \
             {zlib_size}-byte PNG of 8000x8000 (64 MP, at the pixel limit)",
            baseline / 1024,
            after_bombs / 1024,
            after_zlib / 1024
        );
        // Generous: refused bombs must not allocate their declared size (280 MP × 4 B
        // would be over 1 GiB).
        assert!(
            after_bombs < 512 * 1024,
            "{after_bombs} KiB peak for refused bombs"
        );
        assert_eq!(server.stop(), Some(0));
    })
    .await
    .expect("the bomb test did not finish within the bound");
}

//! Every file of `test-images/` uploaded with the outcome SOURCES.md expects; every
//! accepted one rendered to PNG and WebP and decoded back; conversions checked against
//! independent decoders.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::{corpus, corpus_dir, decode_jpeg, decode_png, TestServer};

enum Expect {
    /// Accepted, with its displayed (EXIF-oriented) size.
    Stored(u32, u32),
    Refused(StatusCode, &'static str),
}
use Expect::*;

const UNSUPPORTED: Expect = Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format");
const CORRUPT: Expect = Refused(StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image");

fn expectations() -> Vec<(&'static str, Expect)> {
    vec![
        ("photo-12mp-olympus-exif.jpg", Stored(4032, 3024)),
        ("photo-8mp-jolla-exif.jpg", Stored(3264, 2448)),
        ("photo-3mp-canon-exif6.jpg", Stored(1536, 2048)),
        ("exif-orientation-1.jpg", Stored(1200, 1800)),
        ("exif-orientation-2.jpg", Stored(1200, 1800)),
        ("exif-orientation-3.jpg", Stored(1200, 1800)),
        ("exif-orientation-4.jpg", Stored(1200, 1800)),
        ("exif-orientation-5.jpg", Stored(1200, 1800)),
        ("exif-orientation-6.jpg", Stored(1200, 1800)),
        ("exif-orientation-7.jpg", Stored(1200, 1800)),
        ("exif-orientation-8.jpg", Stored(1200, 1800)),
        ("jpeg-progressive.jpg", Stored(320, 240)),
        ("jpeg-arithmetic.jpg", Stored(320, 240)),
        ("jpeg-arithmetic-progressive.jpg", Stored(320, 240)),
        ("jpeg-cmyk.jpg", Stored(100, 100)),
        ("jpeg-grayscale.jpg", Stored(128, 128)),
        ("jpeg-icc-profile.jpg", Stored(100, 100)),
        ("png-rgba-alpha.png", Stored(129, 66)),
        ("png-16bit-rgba.png", Stored(32, 32)),
        ("png-palette-8bit.png", Stored(32, 32)),
        ("png-palette-trns.png", Stored(32, 32)),
        ("png-interlaced-adam7.png", Stored(32, 32)),
        ("png-grayscale.png", Stored(512, 512)),
        ("face-astronaut.png", Stored(512, 512)),
        ("logo-scikit-image-rgba.png", Stored(500, 500)),
        ("logo-flag-3colour.png", Stored(900, 600)),
        ("gif-static.gif", Stored(128, 128)),
        ("gif-animated.gif", Stored(1000, 1000)),
        ("apng-animated.png", Stored(128, 64)),
        ("webp-lossy.webp", Stored(128, 128)),
        ("webp-lossless.webp", Stored(1000, 307)),
        ("webp-lossy-alpha.webp", Stored(1000, 307)),
        ("webp-animated.webp", Stored(200, 200)),
        ("bmp-24bit.bmp", Stored(128, 128)),
        ("tiff-8bit-rgb.tiff", Stored(128, 128)),
        ("tiff-16bit-rgb.tiff", Stored(157, 151)),
        ("ico-32bpp-alpha.ico", Stored(32, 32)),
        ("jxl-lossless-alpha.jxl", Stored(129, 66)),
        ("jxl-lossy.jxl", Stored(320, 240)),
        ("avif-8bit-yuv420.avif", Stored(128, 128)),
        // It lacks only the last byte of its end-of-image marker (it ends `FF`): its
        // data is complete (libjpeg warns of nothing but the missing marker), so by the
        // contract it is stored. A JPEG cut before its last row is refused: `upload`.
        ("bad-truncated.jpg", Stored(100, 100)),
        ("bad-crc.png", CORRUPT),
        (
            "bad-empty.jpg",
            Refused(StatusCode::BAD_REQUEST, "empty_upload"),
        ),
        ("bad-text-file.jpg", UNSUPPORTED),
        ("bad-pdf-file.png", UNSUPPORTED),
        (
            "bomb-20000x14000.png",
            Refused(StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels"),
        ),
    ]
}

#[test]
fn every_corpus_file_has_an_expectation_and_is_listed_in_sources() {
    let expected: BTreeSet<&str> = expectations().iter().map(|(f, _)| *f).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n != "SOURCES.md")
        .collect();
    let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
    assert_eq!(expected, on_disk, "test table and test-images/ differ");
    let sources = std::fs::read_to_string(corpus_dir().join("SOURCES.md")).unwrap();
    for file in &expected {
        assert!(
            sources.contains(&format!("| `{file}` |")),
            "{file} missing from SOURCES.md"
        );
    }
}

#[tokio::test]
async fn every_corpus_file_gets_its_expected_outcome_and_renders_back() {
    let server = TestServer::start().await;
    for (file, expect) in expectations() {
        let (status, body) = server.upload_bytes(corpus(file)).await;
        match expect {
            Refused(want_status, code) => {
                assert_eq!(status, want_status, "{file}: {body}");
                assert_eq!(body["code"], code, "{file}");
            }
            Stored(width, height) => {
                assert_eq!(status, StatusCode::CREATED, "{file}: {body}");
                assert_eq!(
                    (body["width"].as_u64(), body["height"].as_u64()),
                    (Some(u64::from(width)), Some(u64::from(height))),
                    "{file}"
                );
                let id = body["id"].as_str().unwrap();
                let png = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
                assert_eq!((png.width, png.height), (width, height), "{file} as png");
                let webp = server.bytes(&format!("/image/{id}.webp")).await;
                let webp = image::load_from_memory_with_format(&webp, image::ImageFormat::WebP)
                    .unwrap_or_else(|e| panic!("{file} as webp: {e}"));
                assert_eq!(
                    (webp.width(), webp.height()),
                    (width, height),
                    "{file} as webp"
                );
            }
        }
    }
}

#[tokio::test]
async fn exif_orientations_all_come_out_upright() {
    let server = TestServer::start().await;
    let upright_id = server.upload_corpus("exif-orientation-1.jpg").await;
    let upright = decode_png(&server.bytes(&format!("/image/{upright_id}.png")).await);
    // Sanity: the reference itself matches an independent decode of the source file.
    let independent = decode_jpeg(&corpus("exif-orientation-1.jpg"));
    assert!(upright.mean_diff(&independent) < 2.0);
    for n in 2..=8 {
        let id = server
            .upload_corpus(&format!("exif-orientation-{n}.jpg"))
            .await;
        let out = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
        assert_eq!((out.width, out.height), (1200, 1800), "orientation {n}");
        // Each file holds the same photo stored rotated/mirrored; once oriented it must
        // match the upright one up to JPEG noise (a wrong turn differs by ~50+).
        let diff = out.mean_diff(&upright);
        assert!(diff < 8.0, "orientation {n}: mean difference {diff:.1}");
    }
}

#[tokio::test]
async fn cmyk_jpeg_converts_to_the_right_colours() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("jpeg-cmyk.jpg").await;
    let out = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
    // Reference from Pillow 12 (`Image.open(f).convert("RGB")`): mean RGB of the
    // whole picture and the pixel at (50, 50).
    let reference = [30.2, 5.4, 7.4];
    for (got, want) in out.mean_rgb().iter().zip(reference) {
        assert!(
            (got - want).abs() < 1.5,
            "mean {:?} vs Pillow {reference:?}",
            out.mean_rgb()
        );
    }
    let p = out.at(50, 50);
    assert!(
        p[0].abs_diff(1) <= 2 && p[1].abs_diff(4) <= 2 && p[2].abs_diff(5) <= 2,
        "{p:?}"
    );
}

#[tokio::test]
async fn lossless_inputs_convert_exactly_to_png() {
    let server = TestServer::start().await;
    // Palette, palette+tRNS, Adam7 interlacing and alpha: PNG → PNG must keep every pixel
    // (and transparency) as an independent decoder sees the source, in sRGB.
    for file in [
        "png-palette-8bit.png",
        "png-palette-trns.png",
        "png-interlaced-adam7.png",
        "png-rgba-alpha.png",
        "png-16bit-rgba.png",
    ] {
        let id = server.upload_corpus(file).await;
        let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=5000")).await);
        let mut src = decode_png(&corpus(file));
        if png_gamma(&corpus(file)) == Some(100_000) {
            // gAMA 1.0: the samples are linear light, shown in sRGB through the sRGB curve
            // (IEC 61966-2-1's formula here, not a colour engine), from all their bits.
            let linear = full_precision_samples(&corpus(file));
            for (p, l) in src.rgba.iter_mut().zip(linear) {
                for (c, l) in p[..3].iter_mut().zip(l) {
                    let v = if l <= 0.003_130_8 {
                        12.92 * l
                    } else {
                        1.055 * l.powf(1.0 / 2.4) - 0.055
                    };
                    *c = (v * 255.0).round() as u8;
                }
            }
        }
        assert_eq!((out.width, out.height), (src.width, src.height), "{file}");
        let mismatches = out.rgba.iter().zip(&src.rgba).filter(|(a, b)| {
            // Fully transparent pixels may carry any colour.
            !(a[3] == 0 && b[3] == 0) && a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 1)
        });
        assert_eq!(mismatches.count(), 0, "{file}: pixels changed");
    }
}

#[tokio::test]
async fn alpha_is_flattened_onto_the_background_for_jpeg() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-palette-trns.png").await;
    let src = decode_png(&corpus("png-palette-trns.png"));
    let (x, y) = (0..src.height)
        .flat_map(|y| (0..src.width).map(move |x| (x, y)))
        .find(|&(x, y)| src.at(x, y)[3] == 0)
        .expect("the file has transparent pixels");
    let white = decode_jpeg(&server.bytes(&format!("/image/{id}.jpg")).await);
    let red = decode_jpeg(&server.bytes(&format!("/image/{id}.jpg?bg=ff0000")).await);
    let near = |p: [u8; 4], want: [u8; 3]| (0..3).all(|i| p[i].abs_diff(want[i]) < 40);
    assert!(
        near(white.at(x, y), [255, 255, 255]),
        "{:?}",
        white.at(x, y)
    );
    assert!(near(red.at(x, y), [255, 0, 0]), "{:?}", red.at(x, y));
}

/// A PNG's `gAMA` value (100000 × the encoding exponent), read from its chunks.
fn png_gamma(bytes: &[u8]) -> Option<u32> {
    let mut pos = 8;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if &bytes[pos + 4..pos + 8] == b"gAMA" {
            return Some(u32::from_be_bytes(
                bytes[pos + 8..pos + 12].try_into().unwrap(),
            ));
        }
        pos += 12 + len;
    }
    None
}

/// Every pixel's RGB as fractions of full scale, at the file's own bit depth (palettes
/// expanded), so 16-bit samples are not first cut to 8 bits.
fn full_precision_samples(bytes: &[u8]) -> Vec<[f64; 3]> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (channels, wide) = (
        info.color_type.samples(),
        info.bit_depth == png::BitDepth::Sixteen,
    );
    let samples: Vec<f64> = if wide {
        buf[..info.buffer_size()]
            .chunks(2)
            .map(|c| f64::from(u16::from_be_bytes([c[0], c[1]])) / 65535.0)
            .collect()
    } else {
        buf[..info.buffer_size()]
            .iter()
            .map(|&v| f64::from(v) / 255.0)
            .collect()
    };
    samples
        .chunks(channels)
        .map(|p| {
            if channels < 3 {
                [p[0]; 3]
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .collect()
}

//! Criterion benches of the pure imaging core on real camera files.
//! Run: `cargo bench --bench imaging` (HTML reports land in target/criterion).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use progimage::imaging::{
    self, AsciiMode, AsciiOptions, DecodeLimits, Format, Output, Spec, TraceOptions,
};

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test-images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PHOTO_12MP: &str = "photo-12mp-olympus-exif.jpg";
const PHOTO_3MP: &str = "photo-3mp-canon-exif6.jpg";

fn thumbnails(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let w300 = Spec::parse_path("w_300").unwrap();
    let mut group = c.benchmark_group("thumbnail");
    group.sample_size(10);
    for (label, file) in [("12mp", PHOTO_12MP), ("3mp", PHOTO_3MP)] {
        let bytes = corpus(file);
        group.bench_function(format!("{label}_decode_full"), |b| {
            b.iter(|| imaging::decode(black_box(&bytes), &limits).unwrap())
        });
        for format in [Format::Jpeg, Format::Webp] {
            group.bench_function(format!("{label}_to_300px_{}", format.ext()), |b| {
                b.iter(|| {
                    imaging::render(black_box(&bytes), &limits, &w300, Output::Raster(format))
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// The JPEG decoder choice: libjpeg-turbo (what `imaging::decode` uses; with nasm's SIMD
/// when nasm was installed before the build) against zune-jpeg (behind `image`), each a
/// full decode to RGB of the same file.
fn jpeg_decoders(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let mut group = c.benchmark_group("jpeg_decoder_12mp");
    group.sample_size(10);
    let bytes = corpus(PHOTO_12MP);
    group.bench_function("libjpeg_turbo", |b| {
        b.iter(|| imaging::decode(black_box(&bytes), &limits).unwrap())
    });
    group.bench_function("zune_jpeg", |b| {
        b.iter(|| image::load_from_memory(black_box(&bytes)).unwrap())
    });
    group.finish();
}

fn encoders(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let decoded = imaging::decode(&corpus(PHOTO_3MP), &limits).unwrap().image;
    let spec = Spec::default();
    let mut group = c.benchmark_group("encode_3mp");
    group.sample_size(10);
    for format in [Format::Jpeg, Format::Webp, Format::Png] {
        group.bench_function(format.ext(), |b| {
            b.iter(|| imaging::encode(black_box(&decoded), format, &spec, false).unwrap())
        });
    }
    group.finish();
}

fn ascii_and_trace(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let photo = corpus(PHOTO_12MP);
    let mut group = c.benchmark_group("ascii");
    group.sample_size(10);
    // What `GET /image/{id}.txt?w=100` costs: a shrink-on-load decode plus the render.
    let w100 = Spec::parse_path("w_100").unwrap();
    let opts100 = AsciiOptions::new(Some(100), None, false, 0, 0).unwrap();
    group.bench_function("12mp_100cols_decode_and_render", |b| {
        b.iter(|| {
            let decoded = imaging::decode_for(black_box(&photo), &limits, &w100).unwrap();
            imaging::render_ascii(&decoded.image, decoded.full_size, &opts100, AsciiMode::Text)
                .unwrap()
        })
    });
    // The render alone, at the widest allowed output, from a full-resolution decode.
    let full = imaging::decode(&photo, &limits).unwrap();
    let opts1000 = AsciiOptions::new(Some(1000), None, false, 0, 0).unwrap();
    for (label, mode) in [("text", AsciiMode::Text), ("html", AsciiMode::Html)] {
        group.bench_function(format!("12mp_1000cols_render_{label}"), |b| {
            b.iter(|| {
                imaging::render_ascii(black_box(&full.image), full.full_size, &opts1000, mode)
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("trace");
    group.sample_size(10);
    let logo = imaging::decode(&corpus("logo-scikit-image-rgba.png"), &limits)
        .unwrap()
        .image;
    let defaults = TraceOptions::default();
    group.bench_function("logo_500px_svg", |b| {
        b.iter(|| imaging::trace_svg(black_box(&logo), &defaults).unwrap())
    });
    group.finish();
}

/// Each transform on a decoded 12 MP photo (decoded once, outside the timing; the clone of
/// the 36 MB buffer each iteration needs is in the numbers, ~5 ms).
fn operations(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let decoded = imaging::decode(&corpus(PHOTO_12MP), &limits).unwrap();
    let mut group = c.benchmark_group("op_12mp");
    group.sample_size(10);
    for spec in [
        "",
        "crop_1000:1000:2000:1500",
        "w_1200",
        "w_300,h_300,fit_cover",
        "w_300,h_300,fit_cover,gravity_smart",
        "rot_90",
        "flip_h",
        "blur_5",
        "sharpen_2",
        "gray_1",
        "bri_20",
        "con_20",
        "mask_circle",
    ] {
        let parsed = Spec::parse_path(spec).unwrap();
        let name = if spec.is_empty() { "clone_only" } else { spec };
        group.bench_function(name, |b| {
            b.iter(|| {
                let input = imaging::Decoded {
                    format: decoded.format,
                    image: decoded.image.clone(),
                    lossless: decoded.lossless,
                    full_size: decoded.full_size,
                    profile: decoded.profile.clone(),
                };
                imaging::apply(input, black_box(&parsed)).unwrap()
            })
        });
    }
    group.finish();
}

/// The same 12 MP photo with and without an Adobe RGB (1998) profile: the difference is
/// what colour management costs a render (the conversion runs once, on whichever side of
/// the resize has fewer pixels).
fn colour(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let plain = corpus(PHOTO_12MP);
    let icc = moxcms::ColorProfile::new_adobe_rgb().encode().unwrap();
    let mut segment = vec![0xFF, 0xE2];
    segment.extend_from_slice(&((icc.len() + 16) as u16).to_be_bytes());
    segment.extend_from_slice(b"ICC_PROFILE\0\x01\x01");
    segment.extend_from_slice(&icc);
    let mut tagged = plain[..2].to_vec();
    tagged.extend(segment);
    tagged.extend_from_slice(&plain[2..]);
    let mut group = c.benchmark_group("colour_12mp");
    group.sample_size(10);
    for spec in ["w_1200", "w_300"] {
        let parsed = Spec::parse_path(spec).unwrap();
        for (label, bytes) in [("srgb", &plain), ("adobe_rgb", &tagged)] {
            group.bench_function(format!("{spec}_jpg_{label}"), |b| {
                b.iter(|| {
                    imaging::render(
                        black_box(bytes),
                        &limits,
                        &parsed,
                        Output::Raster(Format::Jpeg),
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// AVIF decoding (rav1d without assembly, one thread): the 3 MP photo encoded once by the
/// project's own AVIF encoder, then decoded whole and rendered to 300 px.
fn avif_input(c: &mut Criterion) {
    let limits = DecodeLimits::for_pixels(64_000_000);
    let photo = imaging::decode(&corpus(PHOTO_3MP), &limits).unwrap().image;
    let avif = imaging::encode(&photo, Format::Avif, &Spec::default(), false).unwrap();
    let w300 = Spec::parse_path("w_300").unwrap();
    let mut group = c.benchmark_group("avif_3mp");
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| imaging::decode(black_box(&avif), &limits).unwrap())
    });
    group.bench_function("to_300px_jpg", |b| {
        b.iter(|| {
            imaging::render(
                black_box(&avif),
                &limits,
                &w300,
                Output::Raster(Format::Jpeg),
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    thumbnails,
    jpeg_decoders,
    encoders,
    ascii_and_trace,
    operations,
    colour,
    avif_input
);
criterion_main!(benches);

//! Criterion benches of the pure imaging core on real camera files.
//! Run: `cargo bench --bench imaging` (HTML reports land in target/criterion).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use progimage::imaging::{self, DecodeLimits, Format, Spec};

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
                b.iter(|| imaging::render(black_box(&bytes), &limits, &w300, format).unwrap())
            });
        }
    }
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
            b.iter(|| imaging::encode(black_box(&decoded), format, &spec).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, thumbnails, encoders);
criterion_main!(benches);

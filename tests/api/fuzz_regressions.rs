//! Replays every input under `fuzz/regressions/<target>/` (inputs that once crashed a
//! fuzz target) and the tracked seeds under `fuzz/corpus/<target>/` through the code
//! each target calls, with the same input layout, so a fixed crash stays fixed without
//! a fuzzing toolchain. A panic here fails the test.

use std::path::PathBuf;

use bytes::Bytes;
use progimage::http::body::read_multipart_chunks;
use progimage::imaging::{
    decode, decode_for, probe, render, render_ascii, AsciiMode, AsciiOptions, DecodeLimits, Output,
    Spec,
};

/// Every file of `fuzz/regressions/<target>` and `fuzz/corpus/<target>` (README aside).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for dir in [
        fuzz.join("regressions").join(target),
        fuzz.join("corpus").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && !path.ends_with("README.md") {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let all = inputs(target);
    for (path, data) in &all {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(data)));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
    }
    all.len()
}

/// As `fuzz_targets/decode.rs`.
fn decode_target(data: &[u8]) {
    let limits = DecodeLimits::for_pixels(4_000_000);
    let probed = probe(data, &limits);
    let decoded = decode_for(data, &limits, &Spec::default());
    if let (Ok(p), Ok(d)) = (&probed, &decoded) {
        assert_eq!((p.width, p.height), d.full_size);
        assert_eq!(p.format, d.format);
    }
}

/// As `fuzz_targets/spec.rs`, without the charset special case's detail: whatever
/// parses has a canonical form that parses back to it.
fn spec_target(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let check = |spec: Spec| {
        if spec.charset.is_some() {
            return;
        }
        let canonical = spec.canonical();
        let reparsed = Spec::parse_path(&canonical).expect("canonical form parses");
        assert_eq!(reparsed, spec);
        assert_eq!(reparsed.canonical(), canonical);
    };
    if let Ok(spec) = Spec::parse_path(input) {
        check(spec);
    }
    let pairs = input
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")));
    if let Ok(spec) = Spec::parse_pairs(pairs) {
        check(spec);
    }
}

/// As `fuzz_targets/render.rs`.
fn render_target(data: &[u8]) {
    const OUTPUTS: [&str; 5] = ["png", "webp", "gif", "txt", "svg"];
    const SPECS: [&str; 4] = ["", "w_64", "w_32,h_32,fit_cover", "w_40,rot_90,gray_1"];
    let Some((&selector, image)) = data.split_first() else {
        return;
    };
    let output = Output::from_ext(OUTPUTS[usize::from(selector) % OUTPUTS.len()]).unwrap();
    let spec =
        Spec::parse_path(SPECS[usize::from(selector) / OUTPUTS.len() % SPECS.len()]).unwrap();
    let _ = render(image, &DecodeLimits::for_pixels(1_000_000), &spec, output);
}

/// As `fuzz_targets/ascii.rs`.
fn ascii_target(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let columns = u32::from(u16::from_be_bytes([data[0], data[1]])) % 1100;
    let mode = [AsciiMode::Text, AsciiMode::Html, AsciiMode::Ansi][usize::from(data[2] % 3)];
    let level = i32::from(data[3] as i8).clamp(-100, 100);
    let Ok(opts) = AsciiOptions::new(Some(columns), None, data[2] & 0x80 != 0, level, -level / 2)
    else {
        return;
    };
    let Ok(decoded) = decode(&data[4..], &DecodeLimits::for_pixels(1_000_000)) else {
        return;
    };
    let _ = render_ascii(&decoded.image, decoded.full_size, &opts, mode);
}

#[test]
fn fuzz_regressions_and_seeds_replay_without_panics() {
    let mut replayed = 0;
    replayed += replay("decode", decode_target);
    replayed += replay("spec", spec_target);
    replayed += replay("render", render_target);
    replayed += replay("ascii", ascii_target);
    assert!(replayed > 0, "no fuzz inputs found");
}

/// As `fuzz_targets/multipart.rs` (async, so outside `replay`).
#[tokio::test]
async fn multipart_fuzz_regressions_and_seeds_replay() {
    const CONTENT_TYPES: [&str; 4] = [
        "multipart/form-data; boundary=XyZ",
        "multipart/form-data; boundary=\"a b\"",
        "multipart/form-data; boundary=-",
        "multipart/form-data",
    ];
    let all = inputs("multipart");
    assert!(!all.is_empty(), "no multipart fuzz inputs found");
    for (path, data) in all {
        let [kind, cut, body @ ..] = &data[..] else {
            continue;
        };
        let content_type = CONTENT_TYPES[usize::from(*kind) % CONTENT_TYPES.len()];
        let chunks = body
            .chunks(1 + usize::from(*cut))
            .map(Bytes::copy_from_slice)
            .collect();
        let run = tokio::spawn(read_multipart_chunks(content_type, chunks, 4096));
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), run).await;
        let Ok(joined) = outcome else {
            panic!("multipart: {} does not finish", path.display());
        };
        let result = joined.unwrap_or_else(|_| panic!("multipart: {} panics", path.display()));
        if let Ok(upload) = result {
            assert!(upload.bytes.len() <= 4096, "{}", path.display());
        }
    }
}

//! Whole renders of arbitrary bytes under a 1 MP budget. The first byte picks the
//! output (`% 5`: png, webp, gif, txt, svg — the last two exercise ASCII and tracing)
//! and a spec (`/ 5 % 4`); the rest is the image. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use progimage::imaging::{render, DecodeLimits, Output, Spec};

const OUTPUTS: [&str; 5] = ["png", "webp", "gif", "txt", "svg"];
const SPECS: [&str; 4] = ["", "w_64", "w_32,h_32,fit_cover", "w_40,rot_90,gray_1"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, image)) = data.split_first() else {
        return;
    };
    let output = Output::from_ext(OUTPUTS[usize::from(selector) % OUTPUTS.len()])
        .expect("known extension");
    let spec = Spec::parse_path(SPECS[usize::from(selector) / OUTPUTS.len() % SPECS.len()])
        .expect("fixed spec parses");
    let limits = DecodeLimits::for_pixels(1_000_000);
    let _ = render(image, &limits, &spec, output);
});

//! Sniff + bounded decode of arbitrary bytes: `probe` then `decode_for` under a 4 MP
//! budget. Errors are expected; a panic, abort, hang or OOM is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use progimage::imaging::{decode_for, probe, DecodeLimits, Spec};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::for_pixels(4_000_000);
    let probed = probe(data, &limits);
    let decoded = decode_for(data, &limits, &Spec::default());
    if let (Ok(p), Ok(d)) = (&probed, &decoded) {
        // Both report the upright full-resolution size; they must agree.
        assert_eq!(
            (p.width, p.height),
            d.full_size,
            "probe and decode disagree on the size of a {:?}",
            p.format
        );
        assert_eq!(p.format, d.format);
    }
});

//! ASCII art from small decoded images. Bytes 0-1 give the column count (big-endian,
//! `% 1100`, so 0 and >1000 are tried as well as valid values), byte 2 the mode and
//! invert flag, byte 3 brightness/contrast; the rest is the image, decoded under 1 MP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use progimage::imaging::{decode, render_ascii, AsciiMode, AsciiOptions, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let columns = u32::from(u16::from_be_bytes([data[0], data[1]])) % 1100;
    let mode = [AsciiMode::Text, AsciiMode::Html, AsciiMode::Ansi][usize::from(data[2] % 3)];
    let invert = data[2] & 0x80 != 0;
    let level = i32::from(data[3] as i8).clamp(-100, 100);
    let Ok(opts) = AsciiOptions::new(Some(columns), None, invert, level, -level / 2) else {
        return;
    };
    let limits = DecodeLimits::for_pixels(1_000_000);
    let Ok(decoded) = decode(&data[4..], &limits) else {
        return;
    };
    let _ = render_ascii(&decoded.image, decoded.full_size, &opts, mode);
});

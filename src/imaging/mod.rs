//! Pure image processing: bytes and a spec in, bytes out. No I/O, no async, no HTTP —
//! so every step can be benchmarked, fuzzed and tested on its own.

mod ascii;
mod decode;
mod encode;
mod format;
mod jpeg;
mod ops;
mod shrink;
mod spec;
mod svg;
mod trace;

pub use ascii::{ascii_rows, render_ascii, AsciiMode, AsciiOptions};
pub use decode::{decode, decode_for, probe, DecodeLimits, Decoded, Probe};
pub use encode::encode;
pub use format::Format;
pub use ops::apply;
pub use spec::{Fit, Flip, Mask, Rgb, Spec};
pub use trace::{trace_svg, TraceOptions};

use image::DynamicImage;

/// Failures of the imaging core. Each maps to one HTTP error in `crate::error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImagingError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    TooManyPixels(String),
    #[error("{0}")]
    BadSpec(String),
    #[error("{0}")]
    Encode(String),
}

/// The result of one render, with what telemetry wants to know about the decode.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub source: Format,
    pub decode_seconds: f64,
    /// Pixels the decoder produced (fewer than the source has after shrink-on-load).
    pub decoded_pixels: u64,
}

/// Decode, transform and encode in one call: what a variant render is.
pub fn render(
    bytes: &[u8],
    limits: &DecodeLimits,
    spec: &Spec,
    output: Format,
) -> Result<Rendered, ImagingError> {
    let started = std::time::Instant::now();
    let decoded = decode_for(bytes, limits, spec)?;
    let decode_seconds = started.elapsed().as_secs_f64();
    let (source, lossless) = (decoded.format, decoded.lossless);
    let decoded_pixels = u64::from(decoded.image.width()) * u64::from(decoded.image.height());
    let transformed: DynamicImage = apply(decoded, spec)?;
    Ok(Rendered {
        bytes: encode(&transformed, output, spec, lossless)?,
        source,
        decode_seconds,
        decoded_pixels,
    })
}

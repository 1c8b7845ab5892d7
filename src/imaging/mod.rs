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

/// Decode, transform and encode in one call: what a variant render is.
pub fn render(
    bytes: &[u8],
    limits: &DecodeLimits,
    spec: &Spec,
    output: Format,
) -> Result<Vec<u8>, ImagingError> {
    let decoded = decode_for(bytes, limits, spec)?;
    let transformed: DynamicImage = apply(decoded, spec)?;
    encode(&transformed, output, spec)
}

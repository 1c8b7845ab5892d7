//! Pure image processing: bytes and a spec in, bytes out. No I/O, no async, no HTTP —
//! so every step can be benchmarked, fuzzed and tested on its own.

mod alpha;
mod animation;
mod ascii;
mod av1;
mod avif;
mod colour;
mod decode;
mod encode;
mod format;
mod jpeg;
mod jpeg_decode;
mod jpeg_encode;
mod jxl;
mod libjpeg;
mod ops;
mod output;
mod placeholder;
mod png_chunks;
mod publish;
mod shrink;
mod smart;
mod spec;
mod svg;
mod tiff;
mod trace;
mod watermark;

pub use ascii::{ascii_rows, render_ascii, AsciiMode, AsciiOptions};
pub use colour::SourceProfile;
pub use decode::{decode, decode_for, probe, DecodeLimits, Decoded, Probe};
pub use encode::encode;
pub use format::Format;
pub use ops::apply;
pub use output::{render, render_watermarked, Output, Rendered, OUTPUT_EXTS};
pub use placeholder::blurhash;
pub use publish::publishable;
pub use spec::{is_non_transform_key, Fit, Flip, Gravity, Mask, Rgb, Spec};
pub use trace::{trace_svg, TraceOptions};

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

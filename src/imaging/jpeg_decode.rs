//! How each JPEG is read:
//!
//! - 8-bit DCT (baseline, progressive, arithmetic-coded) → libjpeg-turbo, the decoder
//!   browsers use, at the DCT scale shrink-on-load asks for: one decoder at every size,
//!   so a thumbnail and a full-size render of one file agree (zune-jpeg, behind `image`,
//!   read full-size decodes before, with its own chroma upsampling). With nasm's SIMD it
//!   is also the faster: 64.0 against 75.4 ms for a 12 MP photo (`cargo bench --bench
//!   imaging -- jpeg_decoder_12mp`); in plain C, without nasm, it is the slower (99 against
//!   81 ms in a one-off run);
//! - complete but without an end-of-image marker → the same, accepted only when its one
//!   warning is the missing marker (`JWRN_JPEG_EOF`) and the scans code every
//!   coefficient, so a file whose data stops early stays `422`;
//! - CMYK with a CMYK profile → libjpeg's inks, converted through the profile (without
//!   one, by the naive formula browsers use);
//! - lossless (SOF3), 2..=16 bits → `jpeg-decoder` (pure Rust);
//! - 12-bit DCT, hierarchical and arithmetic lossless → `415`, saying which.

use image::{DynamicImage, ImageBuffer, Luma, Rgb};

use super::colour;
use super::jpeg::{self, Frame};
use super::libjpeg::{self, Failure};
use super::ImagingError;

/// How a JPEG is read: its frame, and its CMYK profile when it is a CMYK file converted
/// through one (found once, used by [`decode`]).
pub struct Plan {
    pub frame: Frame,
    cmyk_icc: Option<Vec<u8>>,
}

/// How to read a JPEG, or why it cannot be; `None` for bytes that are not a JPEG with a
/// frame header (the caller's generic path reports them).
pub fn plan(bytes: &[u8]) -> Result<Option<Plan>, ImagingError> {
    let found = |frame: Frame, cmyk_icc| Ok(Some(Plan { frame, cmyk_icc }));
    let Some(frame) = jpeg::frame(bytes) else {
        return Ok(None);
    };
    let unsupported = |what: &str| {
        Err(ImagingError::Unsupported(format!(
            "{what} JPEG is not supported (progimage reads 8-bit baseline, progressive and \
             arithmetic-coded JPEGs, and lossless JPEGs)"
        )))
    };
    if frame.hierarchical() {
        return unsupported("hierarchical");
    }
    if frame.lossless() {
        return match frame.arithmetic() {
            true => unsupported("arithmetic-coded lossless"),
            false => found(frame, None),
        };
    }
    if frame.precision != 8 {
        return unsupported(&format!("{}-bit", frame.precision));
    }
    if jpeg::has_end_of_image(bytes) {
        let cmyk_icc = cmyk_profile(bytes, &frame);
        return found(frame, cmyk_icc);
    }
    // libjpeg's arithmetic decoder fills missing data with zeros without a warning, so an
    // unterminated arithmetic file cannot be told complete.
    if frame.arithmetic() || !jpeg::scans_complete(bytes, &frame) {
        return Err(truncated());
    }
    let cmyk_icc = cmyk_profile(bytes, &frame);
    found(frame, cmyk_icc)
}

/// The CMYK profile of a four-component JPEG, if it has one.
fn cmyk_profile(bytes: &[u8], frame: &Frame) -> Option<Vec<u8>> {
    if frame.components.len() != 4 {
        return None;
    }
    jpeg::icc_profile(bytes).filter(|icc| colour::is_cmyk(icc))
}

fn truncated() -> ImagingError {
    ImagingError::Corrupt("the JPEG data is truncated (it stops before the last row)".into())
}

/// Decode a JPEG as [`plan`] says, at 1/`divisor` (libjpeg paths; lossless files are
/// always whole), in its stored orientation.
pub fn decode(bytes: &[u8], plan: &Plan, divisor: u32) -> Result<DynamicImage, ImagingError> {
    let frame = &plan.frame;
    if frame.lossless() {
        return lossless(bytes, frame);
    }
    let failed = |failure| match failure {
        Failure::Unsupported(what) => ImagingError::Unsupported(format!("{what} is not supported")),
        Failure::Corrupt => ImagingError::Corrupt("libjpeg could not decode the JPEG".into()),
    };
    if let Some(icc) = &plan.cmyk_icc {
        let (w, h, inks) = libjpeg::decode_inks(bytes, divisor).map_err(failed)?;
        let rgb = colour::cmyk_to_srgb(w, h, &inks, icc)
            .ok_or_else(|| ImagingError::Corrupt("the CMYK profile cannot convert".into()))?;
        return Ok(DynamicImage::ImageRgb8(rgb));
    }
    let read = libjpeg::decode(bytes, divisor).map_err(failed)?;
    let unterminated = !jpeg::has_end_of_image(bytes);
    let only_eof = read
        .warnings
        .iter()
        .all(|&w| w == mozjpeg_sys::JWRN_JPEG_EOF);
    if unterminated && !only_eof {
        return Err(truncated());
    }
    Ok(read.image)
}

fn lossless(bytes: &[u8], frame: &Frame) -> Result<DynamicImage, ImagingError> {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    // (jpeg-decoder panics on some malformed frames: caught in `decode.rs`.)
    let samples = decoder
        .decode()
        .map_err(|e| ImagingError::Corrupt(format!("lossless JPEG: {e}")))?;
    let (w, h) = (u32::from(frame.width), u32::from(frame.height));
    // Samples come as bytes at 8 bits, else as native-endian u16 at the file's precision:
    // scaled here to the full 16-bit range.
    let wide: Vec<u16> = if frame.precision == 8 {
        samples.iter().map(|&v| u16::from(v) * 257).collect()
    } else {
        let max = (1u32 << frame.precision.clamp(2, 16)) - 1;
        samples
            .chunks_exact(2)
            .map(|b| {
                let v = u32::from(u16::from_ne_bytes([b[0], b[1]])).min(max);
                ((v * 65535 + max / 2) / max) as u16
            })
            .collect()
    };
    let image = match frame.components.len() {
        1 => ImageBuffer::<Luma<u16>, _>::from_raw(w, h, wide).map(DynamicImage::ImageLuma16),
        3 => ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, wide).map(DynamicImage::ImageRgb16),
        n => {
            return Err(ImagingError::Unsupported(format!(
                "a lossless JPEG with {n} components is not supported"
            )))
        }
    };
    image.ok_or_else(|| ImagingError::Corrupt("the lossless JPEG's data does not fill it".into()))
}

//! Decoding through libjpeg-turbo (the `mozjpeg` crate, built from C), the decoder of
//! every 8-bit DCT JPEG (see `jpeg_decode`): DCT-scaled for shrink-on-load, arithmetic
//! coding included, with the warnings that tell a file that is merely unterminated from
//! one whose data stops early.
//!
//! libjpeg reports errors by unwinding out of the C code (the `unwinding` feature of
//! mozjpeg-sys); every call here catches that, so a hostile file is an error, never a
//! crash.

use std::cell::RefCell;
use std::os::raw::c_int;

use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::ColorSpace;
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

/// A decode and the warnings libjpeg gave on the way (message codes, `JWRN_*`).
pub struct Read {
    pub image: DynamicImage,
    pub warnings: Vec<c_int>,
}

/// Why libjpeg could not decode a file.
#[derive(Debug)]
pub enum Failure {
    /// A coding libjpeg does not implement here (12-bit samples, lossless).
    Unsupported(&'static str),
    /// Anything else: damaged data, a broken header.
    Corrupt,
}

thread_local! {
    /// Warnings of the decode running on this thread (one at a time per thread).
    static WARNINGS: RefCell<Vec<c_int>> = const { RefCell::new(Vec::new()) };
}

extern "C-unwind" fn record_warning(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        // SAFETY: libjpeg calls this with its own live error manager.
        let code = unsafe { (*cinfo.err).msg_code };
        WARNINGS.with(|w| w.borrow_mut().push(code));
    }
}

extern "C-unwind" fn unwind_with_code(cinfo: &mut jpeg_common_struct) {
    // SAFETY: as above.
    let code: c_int = unsafe { (*cinfo.err).msg_code };
    std::panic::resume_unwind(Box::new(code));
}

fn error_manager() -> jpeg_error_mgr {
    // SAFETY: a zeroed manager is what jpeg_std_error expects to fill in.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_with_code);
    err.emit_message = Some(record_warning);
    err
}

/// Decode `bytes` at 1/`divisor` of their size (1, 2, 4 or 8), in the file's stored
/// orientation: gray, RGB, or CMYK turned into RGB without a profile (see
/// [`decode_inks`] for CMYK through one).
pub fn decode(bytes: &[u8], divisor: u32) -> Result<Read, Failure> {
    let (samples, warnings) = read(bytes, divisor)?;
    let Samples {
        width: w,
        height: h,
        kind,
        pixels,
    } = samples;
    let image = match kind {
        Kind::Gray => GrayImage::from_raw(w, h, pixels).map(DynamicImage::from),
        Kind::Rgb => RgbImage::from_raw(w, h, pixels).map(DynamicImage::from),
        Kind::Cmyk => RgbImage::from_raw(w, h, naive_rgb(&pixels)).map(DynamicImage::from),
    };
    image
        .map(|image| Read { image, warnings })
        .ok_or(Failure::Corrupt)
}

/// A CMYK JPEG's inks at 1/`divisor`: width, height and C, M, Y, K per pixel, 0 = no ink
/// (Adobe's inverted storage undone), for conversion through the file's profile.
pub fn decode_inks(bytes: &[u8], divisor: u32) -> Result<(u32, u32, Vec<u8>), Failure> {
    match read(bytes, divisor)? {
        (
            Samples {
                width,
                height,
                kind: Kind::Cmyk,
                pixels,
            },
            _,
        ) => Ok((width, height, pixels)),
        _ => Err(Failure::Corrupt),
    }
}

/// Whether libjpeg-turbo (what browsers decode JPEG with) reads the whole file without
/// an error, decoding at 1/8 scale, which still reads every scan.
pub fn reads(bytes: &[u8]) -> bool {
    read(bytes, 8).is_ok()
}

#[derive(PartialEq)]
enum Kind {
    Gray,
    Rgb,
    /// C, M, Y, K with 0 = no ink.
    Cmyk,
}

struct Samples {
    width: u32,
    height: u32,
    kind: Kind,
    pixels: Vec<u8>,
}

/// The decoded samples and the warnings given on the way.
fn read(bytes: &[u8], divisor: u32) -> Result<(Samples, Vec<c_int>), Failure> {
    WARNINGS.with(|w| w.borrow_mut().clear());
    let result = std::panic::catch_unwind(|| read_unguarded(bytes, divisor));
    let warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    match result {
        Ok(Some(samples)) => Ok((samples, warnings)),
        Ok(None) => Err(Failure::Corrupt),
        Err(payload) => Err(match payload.downcast_ref::<c_int>().copied() {
            Some(code) if code == mozjpeg_sys::JERR_BAD_PRECISION as c_int => {
                Failure::Unsupported("12-bit JPEG")
            }
            Some(code) if code == mozjpeg_sys::JERR_SOF_UNSUPPORTED as c_int => {
                Failure::Unsupported("this JPEG coding process (lossless or hierarchical)")
            }
            _ => Failure::Corrupt,
        }),
    }
}

fn read_unguarded(bytes: &[u8], divisor: u32) -> Option<Samples> {
    let mut decoder = mozjpeg::Decompress::with_err(error_manager())
        .with_markers(&[mozjpeg::Marker::APP(14)])
        .from_mem(bytes)
        .ok()?;
    decoder.scale(u8::try_from(8 / divisor.clamp(1, 8)).ok()?);
    let kind = match decoder.color_space() {
        ColorSpace::JCS_GRAYSCALE => Kind::Gray,
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => Kind::Cmyk,
        _ => Kind::Rgb,
    };
    // Photoshop (every file with an Adobe segment) stores inks inverted: 255 = no ink.
    let adobe = decoder.markers().any(|m| m.data.starts_with(b"Adobe"));
    let mut started = match kind {
        Kind::Gray => decoder.grayscale().ok()?,
        Kind::Cmyk => decoder.to_colorspace(ColorSpace::JCS_CMYK).ok()?,
        Kind::Rgb => decoder.rgb().ok()?,
    };
    let (width, height) = (
        u32::try_from(started.width()).ok()?,
        u32::try_from(started.height()).ok()?,
    );
    let mut pixels: Vec<u8> = started.read_scanlines().ok()?;
    started.finish().ok()?;
    if kind == Kind::Cmyk && adobe {
        pixels.iter_mut().for_each(|v| *v = 255 - *v);
    }
    Some(Samples {
        width,
        height,
        kind,
        pixels,
    })
}

/// CMYK without a profile, the way decoders without colour management show it.
fn naive_rgb(inks: &[u8]) -> Vec<u8> {
    inks.chunks_exact(4)
        .flat_map(|p| {
            let light = |ink: u8| u16::from(255 - ink);
            let k = light(p[3]);
            [0, 1, 2].map(|i| ((light(p[i]) * k + 127) / 255) as u8)
        })
        .collect()
}

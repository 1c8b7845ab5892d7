//! Sniffing and bounded decoding. The format always comes from the bytes; the pixel limit
//! is checked from the header before any pixel buffer exists.

use std::io::Cursor;

use image::error::ImageError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::colour::SourceProfile;
use super::spec::Spec;
use super::{avif, jpeg, jpeg_decode, jxl, shrink, svg, tiff, Format, ImagingError};

/// Resource limits applied to every decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width × height accepted (as stored in the file).
    pub max_pixels: u64,
    /// Largest single allocation the decoder may make, in bytes.
    pub max_alloc: u64,
    /// Most output pixels an animated output may hold across all its frames (width ×
    /// height × frames), checked after the first frame is transformed and before the
    /// others are: the source bound alone lets `w=8192&enlarge=1` ask for terabytes.
    pub max_animation_pixels: u64,
}

impl DecodeLimits {
    /// Limits for a pixel budget: room for the largest 16-bit RGBA buffer plus slack for
    /// palettes, ICC profiles and decoder scratch space; animated outputs get a quarter
    /// of the budget (as RGBA frames held for the encoder, the same bytes as one still).
    pub fn for_pixels(max_pixels: u64) -> Self {
        DecodeLimits {
            max_pixels,
            max_alloc: max_pixels.saturating_mul(8).saturating_add(64 << 20),
            max_animation_pixels: max_pixels / 4,
        }
    }
}

/// What the header says, learnt without decoding pixels.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub format: Format,
    /// Width as displayed, after EXIF orientation.
    pub width: u32,
    /// Height as displayed, after EXIF orientation.
    pub height: u32,
    /// Whether the pixels carry an alpha channel.
    pub has_alpha: bool,
}

/// A decoded image, already turned upright by its EXIF orientation.
pub struct Decoded {
    pub format: Format,
    pub image: DynamicImage,
    /// Whether the source was stored without loss (PNG, GIF, lossless WebP, …), so a
    /// WebP output may stay lossless too.
    pub lossless: bool,
    /// Upright size of the full-resolution image. Larger than `image` when the decoder
    /// shrank it on load; transforms are planned in these coordinates.
    pub full_size: (u32, u32),
    /// The colour space the pixels are in; `apply` converts them to sRGB.
    pub profile: SourceProfile,
}

impl Decoded {
    /// The pixels in sRGB, otherwise untransformed (watermarks, placeholders).
    pub fn into_srgb(self) -> Result<DynamicImage, ImagingError> {
        super::apply(self, &Spec::default())
    }
}

/// Identify the format from magic bytes and read the header, enforcing the pixel limit.
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<Probe, ImagingError> {
    guarded(|| probe_unguarded(bytes, limits))
}

/// Decoders assert where they should return errors (tiff, mp4parse and jpeg-decoder do):
/// a file that trips one is malformed input, answered 422, not a failed job. libjpeg's
/// own errors unwind out of C and are caught in `libjpeg`.
pub(crate) fn guarded<T>(
    work: impl FnOnce() -> Result<T, ImagingError>,
) -> Result<T, ImagingError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(ImagingError::Corrupt(
            "the decoder could not make sense of the file".into(),
        ))
    })
}

fn probe_unguarded(bytes: &[u8], limits: &DecodeLimits) -> Result<Probe, ImagingError> {
    if svg::looks_like_svg(bytes) {
        let (_, width, height) = svg::parse(bytes)?;
        check_pixels(width, height, limits)?;
        return Ok(Probe {
            format: Format::Svg,
            width,
            height,
            has_alpha: true,
        });
    }
    if jxl::looks_like_jxl(bytes) {
        let opened = jxl::open(bytes, limits.max_alloc)?;
        check_pixels(opened.width(), opened.height(), limits)?;
        return Ok(Probe {
            format: Format::Jxl,
            width: opened.width(),
            height: opened.height(),
            has_alpha: opened.has_alpha(),
        });
    }
    if avif::looks_like_avif(bytes) {
        let header = avif::header(bytes)?;
        check_pixels(header.width, header.height, limits)?;
        return Ok(Probe {
            format: Format::Avif,
            width: header.width,
            height: header.height,
            has_alpha: header.has_alpha,
        });
    }
    if let Some(layout) = own_tiff_layout(bytes) {
        let (width, height) = upright(&layout, limits)?;
        return Ok(Probe {
            format: Format::Tiff,
            width,
            height,
            has_alpha: layout.has_alpha,
        });
    }
    if let Some(plan) = jpeg_decode::plan(bytes)? {
        let (width, height) = jpeg_size(&plan.frame, orientation_of(bytes), limits)?;
        return Ok(Probe {
            format: Format::Jpeg,
            width,
            height,
            has_alpha: false,
        });
    }
    let (format, mut decoder) = open(bytes, limits)?;
    let orientation = orientation(&mut decoder).map_err(from_image_error)?;
    let (w, h) = decoder.dimensions();
    let (width, height) = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    Ok(Probe {
        format,
        width,
        height,
        has_alpha: decoder.color_type().has_alpha(),
    })
}

/// A TIFF that `tiff.rs` reads instead of `image`, with its layout.
fn own_tiff_layout(bytes: &[u8]) -> Option<tiff::Layout> {
    let tiff_magic = bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*");
    (tiff_magic || is_bigtiff(bytes))
        .then(|| tiff::layout(bytes))
        .flatten()
}

/// BigTIFF (64-bit offsets, for files over 4 GiB and from scanners and microscopes): the
/// `tiff` crate reads it, but `image` does not sniff its magic.
fn is_bigtiff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+")
}

/// The format `image` is to decode the bytes as, from their signature.
fn sniff(bytes: &[u8]) -> Option<image::ImageFormat> {
    match image::guess_format(bytes) {
        Ok(format) => Some(format),
        Err(_) if is_bigtiff(bytes) => Some(image::ImageFormat::Tiff),
        Err(_) => None,
    }
}

/// The upright size of a TIFF read by `tiff.rs`, after the pixel limit check.
fn upright(layout: &tiff::Layout, limits: &DecodeLimits) -> Result<(u32, u32), ImagingError> {
    check_pixels(layout.width, layout.height, limits)?;
    let orientation =
        Orientation::from_exif(layout.orientation).unwrap_or(Orientation::NoTransforms);
    Ok(if swaps_axes(orientation) {
        (layout.height, layout.width)
    } else {
        (layout.width, layout.height)
    })
}

/// The upright size of a JPEG read by `jpeg_decode`, after the pixel limit check.
fn jpeg_size(
    frame: &jpeg::Frame,
    orientation: Orientation,
    limits: &DecodeLimits,
) -> Result<(u32, u32), ImagingError> {
    let (w, h) = (u32::from(frame.width), u32::from(frame.height));
    check_pixels(w, h, limits)?;
    Ok(if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    })
}

fn orientation_of(jpeg_bytes: &[u8]) -> Orientation {
    Orientation::from_exif(jpeg::exif_orientation(jpeg_bytes)).unwrap_or(Orientation::NoTransforms)
}

/// The format sniffed from the bytes and the EXIF orientation (1..=8) the decoder would
/// apply, from the header alone; `None` for SVG and JPEG XL, which are not read by `image`.
pub(crate) fn format_and_orientation(bytes: &[u8], limits: &DecodeLimits) -> Option<(Format, u8)> {
    if svg::looks_like_svg(bytes) || jxl::looks_like_jxl(bytes) {
        return None;
    }
    if avif::looks_like_avif(bytes) {
        return Some((Format::Avif, 1)); // `irot`/`imir` stay in the container
    }
    let (format, mut decoder) = open(bytes, limits).ok()?;
    let orientation = orientation(&mut decoder).ok()?;
    Some((format, orientation.to_exif()))
}

/// Decode the whole image under `limits` and apply its EXIF orientation.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, ImagingError> {
    decode_for(bytes, limits, &Spec::default())
}

/// Decode for rendering `spec`: like [`decode`], but a JPEG is shrunk on load by up to
/// 8× when the output needs that few pixels (see `shrink`).
pub fn decode_for(
    bytes: &[u8],
    limits: &DecodeLimits,
    spec: &Spec,
) -> Result<Decoded, ImagingError> {
    guarded(|| decode_for_unguarded(bytes, limits, spec))
}

fn decode_for_unguarded(
    bytes: &[u8],
    limits: &DecodeLimits,
    spec: &Spec,
) -> Result<Decoded, ImagingError> {
    if svg::looks_like_svg(bytes) {
        let (tree, width, height) = svg::parse(bytes)?;
        check_pixels(width, height, limits)?;
        return Ok(Decoded {
            format: Format::Svg,
            image: svg::rasterize(&tree, width, height)?,
            lossless: true,
            full_size: (width, height),
            profile: SourceProfile::srgb(),
        });
    }
    if jxl::looks_like_jxl(bytes) {
        let opened = jxl::open(bytes, limits.max_alloc)?;
        let (width, height) = (opened.width(), opened.height());
        check_pixels(width, height, limits)?;
        let (image, lossless, profile) = jxl::decode(opened, bytes)?;
        return Ok(Decoded {
            format: Format::Jxl,
            image,
            lossless,
            full_size: (width, height),
            profile,
        });
    }
    if avif::looks_like_avif(bytes) {
        let header = avif::header(bytes)?;
        check_pixels(header.width, header.height, limits)?;
        let (image, profile) = avif::decode(bytes, limits.max_pixels)?;
        return Ok(Decoded {
            format: Format::Avif,
            full_size: (image.width(), image.height()),
            image,
            lossless: false,
            profile,
        });
    }
    if let Some(layout) = own_tiff_layout(bytes) {
        let full_size = upright(&layout, limits)?;
        let mut image = tiff::decode(bytes, limits.max_alloc)?;
        image.apply_orientation(
            Orientation::from_exif(layout.orientation).unwrap_or(Orientation::NoTransforms),
        );
        return Ok(Decoded {
            format: Format::Tiff,
            image,
            lossless: true,
            full_size,
            profile: SourceProfile::srgb(),
        });
    }
    if let Some(plan) = jpeg_decode::plan(bytes)? {
        let frame = &plan.frame;
        let orientation = orientation_of(bytes);
        let full_size = jpeg_size(frame, orientation, limits)?;
        let divisor = match frame.lossless() {
            false => shrink::divisor_for(full_size.0, full_size.1, spec).unwrap_or(1),
            true => 1,
        };
        let mut image = jpeg_decode::decode(bytes, &plan, divisor)?;
        image.apply_orientation(orientation);
        return Ok(Decoded {
            format: Format::Jpeg,
            image,
            lossless: frame.lossless(),
            full_size,
            // A CMYK profile was applied by `jpeg_decode`; an RGB or gray one is applied later.
            profile: jpeg::icc_profile(bytes)
                .filter(|_| frame.components.len() != 4)
                .map(SourceProfile::icc)
                .unwrap_or_default(),
        });
    }
    let (format, mut decoder) = open(bytes, limits)?;
    let orientation = orientation(&mut decoder).map_err(from_image_error)?;
    // An unreadable profile is no reason to refuse the pixels (browsers show them as sRGB).
    let icc = decoder.icc_profile().ok().flatten();
    let profile = match format {
        Format::Png => SourceProfile::png(bytes, icc),
        _ => icc.map(SourceProfile::icc).unwrap_or_default(),
    };
    let (w, h) = decoder.dimensions();
    let full_size = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    image.apply_orientation(orientation);
    Ok(Decoded {
        format,
        image,
        lossless: is_lossless(format, bytes),
        full_size,
        profile,
    })
}

fn open<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<(Format, impl ImageDecoder + 'a), ImagingError> {
    let sniffed = sniff(bytes).ok_or_else(not_an_image)?;
    let format = Format::from_image(sniffed).ok_or_else(not_an_image)?;
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(sniffed);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(from_image_error)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, limits)?;
    Ok((format, decoder))
}

/// The EXIF orientation a decoder's file asks for. `image` reads the EXIF block as bare
/// TIFF data, as the WebP and PNG specifications have it; many writers put JPEG's
/// `Exif\0\0` header before it (Pillow's orientation test files do), which `image` then
/// cannot parse and reads as upright. Such blocks are read again past their header.
fn orientation(decoder: &mut impl ImageDecoder) -> image::ImageResult<Orientation> {
    let found = decoder.orientation()?;
    if found != Orientation::NoTransforms {
        return Ok(found);
    }
    Ok(match decoder.exif_metadata()?.as_deref() {
        Some([b'E', b'x', b'i', b'f', 0, 0, tiff @ ..]) => {
            Orientation::from_exif_chunk(tiff).unwrap_or(found)
        }
        _ => found,
    })
}

/// Refuse images over the pixel limit (decided from the header, before any pixel buffer
/// exists) and images with no pixels at all.
fn check_pixels(w: u32, h: u32, limits: &DecodeLimits) -> Result<(), ImagingError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels(format!(
            "{w}x{h} is {pixels} pixels; the limit is {}",
            limits.max_pixels
        )));
    }
    if pixels == 0 {
        return Err(ImagingError::Corrupt("the image has no pixels".into()));
    }
    Ok(())
}

fn is_lossless(format: Format, bytes: &[u8]) -> bool {
    match format {
        Format::Jpeg | Format::Avif => false,
        // A simple lossless WebP is `RIFF….WEBPVP8L`; an extended one names VP8L in a chunk.
        Format::Webp => bytes
            .get(..bytes.len().min(4096))
            .is_some_and(|head| head.windows(4).any(|w| w == b"VP8L")),
        _ => true,
    }
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn not_an_image() -> ImagingError {
    ImagingError::Unsupported("the bytes are not an image in a format progimage reads".into())
}

fn from_image_error(e: ImageError) -> ImagingError {
    match e {
        ImageError::Unsupported(u) => ImagingError::Unsupported(u.to_string()),
        ImageError::Limits(l) => ImagingError::TooManyPixels(l.to_string()),
        ImageError::Encoding(e) => ImagingError::Encode(e.to_string()),
        other => ImagingError::Corrupt(other.to_string()),
    }
}

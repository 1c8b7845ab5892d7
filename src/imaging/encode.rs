//! Encoding to each output format. Encoders write pixels only: no EXIF or XMP reaches an
//! output, and an ICC profile only when the spec keeps the source's (`color=keep`).

use std::io::Cursor;

use image::codecs::{
    bmp::BmpEncoder, gif::GifEncoder, ico::IcoEncoder, jpeg::JpegEncoder, png::PngEncoder,
    tiff::TiffEncoder,
};
use image::{DynamicImage, Frame, ImageEncoder, Rgb, RgbImage};

use super::ops::{plan_resize, resize};
use super::spec::{Rgb as Colour, Spec};
use super::{Format, ImagingError};

pub const DEFAULT_JPEG_QUALITY: u8 = 82;
pub const DEFAULT_WEBP_QUALITY: u8 = 80;
pub const DEFAULT_AVIF_QUALITY: u8 = 70;
const AVIF_SPEED: u8 = 10;
/// ICO entries cannot be larger than this on either side.
const ICO_MAX: u32 = 256;
const WHITE: Colour = Colour([255, 255, 255]);

/// Encode `img` as `format`, using the spec's quality and background colour. A WebP of a
/// lossless source stays lossless unless the spec asks for a quality.
/// The longest side each format can hold (its header fields, or the codec's limit).
/// PNG, TIFF and BMP hold anything the pixel limit lets through; ICO is fitted first.
fn max_side(format: Format) -> u32 {
    match format {
        Format::Webp => 16_383,
        Format::Jpeg | Format::Gif | Format::Avif => 65_535,
        _ => u32::MAX,
    }
}

/// Refuse, before encoding, an output its format cannot hold: the encoders would fail or
/// panic on it, which is the request's fault, not a bug.
pub fn check_side_limit((width, height): (u32, u32), format: Format) -> Result<(), ImagingError> {
    let max = max_side(format);
    if width > max || height > max {
        return Err(ImagingError::TooManyPixels(format!(
            "a {} image holds at most {max} px a side; this one would be {width}x{height} \
             (resize it with `w`/`h`, or ask for png)",
            format.name()
        )));
    }
    Ok(())
}

pub fn encode(
    img: &DynamicImage,
    format: Format,
    spec: &Spec,
    lossless_source: bool,
) -> Result<Vec<u8>, ImagingError> {
    encode_with_profile(img, format, spec, lossless_source, None)
}

/// Whether `format` can carry an ICC profile (so `color=keep` can keep one in it).
pub fn carries_profile(format: Format) -> bool {
    matches!(
        format,
        Format::Jpeg | Format::Png | Format::Webp | Format::Tiff
    )
}

/// [`encode`], embedding `icc` (the pixels' colour profile) when the format carries one
/// (see [`carries_profile`]).
pub fn encode_with_profile(
    img: &DynamicImage,
    format: Format,
    spec: &Spec,
    lossless_source: bool,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    check_side_limit((img.width(), img.height()), format)?;
    let mut out = Vec::new();
    let bg = spec.bg.unwrap_or(WHITE);
    let result = match format {
        Format::Jpeg => {
            let q = spec.quality.unwrap_or(DEFAULT_JPEG_QUALITY);
            let fast = match img {
                DynamicImage::ImageLuma8(gray) => super::jpeg_encode::encode_gray(gray, q, icc),
                _ => super::jpeg_encode::encode_rgb(&flatten(img, bg), q, icc),
            };
            match fast {
                Some(bytes) => return Ok(bytes),
                // libjpeg refused (it should not): the pure-Rust encoder as a fallback.
                None => {
                    let enc = JpegEncoder::new_with_quality(&mut out, q);
                    match img {
                        DynamicImage::ImageLuma8(gray) => gray.write_with_encoder(enc),
                        _ => flatten(img, bg).write_with_encoder(enc),
                    }
                }
            }
        }
        Format::Png => {
            let mut encoder = PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            with_profile(&mut encoder, icc);
            img.write_with_encoder(encoder)
        }
        Format::Webp => {
            let lossless = lossless_source && spec.quality.is_none();
            let webp = encode_webp(img, spec, lossless)?;
            return Ok(match icc {
                Some(icc) => webp_with_profile(
                    webp,
                    icc,
                    (img.width(), img.height()),
                    img.color().has_alpha(),
                ),
                None => webp,
            });
        }
        Format::Gif => {
            let mut enc = GifEncoder::new_with_speed(&mut out, 10);
            enc.encode_frame(Frame::new(img.to_rgba8()))
        }
        Format::Bmp => flatten(img, bg).write_with_encoder(BmpEncoder::new(&mut out)),
        Format::Tiff => {
            let mut cursor = Cursor::new(&mut out);
            let mut encoder = TiffEncoder::new(&mut cursor);
            with_profile(&mut encoder, icc);
            img.write_with_encoder(encoder)
        }
        Format::Ico => {
            let icon = fit_icon(img)?;
            IcoEncoder::new(&mut out).write_image(
                icon.as_raw(),
                icon.width(),
                icon.height(),
                image::ExtendedColorType::Rgba8,
            )
        }
        Format::Avif => return encode_avif(img, spec),
        Format::Svg => {
            return Err(ImagingError::Unsupported(
                "SVG output is a traced vector, not an encoder".into(),
            ))
        }
        Format::Jxl => {
            return Err(ImagingError::Unsupported(
                "JPEG XL is an input format only".into(),
            ))
        }
    };
    result.map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(out)
}

fn with_profile(encoder: &mut impl ImageEncoder, icc: Option<&[u8]>) {
    if let Some(icc) = icc {
        // Both encoders that get here support it; a refusal would only lose the profile.
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
}

/// Add an `ICCP` chunk to a WebP from libwebp (whose simple encoder writes none): the
/// extended form's `VP8X` header, with the ICC flag, goes first, then the profile, then
/// the image chunks as they were.
fn webp_with_profile(webp: Vec<u8>, icc: &[u8], (w, h): (u32, u32), alpha: bool) -> Vec<u8> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    let Some(body) = webp.get(12..).filter(|_| webp.starts_with(b"RIFF")) else {
        return webp;
    };
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    };
    let mut chunks = Vec::with_capacity(webp.len() + icc.len() + 40);
    if body.starts_with(b"VP8X") && body.len() >= 18 {
        let mut vp8x = body[..18].to_vec();
        vp8x[8] |= ICC_FLAG;
        chunks.extend_from_slice(&vp8x);
        chunks.extend(chunk(b"ICCP", icc));
        chunks.extend_from_slice(&body[18..]);
    } else {
        let mut header = [0u8; 10];
        header[0] = ICC_FLAG | if alpha { ALPHA_FLAG } else { 0 };
        header[4..7].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
        header[7..10].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
        chunks.extend(chunk(b"VP8X", &header));
        chunks.extend(chunk(b"ICCP", icc));
        chunks.extend_from_slice(body);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(chunks);
    out
}

/// WebP through libwebp (the `image` crate only writes lossless WebP, and slowly).
fn encode_webp(img: &DynamicImage, spec: &Spec, lossless: bool) -> Result<Vec<u8>, ImagingError> {
    let q = f32::from(spec.quality.unwrap_or(DEFAULT_WEBP_QUALITY));
    let encode = |encoder: webp::Encoder| {
        if lossless {
            encoder.encode_lossless()
        } else {
            encoder.encode(q)
        }
    };
    let encoded = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        encode(webp::Encoder::from_rgba(&rgba, rgba.width(), rgba.height()))
    } else {
        let rgb = img.to_rgb8();
        encode(webp::Encoder::from_rgb(&rgb, rgb.width(), rgb.height()))
    };
    Ok(encoded.to_vec())
}

/// AVIF through rav1e (one thread: the work pool provides the parallelism). Without rav1e's
/// assembly, speed 10 is what keeps a cold 1200 px encode under a second here (measured
/// 0.87 s and 105 KB for the 12 MP corpus photo at 1200 px; speed 8 took 2.5 s).
fn encode_avif(img: &DynamicImage, spec: &Spec) -> Result<Vec<u8>, ImagingError> {
    let quality = f32::from(spec.quality.unwrap_or(DEFAULT_AVIF_QUALITY));
    let encoder = ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1));
    let (w, h) = (img.width() as usize, img.height() as usize);
    let encoded = if img.color().has_alpha() {
        let pixels: Vec<ravif::RGBA8> = img
            .to_rgba8()
            .chunks_exact(4)
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(&pixels[..], w, h))
    } else {
        let pixels: Vec<ravif::RGB8> = img
            .to_rgb8()
            .chunks_exact(3)
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(&pixels[..], w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| ImagingError::Encode(format!("AVIF: {e}")))
}

/// Composite any alpha onto a solid background, for formats without transparency.
fn flatten(img: &DynamicImage, Colour(bg): Colour) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(src[3]);
        let mix = |c: u8, b: u8| ((u16::from(c) * a + u16::from(b) * (255 - a) + 127) / 255) as u8;
        *dst = Rgb([mix(src[0], bg[0]), mix(src[1], bg[1]), mix(src[2], bg[2])]);
    }
    out
}

/// ICO cannot hold more than 256×256: larger images are fitted inside that box.
fn fit_icon(img: &DynamicImage) -> Result<image::RgbaImage, ImagingError> {
    let box_spec = Spec {
        width: Some(ICO_MAX),
        height: Some(ICO_MAX),
        ..Spec::default()
    };
    Ok(match plan_resize(img.width(), img.height(), &box_spec) {
        Some(plan) => resize(img, plan)?.to_rgba8(),
        None => img.to_rgba8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_blends_onto_the_background() {
        let mut rgba = image::RgbaImage::new(1, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        let out = flatten(&DynamicImage::ImageRgba8(rgba), Colour([10, 20, 30]));
        assert_eq!(out.get_pixel(0, 0), &Rgb([10, 20, 30]));
    }

    #[test]
    fn every_encodable_format_encodes() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            300,
            10,
            image::Rgba([1, 2, 3, 128]),
        ));
        for f in Format::ALL.into_iter().filter(|f| f.can_encode()) {
            let bytes = encode(&img, f, &Spec::default(), false).unwrap();
            let back = match f {
                // `image` has no AVIF decoder here; progimage's own reads it back.
                Format::Avif => {
                    let limits = crate::imaging::DecodeLimits::for_pixels(1 << 20);
                    crate::imaging::decode(&bytes, &limits).unwrap().image
                }
                _ => image::load_from_memory(&bytes).unwrap(),
            };
            let expected_width = if f == Format::Ico { 256 } else { 300 };
            assert_eq!(back.width(), expected_width, "{f:?}");
        }
    }
}

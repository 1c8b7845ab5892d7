//! Colour management: what colour space a source's pixels are in, and converting them to
//! sRGB, so that every output looks as the source does in a colour-managed viewer.
//!
//! Every colour description a source can carry (an ICC profile, or a PNG's `sRGB`,
//! `gAMA`/`cHRM` and `cICP` chunks) is reduced to one ICC profile here; moxcms (pure Rust,
//! already in the tree through `image`, and the fastest engine measured, see the
//! README's "Benchmarks") builds the transform. Transforms are cached per profile digest, and a
//! profile whose transform changes no 8-bit value (an embedded sRGB, say) is remembered as
//! sRGB so its images cost nothing.
//!
//! A profile that cannot be read, or that does not fit the pixels (an RGB profile on a
//! gray image), is ignored the way browsers ignore it: the pixels are taken as sRGB. A
//! bad profile never fails a request.

use std::sync::{Arc, LazyLock};

use image::{DynamicImage, RgbImage};
use moxcms::{
    Chromaticity, CicpColorPrimaries, CicpProfile, ColorPrimaries, ColorProfile, DataColorSpace,
    Layout, MatrixCoefficients, TransferCharacteristics, Transform16BitExecutor,
    Transform8BitExecutor, TransformExecutor, TransformOptions, XyY,
};
use sha2::{Digest, Sha256};

use super::png_chunks;

/// The colour space of decoded pixels, as the ICC profile that describes it. `None` is
/// sRGB (no description at all, as on the web, counts as sRGB).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceProfile(Option<Arc<[u8]>>);

/// Profiles larger than this are ignored (real ones are a few KiB; LUT-based ones up to
/// a few hundred).
const MAX_PROFILE_BYTES: usize = 4 << 20;

impl SourceProfile {
    /// sRGB: nothing to convert.
    pub fn srgb() -> Self {
        SourceProfile(None)
    }

    /// An embedded ICC profile.
    pub fn icc(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() || bytes.len() > MAX_PROFILE_BYTES {
            return SourceProfile(None);
        }
        SourceProfile(Some(bytes.into()))
    }

    /// A PNG's colour, by the PNG specification's precedence: `cICP`, then `iCCP` (read
    /// by the decoder, passed in), then `sRGB`, then `gAMA` with `cHRM` (or with the sRGB
    /// primaries when `cHRM` is missing, as browsers do).
    pub fn png(bytes: &[u8], icc: Option<Vec<u8>>) -> Self {
        let chunks = png_chunks::colour_chunks(bytes);
        if let Some(profile) = chunks.cicp.and_then(from_cicp) {
            return profile;
        }
        if let Some(icc) = icc {
            return SourceProfile::icc(icc);
        }
        if chunks.srgb {
            return SourceProfile::srgb();
        }
        match chunks.gamma {
            Some(gamma) => from_gamma_and_primaries(gamma, chunks.chromaticities),
            None => SourceProfile::srgb(),
        }
    }

    /// The ICC bytes, for outputs that keep the source's profile (`color=keep`).
    pub fn bytes(&self) -> Option<&[u8]> {
        self.0.as_deref()
    }

    pub fn is_srgb(&self) -> bool {
        self.0.is_none()
    }
}

/// The pixels of `img` converted from `profile` to sRGB, in 8 or 16 bits per channel
/// (16-bit sources are converted before they are reduced to 8 bits: linear or wide-gamut
/// samples would band otherwise). Unchanged when the profile is sRGB, unreadable, or does
/// not fit the pixels; float images are left to the caller.
pub fn to_srgb(img: DynamicImage, profile: &SourceProfile) -> DynamicImage {
    use DynamicImage as D;
    let Some(icc) = profile.bytes() else {
        return img;
    };
    let layout = match &img {
        D::ImageRgb8(_) | D::ImageRgb16(_) => Layout::Rgb,
        D::ImageRgba8(_) | D::ImageRgba16(_) => Layout::Rgba,
        D::ImageLuma8(_) | D::ImageLuma16(_) => Layout::Gray,
        D::ImageLumaA8(_) | D::ImageLumaA16(_) => Layout::GrayAlpha,
        _ => return img,
    };
    let Some(eight) = transform_for(icc, layout) else {
        return img;
    };
    let mut img = img;
    let converted = match &mut img {
        D::ImageRgb8(buf) => convert_in_place(&*eight, buf),
        D::ImageRgba8(buf) => convert_in_place(&*eight, buf),
        D::ImageLuma8(buf) => convert_in_place(&*eight, buf),
        D::ImageLumaA8(buf) => convert_in_place(&*eight, buf),
        wide => match transform16_for(icc, layout) {
            Some(sixteen) => match wide {
                D::ImageRgb16(buf) => convert_in_place(&*sixteen, buf),
                D::ImageRgba16(buf) => convert_in_place(&*sixteen, buf),
                D::ImageLuma16(buf) => convert_in_place(&*sixteen, buf),
                D::ImageLumaA16(buf) => convert_in_place(&*sixteen, buf),
                _ => Ok(()),
            },
            None => Ok(()),
        },
    };
    if let Err(e) = converted {
        tracing::debug!(error = %e, "colour conversion failed; pixels kept as they are");
    }
    img
}

/// Whether `icc` is a CMYK profile (a CMYK JPEG's pixels then go through it).
pub fn is_cmyk(icc: &[u8]) -> bool {
    ColorProfile::new_from_slice(icc).is_ok_and(|p| p.color_space == DataColorSpace::Cmyk)
}

/// CMYK inks (0 = no ink, four bytes a pixel) converted to sRGB through a CMYK profile;
/// `None` when the profile cannot be used.
pub fn cmyk_to_srgb(width: u32, height: u32, inks: &[u8], icc: &[u8]) -> Option<RgbImage> {
    let key: Key = (Sha256::digest(icc).into(), CMYK_KEY);
    let transform = TRANSFORMS
        .get_or_insert_with(&key, || {
            let source = ColorProfile::new_from_slice(icc).ok();
            let transform = source
                .filter(|p| p.color_space == DataColorSpace::Cmyk)
                .and_then(|p| {
                    // moxcms takes CMYK as a four-channel layout.
                    p.create_transform_8bit(
                        Layout::Rgba,
                        &ColorProfile::new_srgb(),
                        Layout::Rgb,
                        TransformOptions::default(),
                    )
                    .map_err(|e| tracing::debug!(error = %e, "CMYK profile unusable"))
                    .ok()
                });
            Ok::<_, ()>(transform)
        })
        .ok()
        .flatten()?;
    let mut rgb = vec![0u8; inks.len() / 4 * 3];
    for (src, dst) in inks.chunks(4 * 65536).zip(rgb.chunks_mut(3 * 65536)) {
        transform.transform(src, dst).ok()?;
    }
    RgbImage::from_raw(width, height, rgb)
}

/// The cache key's layout byte for CMYK → RGB transforms.
const CMYK_KEY: u8 = 255;

/// moxcms transforms from one buffer into another; the image is converted through a
/// bounded scratch buffer so it needs no second full-size one.
fn convert_in_place<V: Copy + Default>(
    transform: &(dyn TransformExecutor<V> + Send + Sync),
    pixels: &mut [V],
) -> Result<(), moxcms::CmsError> {
    const CHUNK: usize = 64 * 1024 * 12; // whole pixels for 1–4 channels
    let mut scratch = vec![V::default(); CHUNK.min(pixels.len())];
    for chunk in pixels.chunks_mut(CHUNK) {
        let out = &mut scratch[..chunk.len()];
        transform.transform(chunk, out)?;
        chunk.copy_from_slice(out);
    }
    Ok(())
}

type Key = ([u8; 32], u8);
type Cache<T> = LazyLock<quick_cache::sync::Cache<Key, Option<Arc<T>>>>;

/// Transforms by (profile digest, layout); `None` remembers "treat as sRGB" (an sRGB
/// profile, or one moxcms cannot use) so neither is worked out twice.
static TRANSFORMS: Cache<Transform8BitExecutor> =
    LazyLock::new(|| quick_cache::sync::Cache::new(256));
static TRANSFORMS_16: Cache<Transform16BitExecutor> =
    LazyLock::new(|| quick_cache::sync::Cache::new(64));

fn transform_for(icc: &[u8], layout: Layout) -> Option<Arc<Transform8BitExecutor>> {
    let key: Key = (Sha256::digest(icc).into(), layout as u8);
    TRANSFORMS
        .get_or_insert_with(&key, || {
            let transform = profiles(icc, layout).and_then(|(source, target)| {
                source
                    .create_transform_8bit(layout, &target, layout, TransformOptions::default())
                    .map_err(|e| tracing::debug!(error = %e, "ICC profile does not fit the pixels"))
                    .ok()
            });
            Ok::<_, ()>(transform.filter(|t| !is_identity(&**t, layout)))
        })
        .ok()
        .flatten()
}

/// The 16-bit transform, for a profile the 8-bit one found worth converting.
fn transform16_for(icc: &[u8], layout: Layout) -> Option<Arc<Transform16BitExecutor>> {
    let key: Key = (Sha256::digest(icc).into(), layout as u8);
    TRANSFORMS_16
        .get_or_insert_with(&key, || {
            let transform = profiles(icc, layout).and_then(|(source, target)| {
                source
                    .create_transform_16bit(layout, &target, layout, TransformOptions::default())
                    .ok()
            });
            Ok::<_, ()>(transform)
        })
        .ok()
        .flatten()
}

/// The source profile and the sRGB target for `layout`.
fn profiles(icc: &[u8], layout: Layout) -> Option<(ColorProfile, ColorProfile)> {
    let source = ColorProfile::new_from_slice(icc)
        .map_err(|e| tracing::debug!(error = %e, "unreadable ICC profile ignored"))
        .ok()?;
    let target = match layout {
        Layout::Gray | Layout::GrayAlpha => srgb_gray(),
        _ => ColorProfile::new_srgb(),
    };
    Some((source, target))
}

/// Gray with the sRGB tone curve: what an untagged gray image means on the web.
fn srgb_gray() -> ColorProfile {
    let mut gray = ColorProfile::new_gray_with_gamma(2.2);
    gray.gray_trc = ColorProfile::new_srgb().red_trc;
    gray
}

/// True when the transform leaves every probed colour within one level: the profile is
/// sRGB in all but name (or is named sRGB), and converting would only cost time.
fn is_identity(transform: &Transform8BitExecutor, layout: Layout) -> bool {
    let channels = match layout {
        Layout::Rgb => 3,
        Layout::Rgba => 4,
        Layout::Gray => 1,
        Layout::GrayAlpha => 2,
        _ => return false,
    };
    // Primaries, secondaries, grays and mixes at every 15th level.
    let mut probe: Vec<u8> = Vec::new();
    for v in (0..=255u8).step_by(15) {
        for rgb in [
            [v, 0, 0],
            [0, v, 0],
            [0, 0, v],
            [v, v, 0],
            [v, 0, v],
            [0, v, v],
            [v, v, v],
            [v, 255 - v, v / 2],
        ] {
            let pixel = [rgb[0], rgb[1], rgb[2], 255];
            match channels {
                1 => probe.push(rgb[0]),
                2 => probe.extend_from_slice(&[rgb[0], 255]),
                n => probe.extend_from_slice(&pixel[..n]),
            }
        }
    }
    let mut out = vec![0u8; probe.len()];
    transform.transform(&probe, &mut out).is_ok()
        && probe.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// A PNG `cICP` (or AVIF `nclx`) description as a profile; `None` when it names
/// something moxcms has no curve or primaries for (HDR transfers, say), in which case the
/// pixels are taken as sRGB.
pub fn from_cicp([primaries, transfer, matrix, full_range]: [u8; 4]) -> Option<SourceProfile> {
    let cicp = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(primaries).ok()?,
        transfer_characteristics: TransferCharacteristics::try_from(transfer).ok()?,
        matrix_coefficients: MatrixCoefficients::try_from(matrix).ok()?,
        full_range: full_range != 0,
    };
    let profile = ColorProfile::new_from_cicp(cicp);
    // moxcms leaves the colorants or curves unset for what it cannot describe.
    let usable = profile.red_trc.is_some() && profile.red_colorant.y > 0.0;
    usable.then(|| encoded(&profile)).flatten()
}

/// PNG `gAMA` (the encoding exponent, e.g. 1/2.2) with `cHRM` chromaticities (white,
/// red, green, blue as x, y pairs) or the sRGB primaries.
fn from_gamma_and_primaries(gamma: f64, chromaticities: Option<[f64; 8]>) -> SourceProfile {
    // 1/2.2 is how PNG writers spell "sRGB" when they write no `sRGB` chunk (the PNG
    // specification recommends it beside one); with the sRGB primaries it means sRGB.
    let srgb_gamma = (gamma * 2.2 - 1.0).abs() < 0.02 && chromaticities.is_none();
    if srgb_gamma || !(0.01..=10.0).contains(&gamma) {
        return SourceProfile::srgb();
    }
    let mut profile = ColorProfile::new_srgb();
    profile.cicp = None;
    profile.description = None;
    if let Some([wx, wy, rx, ry, gx, gy, bx, by]) = chromaticities {
        if [wy, ry, gy, by].iter().any(|y| *y <= 0.0) {
            return SourceProfile::srgb();
        }
        let xy = |x: f64, y: f64| Chromaticity {
            x: x as f32,
            y: y as f32,
        };
        profile.update_rgb_colorimetry(
            XyY {
                x: wx,
                y: wy,
                yb: 1.0,
            },
            ColorPrimaries {
                red: xy(rx, ry),
                green: xy(gx, gy),
                blue: xy(bx, by),
            },
        );
    }
    let curve = moxcms::curve_from_gamma((1.0 / gamma) as f32);
    profile.red_trc = Some(curve.clone());
    profile.green_trc = Some(curve.clone());
    profile.blue_trc = Some(curve);
    encoded(&profile).unwrap_or_default()
}

fn encoded(profile: &ColorProfile) -> Option<SourceProfile> {
    profile.encode().ok().map(SourceProfile::icc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn adobe_rgb() -> Vec<u8> {
        ColorProfile::new_adobe_rgb().encode().unwrap()
    }

    #[test]
    fn an_srgb_profile_is_not_converted() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        assert!(transform_for(&srgb, Layout::Rgb).is_none());
        assert!(transform_for(&adobe_rgb(), Layout::Rgb).is_some());
    }

    #[test]
    fn adobe_rgb_green_becomes_a_more_saturated_srgb_green_clipped() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, Rgb([0, 255, 0])));
        let out = to_srgb(img, &SourceProfile::icc(adobe_rgb())).to_rgb8();
        // Adobe RGB's green lies outside sRGB: it clips to full green with no red.
        let p = out.get_pixel(2, 1);
        assert!(p[0] == 0 && p[1] == 255 && p[2] < 80, "{p:?}");
    }

    #[test]
    fn garbage_and_mismatched_profiles_leave_pixels_alone() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([10, 200, 30])));
        let same = to_srgb(img.clone(), &SourceProfile::icc(vec![1, 2, 3, 4]));
        assert_eq!(same.to_rgb8(), img.to_rgb8());
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([7])));
        let same = to_srgb(gray.clone(), &SourceProfile::icc(adobe_rgb()));
        assert_eq!(same.to_luma8(), gray.to_luma8());
    }

    #[test]
    fn png_gamma_alone_darkens_or_lightens_midtones() {
        // gAMA 1/1.0 (linear pixels): a mid value 128 is much lighter in sRGB.
        let linear = from_gamma_and_primaries(1.0, None);
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([128, 128, 128])));
        let out = to_srgb(img, &linear).to_rgb8();
        assert!(out.get_pixel(0, 0)[0] > 170, "{:?}", out.get_pixel(0, 0));
        // gAMA 1/2.2 without cHRM is how writers say sRGB.
        assert!(from_gamma_and_primaries(0.45455, None).is_srgb());
    }

    #[test]
    fn cicp_srgb_is_srgb_and_cicp_p3_converts() {
        let srgb = from_cicp([1, 13, 0, 1]).unwrap();
        assert!(transform_for(srgb.bytes().unwrap(), Layout::Rgb).is_none());
        let p3 = from_cicp([12, 13, 0, 1]).unwrap();
        assert!(transform_for(p3.bytes().unwrap(), Layout::Rgb).is_some());
        assert!(from_cicp([250, 13, 0, 1]).is_none());
    }
}

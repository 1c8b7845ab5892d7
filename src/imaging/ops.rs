//! Applying a [`Spec`] to an upright image, always in this order:
//! crop → resize → rotate/flip → filters (blur, sharpen, gray, brightness, contrast) → mask.
//! (Orientation comes before, in decode; alpha flattening after, in encode.)

use fast_image_resize as fir;
use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};

use super::spec::{Crop, Fit, Flip, Gravity, Mask, Spec};
use super::{colour, smart};
use super::{Decoded, ImagingError};

/// Apply every transform of `spec`, in the documented order.
pub fn apply(decoded: Decoded, spec: &Spec) -> Result<DynamicImage, ImagingError> {
    let mut profile = decoded.profile;
    let mut img = decoded.image;
    if !matches!(
        img.color().bytes_per_pixel() / img.color().channel_count(),
        1
    ) {
        // Wider samples are converted before they are cut to 8 bits (see `colour`).
        img = colour::to_srgb(img, &profile);
        profile = Default::default();
    }
    let mut img = to_8bit(img);
    // Sizes are planned on the full-resolution upright image, whatever the decoder shrank.
    let mut full_size = decoded.full_size;
    if let Some(c) = spec.crop {
        img = crop(&img, c, spec.gravity)?;
        full_size = img.dimensions(); // crops are only made on full-size decodes
    }
    // Colour is converted once, on whichever side of the resize has fewer pixels, and
    // before the filters and masks, which work in the output's (sRGB) values.
    let enlarging = plan_resize(full_size.0, full_size.1, spec).is_some_and(|plan| {
        u64::from(plan.width) * u64::from(plan.height)
            > u64::from(img.width()) * u64::from(img.height())
    });
    if enlarging {
        img = colour::to_srgb(img, &profile);
    }
    img = resize_for(img, spec, full_size)?;
    if !enlarging {
        img = colour::to_srgb(img, &profile);
    }
    img = match spec.rotate {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => img,
    };
    img = match spec.flip {
        Some(Flip::Horizontal) => img.fliph(),
        Some(Flip::Vertical) => img.flipv(),
        Some(Flip::Both) => img.rotate180(),
        None => img,
    };
    if let Some(sigma) = spec.blur {
        img = blur(&img, sigma);
    }
    if let Some(sigma) = spec.sharpen {
        img = img.unsharpen(sigma, 1);
    }
    if spec.gray {
        img = img.grayscale();
    }
    if spec.brightness != 0 {
        img = img.brighten((spec.brightness as f32 * 2.55).round() as i32);
    }
    if spec.contrast != 0 {
        img = img.adjust_contrast(spec.contrast as f32);
    }
    if let Some(mask) = spec.mask {
        img = DynamicImage::ImageRgba8(apply_mask(img.into_rgba8(), mask));
    }
    Ok(img)
}

/// Below this sigma the box-blur approximation cannot tell sigmas apart (its boxes are
/// whole pixels: every sigma under ~1.5 gave the same result), while an exact Gaussian
/// kernel is still only a few taps wide.
const EXACT_BLUR_BELOW: f32 = 3.0;

/// Gaussian blur: exact for small sigmas, the three-box approximation (linear time
/// whatever the sigma) for larger ones, where the two agree closely.
fn blur(img: &DynamicImage, sigma: f32) -> DynamicImage {
    if sigma < EXACT_BLUR_BELOW {
        img.blur(sigma)
    } else {
        img.fast_blur(sigma)
    }
}

/// Work in 8 bits per channel: every output is 8-bit, and the SIMD resizer is fastest there.
fn to_8bit(image: DynamicImage) -> DynamicImage {
    use DynamicImage as D;
    match image {
        D::ImageLuma8(_) | D::ImageLumaA8(_) | D::ImageRgb8(_) | D::ImageRgba8(_) => image,
        D::ImageLuma16(_) => D::ImageLuma8(image.to_luma8()),
        D::ImageLumaA16(_) => D::ImageLumaA8(image.to_luma_alpha8()),
        other if other.color().has_alpha() => D::ImageRgba8(other.to_rgba8()),
        other => D::ImageRgb8(other.to_rgb8()),
    }
}

fn crop(img: &DynamicImage, c: Crop, gravity: Gravity) -> Result<DynamicImage, ImagingError> {
    let (w, h) = img.dimensions();
    let c = if c.anchored {
        place(img, c, gravity)
    } else {
        c
    };
    if c.x >= w || c.y >= h {
        return Err(ImagingError::BadSpec(format!(
            "transform `crop` starts at {}:{}, outside the {w}x{h} image",
            c.x, c.y
        )));
    }
    let width = c.width.min(w - c.x);
    let height = c.height.min(h - c.y);
    Ok(img.crop_imm(c.x, c.y, width, height))
}

/// Position a `w:h` crop by gravity.
fn place(img: &DynamicImage, c: Crop, gravity: Gravity) -> Crop {
    let (w, h) = img.dimensions();
    let (cw, ch) = (c.width.min(w), c.height.min(h));
    let (x, y) = if gravity == Gravity::Smart {
        smart::best_window(img, f64::from(cw), f64::from(ch))
    } else {
        let (fx, fy) = gravity.anchor();
        (f64::from(w - cw) * fx, f64::from(h - ch) * fy)
    };
    Crop {
        x: x.round() as u32,
        y: y.round() as u32,
        width: cw,
        height: ch,
        anchored: false,
    }
}

/// The output box for a source of `sw`×`sh` under the spec's size keys, plus the source
/// region (x, y, w, h) to sample from, or `None` when no resize is needed.
pub(crate) fn plan_resize(sw: u32, sh: u32, spec: &Spec) -> Option<ResizePlan> {
    let (sw_f, sh_f) = (f64::from(sw), f64::from(sh));
    let full = (0.0, 0.0, sw_f, sh_f);
    let clamp_up = |s: f64| if spec.enlarge { s } else { s.min(1.0) };
    let (dw, dh, region) = match (spec.width, spec.height) {
        (None, None) => return None,
        (Some(w), None) => {
            let s = clamp_up(f64::from(w) / sw_f);
            (sw_f * s, sh_f * s, full)
        }
        (None, Some(h)) => {
            let s = clamp_up(f64::from(h) / sh_f);
            (sw_f * s, sh_f * s, full)
        }
        (Some(w), Some(h)) => {
            let (w, h) = (f64::from(w), f64::from(h));
            match spec.fit {
                Fit::Contain => {
                    let s = clamp_up((w / sw_f).min(h / sh_f));
                    (sw_f * s, sh_f * s, full)
                }
                Fit::Fill if spec.enlarge => (w, h, full),
                Fit::Fill => (w.min(sw_f), h.min(sh_f), full),
                Fit::Cover => {
                    // Cut the largest centred region with the box's aspect ratio, then scale
                    // it to the box — or, without `enlarge`, never beyond the source pixels.
                    let s = (w / sw_f).max(h / sh_f);
                    let (rw, rh) = (w / s, h / s);
                    let (fx, fy) = spec.gravity.anchor();
                    let region = ((sw_f - rw) * fx, (sh_f - rh) * fy, rw, rh);
                    let out = clamp_up(s);
                    (rw * out, rh * out, region)
                }
            }
        }
    };
    let width = (dw.round() as u32).max(1);
    let height = (dh.round() as u32).max(1);
    if (width, height) == (sw, sh) && region == full {
        return None;
    }
    Some(ResizePlan {
        width,
        height,
        region,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ResizePlan {
    pub width: u32,
    pub height: u32,
    /// Source region (left, top, width, height), fractional for exact centring.
    pub region: (f64, f64, f64, f64),
}

fn resize_for(
    img: DynamicImage,
    spec: &Spec,
    (full_w, full_h): (u32, u32),
) -> Result<DynamicImage, ImagingError> {
    let Some(mut plan) = plan_resize(full_w, full_h, spec) else {
        return Ok(img);
    };
    check_enlargement(&plan, (full_w, full_h))?;
    // Map the source region from full-size coordinates onto the (maybe shrunk) pixels.
    let sx = f64::from(img.width()) / f64::from(full_w);
    let sy = f64::from(img.height()) / f64::from(full_h);
    let (left, top, width, height) = plan.region;
    let (width, height) = (width * sx, height * sy);
    let (left, top) = if spec.gravity == Gravity::Smart && spec.fit == Fit::Cover {
        smart::best_window(&img, width, height)
    } else {
        (left * sx, top * sy)
    };
    plan.region = inside((left, top, width, height), img.dimensions());
    resize(&img, plan)
}

/// A region mapped onto decoded pixels, kept inside them. Regions are planned on the
/// full-size image, and a shrunk decode is the full size divided by its DCT scale and
/// rounded up (libjpeg's rule), so the mapped edges can land a rounding error past the
/// last pixel, which the resizer refuses ("crop box out of the image boundaries").
fn inside(
    (left, top, width, height): (f64, f64, f64, f64),
    (w, h): (u32, u32),
) -> (f64, f64, f64, f64) {
    let (w, h) = (f64::from(w), f64::from(h));
    let left = left.clamp(0.0, (w - 1.0).max(0.0));
    let top = top.clamp(0.0, (h - 1.0).max(0.0));
    (left, top, width.min(w - left), height.min(h - top))
}

/// The largest side an enlargement may produce: the `w`/`h` range. One key alone keeps
/// the aspect ratio, so the other side is derived and could otherwise be anything
/// (`w=8192&enlarge=1` on a 1×5000 image would be 8192×40960000).
pub const MAX_ENLARGED_SIDE: u32 = 8192;

fn check_enlargement(
    plan: &ResizePlan,
    (source_w, source_h): (u32, u32),
) -> Result<(), ImagingError> {
    let too_big = |out: u32, source: u32| out > source && out > MAX_ENLARGED_SIDE;
    if too_big(plan.width, source_w) || too_big(plan.height, source_h) {
        return Err(ImagingError::BadSpec(format!(
            "transform `enlarge`: the {source_w}x{source_h} image would become {}x{}; \
             enlarging goes up to {MAX_ENLARGED_SIDE} px a side",
            plan.width, plan.height
        )));
    }
    Ok(())
}

pub(crate) fn resize(img: &DynamicImage, plan: ResizePlan) -> Result<DynamicImage, ImagingError> {
    let mut dst = DynamicImage::new(plan.width, plan.height, img.color());
    let (left, top, width, height) = plan.region;
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3))
        .crop(left, top, width, height);
    fir::Resizer::new()
        .resize(img, &mut dst, &options)
        .map_err(|e| ImagingError::Encode(format!("resize failed: {e}")))?;
    Ok(dst)
}

/// Make everything outside the mask transparent, with a one-pixel anti-aliased edge.
fn apply_mask(mut img: RgbaImage, mask: Mask) -> RgbaImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let radius = match mask {
        Mask::Circle => w.min(h) / 2.0,
        Mask::Rounded => (w.min(h) * 0.1).max(1.0),
    };
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (px_x, px_y) = (x as f32 + 0.5, y as f32 + 0.5);
        // Signed distance from the pixel centre to the shape's edge (negative = inside).
        let distance = match mask {
            Mask::Circle => ((px_x - cx).powi(2) + (px_y - cy).powi(2)).sqrt() - radius,
            Mask::Rounded => {
                let qx = ((px_x - cx).abs() - (cx - radius)).max(0.0);
                let qy = ((px_y - cy).abs() - (cy - radius)).max(0.0);
                (qx * qx + qy * qy).sqrt() - radius
            }
        };
        let coverage = (0.5 - distance).clamp(0.0, 1.0);
        let Rgba([r, g, b, a]) = *px;
        *px = Rgba([r, g, b, (f32::from(a) * coverage).round() as u8]);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1001×333 decoded at 1/2 is 501×167 (sizes round up): the full region mapped onto
    /// it ends a rounding error past the last pixel. It must still resize.
    #[test]
    fn a_shrunk_decode_with_rounded_up_sides_resizes() {
        for ((fw, fh), d, spec) in [
            ((1001u32, 333u32), 2u32, "w_300"),
            ((4608, 1976), 8, "w_300,h_300,fit_cover,gravity_smart"),
            ((333, 1001), 2, "h_300"),
            ((17, 3000), 4, "h_577"),
        ] {
            let spec = Spec::parse_path(spec).unwrap();
            let shrunk = DynamicImage::new_rgb8(fw.div_ceil(d), fh.div_ceil(d));
            let out = resize_for(shrunk, &spec, (fw, fh)).unwrap();
            let plan = plan_resize(fw, fh, &spec).unwrap();
            assert_eq!(out.dimensions(), (plan.width, plan.height));
        }
    }

    #[test]
    fn regions_are_kept_inside_the_pixels() {
        assert_eq!(
            inside((0.0, 0.0, 501.0000001, 167.0), (501, 167)),
            (0.0, 0.0, 501.0, 167.0)
        );
        assert_eq!(inside((-0.1, 2.0, 10.0, 5.0), (8, 6)), (0.0, 2.0, 8.0, 4.0));
        assert_eq!(inside((9.0, 0.0, 1.0, 1.0), (8, 6)).0, 7.0);
    }

    fn spec(s: &str) -> Spec {
        Spec::parse_path(s).unwrap()
    }

    fn dims(plan: Option<ResizePlan>) -> Option<(u32, u32)> {
        plan.map(|p| (p.width, p.height))
    }

    #[test]
    fn contain_keeps_aspect_and_never_upscales_by_default() {
        assert_eq!(
            dims(plan_resize(4000, 3000, &spec("w_300"))),
            Some((300, 225))
        );
        assert_eq!(
            dims(plan_resize(4000, 3000, &spec("h_300"))),
            Some((400, 300))
        );
        assert_eq!(
            dims(plan_resize(4000, 3000, &spec("w_300,h_300"))),
            Some((300, 225))
        );
        assert_eq!(dims(plan_resize(100, 50, &spec("w_300"))), None);
        assert_eq!(
            dims(plan_resize(100, 50, &spec("w_300,enlarge_1"))),
            Some((300, 150))
        );
    }

    #[test]
    fn cover_gives_the_exact_box() {
        let p = plan_resize(4000, 3000, &spec("w_300,h_300,fit_cover")).unwrap();
        assert_eq!((p.width, p.height), (300, 300));
        assert_eq!(p.region, (500.0, 0.0, 3000.0, 3000.0));
    }

    #[test]
    fn enlarging_stops_at_the_side_limit() {
        let tall = || Decoded {
            format: crate::imaging::Format::Png,
            image: DynamicImage::new_rgb8(1, 5000),
            lossless: true,
            full_size: (1, 5000),
            profile: Default::default(),
        };
        for bad in ["w_8192,enlarge_1", "w_16,enlarge_1", "w_2,enlarge_1"] {
            let err = apply(tall(), &spec(bad)).unwrap_err();
            assert!(matches!(err, ImagingError::BadSpec(_)), "{bad}: {err:?}");
        }
        // Up to the limit, and any downscale, are fine.
        let out = apply(tall(), &spec("h_8192,enlarge_1")).unwrap();
        assert_eq!(out.dimensions(), (2, 8192));
        let out = apply(tall(), &spec("w_16")).unwrap();
        assert_eq!(out.dimensions(), (1, 5000));
    }

    #[test]
    fn small_blurs_differ_and_keep_edges_sharper() {
        // A hard black/white edge down the middle of a 40x10 image.
        let edge = DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 10, |x, _| {
            image::Luma([if x < 20 { 0 } else { 255 }])
        }));
        let row = |sigma: f32| -> Vec<u8> {
            let out = blur(&edge, sigma).to_luma8();
            (10..30).map(|x| out.get_pixel(x, 5)[0]).collect()
        };
        let (tiny, small, one) = (row(0.1), row(0.5), row(1.0));
        assert_ne!(tiny, small);
        assert_ne!(small, one);
        // sigma 0.1 leaves the edge as it was, two pixels from it.
        assert_eq!(tiny[8], 0);
        assert_eq!(tiny[11], 255);
    }

    #[test]
    fn fill_stretches() {
        assert_eq!(
            dims(plan_resize(400, 300, &spec("w_100,h_100,fit_fill"))),
            Some((100, 100))
        );
    }

    #[test]
    fn circle_mask_clears_corners_and_keeps_centre() {
        let img = RgbaImage::from_pixel(40, 40, Rgba([255, 0, 0, 255]));
        let out = apply_mask(img, Mask::Circle);
        assert_eq!(out.get_pixel(0, 0)[3], 0);
        assert_eq!(out.get_pixel(20, 20)[3], 255);
    }
}

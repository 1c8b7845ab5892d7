//! Watermarks: another image drawn over the output, scaled to a fraction of its width,
//! placed at a compass point with a small margin, at a given opacity.

use fast_image_resize as fir;
use image::{imageops, DynamicImage, GenericImageView, RgbaImage};

use super::smart::EdgeEnergy;
use super::spec::{Gravity, Spec};
use super::ImagingError;

pub const DEFAULT_SCALE: f32 = 0.25;
const DEFAULT_POSITION: Gravity = Gravity::SouthEast;
/// Distance from the edges, as a fraction of the output's shorter side.
const MARGIN: f64 = 0.02;

/// Draw `mark` over `base` as the spec's `wm_*` keys say.
pub fn overlay(
    base: DynamicImage,
    mark: &DynamicImage,
    spec: &Spec,
) -> Result<DynamicImage, ImagingError> {
    let (bw, bh) = base.dimensions();
    let (mw, mh) = mark.dimensions();
    let scale = f64::from(spec.wm_scale.unwrap_or(DEFAULT_SCALE));
    // Width as asked, but never taller than the output.
    let mut tw = (f64::from(bw) * scale).round().max(1.0);
    let mut th = (tw * f64::from(mh) / f64::from(mw)).round().max(1.0);
    if th > f64::from(bh) {
        tw = (tw * f64::from(bh) / th).round().max(1.0);
        th = f64::from(bh);
    }
    let (tw, th) = (tw as u32, th as u32);
    let mut sized = DynamicImage::new_rgba8(tw, th);
    let rgba_mark = DynamicImage::ImageRgba8(mark.to_rgba8());
    fir::Resizer::new()
        .resize(&rgba_mark, &mut sized, &fir::ResizeOptions::new())
        .map_err(|e| ImagingError::Encode(format!("watermark resize failed: {e}")))?;
    let mut sized: RgbaImage = sized.into_rgba8();
    let opacity = spec.wm_opacity.unwrap_or(1.0).clamp(0.0, 1.0);
    if opacity < 1.0 {
        for px in sized.pixels_mut() {
            px[3] = (f32::from(px[3]) * opacity).round() as u8;
        }
    }
    let margin = (f64::from(bw.min(bh)) * MARGIN).round();
    let place = |position: Gravity| {
        let (fx, fy) = position.anchor();
        let x = margin + (f64::from(bw) - 2.0 * margin - f64::from(tw)).max(0.0) * fx;
        let y = margin + (f64::from(bh) - 2.0 * margin - f64::from(th)).max(0.0) * fy;
        (x, y)
    };
    let (x, y) = match spec.wm_pos.unwrap_or(DEFAULT_POSITION) {
        Gravity::Smart => quietest_place(&base, (f64::from(tw), f64::from(th)), place),
        position => place(position),
    };
    let had_alpha = base.color().has_alpha();
    let mut canvas = base.into_rgba8();
    imageops::overlay(&mut canvas, &sized, x.round() as i64, y.round() as i64);
    let out = DynamicImage::ImageRgba8(canvas);
    Ok(if had_alpha {
        out
    } else {
        DynamicImage::ImageRgb8(out.to_rgb8())
    })
}

/// `wm_pos=smart`: of the nine compass positions, the one whose area under the mark has
/// the least edge energy (ties: the default corner first, then the list's order).
fn quietest_place(
    base: &DynamicImage,
    (width, height): (f64, f64),
    place: impl Fn(Gravity) -> (f64, f64),
) -> (f64, f64) {
    let Some(energy) = EdgeEnergy::of(base) else {
        return place(DEFAULT_POSITION);
    };
    let candidates = [
        DEFAULT_POSITION,
        Gravity::SouthWest,
        Gravity::NorthEast,
        Gravity::NorthWest,
        Gravity::South,
        Gravity::North,
        Gravity::East,
        Gravity::West,
        Gravity::Center,
    ];
    let mut best = (place(DEFAULT_POSITION), u64::MAX);
    for position in candidates {
        let (x, y) = place(position);
        let score = energy.window(x, y, width, height);
        if score < best.1 {
            best = ((x, y), score);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_position_avoids_the_detail() {
        // White, with a fine checkerboard filling the bottom-right quarter (the default
        // corner): the mark goes to the next flat place in order, bottom left.
        let base = image::RgbImage::from_fn(400, 200, |x, y| {
            let busy = x >= 200 && y >= 100 && (x / 2 + y / 2) % 2 == 0;
            image::Rgb(if busy { [0, 0, 0] } else { [255, 255, 255] })
        });
        let mark =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, image::Rgba([255, 0, 0, 255])));
        let smart = Spec {
            wm_pos: Some(Gravity::Smart),
            ..Spec::default()
        };
        let out = overlay(DynamicImage::ImageRgb8(base), &mark, &smart)
            .unwrap()
            .to_rgb8();
        // 100x100 mark, 4 px margin: bottom left covers x 4..104, y 96..196.
        assert_eq!(out.get_pixel(10, 190).0, [255, 0, 0]);
        assert_ne!(out.get_pixel(390, 190).0, [255, 0, 0]);
        // On a flat image, smart is the default corner.
        let flat = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            400,
            200,
            image::Rgb([255, 255, 255]),
        ));
        let out = overlay(flat, &mark, &smart).unwrap().to_rgb8();
        assert_eq!(out.get_pixel(390, 190).0, [255, 0, 0]);
    }

    #[test]
    fn mark_lands_bottom_right_at_a_quarter_width() {
        let base = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            400,
            200,
            image::Rgb([255, 255, 255]),
        ));
        let mark =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, image::Rgba([255, 0, 0, 255])));
        let out = overlay(base, &mark, &Spec::default()).unwrap().to_rgb8();
        // 100x100 mark, 4 px margin: covers x 296..396, y 96..196.
        assert_eq!(out.get_pixel(390, 190).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(290, 190).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(390, 90).0, [255, 255, 255]);
        let half = Spec {
            wm_opacity: Some(0.5),
            wm_pos: Some(Gravity::NorthWest),
            ..Spec::default()
        };
        let base = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            400,
            200,
            image::Rgb([255, 255, 255]),
        ));
        let out = overlay(base, &mark, &half).unwrap().to_rgb8();
        let p = out.get_pixel(10, 10).0;
        assert!(p[0] == 255 && (120..=136).contains(&p[1]), "{p:?}");
    }
}

//! `gravity=smart`: place a cut where the picture has the most detail. Detail is edge
//! energy — the sum of absolute luminance differences to the right and below each pixel —
//! measured on a copy at most `SAMPLE_EDGE` pixels on its long side. Edges mark faces,
//! text and objects; flat sky, walls and blurred backgrounds have almost none. Ties go to
//! the window nearest the centre, so a featureless image is cut like `center`.
//! A watermark at `wm_pos=smart` goes the other way: to the compass position whose area
//! has the least detail, so it hides as little of the picture as it can.

use fast_image_resize as fir;
use image::{DynamicImage, GenericImageView};

const SAMPLE_EDGE: u32 = 96;

/// Top-left corner (in `img` pixels) of the `width`×`height` window with the most detail.
pub fn best_window(img: &DynamicImage, width: f64, height: f64) -> (f64, f64) {
    let (w, h) = img.dimensions();
    let centred = ((f64::from(w) - width) / 2.0, (f64::from(h) - height) / 2.0);
    let Some(energy) = EdgeEnergy::of(img) else {
        return centred;
    };
    let (sw, sh, scale) = (energy.width, energy.height, energy.scale);
    let win_w = ((width * scale).round() as usize).clamp(1, sw);
    let win_h = ((height * scale).round() as usize).clamp(1, sh);
    let (cx, cy) = ((sw - win_w) as f64 / 2.0, (sh - win_h) as f64 / 2.0);
    let mut best = (0usize, 0usize, 0u64, f64::MAX);
    for y in 0..=sh - win_h {
        for x in 0..=sw - win_w {
            let score = energy.sum(x, y, win_w, win_h);
            let distance = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
            if score > best.2 || (score == best.2 && distance < best.3) {
                best = (x, y, score, distance);
            }
        }
    }
    let left = (best.0 as f64 / scale).clamp(0.0, (f64::from(w) - width).max(0.0));
    let top = (best.1 as f64 / scale).clamp(0.0, (f64::from(h) - height).max(0.0));
    (left, top)
}

/// Edge energy of a small copy of an image, as a summed-area table: the total of any
/// window in O(1).
pub struct EdgeEnergy {
    table: Vec<u64>,
    width: usize,
    height: usize,
    /// Sample pixels per image pixel.
    scale: f64,
}

impl EdgeEnergy {
    pub fn of(img: &DynamicImage) -> Option<EdgeEnergy> {
        let (luma, sw, sh) = sample(img)?;
        let scale = f64::from(sw) / f64::from(img.width());
        let (sw, sh) = (sw as usize, sh as usize);
        let mut table = vec![0u64; (sw + 1) * (sh + 1)];
        for y in 0..sh {
            let mut row = 0u64;
            for x in 0..sw {
                let here = i32::from(luma[y * sw + x]);
                let right = if x + 1 < sw {
                    i32::from(luma[y * sw + x + 1])
                } else {
                    here
                };
                let below = if y + 1 < sh {
                    i32::from(luma[(y + 1) * sw + x])
                } else {
                    here
                };
                row += u64::from((here - right).unsigned_abs() + (here - below).unsigned_abs());
                table[(y + 1) * (sw + 1) + x + 1] = table[y * (sw + 1) + x + 1] + row;
            }
        }
        Some(EdgeEnergy {
            table,
            width: sw,
            height: sh,
            scale,
        })
    }

    /// Total over the `w`×`h` window at (`x`, `y`), in sample pixels.
    fn sum(&self, x: usize, y: usize, w: usize, h: usize) -> u64 {
        let at = |xx: usize, yy: usize| self.table[yy * (self.width + 1) + xx];
        at(x + w, y + h) + at(x, y) - at(x + w, y) - at(x, y + h)
    }

    /// Total over a window given in image pixels (clamped to the image).
    pub fn window(&self, left: f64, top: f64, width: f64, height: f64) -> u64 {
        let to_sample =
            |v: f64, limit: usize| ((v * self.scale).round().max(0.0) as usize).min(limit);
        let (x, y) = (to_sample(left, self.width), to_sample(top, self.height));
        let w = to_sample(width, self.width - x).max(usize::from(x < self.width));
        let h = to_sample(height, self.height - y).max(usize::from(y < self.height));
        self.sum(x, y, w, h)
    }
}

/// Luminance of a small copy of `img`.
fn sample(img: &DynamicImage) -> Option<(Vec<u8>, u32, u32)> {
    let (w, h) = img.dimensions();
    let scale = (f64::from(SAMPLE_EDGE) / f64::from(w.max(h))).min(1.0);
    let sw = ((f64::from(w) * scale).round() as u32).max(1);
    let sh = ((f64::from(h) * scale).round() as u32).max(1);
    // Shrink first, in the image's own pixel type: converting all 12 MP to another type
    // first would cost more than the whole search.
    let options =
        fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Box));
    let mut small = DynamicImage::new(sw, sh, img.color());
    if fir::Resizer::new()
        .resize(img, &mut small, &options)
        .is_err()
    {
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        small = DynamicImage::new_rgb8(sw, sh);
        fir::Resizer::new()
            .resize(&rgb, &mut small, &options)
            .ok()?;
    }
    let luma = small.to_luma8().into_raw();
    Some((luma, sw, sh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_detailed_corner_and_centres_flat_images() {
        // Flat grey with a checkerboard in the right quarter.
        let img = image::RgbImage::from_fn(400, 100, |x, y| {
            if x >= 300 && (x / 4 + y / 4) % 2 == 0 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([128, 128, 128])
            }
        });
        let (left, top) = best_window(&DynamicImage::ImageRgb8(img), 100.0, 100.0);
        assert!(left >= 290.0, "{left}");
        assert_eq!(top, 0.0);
        let flat =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(400, 100, image::Rgb([9, 9, 9])));
        let (left, _) = best_window(&flat, 100.0, 100.0);
        assert!((left - 150.0).abs() <= 5.0, "{left}");
    }
}

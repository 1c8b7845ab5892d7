//! BlurHash placeholders: a ~30-character string a client can paint as a blurred preview
//! while the image loads.

use fast_image_resize as fir;
use image::{DynamicImage, GenericImageView};

use super::ImagingError;

/// The hash is computed from a copy this small: BlurHash keeps only a few cosine
/// components, so more pixels cost time and change nothing visible.
const SAMPLE_EDGE: u32 = 64;

/// BlurHash of `img`, with 4 components along its long side and 3 along the short one.
pub fn blurhash(img: &DynamicImage) -> Result<String, ImagingError> {
    let (w, h) = img.dimensions();
    let scale = (f64::from(SAMPLE_EDGE) / f64::from(w.max(h))).min(1.0);
    let sw = ((f64::from(w) * scale).round() as u32).max(1);
    let sh = ((f64::from(h) * scale).round() as u32).max(1);
    let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
    let mut small = DynamicImage::new_rgba8(sw, sh);
    fir::Resizer::new()
        .resize(
            &rgba,
            &mut small,
            &fir::ResizeOptions::new()
                .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Box)),
        )
        .map_err(|e| ImagingError::Encode(format!("resize failed: {e}")))?;
    let (cx, cy) = if w >= h { (4, 3) } else { (3, 4) };
    blurhash::encode(cx, cy, sw, sh, small.as_bytes())
        .map_err(|e| ImagingError::Encode(format!("blurhash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_decodes_to_the_average_colour() {
        let red = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            300,
            200,
            image::Rgba([200, 30, 30, 255]),
        ));
        let hash = blurhash(&red).unwrap();
        assert_eq!(hash.len(), 4 + 2 * 4 * 3); // 1+1+4 header chars + 2 per AC component
        let pixels = blurhash::decode(&hash, 4, 4, 1.0).unwrap();
        let (r, g, b) = (pixels[0], pixels[1], pixels[2]);
        // AC components are quantised coarsely, so a flat image decodes near, not at, its colour.
        assert!(
            r.abs_diff(200) < 16 && g.abs_diff(30) < 16 && b.abs_diff(30) < 16,
            "{r} {g} {b}"
        );
    }
}

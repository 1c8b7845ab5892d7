//! Associated (premultiplied) alpha, as JPEG XL, AVIF and TIFF may store it, turned back
//! into the straight alpha the rest of the pipeline works in: colour divided by alpha.

use image::DynamicImage;

/// Divide colour by alpha in place (the last channel of each pixel), rounding to nearest;
/// fully clear and fully opaque pixels stay as they are. Images without alpha are left.
pub fn unpremultiply(image: &mut DynamicImage) {
    match image {
        DynamicImage::ImageRgba8(buffer) => undo(buffer, 4, 255, |v| v as u8),
        DynamicImage::ImageLumaA8(buffer) => undo(buffer, 2, 255, |v| v as u8),
        DynamicImage::ImageRgba16(buffer) => undo(buffer, 4, 65535, |v| v as u16),
        DynamicImage::ImageLumaA16(buffer) => undo(buffer, 2, 65535, |v| v as u16),
        _ => {}
    }
}

fn undo<T: Copy + Into<u32>>(samples: &mut [T], channels: usize, max: u32, back: fn(u32) -> T) {
    for px in samples.chunks_exact_mut(channels) {
        let (colour, alpha) = px.split_at_mut(channels - 1);
        let a: u32 = alpha[0].into();
        if a != 0 && a != max {
            for c in colour {
                *c = back((((*c).into() * max + a / 2) / a).min(max));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_divided_by_alpha_at_8_and_16_bits() {
        let mut img = DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(2, 1, vec![50, 25, 0, 128, 9, 9, 9, 0]).unwrap(),
        );
        unpremultiply(&mut img);
        assert_eq!(img.as_bytes(), [100, 50, 0, 128, 9, 9, 9, 0]);
        let mut wide = DynamicImage::ImageLumaA16(
            image::ImageBuffer::from_raw(1, 1, vec![16384u16, 32768]).unwrap(),
        );
        unpremultiply(&mut wide);
        assert_eq!(wide.as_luma_alpha16().unwrap().as_raw(), &[32768, 32768]);
    }
}

//! JPEG output through libjpeg-turbo (the `mozjpeg` crate, already linked for
//! shrink-on-load) with its baseline, libjpeg-v6-compatible settings: no trellis
//! quantisation, no progressive scans. A profile of cold 3 MP → 300 px renders showed the
//! `image` crate's pure-Rust JPEG encoder taking ~16% of the CPU; libjpeg's integer FDCT
//! and Huffman coder do the same work in a fraction of that.

use image::{GrayImage, RgbImage};
use mozjpeg::ColorSpace;

/// Encode 8-bit gray pixels; `None` if libjpeg reported an error (it unwinds out of the
/// C code, see Cargo.toml, and is caught here).
pub fn encode_gray(gray: &GrayImage, quality: u8, icc: Option<&[u8]>) -> Option<Vec<u8>> {
    compress(
        gray.as_raw(),
        (gray.width(), gray.height()),
        ColorSpace::JCS_GRAYSCALE,
        quality,
        icc,
    )
}

/// Encode 8-bit RGB pixels, with `icc` as their colour profile when given; `None` on a
/// libjpeg error.
pub fn encode_rgb(rgb: &RgbImage, quality: u8, icc: Option<&[u8]>) -> Option<Vec<u8>> {
    compress(
        rgb.as_raw(),
        (rgb.width(), rgb.height()),
        ColorSpace::JCS_RGB,
        quality,
        icc,
    )
}

fn compress(
    pixels: &[u8],
    (width, height): (u32, u32),
    space: ColorSpace,
    quality: u8,
    icc: Option<&[u8]>,
) -> Option<Vec<u8>> {
    std::panic::catch_unwind(|| {
        let mut c = mozjpeg::Compress::new(space);
        c.set_fastest_defaults();
        c.set_size(width as usize, height as usize);
        c.set_quality(f32::from(quality.clamp(1, 100)));
        // Optimal Huffman tables: a second pass over the coefficients for ~5-10% smaller
        // files, cheap next to the transform.
        c.set_optimize_coding(true);
        let mut started = c.start_compress(Vec::new()).ok()?;
        for segment in icc.map(icc_segments).unwrap_or_default() {
            started.write_marker(mozjpeg::Marker::APP(2), &segment);
        }
        started.write_scanlines(pixels).ok()?;
        started.finish().ok()
    })
    .ok()
    .flatten()
}

/// The profile as APP2 `ICC_PROFILE` segments, numbered from 1 as the ICC specification
/// (and libjpeg's reader, so every browser) requires; the `mozjpeg` crate's own writer
/// numbers them from 0, which readers reject.
fn icc_segments(icc: &[u8]) -> Vec<Vec<u8>> {
    const MAX_DATA: usize = 65533 - 14;
    let Ok(count) = u8::try_from(icc.len().div_ceil(MAX_DATA)) else {
        return Vec::new(); // over 16 MB: no JPEG can carry it; the pixels go without it
    };
    icc.chunks(MAX_DATA)
        .enumerate()
        .map(|(i, chunk)| {
            let mut segment = b"ICC_PROFILE\0".to_vec();
            segment.extend([i as u8 + 1, count]);
            segment.extend_from_slice(chunk);
            segment
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_and_gray_round_trip_through_an_independent_decoder() {
        let rgb = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 128]));
        let bytes = encode_rgb(&rgb, 90, None).expect("encode");
        let back = image::load_from_memory(&bytes).expect("decode").to_rgb8();
        assert_eq!(back.dimensions(), (64, 48));
        let diff: u64 = rgb
            .pixels()
            .zip(back.pixels())
            .map(|(a, b)| (0..3).map(|i| u64::from(a[i].abs_diff(b[i]))).sum::<u64>())
            .sum();
        assert!(
            diff / (64 * 48 * 3) < 6,
            "mean error {}",
            diff / (64 * 48 * 3)
        );

        let gray = GrayImage::from_fn(10, 7, |x, _| image::Luma([x as u8 * 20]));
        let bytes = encode_gray(&gray, 90, None).expect("encode gray");
        let back = image::load_from_memory(&bytes).expect("decode gray");
        assert_eq!(back.color(), image::ColorType::L8);
        assert_eq!((back.width(), back.height()), (10, 7));
    }

    #[test]
    fn lower_quality_makes_smaller_files() {
        let rgb = RgbImage::from_fn(128, 128, |x, y| {
            image::Rgb([(x * y) as u8, x as u8, y as u8])
        });
        assert!(
            encode_rgb(&rgb, 30, None).unwrap().len() < encode_rgb(&rgb, 95, None).unwrap().len()
        );
    }
}

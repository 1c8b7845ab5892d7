//! Shrink-on-load: a JPEG can be decoded at 1/2, 1/4 or 1/8 of its size by running a
//! reduced inverse DCT, which skips most of the decoding work. When the output needs far
//! fewer pixels than the source has (thumbnails, previews, ASCII art), this is the
//! biggest saving there is. Here is only the choice of scale; `jpeg_decode` decodes.

use super::ops::plan_resize;
use super::spec::Spec;

/// Largest DCT shrink divisor that still leaves at least as many pixels as the output
/// needs, or `None` when a full decode is needed (no resize, a crop, or a mild resize).
pub fn divisor_for(source_w: u32, source_h: u32, spec: &Spec) -> Option<u32> {
    if spec.crop.is_some() {
        return None; // crop coordinates are exact source pixels
    }
    let plan = plan_resize(source_w, source_h, spec)?;
    let (_, _, region_w, region_h) = plan.region;
    let needed = (f64::from(plan.width) / region_w).max(f64::from(plan.height) / region_h);
    [8u32, 4, 2]
        .into_iter()
        .find(|&d| 1.0 / f64::from(d) >= needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Spec {
        Spec::parse_path(s).unwrap()
    }

    #[test]
    fn divisor_keeps_at_least_the_output_resolution() {
        assert_eq!(divisor_for(4032, 3024, &spec("w_300")), Some(8));
        assert_eq!(divisor_for(4032, 3024, &spec("w_600")), Some(4));
        assert_eq!(divisor_for(4032, 3024, &spec("w_1500")), Some(2));
        assert_eq!(divisor_for(4032, 3024, &spec("w_2100")), None);
        assert_eq!(divisor_for(4032, 3024, &spec("")), None);
        assert_eq!(
            divisor_for(4032, 3024, &spec("crop_0:0:100:100,w_10")),
            None
        );
        // cover: the region is cut first, so the shrink follows the region, not the box.
        assert_eq!(
            divisor_for(4000, 1000, &spec("w_100,h_100,fit_cover")),
            Some(8)
        );
        assert_eq!(
            divisor_for(4000, 1000, &spec("w_400,h_400,fit_cover")),
            Some(2)
        );
    }

    /// The shrunk path must give the same picture as a full decode, up to resampling noise.
    #[test]
    fn shrunk_and_full_decodes_agree() {
        use crate::imaging::{apply, decode, decode_for, DecodeLimits};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test-images/photo-3mp-canon-exif6.jpg"
        );
        let bytes = std::fs::read(path).unwrap();
        let limits = DecodeLimits::for_pixels(64_000_000);
        let spec = spec("w_200,h_200,fit_cover");
        let shrunk = decode_for(&bytes, &limits, &spec).unwrap();
        assert!(
            shrunk.image.width() < shrunk.full_size.0,
            "took the shrink path"
        );
        let fast = apply(shrunk, &spec).unwrap().to_rgb8();
        let full = apply(decode(&bytes, &limits).unwrap(), &spec)
            .unwrap()
            .to_rgb8();
        assert_eq!(fast.dimensions(), (200, 200));
        assert_eq!(fast.dimensions(), full.dimensions());
        let diff: u64 = fast
            .as_raw()
            .iter()
            .zip(full.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / fast.as_raw().len() as f64;
        assert!(mean < 3.0, "mean difference {mean}");
    }

    /// Damaged entropy data or a broken header must come back as an error or a picture,
    /// never a crash of the process (libjpeg errors unwind out of C and are caught).
    #[test]
    fn damaged_jpegs_never_crash() {
        use crate::imaging::{decode_for, DecodeLimits};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test-images/jpeg-progressive.jpg"
        );
        let good = std::fs::read(path).unwrap();
        let limits = DecodeLimits::for_pixels(64_000_000);
        let small = spec("w_60");
        assert!(decode_for(&good, &limits, &small).is_ok());
        for cut in [2, 20, 200, good.len() / 2] {
            let _ = decode_for(&good[..cut], &limits, &small);
        }
        let mut flipped = good.clone();
        for i in (600..flipped.len() - 2).step_by(97) {
            flipped[i] ^= 0x5a;
        }
        let _ = decode_for(&flipped, &limits, &spec("w_30"));
        let mut header = good;
        header[3] ^= 0xff;
        header[40] = 0xff;
        let _ = decode_for(&header, &limits, &small);
    }
}

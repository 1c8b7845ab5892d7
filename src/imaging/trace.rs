//! Traced SVG: the image is clustered into regions of similar colour and each region's
//! outline is fitted with curves (vtracer / visioncortex), giving a true vector image —
//! a few hundred paths, never one rectangle per pixel.
//!
//! Tracing cost grows with the pixel count, so a large image is traced from a downscaled
//! copy; the SVG keeps the original `width`/`height` and a `viewBox` in traced
//! coordinates, so it still renders at the source size.

use std::fmt::Write as _;

use fast_image_resize as fir;
use image::{DynamicImage, GenericImageView, RgbaImage};
use vtracer::{ColorImage, ColorMode, Config, Hierarchical};

use super::ImagingError;

/// Outputs above this are retraced with coarser settings, then refused: a traced photo of
/// noise would otherwise produce a huge file no client wants.
pub const MAX_SVG_BYTES: usize = 8 << 20;

/// Validated options of one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// Colour precision 1..=8: significant bits per channel when clustering colours.
    pub colors: u8,
    /// 0..=100: how small a speckle is kept and how sharp a corner stays a corner.
    pub detail: u8,
    /// Trace from a copy downscaled to at most this many pixels.
    pub max_pixels: u64,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            colors: 6,
            detail: 50,
            max_pixels: 1_000_000,
        }
    }
}

impl TraceOptions {
    /// Check the user's options. Errors are `BadSpec` naming `colors` or `detail`.
    pub fn new(colors: Option<u8>, detail: Option<u8>) -> Result<Self, ImagingError> {
        let defaults = TraceOptions::default();
        let colors = colors.unwrap_or(defaults.colors);
        if !(1..=8).contains(&colors) {
            return Err(ImagingError::BadSpec(format!(
                "transform `colors` must be 1..=8, not {colors}"
            )));
        }
        let detail = detail.unwrap_or(defaults.detail);
        if detail > 100 {
            return Err(ImagingError::BadSpec(format!(
                "transform `detail` must be 0..=100, not {detail}"
            )));
        }
        Ok(TraceOptions {
            colors,
            detail,
            ..defaults
        })
    }

    /// vtracer settings for this detail level on a `width`×`height` trace. Parameters are
    /// interpolated so that detail 50 gives vtracer's own defaults (speckle 4 px, corner
    /// 60°, layer step 16); 0 is coarser and 100 finer.
    fn vtracer_config(&self, width: u32, height: u32) -> Config {
        let t = f64::from(self.detail.min(100)) / 100.0; // 0 coarse → 1 fine
                                                         // Smallest kept region, 16 → 4 → 1 px across — but never more than 1/64 of the
                                                         // short side, or an icon loses every feature to the speckle filter.
        let speckle = 16f64.powf(1.0 - t).min(f64::from(width.min(height)) / 64.0);
        // A turn sharper than this stays a corner. Capped below 90° at the coarse end so
        // rectangles (and the image's own edges) keep square corners instead of leaving
        // uncovered, rounded-off corners: 80° → 60° → 30°.
        let corner = if t <= 0.5 {
            80.0 - 40.0 * t
        } else {
            60.0 - 60.0 * (t - 0.5)
        };
        // Colour step between hierarchy layers: 48 (vtracer's `photo` preset) → 16 → 5.
        let layer = 48.0 * (1.0f64 / 9.0).powf(t);
        Config {
            color_mode: ColorMode::Color,
            hierarchical: Hierarchical::Stacked,
            filter_speckle: (speckle.round() as usize).max(1),
            color_precision: i32::from(self.colors.clamp(1, 8)),
            layer_difference: layer.round() as i32,
            corner_threshold: corner.round() as i32,
            // A tenth of a traced pixel is finer than any display of the result needs.
            path_precision: Some(1),
            ..Config::default()
        }
    }
}

/// Trace `img` into an SVG document sized like `img`.
pub fn trace_svg(img: &DynamicImage, opts: &TraceOptions) -> Result<String, ImagingError> {
    let (width, height) = img.dimensions();
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt("the image has no pixels".into()));
    }
    // Each retry traces fewer pixels with less detail: the output shrinks roughly with
    // the number of regions, which falls with both.
    let mut attempt = *opts;
    for _ in 0..3 {
        let svg = trace_once(img, &attempt)?;
        if svg.len() <= MAX_SVG_BYTES {
            return Ok(svg);
        }
        attempt.max_pixels = (attempt.max_pixels / 4).max(1);
        attempt.detail = attempt.detail.saturating_sub(25);
    }
    Err(ImagingError::TooManyPixels(format!(
        "the traced SVG of this {width}x{height} image is over {} MiB even at low detail; \
         ask for a raster format or a smaller size",
        MAX_SVG_BYTES >> 20
    )))
}

fn trace_once(img: &DynamicImage, opts: &TraceOptions) -> Result<String, ImagingError> {
    let (width, height) = img.dimensions();
    let mut rgba = downscaled_rgba(img, opts.max_pixels)?;
    let (tw, th) = rgba.dimensions();
    let transparent = binarise_alpha(&mut rgba);
    // vtracer keys out transparent pixels only when its sample of five scanlines finds
    // enough of them; otherwise it traces their (arbitrary) colour as opaque paint. One
    // transparent row above and below always trips that check, and the viewBox starts
    // below the padding so it never shows.
    let pad = u32::from(transparent);
    let pixels = if transparent {
        let row = vec![0u8; tw as usize * 4];
        [row.as_slice(), rgba.as_raw(), row.as_slice()].concat()
    } else {
        rgba.into_raw()
    };
    let traced = vtracer::convert(
        ColorImage {
            pixels,
            width: tw as usize,
            height: (th + 2 * pad) as usize,
        },
        opts.vtracer_config(tw, th),
    )
    .map_err(|e| ImagingError::Encode(format!("tracing failed: {e}")))?;

    // vtracer's own document says the traced size and nothing else; keep its path
    // elements (written with `path_precision`, which only its `Display` applies) and put
    // them under our own root element.
    let document = traced.to_string();
    let body = document
        .find("<svg")
        .and_then(|start| Some(start + document[start..].find('>')? + 1))
        .zip(document.rfind("</svg>"))
        .and_then(|(start, end)| document.get(start..end))
        .ok_or_else(|| ImagingError::Encode("the tracer wrote an unexpected document".into()))?;
    // `none`: the traced size is rounded, so its aspect ratio may differ from the
    // original's by a fraction of a pixel; stretch rather than letterbox.
    let mut svg = String::with_capacity(body.len() + 256);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 {pad} {tw} {th}\" preserveAspectRatio=\"none\">"
    );
    svg.push_str(body);
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// The longest side traced: vtracer's path arithmetic overflows on very long thin
/// images (a 1×70000 strip), which stay under any pixel budget.
const MAX_TRACE_SIDE: u32 = 4096;

/// An RGBA copy of `img` with at most `max_pixels` pixels and sides of at most
/// `MAX_TRACE_SIDE`, area-averaged when shrunk (a
/// box filter adds no ringing, so flat colours stay flat and cluster cleanly).
fn downscaled_rgba(img: &DynamicImage, max_pixels: u64) -> Result<RgbaImage, ImagingError> {
    let (w, h) = img.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    let long_side = w.max(h);
    if pixels <= max_pixels && long_side <= MAX_TRACE_SIDE {
        return Ok(img.to_rgba8());
    }
    let scale = (max_pixels as f64 / pixels as f64)
        .sqrt()
        .min(f64::from(MAX_TRACE_SIDE) / f64::from(long_side));
    let tw = ((f64::from(w) * scale) as u32).clamp(1, w);
    // Clamp again for extreme aspect ratios, where the 1-pixel minimum width overshoots.
    let max_h = u32::try_from(max_pixels / u64::from(tw)).unwrap_or(u32::MAX);
    let th = ((f64::from(h) * scale) as u32)
        .clamp(1, h)
        .min(max_h.max(1));
    // Resize in the source's pixel type (the resizer needs both sides alike), so only the
    // small copy is ever converted to RGBA.
    let mut small = DynamicImage::new(tw, th, img.color());
    let options =
        fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Box));
    fir::Resizer::new()
        .resize(img, &mut small, &options)
        .map_err(|e| ImagingError::Encode(format!("downscale before tracing failed: {e}")))?;
    Ok(small.into_rgba8())
}

/// Paths are opaque, so each pixel is either kept (alpha ≥ 50 %) or cut out. Returns
/// whether any pixel is transparent.
fn binarise_alpha(img: &mut RgbaImage) -> bool {
    let mut any = false;
    for px in img.pixels_mut() {
        if px[3] < 128 {
            px.0 = [0, 0, 0, 0];
            any = true;
        } else {
            px[3] = 255;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};
    use resvg::{tiny_skia, usvg};

    fn corpus(name: &str) -> DynamicImage {
        let path = format!("{}/test-images/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        image::load_from_memory(&bytes).unwrap()
    }

    /// Rasterise an SVG at its own `width`×`height`, as straight-alpha RGBA.
    fn render(svg: &str) -> RgbaImage {
        let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).expect("SVG parses");
        let size = tree.size().to_int_size();
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
        resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
        let mut out = RgbaImage::new(size.width(), size.height());
        for (dst, src) in out.pixels_mut().zip(pixmap.pixels()) {
            let c = src.demultiply();
            *dst = Rgba([c.red(), c.green(), c.blue(), c.alpha()]);
        }
        out
    }

    /// The similarity measure: both images are composited onto magenta (a colour neither
    /// logo uses, so a wrongly transparent or wrongly opaque area costs as much as a wrong
    /// colour) and compared as the mean absolute difference per RGB channel, 0..=255, over
    /// every pixel. 0 is identical; a blank or one-colour SVG scores tens.
    fn mean_abs_diff(a: &RgbaImage, b: &RgbaImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let over_magenta = |p: &Rgba<u8>| {
            let a = u32::from(p[3]);
            let blend = |c: u8, bg: u32| (u32::from(c) * a + bg * (255 - a)) / 255;
            [blend(p[0], 255), blend(p[1], 0), blend(p[2], 255)]
        };
        let total: u64 = a
            .pixels()
            .zip(b.pixels())
            .map(|(x, y)| {
                let (x, y) = (over_magenta(x), over_magenta(y));
                (0..3).map(|i| u64::from(x[i].abs_diff(y[i]))).sum::<u64>()
            })
            .sum();
        total as f64 / (3 * a.width() * a.height()) as f64
    }

    /// Good traces stay under this; the blank and one-colour SVGs must not. Measured at
    /// the default options: flag 0.00, scikit-image logo ≈ 6.1 (its photographic texture
    /// is posterised to 6-bit colour), WebP with alpha ≈ 1.9; blank and flat SVGs of the
    /// same files score 30 and more.
    const THRESHOLD: f64 = 10.0;

    fn blank_svg(w: u32, h: u32) -> String {
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\"/>")
    }

    fn one_rect_svg(w: u32, h: u32, colour: [u8; 3]) -> String {
        let [r, g, b] = colour;
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#{r:02x}{g:02x}{b:02x}\"/></svg>"
        )
    }

    /// Trace a corpus file, render it back and check it looks like the source — and that
    /// the measure really fails an empty or flat SVG of the same size.
    fn check_trace(name: &str, opts: &TraceOptions) -> (f64, usize) {
        let img = corpus(name);
        let (w, h) = img.dimensions();
        let source = img.to_rgba8();
        let svg = trace_svg(&img, opts).unwrap();
        let rendered = render(&svg);
        assert_eq!(
            rendered.dimensions(),
            (w, h),
            "{name} renders at the source size"
        );
        let score = mean_abs_diff(&source, &rendered);
        assert!(score < THRESHOLD, "{name}: traced difference {score:.2}");

        let blank = mean_abs_diff(&source, &render(&blank_svg(w, h)));
        assert!(blank >= THRESHOLD, "{name}: blank SVG scored {blank:.2}");
        // The best single colour: the source's mean opaque colour.
        let (mut sum, mut n) = ([0u64; 3], 0u64);
        for p in source.pixels().filter(|p| p[3] >= 128) {
            (0..3).for_each(|i| sum[i] += u64::from(p[i]));
            n += 1;
        }
        let mean = sum.map(|s| (s / n.max(1)) as u8);
        let flat = mean_abs_diff(&source, &render(&one_rect_svg(w, h, mean)));
        assert!(flat >= THRESHOLD, "{name}: one-colour SVG scored {flat:.2}");

        let paths = svg.matches("<path").count();
        assert!(paths >= 2, "{name}: {paths} paths");
        // Far fewer shapes than pixels: regions, not a per-pixel mosaic.
        assert!(
            (paths as u64) * 100 < u64::from(w) * u64::from(h),
            "{name}: {paths} paths for {w}x{h} pixels"
        );
        eprintln!(
            "{name}: score {score:.2} (blank {blank:.2}, flat {flat:.2}), {paths} paths, {} bytes",
            svg.len()
        );
        (score, paths)
    }

    #[test]
    fn long_thin_strips_trace_without_overflow() {
        for (w, h) in [(1, 70_000), (70_000, 1), (3, 20_000)] {
            let strip = DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([((x + y) % 256) as u8])
            }));
            let svg = trace_svg(&strip, &TraceOptions::default()).unwrap();
            assert!(
                svg.starts_with("<svg") || svg.starts_with("<?xml"),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn flat_flag_traces_faithfully() {
        let (_, paths) = check_trace("logo-flag-3colour.png", &TraceOptions::default());
        assert!(
            paths <= 20,
            "a three-colour flag needs a handful of paths, got {paths}"
        );
    }

    #[test]
    fn scikit_image_logo_traces_faithfully() {
        check_trace("logo-scikit-image-rgba.png", &TraceOptions::default());
    }

    #[test]
    fn real_alpha_survives_tracing() {
        check_trace("webp-lossy-alpha.webp", &TraceOptions::default());
    }

    #[test]
    fn large_images_are_traced_downscaled_but_sized_as_the_source() {
        let opts = TraceOptions {
            max_pixels: 20_000,
            ..TraceOptions::default()
        };
        let img = corpus("logo-flag-3colour.png");
        let svg = trace_svg(&img, &opts).unwrap();
        assert!(
            svg.contains("width=\"900\" height=\"600\""),
            "{}",
            &svg[..200]
        );
        let view_box = svg.split("viewBox=\"").nth(1).unwrap();
        let dims: Vec<u32> = view_box
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(u64::from(dims[2] * dims[3]) <= 20_000, "{dims:?}");
        assert!(mean_abs_diff(&img.to_rgba8(), &render(&svg)) < THRESHOLD);
    }

    #[test]
    fn small_transparent_hole_stays_transparent() {
        // Too few transparent pixels for vtracer's own keying check: the padding must kick in.
        let img = RgbaImage::from_fn(60, 60, |x, y| {
            if (25..35).contains(&x) && (25..35).contains(&y) {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([20, 120, 220, 255])
            }
        });
        let svg = trace_svg(
            &DynamicImage::ImageRgba8(img.clone()),
            &TraceOptions::default(),
        );
        let rendered = render(&svg.unwrap());
        assert_eq!(rendered.get_pixel(30, 30)[3], 0, "the hole is transparent");
        assert_eq!(rendered.get_pixel(5, 5)[3], 255);
        assert!(mean_abs_diff(&img, &rendered) < THRESHOLD);
    }

    #[test]
    fn options_are_validated() {
        assert_eq!(
            TraceOptions::new(None, None).unwrap(),
            TraceOptions::default()
        );
        let o = TraceOptions::new(Some(8), Some(100)).unwrap();
        assert_eq!((o.colors, o.detail), (8, 100));
        for (r, key) in [
            (TraceOptions::new(Some(0), None), "`colors`"),
            (TraceOptions::new(Some(9), None), "`colors`"),
            (TraceOptions::new(None, Some(101)), "`detail`"),
        ] {
            assert!(matches!(r, Err(ImagingError::BadSpec(m)) if m.contains(key)));
        }
        // The detail mapping hits vtracer's defaults in the middle.
        let c = TraceOptions::default().vtracer_config(1000, 1000);
        assert_eq!(
            (c.filter_speckle, c.corner_threshold, c.layer_difference),
            (4, 60, 16)
        );
    }
}

//! SVG input, rasterised safely: no external files or URLs (every `<image>` href resolves
//! to nothing), no scripts (SVG renderers never run them), no fonts (text is skipped),
//! and the canvas size checked against the pixel limit before any pixel is allocated.

use image::{DynamicImage, RgbaImage};
use resvg::{tiny_skia, usvg};

use super::ImagingError;

/// How far into the file the `<svg` tag may start (after an XML prolog and comments).
const SNIFF_WINDOW: usize = 4096;

/// True for bytes that look like an SVG document (XML text with an `<svg` element).
pub fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SNIFF_WINDOW)];
    let Ok(text) = std::str::from_utf8(trim_to_char_boundary(head)) else {
        return false;
    };
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with("<?xml")
        || text.starts_with("<svg")
        || text.starts_with("<!--")
        || text.starts_with("<!DOCTYPE svg"))
        && text.contains("<svg")
}

fn trim_to_char_boundary(bytes: &[u8]) -> &[u8] {
    // A multi-byte character cut by the window must not make valid UTF-8 look invalid.
    let mut end = bytes.len();
    while end > 0 && std::str::from_utf8(&bytes[..end]).is_err() && bytes.len() - end < 4 {
        end -= 1;
    }
    &bytes[..end]
}

fn options() -> usvg::Options<'static> {
    usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    }
}

/// Parse the document; its size in whole pixels.
pub fn parse(bytes: &[u8]) -> Result<(usvg::Tree, u32, u32), ImagingError> {
    let tree = usvg::Tree::from_data(bytes, &options())
        .map_err(|e| ImagingError::Corrupt(format!("invalid SVG: {e}")))?;
    let size = tree.size().to_int_size();
    Ok((tree, size.width(), size.height()))
}

/// Render a parsed document at its own size (the caller has checked the pixel limit).
pub fn rasterize(tree: &usvg::Tree, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    let mut pixmap = tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| ImagingError::Corrupt(format!("SVG canvas {width}x{height} is unusable")))?;
    resvg::render(tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
    // tiny-skia stores premultiplied alpha; images here are straight alpha.
    let mut rgba = pixmap.take();
    for px in rgba.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        if a != 0 && a != 255 {
            for c in &mut px[..3] {
                *c = ((u16::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
    RgbaImage::from_raw(width, height, rgba)
        .map(DynamicImage::ImageRgba8)
        .ok_or_else(|| ImagingError::Encode("SVG raster buffer has the wrong size".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert!(looks_like_svg(b"<svg xmlns='http://www.w3.org/2000/svg'/>"));
        assert!(looks_like_svg(
            b"\xef\xbb\xbf <?xml version='1.0'?>\n<svg/>"
        ));
        assert!(!looks_like_svg(b"<html><body>no</body></html>"));
        assert!(!looks_like_svg(b"\x89PNG\r\n"));
    }

    #[test]
    fn renders_shapes_and_ignores_external_references() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="10">
            <rect width="10" height="10" fill="#ff0000"/>
            <image x="10" width="10" height="10" xlink:href="file:///etc/passwd"/>
            <image x="10" width="10" height="10" href="http://169.254.169.254/latest"/>
            <script>alert(1)</script></svg>"##;
        let (tree, w, h) = parse(svg).unwrap();
        assert_eq!((w, h), (20, 10));
        let img = rasterize(&tree, w, h).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(2, 2).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(15, 5).0[3], 0, "external image not loaded");
    }
}

//! The image formats progimage knows, their names, extensions and media types.

use serde::Serialize;

/// An image format, as sniffed from bytes or requested by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    Ico,
    Avif,
    /// SVG: read by rasterising; written as a traced vector.
    Svg,
    /// JPEG XL: read only.
    Jxl,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Webp,
        Format::Bmp,
        Format::Tiff,
        Format::Ico,
        Format::Avif,
        Format::Svg,
        Format::Jxl,
    ];

    /// The format for a URL extension (`jpg` and `jpeg` both mean JPEG).
    pub fn from_ext(ext: &str) -> Option<Format> {
        let ext = ext.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.ext() == ext || f.name() == ext || (ext == "tif" && *f == Format::Tiff))
    }

    /// Lowercase name used in JSON (`"jpeg"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Ico => "ico",
            Format::Avif => "avif",
            Format::Svg => "svg",
            Format::Jxl => "jxl",
        }
    }

    /// The canonical URL extension (`jpg` for JPEG).
    pub fn ext(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            other => other.name(),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Ico => "image/x-icon",
            Format::Avif => "image/avif",
            Format::Svg => "image/svg+xml",
            Format::Jxl => "image/jxl",
        }
    }

    /// Whether this build can write the format.
    pub fn can_encode(self) -> bool {
        !matches!(self, Format::Svg | Format::Jxl)
    }

    /// Whether the format can carry an alpha channel (otherwise alpha is flattened onto `bg`).
    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg | Format::Bmp)
    }

    pub(crate) fn from_image(f: image::ImageFormat) -> Option<Format> {
        use image::ImageFormat as I;
        Some(match f {
            I::Jpeg => Format::Jpeg,
            I::Png => Format::Png,
            I::Gif => Format::Gif,
            I::WebP => Format::Webp,
            I::Bmp => Format::Bmp,
            I::Tiff => Format::Tiff,
            I::Ico => Format::Ico,
            I::Avif => Format::Avif,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_ext(f.ext()), Some(f));
            assert_eq!(Format::from_ext(f.name()), Some(f));
        }
        assert_eq!(Format::from_ext("JPG"), Some(Format::Jpeg));
        assert_eq!(Format::from_ext("exe"), None);
    }
}

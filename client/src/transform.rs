//! The transform builder: the server's transform keys as typed methods, spelled the way
//! the server spells a variant canonically (so a URL built here hits the same cache entry
//! and ETag as every other spelling of it).

use std::fmt;
use std::str::FromStr;

/// How `width` and `height` together fit the image (the server's `fit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Fit inside the box, keeping the aspect ratio (the default).
    #[default]
    Contain,
    /// Fill the box, cutting at the [`Gravity`].
    Cover,
    /// Stretch to the box.
    Fill,
}

/// Where `fit=cover`, a size-only crop and a watermark are placed (the server's
/// `gravity`, `wm_pos`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Gravity {
    /// The middle (the default).
    #[default]
    Center,
    /// Top edge.
    North,
    /// Bottom edge.
    South,
    /// Right edge.
    East,
    /// Left edge.
    West,
    /// Top-right corner.
    NorthEast,
    /// Top-left corner.
    NorthWest,
    /// Bottom-right corner.
    SouthEast,
    /// Bottom-left corner.
    SouthWest,
    /// Where the picture has the most detail (not for watermarks).
    Smart,
}

/// Mirroring (the server's `flip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flip {
    /// Left–right.
    Horizontal,
    /// Top–bottom.
    Vertical,
    /// Both.
    Both,
}

/// Clockwise rotation (the server's `rot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// 90° clockwise.
    Deg90,
    /// 180°.
    Deg180,
    /// 270° clockwise.
    Deg270,
}

/// A shape outside which the image becomes transparent (the server's `mask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mask {
    /// A circle (ellipse) touching the edges.
    Circle,
    /// A rectangle with rounded corners.
    Rounded,
}

/// The output format: the extension of a variant URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG (`.jpg`).
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// GIF.
    Gif,
    /// BMP.
    Bmp,
    /// TIFF.
    Tiff,
    /// ICO (fitted inside 256×256).
    Ico,
    /// AVIF.
    Avif,
    /// A traced vector SVG.
    Svg,
    /// Plain ASCII art.
    Txt,
    /// ASCII art as a self-contained HTML page, one colour per character.
    Html,
    /// ASCII art with 24-bit ANSI colour escapes, for terminals.
    Ansi,
    /// The best format the request's `Accept` header lists (the server's `.auto`).
    Auto,
}

impl Format {
    const ALL: [Format; 13] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Bmp,
        Format::Tiff,
        Format::Ico,
        Format::Avif,
        Format::Svg,
        Format::Txt,
        Format::Html,
        Format::Ansi,
        Format::Auto,
    ];

    /// The canonical extension, as the server writes it in URLs.
    ///
    /// ```
    /// use progimage_client::Format;
    /// assert_eq!(Format::Jpeg.ext(), "jpg");
    /// assert_eq!("tif".parse::<Format>().unwrap(), Format::Tiff);
    /// ```
    pub fn ext(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Ico => "ico",
            Format::Avif => "avif",
            Format::Svg => "svg",
            Format::Txt => "txt",
            Format::Html => "html",
            Format::Ansi => "ansi",
            Format::Auto => "auto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ext())
    }
}

/// The error of parsing a [`Format`], [`Fit`] or [`Gravity`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}")]
pub struct ParseError {
    what: &'static str,
    value: String,
}

impl FromStr for Format {
    type Err = ParseError;

    /// An extension or format name, any case: `jpg`, `jpeg`, `tif`, `webp`, `auto`, …
    fn from_str(s: &str) -> Result<Format, ParseError> {
        let lower = s.trim_start_matches('.').to_ascii_lowercase();
        let name = match lower.as_str() {
            "jpeg" => "jpg",
            "tif" => "tiff",
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.ext() == name)
            .ok_or_else(|| ParseError {
                what: "format",
                value: s.to_owned(),
            })
    }
}

impl FromStr for Fit {
    type Err = ParseError;

    /// `contain`, `cover` or `fill`.
    fn from_str(s: &str) -> Result<Fit, ParseError> {
        match s {
            "contain" => Ok(Fit::Contain),
            "cover" => Ok(Fit::Cover),
            "fill" => Ok(Fit::Fill),
            _ => Err(ParseError {
                what: "fit (contain, cover, fill)",
                value: s.to_owned(),
            }),
        }
    }
}

impl Gravity {
    fn name(self) -> &'static str {
        match self {
            Gravity::Center => "center",
            Gravity::North => "n",
            Gravity::South => "s",
            Gravity::East => "e",
            Gravity::West => "w",
            Gravity::NorthEast => "ne",
            Gravity::NorthWest => "nw",
            Gravity::SouthEast => "se",
            Gravity::SouthWest => "sw",
            Gravity::Smart => "smart",
        }
    }
}

impl FromStr for Gravity {
    type Err = ParseError;

    /// `center` (or `centre`), `n`, `s`, `e`, `w`, `ne`, `nw`, `se`, `sw` or `smart`.
    fn from_str(s: &str) -> Result<Gravity, ParseError> {
        let s = if s == "centre" { "center" } else { s };
        [
            Gravity::Center,
            Gravity::North,
            Gravity::South,
            Gravity::East,
            Gravity::West,
            Gravity::NorthEast,
            Gravity::NorthWest,
            Gravity::SouthEast,
            Gravity::SouthWest,
            Gravity::Smart,
        ]
        .into_iter()
        .find(|g| g.name() == s)
        .ok_or_else(|| ParseError {
            what: "gravity (center, n, s, e, w, ne, nw, se, sw, smart)",
            value: s.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crop {
    Region { x: u32, y: u32, w: u32, h: u32 },
    Size { w: u32, h: u32 },
}

/// A variant of a stored image: transforms plus an output [`Format`].
///
/// Every method sets one of the server's transform keys; the values are not checked
/// here (the server answers `400 bad_transform` naming the key). [`Transform::path`]
/// writes the server's canonical spelling: keys in the server's order, defaults left
/// out, numbers normalised, so two equal transforms always give the same URL.
///
/// ```
/// use progimage_client::{Fit, Format, Gravity, Transform};
///
/// let id = "fa2127eb".repeat(8);
/// let t = Transform::new()
///     .fit(Fit::Cover)              // the order of the calls does not matter
///     .width(300)
///     .height(200)
///     .gravity(Gravity::Smart)
///     .format(Format::Webp);
/// assert_eq!(t.spec(), "w_300,h_200,fit_cover,gravity_smart");
/// assert_eq!(t.path(&id), format!("/image/{id}/w_300,h_200,fit_cover,gravity_smart.webp"));
///
/// // Defaults vanish, so this is the plain conversion:
/// let plain = Transform::new().fit(Fit::Contain).format(Format::Png);
/// assert_eq!(plain.path(&id), format!("/image/{id}.png"));
///
/// // No format and no transform: the original bytes.
/// assert_eq!(Transform::new().path(&id), format!("/image/{id}/original"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transform {
    format: Option<Format>,
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
    gravity: Gravity,
    enlarge: bool,
    crop: Option<Crop>,
    rotate: Option<Rotation>,
    flip: Option<Flip>,
    blur: Option<f32>,
    sharpen: Option<f32>,
    gray: bool,
    brightness: i32,
    contrast: i32,
    mask: Option<Mask>,
    background: Option<[u8; 3]>,
    quality: Option<u8>,
    keep_colour: bool,
    charset: Option<String>,
    invert: bool,
    colors: Option<u8>,
    detail: Option<u8>,
    watermark: Option<String>,
    watermark_position: Option<Gravity>,
    watermark_scale: Option<f32>,
    watermark_opacity: Option<f32>,
}

impl Transform {
    /// No transform and no format: the original image.
    pub fn new() -> Transform {
        Transform::default()
    }

    /// The output format (the URL's extension). Without one, a transform is served as
    /// `.auto` and an untransformed image as its original bytes.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Target width in pixels (1..=8192); for ASCII outputs, the number of columns.
    pub fn width(mut self, width: u32) -> Self {
        self.width = Some(width);
        self
    }

    /// Target height in pixels (1..=8192).
    pub fn height(mut self, height: u32) -> Self {
        self.height = Some(height);
        self
    }

    /// How width and height together are fitted.
    pub fn fit(mut self, fit: Fit) -> Self {
        self.fit = fit;
        self
    }

    /// Where `fit=cover` and [`Transform::crop_size`] cut.
    pub fn gravity(mut self, gravity: Gravity) -> Self {
        self.gravity = gravity;
        self
    }

    /// Allow upscaling past the source size.
    pub fn enlarge(mut self, enlarge: bool) -> Self {
        self.enlarge = enlarge;
        self
    }

    /// Cut the region `x:y:w:h` of the (upright) source before resizing.
    pub fn crop(mut self, x: u32, y: u32, w: u32, h: u32) -> Self {
        self.crop = Some(Crop::Region { x, y, w, h });
        self
    }

    /// Cut a `w`×`h` region placed by [`Transform::gravity`] before resizing.
    pub fn crop_size(mut self, w: u32, h: u32) -> Self {
        self.crop = Some(Crop::Size { w, h });
        self
    }

    /// Rotate clockwise.
    pub fn rotate(mut self, rotation: Rotation) -> Self {
        self.rotate = Some(rotation);
        self
    }

    /// Mirror.
    pub fn flip(mut self, flip: Flip) -> Self {
        self.flip = Some(flip);
        self
    }

    /// Blur with this sigma (0.1..=100).
    pub fn blur(mut self, sigma: f32) -> Self {
        self.blur = Some(sigma);
        self
    }

    /// Sharpen with this sigma (0.1..=10).
    pub fn sharpen(mut self, sigma: f32) -> Self {
        self.sharpen = Some(sigma);
        self
    }

    /// Grayscale.
    pub fn gray(mut self, gray: bool) -> Self {
        self.gray = gray;
        self
    }

    /// Brightness, -100..=100.
    pub fn brightness(mut self, brightness: i32) -> Self {
        self.brightness = brightness;
        self
    }

    /// Contrast, -100..=100.
    pub fn contrast(mut self, contrast: i32) -> Self {
        self.contrast = contrast;
        self
    }

    /// Make everything outside a shape transparent.
    pub fn mask(mut self, mask: Mask) -> Self {
        self.mask = Some(mask);
        self
    }

    /// The colour transparency is flattened onto for JPEG and BMP (default white).
    pub fn background(mut self, rgb: [u8; 3]) -> Self {
        self.background = Some(rgb);
        self
    }

    /// Quality 1..=100 for JPEG, WebP (which then becomes lossy) and AVIF.
    pub fn quality(mut self, quality: u8) -> Self {
        self.quality = Some(quality);
        self
    }

    /// Keep the source's colour profile (embedded in JPEG, PNG, WebP and TIFF outputs)
    /// instead of converting the pixels to sRGB, the default (`color=keep`).
    pub fn keep_colour(mut self, keep: bool) -> Self {
        self.keep_colour = keep;
        self
    }

    /// ASCII outputs: the characters from lightest to densest (sent in the query).
    pub fn charset(mut self, charset: impl Into<String>) -> Self {
        self.charset = Some(charset.into());
        self
    }

    /// ASCII outputs: light pixels get the dense characters.
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// Traced SVG: colour precision 1..=8.
    pub fn colors(mut self, colors: u8) -> Self {
        self.colors = Some(colors);
        self
    }

    /// Traced SVG: detail 0..=100.
    pub fn detail(mut self, detail: u8) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Draw the stored image with this id over the output.
    pub fn watermark(mut self, id: impl Into<String>) -> Self {
        self.watermark = Some(id.into().to_ascii_lowercase());
        self
    }

    /// Where the watermark goes (the server's default is [`Gravity::SouthEast`]).
    pub fn watermark_position(mut self, position: Gravity) -> Self {
        self.watermark_position = Some(position);
        self
    }

    /// Watermark width as a fraction of the output width, 0.01..=1.
    pub fn watermark_scale(mut self, scale: f32) -> Self {
        self.watermark_scale = Some(scale);
        self
    }

    /// Watermark opacity, 0..=1.
    pub fn watermark_opacity(mut self, opacity: f32) -> Self {
        self.watermark_opacity = Some(opacity);
        self
    }

    /// The output format, if one was set.
    pub fn output_format(&self) -> Option<Format> {
        self.format
    }

    /// True when nothing but (possibly) the format is set.
    pub fn is_identity(&self) -> bool {
        Transform {
            format: self.format,
            ..Transform::default()
        } == *self
    }

    /// The canonical path spec (`w_300,h_200,fit_cover`), empty for no transform.
    /// `charset` is not part of it: the server takes it in the query only.
    pub fn spec(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut push = |k: &str, v: &dyn fmt::Display| parts.push(format!("{k}_{v}"));
        if let Some(w) = self.width {
            push("w", &w);
        }
        if let Some(h) = self.height {
            push("h", &h);
        }
        match self.fit {
            Fit::Contain => {}
            Fit::Cover => push("fit", &"cover"),
            Fit::Fill => push("fit", &"fill"),
        }
        if self.gravity != Gravity::Center {
            push("gravity", &self.gravity.name());
        }
        if self.enlarge {
            push("enlarge", &1);
        }
        match self.crop {
            Some(Crop::Region { x, y, w, h }) => push("crop", &format!("{x}:{y}:{w}:{h}")),
            Some(Crop::Size { w, h }) => push("crop", &format!("{w}:{h}")),
            None => {}
        }
        if let Some(r) = self.rotate {
            let deg = match r {
                Rotation::Deg90 => 90,
                Rotation::Deg180 => 180,
                Rotation::Deg270 => 270,
            };
            push("rot", &deg);
        }
        if let Some(f) = self.flip {
            let v = match f {
                Flip::Horizontal => "h",
                Flip::Vertical => "v",
                Flip::Both => "hv",
            };
            push("flip", &v);
        }
        if let Some(b) = self.blur {
            push("blur", &b);
        }
        if let Some(s) = self.sharpen {
            push("sharpen", &s);
        }
        if self.gray {
            push("gray", &1);
        }
        if self.brightness != 0 {
            push("bri", &self.brightness);
        }
        if self.contrast != 0 {
            push("con", &self.contrast);
        }
        if let Some(m) = self.mask {
            push(
                "mask",
                &match m {
                    Mask::Circle => "circle",
                    Mask::Rounded => "rounded",
                },
            );
        }
        if let Some(rgb) = self.background {
            push("bg", &hex::encode(rgb));
        }
        if let Some(q) = self.quality {
            push("q", &q);
        }
        if self.invert {
            push("invert", &1);
        }
        if let Some(c) = self.colors {
            push("colors", &c);
        }
        if let Some(d) = self.detail {
            push("detail", &d);
        }
        if let Some(id) = &self.watermark {
            push("wm", id);
        }
        if let Some(pos) = self.watermark_position {
            push("wm_pos", &pos.name());
        }
        if let Some(scale) = self.watermark_scale {
            push("wm_scale", &scale);
        }
        if let Some(opacity) = self.watermark_opacity {
            push("wm_opacity", &opacity);
        }
        if self.keep_colour {
            push("color", &"keep");
        }
        parts.join(",")
    }

    /// The query string (without `?`) this transform needs: `charset` only, since every
    /// other key goes in the path. Empty when there is none.
    pub fn query(&self) -> String {
        match &self.charset {
            Some(c) => {
                let encoded: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
                format!("charset={encoded}")
            }
            None => String::new(),
        }
    }

    /// The unsigned path and query of this variant of image `id`, relative to the
    /// server's root: `/image/{id}/{spec}.{ext}`, `/image/{id}.{ext}` when only the
    /// format is set, `/image/{id}/original` when nothing is. A transform without a
    /// format uses `.auto`.
    pub fn path(&self, id: &str) -> String {
        let id = id.to_ascii_lowercase();
        let spec = self.spec();
        let query = self.query();
        let path = match (self.format, spec.is_empty() && query.is_empty()) {
            (None, true) => return format!("/image/{id}/original"),
            (format, _) => {
                let ext = format.unwrap_or(Format::Auto).ext();
                if spec.is_empty() {
                    format!("/image/{id}.{ext}")
                } else {
                    format!("/image/{id}/{spec}.{ext}")
                }
            }
        };
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }

    /// The `{spec}.{ext}` (or bare `{ext}`) form used by [`crate::Client::batch_variants`].
    pub fn batch_variant(&self) -> String {
        let ext = self.format.unwrap_or(Format::Auto).ext();
        let spec = self.spec();
        if spec.is_empty() {
            ext.to_owned()
        } else {
            format!("{spec}.{ext}")
        }
    }
}

/// Options for ASCII art ([`crate::Client::ascii`]).
///
/// ```
/// use progimage_client::Ascii;
/// let art = Ascii::new(80).colour(true).invert(true);
/// assert_eq!(art.transform().path(&"ab".repeat(32)), format!("/image/{}/w_80,invert_1.ansi", "ab".repeat(32)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Ascii {
    width: u32,
    colour: bool,
    invert: bool,
    charset: Option<String>,
}

impl Ascii {
    /// Art `width` characters wide (the server allows 1..=1000).
    pub fn new(width: u32) -> Ascii {
        Ascii {
            width,
            colour: false,
            invert: false,
            charset: None,
        }
    }

    /// 24-bit ANSI colour escapes (for a terminal) instead of plain text.
    pub fn colour(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// Light pixels get the dense characters (for light text on a dark background).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// Characters from lightest to densest (2..=64 of them).
    pub fn charset(mut self, charset: impl Into<String>) -> Self {
        self.charset = Some(charset.into());
        self
    }

    /// The equivalent variant: `txt` or `ansi` with `w`, `invert` and `charset`.
    pub fn transform(&self) -> Transform {
        let mut t = Transform::new()
            .width(self.width)
            .invert(self.invert)
            .format(if self.colour {
                Format::Ansi
            } else {
                Format::Txt
            });
        if let Some(c) = &self.charset {
            t = t.charset(c.clone());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_in_the_server_order() {
        let t = Transform::new()
            .watermark_opacity(0.25)
            .watermark_scale(0.5)
            .watermark_position(Gravity::NorthWest)
            .watermark("AB".repeat(32))
            .detail(30)
            .colors(4)
            .quality(50)
            .background([16, 32, 48])
            .mask(Mask::Circle)
            .contrast(7)
            .brightness(-5)
            .gray(true)
            .sharpen(1.0)
            .blur(2.5)
            .flip(Flip::Both)
            .rotate(Rotation::Deg90)
            .crop(1, 2, 3, 4)
            .enlarge(true)
            .gravity(Gravity::NorthEast)
            .fit(Fit::Fill)
            .height(20)
            .width(10);
        let wm = "ab".repeat(32);
        assert_eq!(
            t.spec(),
            format!(
                "w_10,h_20,fit_fill,gravity_ne,enlarge_1,crop_1:2:3:4,rot_90,flip_hv,blur_2.5,\
                 sharpen_1,gray_1,bri_-5,con_7,mask_circle,bg_102030,q_50,colors_4,detail_30,\
                 wm_{wm},wm_pos_nw,wm_scale_0.5,wm_opacity_0.25"
            )
        );
    }

    #[test]
    fn charset_goes_in_the_query() {
        let t = Transform::new()
            .width(40)
            .charset(" .#,_")
            .format(Format::Txt);
        assert_eq!(t.path("x"), "/image/x/w_40.txt?charset=+.%23%2C_");
        let only = Transform::new().charset("ab");
        assert_eq!(only.path("x"), "/image/x.auto?charset=ab");
    }

    #[test]
    fn formats_parse_from_names_and_extensions() {
        assert_eq!("JPEG".parse::<Format>().unwrap(), Format::Jpeg);
        assert_eq!(".webp".parse::<Format>().unwrap(), Format::Webp);
        assert!("heic".parse::<Format>().is_err());
        assert_eq!("centre".parse::<Gravity>().unwrap(), Gravity::Center);
        assert_eq!("cover".parse::<Fit>().unwrap(), Fit::Cover);
    }
}

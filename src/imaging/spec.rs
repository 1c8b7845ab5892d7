//! The transform grammar: `k=v` query pairs or `k_v,k_v` path specs, parsed into one typed,
//! validated [`Spec`] with a canonical spelling. Both spellings of a variant canonicalise to
//! the same string, which is what the variant cache and the ETag are keyed on.

use std::fmt::Write as _;

use super::ImagingError;

pub const MAX_DIMENSION: u32 = 8192;

/// Query keys that are not transforms and so never reach the parser.
pub const NON_TRANSFORM_KEYS: &[&str] = &["sig"];

/// Whether a query key is skipped by the transform parser (e.g. the URL signature).
pub fn is_non_transform_key(key: &str) -> bool {
    NON_TRANSFORM_KEYS.contains(&key)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fit {
    #[default]
    Contain,
    Cover,
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Horizontal,
    Vertical,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    Circle,
    Rounded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// Given as `w:h` only: placed by `gravity` instead of at x:y.
    pub anchored: bool,
}

/// Where `fit=cover` and a `w:h` crop cut: a compass point, the centre, or `smart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gravity {
    #[default]
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// The most detailed region (see `smart`).
    Smart,
}

impl Gravity {
    const NAMES: [(&'static str, Gravity); 10] = [
        ("center", Gravity::Center),
        ("n", Gravity::North),
        ("s", Gravity::South),
        ("e", Gravity::East),
        ("w", Gravity::West),
        ("ne", Gravity::NorthEast),
        ("nw", Gravity::NorthWest),
        ("se", Gravity::SouthEast),
        ("sw", Gravity::SouthWest),
        ("smart", Gravity::Smart),
    ];

    fn parse(v: &str) -> Option<Gravity> {
        let v = if v == "centre" { "center" } else { v };
        Self::NAMES.iter().find(|(n, _)| *n == v).map(|(_, g)| *g)
    }

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("center", |(n, _)| n)
    }

    /// Fractions (0 = left/top, 1 = right/bottom) of the slack to leave before the cut.
    /// `Smart` is centred here and refined from the pixels.
    pub fn anchor(self) -> (f64, f64) {
        match self {
            Gravity::Center | Gravity::Smart => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::South => (0.5, 1.0),
            Gravity::East => (1.0, 0.5),
            Gravity::West => (0.0, 0.5),
            Gravity::NorthEast => (1.0, 0.0),
            Gravity::NorthWest => (0.0, 0.0),
            Gravity::SouthEast => (1.0, 1.0),
            Gravity::SouthWest => (0.0, 1.0),
        }
    }
}

/// Every transform of one variant. `Spec::default()` is the identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
    pub enlarge: bool,
    pub crop: Option<Crop>,
    /// Clockwise degrees: 0, 90, 180 or 270.
    pub rotate: u16,
    pub flip: Option<Flip>,
    pub blur: Option<f32>,
    pub sharpen: Option<f32>,
    pub gray: bool,
    /// -100..=100
    pub brightness: i32,
    /// -100..=100
    pub contrast: i32,
    pub mask: Option<Mask>,
    pub bg: Option<Rgb>,
    pub quality: Option<u8>,
    /// ASCII outputs: characters from lightest to densest (query only: any character may
    /// appear, including the `,` and `_` of the path grammar).
    pub charset: Option<String>,
    /// ASCII outputs: light pixels get dense characters.
    pub invert: bool,
    /// Traced SVG: colour precision 1..=8.
    pub colors: Option<u8>,
    /// Traced SVG: detail 0..=100.
    pub detail: Option<u8>,
    /// Watermark: the id of a stored image drawn over the output.
    pub watermark: Option<String>,
    /// Where the watermark goes (default: bottom right).
    pub wm_pos: Option<Gravity>,
    /// Watermark width as a fraction of the output width, 0.01..=1 (default 0.25).
    pub wm_scale: Option<f32>,
    /// Watermark opacity 0..=1 (default 1).
    pub wm_opacity: Option<f32>,
    /// `color=keep`: keep the source's colour profile (embedded in outputs that can carry
    /// one) instead of converting the pixels to sRGB.
    pub keep_colour: bool,
}

impl Spec {
    /// Parse a path spec such as `w_300,h_200,fit_cover`.
    pub fn parse_path(spec: &str) -> Result<Spec, ImagingError> {
        let pairs = spec
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| match split_path_pair(p) {
                Some(("charset", _)) => {
                    Err(bad("charset", "can only be given as a query parameter"))
                }
                Some(pair) => Ok(pair),
                None => Err(bad(p, "expected key_value, e.g. w_300")),
            });
        let pairs: Vec<(&str, &str)> = pairs.collect::<Result<_, _>>()?;
        Spec::default().merge(pairs)
    }

    /// Parse `k=v` pairs (already URL-decoded), as from a query string.
    pub fn parse_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Spec, ImagingError> {
        Spec::default().merge(pairs)
    }

    /// Add pairs to an existing spec (path spec first, then the query). A key given twice
    /// is an error rather than a silent override.
    pub fn merge<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Spec, ImagingError> {
        let mut seen: Vec<K> = Vec::new();
        for (key, value) in pairs {
            let k = key.as_ref();
            if NON_TRANSFORM_KEYS.contains(&k) {
                continue;
            }
            if seen.iter().any(|s| s.as_ref() == k) || self.has_key(k) {
                return Err(bad(k, "is given more than once"));
            }
            self.set(k, value.as_ref())?;
            seen.push(key);
        }
        if let Some(c) = self.crop {
            if c.width == 0 || c.height == 0 {
                return Err(bad("crop", "width and height must be at least 1"));
            }
        }
        Ok(self)
    }

    fn has_key(&self, key: &str) -> bool {
        let default = Spec::default();
        match key {
            "w" => self.width.is_some(),
            "h" => self.height.is_some(),
            "fit" => self.fit != default.fit,
            "gravity" => self.gravity != default.gravity,
            "enlarge" => self.enlarge,
            "crop" => self.crop.is_some(),
            "rot" => self.rotate != 0,
            "flip" => self.flip.is_some(),
            "blur" => self.blur.is_some(),
            "sharpen" => self.sharpen.is_some(),
            "gray" => self.gray,
            "bri" => self.brightness != 0,
            "con" => self.contrast != 0,
            "mask" => self.mask.is_some(),
            "bg" => self.bg.is_some(),
            "q" => self.quality.is_some(),
            "charset" => self.charset.is_some(),
            "invert" => self.invert,
            "colors" => self.colors.is_some(),
            "detail" => self.detail.is_some(),
            "wm" => self.watermark.is_some(),
            "wm_pos" => self.wm_pos.is_some(),
            "wm_scale" => self.wm_scale.is_some(),
            "wm_opacity" => self.wm_opacity.is_some(),
            "color" => self.keep_colour,
            _ => false,
        }
    }

    fn set(&mut self, key: &str, v: &str) -> Result<(), ImagingError> {
        match key {
            "w" => self.width = Some(int_in(key, v, 1, MAX_DIMENSION)?),
            "h" => self.height = Some(int_in(key, v, 1, MAX_DIMENSION)?),
            "fit" => {
                self.fit = match v {
                    "contain" => Fit::Contain,
                    "cover" => Fit::Cover,
                    "fill" => Fit::Fill,
                    _ => return Err(bad(key, "must be contain, cover or fill")),
                }
            }
            "gravity" => {
                self.gravity = Gravity::parse(v).ok_or_else(|| {
                    bad(key, "must be center, smart, n, s, e, w, ne, nw, se or sw")
                })?
            }
            "enlarge" => self.enlarge = flag(key, v)?,
            "crop" => self.crop = Some(parse_crop(v)?),
            "rot" => {
                self.rotate = match v {
                    "0" | "360" => 0,
                    "90" => 90,
                    "180" => 180,
                    "270" => 270,
                    _ => return Err(bad(key, "must be 90, 180 or 270")),
                }
            }
            "flip" => {
                self.flip = Some(match v {
                    "h" => Flip::Horizontal,
                    "v" => Flip::Vertical,
                    "hv" | "vh" => Flip::Both,
                    _ => return Err(bad(key, "must be h, v or hv")),
                })
            }
            "blur" => self.blur = Some(float_in(key, v, 0.1, 100.0)?),
            "sharpen" => self.sharpen = Some(float_in(key, v, 0.1, 10.0)?),
            "gray" => self.gray = flag(key, v)?,
            "bri" => self.brightness = int_in(key, v, -100, 100)?,
            "con" => self.contrast = int_in(key, v, -100, 100)?,
            "mask" => {
                self.mask = Some(match v {
                    "circle" => Mask::Circle,
                    "rounded" => Mask::Rounded,
                    _ => return Err(bad(key, "must be circle or rounded")),
                })
            }
            "bg" => self.bg = Some(parse_hex_colour(v)?),
            "q" => self.quality = Some(int_in(key, v, 1, 100)?),
            // Lengths and characters are checked with the output (see `output`).
            "charset" => self.charset = Some(v.to_owned()),
            "invert" => self.invert = flag(key, v)?,
            "colors" => self.colors = Some(int_in(key, v, 1, 8)?),
            "detail" => self.detail = Some(int_in(key, v, 0, 100)?),
            "wm" => {
                let id = v.to_ascii_lowercase();
                let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
                if !is_id {
                    return Err(bad(key, "must be the id of a stored image"));
                }
                self.watermark = Some(id);
            }
            "wm_pos" => {
                self.wm_pos = Some(Gravity::parse(v).ok_or_else(|| {
                    bad(key, "must be center, n, s, e, w, ne, nw, se, sw or smart")
                })?)
            }
            "wm_scale" => self.wm_scale = Some(float_in(key, v, 0.01, 1.0)?),
            "wm_opacity" => self.wm_opacity = Some(float_in(key, v, 0.0, 1.0)?),
            "color" => {
                self.keep_colour = match v {
                    "srgb" => false,
                    "keep" => true,
                    _ => return Err(bad(key, "must be srgb or keep")),
                }
            }
            _ => return Err(bad(key, "is not a known transform key")),
        }
        Ok(())
    }

    /// True when the spec changes nothing (besides, possibly, the output format).
    pub fn is_identity(&self) -> bool {
        *self == Spec::default()
    }

    /// The one spelling of this spec: keys in a fixed order, defaults left out, numbers
    /// normalised. Empty for the identity.
    pub fn canonical(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut push = |k: &str, v: &dyn std::fmt::Display| parts.push(format!("{k}_{v}"));
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
        if let Some(c) = self.crop {
            if c.anchored {
                push("crop", &format!("{}:{}", c.width, c.height));
            } else {
                push("crop", &format!("{}:{}:{}:{}", c.x, c.y, c.width, c.height));
            }
        }
        if self.rotate != 0 {
            push("rot", &self.rotate);
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
                &if m == Mask::Circle {
                    "circle"
                } else {
                    "rounded"
                },
            );
        }
        if let Some(Rgb([r, g, b])) = self.bg {
            let mut hex = String::with_capacity(6);
            for c in [r, g, b] {
                let _ = write!(hex, "{c:02x}");
            }
            push("bg", &hex);
        }
        if let Some(q) = self.quality {
            push("q", &q);
        }
        if let Some(charset) = &self.charset {
            // Percent-encoded so the canonical string stays one unambiguous token.
            let encoded: String = form_urlencoded::byte_serialize(charset.as_bytes()).collect();
            push("charset", &encoded);
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
        if let Some(pos) = self.wm_pos {
            push("wm_pos", &pos.name());
        }
        if let Some(scale) = self.wm_scale {
            push("wm_scale", &scale);
        }
        if let Some(opacity) = self.wm_opacity {
            push("wm_opacity", &opacity);
        }
        if self.keep_colour {
            push("color", &"keep");
        }
        parts.join(",")
    }
}

/// Keys whose names contain `_` themselves: in a path spec `wm_pos_se` is `wm_pos` = `se`.
const UNDERSCORED_KEYS: &[&str] = &["wm_pos", "wm_scale", "wm_opacity"];

fn split_path_pair(pair: &str) -> Option<(&str, &str)> {
    for key in UNDERSCORED_KEYS {
        if let Some(value) = pair.strip_prefix(key).and_then(|r| r.strip_prefix('_')) {
            return Some((key, value));
        }
    }
    pair.split_once('_')
}

fn bad(key: &str, why: &str) -> ImagingError {
    ImagingError::BadSpec(format!("transform `{key}` {why}"))
}

fn int_in<T>(key: &str, v: &str, min: T, max: T) -> Result<T, ImagingError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(bad(key, &format!("must be an integer in {min}..={max}"))),
    }
}

fn float_in(key: &str, v: &str, min: f32, max: f32) -> Result<f32, ImagingError> {
    match v.parse::<f32>() {
        Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(key, &format!("must be a number in {min}..={max}"))),
    }
}

fn flag(key: &str, v: &str) -> Result<bool, ImagingError> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad(key, "must be 1 or 0")),
    }
}

fn parse_crop(v: &str) -> Result<Crop, ImagingError> {
    let nums: Vec<u32> = v
        .split(':')
        .map(|n| n.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad(
                "crop",
                "must be x:y:w:h, or w:h placed by gravity, in pixels",
            )
        })?;
    match nums[..] {
        [x, y, width, height] => Ok(Crop {
            x,
            y,
            width,
            height,
            anchored: false,
        }),
        [width, height] => Ok(Crop {
            x: 0,
            y: 0,
            width,
            height,
            anchored: true,
        }),
        _ => Err(bad(
            "crop",
            "must be x:y:w:h, or w:h placed by gravity, in pixels",
        )),
    }
}

fn parse_hex_colour(v: &str) -> Result<Rgb, ImagingError> {
    let hex = v.strip_prefix('#').unwrap_or(v);
    let expand = |s: &str| -> Option<[u8; 3]> {
        let digits: Vec<u8> = s
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()?;
        match digits[..] {
            [r, g, b] => Some([r * 17, g * 17, b * 17]),
            [r1, r2, g1, g2, b1, b2] => Some([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2]),
            _ => None,
        }
    };
    expand(hex)
        .map(Rgb)
        .ok_or_else(|| bad("bg", "must be a hex colour such as ffffff"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_spellings_agree() {
        let a = Spec::parse_path("w_300,h_200,fit_cover").unwrap();
        let b = Spec::parse_pairs([("fit", "cover"), ("h", "200"), ("w", "300")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.canonical(), "w_300,h_200,fit_cover");
    }

    #[test]
    fn defaults_vanish_from_the_canonical_form() {
        let s = Spec::parse_pairs([("fit", "contain"), ("enlarge", "0"), ("rot", "0")]).unwrap();
        assert!(s.is_identity());
        assert_eq!(s.canonical(), "");
    }

    #[test]
    fn numbers_are_normalised() {
        let s = Spec::parse_path("blur_1.50,bg_#FFF,q_080").unwrap();
        assert_eq!(s.canonical(), "blur_1.5,bg_ffffff,q_80");
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        for (k, v) in [
            ("w", "0"),
            ("w", "8193"),
            ("h", "x"),
            ("fit", "squash"),
            ("rot", "45"),
            ("blur", "0"),
            ("blur", "NaN"),
            ("bri", "101"),
            ("q", "0"),
            ("bg", "zzzzzz"),
            ("crop", "1:2:3"),
            ("gravity", "up"),
            ("crop", "0:0:0:5"),
            ("nope", "1"),
        ] {
            let err = Spec::parse_pairs([(k, v)]).unwrap_err();
            assert!(
                matches!(&err, ImagingError::BadSpec(m) if m.contains(k)),
                "{k}={v}: {err}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(Spec::parse_path("w_1,w_2").is_err());
        let path = Spec::parse_path("w_1").unwrap();
        assert!(path.merge([("w", "5")]).is_err());
    }

    #[test]
    fn canonical_form_parses_back_to_the_same_spec() {
        let s = Spec::parse_path(
            "wm_pos_nw,wm_scale_0.5,wm_opacity_0.25,w_10,h_20,fit_fill,gravity_ne,enlarge_1,crop_1:2:3:4,rot_90,flip_hv,blur_2,sharpen_1,gray_1,bri_-5,con_7,mask_circle,bg_102030,q_50,color_keep",
        )
        .unwrap();
        assert_eq!(Spec::parse_path(&s.canonical()).unwrap(), s);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Any key=value the grammar could see, valid or not.
        fn pair() -> impl Strategy<Value = (String, String)> {
            let key = prop_oneof![
                Just("w"),
                Just("h"),
                Just("fit"),
                Just("enlarge"),
                Just("crop"),
                Just("rot"),
                Just("flip"),
                Just("blur"),
                Just("sharpen"),
                Just("gray"),
                Just("bri"),
                Just("con"),
                Just("mask"),
                Just("bg"),
                Just("q"),
                Just("zz"),
            ];
            let value = prop_oneof![
                (0u32..10_000).prop_map(|n| n.to_string()),
                (-200i32..200).prop_map(|n| n.to_string()),
                (0.0f32..120.0).prop_map(|f| f.to_string()),
                "[a-z]{1,7}",
                "[0-9]{1,4}:[0-9]{1,4}:[0-9]{1,4}:[0-9]{1,4}",
                "#?[0-9a-fA-F]{3,6}",
                ".{0,12}",
            ];
            (key, value).prop_map(|(k, v)| (k.to_owned(), v))
        }

        proptest! {
            #[test]
            fn canonical_form_is_a_fixed_point(pairs in proptest::collection::vec(pair(), 0..6)) {
                if let Ok(spec) = Spec::parse_pairs(pairs) {
                    let canonical = spec.canonical();
                    let reparsed = Spec::parse_path(&canonical).expect("canonical parses");
                    prop_assert_eq!(&reparsed, &spec);
                    prop_assert_eq!(reparsed.canonical(), canonical);
                }
            }

            #[test]
            fn no_path_spec_panics(input in ".{0,64}") {
                let _ = Spec::parse_path(&input);
            }

            #[test]
            fn no_pair_list_panics(pairs in proptest::collection::vec((".{0,8}", ".{0,16}"), 0..8)) {
                let _ = Spec::parse_pairs(pairs);
            }
        }
    }
}

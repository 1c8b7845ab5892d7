//! ASCII art: the image is area-averaged down to one sample per character cell, and each
//! cell's luminance picks a character from a charset ordered lightest → densest.
//!
//! Luminance is Rec. 709 luma computed on the gamma-encoded sRGB values (Y′, as video and
//! most ASCII converters do), after compositing any alpha onto white so transparent areas
//! read as light. Area averaging — not point sampling — is what makes fine detail (a
//! 1-pixel checkerboard, halftones, noise) come out as its mean grey instead of aliasing.

use std::fmt::Write as _;

use fast_image_resize as fir;
use image::DynamicImage;

use super::ImagingError;

/// Validated options of one ASCII render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsciiOptions {
    /// Characters per line.
    pub columns: u32,
    /// Characters from lightest to densest.
    pub charset: Vec<char>,
    /// Map light pixels to dense characters (for light text on a dark background).
    pub invert: bool,
    /// -100..=100, added to the luminance like the `bri` transform.
    pub brightness: i32,
    /// -100..=100, stretches the luminance around mid-grey like the `con` transform.
    pub contrast: i32,
}

impl AsciiOptions {
    pub const DEFAULT_CHARSET: &'static str = " .:-=+*#%@";
    pub const DEFAULT_COLUMNS: u32 = 100;
    pub const MAX_COLUMNS: u32 = 1000;
    /// The most character cells one render may produce. The row count follows the
    /// image's aspect ratio, so a very tall image could otherwise ask for millions of
    /// lines; this keeps the text under ~4 MiB and its HTML form under ~150 MiB.
    pub const MAX_CELLS: u64 = 4_000_000;
    const MIN_CHARSET: usize = 2;
    const MAX_CHARSET: usize = 64;

    /// Check the user's options. Errors are `BadSpec` naming the offending key
    /// (`w`, `charset`, `bri`, `con`), ready for a 400 `bad_transform`.
    pub fn new(
        columns: Option<u32>,
        charset: Option<&str>,
        invert: bool,
        brightness: i32,
        contrast: i32,
    ) -> Result<Self, ImagingError> {
        let columns = columns.unwrap_or(Self::DEFAULT_COLUMNS);
        if !(1..=Self::MAX_COLUMNS).contains(&columns) {
            return Err(ImagingError::BadSpec(format!(
                "transform `w` must be 1..={} columns for ASCII output, not {columns}",
                Self::MAX_COLUMNS
            )));
        }
        let charset: Vec<char> = charset.unwrap_or(Self::DEFAULT_CHARSET).chars().collect();
        if !(Self::MIN_CHARSET..=Self::MAX_CHARSET).contains(&charset.len()) {
            return Err(ImagingError::BadSpec(format!(
                "transform `charset` must have {}..={} characters, not {}",
                Self::MIN_CHARSET,
                Self::MAX_CHARSET,
                charset.len()
            )));
        }
        // A newline or escape inside the art would break the one-line-per-row shape.
        if let Some(c) = charset.iter().find(|c| c.is_control()) {
            return Err(ImagingError::BadSpec(format!(
                "transform `charset` may not contain control character {c:?}"
            )));
        }
        for (key, value) in [("bri", brightness), ("con", contrast)] {
            if !(-100..=100).contains(&value) {
                return Err(ImagingError::BadSpec(format!(
                    "transform `{key}` must be -100..=100, not {value}"
                )));
            }
        }
        Ok(AsciiOptions {
            columns,
            charset,
            invert,
            brightness,
            contrast,
        })
    }
}

impl Default for AsciiOptions {
    fn default() -> Self {
        AsciiOptions {
            columns: Self::DEFAULT_COLUMNS,
            charset: Self::DEFAULT_CHARSET.chars().collect(),
            invert: false,
            brightness: 0,
            contrast: 0,
        }
    }
}

/// How the characters are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsciiMode {
    /// Plain text (`text/plain`).
    Text,
    /// A self-contained HTML page with each character in its cell's colour (`text/html`).
    Html,
    /// 24-bit ANSI colour escapes for terminals.
    Ansi,
}

/// Rows for `columns` characters per line: terminal cells are about twice as tall as they
/// are wide, hence the 0.5.
pub fn ascii_rows(columns: u32, (width, height): (u32, u32)) -> u32 {
    let rows = u64::from(columns) * u64::from(height) / (2 * u64::from(width.max(1)));
    u32::try_from(rows).unwrap_or(u32::MAX).max(1)
}

/// Render `img` as ASCII art. `full_size` is the upright full-resolution size (`img` may
/// be a shrunk decode of it): the row count comes from it, so a shrink-on-load decode
/// gives the same shape as a full one.
pub fn render_ascii(
    img: &DynamicImage,
    full_size: (u32, u32),
    opts: &AsciiOptions,
    mode: AsciiMode,
) -> Result<String, ImagingError> {
    let columns = opts.columns;
    let rows = ascii_rows(columns, full_size);
    let cells = u64::from(columns) * u64::from(rows);
    if cells > AsciiOptions::MAX_CELLS {
        return Err(ImagingError::BadSpec(format!(
            "transform `w`: {columns} columns of a {}x{} image need {rows} rows; \
             at most {} characters are allowed",
            full_size.0,
            full_size.1,
            AsciiOptions::MAX_CELLS
        )));
    }
    if img.width() == 0 || img.height() == 0 {
        return Err(ImagingError::Corrupt("the image has no pixels".into()));
    }
    let cell_colours = average_cells(img, columns, rows)?;
    let glyph_of = glyph_table(opts);
    let glyph = |c: [u8; 3]| opts.charset[usize::from(glyph_of[usize::from(luma(c))])];
    let width = columns as usize;
    let out = match mode {
        AsciiMode::Text => {
            let mut out = String::with_capacity((width + 1) * rows as usize);
            for line in cell_colours.chunks_exact(width) {
                out.extend(line.iter().map(|&c| glyph(c)));
                out.push('\n');
            }
            out
        }
        AsciiMode::Html => html(&cell_colours, width, glyph),
        AsciiMode::Ansi => ansi(&cell_colours, width, glyph),
    };
    Ok(out)
}

/// One sRGB colour per cell, row-major: the area average of the pixels under the cell,
/// composited onto white.
fn average_cells(
    img: &DynamicImage,
    columns: u32,
    rows: u32,
) -> Result<Vec<[u8; 3]>, ImagingError> {
    // Resize in the source's own pixel type so a 12 MP decode is never copied or converted;
    // only the columns × rows result is. The box filter is an exact area average when
    // shrinking, and the resizer premultiplies alpha so transparent pixels add no colour.
    let mut small = DynamicImage::new(columns, rows, img.color());
    let options =
        fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Box));
    fir::Resizer::new()
        .resize(img, &mut small, &options)
        .map_err(|e| ImagingError::Encode(format!("ASCII downscale failed: {e}")))?;
    let small = small.into_rgba8();
    Ok(small
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            // Over white: c·a + 255·(1 − a), in integers rounded to nearest.
            let over = |c: u8| {
                let (c, a) = (u32::from(c), u32::from(a));
                ((c * a + 255 * (255 - a) + 127) / 255) as u8
            };
            [over(r), over(g), over(b)]
        })
        .collect())
}

/// Rec. 709 luma of gamma-encoded sRGB, 0..=255.
fn luma([r, g, b]: [u8; 3]) -> u8 {
    let y = 2126 * u32::from(r) + 7152 * u32::from(g) + 722 * u32::from(b);
    ((y + 5000) / 10_000) as u8
}

/// Charset index for each luma value, with brightness, contrast and inversion folded in
/// once so the per-cell work is two table lookups.
fn glyph_table(opts: &AsciiOptions) -> [u8; 256] {
    let n = opts.charset.len() as u32; // 2..=64, validated
                                       // The same formulas as the `bri` and `con` raster transforms (image's `brighten` and
                                       // `adjust_contrast`), so `bri_20` means the same thing in every output.
    let shift = (opts.brightness as f32 * 2.55).round();
    let gain = ((100.0 + opts.contrast as f32) / 100.0).powi(2);
    let mut table = [0u8; 256];
    for (value, slot) in table.iter_mut().enumerate() {
        let brightened = (value as f32 + shift).clamp(0.0, 255.0);
        let contrasted = ((brightened / 255.0 - 0.5) * gain + 0.5) * 255.0;
        let luma = contrasted.round().clamp(0.0, 255.0) as u32;
        // Dark pixels take the dense (last) characters; `invert` swaps that.
        let weight = if opts.invert { luma } else { 255 - luma };
        *slot = (weight * n / 256) as u8;
    }
    table
}

fn html(cells: &[[u8; 3]], width: usize, glyph: impl Fn([u8; 3]) -> char) -> String {
    const HEAD: &str = "<!doctype html>\n<html><head><meta charset=utf-8>\
        <meta name=viewport content=\"width=device-width\"><title>ASCII art</title>\
        <style>body{margin:0;background:#111}\
        pre{margin:0;padding:1em;font:10px/1.2 ui-monospace,Menlo,Consolas,monospace}</style>\
        </head><body><pre>";
    const TAIL: &str = "</pre></body></html>\n";
    // Worst case every cell opens its own span (~35 bytes); photos are usually far below.
    let mut out = String::with_capacity(HEAD.len() + TAIL.len() + cells.len() * 8);
    out.push_str(HEAD);
    let mut current: Option<[u8; 3]> = None;
    for (i, &colour) in cells.iter().enumerate() {
        // Runs of one colour share a span, and a run may continue across a line break.
        if current != Some(colour) {
            if current.is_some() {
                out.push_str("</span>");
            }
            out.push_str("<span style=\"color:#");
            push_hex(&mut out, colour);
            out.push_str("\">");
            current = Some(colour);
        }
        match glyph(colour) {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
        if (i + 1) % width == 0 {
            out.push('\n');
        }
    }
    if current.is_some() {
        out.push_str("</span>");
    }
    out.push_str(TAIL);
    out
}

/// `rrggbb`, without the formatting machinery: this runs once per colour run, which on
/// a photo is nearly once per character.
fn push_hex(out: &mut String, colour: [u8; 3]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in colour {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
}

fn ansi(cells: &[[u8; 3]], width: usize, glyph: impl Fn([u8; 3]) -> char) -> String {
    let mut out = String::with_capacity(cells.len() * 4);
    for line in cells.chunks_exact(width) {
        // Each line ends with a reset, so each line starts with no colour set.
        let mut current = None;
        for &colour in line {
            if current != Some(colour) {
                let [r, g, b] = colour;
                let _ = write!(out, "\x1b[38;2;{r};{g};{b}m");
                current = Some(colour);
            }
            out.push(glyph(colour));
        }
        out.push_str("\x1b[0m\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};

    fn text(img: &DynamicImage, opts: &AsciiOptions) -> String {
        render_ascii(img, img.dimensions(), opts, AsciiMode::Text).unwrap()
    }

    fn opts(columns: u32) -> AsciiOptions {
        AsciiOptions::new(Some(columns), None, false, 0, 0).unwrap()
    }

    fn grey(w: u32, h: u32, v: u8) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([v, v, v])))
    }

    #[test]
    fn rows_follow_the_contract_formula() {
        assert_eq!(ascii_rows(100, (4000, 3000)), 37);
        assert_eq!(ascii_rows(100, (100, 100)), 50);
        assert_eq!(ascii_rows(1, (1, 1)), 1); // floor(0.5) → at least one row
        assert_eq!(ascii_rows(80, (10_000, 10)), 1);
        assert_eq!(ascii_rows(10, (10, 1000)), 500);
    }

    #[test]
    fn every_line_has_exactly_the_column_count() {
        let cases = [
            ((1, 1), 1),
            ((1, 1), 7),
            ((640, 480), 100),
            ((10_000, 10), 80), // very wide: one row
            ((10, 1000), 10),   // very tall
            ((30, 70), 1000),   // more columns than source pixels
            ((4000, 3000), 1000),
        ];
        for ((w, h), columns) in cases {
            let img = grey(w, h, 100);
            let art = text(&img, &opts(columns));
            let rows = ascii_rows(columns, (w, h));
            assert!(art.ends_with('\n'));
            let lines: Vec<&str> = art.split_terminator('\n').collect();
            assert_eq!(lines.len(), rows as usize, "{w}x{h} at {columns}");
            for line in lines {
                assert_eq!(
                    line.chars().count(),
                    columns as usize,
                    "{w}x{h} at {columns}"
                );
            }
        }
    }

    #[test]
    fn rows_come_from_the_full_size_not_the_shrunk_decode() {
        let shrunk = grey(500, 375, 0);
        let art = render_ascii(&shrunk, (4000, 3000), &opts(100), AsciiMode::Text).unwrap();
        assert_eq!(art.lines().count(), 37);
    }

    #[test]
    fn dark_maps_to_dense_and_invert_swaps() {
        let black = grey(20, 20, 0);
        let white = grey(20, 20, 255);
        assert!(text(&black, &opts(4)).starts_with("@@@@\n"));
        assert!(text(&white, &opts(4)).starts_with("    \n"));
        let inverted = AsciiOptions::new(Some(4), None, true, 0, 0).unwrap();
        assert!(text(&black, &inverted).starts_with("    \n"));
        assert!(text(&white, &inverted).starts_with("@@@@\n"));
    }

    #[test]
    fn transparent_reads_as_light() {
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0])));
        assert_eq!(text(&clear, &opts(2)), "  \n");
    }

    #[test]
    fn brightness_and_contrast_shift_the_mapping() {
        let mid = grey(10, 10, 128);
        let plain = text(&mid, &opts(1));
        let brighter = text(
            &mid,
            &AsciiOptions::new(Some(1), None, false, 100, 0).unwrap(),
        );
        let flatter = text(
            &mid,
            &AsciiOptions::new(Some(1), None, false, 0, -100).unwrap(),
        );
        assert_ne!(plain, brighter);
        assert_eq!(brighter, " \n"); // +255 saturates to white
        assert_eq!(flatter.chars().next(), plain.chars().next()); // zero gain → mid-grey
    }

    /// A 1-pixel checkerboard averages to mid-grey in every cell; point sampling would give
    /// a random-looking mix of the lightest and densest characters.
    #[test]
    fn fine_checkerboard_renders_uniform_mid_grey() {
        let board = RgbImage::from_fn(401, 203, |x, y| {
            let v = if (x + y) % 2 == 0 { 0 } else { 255 };
            Rgb([v, v, v])
        });
        let board = DynamicImage::ImageRgb8(board);
        // Three characters: the mean grey lands in the middle of the middle bin.
        let three = AsciiOptions::new(Some(37), Some("abc"), false, 0, 0).unwrap();
        let art = text(&board, &three);
        assert!(art.chars().all(|c| c == 'b' || c == '\n'), "{art}");
        // The default charset puts 50 % grey on the boundary of its two middle characters.
        let art = text(&board, &opts(37));
        assert!(art.chars().all(|c| "=+\n".contains(c)), "{art}");
    }

    #[test]
    fn option_validation_names_the_key() {
        let err = |r: Result<AsciiOptions, ImagingError>| match r {
            Err(ImagingError::BadSpec(m)) => m,
            other => panic!("expected BadSpec, got {other:?}"),
        };
        assert!(err(AsciiOptions::new(Some(0), None, false, 0, 0)).contains("`w`"));
        assert!(err(AsciiOptions::new(Some(1001), None, false, 0, 0)).contains("`w`"));
        assert!(err(AsciiOptions::new(None, Some("x"), false, 0, 0)).contains("`charset`"));
        let long = "x".repeat(65);
        assert!(err(AsciiOptions::new(None, Some(&long), false, 0, 0)).contains("`charset`"));
        assert!(err(AsciiOptions::new(None, Some("a\nb"), false, 0, 0)).contains("`charset`"));
        assert!(err(AsciiOptions::new(None, None, false, 101, 0)).contains("`bri`"));
        assert!(err(AsciiOptions::new(None, None, false, 0, -101)).contains("`con`"));
        let ok = AsciiOptions::new(Some(1000), Some("ab"), false, 0, 0).unwrap();
        assert_eq!(ok.charset, vec!['a', 'b']);
        assert!(AsciiOptions::new(None, Some(&"é".repeat(64)), false, 0, 0).is_ok());
        assert_eq!(
            AsciiOptions::new(None, None, false, 0, 0).unwrap(),
            AsciiOptions::default()
        );
    }

    #[test]
    fn too_many_cells_is_refused() {
        let tall = grey(1, 100_000, 0);
        let r = render_ascii(&tall, (1, 100_000), &opts(1000), AsciiMode::Text);
        assert!(matches!(r, Err(ImagingError::BadSpec(m)) if m.contains("`w`")));
    }

    #[test]
    fn html_is_a_page_with_colour_runs_and_escapes() {
        // Left half red, right half blue: two runs on each of the 10 lines.
        let img = RgbImage::from_fn(40, 200, |x, _| {
            if x < 20 {
                Rgb([200, 0, 0])
            } else {
                Rgb([0, 0, 200])
            }
        });
        let img = DynamicImage::ImageRgb8(img);
        let charset = AsciiOptions::new(Some(4), Some("&<>"), false, 0, 0).unwrap();
        let page = render_ascii(&img, (40, 200), &charset, AsciiMode::Html).unwrap();
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<meta charset=utf-8>"));
        assert!(page.contains("<pre>") && page.contains("background:"));
        assert!(page.contains("<span style=\"color:#c80000\">"));
        assert!(page.contains("<span style=\"color:#0000c8\">"));
        assert_eq!(page.matches("<span").count(), 2 * 10);
        assert!(page.contains("&gt;") || page.contains("&lt;") || page.contains("&amp;"));
        let pre = &page[page.find("<pre>").unwrap() + 5..page.find("</pre>").unwrap()];
        let mut visible = String::new();
        let mut in_tag = false;
        for c in pre.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => visible.push(c),
                _ => {}
            }
        }
        let visible = visible
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        assert_eq!(visible.lines().count(), 10);
        assert!(visible.lines().all(|l| l.chars().count() == 4));
    }

    #[test]
    fn ansi_emits_colour_only_on_change_and_keeps_visible_width() {
        let img = grey(30, 30, 40);
        let art = render_ascii(&img, (30, 30), &opts(6), AsciiMode::Ansi).unwrap();
        let lines: Vec<&str> = art.split_terminator('\n').collect();
        assert_eq!(lines.len(), 3);
        for line in lines {
            assert!(line.starts_with("\x1b[38;2;40;40;40m"));
            assert!(line.ends_with("\x1b[0m"));
            assert_eq!(line.matches("\x1b[38;2;").count(), 1);
            let visible = line
                .trim_start_matches("\x1b[38;2;40;40;40m")
                .trim_end_matches("\x1b[0m");
            assert_eq!(visible.chars().count(), 6);
        }
    }
}

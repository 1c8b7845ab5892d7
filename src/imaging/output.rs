//! What a request can ask for: a raster format, a traced SVG, or ASCII art; which
//! transform keys each accepts; and the one render pipeline that produces it.

use std::time::Instant;

use image::DynamicImage;

use super::animation::{self, AnimatedFrame, Animation};
use super::ascii::{render_ascii, AsciiMode, AsciiOptions};
use super::colour::SourceProfile;
use super::encode::{carries_profile, encode_with_profile};
use super::publish;
use super::trace::{trace_svg, TraceOptions};
use super::watermark::overlay;
use super::{apply, decode_for, DecodeLimits, Decoded, Format, Gravity, ImagingError, Spec};

/// An output a URL extension can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Raster(Format),
    /// A traced vector image (`svg`).
    Svg,
    /// ASCII art (`txt`, `html`, `ansi`).
    Ascii(AsciiMode),
}

/// Every extension accepted, for error messages and docs.
pub const OUTPUT_EXTS: &str =
    "jpg, jpeg, png, webp, gif, bmp, tiff, ico, avif, svg, txt, html, ansi";

impl Output {
    pub fn from_ext(ext: &str) -> Option<Output> {
        match ext.to_ascii_lowercase().as_str() {
            "svg" => Some(Output::Svg),
            "txt" => Some(Output::Ascii(AsciiMode::Text)),
            "html" => Some(Output::Ascii(AsciiMode::Html)),
            "ansi" => Some(Output::Ascii(AsciiMode::Ansi)),
            other => Format::from_ext(other)
                .filter(|f| f.can_encode())
                .map(Output::Raster),
        }
    }

    /// Text outputs (traced SVG, ASCII art): worth compressing on the wire.
    pub fn is_text(self) -> bool {
        !matches!(self, Output::Raster(_))
    }

    /// Canonical extension.
    pub fn ext(self) -> &'static str {
        match self {
            Output::Raster(f) => f.ext(),
            Output::Svg => "svg",
            Output::Ascii(AsciiMode::Text) => "txt",
            Output::Ascii(AsciiMode::Html) => "html",
            Output::Ascii(AsciiMode::Ansi) => "ansi",
        }
    }

    /// Name as used for formats in JSON and metrics (`jpeg`, `svg`, `txt`, …).
    pub fn name(self) -> &'static str {
        match self {
            Output::Raster(f) => f.name(),
            other => other.ext(),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Raster(f) => f.content_type(),
            Output::Svg => "image/svg+xml",
            Output::Ascii(AsciiMode::Html) => "text/html; charset=utf-8",
            Output::Ascii(_) => "text/plain; charset=utf-8",
        }
    }

    /// Refuse keys that mean nothing for this output, rather than ignoring them.
    pub fn check(self, spec: &Spec) -> Result<(), ImagingError> {
        let ascii_keys = [("charset", spec.charset.is_some()), ("invert", spec.invert)];
        let trace_keys = [
            ("colors", spec.colors.is_some()),
            ("detail", spec.detail.is_some()),
        ];
        let refused: Vec<(&str, bool)> = match self {
            Output::Raster(_) => [ascii_keys, trace_keys].concat(),
            Output::Svg => [&ascii_keys[..], &[("q", spec.quality.is_some())]].concat(),
            Output::Ascii(_) => [
                &trace_keys[..],
                &[
                    ("h", spec.height.is_some()),
                    ("fit", spec.fit != super::Fit::Contain),
                    ("enlarge", spec.enlarge),
                    ("q", spec.quality.is_some()),
                ],
            ]
            .concat(),
        };
        match refused.into_iter().find(|(_, given)| *given) {
            Some((key, _)) => Err(ImagingError::BadSpec(format!(
                "transform `{key}` does not apply to .{} output",
                self.ext()
            ))),
            None => Ok(()),
        }
    }
}

/// The result of one render, with what telemetry wants to know about the decode.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub source: Format,
    pub decode_seconds: f64,
    /// Pixels the decoder produced (fewer than the source has after shrink-on-load).
    pub decoded_pixels: u64,
}

/// Decode (once), transform and produce `output`: what every render is.
pub fn render(
    bytes: &[u8],
    limits: &DecodeLimits,
    spec: &Spec,
    output: Output,
) -> Result<Rendered, ImagingError> {
    render_watermarked(bytes, None, limits, spec, output)
}

/// [`render`], with the bytes of the spec's watermark image (`wm`) when it names one.
pub fn render_watermarked(
    bytes: &[u8],
    watermark: Option<&[u8]>,
    limits: &DecodeLimits,
    spec: &Spec,
    output: Output,
) -> Result<Rendered, ImagingError> {
    output.check(spec)?;
    if let Some(published) = published(bytes, watermark, limits, spec, output) {
        return Ok(published);
    }
    let ascii = match output {
        Output::Ascii(_) => Some(AsciiOptions::new(
            spec.width,
            spec.charset.as_deref(),
            spec.invert,
            // bri/con run as ordinary transforms below, not twice.
            0,
            0,
        )?),
        _ => None,
    };
    let trace = match output {
        Output::Svg => Some(TraceOptions::new(spec.colors, spec.detail)?),
        _ => None,
    };
    // ASCII does its own area-averaging resize to the column count: the pixel pipeline
    // keeps every other transform but not the size keys, and the decoder is told only
    // how many columns are needed so it may shrink the source to just above that.
    let (decode_hint, pixel_spec) = match &ascii {
        Some(opts) => {
            let quarter_turn = matches!(spec.rotate, 90 | 270);
            let columns = Some(opts.columns);
            let hint = Spec {
                width: if quarter_turn { None } else { columns },
                height: if quarter_turn { columns } else { None },
                crop: spec.crop,
                ..Spec::default()
            };
            (
                hint,
                Spec {
                    width: None,
                    ..spec.clone()
                },
            )
        }
        None => (spec.clone(), spec.clone()),
    };

    let started = Instant::now();
    // Animated GIF, WebP and AVIF sources are read frame by frame when the output can
    // animate.
    let frames = match output {
        Output::Raster(Format::Gif | Format::Webp) => {
            super::decode::guarded(|| animation::decode_frames(bytes, limits))?
        }
        _ => None,
    };
    let decoded = match frames {
        Some(animation) if animation.frames.len() > 1 => {
            let decode_seconds = started.elapsed().as_secs_f64();
            return render_frames((animation, decode_seconds), watermark, limits, spec, output);
        }
        Some(mut animation) => {
            let frame = animation
                .frames
                .pop()
                .ok_or_else(|| ImagingError::Corrupt("no frames".into()))?;
            let full_size = frame.image.dimensions();
            Decoded {
                format: animation.format,
                image: DynamicImage::ImageRgba8(frame.image),
                lossless: animation.format != Format::Avif,
                full_size,
                profile: animation.profile,
            }
        }
        None => decode_for(bytes, limits, &decode_hint)?,
    };
    let decode_seconds = started.elapsed().as_secs_f64();
    // `color=keep`: the profile leaves the pixels unconverted and goes into the output,
    // when the output can carry one; other outputs are converted to sRGB as usual.
    let mut decoded = decoded;
    let kept = match output {
        Output::Raster(format) if spec.keep_colour && carries_profile(format) => {
            std::mem::take(&mut decoded.profile)
        }
        _ => SourceProfile::srgb(),
    };
    let (source, lossless) = (decoded.format, decoded.lossless);
    let decoded_pixels = u64::from(decoded.image.width()) * u64::from(decoded.image.height());
    let shrink = f64::from(decoded.image.width()) / f64::from(decoded.full_size.0.max(1));
    let mut img: DynamicImage = apply(decoded, &pixel_spec)?;
    if let Some(mark) = watermark {
        let mark = decode_for(mark, limits, &Spec::default())?.into_srgb()?;
        img = overlay(img, &mark, spec)?;
    }

    let bytes = match output {
        Output::Raster(format) => encode_with_profile(&img, format, spec, lossless, kept.bytes())?,
        Output::Svg => trace_svg(&img, &trace.unwrap_or_default())?.into_bytes(),
        Output::Ascii(mode) => {
            // Rows follow the full-resolution shape, whatever the decoder shrank.
            let logical = (
                (f64::from(img.width()) / shrink).round() as u32,
                (f64::from(img.height()) / shrink).round() as u32,
            );
            let opts = ascii.unwrap_or_default();
            render_ascii(&img, logical, &opts, mode)?.into_bytes()
        }
    };
    Ok(Rendered {
        bytes,
        source,
        decode_seconds,
        decoded_pixels,
    })
}

/// The image in its own format with no transforms: its own encoded pixels with the
/// metadata that could identify or locate a person removed (see `publish`), when the
/// format is stripped losslessly and the result is one a browser's decoder reads; `None`
/// renders it like any variant (a re-encode, which keeps nothing but pixels).
fn published(
    bytes: &[u8],
    watermark: Option<&[u8]>,
    limits: &DecodeLimits,
    spec: &Spec,
    output: Output,
) -> Option<Rendered> {
    let Output::Raster(format) = output else {
        return None;
    };
    if !spec.is_identity() || watermark.is_some() {
        return None;
    }
    let (source, orientation) = super::decode::format_and_orientation(bytes, limits)?;
    if source != format {
        return None;
    }
    let stripped = publish::publishable(bytes, format, orientation)?;
    // What progimage's decoders tolerate, a browser's may not (libwebp is stricter than
    // image-webp; a stripped JPEG is checked too): publish only what those read.
    let browsers_read = match format {
        Format::Webp => webp::Decoder::new(&stripped).decode().is_some(),
        Format::Jpeg => super::libjpeg::reads(&stripped),
        _ => true,
    };
    browsers_read.then_some(Rendered {
        bytes: stripped,
        source,
        decode_seconds: 0.0,
        decoded_pixels: 0,
    })
}

/// Transform every frame the same way and encode them as one animation.
fn render_frames(
    (animation, decode_seconds): (Animation, f64),
    watermark: Option<&[u8]>,
    limits: &DecodeLimits,
    spec: &Spec,
    output: Output,
) -> Result<Rendered, ImagingError> {
    let Output::Raster(format) = output else {
        return Err(ImagingError::Encode("only gif and webp animate".into()));
    };
    let mark = match watermark {
        Some(bytes) => Some(decode_for(bytes, limits, &Spec::default())?.into_srgb()?),
        None => None,
    };
    let Animation {
        format: source,
        frames,
        profile,
    } = animation;
    let decoded_pixels = frames
        .iter()
        .map(|f| u64::from(f.image.width()) * u64::from(f.image.height()))
        .sum();
    // A smart cut chosen per frame would jitter from frame to frame: animations are cut
    // at the centre instead.
    let spec = Spec {
        gravity: match spec.gravity {
            Gravity::Smart => Gravity::Center,
            other => other,
        },
        ..spec.clone()
    };
    let transform = |frame: AnimatedFrame| -> Result<(DynamicImage, u32), ImagingError> {
        let full_size = frame.image.dimensions();
        let decoded = Decoded {
            format: source,
            image: DynamicImage::ImageRgba8(frame.image),
            lossless: source != Format::Avif,
            full_size,
            profile: profile.clone(),
        };
        let mut img = apply(decoded, &spec)?;
        if let Some(mark) = &mark {
            img = overlay(img, mark, &spec)?;
        }
        Ok((img, frame.delay_ms))
    };
    let count = frames.len() as u64;
    let mut frames = frames.into_iter();
    let first = frames
        .next()
        .ok_or_else(|| ImagingError::Corrupt("an animation without frames".into()))?;
    let first = transform(first)?;
    // Every frame comes out the size of the first: the budget is known before the rest.
    let (w, h) = (first.0.width(), first.0.height());
    let total = u64::from(w) * u64::from(h) * count;
    if total > limits.max_animation_pixels {
        return Err(ImagingError::TooManyPixels(format!(
            "{count} frames of {w}x{h} would be {total} pixels; an animated output holds at \
             most {} (ask for a smaller w or h)",
            limits.max_animation_pixels
        )));
    }
    let out = std::iter::once(Ok(first)).chain(frames.map(transform));
    Ok(Rendered {
        // A GIF's frames are exact palettes: keep them lossless in WebP unless asked.
        bytes: animation::encode_frames(out, format, spec.quality, source == Format::Gif)?,
        source,
        decode_seconds,
        decoded_pixels,
    })
}

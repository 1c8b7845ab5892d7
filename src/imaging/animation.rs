//! Animated GIF, WebP and AVIF: every frame (and its timing) goes through the same
//! transforms when the output can animate (gif, webp). Frames are decoded full-canvas (the
//! decoders apply disposal and blending), so each is an ordinary image to the pipeline.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Delay, DynamicImage, Frame, Frames, ImageDecoder, RgbaImage};

use super::colour::SourceProfile;
use super::{avif, DecodeLimits, Format, ImagingError};

/// Most frames one animation may have.
pub const MAX_FRAMES: usize = 1000;
/// GIF's minimum practical delay; browsers turn 0–10 ms into ~100 ms anyway.
const MIN_DELAY_MS: u32 = 20;

/// A decoded animation: its frames and the colour space they are in.
pub struct Animation {
    pub format: Format,
    pub frames: Vec<AnimatedFrame>,
    pub profile: SourceProfile,
}

/// One decoded frame and how long it shows.
pub struct AnimatedFrame {
    pub image: RgbaImage,
    pub delay_ms: u32,
}

/// The frames of a GIF (any number), an animated WebP or an animated AVIF; `None` for
/// anything else, which the caller decodes as a still image. Canvas size, frame count and
/// total pixels (canvas × frames) are bounded before and while frames are decoded.
pub fn decode_frames(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<Animation>, ImagingError> {
    if avif::looks_like_avif(bytes) {
        let animation = avif::decode_frames(bytes, limits)?;
        return Ok(animation.map(|(frames, profile)| Animation {
            format: Format::Avif,
            frames,
            profile,
        }));
    }
    let decoder_limits = || {
        let mut l = image::Limits::default();
        l.max_alloc = Some(limits.max_alloc);
        l
    };
    let mut profile = SourceProfile::srgb();
    let (format, frames): (Format, Frames<'_>) = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Gif) => {
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            decoder.set_limits(decoder_limits()).map_err(corrupt)?;
            check_canvas(decoder.dimensions(), limits)?;
            (Format::Gif, decoder.into_frames())
        }
        Ok(image::ImageFormat::WebP) => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            if !decoder.has_animation() {
                return Ok(None);
            }
            decoder.set_limits(decoder_limits()).map_err(corrupt)?;
            check_canvas(decoder.dimensions(), limits)?;
            // An unreadable profile is no reason to refuse the frames (as for stills).
            if let Ok(Some(icc)) = decoder.icc_profile() {
                profile = SourceProfile::icc(icc);
            }
            (Format::Webp, decoder.into_frames())
        }
        _ => return Ok(None),
    };
    let mut out = Vec::new();
    let mut pixels = 0u64;
    for frame in frames {
        // A frame that does not decode ends the animation where it is, as browsers show
        // it; only an animation without a single frame is an error.
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if out.is_empty() || matches!(e, image::ImageError::Limits(_)) => {
                return Err(corrupt(e))
            }
            Err(_) => break,
        };
        let (num, den) = frame.delay().numer_denom_ms();
        let delay_ms = num.checked_div(den).unwrap_or(0);
        let image = frame.into_buffer();
        pixels += u64::from(image.width()) * u64::from(image.height());
        if out.len() >= MAX_FRAMES || pixels > limits.max_pixels {
            return Err(ImagingError::TooManyPixels(format!(
                "the animation has more than {MAX_FRAMES} frames or {} pixels in all",
                limits.max_pixels
            )));
        }
        out.push(AnimatedFrame { image, delay_ms });
    }
    Ok(Some(Animation {
        format,
        frames: out,
        profile,
    }))
}

fn check_canvas((w, h): (u32, u32), limits: &DecodeLimits) -> Result<(), ImagingError> {
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(ImagingError::TooManyPixels(format!(
            "{w}x{h} is over the limit of {} pixels",
            limits.max_pixels
        )));
    }
    Ok(())
}

/// Encode transformed frames as an animated GIF or WebP that loops forever. Frames are
/// taken one at a time as they are made: GIF encodes each as it arrives; WebP keeps
/// only the RGBA buffers its encoder needs together.
pub fn encode_frames(
    frames: impl Iterator<Item = Result<(DynamicImage, u32), ImagingError>>,
    format: Format,
    quality: Option<u8>,
    lossless: bool,
) -> Result<Vec<u8>, ImagingError> {
    let mut frames = frames.peekable();
    match frames.peek() {
        Some(Ok((first, _))) => {
            super::encode::check_side_limit((first.width(), first.height()), format)?
        }
        Some(Err(_)) => {}
        None => return Err(ImagingError::Encode("an animation needs frames".into())),
    }
    let mut out = Vec::new();
    match format {
        Format::Gif => {
            let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
            encoder.set_repeat(Repeat::Infinite).map_err(encode_error)?;
            for frame in frames {
                let (img, delay) = frame?;
                let delay = Delay::from_numer_denom_ms(delay.max(MIN_DELAY_MS), 1);
                encoder
                    .encode_frame(Frame::from_parts(img.into_rgba8(), 0, 0, delay))
                    .map_err(encode_error)?;
            }
        }
        Format::Webp => {
            let buffers: Vec<(RgbaImage, u32)> = frames
                .map(|frame| frame.map(|(img, d)| (img.into_rgba8(), d)))
                .collect::<Result<_, _>>()?;
            let (w, h) = buffers
                .first()
                .map(|(b, _)| b.dimensions())
                .ok_or_else(|| ImagingError::Encode("an animation needs frames".into()))?;
            let mut config = webp::WebPConfig::new()
                .map_err(|()| ImagingError::Encode("libwebp config failed".into()))?;
            config.lossless = i32::from(lossless && quality.is_none());
            config.quality = f32::from(quality.unwrap_or(super::encode::DEFAULT_WEBP_QUALITY));
            let mut encoder = webp::AnimEncoder::new(w, h, &config);
            encoder.set_loop_count(0);
            let mut timestamp = 0i32;
            for (buffer, delay) in &buffers {
                encoder.add_frame(webp::AnimFrame::from_rgba(buffer, w, h, timestamp));
                timestamp = timestamp.saturating_add(i32::try_from(*delay).unwrap_or(i32::MAX));
            }
            let encoded = encoder
                .try_encode()
                .map_err(|e| ImagingError::Encode(format!("animated WebP: {e:?}")))?;
            out = encoded.to_vec();
            end_last_frame_at(&mut out, timestamp);
        }
        other => {
            return Err(ImagingError::Encode(format!(
                "{} cannot hold an animation",
                other.name()
            )))
        }
    }
    Ok(out)
}

/// Give the last frame of an animated WebP the duration that ends the animation at `end`
/// ms. The `webp` crate closes the animation at timestamp 0, so libwebp gives the last
/// frame the one before it's duration; this sets its `ANMF` duration to what is left
/// after the frames before it (libwebp may have merged identical frames, so their
/// durations are read back rather than assumed).
fn end_last_frame_at(webp: &mut [u8], end: i32) {
    let mut at = 12; // "RIFF", size, "WEBP"
    let (mut before_last, mut last) = (0u32, None::<(usize, u32)>);
    while let Some(header) = webp.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        // An ANMF payload: x, y, width - 1, height - 1, then the 24-bit duration.
        if &header[..4] == b"ANMF" {
            if let Some(d) = webp.get(at + 20..at + 23) {
                before_last += last.map_or(0, |(_, duration)| duration);
                last = Some((at + 20, u32::from_le_bytes([d[0], d[1], d[2], 0])));
            }
        }
        at = at.saturating_add(8 + size + size % 2);
    }
    let Some((field, _)) = last else {
        return;
    };
    let remaining = u32::try_from(end).unwrap_or(0).saturating_sub(before_last);
    let duration = remaining.min(0xff_ffff).to_le_bytes();
    webp[field..field + 3].copy_from_slice(&duration[..3]);
}

fn corrupt(e: image::ImageError) -> ImagingError {
    match e {
        image::ImageError::Limits(l) => ImagingError::TooManyPixels(l.to_string()),
        other => ImagingError::Corrupt(other.to_string()),
    }
}

fn encode_error(e: image::ImageError) -> ImagingError {
    ImagingError::Encode(e.to_string())
}

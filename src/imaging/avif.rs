//! AVIF input: the HEIF container read with `mp4parse` (Mozilla's, as Firefox uses); the
//! AV1 pictures inside decoded by `av1`.
//!
//! A still AVIF is its primary image and that image's alpha auxiliary image; premultiplied
//! alpha is undone; `irot` then `imir` turn the result upright. An animated AVIF (an
//! `avis` image sequence) is its first picture track, every sample decoded in order with
//! one decoder (inter frames need the frames before them), and the alpha track that refers
//! to it (`auxl`), when there is one; its frames go to animated outputs, and its still
//! image is the primary item, or the first frame when the file has none. The colour comes
//! from the `colr` ICC profile, else the `nclx` box, else the AV1 sequence header.
//!
//! Not read: image grids (tiled AVIFs), and the track matrix of a sequence (no encoder
//! writes one but the identity).

use std::io::Cursor;
use std::ops::Range;

use image::DynamicImage;
use mp4parse::unstable::create_sample_table;
use mp4parse::{
    AvifContext, ImageMirror, ImageRotation, ParseStrictness, SampleEntry, Track, TrackType,
    VideoCodecSpecific,
};

use super::animation::{AnimatedFrame, MAX_FRAMES};
use super::av1::{self, Planes};
use super::colour::{self, SourceProfile};
use super::{DecodeLimits, ImagingError};

/// Whether the bytes are an AVIF (an `ftyp` box naming the `avif` or `avis` brand).
pub fn looks_like_avif(bytes: &[u8]) -> bool {
    let Some(size) = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    if bytes.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let ftyp = bytes
        .get(8..(size as usize).min(bytes.len()))
        .unwrap_or_default();
    ftyp.chunks_exact(4)
        .enumerate()
        .any(|(i, brand)| i != 1 && (brand == b"avif" || brand == b"avis")) // [1] is the minor version
}

/// What the header says: the upright size and whether there is alpha.
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
}

fn unsupported(what: &str) -> ImagingError {
    ImagingError::Unsupported(format!("{what} is not supported"))
}

fn corrupt(what: &str) -> ImagingError {
    ImagingError::Corrupt(format!("the AVIF is malformed: {what}"))
}

/// The file's still image: its primary item, or the first frame of its sequence.
enum Still {
    Item {
        context: Box<AvifContext>,
        primary: Vec<u8>,
    },
    FirstFrame(Sequence),
}

fn parse(bytes: &[u8]) -> Result<Still, ImagingError> {
    let parsed = mp4parse::read_avif(&mut Cursor::new(bytes), ParseStrictness::Normal);
    if let Ok(context) = &parsed {
        if let Some(primary) = context.primary_item_coded_data() {
            let primary = primary.to_vec();
            let context = Box::new(parsed.expect("checked just above"));
            return Ok(Still::Item { context, primary });
        }
    }
    let icc = parsed.as_ref().ok().and_then(icc_of);
    if let Some(sequence) = Sequence::read(bytes, icc)? {
        return Ok(Still::FirstFrame(sequence));
    }
    match parsed {
        Ok(_) => Err(unsupported("an AVIF whose image is a grid of tiles")),
        Err(e) => Err(corrupt(&format!("{e:?}"))),
    }
}

/// Quarter turns clockwise that `irot` asks for (it counts anticlockwise).
fn turns(context: &AvifContext) -> u8 {
    match context.image_rotation() {
        Ok(ImageRotation::D90) => 3,
        Ok(ImageRotation::D180) => 2,
        Ok(ImageRotation::D270) => 1,
        _ => 0,
    }
}

/// Read the header, without decoding pixels.
pub fn header(bytes: &[u8]) -> Result<Header, ImagingError> {
    match parse(bytes)? {
        Still::Item { context, primary } => {
            let (w, h) = av1::coded_size(&primary)?;
            let (width, height) = if turns(&context) % 2 == 1 {
                (h, w)
            } else {
                (w, h)
            };
            Ok(Header {
                width,
                height,
                has_alpha: context.alpha_item_coded_data().is_some(),
            })
        }
        Still::FirstFrame(sequence) => Ok(Header {
            width: sequence.width,
            height: sequence.height,
            has_alpha: sequence.alpha.is_some(),
        }),
    }
}

/// Decode the still image (and its alpha) upright, with the profile its pixels are in.
/// `max_pixels` bounds every frame rav1d allocates.
pub fn decode(
    bytes: &[u8],
    max_pixels: u64,
) -> Result<(DynamicImage, SourceProfile), ImagingError> {
    let (context, primary) = match parse(bytes)? {
        Still::Item { context, primary } => (context, primary),
        Still::FirstFrame(sequence) => {
            let (mut first, profile) = sequence.decode(bytes, 1)?;
            let image = first.pop().ok_or_else(|| corrupt("no frames"))?;
            return Ok((image, profile));
        }
    };
    let colour = first_picture(&primary, max_pixels)?;
    let mut image = colour.to_rgb()?;
    if let Some(alpha_obus) = context.alpha_item_coded_data() {
        let alpha = first_picture(alpha_obus, max_pixels)?;
        image = av1::with_alpha(image, &alpha, context.premultiplied_alpha)?;
    }
    image = match turns(&context) {
        1 => image.rotate90(),
        2 => image.rotate180(),
        3 => image.rotate270(),
        _ => image,
    };
    // SAFETY: mp4parse returns null or a pointer into `context`, which is alive here.
    if let Some(mirror) = context
        .image_mirror_ptr()
        .ok()
        .and_then(|p| unsafe { p.as_ref() })
    {
        image = match mirror {
            ImageMirror::TopBottom => image.flipv(),
            ImageMirror::LeftRight => image.fliph(),
        };
    }
    Ok((image, profile(icc_of(&context), bytes, &colour)))
}

fn first_picture(obus: &[u8], max_pixels: u64) -> Result<Planes, ImagingError> {
    av1::decode(&[obus], max_pixels)?
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("no picture"))
}

/// The profile of the pixels: the `colr` ICC profile, else the `nclx` box, else the
/// AV1 sequence header's colour description.
fn profile(icc: Option<Vec<u8>>, bytes: &[u8], picture: &Planes) -> SourceProfile {
    match icc {
        Some(icc) => SourceProfile::icc(icc),
        None => {
            let cicp = nclx(bytes).unwrap_or([picture.primaries, picture.transfer, 0, 1]);
            colour::from_cicp([cicp[0], cicp[1], 0, 1]).unwrap_or_default()
        }
    }
}

/// The `nclx` colour box's primaries, transfer, matrix and range, found by its bytes
/// (mp4parse keeps the values private).
fn nclx(bytes: &[u8]) -> Option<[u8; 4]> {
    let at = memchr::memmem::find(bytes, b"colrnclx")? + 8;
    let b = bytes.get(at..at + 7)?;
    let small = |hi: u8, lo: u8| (hi == 0).then_some(lo);
    Some([
        small(b[0], b[1])?,
        small(b[2], b[3])?,
        small(b[4], b[5])?,
        b[6] >> 7,
    ])
}

/// The frames of an animated AVIF (an image sequence of two or more samples), upright
/// RGBA with their display times, and the profile they are in; `None` for a still AVIF.
/// Frame count and all frames' pixels are bounded before anything is decoded.
pub fn decode_frames(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(Vec<AnimatedFrame>, SourceProfile)>, ImagingError> {
    let Some(sequence) = Sequence::read(bytes, primary_icc(bytes))? else {
        return Ok(None);
    };
    let count = sequence.colour.ranges.len();
    if count < 2 {
        return Ok(None);
    }
    let pixels = u64::from(sequence.width) * u64::from(sequence.height) * count as u64;
    if count > MAX_FRAMES || pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels(format!(
            "the animation has more than {MAX_FRAMES} frames or {} pixels in all",
            limits.max_pixels
        )));
    }
    let (images, profile) = sequence.decode(bytes, count)?;
    let delays = &sequence.colour.delays_ms;
    let frames = images
        .into_iter()
        .enumerate()
        .map(|(i, image)| AnimatedFrame {
            image: image.into_rgba8(),
            delay_ms: delays.get(i).copied().unwrap_or(100),
        })
        .collect();
    Ok(Some((frames, profile)))
}

/// The ICC profile of the file's primary image, if it has both.
fn primary_icc(bytes: &[u8]) -> Option<Vec<u8>> {
    let context = mp4parse::read_avif(&mut Cursor::new(bytes), ParseStrictness::Normal).ok()?;
    icc_of(&context)
}

fn icc_of(context: &AvifContext) -> Option<Vec<u8>> {
    match context.icc_colour_information() {
        Some(Ok(icc)) => Some(icc.to_vec()),
        _ => None,
    }
}

/// An image sequence: its picture track, the alpha track that refers to it, the size
/// its sequence header gives, and the ICC profile the file gives its primary image.
struct Sequence {
    colour: TrackSamples,
    alpha: Option<TrackSamples>,
    width: u32,
    height: u32,
    icc: Option<Vec<u8>>,
}

/// Where a track's AV1 samples lie in the file, in decode order, how long each shows,
/// and the track's `av1C` config OBUs (its sequence header).
struct TrackSamples {
    ranges: Vec<Range<usize>>,
    delays_ms: Vec<u32>,
    config: Vec<u8>,
}

impl Sequence {
    /// The file's sequence, `None` when it has no AV1 picture track.
    fn read(bytes: &[u8], icc: Option<Vec<u8>>) -> Result<Option<Sequence>, ImagingError> {
        if memchr::memmem::find(bytes, b"moov").is_none() {
            return Ok(None);
        }
        let Ok(movie) = mp4parse::read_mp4(&mut Cursor::new(bytes)) else {
            return Ok(None);
        };
        let is_picture = |t: &&Track| matches!(t.track_type, TrackType::Picture | TrackType::Video);
        let Some(track) = movie.tracks.iter().find(is_picture) else {
            return Ok(None);
        };
        let Some(colour) = TrackSamples::read(track, bytes.len()) else {
            return Ok(None);
        };
        let alpha = track.track_id.and_then(|id| {
            movie
                .tracks
                .iter()
                .filter(|t| matches!(t.track_type, TrackType::AuxiliaryVideo))
                .find(|t| t.tref.as_ref().is_some_and(|r| r.has_auxl_reference(id)))
                .and_then(|t| TrackSamples::read(t, bytes.len()))
        });
        let (width, height) = av1::coded_size(&colour.first(bytes))?;
        Ok(Some(Sequence {
            colour,
            alpha,
            width,
            height,
            icc,
        }))
    }

    /// Decode the first `count` frames, and tell the profile they are in.
    fn decode(
        &self,
        bytes: &[u8],
        count: usize,
    ) -> Result<(Vec<DynamicImage>, SourceProfile), ImagingError> {
        let frame_pixels = u64::from(self.width) * u64::from(self.height);
        let colour = self.colour.decode(bytes, count, frame_pixels)?;
        let alpha = match &self.alpha {
            Some(track) => Some(track.decode(bytes, count, frame_pixels)?),
            None => None,
        };
        let mut frames = Vec::with_capacity(colour.len());
        for (i, picture) in colour.iter().enumerate() {
            let mut image = picture.to_rgb()?;
            if let Some(alpha) = alpha.as_ref().and_then(|a| a.get(i)) {
                image = av1::with_alpha(image, alpha, false)?;
            }
            frames.push(image);
        }
        Ok((frames, profile(self.icc.clone(), bytes, &colour[0])))
    }
}

impl TrackSamples {
    /// `None` when the track is not AV1, has no samples or points outside the file. A
    /// table of one fixed sample size is refused: AV1 samples differ in size, and without
    /// their list the table could claim any number of samples.
    fn read(track: &Track, file_len: usize) -> Option<TrackSamples> {
        let SampleEntry::Video(entry) = track.stsd.as_ref()?.descriptions.first()? else {
            return None;
        };
        let VideoCodecSpecific::AV1Config(config) = &entry.codec_specific else {
            return None;
        };
        let sizes = track.stsz.as_ref()?;
        let listed = sizes.sample_sizes.len();
        if sizes.sample_size != 0 || listed == 0 || listed > MAX_FRAMES {
            return None;
        }
        let table = create_sample_table(track, 0.into())?;
        let ranges: Vec<Range<usize>> = table
            .iter()
            .map(|s| {
                let start = usize::try_from(s.start_offset.0).ok()?;
                let end = usize::try_from(s.end_offset.0).ok()?;
                (start < end && end <= file_len).then_some(start..end)
            })
            .collect::<Option<_>>()?;
        let timescale = track.timescale.map_or(0, |t| t.0);
        let delays_ms = table
            .iter()
            .map(|s| {
                let ticks = (s.end_composition.0 - s.start_composition.0).max(0) as u64;
                let ms = ticks
                    .saturating_mul(1000)
                    .checked_div(timescale)
                    .unwrap_or(100);
                u32::try_from(ms).unwrap_or(u32::MAX)
            })
            .collect();
        (!ranges.is_empty()).then(|| TrackSamples {
            ranges,
            delays_ms,
            config: config.config_obus().to_vec(),
        })
    }

    /// The first sample with the config OBUs before it (writers may leave the sequence
    /// header out of the samples themselves; a repeated one is harmless).
    fn first(&self, bytes: &[u8]) -> Vec<u8> {
        [&self.config[..], &bytes[self.ranges[0].clone()]].concat()
    }

    fn decode(
        &self,
        bytes: &[u8],
        count: usize,
        frame_pixels: u64,
    ) -> Result<Vec<Planes>, ImagingError> {
        let first = self.first(bytes);
        let rest = self.ranges[1..count.min(self.ranges.len())]
            .iter()
            .map(|r| &bytes[r.clone()]);
        let samples: Vec<&[u8]> = std::iter::once(&first[..]).chain(rest).collect();
        av1::decode(&samples, frame_pixels)
    }
}

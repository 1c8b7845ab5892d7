//! JPEG XL input through `jxl-oxide` (pure Rust). Reading is split in two, like SVG: `open`
//! reads only as far as the image header, so the caller can check the pixel limit before
//! any frame data is loaded; `decode` loads the rest and renders the first frame. Every
//! allocation the decoder makes is also counted against `max_alloc`.
//!
//! jxl-oxide is built without a colour management system. A lossy (XYB) file is rendered
//! straight to sRGB, which XYB converts to without one; a file stored in its own colour
//! space is rendered in it (its embedded ICC profile, or the one its colour encoding
//! names), described as an ICC profile, and converted by the pipeline like any other.
//! (Rendered without a CMS into an ICC space, XYB came out up to 60 levels off.)

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use jxl_oxide::frame::Encoding;
use jxl_oxide::{
    AllocTracker, EnumColourEncoding, InitializeResult, JxlImage, PixelFormat, RenderingIntent,
};

use super::colour::SourceProfile;
use super::ImagingError;

/// A bare JPEG XL codestream starts with this signature.
const CODESTREAM_MAGIC: &[u8] = &[0xff, 0x0a];
/// The ISO-BMFF container starts with this signature box.
const CONTAINER_MAGIC: &[u8] = &[
    0x00, 0x00, 0x00, 0x0c, b'J', b'X', b'L', b' ', 0x0d, 0x0a, 0x87, 0x0a,
];
/// How many more bytes the header reader is given at a time: enough for a typical header
/// and ICC profile in one go, small enough that little frame data is parsed with it.
const HEADER_CHUNK: usize = 4096;

/// True for bytes that start like a JPEG XL file (bare codestream or container).
pub fn looks_like_jxl(bytes: &[u8]) -> bool {
    bytes.starts_with(CODESTREAM_MAGIC) || bytes.starts_with(CONTAINER_MAGIC)
}

/// A file read as far as its header.
pub struct Opened {
    image: JxlImage,
    /// How many input bytes the decoder has consumed so far.
    consumed: usize,
}

impl Opened {
    /// Width as displayed (after the header's orientation).
    pub fn width(&self) -> u32 {
        self.image.width()
    }

    /// Height as displayed (after the header's orientation).
    pub fn height(&self) -> u32 {
        self.image.height()
    }

    pub fn has_alpha(&self) -> bool {
        self.image.pixel_format().has_alpha()
    }
}

/// Read the image header (and embedded ICC profile), not the frames.
pub fn open(bytes: &[u8], max_alloc: u64) -> Result<Opened, ImagingError> {
    let tracker = AllocTracker::with_limit(usize::try_from(max_alloc).unwrap_or(usize::MAX));
    let mut uninit = JxlImage::builder().alloc_tracker(tracker).build_uninit();
    let (mut consumed, mut end) = (0, 0);
    loop {
        end = bytes.len().min(end + HEADER_CHUNK);
        // Bytes the parser did not consume are offered again with the next chunk.
        consumed += uninit.feed_bytes(&bytes[consumed..end]).map_err(corrupt)?;
        match uninit.try_init().map_err(corrupt)? {
            InitializeResult::Initialized(image) => return Ok(Opened { image, consumed }),
            InitializeResult::NeedMoreData(_) if end == bytes.len() => return Err(truncated()),
            InitializeResult::NeedMoreData(next) => uninit = next,
        }
    }
}

/// Load the frames and render the first one (the still image, or an animation's first
/// frame) as 8-bit samples, upright. Also says whether the file is lossless, and the
/// profile of the rendered samples.
pub fn decode(
    opened: Opened,
    bytes: &[u8],
) -> Result<(DynamicImage, bool, SourceProfile), ImagingError> {
    let Opened {
        mut image,
        mut consumed,
    } = opened;
    while consumed < bytes.len() {
        let n = image.feed_bytes(&bytes[consumed..]).map_err(corrupt)?;
        if n == 0 {
            break;
        }
        consumed += n;
    }
    image.finalize().map_err(corrupt)?;
    // Like a JPEG without its end-of-image marker, a file cut short is refused rather than
    // rendered partly grey.
    if !image.is_loading_done() || image.num_loaded_keyframes() == 0 {
        return Err(truncated());
    }
    let pixel_format = image.pixel_format();
    if pixel_format.has_black() {
        return Err(ImagingError::Unsupported(
            "CMYK JPEG XL needs colour management this build does not have".into(),
        ));
    }
    if image.image_header().metadata.xyb_encoded {
        image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    }
    let render = image.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    let (width, height) = (stream.width(), stream.height());
    let channels = stream.channels() as usize;
    let mut samples = vec![0u8; width as usize * height as usize * channels];
    if stream.write_to_buffer(&mut samples) != samples.len() {
        return Err(ImagingError::Corrupt(
            "the JPEG XL frame rendered fewer samples than its size".into(),
        ));
    }
    let header = &image.image_header().metadata;
    let premultiplied = header
        .alpha()
        .and_then(|i| header.ec_info[i].alpha_associated())
        .unwrap_or(false);
    let mut decoded = match (pixel_format, channels) {
        (PixelFormat::Gray, 1) => GrayImage::from_raw(width, height, samples).map(Into::into),
        (PixelFormat::Graya, 2) => GrayAlphaImage::from_raw(width, height, samples).map(Into::into),
        (PixelFormat::Rgb, 3) => RgbImage::from_raw(width, height, samples).map(Into::into),
        (PixelFormat::Rgba, 4) => RgbaImage::from_raw(width, height, samples).map(Into::into),
        _ => None,
    }
    .ok_or_else(|| {
        ImagingError::Corrupt(format!(
            "the JPEG XL frame has an unexpected layout ({pixel_format:?}, {channels} channels)"
        ))
    })?;
    if premultiplied {
        super::alpha::unpremultiply(&mut decoded);
    }
    // Cheap, conservative test: lossless JPEG XL is Modular-coded without the XYB colour
    // transform. (Lossy Modular without XYB exists but is rare; calling it lossless only
    // costs bytes, as WebP output then stays lossless.)
    let lossless = !header.xyb_encoded
        && (0..image.num_loaded_keyframes())
            .filter_map(|i| image.frame_header(i))
            .all(|f| f.encoding == Encoding::Modular);
    Ok((decoded, lossless, SourceProfile::icc(image.rendered_icc())))
}

fn corrupt(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Corrupt(format!("invalid JPEG XL: {e}"))
}

fn truncated() -> ImagingError {
    ImagingError::Corrupt("the JPEG XL data is truncated".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{decode as decode_any, probe, DecodeLimits, Format};

    const MAX_ALLOC: u64 = 1 << 30;

    fn corpus(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("test-images")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn decode_bytes(bytes: &[u8]) -> Result<(DynamicImage, bool), ImagingError> {
        decode(open(bytes, MAX_ALLOC)?, bytes).map(|(image, lossless, _)| (image, lossless))
    }

    /// The `jxlc` box's payload: the same image as a bare codestream.
    fn bare_codestream(container: &[u8]) -> Vec<u8> {
        let mut at = 0;
        while at + 8 <= container.len() {
            let size = u32::from_be_bytes(container[at..at + 4].try_into().unwrap()) as usize;
            if &container[at + 4..at + 8] == b"jxlc" {
                return container[at + 8..at + size].to_vec();
            }
            at += size;
        }
        panic!("no jxlc box");
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_jxl(&corpus("jxl-lossless-alpha.jxl")));
        assert!(looks_like_jxl(&corpus("jxl-lossy.jxl")));
        assert!(looks_like_jxl(b"\xff\x0a\x30\x54"));
        assert!(looks_like_jxl(
            b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "
        ));
        assert!(!looks_like_jxl(b"\xff\xd8\xff\xe0"), "JPEG");
        assert!(!looks_like_jxl(b"\0\0\0\x1cftypavif"), "AVIF");
        assert!(!looks_like_jxl(b"\xff"));
        assert!(!looks_like_jxl(b""));
    }

    #[test]
    fn decodes_the_lossless_file_with_alpha() {
        let bytes = corpus("jxl-lossless-alpha.jxl");
        let opened = open(&bytes, MAX_ALLOC).unwrap();
        assert_eq!((opened.width(), opened.height()), (129, 66));
        assert!(opened.has_alpha());
        let (image, lossless, _) = decode(opened, &bytes).unwrap();
        assert!(matches!(image, DynamicImage::ImageRgba8(_)));
        assert_eq!((image.width(), image.height()), (129, 66));
        assert!(lossless);
        // The bare codestream inside the container decodes to the same pixels.
        let bare = bare_codestream(&bytes);
        assert!(bare.starts_with(CODESTREAM_MAGIC));
        let (same, _) = decode_bytes(&bare).unwrap();
        assert_eq!(same.as_bytes(), image.as_bytes());
    }

    #[test]
    fn decodes_the_lossy_file() {
        let bytes = corpus("jxl-lossy.jxl");
        let opened = open(&bytes, MAX_ALLOC).unwrap();
        assert_eq!((opened.width(), opened.height()), (320, 240));
        assert!(!opened.has_alpha());
        let (image, lossless, _) = decode(opened, &bytes).unwrap();
        assert!(matches!(image, DynamicImage::ImageRgb8(_)));
        assert_eq!((image.width(), image.height()), (320, 240));
        assert!(!lossless);
    }

    #[test]
    fn truncated_files_are_corrupt_never_a_panic() {
        for name in ["jxl-lossless-alpha.jxl", "jxl-lossy.jxl"] {
            let bytes = corpus(name);
            for len in (0..bytes.len()).step_by(37).chain([bytes.len() - 1]) {
                match decode_bytes(&bytes[..len]) {
                    Err(ImagingError::Corrupt(_)) => {}
                    other => panic!("{name} cut to {len} bytes: {:?}", other.map(|_| ())),
                }
            }
        }
    }

    #[test]
    fn wired_into_probe_and_decode_with_the_pixel_limit() {
        let bytes = corpus("jxl-lossy.jxl");
        let p = probe(&bytes, &DecodeLimits::for_pixels(1 << 20)).unwrap();
        assert_eq!((p.format, p.width, p.height), (Format::Jxl, 320, 240));
        let d = decode_any(&bytes, &DecodeLimits::for_pixels(1 << 20)).unwrap();
        assert_eq!(
            (d.format, d.full_size, d.lossless),
            (Format::Jxl, (320, 240), false)
        );
        let small = DecodeLimits::for_pixels(320 * 240 - 1);
        assert!(matches!(
            probe(&bytes, &small),
            Err(ImagingError::TooManyPixels(_))
        ));
        assert!(matches!(
            decode_any(&bytes, &small),
            Err(ImagingError::TooManyPixels(_))
        ));
    }
}

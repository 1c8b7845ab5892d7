//! TIFF layouts the `image` decoder does not read (palette, 2- and 4-bit gray) or gets
//! wrong (planar data, whose partial edge tiles trip an assertion in tiff 0.11 and fail
//! the whole job): read here chunk by chunk (strip or tile, one plane at a time) with
//! the `tiff` crate and assembled into one image. Everything else goes through `image`.

use std::io::Cursor;

use ::tiff::decoder::{Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::ColorType;
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};

use super::ImagingError;

/// What the first page holds, when it needs this reader.
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// The TIFF orientation tag (the same values as EXIF's), 1 when absent.
    pub orientation: u8,
}

/// The layout of a TIFF that this module reads; `None` for the ones `image` reads (or
/// bytes this module cannot make sense of, which `image` then reports).
pub fn layout(bytes: &[u8]) -> Option<Layout> {
    let mut decoder = Decoder::new(Cursor::new(bytes)).ok()?;
    let (width, height) = decoder.dimensions().ok()?;
    let planar = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .ok()
        .flatten()
        == Some(2);
    let (channels, bits, palette) = match is_palette(&mut decoder) {
        true => (1, palette_bits(&mut decoder)?, true),
        false => shape(decoder.colortype().ok()?)?,
    };
    let unusual_depth = channels == 1 && matches!(bits, 2 | 4);
    let associated = associated_alpha(&mut decoder);
    let orientation = decoder
        .find_tag_unsigned::<u8>(Tag::Orientation)
        .ok()
        .flatten()
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1);
    let reversed = reversed_bits(&mut decoder);
    (planar || palette || unusual_depth || associated || reversed).then_some(Layout {
        width,
        height,
        has_alpha: channels == 2 || channels == 4,
        orientation,
    })
}

/// Whether the bits of each byte run least significant first (`FillOrder` = 2, from fax
/// machines and some scanners), which the tiff crate ignores; libtiff (and so Pillow,
/// ImageMagick and libvips) reverses them, at any depth.
fn reversed_bits<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> bool {
    matches!(
        decoder.find_tag_unsigned::<u16>(Tag::FillOrder),
        Ok(Some(2))
    )
}

/// The same TIFF with the bits of every byte of its (uncompressed) image data reversed
/// and `FillOrder` left as it was (the tiff crate ignores it). Compressed data would
/// have to be reversed before decompression, which the tiff crate does not offer: 415.
fn with_bits_in_order<R: std::io::Read + std::io::Seek>(
    decoder: &mut Decoder<R>,
    bytes: &[u8],
) -> Result<Vec<u8>, ImagingError> {
    let compression = decoder.find_tag_unsigned::<u16>(Tag::Compression);
    if !matches!(compression, Ok(None | Some(1))) {
        return Err(ImagingError::Unsupported(
            "a compressed TIFF with its bits in reverse order (FillOrder 2) is not supported"
                .into(),
        ));
    }
    let mut tags = |offsets, counts| {
        let offsets = decoder
            .find_tag_unsigned_vec::<u64>(offsets)
            .ok()
            .flatten()?;
        let counts = decoder
            .find_tag_unsigned_vec::<u64>(counts)
            .ok()
            .flatten()?;
        Some((offsets, counts))
    };
    let (offsets, counts) = tags(Tag::StripOffsets, Tag::StripByteCounts)
        .or_else(|| tags(Tag::TileOffsets, Tag::TileByteCounts))
        .ok_or_else(|| corrupt("no image data offsets"))?;
    let mut out = bytes.to_vec();
    for (&at, &len) in offsets.iter().zip(&counts) {
        let range = usize::try_from(at).ok().zip(usize::try_from(len).ok());
        let data = range
            .and_then(|(at, len)| out.get_mut(at..at.checked_add(len)?))
            .ok_or_else(|| corrupt("image data outside the file"))?;
        data.iter_mut().for_each(|b| *b = b.reverse_bits());
    }
    Ok(out)
}

/// Whether the extra sample is associated (premultiplied) alpha, `ExtraSamples` = 1, which
/// `image` leaves premultiplied; read here, it is undone after decoding.
fn associated_alpha<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> bool {
    matches!(
        decoder.find_tag_unsigned::<u16>(Tag::ExtraSamples),
        Ok(Some(1))
    )
}

/// The tiff crate refuses palette images outright; their indices are read as gray
/// samples instead (see [`as_gray`]) and looked up in the colour map here.
fn is_palette<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> bool {
    let photometric = decoder.find_tag_unsigned::<u16>(Tag::PhotometricInterpretation);
    matches!(photometric, Ok(Some(3)))
}

fn palette_bits<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> Option<u8> {
    let bits = decoder.find_tag_unsigned::<u8>(Tag::BitsPerSample).ok()??;
    matches!(bits, 1 | 2 | 4 | 8).then_some(bits)
}

/// The same TIFF with its first page's photometric interpretation set to gray
/// (`BlackIsZero`), so a palette image's indices decode as plain samples. Classic TIFF
/// has a 4-byte first-IFD offset, 2-byte entry counts and 12-byte entries; BigTIFF
/// (version 43) 8, 8 and 20, with the value at 12 rather than 8 into an entry.
fn as_gray(bytes: &[u8]) -> Option<Vec<u8>> {
    let little = bytes.starts_with(b"II");
    let number = |at: usize, len: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let big = number(2, 2)? == 43;
    let (offset_at, count_len, entry_len, value_at) = match big {
        true => (8, 8, 20, 12),
        false => (4, 2, 12, 8),
    };
    let ifd = usize::try_from(number(offset_at, if big { 8 } else { 4 })?).ok()?;
    let count = usize::try_from(number(ifd, count_len)?).ok()?.min(4096);
    let entry = (0..count)
        .map(|i| ifd + count_len + entry_len * i)
        .find(|&at| number(at, 2) == Some(262) && number(at + 2, 2) == Some(3))?;
    let mut patched = bytes.to_vec();
    let gray: [u8; 2] = if little {
        1u16.to_le_bytes()
    } else {
        1u16.to_be_bytes()
    };
    patched
        .get_mut(entry + value_at..entry + value_at + 2)?
        .copy_from_slice(&gray);
    Some(patched)
}

/// (samples per pixel, bits per sample, palette) of the colour types read here.
fn shape(colour: ColorType) -> Option<(usize, u8, bool)> {
    Some(match colour {
        ColorType::Gray(b) => (1, b, false),
        ColorType::GrayA(b) => (2, b, false),
        ColorType::RGB(b) => (3, b, false),
        ColorType::RGBA(b) => (4, b, false),
        ColorType::Palette(b) => (1, b, true),
        _ => return None,
    })
    .filter(|(_, b, _)| matches!(b, 1 | 2 | 4 | 8 | 16))
}

fn corrupt(why: &str) -> ImagingError {
    ImagingError::Corrupt(format!("the TIFF is malformed: {why}"))
}

/// Decode the first page (whose size the caller has checked against the pixel limit),
/// every decoder allocation bounded by `max_alloc`. (The tiff crate's assertions are
/// caught with every decoder's, in `decode.rs`.)
pub fn decode(bytes: &[u8], max_alloc: u64) -> Result<DynamicImage, ImagingError> {
    let tiff_error = |e: ::tiff::TiffError| corrupt(&e.to_string());
    let mut limits = Limits::default();
    limits.decoding_buffer_size = usize::try_from(max_alloc).unwrap_or(usize::MAX);
    limits.intermediate_buffer_size = limits.decoding_buffer_size;
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(tiff_error)?
        .with_limits(limits.clone());
    if reversed_bits(&mut decoder) {
        let in_order = with_bits_in_order(&mut decoder, bytes)?;
        return decode_in_order(&in_order, limits);
    }
    decode_in_order(bytes, limits)
}

/// [`decode`] of a file whose bits are in the usual order (or have been put in it).
fn decode_in_order(bytes: &[u8], limits: Limits) -> Result<DynamicImage, ImagingError> {
    let tiff_error = |e: ::tiff::TiffError| corrupt(&e.to_string());
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(tiff_error)?
        .with_limits(limits.clone());
    if is_palette(&mut decoder) {
        let bits = palette_bits(&mut decoder)
            .ok_or_else(|| corrupt("a palette image needs 1, 2, 4 or 8 bits"))?;
        let map = decoder.get_tag_u16_vec(Tag::ColorMap).map_err(tiff_error)?;
        let gray = as_gray(bytes).ok_or_else(|| corrupt("no photometric entry"))?;
        let decoder = Decoder::new(Cursor::new(&gray[..]))
            .map_err(tiff_error)?
            .with_limits(limits);
        return assemble(decoder, (1, bits, Some(map)));
    }
    let (channels, bits, _) = shape(decoder.colortype().map_err(tiff_error)?).ok_or_else(|| {
        ImagingError::Unsupported("this TIFF colour type is not supported".into())
    })?;
    let associated = associated_alpha(&mut decoder);
    let mut image = assemble(decoder, (channels, bits, None))?;
    if associated {
        super::alpha::unpremultiply(&mut image);
    }
    Ok(image)
}

/// Read every chunk of the first page and put its samples in place: (samples per pixel,
/// bits, the colour map of a palette image).
fn assemble<R: std::io::Read + std::io::Seek>(
    mut decoder: Decoder<R>,
    (channels, bits, colour_map): (usize, u8, Option<Vec<u16>>),
) -> Result<DynamicImage, ImagingError> {
    let tiff_error = |e: ::tiff::TiffError| corrupt(&e.to_string());
    let palette = colour_map.is_some();
    let (width, height) = decoder.dimensions().map_err(tiff_error)?;
    let planar = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(tiff_error)?
        == Some(2);
    let (w, h) = (width as usize, height as usize);
    let (chunk_w, chunk_h) = decoder.chunk_dimensions();
    let (chunk_w, chunk_h) = (chunk_w.max(1) as usize, chunk_h.max(1) as usize);
    let (across, down) = (w.div_ceil(chunk_w), h.div_ceil(chunk_h));
    let (planes, per_pixel) = if planar { (channels, 1) } else { (1, channels) };
    let max = (1u32 << bits) - 1;
    // Every sample, scaled to 16 bits (palette indices kept as they are).
    let mut samples = vec![0u16; w * h * channels];
    for plane in 0..planes {
        for cy in 0..down {
            for cx in 0..across {
                let index = (plane * across * down + cy * across + cx) as u32;
                let (data_w, data_h) = decoder.chunk_data_dimensions(index);
                let (data_w, data_h) = (data_w as usize, data_h as usize);
                let values = unpack(
                    decoder.read_chunk(index).map_err(tiff_error)?,
                    data_w * per_pixel,
                    bits,
                );
                if values.len() < data_w * per_pixel * data_h {
                    return Err(corrupt("a chunk holds fewer samples than its size"));
                }
                for y in 0..data_h.min(h.saturating_sub(cy * chunk_h)) {
                    for x in 0..data_w.min(w.saturating_sub(cx * chunk_w)) {
                        for s in 0..per_pixel {
                            let v = values[(y * data_w + x) * per_pixel + s];
                            let at =
                                ((cy * chunk_h + y) * w + cx * chunk_w + x) * channels + plane + s;
                            samples[at] = if palette {
                                v
                            } else {
                                ((u32::from(v) * 65535 + max / 2) / max) as u16
                            };
                        }
                    }
                }
            }
        }
    }
    if let Some(map) = colour_map {
        let entries = 1usize << bits;
        if map.len() < 3 * entries {
            return Err(corrupt(
                "the colour map is shorter than its bit depth needs",
            ));
        }
        let rgb: Vec<u16> = samples
            .iter()
            .flat_map(|&i| {
                let i = usize::from(i).min(entries - 1);
                [map[i], map[entries + i], map[2 * entries + i]]
            })
            .collect();
        return Ok(DynamicImage::ImageRgb16(
            ImageBuffer::<Rgb<u16>, _>::from_raw(width, height, rgb)
                .ok_or_else(|| corrupt("size"))?,
        ));
    }
    let image = match channels {
        1 => ImageBuffer::<Luma<u16>, _>::from_raw(width, height, samples)
            .map(DynamicImage::ImageLuma16),
        2 => ImageBuffer::<LumaA<u16>, _>::from_raw(width, height, samples)
            .map(DynamicImage::ImageLumaA16),
        3 => ImageBuffer::<Rgb<u16>, _>::from_raw(width, height, samples)
            .map(DynamicImage::ImageRgb16),
        _ => ImageBuffer::<Rgba<u16>, _>::from_raw(width, height, samples)
            .map(DynamicImage::ImageRgba16),
    };
    image.ok_or_else(|| corrupt("size"))
}

/// A chunk's samples as numbers: 16-bit samples as they come, narrower ones unpacked from
/// rows of `row_samples` samples, each row padded to a byte.
fn unpack(data: DecodingResult, row_samples: usize, bits: u8) -> Vec<u16> {
    match data {
        DecodingResult::U16(values) => values,
        DecodingResult::U8(bytes) if bits == 8 => bytes.into_iter().map(u16::from).collect(),
        DecodingResult::U8(bytes) => {
            let bits = usize::from(bits);
            let row_bytes = (row_samples * bits).div_ceil(8);
            let mask = (1u16 << bits) - 1;
            bytes
                .chunks(row_bytes.max(1))
                .flat_map(|row| {
                    (0..row_samples).map(move |i| {
                        let bit = i * bits;
                        let byte = u16::from(row.get(bit / 8).copied().unwrap_or(0));
                        (byte >> (8 - bits - bit % 8)) & mask
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

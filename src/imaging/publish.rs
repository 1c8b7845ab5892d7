//! The stored image as published at its own URL (`/image/{id}.{ext}` in its own format,
//! no transforms): the original's encoded pixels, not re-encoded, with the metadata that
//! can identify or locate a person removed losslessly. The colour profile and the
//! orientation stay; everything else that is not needed to show the pixels goes.
//!
//! - JPEG: segments are kept by an allow-list (JFIF without its thumbnail, ICC profile,
//!   Adobe colour transform, and what decoding needs); EXIF, XMP, IPTC, comments, maker
//!   segments, MPF and everything after the end-of-image marker (secondary images and
//!   trailers carry their own GPS) are dropped.
//! - PNG: ancillary chunks by an allow-list (colour, transparency, physical size,
//!   animation); each chunk has its own CRC, so dropping whole chunks keeps the rest valid.
//! - WebP: `EXIF` and `XMP ` chunks dropped and their `VP8X` flags cleared.
//! - GIF: comments and application blocks other than looping and the ICC profile dropped.
//! - AVIF: published as stored when it declares no EXIF or XMP item, else re-encoded.
//! - JPEG XL: the container's `Exif`, `xml ` (XMP), `jumb` (JUMBF) and `brob` (compressed
//!   metadata) boxes dropped; a bare codestream has no metadata (its orientation lives in
//!   the codestream header).
//!
//! Where EXIF carried an orientation other than upright, a minimal EXIF holding only
//! that tag takes its place. Other formats carry no such metadata (BMP, ICO) or are
//! re-encoded by the caller (TIFF, whose EXIF lives among the image's own tags).

use super::jpeg::{self, Piece};
use super::Format;

/// The publishable bytes of `bytes`, a stored original of `format` whose EXIF
/// orientation is `orientation` (1..=8); `None` when the format is not stripped here and
/// the caller should re-encode instead.
pub fn publishable(bytes: &[u8], format: Format, orientation: u8) -> Option<Vec<u8>> {
    match format {
        Format::Jpeg => jpeg(bytes, orientation),
        Format::Png => png(bytes, orientation),
        Format::Webp => webp(bytes, orientation),
        Format::Gif => gif(bytes),
        Format::Avif => avif(bytes),
        Format::Jxl => jxl(bytes),
        Format::Bmp | Format::Ico => Some(bytes.to_vec()),
        _ => None,
    }
}

/// A TIFF-structured EXIF block (big-endian) holding one tag, the orientation.
fn minimal_exif(orientation: u8) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes()); // first IFD right after the header
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&[0, orientation, 0, 0]); // the value, left-justified
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff
}

fn keeps_orientation(orientation: u8) -> bool {
    (2..=8).contains(&orientation)
}

// --- JPEG -----------------------------------------------------------------------------

const APP0: u8 = 0xE0;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;

/// Whether a JPEG segment (marker code and payload) stays.
fn jpeg_keeps(code: u8, payload: &[u8]) -> bool {
    match code {
        APP2 => payload.starts_with(b"ICC_PROFILE\0"),
        APP14 => payload.starts_with(b"Adobe"),
        0xE0..=0xEF | COM => false,
        _ => true, // tables, frame and scan headers, restart intervals: decoding needs them
    }
}

fn jpeg(bytes: &[u8], orientation: u8) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut wrote_orientation = !keeps_orientation(orientation);
    for piece in jpeg::pieces(bytes)? {
        match piece {
            // Whatever follows the end marker (MPF images, trailers) is not published.
            Piece::End => out.extend_from_slice(&[0xFF, 0xD9]),
            Piece::Marker(code) => out.extend_from_slice(&[0xFF, code]),
            Piece::Scan(data) => out.extend_from_slice(data),
            Piece::Segment {
                code,
                payload,
                whole,
            } => {
                if !wrote_orientation && code != APP0 {
                    let mut app1 = b"Exif\0\0".to_vec();
                    app1.extend(minimal_exif(orientation));
                    out.extend_from_slice(&[0xFF, 0xE1]);
                    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
                    out.extend(app1);
                    wrote_orientation = true;
                }
                if code == APP0 && payload.starts_with(b"JFIF\0") && payload.len() >= 14 {
                    // JFIF without its thumbnail: an edited photo's thumbnail can show
                    // what the edit removed.
                    out.extend_from_slice(&[0xFF, APP0, 0, 16]);
                    out.extend_from_slice(&payload[..12]);
                    out.extend_from_slice(&[0, 0]);
                } else if jpeg_keeps(code, payload) {
                    out.extend_from_slice(whole);
                }
            }
        }
    }
    // A file that stops before its end marker is published as far as it goes.
    Some(out)
}

// --- PNG ------------------------------------------------------------------------------

/// Ancillary chunks that describe how to show the pixels (everything else ancillary,
/// text, EXIF, time and private chunks among them, is dropped).
const PNG_KEEPS: [&[u8; 4]; 14] = [
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"mDCV", b"cLLI", b"sBIT", b"bKGD",
    b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

fn png(bytes: &[u8], orientation: u8) -> Option<Vec<u8>> {
    let mut out = bytes.get(..8)?.to_vec();
    let mut ended = false;
    for chunk in super::png_chunks::chunks(bytes)? {
        let critical = chunk.kind[0].is_ascii_uppercase();
        if &chunk.kind == b"iCCP" && !deflated_profile(chunk.data) {
            continue;
        }
        if critical || PNG_KEEPS.contains(&&chunk.kind) {
            out.extend_from_slice(chunk.whole);
        } else if &chunk.kind == b"eXIf" && keeps_orientation(orientation) {
            out.extend(png_chunk(b"eXIf", &minimal_exif(orientation)));
        }
        if &chunk.kind == b"IEND" {
            ended = true;
            break;
        }
    }
    ended.then_some(out)
}

/// Whether an `iCCP` chunk is a profile name, its terminator and compression method 0
/// (zlib), the only one there is. Others are kept by no reader (libpng ignores the chunk
/// with a warning, Pillow refuses the file), so the chunk is left out.
fn deflated_profile(iccp: &[u8]) -> bool {
    let name = iccp.iter().position(|&b| b == 0);
    matches!(name.and_then(|n| iccp.get(n + 1)), Some(0))
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

// --- WebP -----------------------------------------------------------------------------

const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

fn webp(bytes: &[u8], orientation: u8) -> Option<Vec<u8>> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut body: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut rest = &bytes[12..];
    let mut has_vp8x = false;
    while rest.len() >= 8 {
        let kind: [u8; 4] = rest[..4].try_into().ok()?;
        let len = u32::from_le_bytes(rest[4..8].try_into().ok()?) as usize;
        let padded = len.checked_add(len % 2)?.checked_add(8)?;
        let whole = rest.get(..padded).or_else(|| rest.get(..8 + len))?;
        rest = &rest[whole.len()..];
        match &kind {
            b"EXIF" | b"XMP " => {}
            b"VP8X" if whole.len() >= 18 => {
                has_vp8x = true;
                let mut vp8x = whole.to_vec();
                vp8x[8] &= !(VP8X_EXIF | VP8X_XMP);
                if keeps_orientation(orientation) {
                    vp8x[8] |= VP8X_EXIF;
                }
                body.extend(vp8x);
            }
            _ => body.extend_from_slice(whole),
        }
    }
    // EXIF goes last in an extended WebP; a simple one (no VP8X) cannot carry it and had none.
    if has_vp8x && keeps_orientation(orientation) {
        let exif = minimal_exif(orientation);
        body.extend_from_slice(b"EXIF");
        body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
        body.extend(exif); // 26 bytes: even, no padding
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(body);
    Some(out)
}

// --- AVIF -----------------------------------------------------------------------------

/// An AVIF whose metadata box declares no `Exif` item and no `mime` item (XMP) is
/// published as it is; one that does is re-encoded by the caller (its items are
/// referenced by offsets into the file, which stripping would have to rewrite).
fn avif(bytes: &[u8]) -> Option<Vec<u8>> {
    let header_end = memchr::memmem::find(bytes, b"mdat").unwrap_or(bytes.len());
    let header = &bytes[..header_end];
    let declares = |kind: &[u8]| memchr::memmem::find(header, kind).is_some();
    (!declares(b"Exif") && !declares(b"mime")).then(|| bytes.to_vec())
}

// --- JPEG XL --------------------------------------------------------------------------

const JXL_DROPS: [&[u8; 4]; 4] = [b"Exif", b"xml ", b"jumb", b"brob"];

fn jxl(bytes: &[u8]) -> Option<Vec<u8>> {
    const CONTAINER: &[u8] = b"\0\0\0\x0cJXL \r\n\x87\n";
    if !bytes.starts_with(CONTAINER) {
        return Some(bytes.to_vec()); // a bare codestream
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let size = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = bytes.get(at + 4..at + 8)?.try_into().ok()?;
        let len = match size {
            0 => bytes.len() - at, // to the end of the file
            1 => usize::try_from(u64::from_be_bytes(
                bytes.get(at + 8..at + 16)?.try_into().ok()?,
            ))
            .ok()?,
            n => n,
        };
        let whole = bytes.get(at..at.checked_add(len)?).filter(|_| len >= 8)?;
        if !JXL_DROPS.contains(&&kind) {
            out.extend_from_slice(whole);
        }
        at += len;
    }
    Some(out)
}

// --- GIF ------------------------------------------------------------------------------

/// Application extensions that stay: animation looping and the ICC profile.
const GIF_KEEPS: [&[u8; 11]; 3] = [b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"];

fn gif(bytes: &[u8]) -> Option<Vec<u8>> {
    // Header and logical screen descriptor, then the global colour table if flagged.
    let flags = *bytes.get(10)?;
    let table = if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    };
    let mut pos = 13 + table;
    let mut out = bytes.get(..pos)?.to_vec();
    loop {
        let start = pos;
        match *bytes.get(pos)? {
            0x3B => {
                out.push(0x3B);
                return Some(out); // trailing bytes are not published
            }
            0x21 => {
                let label = *bytes.get(pos + 1)?;
                let first = bytes.get(pos + 2..pos + 3 + usize::from(*bytes.get(pos + 2)?))?;
                pos = skip_sub_blocks(bytes, pos + 2)?;
                let keep = match label {
                    0xFE => false,
                    0xFF => GIF_KEEPS.iter().any(|k| first.get(1..12) == Some(&k[..])),
                    _ => true, // graphic control, plain text
                };
                if keep {
                    out.extend_from_slice(&bytes[start..pos]);
                }
            }
            0x2C => {
                let flags = *bytes.get(pos + 9)?;
                let local = if flags & 0x80 != 0 {
                    3 << ((flags & 7) + 1)
                } else {
                    0
                };
                // Descriptor, local table, LZW code size, then the data sub-blocks.
                pos = skip_sub_blocks(bytes, pos + 10 + local + 1)?;
                out.extend_from_slice(&bytes[start..pos]);
            }
            _ => return None,
        }
    }
}

/// The position after the sub-blocks starting at `pos` (each a length byte and that many
/// bytes, ended by a zero length).
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*bytes.get(pos)?);
        pos += 1 + len;
        if len == 0 {
            return Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_exif_reads_back_as_its_orientation() {
        for o in 1..=8u8 {
            let read = image::metadata::Orientation::from_exif_chunk(&minimal_exif(o));
            assert_eq!(read.map(|r| r.to_exif()), Some(o));
        }
    }

    #[test]
    fn jpeg_segments_are_dropped_by_allow_list_and_trailers_cut() {
        let seg = |code: u8, payload: &[u8]| {
            let mut s = vec![0xFF, code];
            s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            s.extend_from_slice(payload);
            s
        };
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(seg(0xE1, b"Exif\0\0GPS here"));
        jpeg.extend(seg(APP2, b"ICC_PROFILE\0\x01\x01prof"));
        jpeg.extend(seg(APP2, b"MPF\0secondary"));
        jpeg.extend(seg(COM, b"by someone"));
        jpeg.extend(seg(0xDB, b"\0table"));
        jpeg.extend(seg(0xDA, b"\x01\x01\x00\x00\x3f\x00"));
        jpeg.extend_from_slice(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        jpeg.extend(seg(COM, b"between scans"));
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        jpeg.extend_from_slice(b"trailer with GPS");
        let out = jpeg_publishable(&jpeg, 1);
        let text = String::from_utf8_lossy(&out);
        for gone in ["GPS", "MPF", "someone", "between", "trailer", "Exif"] {
            assert!(!text.contains(gone), "{gone} left in {text:?}");
        }
        assert!(text.contains("ICC_PROFILE") && text.contains("table"));
        assert!(out.ends_with(&[3, 0xFF, 0xD0, 4, 0xFF, 0xD9]));
        // Orientation 6 comes back as a minimal EXIF.
        let rotated = jpeg_publishable(&jpeg, 6);
        assert!(String::from_utf8_lossy(&rotated).contains("Exif"));
        assert!(!String::from_utf8_lossy(&rotated).contains("GPS"));
    }

    fn jpeg_publishable(bytes: &[u8], orientation: u8) -> Vec<u8> {
        publishable(bytes, Format::Jpeg, orientation).expect("a JPEG")
    }
}

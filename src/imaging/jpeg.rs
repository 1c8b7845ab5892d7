//! JPEG structure the decoders do not report: the walk over segments and scans, the
//! frame header (which coding process, how many bits), whether the scans code every
//! coefficient, and the end-of-image check.
//!
//! Decoders fill a truncated scan with grey (libjpeg with a warning, zune-jpeg without).
//! Storing such a file would serve a half-grey picture forever, so for a JPEG whose
//! entropy-coded data never reaches an End Of Image marker, libjpeg's warnings and
//! `scans_complete` tell a file that merely lacks the marker from one whose data stops
//! early.

const MARKER: u8 = 0xFF;
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// True when the bytes walk cleanly from SOI through the segments to the first scan and an
/// EOI marker follows somewhere after it.
///
/// Inside entropy-coded data a literal 0xFF is stuffed as `FF 00` and restart markers are
/// `FF D0..D7`, so `FF D9` after the first SOS can only be the real EOI. Walking the
/// segment lengths (instead of searching the whole file) skips EXIF thumbnails, which
/// carry their own SOI..EOI inside APP1.
pub fn has_end_of_image(bytes: &[u8]) -> bool {
    let Some(mut pieces) = pieces(bytes) else {
        return false;
    };
    let first_scan = pieces.find_map(|piece| match piece {
        Piece::Segment {
            code: SOS, whole, ..
        } => Some(whole),
        Piece::End => Some(&[][..]), // an image with no scan at all
        _ => None,
    });
    match first_scan {
        Some(header) if !header.is_empty() => {
            let scan_start = header.as_ptr() as usize - bytes.as_ptr() as usize + header.len();
            scan_contains_eoi(&bytes[scan_start..])
        }
        _ => false,
    }
}

fn scan_contains_eoi(data: &[u8]) -> bool {
    // Searched from the end, where the EOI of a whole file is: every render runs this
    // check, and a forward byte-by-byte walk of a 3 MB scan cost ~0.8 ms.
    memchr::memmem::rfind(data, &[MARKER, EOI]).is_some()
}

/// One piece of a JPEG's structure, in file order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Piece<'a> {
    /// A marker segment: its code, its payload (after the length) and the whole segment
    /// as stored (marker and length included).
    Segment {
        code: u8,
        payload: &'a [u8],
        whole: &'a [u8],
    },
    /// A stand-alone marker outside entropy-coded data (RSTn, TEM).
    Marker(u8),
    /// Entropy-coded data after a scan header, up to the next marker that is not a
    /// restart marker (stuffed bytes and RSTn included, as stored).
    Scan(&'a [u8]),
    /// The end-of-image marker; nothing after it is read.
    End,
}

/// The pieces of a JPEG from just after its SOI. The walk stops at EOI, or where the
/// structure breaks or the bytes run out (then no `End` comes). `None` without an SOI.
pub fn pieces(bytes: &[u8]) -> Option<impl Iterator<Item = Piece<'_>>> {
    if bytes.get(..2)? != [MARKER, SOI] {
        return None;
    }
    let mut pos = 2;
    let mut in_scan = false;
    let mut done = false;
    Some(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let piece = next_piece(bytes, &mut pos, &mut in_scan);
        done = matches!(piece, None | Some(Piece::End));
        piece
    }))
}

fn next_piece<'a>(bytes: &'a [u8], pos: &mut usize, in_scan: &mut bool) -> Option<Piece<'a>> {
    if *in_scan {
        *in_scan = false;
        let start = *pos;
        // Inside entropy-coded data a literal 0xFF is stuffed as FF 00 and restart
        // markers are FF D0..D7: the scan runs to the first other marker.
        let mut at = start;
        loop {
            let ff = at + memchr::memchr(MARKER, bytes.get(at..)?)?;
            match bytes.get(ff + 1) {
                Some(&(0x00 | 0xD0..=0xD7 | MARKER)) => at = ff + 1,
                Some(_) => {
                    *pos = ff;
                    return Some(Piece::Scan(&bytes[start..ff]));
                }
                None => return None,
            }
        }
    }
    if *bytes.get(*pos)? != MARKER {
        return None;
    }
    while bytes.get(*pos) == Some(&MARKER) {
        *pos += 1; // fill bytes
    }
    let code = *bytes.get(*pos)?;
    let start = *pos - 1;
    *pos += 1;
    match code {
        EOI => return Some(Piece::End),
        0xD0..=0xD7 | 0x01 => return Some(Piece::Marker(code)),
        _ => {}
    }
    let len = usize::from(u16::from_be_bytes([
        *bytes.get(*pos)?,
        *bytes.get(*pos + 1)?,
    ]));
    if len < 2 {
        return None;
    }
    let payload = bytes.get(*pos + 2..*pos + len)?;
    *pos += len;
    *in_scan = code == SOS;
    Some(Piece::Segment {
        code,
        payload,
        whole: &bytes[start..*pos],
    })
}

/// What a JPEG's frame header (SOFn) says.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The SOF marker code: which coding process.
    pub code: u8,
    /// Bits per sample: 8 or 12 for DCT, 2..=16 for lossless.
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    /// Component ids, in frame order.
    pub components: Vec<u8>,
}

impl Frame {
    pub fn arithmetic(&self) -> bool {
        self.code >= 0xC9
    }

    pub fn lossless(&self) -> bool {
        matches!(self.code, 0xC3 | 0xC7 | 0xCB | 0xCF)
    }

    pub fn progressive(&self) -> bool {
        matches!(self.code, 0xC2 | 0xC6 | 0xCA | 0xCE)
    }

    pub fn hierarchical(&self) -> bool {
        matches!(self.code, 0xC5..=0xC7 | 0xCD..=0xCF)
    }
}

/// The frame header, from the first SOFn segment (DHT, JPG and DAC share the code range
/// and are skipped).
pub fn frame(bytes: &[u8]) -> Option<Frame> {
    pieces(bytes)?.find_map(|piece| match piece {
        Piece::Segment { code, payload, .. }
            if (0xC0..=0xCF).contains(&code) && !matches!(code, 0xC4 | 0xC8 | 0xCC) =>
        {
            let count = usize::from(*payload.get(5)?);
            let components = (0..count)
                .map(|i| payload.get(6 + 3 * i).copied())
                .collect::<Option<Vec<u8>>>()?;
            Some(Frame {
                code,
                precision: payload[0],
                height: u16::from_be_bytes([payload[1], payload[2]]),
                width: u16::from_be_bytes([payload[3], payload[4]]),
                components,
            })
        }
        _ => None,
    })
}

/// Whether the scans in the file code every coefficient of every component, which a
/// file cut between two scans lacks (it decodes without an error, just unfinished):
/// each component in some scan for sequential files; for progressive ones, every one of
/// the 64 coefficients brought down to its last bit (successive approximation `Al` = 0).
pub fn scans_complete(bytes: &[u8], frame: &Frame) -> bool {
    const UNCODED: u8 = u8::MAX;
    let mut lowest_al = vec![[UNCODED; 64]; frame.components.len()];
    let Some(pieces) = pieces(bytes) else {
        return false;
    };
    for piece in pieces {
        let Piece::Segment {
            code: SOS, payload, ..
        } = piece
        else {
            continue;
        };
        let Some(&count) = payload.first() else {
            return false;
        };
        let count = usize::from(count);
        let Some(&[ss, se, approx]) = payload.get(1 + 2 * count..4 + 2 * count) else {
            return false;
        };
        let (ss, se, al) = if frame.progressive() {
            (usize::from(ss), usize::from(se).min(63), approx & 0x0F)
        } else {
            (0, 63, 0) // a sequential scan codes every coefficient of its components
        };
        for i in 0..count {
            let id = payload[1 + 2 * i];
            if let Some(c) = frame.components.iter().position(|&f| f == id) {
                for lowest in &mut lowest_al[c][ss..=se.max(ss)] {
                    *lowest = (*lowest).min(al);
                }
            }
        }
    }
    lowest_al.iter().all(|c| c.iter().all(|&al| al == 0))
}

/// The EXIF orientation (1..=8) from an `Exif` APP1 segment, 1 without one.
pub fn exif_orientation(bytes: &[u8]) -> u8 {
    let exif = pieces(bytes).and_then(|mut pieces| {
        pieces.find_map(|piece| match piece {
            Piece::Segment {
                code: 0xE1,
                payload,
                ..
            } => payload.strip_prefix(b"Exif\0\0"),
            Piece::Segment { code: SOS, .. } => Some(&[][..]),
            _ => None,
        })
    });
    exif.and_then(image::metadata::Orientation::from_exif_chunk)
        .map_or(1, |o| o.to_exif())
}

/// The ICC profile from the APP2 `ICC_PROFILE` chunks, joined in sequence order; `None`
/// without one or when the chunks do not add up.
pub fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = pieces(bytes)?
        .take_while(|p| !matches!(p, Piece::Segment { code: SOS, .. }))
        .filter_map(|p| match p {
            Piece::Segment {
                code: 0xE2,
                payload,
                ..
            } => {
                let rest = payload.strip_prefix(b"ICC_PROFILE\0")?;
                Some((*rest.first()?, rest.get(2..)?))
            }
            _ => None,
        })
        .collect();
    chunks.sort_by_key(|(seq, _)| *seq);
    let in_order = chunks
        .iter()
        .enumerate()
        .all(|(i, (seq, _))| usize::from(*seq) == i + 1);
    (in_order && !chunks.is_empty()).then(|| chunks.iter().flat_map(|c| c.1.to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_structures() {
        // SOI, SOS with a 2-byte length, data, EOI
        assert!(has_end_of_image(&[
            0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 1, 2, 0xFF, 0xD9
        ]));
        assert!(!has_end_of_image(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 1, 2, 3]));
        assert!(!has_end_of_image(&[0xFF, 0xD8, 0xFF, 0xD9]));
        assert!(!has_end_of_image(b"hello"));
        assert!(!has_end_of_image(&[]));
    }

    #[test]
    fn eoi_inside_an_app_segment_does_not_count() {
        // APP1 holding a fake EOI, then a scan that is cut off.
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xE1, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 0, 2, 9, 9,
        ];
        assert!(!has_end_of_image(&bytes));
    }
}

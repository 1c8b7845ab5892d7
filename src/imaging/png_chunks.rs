//! Reading a PNG's chunk list: the colour chunks the `image` decoder does not report
//! (`sRGB`, `gAMA`, `cHRM`, `cICP`), and the walk that metadata stripping reuses.

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// One chunk: its type, its data, and the whole chunk (length, type, data, CRC) as stored.
pub struct Chunk<'a> {
    pub kind: [u8; 4],
    pub data: &'a [u8],
    pub whole: &'a [u8],
}

/// The chunks of a PNG in order, stopping at the first that does not fit in the bytes.
/// `None` when the bytes do not start with the PNG signature.
pub fn chunks(bytes: &[u8]) -> Option<impl Iterator<Item = Chunk<'_>>> {
    let mut rest = bytes.strip_prefix(SIGNATURE)?;
    Some(std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let end = len.checked_add(12)?;
        let whole = rest.get(..end)?;
        let chunk = Chunk {
            kind: whole[4..8].try_into().ok()?,
            data: &whole[8..8 + len],
            whole,
        };
        rest = &rest[end..];
        Some(chunk)
    }))
}

/// What a PNG says about its colour, besides an ICC profile.
#[derive(Debug, Default, PartialEq)]
pub struct ColourChunks {
    pub srgb: bool,
    /// `gAMA`: the encoding exponent (0.45455 for 1/2.2).
    pub gamma: Option<f64>,
    /// `cHRM`: white, red, green, blue as x, y pairs.
    pub chromaticities: Option<[f64; 8]>,
    /// `cICP`: colour primaries, transfer, matrix, full-range flag.
    pub cicp: Option<[u8; 4]>,
}

/// The colour chunks before the image data (where the specification puts them).
pub fn colour_chunks(bytes: &[u8]) -> ColourChunks {
    let mut found = ColourChunks::default();
    let Some(chunks) = chunks(bytes) else {
        return found;
    };
    let be = |b: &[u8]| f64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])) / 100_000.0;
    for chunk in chunks {
        match (&chunk.kind, chunk.data.len()) {
            (b"IDAT", _) => break,
            (b"sRGB", 1) => found.srgb = true,
            (b"gAMA", 4) => found.gamma = Some(be(chunk.data)).filter(|g| *g > 0.0),
            (b"cHRM", 32) => {
                let mut values = [0.0; 8];
                for (value, bytes) in values.iter_mut().zip(chunk.data.chunks_exact(4)) {
                    *value = be(bytes);
                }
                found.chromaticities = Some(values);
            }
            (b"cICP", 4) => {
                found.cicp = Some([chunk.data[0], chunk.data[1], chunk.data[2], chunk.data[3]])
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0, 0, 0, 0]); // CRCs are not checked here
        out
    }

    #[test]
    fn reads_colour_chunks_before_the_data_only() {
        let mut png = SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"gAMA", &100_000u32.to_be_bytes()));
        png.extend(chunk(b"cICP", &[12, 13, 0, 1]));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"sRGB", &[0]));
        let found = colour_chunks(&png);
        assert_eq!(found.gamma, Some(1.0));
        assert_eq!(found.cicp, Some([12, 13, 0, 1]));
        assert!(!found.srgb, "after IDAT");
        assert_eq!(chunks(&png).unwrap().count(), 5);
        // A truncated last chunk ends the walk instead of reading past the end.
        assert_eq!(chunks(&png[..png.len() - 3]).unwrap().count(), 4);
        assert!(chunks(b"GIF89a").is_none());
    }
}

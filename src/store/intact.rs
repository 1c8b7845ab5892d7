//! Is a cached file whole? Variants are renamed into place without fsync (they are a
//! cache), so after a power loss the disk tier may hold an empty or zero-filled file under
//! a good name. Reads check what each format says about its own end before serving it
//! with a strong ETag and `immutable`; a file that fails is treated as a miss.
//!
//! The checks are structural and O(1) (or a walk over a handful of top-level boxes): a
//! file's signature, and its declared length or end marker where the format has one.

/// Whether `bytes`, cached under `file` (`<digest>.<ext>`, `<digest>.<ext>.gz`,
/// `blurhash-v1.json`), look like a complete file of that kind.
pub fn looks_whole(file: &str, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return false;
    }
    let Some((_, ext)) = file.rsplit_once('.') else {
        return true; // not a rendered file (a node-local original copy: its caller hashes it)
    };
    match ext {
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.ends_with(PNG_IEND),
        "jpg" | "jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9]),
        "gif" => bytes.starts_with(b"GIF8") && bytes.ends_with(b";"),
        "webp" => {
            bytes.len() >= 12
                && bytes.starts_with(b"RIFF")
                && &bytes[8..12] == b"WEBP"
                && le32(&bytes[4..8]) + 8 == bytes.len() as u64
        }
        "bmp" => {
            bytes.len() >= 6 && bytes.starts_with(b"BM") && le32(&bytes[2..6]) == bytes.len() as u64
        }
        "tiff" => bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*"),
        "ico" => ico_whole(bytes),
        "avif" => bytes.get(4..8) == Some(b"ftyp") && boxes_fill(bytes),
        "gz" => bytes.len() >= 18 && bytes.starts_with(&[0x1F, 0x8B]),
        // Text (txt, html, ansi, svg, json): unwritten blocks read back as zeros.
        _ => !bytes[bytes.len().saturating_sub(512)..].contains(&0),
    }
}

const PNG_IEND: &[u8] = &[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

fn le32(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// ISO-BMFF: the top-level boxes, each declaring its size, end exactly at the file's end.
fn boxes_fill(bytes: &[u8]) -> bool {
    let len = bytes.len() as u64;
    let mut at = 0u64;
    while at < len {
        let Some(header) = bytes.get(at as usize..at as usize + 8) else {
            return false;
        };
        let size = match be32(&header[..4]) {
            0 => return false, // "to the end of the file": our encoders never write it
            1 => match bytes.get(at as usize + 8..at as usize + 16) {
                Some(large) => u64::from_be_bytes(large.try_into().expect("8 bytes")),
                None => return false,
            },
            size => size,
        };
        if size < 8 {
            return false;
        }
        at += size;
    }
    at == len
}

/// ICO: a directory of images, each at an offset with a size; the last ends the file.
fn ico_whole(bytes: &[u8]) -> bool {
    if bytes.len() < 6 || !bytes.starts_with(&[0, 0, 1, 0]) {
        return false;
    }
    let count = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    let mut end = 0u64;
    for i in 0..count {
        let Some(entry) = bytes.get(6 + 16 * i..6 + 16 * (i + 1)) else {
            return false;
        };
        end = end.max(le32(&entry[8..12]) + le32(&entry[12..16]));
    }
    count > 0 && end == bytes.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = image::DynamicImage::new_rgb8(7, 5);
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn whole_files_pass_and_cut_or_zeroed_ones_fail() {
        use image::ImageFormat::*;
        for (ext, format) in [
            ("png", Png),
            ("jpg", Jpeg),
            ("gif", Gif),
            ("webp", WebP),
            ("bmp", Bmp),
            ("ico", Ico),
        ] {
            let bytes = encoded(format);
            let name = format!("0123.{ext}");
            assert!(looks_whole(&name, &bytes), "{ext}");
            assert!(!looks_whole(&name, &bytes[..bytes.len() - 1]), "{ext} cut");
            assert!(!looks_whole(&name, &vec![0; bytes.len()]), "{ext} zeros");
            assert!(!looks_whole(&name, b""), "{ext} empty");
        }
        assert!(looks_whole("blurhash-v1.json", b"{\"blurhash\":\"x\"}"));
        assert!(!looks_whole("blurhash-v1.json", &[b'{', 0, 0, 0]));
        assert!(!looks_whole("a.txt", b""));
    }

    #[test]
    fn avif_boxes_must_reach_the_end() {
        let mut file = Vec::new();
        file.extend_from_slice(&16u32.to_be_bytes());
        file.extend_from_slice(b"ftypavif");
        file.extend_from_slice(&[0; 4]);
        file.extend_from_slice(&12u32.to_be_bytes());
        file.extend_from_slice(b"mdat");
        file.extend_from_slice(&[1, 2, 3, 4]);
        assert!(looks_whole("a.avif", &file));
        assert!(!looks_whole("a.avif", &file[..file.len() - 2]));
        file.extend_from_slice(&[0; 8]);
        assert!(!looks_whole("a.avif", &file));
    }
}

//! JPEG structure checks the decoder does not make.
//!
//! The JPEG decoder behind `image` (zune-jpeg) fills a truncated scan with grey and reports
//! success. Storing such a file would serve a half-grey picture forever, so progimage
//! rejects a JPEG whose entropy-coded data never reaches an End Of Image marker.

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
    if bytes.len() < 4 || bytes[0] != MARKER || bytes[1] != SOI {
        return false;
    }
    let mut pos = 2;
    // Walk marker segments until the first Start Of Scan.
    loop {
        // Fill bytes (any number of 0xFF) may precede a marker code.
        while pos < bytes.len() && bytes[pos] == MARKER {
            pos += 1;
        }
        let Some(&code) = bytes.get(pos) else {
            return false;
        };
        pos += 1;
        if code == EOI {
            return false; // an image with no scan at all
        }
        if (0xD0..=0xD7).contains(&code) || code == 0x01 {
            continue; // stand-alone markers carry no length
        }
        let Some(len) = bytes
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        let segment_end = pos + len;
        if code == SOS {
            return scan_contains_eoi(bytes.get(segment_end..).unwrap_or_default());
        }
        pos = segment_end;
    }
}

fn scan_contains_eoi(data: &[u8]) -> bool {
    // Searched from the end, where the EOI of a whole file is: every render runs this
    // check, and a forward byte-by-byte walk of a 3 MB scan cost ~0.8 ms.
    memchr::memmem::rfind(data, &[MARKER, EOI]).is_some()
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

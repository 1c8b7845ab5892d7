//! TIFF layouts, written here by a small uncompressed writer: strips and tiles (with
//! partial edge tiles), chunky and planar, palette, 1..=16-bit gray, multi-page (the
//! first page counts). Each reads back exactly, or is refused with a 4xx, never a 5xx.

use reqwest::StatusCode;

use crate::support::{decode_png, TestServer};

/// One page: `samples[c][y * w + x]`, each below 2^bits.
struct Page {
    width: u32,
    height: u32,
    bits: u16,
    photometric: u16,
    samples: Vec<Vec<u16>>,
    planar: bool,
    tile: Option<u32>,
    colormap: Option<Vec<u16>>,
    /// The `ExtraSamples` tag: 1 = associated (premultiplied) alpha, 2 = unassociated.
    extra_samples: Option<u16>,
    /// `FillOrder` 2: every byte of the data written least significant bit first.
    reversed: bool,
}

fn gray(width: u32, height: u32, bits: u16) -> Page {
    let max = (1u32 << bits) - 1;
    let plane = (0..width * height)
        .map(|i| ((i * 7 + i / width) % (max + 1)) as u16)
        .collect();
    Page {
        width,
        height,
        bits,
        photometric: 1,
        samples: vec![plane],
        planar: false,
        tile: None,
        colormap: None,
        extra_samples: None,
        reversed: false,
    }
}

fn rgb(width: u32, height: u32, bits: u16) -> Page {
    let max = (1u32 << bits) - 1;
    let plane = |k: u32| {
        (0..width * height)
            .map(|i| ((i * (3 + k) + k * 40) % (max + 1)) as u16)
            .collect()
    };
    Page {
        width,
        height,
        bits,
        photometric: 2,
        samples: vec![plane(0), plane(1), plane(2)],
        planar: false,
        tile: None,
        colormap: None,
        extra_samples: None,
        reversed: false,
    }
}

/// Rows of `bits`-wide samples, packed most significant bit first, each row padded to a byte.
fn pack_rows(values: &[u16], row_len: usize, bits: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for row in values.chunks(row_len) {
        let (mut acc, mut filled) = (0u32, 0u16);
        for &v in row {
            if bits == 16 {
                out.extend_from_slice(&v.to_le_bytes());
                continue;
            }
            acc = (acc << bits) | u32::from(v);
            filled += bits;
            while filled >= 8 {
                out.push((acc >> (filled - 8)) as u8);
                filled -= 8;
            }
        }
        if filled > 0 {
            out.push((acc << (8 - filled)) as u8);
        }
    }
    out
}

/// The pieces of a page's data: strips (one per plane when planar, else one) or tiles,
/// each as its samples interleaved per pixel.
fn chunks(page: &Page) -> Vec<Vec<u8>> {
    let (w, h) = (page.width as usize, page.height as usize);
    let planes: Vec<Vec<usize>> = if page.planar {
        (0..page.samples.len()).map(|c| vec![c]).collect()
    } else {
        vec![(0..page.samples.len()).collect()]
    };
    let mut out = Vec::new();
    for plane in &planes {
        let value = |x: usize, y: usize, c: usize| {
            if x < w && y < h {
                page.samples[c][y * w + x]
            } else {
                0
            }
        };
        let tiles: Vec<(usize, usize, usize, usize)> = match page.tile {
            None => vec![(0, 0, w, h)],
            Some(t) => {
                let t = t as usize;
                let mut list = Vec::new();
                for ty in (0..h).step_by(t) {
                    for tx in (0..w).step_by(t) {
                        list.push((tx, ty, t, t));
                    }
                }
                list
            }
        };
        for (x0, y0, tw, th) in tiles {
            let mut values = Vec::new();
            for y in y0..y0 + th {
                for x in x0..x0 + tw {
                    for &c in plane {
                        values.push(value(x, y, c));
                    }
                }
            }
            out.push(pack_rows(&values, tw * plane.len(), page.bits));
        }
    }
    out
}

/// A little-endian TIFF of `pages`, uncompressed: every page's data first, then the
/// directories, each pointing at the next.
fn tiff(pages: &[Page]) -> Vec<u8> {
    tiff_file(pages, false)
}

/// As [`tiff`], classic or BigTIFF (8-byte offsets and counts, 20-byte entries).
fn tiff_file(pages: &[Page], big: bool) -> Vec<u8> {
    // Offsets, entry counts and entries are wider in BigTIFF.
    let (word, count_len, entry_len) = if big { (8, 8, 20) } else { (4, 2, 12) };
    let number = |v: u64, len: usize| v.to_le_bytes()[..len].to_vec();
    let mut out = match big {
        true => b"II\x2b\x00\x08\x00\0\0\0\0\0\0\0\0\0\0".to_vec(),
        false => b"II\x2a\x00\0\0\0\0".to_vec(),
    };
    let first_ifd_at = out.len() - word;
    let mut placed = Vec::new();
    for page in pages {
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for mut chunk in chunks(page) {
            if page.reversed {
                chunk.iter_mut().for_each(|b| *b = b.reverse_bits());
            }
            offsets.push(out.len() as u32);
            counts.push(chunk.len() as u32);
            out.extend(chunk);
        }
        placed.push((offsets, counts));
    }
    for (index, (page, (offsets, counts))) in pages.iter().zip(placed).enumerate() {
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let ifd_at = out.len() as u32;
        if index == 0 {
            out[first_ifd_at..first_ifd_at + word]
                .copy_from_slice(&number(u64::from(ifd_at), word));
        }
        let spp = page.samples.len() as u16;
        // (tag, type, values); type 3 = SHORT, 4 = LONG.
        let mut tags: Vec<(u16, u16, Vec<u32>)> = vec![
            (256, 4, vec![page.width]),
            (257, 4, vec![page.height]),
            (258, 3, vec![u32::from(page.bits); usize::from(spp)]),
            (259, 3, vec![1]),
            (262, 3, vec![u32::from(page.photometric)]),
            (277, 3, vec![u32::from(spp)]),
            (284, 3, vec![if page.planar { 2 } else { 1 }]),
        ];
        match page.tile {
            None => {
                tags.push((273, 4, offsets));
                tags.push((278, 4, vec![page.height]));
                tags.push((279, 4, counts));
            }
            Some(t) => {
                tags.push((322, 4, vec![t]));
                tags.push((323, 4, vec![t]));
                tags.push((324, 4, offsets));
                tags.push((325, 4, counts));
            }
        }
        if page.reversed {
            tags.push((266, 3, vec![2]));
        }
        if let Some(extra) = page.extra_samples {
            tags.push((338, 3, vec![u32::from(extra)]));
        }
        if let Some(map) = &page.colormap {
            tags.push((320, 3, map.iter().map(|&v| u32::from(v)).collect()));
        }
        tags.sort_by_key(|t| t.0);
        // Values that do not fit in their entry go right after the directory.
        let mut extra_at = (ifd_at as usize + count_len + entry_len * tags.len() + word) as u32;
        let mut entries = number(tags.len() as u64, count_len);
        let mut extra = Vec::new();
        for (tag, kind, values) in &tags {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|&v| match kind {
                    3 => (v as u16).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect();
            entries.extend_from_slice(&tag.to_le_bytes());
            entries.extend_from_slice(&kind.to_le_bytes());
            entries.extend(number(values.len() as u64, word));
            if bytes.len() <= word {
                let mut inline = bytes;
                inline.resize(word, 0);
                entries.extend(inline);
            } else {
                entries.extend(number(u64::from(extra_at), word));
                extra_at += bytes.len() as u32;
                extra.extend(bytes);
            }
        }
        let next = match index + 1 < pages.len() {
            true => extra_at + extra_at % 2,
            false => 0,
        };
        entries.extend(number(u64::from(next), word));
        out.extend(entries);
        out.extend(extra);
    }
    out
}

/// What the page should look like as 8-bit RGB (gray replicated, palette looked up).
fn expected_rgb(page: &Page) -> Vec<[u8; 3]> {
    let max = f64::from((1u32 << page.bits) - 1);
    let to8 = |v: u16| (f64::from(v) * 255.0 / max).round() as u8;
    (0..(page.width * page.height) as usize)
        .map(|i| match (page.photometric, &page.colormap) {
            (3, Some(map)) => {
                let n = map.len() / 3;
                let index = usize::from(page.samples[0][i]);
                [0, 1, 2].map(|c| (f64::from(map[c * n + index]) * 255.0 / 65535.0).round() as u8)
            }
            (1, _) => [to8(page.samples[0][i]); 3],
            _ => [0, 1, 2].map(|c| to8(page.samples[c][i])),
        })
        .collect()
}

async fn assert_reads_back(server: &TestServer, what: &str, bytes: Vec<u8>, page: &Page) {
    let (status, body) = server.upload_bytes(bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{what}: {body}");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(u64::from(page.width)), Some(u64::from(page.height))),
        "{what}"
    );
    let id = body["id"].as_str().unwrap();
    let out = decode_png(
        &server
            .bytes(&format!("/image/{id}.png?w={}", page.width))
            .await,
    );
    let want = expected_rgb(page);
    let mismatched = out
        .rgba
        .iter()
        .zip(&want)
        .filter(|(got, want)| (0..3).any(|c| got[c].abs_diff(want[c]) > 1))
        .count();
    assert_eq!(mismatched, 0, "{what}: {mismatched} pixels differ");
}

#[tokio::test]
async fn strips_tiles_chunky_and_planar_read_back_exactly() {
    let server = TestServer::start().await;
    for bits in [8u16, 16] {
        for planar in [false, true] {
            for tile in [None, Some(16)] {
                // 37×23: the last column and row of tiles are partial.
                let what = format!("RGB {bits}-bit planar={planar} tile={tile:?}");
                let bytes = tiff(&[rgb_like(37, 23, bits, planar, tile)]);
                assert_reads_back(&server, &what, bytes, &rgb_like(37, 23, bits, planar, tile))
                    .await;
            }
        }
    }
}

fn rgb_like(w: u32, h: u32, bits: u16, planar: bool, tile: Option<u32>) -> Page {
    let mut page = rgb(w, h, bits);
    page.planar = planar;
    page.tile = tile;
    page
}

#[tokio::test]
async fn gray_at_every_bit_depth_reads_back_exactly() {
    let server = TestServer::start().await;
    for bits in [1u16, 2, 4, 8, 16] {
        let page = gray(29, 11, bits);
        let bytes = tiff(&[gray(29, 11, bits)]);
        assert_reads_back(&server, &format!("gray {bits}-bit"), bytes, &page).await;
    }
}

#[tokio::test]
async fn palette_tiffs_read_back_through_their_colour_map() {
    let server = TestServer::start().await;
    for bits in [4u16, 8] {
        let entries = 1usize << bits;
        let map: Vec<u16> = (0..3 * entries)
            .map(|i| ((i * 9973) % 65536) as u16)
            .collect();
        let make = || {
            let mut page = gray(21, 13, bits);
            page.photometric = 3;
            page.colormap = Some(map.clone());
            page
        };
        let page = make();
        assert_reads_back(
            &server,
            &format!("palette {bits}-bit"),
            tiff(&[make()]),
            &page,
        )
        .await;
    }
}

#[tokio::test]
async fn a_multi_page_tiff_is_its_first_page() {
    let server = TestServer::start().await;
    let first = rgb(17, 9, 8);
    let bytes = tiff(&[rgb(17, 9, 8), gray(40, 40, 8)]);
    assert_reads_back(&server, "two pages", bytes, &first).await;
}

/// BigTIFF (64-bit offsets): RGB, planar tiles and a palette page, as in classic TIFF.
#[tokio::test]
async fn bigtiff_reads_back_like_classic_tiff() {
    let server = TestServer::start().await;
    let page = || rgb_like(37, 23, 8, false, None);
    assert_reads_back(&server, "BigTIFF RGB", tiff_file(&[page()], true), &page()).await;
    let tiles = || rgb_like(37, 23, 16, true, Some(16));
    let bytes = tiff_file(&[tiles()], true);
    assert_reads_back(&server, "BigTIFF planar tiles", bytes, &tiles()).await;
    let palette = || {
        let mut page = gray(21, 13, 8);
        page.photometric = 3;
        page.colormap = Some((0..768).map(|i| ((i * 9973) % 65536) as u16).collect());
        page
    };
    let bytes = tiff_file(&[palette()], true);
    assert_reads_back(&server, "BigTIFF palette", bytes, &palette()).await;
}

/// RGBA with associated (premultiplied) alpha, as Photoshop and scanners write it: the
/// colour comes out divided by alpha, as drawn. With unassociated alpha the samples are
/// the colour already.
#[tokio::test]
async fn premultiplied_alpha_is_undone() {
    let server = TestServer::start().await;
    let (w, h) = (19u32, 7u32);
    let colour = |i: u32, c: u32| ((i * (40 + 20 * c) + c * 9000) % 65536) as u16;
    let alpha = |i: u32| (16384 + (i * 997) % 49152) as u16;
    for (extra, premultiplied) in [(1u16, true), (2, false)] {
        let stored = |i: u32, c: u32| match premultiplied {
            true => ((u32::from(colour(i, c)) * u32::from(alpha(i)) + 32767) / 65535) as u16,
            false => colour(i, c),
        };
        let samples = (0..4)
            .map(|c| {
                (0..w * h)
                    .map(|i| if c == 3 { alpha(i) } else { stored(i, c) })
                    .collect()
            })
            .collect();
        let page = Page {
            width: w,
            height: h,
            bits: 16,
            photometric: 2,
            samples,
            planar: false,
            tile: None,
            colormap: None,
            extra_samples: Some(extra),
            reversed: false,
        };
        let (status, body) = server.upload_bytes(tiff(&[page])).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap();
        let png = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
        for i in 0..w * h {
            let got = png.at(i % w, i / w);
            let want = [0, 1, 2].map(|c| (f64::from(colour(i, c)) / 257.0).round() as u8);
            for c in 0..3 {
                assert!(
                    got[c].abs_diff(want[c]) <= 1,
                    "ExtraSamples {extra}, pixel {i}: got {got:?}, drew {want:?}"
                );
            }
            assert_eq!(got[3], (f64::from(alpha(i)) / 257.0).round() as u8);
        }
    }
}

/// `FillOrder` 2 (bits least significant first, from fax machines and scanners) at every
/// depth, read as libtiff reads it.
#[tokio::test]
async fn reversed_bit_order_reads_back_exactly() {
    let server = TestServer::start().await;
    for bits in [1u16, 2, 4, 8, 16] {
        let page = || {
            let mut page = gray(29, 11, bits);
            page.reversed = true;
            page
        };
        let what = format!("FillOrder 2, gray {bits}-bit");
        assert_reads_back(&server, &what, tiff(&[page()]), &page()).await;
    }
}

//! AVIF input: a third-party file against the same picture in another format, and files
//! made by the project's own encoder (rav1e through `ravif`) at 8 and 10 bits, with and
//! without alpha, in odd sizes; damaged files are 4xx.

use reqwest::StatusCode;

use crate::support::{corpus, decode_png, TestServer};

async fn stored(server: &TestServer, bytes: Vec<u8>) -> serde_json::Value {
    let (status, body) = server.upload_bytes(bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Pillow's `hopper.avif` is the same picture as its `hopper.tif` (our TIFF corpus file).
#[tokio::test]
async fn a_third_party_avif_shows_the_same_picture_as_its_tiff() {
    let server = TestServer::start().await;
    let avif = stored(&server, corpus("avif-8bit-yuv420.avif")).await;
    assert_eq!(avif["format"], "avif");
    let tiff = stored(&server, corpus("tiff-8bit-rgb.tiff")).await;
    let from_avif = decode_png(
        &server
            .bytes(&format!(
                "/image/{}.png?w=128",
                avif["id"].as_str().unwrap()
            ))
            .await,
    );
    let from_tiff = decode_png(
        &server
            .bytes(&format!(
                "/image/{}.png?w=128",
                tiff["id"].as_str().unwrap()
            ))
            .await,
    );
    let diff = from_avif.mean_diff(&from_tiff);
    assert!(
        diff < 6.0,
        "mean difference {diff} between the AVIF and the TIFF"
    );
}

fn gradient(w: u32, h: u32) -> Vec<[u8; 4]> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                128,
                ((x + y) * 255 / (w + h)) as u8,
            ]
        })
        .collect()
}

fn encode(w: u32, h: u32, alpha: bool, depth: u8) -> Vec<u8> {
    let pixels = gradient(w, h);
    let encoder = ravif::Encoder::new()
        .with_quality(95.0)
        .with_alpha_quality(95.0)
        .with_speed(10)
        .with_bit_depth(match depth {
            8 => ravif::BitDepth::Eight,
            _ => ravif::BitDepth::Ten,
        });
    let (w, h) = (w as usize, h as usize);
    let encoded = if alpha {
        let rgba: Vec<ravif::RGBA8> = pixels
            .iter()
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(&rgba[..], w, h))
    } else {
        let rgb: Vec<ravif::RGB8> = pixels
            .iter()
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(&rgb[..], w, h))
    };
    encoded.unwrap().avif_file
}

#[tokio::test]
async fn avifs_at_8_and_10_bits_with_and_without_alpha_read_back() {
    let server = TestServer::start().await;
    let (w, h) = (37u32, 23u32);
    let source = gradient(w, h);
    for depth in [8u8, 10] {
        for alpha in [false, true] {
            let what = format!("{depth}-bit alpha={alpha}");
            let body = stored(&server, encode(w, h, alpha, depth)).await;
            assert_eq!(
                (body["width"].as_u64(), body["height"].as_u64()),
                (Some(37), Some(23)),
                "{what}"
            );
            assert_eq!(body["has_alpha"], alpha, "{what}");
            let out = decode_png(
                &server
                    .bytes(&format!("/image/{}.png?w=37", body["id"].as_str().unwrap()))
                    .await,
            );
            let channels = if alpha { 4 } else { 3 };
            let total: u64 = out
                .rgba
                .iter()
                .zip(&source)
                .map(|(got, want)| {
                    (0..channels)
                        .map(|c| u64::from(got[c].abs_diff(want[c])))
                        .sum::<u64>()
                })
                .sum();
            let mean = total as f64 / (source.len() * channels) as f64;
            assert!(mean < 4.0, "{what}: mean difference {mean}");
        }
    }
}

#[tokio::test]
async fn damaged_avifs_are_client_errors() {
    let server = TestServer::start().await;
    let good = encode(40, 30, true, 8);
    for cut in [40, good.len() / 2, good.len() - 10] {
        let resp = server.post("/image", good[..cut].to_vec()).await;
        assert!(
            resp.status().is_client_error(),
            "cut at {cut}: {}",
            resp.status()
        );
    }
    let mut flipped = good.clone();
    let len = flipped.len();
    for i in (len / 2..len).step_by(7) {
        flipped[i] ^= 0x55;
    }
    let resp = server.post("/image", flipped).await;
    assert!(
        resp.status().is_client_error() || resp.status() == StatusCode::CREATED,
        "{}",
        resp.status()
    );
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

/// `irot` (anticlockwise quarter turns) and `imir` (mode 0 swaps top and bottom, as in
/// HEIF's second edition, libavif and browsers) are applied, rotation first.
#[tokio::test]
async fn irot_and_imir_turn_the_image_upright() {
    let server = TestServer::start().await;
    let (w, h) = (30u32, 20u32);
    let source = gradient(w, h);
    let plain = encode(w, h, false, 8);
    let at = |x: u32, y: u32| source[(y * w + x) as usize];
    // (what, properties added, output size, where each output pixel comes from)
    type Mapping = Box<dyn Fn(u32, u32) -> (u32, u32)>;
    type Case = (&'static str, Vec<Vec<u8>>, (u32, u32), Mapping);
    let cases: Vec<Case> = vec![
        // 90° anticlockwise: the output's (x, y) shows the source's (W-1-y, x).
        (
            "irot 1",
            vec![property(b"irot", &[1])],
            (h, w),
            Box::new(move |x, y| (w - 1 - y, x)),
        ),
        (
            "imir 0",
            vec![property(b"imir", &[0])],
            (w, h),
            Box::new(move |x, y| (x, h - 1 - y)),
        ),
        (
            "imir 1",
            vec![property(b"imir", &[1])],
            (w, h),
            Box::new(move |x, y| (w - 1 - x, y)),
        ),
        (
            "irot 1 then imir 0",
            vec![property(b"irot", &[1]), property(b"imir", &[0])],
            (h, w),
            Box::new(move |x, y| (w - 1 - (w - 1 - y), x)),
        ),
    ];
    for (what, properties, (out_w, out_h), source_of) in cases {
        let mut avif = plain.clone();
        for p in &properties {
            avif = with_property(&avif, p);
        }
        let body = stored(&server, avif).await;
        assert_eq!(
            (body["width"].as_u64(), body["height"].as_u64()),
            (Some(u64::from(out_w)), Some(u64::from(out_h))),
            "{what}"
        );
        let out = decode_png(
            &server
                .bytes(&format!(
                    "/image/{}.png?w={out_w}",
                    body["id"].as_str().unwrap()
                ))
                .await,
        );
        let mut total = 0u64;
        for y in 0..out_h {
            for x in 0..out_w {
                let (sx, sy) = source_of(x, y);
                let (got, want) = (out.at(x, y), at(sx, sy));
                total += (0..3)
                    .map(|c| u64::from(got[c].abs_diff(want[c])))
                    .sum::<u64>();
            }
        }
        let mean = total as f64 / f64::from(out_w * out_h * 3);
        assert!(
            mean < 4.0,
            "{what}: mean difference {mean} from the expected orientation"
        );
    }
}

fn property(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// Child boxes of `bytes[start..end]`: (offset, size, type).
fn boxes(bytes: &[u8], start: usize, end: usize) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, size, bytes[at + 4..at + 8].try_into().unwrap()));
        at += size.max(8);
    }
    out
}

/// The AVIF with one more property box in `ipco`, associated with the primary item in
/// `ipma`, every box size on the way and the item offsets in `iloc` moved to match.
fn with_property(avif: &[u8], prop: &[u8]) -> Vec<u8> {
    let top = boxes(avif, 0, avif.len());
    let &(meta_at, meta_size, _) = top.iter().find(|b| &b.2 == b"meta").unwrap();
    let children = boxes(avif, meta_at + 12, meta_at + meta_size);
    let find = |list: &[(usize, usize, [u8; 4])], kind: &[u8; 4]| {
        *list.iter().find(|b| &b.2 == kind).unwrap()
    };
    let (pitm_at, _, _) = find(&children, b"pitm");
    let primary = u16::from_be_bytes(avif[pitm_at + 12..pitm_at + 14].try_into().unwrap());
    let (iprp_at, iprp_size, _) = find(&children, b"iprp");
    let (iloc_at, _, _) = find(&children, b"iloc");
    let props = boxes(avif, iprp_at + 8, iprp_at + iprp_size);
    let (ipco_at, ipco_size, _) = find(&props, b"ipco");
    let (ipma_at, _, _) = find(&props, b"ipma");
    let index = boxes(avif, ipco_at + 8, ipco_at + ipco_size).len() + 1;
    let delta = prop.len() + 1;
    let mut out = avif.to_vec();
    // The association byte: in the primary item's ipma entry (version 0, 7-bit indices).
    let mut at = ipma_at + 12 + 4;
    let entries = u32::from_be_bytes(avif[ipma_at + 12..ipma_at + 16].try_into().unwrap());
    let mut insert_assoc = None;
    for _ in 0..entries {
        let item = u16::from_be_bytes(avif[at..at + 2].try_into().unwrap());
        let count = usize::from(avif[at + 2]);
        if item == primary {
            insert_assoc = Some((at + 2, at + 3 + count));
        }
        at += 3 + count;
    }
    let (count_at, assoc_end) = insert_assoc.expect("the primary item has properties");
    // Later offsets first, so earlier ones stay valid.
    out.insert(assoc_end, 0x80 | index as u8);
    out[count_at] += 1;
    let ipco_end = ipco_at + ipco_size;
    out.splice(ipco_end..ipco_end, prop.iter().copied());
    let grow = |out: &mut Vec<u8>, at: usize, by: usize| {
        let size = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize + by;
        out[at..at + 4].copy_from_slice(&(size as u32).to_be_bytes());
    };
    // ipma moved by the property's length (it follows ipco).
    grow(&mut out, ipma_at + prop.len(), 1);
    grow(&mut out, ipco_at, prop.len());
    grow(&mut out, iprp_at, delta);
    grow(&mut out, meta_at, delta);
    // iloc (before iprp, so not moved): every extent offset moves by `delta`.
    let version = out[iloc_at + 8];
    let sizes = out[iloc_at + 12];
    let (offset_size, length_size) = (usize::from(sizes >> 4), usize::from(sizes & 15));
    let base_size = usize::from(out[iloc_at + 13] >> 4);
    let index_size = if version >= 1 {
        usize::from(out[iloc_at + 13] & 15)
    } else {
        0
    };
    let mut at = iloc_at + 14;
    let items = u16::from_be_bytes(out[at..at + 2].try_into().unwrap());
    at += 2;
    let bump = |out: &mut Vec<u8>, at: usize, size: usize| match size {
        4 => {
            let v = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) + delta as u32;
            out[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        8 => {
            let v = u64::from_be_bytes(out[at..at + 8].try_into().unwrap()) + delta as u64;
            out[at..at + 8].copy_from_slice(&v.to_be_bytes());
        }
        _ => {}
    };
    for _ in 0..items {
        at += 2; // item id
        if version >= 1 {
            at += 2; // construction method
        }
        at += 2; // data reference index
        if base_size > 0 {
            bump(&mut out, at, base_size);
        }
        at += base_size;
        let extents = u16::from_be_bytes(out[at..at + 2].try_into().unwrap());
        at += 2;
        for _ in 0..extents {
            at += index_size;
            if base_size == 0 {
                bump(&mut out, at, offset_size);
            }
            at += offset_size + length_size;
        }
    }
    out
}

/// An AVIF without its `pixi` (bits per channel) property, as some writers make them:
/// read as Firefox reads it (Pillow's `hopper-missing-pixi.avif` is such a file).
#[tokio::test]
async fn an_avif_without_its_pixi_property_is_read() {
    let server = TestServer::start().await;
    let good = encode(37, 23, false, 8);
    let at: Vec<usize> = good
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"pixi")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "ravif writes one pixi property");
    let mut without = good.clone();
    without[at[0]..at[0] + 4].copy_from_slice(b"free"); // a property nobody reads
    let with = stored(&server, good).await;
    let without = stored(&server, without).await;
    let png = |body: serde_json::Value| format!("/image/{}.png", body["id"].as_str().unwrap());
    let (a, b) = (
        server.bytes(&png(with)).await,
        server.bytes(&png(without)).await,
    );
    assert_eq!(decode_png(&a).mean_diff(&decode_png(&b)), 0.0);
}

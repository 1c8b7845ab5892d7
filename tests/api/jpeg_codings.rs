//! Every valid JPEG coding is read or refused with a reason: arithmetic coding (sequential
//! and progressive), lossless (SOF3, written here by a small encoder), files that lack
//! only their end-of-image marker; 12-bit samples are `415` saying so, and data that
//! stops early is `422`.

use reqwest::StatusCode;

use crate::support::{corpus, decode_jpeg, decode_png, TestServer};

async fn stored(server: &TestServer, bytes: Vec<u8>) -> String {
    let (status, body) = server.upload_bytes(bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The arithmetic-coded files carry the same DCT coefficients as `jpeg-progressive.jpg`
/// (lossless `jpegtran` transcodes), so they must show the same picture.
#[tokio::test]
async fn arithmetic_coded_jpegs_decode_to_the_huffman_sources_pixels() {
    let server = TestServer::start().await;
    let reference = decode_jpeg(&corpus("jpeg-progressive.jpg"));
    for file in ["jpeg-arithmetic.jpg", "jpeg-arithmetic-progressive.jpg"] {
        let id = stored(&server, corpus(file)).await;
        let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=320")).await);
        let diff = out.mean_diff(&reference);
        assert!(diff < 1.0, "{file}: mean difference {diff}");
        // Shrink-on-load works for them too.
        let small = decode_png(&server.bytes(&format!("/image/{id}.png?w=40")).await);
        assert_eq!((small.width, small.height), (40, 30), "{file}");
    }
}

/// Complete data without the final `FF D9` is accepted (browsers show it); cut a
/// progressive file between two scans, or a sequential one inside its scan, and it is not.
#[tokio::test]
async fn a_missing_end_marker_is_accepted_only_when_the_data_is_complete() {
    let server = TestServer::start().await;
    for file in [
        "jpeg-progressive.jpg",
        "exif-orientation-6.jpg",
        "jpeg-grayscale.jpg",
    ] {
        let whole = corpus(file);
        assert_eq!(&whole[whole.len() - 2..], &[0xFF, 0xD9]);
        let unterminated = whole[..whole.len() - 2].to_vec();
        let id = stored(&server, unterminated).await;
        let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=100")).await);
        let whole_id = stored(&server, whole).await;
        let reference = decode_png(&server.bytes(&format!("/image/{whole_id}.png?w=100")).await);
        let diff = out.mean_diff(&reference);
        assert!(
            diff < 1.0,
            "{file}: mean difference {diff} from the terminated file"
        );
    }

    // The progressive file cut right before its last scan: every row is there, but not
    // every coefficient's last bit.
    let progressive = corpus("jpeg-progressive.jpg");
    let last_scan = progressive
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .unwrap();
    let (status, body) = server.upload_bytes(progressive[..last_scan].to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "corrupt_image");
    // An arithmetic file without its end marker cannot be told complete: refused.
    let arithmetic = corpus("jpeg-arithmetic.jpg");
    let (status, _) = server
        .upload_bytes(arithmetic[..arithmetic.len() - 2].to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A 12-bit JPEG (SOF1, precision 12) is refused as unsupported, naming the bit depth.
#[tokio::test]
async fn twelve_bit_jpegs_are_unsupported_and_say_so() {
    let server = TestServer::start().await;
    let mut jpeg = corpus("jpeg-grayscale.jpg");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame");
    jpeg[sof + 1] = 0xC1;
    jpeg[sof + 4] = 12; // sample precision
    let resp = server.post("/image", jpeg).await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["code"], "unsupported_format");
    assert!(
        body["message"].as_str().unwrap().contains("12-bit"),
        "{body}"
    );
}

/// Lossless JPEGs (SOF3), gray at 12 bits and RGB at 8, in odd sizes: the pixels come
/// back exactly (scaled to 8 bits for the output).
#[tokio::test]
async fn lossless_jpegs_decode_exactly() {
    let server = TestServer::start().await;
    let (w, h) = (37u16, 23u16);
    let gray: Vec<u16> = (0..u32::from(w) * u32::from(h))
        .map(|i| ((i * 97) % 4096) as u16)
        .collect();
    let id = stored(&server, lossless_jpeg(w, h, 12, 1, &gray)).await;
    let meta: serde_json::Value = server
        .get(&format!("/image/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(37), Some(23))
    );
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=37")).await);
    for (i, p) in out.rgba.iter().enumerate() {
        let want = (f64::from(gray[i]) * 255.0 / 4095.0).round() as i32;
        assert!(
            (i32::from(p[0]) - want).abs() <= 1,
            "pixel {i}: {} vs {want}",
            p[0]
        );
    }

    let rgb: Vec<u16> = (0..u32::from(w) * u32::from(h) * 3)
        .map(|i| ((i * 31 + i / 7) % 256) as u16)
        .collect();
    let id = stored(&server, lossless_jpeg(w, h, 8, 3, &rgb)).await;
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=37")).await);
    for (i, p) in out.rgba.iter().enumerate() {
        let want = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]].map(|v| v as u8);
        assert_eq!(&p[..3], &want, "pixel {i}");
    }
    // Damaged lossless data is a clean 422, never a crash.
    let mut damaged = lossless_jpeg(w, h, 12, 1, &gray);
    let len = damaged.len();
    damaged.truncate(len / 2);
    let resp = server.post("/image", damaged).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let fine = server.get("/health").await;
    assert_eq!(fine.status(), StatusCode::OK);
}

/// A lossless JPEG (ITU T.81 annex H) of `samples` (row-major, `components` interleaved,
/// each < 2^precision): predictor 1 (the left neighbour), one Huffman table in which
/// every difference category 0..=16 has a 5-bit code.
fn lossless_jpeg(w: u16, h: u16, precision: u8, components: u8, samples: &[u16]) -> Vec<u8> {
    let segment = |out: &mut Vec<u8>, code: u8, payload: &[u8]| {
        out.extend_from_slice(&[0xFF, code]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    };
    let mut out = vec![0xFF, 0xD8];
    let mut sof = vec![precision];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.push(components);
    for c in 1..=components {
        sof.extend_from_slice(&[c, 0x11, 0]);
    }
    segment(&mut out, 0xC3, &sof);
    let mut dht = vec![0x00];
    let mut counts = [0u8; 16];
    counts[4] = 17; // seventeen codes of length 5
    dht.extend_from_slice(&counts);
    dht.extend(0..=16u8);
    segment(&mut out, 0xC4, &dht);
    let mut sos = vec![components];
    for c in 1..=components {
        sos.extend_from_slice(&[c, 0x00]);
    }
    sos.extend_from_slice(&[1, 0, 0]); // predictor 1, Se 0, no point transform
    segment(&mut out, 0xDA, &sos);

    let mut bits = BitWriter::default();
    let (w, h, n) = (usize::from(w), usize::from(h), usize::from(components));
    let at = |x: usize, y: usize, c: usize| i32::from(samples[(y * w + x) * n + c]);
    for y in 0..h {
        for x in 0..w {
            for c in 0..n {
                let prediction = match (x, y) {
                    (0, 0) => 1 << (precision - 1),
                    (0, _) => at(0, y - 1, c),
                    _ => at(x - 1, y, c),
                };
                // Differences are taken modulo 2^16 (H.1.2.1).
                let diff = (at(x, y, c) - prediction).rem_euclid(65536);
                let diff = if diff > 32768 { diff - 65536 } else { diff };
                let category = if diff == 0 {
                    0
                } else {
                    32 - diff.unsigned_abs().leading_zeros()
                };
                bits.put(category, 5);
                if (1..16).contains(&category) {
                    let extra = if diff < 0 { diff - 1 } else { diff };
                    bits.put((extra as u32) & ((1 << category) - 1), category);
                }
            }
        }
    }
    out.extend(bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Entropy-coded bytes: most significant bit first, 0xFF stuffed with 0x00, padded with 1s.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    filled: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.filled += 1;
            if self.filled == 8 {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let byte = self.acc as u8;
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
        self.acc = 0;
        self.filled = 0;
    }

    fn finish(mut self) -> Vec<u8> {
        while self.filled != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

/// A JPEG coded as RGB rather than YCbCr (libjpeg writes an Adobe marker with transform
/// 0 for it): the colours drawn come back, at full size and shrunk on load alike (one
/// decoder for both since libjpeg-turbo reads every 8-bit JPEG).
#[tokio::test]
async fn an_rgb_coded_jpeg_keeps_its_colours() {
    let (w, h) = (48usize, 32usize);
    let colours = [
        [200u8, 30, 30],
        [30, 180, 40],
        [40, 60, 210],
        [220, 200, 40],
    ];
    let pixels: Vec<u8> = (0..w * h).flat_map(|i| colours[(i % w) * 4 / w]).collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_color_space(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(w, h);
    compress.set_quality(95.0);
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&pixels).unwrap();
    let bytes = started.finish().unwrap();
    let adobe = bytes
        .windows(5)
        .position(|w| w == b"Adobe")
        .expect("an Adobe marker");
    assert_eq!(bytes[adobe + 11], 0, "transform 0: RGB, not YCbCr");
    let server = TestServer::start().await;
    let (status, body) = server.upload_bytes(bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    for (query, scale) in [("", 1), ("?w=12", 4)] {
        let png = decode_png(&server.bytes(&format!("/image/{id}.png{query}")).await);
        for (band, colour) in colours.iter().enumerate() {
            let x = ((band * w / 4 + w / 8) / scale) as u32;
            let got = png.at(x, (h / 2 / scale) as u32);
            let off = (0..3).map(|c| got[c].abs_diff(colour[c])).max().unwrap();
            assert!(
                off <= 8,
                "{query}: band {band}: got {got:?}, drew {colour:?}"
            );
        }
    }
}

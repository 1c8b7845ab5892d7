//! The stored image's own URL (`/image/{id}.{ext}` in its format, no transforms) is safe
//! to publish: the same encoded pixels, with what can identify or locate a person
//! removed and the colour profile and orientation kept; `/original` stays the upload.

use reqwest::StatusCode;

use crate::support::{
    corpus, decode_jpeg, decode_png, png_chunk_data, png_icc_profile, TestServer,
};

/// A camera JPEG (Canon maker notes, EXIF orientation 6).
const PHOTO: &str = "photo-3mp-canon-exif6.jpg";

fn has(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn segment(code: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, code];
    s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// What personal metadata looks like in the test files below.
const SECRETS: [&[u8]; 7] = [
    b"Canon",
    b"GPSLatitude 52.37",
    b"Alice's phone",
    b"Photoshop 3.0",
    b"http://ns.adobe.com/xap/1.0/",
    b"serial 0042",
    b"trailer at 52.37N",
];

/// The camera photo with XMP, a comment, IPTC, an MPF-like trailer and an ICC profile added.
fn personal_jpeg() -> (Vec<u8>, Vec<u8>) {
    let photo = corpus(PHOTO);
    let icc: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut icc_payload = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc_payload.extend_from_slice(&icc);
    let mut extra = segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPSLatitude 52.37</x:xmpmeta>",
    );
    extra.extend(segment(0xFE, b"Alice's phone"));
    extra.extend(segment(0xED, b"Photoshop 3.0\08BIM serial 0042"));
    extra.extend(segment(0xE2, &icc_payload));
    let mut jpeg = photo[..2].to_vec();
    jpeg.extend(extra);
    jpeg.extend_from_slice(&photo[2..]);
    jpeg.extend_from_slice(b"\xFF\xD8 trailer at 52.37N \xFF\xD9");
    (jpeg, icc)
}

#[tokio::test]
async fn a_jpeg_is_published_with_its_pixels_profile_and_orientation_only() {
    let server = TestServer::start().await;
    let (jpeg, icc) = personal_jpeg();
    let (status, body) = server.upload_bytes(jpeg.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let url = body["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/image/{id}.jpg"));

    let published = server.bytes(&url).await;
    for secret in SECRETS {
        assert!(
            has(&jpeg, secret),
            "the upload has {:?}",
            String::from_utf8_lossy(secret)
        );
        assert!(
            !has(&published, secret),
            "published {:?}",
            String::from_utf8_lossy(secret)
        );
    }
    // The same entropy-coded data: an independent decoder sees identical pixels.
    let (src, out) = (decode_jpeg(&jpeg), decode_jpeg(&published));
    assert_eq!((out.width, out.height), (src.width, src.height));
    assert!(src.rgba == out.rgba, "pixels changed");
    assert!(published.len() < jpeg.len() && published.ends_with(&[0xFF, 0xD9]));
    // The profile and the orientation stay.
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&published));
    decoder.read_info().unwrap();
    assert_eq!(decoder.icc_profile(), Some(icc));
    let exif = decoder
        .exif_data()
        .expect("a minimal EXIF for the orientation");
    let orientation = image::metadata::Orientation::from_exif_chunk(exif).map(|o| o.to_exif());
    assert_eq!(orientation, Some(6));
    let meta = server
        .get(&format!("/image/{id}"))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(1536), Some(2048))
    );

    // `.jpeg` is the same variant; `/original` is still the upload, byte for byte.
    assert_eq!(server.bytes(&format!("/image/{id}.jpeg")).await, published);
    let original = server.get(&format!("/image/{id}/original")).await;
    assert_eq!(original.headers()["content-type"], "image/jpeg");
    assert_eq!(original.headers()["x-content-type-options"], "nosniff");
    assert_eq!(original.bytes().await.unwrap(), jpeg);
}

/// The published rendition is cached like any variant: the second request is a hit.
#[tokio::test]
async fn the_published_rendition_is_a_cache_hit_the_second_time() {
    let server = TestServer::start().await;
    let id = server.upload_corpus(PHOTO).await;
    let url = format!("/image/{id}.jpg");
    let first = server.get(&url).await;
    let etag = first.headers()["etag"].clone();
    let first = first.bytes().await.unwrap();
    let hits = server.metric("progimage_cache_hits_total").await;
    let second = server.get(&url).await;
    assert_eq!(second.headers()["etag"], etag);
    assert_eq!(second.bytes().await.unwrap(), first);
    assert_eq!(
        server.metric("progimage_cache_hits_total").await,
        hits + 1.0
    );
    let revalidated = server
        .client
        .get(server.url(&url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_png_keeps_its_pixels_and_colour_chunks_and_loses_text_exif_and_private_chunks() {
    let server = TestServer::start().await;
    let (w, h) = (13u32, 7u32);
    let pixels: Vec<u8> = (0..w * h * 4).map(|i| (i * 29 % 256) as u8).collect();
    let icc: Vec<u8> = (0..900u32).map(|i| (i % 199) as u8).collect();
    let mut exif = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // orientation 6
    exif.extend_from_slice(&[0x88, 0x25, 0, 2, 0, 0, 0, 17, 0, 0, 0, 38]); // "GPS" pointer
    exif.extend_from_slice(&[0, 0, 0, 0]);
    exif.extend_from_slice(b"GPSLatitude 52.37\0");
    let mut png_bytes = Vec::new();
    {
        let mut info = png::Info::with_size(w, h);
        info.icc_profile = Some(icc.clone().into());
        let mut encoder = png::Encoder::with_info(&mut png_bytes, info).unwrap();
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk("Author".into(), "Alice's phone".into())
            .unwrap();
        encoder
            .add_itxt_chunk(
                "XML:com.adobe.xmp".into(),
                "http://ns.adobe.com/xap/1.0/ serial 0042".into(),
            )
            .unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif)
            .unwrap();
        writer
            .write_chunk(png::chunk::ChunkType(*b"prVt"), b"Photoshop 3.0")
            .unwrap();
        writer
            .write_chunk(png::chunk::ChunkType(*b"tIME"), &[7, 234, 12, 3, 13, 0, 0])
            .unwrap();
        writer.write_image_data(&pixels).unwrap();
        writer.finish().unwrap();
    }
    let (status, body) = server.upload_bytes(png_bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let published = server.bytes(body["url"].as_str().unwrap()).await;
    for secret in SECRETS.iter().chain([&&b"tIME"[..], &&b"prVt"[..]]) {
        assert!(
            !has(&published, secret),
            "published {:?}",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(
        decode_png(&published).rgba == decode_png(&png_bytes).rgba,
        "pixels changed"
    );
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&published));
    decoder.ignore_checksums(false);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader
        .next_frame(&mut buf)
        .expect("every CRC still checks out");
    assert_eq!(png_icc_profile(&published), Some(icc));
    let exif = png_chunk_data(&published, b"eXIf");
    assert_eq!(exif.len(), 1, "the orientation stays, in one eXIf");
    let orientation = image::metadata::Orientation::from_exif_chunk(&exif[0]).map(|o| o.to_exif());
    assert_eq!(orientation, Some(6));
}

/// A lossless WebP of `rgba` in the extended format, with `chunks` (EXIF, XMP) after
/// the image and their `VP8X` flags set.
fn extended_webp(w: u32, h: u32, rgba: &[u8], chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let simple = webp::Encoder::from_rgba(rgba, w, h)
        .encode_lossless()
        .to_vec();
    assert_eq!(&simple[12..16], b"VP8L");
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let flag = |kind: &[u8; 4]| match kind {
        b"EXIF" => 0x08,
        b"XMP " => 0x04,
        _ => 0,
    };
    let flags = chunks.iter().fold(0x10, |f, (kind, _)| f | flag(kind));
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = chunk(b"VP8X", &vp8x);
    body.extend_from_slice(&simple[12..]);
    for (kind, data) in chunks {
        body.extend(chunk(kind, data));
    }
    let mut extended = b"RIFF".to_vec();
    extended.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    extended.extend_from_slice(b"WEBP");
    extended.extend(body);
    extended
}

/// A WebP's EXIF orientation turns it upright, whether its EXIF chunk is bare TIFF data
/// (as the WebP specification says) or starts with JPEG's `Exif\0\0` header (as many
/// writers make it); the published URL keeps the orientation for the browser to apply.
#[tokio::test]
async fn a_webp_exif_orientation_is_applied_with_or_without_the_exif_header() {
    let server = TestServer::start().await;
    let (w, h) = (6u32, 4u32);
    // Red in the top-left pixel, the rest gray: orientation 6 (turn 90° clockwise) puts
    // it top-right.
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            if i == 0 {
                [255, 0, 0, 255]
            } else {
                [128, 128, 128, 255]
            }
        })
        .collect();
    let tiff: &[u8] = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0";
    for exif in [tiff.to_vec(), [&b"Exif\0\0"[..], tiff].concat()] {
        let bytes = extended_webp(w, h, &rgba, &[(b"EXIF", &exif)]);
        let (status, json) = server.upload_bytes(bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        assert_eq!(
            (json["width"].as_u64(), json["height"].as_u64()),
            (Some(4), Some(6)),
            "{json}"
        );
        let id = json["id"].as_str().unwrap();
        let png = crate::support::decode_png(&server.bytes(&format!("/image/{id}.png")).await);
        assert_eq!((png.width, png.height), (4, 6));
        assert_eq!(
            png.at(3, 0),
            [255, 0, 0, 255],
            "the red corner turned to the top right"
        );
    }
}

/// An extended WebP with EXIF and XMP chunks: both go and their `VP8X` flags are cleared,
/// so libwebp (what browsers use) reads the result, with the same pixels.
#[tokio::test]
async fn a_webp_loses_exif_and_xmp_and_stays_readable_by_libwebp() {
    let server = TestServer::start().await;
    let (w, h) = (9u32, 5u32);
    let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 41 % 256) as u8 | 1).collect();
    let extended = extended_webp(
        w,
        h,
        &rgba,
        &[
            (
                b"EXIF",
                &b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0 Canon serial 0042"[..],
            ),
            (b"XMP ", b"http://ns.adobe.com/xap/1.0/ GPSLatitude 52.37"),
        ],
    );
    assert!(webp::Decoder::new(&extended).decode().is_some());

    let (status, json) = server.upload_bytes(extended.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let published = server.bytes(json["url"].as_str().unwrap()).await;
    for secret in SECRETS {
        assert!(
            !has(&published, secret),
            "published {:?}",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(!has(&published, b"EXIF") && !has(&published, b"XMP "));
    assert_eq!(
        published[20] & (0x08 | 0x04),
        0,
        "VP8X still claims metadata"
    );
    let decoded = webp::Decoder::new(&published)
        .decode()
        .expect("libwebp reads it");
    assert_eq!(&*decoded, &rgba[..], "pixels changed");
}

/// GIF comments and foreign application blocks (XMP) go; looping and frames stay.
#[tokio::test]
async fn a_gif_loses_comments_and_xmp_and_keeps_its_animation() {
    let server = TestServer::start().await;
    let mut gif_bytes = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut gif_bytes, 3, 2, &[0, 0, 0, 255, 255, 255]).unwrap();
        encoder.set_repeat(gif::Repeat::Infinite).unwrap();
        encoder
            .write_raw_extension(gif::Extension::Comment.into(), &[b"Alice's phone"])
            .unwrap();
        encoder
            .write_raw_extension(
                gif::Extension::Application.into(),
                &[b"XMP DataXMP", b"http://ns.adobe.com/xap/1.0/"],
            )
            .unwrap();
        for shade in [0u8, 1] {
            let mut frame = gif::Frame::from_indexed_pixels(3, 2, vec![shade; 6], None);
            frame.delay = 10;
            encoder.write_frame(&frame).unwrap();
        }
    }
    let (status, json) = server.upload_bytes(gif_bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let published = server.bytes(json["url"].as_str().unwrap()).await;
    assert!(!has(&published, b"Alice") && !has(&published, b"xap"));
    assert!(has(&published, b"NETSCAPE2.0"), "looping kept");
    let mut decoder = gif::DecodeOptions::new()
        .read_info(std::io::Cursor::new(&published))
        .unwrap();
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 2);
}

/// `PROGIMAGE_ORIGINALS=keys`: the byte-identical original needs an API key; the
/// published URL does not.
#[tokio::test]
async fn originals_can_be_reserved_for_key_holders() {
    let server = TestServer::with(|c| {
        c.api_keys = vec!["k1".into()];
        c.originals = progimage::config::Originals::Keys;
    })
    .await;
    let (jpeg, _) = personal_jpeg();
    let resp = server
        .client
        .post(server.url("/image"))
        .header("authorization", "Bearer k1")
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = server.get(&format!("/image/{id}/original")).await;
    crate::support::assert_error(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let allowed = server
        .client
        .get(server.url(&format!("/image/{id}/original")))
        .header("authorization", "Bearer k1")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.bytes().await.unwrap(), jpeg);
    let published = server.bytes(&format!("/image/{id}.jpg")).await;
    assert!(!has(&published, b"Alice's phone"));
}

/// JPEG XL: the container's `Exif` box goes; the codestream (and the orientation in its
/// header) stays, so the published file decodes to the same size.
#[tokio::test]
async fn a_jpeg_xl_loses_its_exif_box() {
    let server = TestServer::start().await;
    // The corpus file's container (signature, ftyp, jxlc) with Exif and XMP boxes added.
    let plain = corpus("jxl-lossy.jxl");
    let jxl_box = |kind: &[u8; 4], data: &[u8]| {
        let mut b = ((data.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(data);
        b
    };
    let mut original = plain[..32].to_vec(); // the signature box and ftyp
    original.extend(jxl_box(
        b"Exif",
        b"\0\0\0\0MM\0*\0\0\0\x08GPSLatitude 52.37",
    ));
    original.extend(jxl_box(b"xml ", b"<x:xmpmeta>Alice's phone</x:xmpmeta>"));
    original.extend_from_slice(&plain[32..]);
    let boxes = |bytes: &[u8]| -> Vec<[u8; 4]> {
        let mut kinds = Vec::new();
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            kinds.push(bytes[at + 4..at + 8].try_into().unwrap());
            if size < 8 {
                break;
            }
            at += size;
        }
        kinds
    };
    assert!(
        boxes(&original).contains(b"Exif"),
        "the corpus file carries EXIF"
    );
    let (status, body) = server.upload_bytes(original.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let published = server.bytes(body["url"].as_str().unwrap()).await;
    assert!(
        !boxes(&published).contains(b"Exif"),
        "{:?}",
        boxes(&published)
    );
    assert!(published.len() < original.len());
    let (status, again) = server.upload_bytes(published).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(
        (again["width"].clone(), again["height"].clone()),
        (body["width"].clone(), body["height"].clone())
    );
    let original_route = server
        .bytes(&format!("/image/{}/original", body["id"].as_str().unwrap()))
        .await;
    assert_eq!(original_route, original);
}

/// A PNG whose `iCCP` chunk names a compression method other than zlib's 0 (Pillow's
/// `unknown_compression_method.png`): no reader can use the profile and Pillow refuses the
/// whole file, so the published PNG leaves the chunk out; the pixels are the same.
#[tokio::test]
async fn a_png_profile_of_an_unknown_compression_is_left_out() {
    let (w, h) = (7u32, 5u32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
    let plain = crate::support::rgb_png(w, h, &rgb);
    // An iCCP chunk after IHDR: name, terminator, compression method 1, some bytes.
    let data = b"ICC Profile\0\x01not zlib at all";
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"iCCP");
    chunk.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(&chunk[4..]);
    chunk.extend_from_slice(&crc.sum().to_be_bytes());
    let ihdr_end = 8 + 8 + 13 + 4;
    let png = [&plain[..ihdr_end], &chunk, &plain[ihdr_end..]].concat();
    let server = TestServer::start().await;
    let (status, json) = server.upload_bytes(png).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let published = server.bytes(json["url"].as_str().unwrap()).await;
    assert!(!has(&published, b"iCCP"), "the unusable profile went");
    let pixels = crate::support::decode_png(&published);
    let want: Vec<[u8; 4]> = rgb.chunks(3).map(|p| [p[0], p[1], p[2], 255]).collect();
    assert_eq!(pixels.rgba, want);
}

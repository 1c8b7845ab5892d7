//! `GET /image/{id}.{ext}` and `/image/{id}/{spec}.{ext}`: formats, resizing, originals.

use reqwest::StatusCode;

use crate::support::{assert_error, corpus, decode_jpeg, decode_png, TestServer};

const PHOTO: &str = "photo-3mp-canon-exif6.jpg"; // 2048x1536 stored, EXIF 6 → 1536x2048

#[tokio::test]
async fn every_output_format_has_its_type_and_decodes() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    for (ext, content_type, format) in [
        ("jpg", "image/jpeg", image::ImageFormat::Jpeg),
        ("jpeg", "image/jpeg", image::ImageFormat::Jpeg),
        ("png", "image/png", image::ImageFormat::Png),
        ("webp", "image/webp", image::ImageFormat::WebP),
        ("gif", "image/gif", image::ImageFormat::Gif),
        ("bmp", "image/bmp", image::ImageFormat::Bmp),
        ("tiff", "image/tiff", image::ImageFormat::Tiff),
        ("ico", "image/x-icon", image::ImageFormat::Ico),
    ] {
        let resp = server.get(&format!("/image/{id}.{ext}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{ext}");
        assert_eq!(resp.headers()["content-type"], content_type, "{ext}");
        let len: usize = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(
            image::guess_format(&bytes).unwrap(),
            format,
            "{ext}: sniffed format"
        );
        let img = image::load_from_memory_with_format(&bytes, format).unwrap();
        assert_eq!((img.width(), img.height()), (129, 66), "{ext}");
    }
}

#[tokio::test]
async fn width_or_height_alone_keeps_the_aspect_ratio() {
    let server = TestServer::start().await;
    let id = server.upload_corpus(PHOTO).await;
    let out = decode_jpeg(&server.bytes(&format!("/image/{id}.jpg?w=300")).await);
    assert_eq!((out.width, out.height), (300, 400));
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?h=100")).await);
    assert_eq!((out.width, out.height), (75, 100));
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=100&h=100")).await);
    assert_eq!(
        (out.width, out.height),
        (75, 100),
        "contain fits inside the box"
    );
}

#[tokio::test]
async fn images_are_never_upscaled_unless_asked() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-palette-8bit.png").await; // 32x32
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=64")).await);
    assert_eq!((out.width, out.height), (32, 32));
    let out = decode_png(
        &server
            .bytes(&format!("/image/{id}.png?w=64&enlarge=1"))
            .await,
    );
    assert_eq!((out.width, out.height), (64, 64));
}

#[tokio::test]
async fn path_and_query_spellings_are_one_variant() {
    let server = TestServer::start().await;
    let id = server.upload_corpus(PHOTO).await;
    let a = server
        .get(&format!("/image/{id}.webp?w=300&h=200&fit=cover"))
        .await;
    let etag_a = a.headers()["etag"].clone();
    let bytes_a = a.bytes().await.unwrap();
    let b = server
        .get(&format!("/image/{id}/w_300,h_200,fit_cover.webp"))
        .await;
    assert_eq!(b.headers()["etag"], etag_a);
    assert_eq!(b.bytes().await.unwrap(), bytes_a);
    assert_eq!(
        server
            .metric("progimage_renders_total{format=\"webp\"}")
            .await,
        1.0
    );
    let img = image::load_from_memory(&bytes_a).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (300, 200),
        "cover fills the exact box"
    );
}

// The stored image's own URL (same format, no transforms): see `publish`.

#[tokio::test]
async fn outputs_carry_no_metadata() {
    let server = TestServer::start().await;
    let id = server.upload_corpus(PHOTO).await; // carries EXIF with maker notes
    for ext in ["jpg", "png", "webp", "tiff"] {
        let out = server.bytes(&format!("/image/{id}.{ext}?w=200")).await;
        let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
        assert!(
            !has(b"Exif\0\0") && !has(b"Canon") && !has(b"eXIf"),
            "{ext} kept EXIF"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_stable_codes() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-palette-8bit.png").await;
    let missing = "0".repeat(64);
    for (path, status, code) in [
        (
            format!("/image/{id}.exe"),
            StatusCode::BAD_REQUEST,
            "bad_format",
        ),
        (
            format!("/image/{id}/w_10"),
            StatusCode::BAD_REQUEST,
            "bad_format",
        ),
        (
            format!("/image/{id}.png?w=0"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            format!("/image/{id}.png?w=abc"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            format!("/image/{id}.png?w=9000"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            format!("/image/{id}.png?zoom=2"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            format!("/image/{id}/w_10,w_20.png"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            format!("/image/{id}/nonsense.png"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        ("/image/xyz.png".into(), StatusCode::BAD_REQUEST, "bad_id"),
        ("/image/xyz".into(), StatusCode::BAD_REQUEST, "bad_id"),
        (
            "/image/..%2F..%2Fetc%2Fpasswd".into(),
            StatusCode::BAD_REQUEST,
            "bad_id",
        ),
        (
            format!("/image/{}", "g".repeat(64)),
            StatusCode::BAD_REQUEST,
            "bad_id",
        ),
        (
            format!("/image/{missing}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/image/{missing}.png"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/image/{missing}/original"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/image/{missing}/w_10.png"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        assert_error(server.get(&path).await, status, code).await;
    }
    // The message names the offending key.
    let body: serde_json::Value = server
        .get(&format!("/image/{id}.png?zoom=2"))
        .await
        .json()
        .await
        .unwrap();
    assert!(body["message"].as_str().unwrap().contains("zoom"), "{body}");
}

#[tokio::test]
async fn transforms_apply_in_order() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("png-rgba-alpha.png").await; // 129x66
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?rot=90")).await);
    assert_eq!((out.width, out.height), (66, 129));
    let out = decode_png(
        &server
            .bytes(&format!("/image/{id}/crop_10:10:50:40,w_25.png"))
            .await,
    );
    assert_eq!((out.width, out.height), (25, 20));
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?gray=1")).await);
    assert!(
        out.rgba.iter().all(|p| p[0] == p[1] && p[1] == p[2]),
        "gray has R=G=B"
    );
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?mask=circle")).await);
    assert_eq!(out.at(0, 0)[3], 0, "mask corners are transparent");
    let src = decode_png(&corpus("png-rgba-alpha.png"));
    let flipped = decode_png(&server.bytes(&format!("/image/{id}.png?flip=h")).await);
    for (x, y) in [(0, 0), (10, 30), (128, 65)] {
        assert_eq!(
            flipped.at(x, y),
            src.at(128 - x, y),
            "flip mirrors ({x},{y})"
        );
    }
    let small = server.bytes(&format!("/image/{id}.jpg?q=10")).await.len();
    let large = server.bytes(&format!("/image/{id}.jpg?q=95")).await.len();
    assert!(small < large, "q lowers bytes: {small} vs {large}");
}

#[tokio::test]
async fn ico_outputs_fit_inside_256() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("logo-flag-3colour.png").await; // 900x600
    let ico = server.bytes(&format!("/image/{id}.ico")).await;
    let img = image::load_from_memory_with_format(&ico, image::ImageFormat::Ico).unwrap();
    assert_eq!((img.width(), img.height()), (256, 171));
}

fn gray_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(width, height, image::Luma([128]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Extreme aspect ratios: the derived side of an enlargement is bounded like `w`/`h`,
/// and a size the output format cannot hold is a 4xx, never a crash or a 500.
#[tokio::test]
async fn extreme_shapes_get_clear_errors_not_crashes() {
    let server = TestServer::start().await;
    let (_, tall) = server.upload_bytes(gray_png(1, 5000)).await;
    let tall = tall["id"].as_str().unwrap().to_owned();
    for query in ["w=8192&enlarge=1", "w=16&enlarge=1"] {
        assert_error(
            server.get(&format!("/image/{tall}.png?{query}")).await,
            StatusCode::BAD_REQUEST,
            "bad_transform",
        )
        .await;
    }
    // Up to the limit is fine, and the server is still up.
    let ok = decode_png(
        &server
            .bytes(&format!("/image/{tall}.png?h=8192&enlarge=1"))
            .await,
    );
    assert_eq!((ok.width, ok.height), (2, 8192));

    let (_, wide) = server.upload_bytes(gray_png(20_000, 1)).await;
    let wide = wide["id"].as_str().unwrap().to_owned();
    assert_error(
        server.get(&format!("/image/{wide}.webp")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_pixels",
    )
    .await;
    // The same image in a format that holds it, or resized to fit, works.
    assert_eq!(
        server.get(&format!("/image/{wide}.bmp")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        server
            .get(&format!("/image/{wide}.webp?w=8000"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

/// Every output format × a spread of transforms on degenerate shapes (a pixel, a 1-pixel
/// strip 70,000 long either way): each answer is a 2xx or a contract 4xx, never a 5xx or
/// a dropped connection, and the server stays up.
#[tokio::test]
async fn degenerate_shapes_never_fail_the_server() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for (w, h) in [(1, 1), (3, 3), (1, 70_000), (70_000, 1)] {
        let (status, meta) = server.upload_bytes(gray_png(w, h)).await;
        assert!(status.is_success(), "{w}x{h}: {meta}");
        ids.push((format!("{w}x{h}"), meta["id"].as_str().unwrap().to_owned()));
    }
    let exts = [
        "jpg", "png", "webp", "gif", "bmp", "tiff", "ico", "avif", "svg", "txt", "html",
    ];
    let transforms = [
        "",
        "w=16&enlarge=1",
        "rot=90",
        "crop=1:1",
        "mask=circle",
        "blur=2",
    ];
    for (shape, id) in &ids {
        for ext in exts {
            for query in transforms {
                let path = format!("/image/{id}.{ext}?{query}");
                let status = server.get(&path).await.status();
                assert!(
                    status.is_success() || status.is_client_error(),
                    "{shape} {ext}?{query}: {status}"
                );
            }
        }
    }
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
}

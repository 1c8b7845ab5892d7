//! `POST /image` in every accepted form, dedup, and every rejection in the contract.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{assert_error, corpus, TestServer};

const SMALL_PNG: &str = "png-rgba-alpha.png";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn raw_upload_returns_metadata_and_location() {
    let server = TestServer::start().await;
    let bytes = corpus("photo-3mp-canon-exif6.jpg");
    let resp = server
        .client
        .post(server.url("/image?filename=holiday.jpg"))
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = sha256_hex(&bytes);
    assert_eq!(resp.headers()["location"], format!("/image/{id}").as_str());
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["id"], id.as_str());
    assert_eq!(meta["url"], format!("/image/{id}.jpg").as_str());
    assert_eq!(meta["format"], "jpeg");
    assert_eq!(meta["content_type"], "image/jpeg");
    // EXIF orientation 6: stored 2048x1536, displayed 1536x2048.
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(1536), Some(2048))
    );
    assert_eq!(meta["bytes"], bytes.len());
    assert_eq!(meta["filename"], "holiday.jpg");
    let created = meta["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
}

#[tokio::test]
async fn multipart_uploads_accept_image_or_file_parts_and_keep_the_filename() {
    let server = TestServer::start().await;
    for (part_name, file) in [("image", SMALL_PNG), ("file", "gif-static.gif")] {
        let form = Form::new().text("note", "ignored field").part(
            part_name,
            Part::bytes(corpus(file)).file_name(format!("dir/{file}")),
        );
        let resp = server.post_form("/image", form).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{part_name}");
        let meta: Value = resp.json().await.unwrap();
        assert_eq!(meta["filename"], file, "path components are dropped");
    }
}

#[tokio::test]
async fn the_same_bytes_twice_give_the_same_id_and_200() {
    let server = TestServer::start().await;
    let (first, a) = server.upload_bytes(corpus(SMALL_PNG)).await;
    let (second, b) = server.upload_bytes(corpus(SMALL_PNG)).await;
    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(second, StatusCode::OK);
    assert_eq!(a["id"], b["id"]);
    assert_eq!(
        a["created_at"], b["created_at"],
        "the stored record is returned"
    );
    let status: Value = server.get("/status").await.json().await.unwrap();
    assert_eq!(status["images"], 1);
    assert_eq!(status["uploaded_count"], 1);
}

#[tokio::test]
async fn head_tells_whether_an_id_is_stored() {
    let server = TestServer::start().await;
    let bytes = corpus(SMALL_PNG);
    let id = sha256_hex(&bytes);
    let head = |path: String| server.client.head(server.url(&path)).send();
    assert_eq!(
        head(format!("/image/{id}")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.upload_bytes(bytes).await;
    assert_eq!(
        head(format!("/image/{id}")).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn empty_uploads_are_refused() {
    let server = TestServer::start().await;
    let resp = server.post("/image", Vec::<u8>::new()).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "empty_upload").await;

    let form = Form::new().text("other", "no file here");
    let resp = server.post_form("/image", form).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "empty_upload").await;

    let form = Form::new().part("image", Part::bytes(Vec::new()).file_name("a.png"));
    let resp = server.post_form("/image", form).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "empty_upload").await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_while_streaming() {
    let server = TestServer::with(|c| c.max_upload_bytes = 10_000).await;
    let big = corpus("face-astronaut.png"); // ~790 KB

    // Declared length over the limit: refused before reading.
    let resp = server.post("/image", big.clone()).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    // No declared length (chunked): refused once the stream passes the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = server.post("/image", body).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    // Multipart with a part over the limit.
    let form = Form::new().part("image", Part::bytes(big).file_name("big.png"));
    let resp = server.post_form("/image", form).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    // A small file still goes through on the same server.
    let (status, _) = server.upload_bytes(corpus("png-palette-8bit.png")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_nothing_stored_but(&server, 1).await;
}

#[tokio::test]
async fn the_pixel_limit_is_configurable() {
    let server = TestServer::with(|c| c.max_pixels = 2000).await;
    let (status, body) = server.upload_bytes(corpus("png-palette-8bit.png")).await; // 32x32
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.upload_bytes(corpus("bmp-24bit.bmp")).await; // 128x128
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "too_many_pixels");
}

#[tokio::test]
async fn rejections_store_nothing() {
    let server = TestServer::start().await;
    for (file, status, code) in [
        (
            "bad-text-file.jpg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
        ),
        (
            "bad-pdf-file.png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
        ),
        (
            "bad-crc.png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "corrupt_image",
        ),
        (
            "bomb-20000x14000.png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_pixels",
        ),
    ] {
        let (got, body) = server.upload_bytes(corpus(file)).await;
        assert_eq!(got, status, "{file}: {body}");
        assert_eq!(body["code"], code, "{file}");
        let id = sha256_hex(&corpus(file));
        let resp = server.get(&format!("/image/{id}")).await;
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{file} must not be stored"
        );
    }
    // A JPEG whose data stops before its last row (the decoder alone would grey-fill it).
    let cut = crate::support::truncated_jpeg();
    let (got, body) = server.upload_bytes(cut.clone()).await;
    assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "corrupt_image");
    let resp = server.get(&format!("/image/{}", sha256_hex(&cut))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_nothing_stored_but(&server, 0).await;
}

#[tokio::test]
async fn the_format_comes_from_the_bytes_not_the_name_or_type() {
    let server = TestServer::start().await;
    let resp = server
        .client
        .post(server.url("/image?filename=photo.jpg"))
        .header("content-type", "image/jpeg")
        .body(corpus("gif-static.gif"))
        .send()
        .await
        .unwrap();
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["format"], "gif");
    assert_eq!(meta["content_type"], "image/gif");
}

/// The blob store holds exactly `images` originals and metadata objects: no orphans.
async fn assert_nothing_stored_but(server: &TestServer, images: usize) {
    let blobs = server.state.images.blobs();
    assert_eq!(blobs.list("originals").await.unwrap().len(), images);
    assert_eq!(blobs.list("meta").await.unwrap().len(), images);
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_bytes_store_once() {
    let server = TestServer::start().await;
    let uploads = (0..8).map(|_| server.upload_bytes(corpus("face-astronaut.png")));
    let results = futures_util::future::join_all(uploads).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, ok), (1, 7), "one 201, the rest 200");
    let ids: std::collections::HashSet<_> = results.iter().map(|(_, b)| b["id"].clone()).collect();
    assert_eq!(ids.len(), 1);
    let status: Value = server.get("/status").await.json().await.unwrap();
    assert_eq!(
        (status["images"].as_u64(), status["uploaded_count"].as_u64()),
        (Some(1), Some(1))
    );
}

//! `POST /batch` (multipart uploads, JSON variants) and direct `POST /transform`.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, corpus, decode_png, TestServer};

async fn ndjson(resp: reqwest::Response) -> Vec<Value> {
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn multipart_batch_reports_every_part_and_one_bad_part_fails_alone() {
    let server = TestServer::with(|c| c.max_upload_bytes = 100_000).await;
    let form = Form::new()
        .part(
            "image",
            Part::bytes(corpus("png-rgba-alpha.png")).file_name("a.png"),
        )
        .part(
            "file",
            Part::bytes(corpus("bad-text-file.jpg")).file_name("b.jpg"),
        )
        .text("comment", "not a file part")
        .part(
            "image",
            Part::bytes(corpus("gif-static.gif")).file_name("c.gif"),
        )
        .part(
            "image",
            Part::bytes(corpus("face-astronaut.png")).file_name("big.png"),
        )
        .part(
            "image",
            Part::bytes(corpus("png-rgba-alpha.png")).file_name("again.png"),
        )
        .part(
            "image",
            Part::bytes(crate::support::truncated_jpeg()).file_name("cut.jpg"),
        );
    let resp = server.post_form("/batch", form).await;
    let mut lines = ndjson(resp).await;
    lines.sort_by_key(|l| l["index"].as_u64());
    let summary: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| (l["index"].as_u64().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    // index 4 repeats index 0: 200 or 201 depending on which finished first.
    assert_eq!(summary.len(), 6, "{lines:?}");
    assert_eq!(
        &summary[..4],
        &[(0, summary[0].1), (1, 415), (2, 201), (3, 413)]
    );
    assert_eq!(summary[5], (5, 422));
    assert_eq!(
        [summary[0].1, summary[4].1]
            .iter()
            .filter(|s| **s == 201)
            .count(),
        1,
        "the same bytes are stored once"
    );
    // Whichever copy was stored first named the record; both lines show that record.
    assert_eq!(lines[0]["image"], lines[4]["image"]);
    let filename = lines[0]["image"]["filename"].as_str().unwrap();
    assert!(["a.png", "again.png"].contains(&filename), "{filename}");
    assert_eq!(lines[1]["error"]["code"], "unsupported_format");
    assert_eq!(lines[3]["error"]["code"], "too_large");
    let status: Value = server.get("/status").await.json().await.unwrap();
    assert_eq!(status["images"], 2);
}

#[tokio::test]
async fn json_batch_renders_every_variant_of_every_id() {
    let server = TestServer::start().await;
    let a = server.upload_corpus("png-rgba-alpha.png").await;
    let b = server.upload_corpus("gif-static.gif").await;
    let missing = "0".repeat(64);
    let request = json!({
        "ids": [a, b, missing, "bad"],
        "variants": ["w_30.webp", "w_16,h_16,fit_cover.png", "nope_1.png", "png"],
    });
    let resp = server.post_json("/batch", &request).await;
    let lines = ndjson(resp).await;
    assert_eq!(lines.len(), 16);
    for line in &lines {
        let id = line["id"].as_str().unwrap();
        let variant = line["variant"].as_str().unwrap();
        let status = line["status"].as_u64().unwrap();
        let expected = match (id, variant) {
            ("bad", _) => 400,
            (_, "nope_1.png") => 400,
            (id, _) if id == missing => 404,
            _ => 200,
        };
        assert_eq!(status, expected, "{line}");
        if status == 200 {
            let url = line["url"].as_str().unwrap();
            let resp = server.get(url).await;
            assert_eq!(resp.status(), StatusCode::OK, "{url}");
        }
    }
    let cover = lines
        .iter()
        .find(|l| l["id"] == a.as_str() && l["variant"] == "w_16,h_16,fit_cover.png")
        .unwrap();
    assert_eq!(
        cover["url"],
        format!("/image/{a}/w_16,h_16,fit_cover.png").as_str()
    );
    let png = decode_png(&server.bytes(cover["url"].as_str().unwrap()).await);
    assert_eq!((png.width, png.height), (16, 16));
    // The batch warmed the cache: fetching its URLs rendered nothing new.
    let renders_before = server
        .metric("progimage_renders_total{format=\"png\"}")
        .await;
    server
        .bytes(&format!("/image/{b}.png?w=16&h=16&fit=cover"))
        .await;
    assert_eq!(
        server
            .metric("progimage_renders_total{format=\"png\"}")
            .await,
        renders_before
    );
}

#[tokio::test]
async fn batch_rejects_other_bodies() {
    let server = TestServer::start().await;
    let resp = server.post("/batch", "x").await;
    assert_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    let resp = server
        .client
        .post(server.url("/batch"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn transform_converts_without_storing() {
    let server = TestServer::start().await;
    let bytes = corpus("photo-3mp-canon-exif6.jpg");
    let resp = server
        .post("/transform/w_100,h_100,fit_cover.png", bytes.clone())
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let png = decode_png(&resp.bytes().await.unwrap());
    assert_eq!((png.width, png.height), (100, 100));

    let form = Form::new().part("image", Part::bytes(bytes).file_name("p.jpg"));
    let resp = server
        .post_form("/transform.webp?w=64&filename=x.jpg", form)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let img = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (64, 85),
        "EXIF orientation applied"
    );

    let status: Value = server.get("/status").await.json().await.unwrap();
    assert_eq!(status["images"], 0, "nothing stored");

    for (path, body, status, code) in [
        (
            "/transform.exe",
            corpus("gif-static.gif"),
            StatusCode::BAD_REQUEST,
            "bad_format",
        ),
        (
            "/transform.png?w=-1",
            corpus("gif-static.gif"),
            StatusCode::BAD_REQUEST,
            "bad_transform",
        ),
        (
            "/transform.png",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty_upload",
        ),
        (
            "/transform.png",
            corpus("bad-pdf-file.png"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
        ),
        (
            "/transform/w_10.png",
            corpus("bomb-20000x14000.png"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_pixels",
        ),
        (
            "/other.png",
            corpus("gif-static.gif"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let resp = server.post(path, body).await;
        assert_error(resp, status, code).await;
    }
}

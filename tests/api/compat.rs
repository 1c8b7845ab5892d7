//! Routes of the services progimage replaces, called the way their clients call them.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{corpus, TestServer};

#[tokio::test]
async fn old_upload_meta_and_list() {
    let server = TestServer::start().await;
    let form = Form::new().part(
        "file",
        Part::bytes(corpus("gif-static.gif")).file_name("hopper.gif"),
    );
    let resp = server.post_form("/upload", form).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    let id = body["image_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);

    let meta: Value = server
        .get(&format!("/image/{id}/meta"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["image_id"], id.as_str());
    assert_eq!(
        (meta["width"].as_u64(), meta["format"].as_str()),
        (Some(128), Some("gif"))
    );

    let list: Value = server.get("/list").await.json().await.unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["images"][0]["image_id"], id.as_str());
}

#[tokio::test]
async fn old_images_routes() {
    let server = TestServer::start().await;
    let resp = server
        .client
        .post(server.url("/images"))
        .header("content-type", "image/png")
        .body(corpus("png-rgba-alpha.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = server.get(&format!("/images/{id}.webp")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/webp");
    let meta: Value = server
        .get(&format!("/images/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["id"], id.as_str());
}

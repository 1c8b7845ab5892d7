//! "Beyond the basics": format negotiation, gravity, placeholders, presets, rate limits.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{assert_error, decode_png, TestServer};

fn png_bytes(img: image::RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn auto_picks_the_best_accepted_format_per_client() {
    let server = TestServer::start().await;
    let photo = server.upload_corpus("jpeg-progressive.jpg").await;
    let logo = server.upload_corpus("png-rgba-alpha.png").await;
    for (id, accept, expected) in [
        (&photo, "image/avif,image/webp,*/*", "image/avif"),
        (&photo, "image/webp,image/*;q=0.8", "image/webp"),
        (&photo, "image/avif;q=0, image/webp", "image/webp"),
        (&photo, "*/*", "image/jpeg"),
        (&photo, "", "image/jpeg"),
        (&logo, "text/html,*/*", "image/png"),
        (&logo, "image/webp", "image/webp"),
    ] {
        let resp = server
            .client
            .get(server.url(&format!("/image/{id}.auto?w=50")))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{accept}");
        assert_eq!(resp.headers()["content-type"], expected, "Accept: {accept}");
        let vary: Vec<String> = resp
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect();
        assert!(vary.iter().any(|v| v.contains("accept")), "{vary:?}");
    }
    // Each chosen format is its own cache entry and ETag.
    let avif = server
        .client
        .get(server.url(&format!("/image/{photo}.auto")))
        .header("accept", "image/avif")
        .send()
        .await
        .unwrap();
    let jpeg = server
        .client
        .get(server.url(&format!("/image/{photo}.auto?q=80")))
        .send()
        .await
        .unwrap();
    assert_ne!(avif.headers()["etag"], jpeg.headers()["etag"]);
}

/// 400x100: flat grey with a detailed checkerboard in the right quarter.
fn off_centre_subject() -> Vec<u8> {
    png_bytes(image::RgbaImage::from_fn(400, 100, |x, y| {
        if x >= 300 && (x / 5 + y / 5) % 2 == 0 {
            image::Rgba([0, 0, 0, 255])
        } else {
            image::Rgba([128, 128, 128, 255])
        }
    }))
}

fn contrast(png: &crate::support::Pixels) -> u8 {
    let values: Vec<u8> = png.rgba.iter().map(|p| p[0]).collect();
    values.iter().max().unwrap() - values.iter().min().unwrap()
}

#[tokio::test]
async fn smart_gravity_keeps_the_subject_that_center_cuts() {
    let server = TestServer::start().await;
    let (_, meta) = server.upload_bytes(off_centre_subject()).await;
    let id = meta["id"].as_str().unwrap();
    let centre = decode_png(
        &server
            .bytes(&format!("/image/{id}.png?w=100&h=100&fit=cover"))
            .await,
    );
    let smart = decode_png(
        &server
            .bytes(&format!(
                "/image/{id}.png?w=100&h=100&fit=cover&gravity=smart"
            ))
            .await,
    );
    let east = decode_png(
        &server
            .bytes(&format!("/image/{id}/w_100,h_100,fit_cover,gravity_e.png"))
            .await,
    );
    assert_eq!((smart.width, smart.height), (100, 100));
    assert_eq!(contrast(&centre), 0, "the centre cut is all background");
    assert!(contrast(&smart) > 100, "smart keeps the detailed part");
    assert!(contrast(&east) > 100);
    // A w:h crop is placed by gravity too.
    let west = decode_png(
        &server
            .bytes(&format!("/image/{id}.png?crop=100:100&gravity=w"))
            .await,
    );
    let smart_crop = decode_png(
        &server
            .bytes(&format!("/image/{id}.png?crop=100:100&gravity=smart"))
            .await,
    );
    assert_eq!(contrast(&west), 0);
    assert!(contrast(&smart_crop) > 100);
    assert_error(
        server.get(&format!("/image/{id}.png?gravity=up")).await,
        StatusCode::BAD_REQUEST,
        "bad_transform",
    )
    .await;
}

#[tokio::test]
async fn blurhash_is_a_cached_placeholder() {
    let server = TestServer::start().await;
    let id = server.upload_corpus("photo-3mp-canon-exif6.jpg").await;
    let first: Value = server
        .get(&format!("/image/{id}/blurhash"))
        .await
        .json()
        .await
        .unwrap();
    let hash = first["blurhash"].as_str().unwrap();
    assert_eq!(
        hash.len(),
        6 + 2 * (3 * 4 - 1),
        "3x4 components for a portrait image: {hash}"
    );
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(1536), Some(2048))
    );
    let decoded = blurhash::decode(hash, 4, 4, 1.0).unwrap();
    assert!(decoded.iter().any(|&c| c > 20), "not black");
    let renders = server.metric("progimage_pixels_processed_total").await;
    let second: Value = server
        .get(&format!("/image/{id}/blurhash"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(
        server.metric("progimage_pixels_processed_total").await,
        renders,
        "cached"
    );
    assert_error(
        server
            .get(&format!("/image/{}/blurhash", "0".repeat(64)))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn presets_name_variants_and_presets_only_refuses_the_rest() {
    let server = TestServer::with(|c| {
        c.presets = "thumb=w_20,h_20,fit_cover;wide=w_40".into();
        c.presets_only = true;
    })
    .await;
    let id = server.upload_corpus("png-rgba-alpha.png").await;
    let thumb = decode_png(&server.bytes(&format!("/image/{id}/thumb.png")).await);
    assert_eq!((thumb.width, thumb.height), (20, 20));
    let explicit = server
        .get(&format!("/image/{id}/w_20,h_20,fit_cover.png"))
        .await;
    assert_error(explicit, StatusCode::BAD_REQUEST, "bad_transform").await;
    assert_error(
        server.get(&format!("/image/{id}.png?w=20")).await,
        StatusCode::BAD_REQUEST,
        "bad_transform",
    )
    .await;
    assert_error(
        server.get(&format!("/image/{id}/thumb.png?q=5")).await,
        StatusCode::BAD_REQUEST,
        "bad_transform",
    )
    .await;
    assert_eq!(
        server.get(&format!("/image/{id}.webp")).await.status(),
        StatusCode::OK,
        "plain conversion"
    );
}

#[tokio::test]
async fn rate_limits_stop_bursts_but_not_cache_hits_or_steady_clients() {
    let server = TestServer::with(|c| c.rate_limit = Some(2)).await;
    let (_, meta) = server
        .upload_bytes(png_bytes(image::RgbaImage::new(8, 8)))
        .await; // 1 unit
    let id = meta["id"].as_str().unwrap().to_owned();
    // A burst of new renders: the bucket holds 2, so some of 8 must be refused.
    let mut statuses = Vec::new();
    for w in 1..=8 {
        let resp = server
            .get(&format!("/image/{id}.png?w={w}&enlarge=1"))
            .await;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().get("retry-after").is_some());
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Cache hits, metadata and health are never limited, even right after the burst.
    let rendered = (1..=8).find(|w| statuses[w - 1] == StatusCode::OK).unwrap();
    for _ in 0..10 {
        let hit = server
            .get(&format!("/image/{id}.png?w={rendered}&enlarge=1"))
            .await;
        assert_eq!(hit.status(), StatusCode::OK);
        assert_eq!(
            server.get(&format!("/image/{id}")).await.status(),
            StatusCode::OK
        );
        assert_eq!(server.get("/health").await.status(), StatusCode::OK);
    }
    // A steady client within its limit (one render per 600 ms at 2/s) is never refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for w in 20..24 {
        let resp = server
            .get(&format!("/image/{id}.png?w={w}&enlarge=1"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "steady request w={w}");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    }
}

#[tokio::test]
async fn made_up_api_keys_do_not_escape_the_rate_limit() {
    let server = TestServer::with(|c| {
        c.rate_limit = Some(1);
        c.api_keys = vec!["real".into()];
    })
    .await;
    let resp = server
        .client
        .post(server.url("/image"))
        .bearer_auth("real")
        .body(png_bytes(image::RgbaImage::new(8, 8)))
        .send()
        .await
        .unwrap();
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut limited = 0;
    for w in 1..=6 {
        let resp = server
            .client
            .get(server.url(&format!("/image/{id}.png?w={w}&enlarge=1")))
            .bearer_auth(format!("fake{w}"))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited > 0, "fake keys share the client address's bucket");
}

#[tokio::test]
async fn watermarks_are_drawn_and_keyed_by_their_id() {
    let server = TestServer::start().await;
    let (_, base) = server
        .upload_bytes(png_bytes(image::RgbaImage::from_pixel(
            400,
            200,
            image::Rgba([255, 255, 255, 255]),
        )))
        .await;
    let (_, mark) = server
        .upload_bytes(png_bytes(image::RgbaImage::from_pixel(
            10,
            10,
            image::Rgba([255, 0, 0, 255]),
        )))
        .await;
    let (base, mark) = (base["id"].as_str().unwrap(), mark["id"].as_str().unwrap());
    let out = decode_png(&server.bytes(&format!("/image/{base}.png?wm={mark}")).await);
    assert_eq!(
        out.at(390, 190),
        [255, 0, 0, 255],
        "bottom right by default"
    );
    assert_eq!(out.at(10, 10), [255, 255, 255, 255]);
    let nw = decode_png(
        &server
            .bytes(&format!(
                "/image/{base}/wm_{mark},wm_pos_nw,wm_scale_0.1,wm_opacity_0.5.png"
            ))
            .await,
    );
    let p = nw.at(12, 12);
    assert!(
        p[0] == 255 && (120..=136).contains(&p[1]),
        "half-transparent red over white: {p:?}"
    );
    assert_eq!(nw.at(390, 190), [255, 255, 255, 255]);
    let smart = decode_png(
        &server
            .bytes(&format!("/image/{base}.png?wm={mark}&wm_pos=smart"))
            .await,
    );
    assert_eq!(
        smart.at(390, 190),
        [255, 0, 0, 255],
        "smart on a flat image: the default corner"
    );
    let missing = "f".repeat(64);
    assert_error(
        server.get(&format!("/image/{base}.png?wm={missing}")).await,
        StatusCode::BAD_REQUEST,
        "bad_transform",
    )
    .await;
    assert_error(
        server.get(&format!("/image/{base}.png?wm=xyz")).await,
        StatusCode::BAD_REQUEST,
        "bad_transform",
    )
    .await;
}

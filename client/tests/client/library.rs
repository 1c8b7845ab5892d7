//! Every client method against a real server.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use progimage_client::{
    image_id, Ascii, BatchFile, Client, Error, Fit, Flip, Format, Gravity, Mask, Rotation,
    Transform, UploadOutcome,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{corpus, corpus_dir, upload_id, TestServer};

const PNG: &str = "png-rgba-alpha.png";
const GIF: &str = "gif-static.gif";
const JPEG: &str = "jpeg-progressive.jpg";

fn api_code(result: Result<impl std::fmt::Debug, Error>) -> (StatusCode, String) {
    let e = result.expect_err("expected an error");
    assert!(!e.message().is_empty(), "{e:?}");
    (
        e.status().expect("a status"),
        e.code().expect("a code").to_owned(),
    )
}

#[tokio::test]
async fn upload_meta_get_original_and_delete() {
    let server = TestServer::start().await;
    let client = server.client();
    let bytes = corpus(PNG);

    let up = client
        .upload_bytes(bytes.clone(), Some("logo.png"))
        .await
        .unwrap();
    assert_eq!(up.outcome, UploadOutcome::Created);
    assert_eq!(up.image.id, image_id(&bytes));
    assert_eq!((up.image.width, up.image.height), (129, 66));
    assert_eq!(up.image.filename.as_deref(), Some("logo.png"));
    assert!(up.image.has_alpha);

    // Sending the body again (hash-first off) is the server's 200.
    let again = Client::builder(&server.base)
        .hash_first(false)
        .build()
        .unwrap();
    let second = again.upload_bytes(bytes.clone(), None).await.unwrap();
    assert_eq!(second.outcome, UploadOutcome::AlreadyStored);
    assert_eq!(second.image, up.image);

    assert!(client.exists(&up.image.id).await.unwrap());
    assert_eq!(client.meta(&up.image.id).await.unwrap(), up.image);
    assert_eq!(client.original(&up.image.id).await.unwrap(), bytes);

    let t = Transform::new().width(40).format(Format::Webp);
    let webp = client.get(&up.image.id, &t).await.unwrap();
    assert_eq!(webp.content_type.as_deref(), Some("image/webp"));
    assert_eq!(&webp.bytes[..4], b"RIFF");
    assert!(webp.etag.is_some());

    client.delete(&up.image.id).await.unwrap();
    assert!(!client.exists(&up.image.id).await.unwrap());
    assert_eq!(
        api_code(client.meta(&up.image.id).await),
        (StatusCode::NOT_FOUND, "not_found".to_owned())
    );
    assert_eq!(
        api_code(client.delete(&up.image.id).await),
        (StatusCode::NOT_FOUND, "not_found".to_owned())
    );
}

#[tokio::test]
async fn upload_file_is_hash_first_and_sends_no_body_the_second_time() {
    let server = TestServer::start().await;
    let client = server.client();
    let path = corpus_dir().join(JPEG);

    let first = client.upload_file(&path).await.unwrap();
    assert_eq!(first.outcome, UploadOutcome::Created);
    assert_eq!(first.image.filename.as_deref(), Some(JPEG));
    let posts = server
        .requests(&["route=\"/image\"", "method=\"POST\""])
        .await;
    let bytes_in = server.metric("progimage_bytes_in_total", &[]).await;
    assert_eq!(posts, 1.0);
    assert_eq!(bytes_in, corpus(JPEG).len() as f64);

    let second = client.upload_file(&path).await.unwrap();
    assert_eq!(second.outcome, UploadOutcome::Skipped);
    assert_eq!(second.image, first.image);
    // No POST and no byte reached the server; a HEAD did.
    let posts_after = server
        .requests(&["route=\"/image\"", "method=\"POST\""])
        .await;
    assert_eq!(posts_after, posts);
    assert_eq!(
        server.metric("progimage_bytes_in_total", &[]).await,
        bytes_in
    );
    assert_eq!(
        server
            .requests(&["route=\"/image/{id}\"", "method=\"HEAD\""])
            .await,
        2.0
    );
    assert_eq!(server.state.stats.uploaded(), 1);
}

#[tokio::test]
async fn upload_file_that_cannot_be_read_is_an_io_error() {
    let server = TestServer::start().await;
    let err = server
        .client()
        .upload_file(corpus_dir().join("no-such-file.png"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(err.code(), None);
}

#[tokio::test]
async fn upload_url_has_the_server_fetch_a_remote_image() {
    // The server may fetch from loopback only because the test allows it.
    let server = TestServer::with(|c| c.fetch_allow = vec!["127.0.0.1".into()]).await;
    let client = server.client();
    let source = client.upload_bytes(corpus(GIF), None).await.unwrap();
    // A variant is new bytes, so fetching it stores a new image.
    let remote = client.url(
        &source.image.id,
        &Transform::new().width(16).format(Format::Png),
    );
    let up = client.upload_url(&remote).await.unwrap();
    assert_eq!(up.outcome, UploadOutcome::Created);
    assert_eq!(up.image.format, "png");
    assert_eq!((up.image.width, up.image.height), (16, 16));
    let again = client.upload_url(&remote).await.unwrap();
    assert_eq!(again.outcome, UploadOutcome::AlreadyStored);

    // Without the allowance the guard refuses loopback: the code comes through.
    let guarded = TestServer::start().await;
    assert_eq!(
        api_code(guarded.client().upload_url(&remote).await),
        (StatusCode::FORBIDDEN, "forbidden_url".to_owned())
    );
}

#[tokio::test]
async fn errors_carry_the_server_code_status_and_message() {
    let server = TestServer::start().await;
    let client = server.client();
    assert_eq!(
        api_code(client.upload_bytes(corpus("bad-text-file.jpg"), None).await),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format".to_owned()
        )
    );
    assert_eq!(
        api_code(client.upload_bytes(Vec::new(), None).await),
        (StatusCode::BAD_REQUEST, "empty_upload".to_owned())
    );
    assert_eq!(
        api_code(
            client
                .upload_bytes(corpus("bomb-20000x14000.png"), None)
                .await
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_pixels".to_owned()
        )
    );
    let id = upload_id(&client, GIF).await;
    let bad = Transform::new().blur(0.0).format(Format::Png);
    let e = client.get(&id, &bad).await.unwrap_err();
    assert_eq!(e.code(), Some("bad_transform"));
    assert!(e.message().contains("blur"), "{e}");
    assert!(matches!(&e, Error::Api { request_id: Some(r), .. } if !r.is_empty()));
    assert_eq!(
        api_code(client.meta(&"0".repeat(64)).await),
        (StatusCode::NOT_FOUND, "not_found".to_owned())
    );
    // A malformed id never leaves the client.
    assert!(matches!(
        client.meta("../status").await,
        Err(Error::InvalidId(_))
    ));

    // Nothing listening: a transport error, without a code.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let nobody = Client::builder(format!("http://{addr}"))
        .max_retries(0)
        .build()
        .unwrap();
    let e = nobody.meta(&id).await.unwrap_err();
    assert!(matches!(e, Error::Http(_)), "{e:?}");
    assert_eq!(e.code(), None);
}

#[tokio::test]
async fn api_keys_are_sent_as_bearer_tokens() {
    let server = TestServer::with(|c| c.api_keys = vec!["k1".into()]).await;
    assert_eq!(
        api_code(server.client().upload_bytes(corpus(GIF), None).await),
        (StatusCode::UNAUTHORIZED, "unauthorized".to_owned())
    );
    let keyed = Client::builder(&server.base).api_key("k1").build().unwrap();
    let up = keyed.upload_bytes(corpus(GIF), None).await.unwrap();
    assert_eq!(up.outcome, UploadOutcome::Created);
    assert_eq!(
        api_code(server.client().delete(&up.image.id).await),
        (StatusCode::UNAUTHORIZED, "unauthorized".to_owned())
    );
    keyed.delete(&up.image.id).await.unwrap();
}

/// Every key the builder has, in an order unlike the server's canonical one.
fn rich_transform(wm: &str) -> Transform {
    Transform::new()
        .watermark_opacity(0.5)
        .watermark_scale(0.3)
        .watermark_position(Gravity::NorthWest)
        .watermark(wm.to_ascii_uppercase())
        .quality(70)
        .background([0x10, 0x20, 0x30])
        .mask(Mask::Rounded)
        .contrast(5)
        .brightness(-5)
        .gray(true)
        .sharpen(0.5)
        .blur(1.5)
        .flip(Flip::Horizontal)
        .rotate(Rotation::Deg90)
        .crop_size(100, 60)
        .enlarge(true)
        .gravity(Gravity::Smart)
        .fit(Fit::Cover)
        .height(20)
        .width(30)
        .format(Format::Jpeg)
}

#[tokio::test]
async fn transform_urls_are_the_servers_canonical_spelling() {
    let server = TestServer::start().await;
    let client = server.client();
    let id = upload_id(&client, PNG).await;
    let mark = upload_id(&client, GIF).await;
    let t = rich_transform(&mark);

    // The server's own canonical URL for the same variant (from a JSON batch) is ours.
    let items: Vec<_> = client
        .batch_variants([id.clone()], std::slice::from_ref(&t))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let canonical = items[0].result.as_ref().expect("rendered");
    assert_eq!(canonical, &client.url(&id, &t));

    // And the query spelling of it is the same cache entry: same ETag.
    let via_client = client.get(&id, &t).await.unwrap();
    assert_eq!(via_client.content_type.as_deref(), Some("image/jpeg"));
    let query = format!(
        "{}/image/{id}.jpg?w=30&h=20&fit=cover&gravity=smart&enlarge=1&crop=100:60&rot=90\
         &flip=h&blur=1.5&sharpen=0.5&gray=1&bri=-5&con=5&mask=rounded&bg=102030&q=70\
         &wm={mark}&wm_pos=nw&wm_scale=0.3&wm_opacity=0.5",
        server.base
    );
    let resp = reqwest::get(query).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(via_client.etag.as_deref(), Some(etag.as_str()));
}

#[tokio::test]
async fn signed_urls_are_accepted_and_tampering_is_refused() {
    let server = TestServer::with(|c| c.signing_key = Some("s3cret".into())).await;
    let client = Client::builder(&server.base)
        .signing_key("s3cret")
        .build()
        .unwrap();
    let id = upload_id(&client, PNG).await;
    let mark = upload_id(&client, GIF).await;

    for t in [
        Transform::new()
            .width(50)
            .fit(Fit::Cover)
            .format(Format::Webp),
        Transform::new().format(Format::Png),
        Transform::new().width(30).height(30).format(Format::Auto),
        rich_transform(&mark),
    ] {
        let url = client.url(&id, &t);
        assert!(url.contains("sig="), "{url}");
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        client.get(&id, &t).await.unwrap();
    }
    // Query parameters (charset) are signed too.
    let art = client
        .ascii(&id, &Ascii::new(12).charset(" .:#"))
        .await
        .unwrap();
    assert!(art.lines().all(|l| l.chars().count() == 12), "{art}");
    // The original is never signed and still served.
    let original_url = client.url(&id, &Transform::new());
    assert!(!original_url.contains("sig="));
    assert_eq!(client.original(&id).await.unwrap(), corpus(PNG));

    // Tampering with the URL, or signing with another key, gives 403 bad_signature.
    let url = client.url(&id, &Transform::new().width(50).format(Format::Webp));
    let tampered = url.replace("w_50", "w_51");
    let resp = reqwest::get(&tampered).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "bad_signature");
    let flipped = {
        let (head, sig) = url.split_once("sig=").unwrap();
        let mut sig = sig.to_owned();
        let last = if sig.ends_with('A') { "B" } else { "A" };
        sig.replace_range(sig.len() - 1.., last);
        format!("{head}sig={sig}")
    };
    assert_eq!(
        reqwest::get(&flipped).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let t = Transform::new().width(50).format(Format::Webp);
    let wrong_key = Client::builder(&server.base)
        .signing_key("other")
        .build()
        .unwrap();
    assert_eq!(
        api_code(wrong_key.get(&id, &t).await),
        (StatusCode::FORBIDDEN, "bad_signature".to_owned())
    );
    assert_eq!(
        api_code(server.client().get(&id, &t).await),
        (StatusCode::FORBIDDEN, "bad_signature".to_owned())
    );

    // URLs handed back by a JSON batch are signed by the server and fetch as they are.
    let items: Vec<_> = client
        .batch_variants([id.clone()], std::slice::from_ref(&t))
        .try_collect()
        .await
        .unwrap();
    let url = items[0].result.as_ref().unwrap();
    assert_eq!(url, &client.url(&id, &t));
    assert_eq!(reqwest::get(url).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn ascii_of_stored_and_local_images() {
    let server = TestServer::start().await;
    let client = server.client();
    let id = upload_id(&client, JPEG).await;

    let art = client.ascii(&id, &Ascii::new(40)).await.unwrap();
    // 320x240: rows = floor(40 * 240 / 320 * 0.5) = 15.
    assert_eq!(art.lines().count(), 15);
    assert!(art.lines().all(|l| l.chars().count() == 40), "{art}");
    assert!(!art.contains('\x1b'));

    let colour = client
        .ascii(&id, &Ascii::new(40).colour(true))
        .await
        .unwrap();
    assert!(colour.contains("\x1b[38;2;"), "{colour:?}");

    let inverted = client
        .ascii(&id, &Ascii::new(40).invert(true))
        .await
        .unwrap();
    assert_ne!(inverted, art);

    // A local file: the same art, and nothing stored.
    let local = client
        .ascii_bytes(corpus(JPEG), &Ascii::new(40))
        .await
        .unwrap();
    assert_eq!(local, art);
    let gif = client
        .ascii_bytes(corpus(GIF), &Ascii::new(10))
        .await
        .unwrap();
    assert!(!client.exists(&image_id(&corpus(GIF))).await.unwrap());
    assert!(gif.lines().all(|l| l.chars().count() == 10));

    let png = client
        .transform_bytes(corpus(GIF), &Transform::new().width(8).format(Format::Png))
        .await
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[tokio::test]
async fn list_streams_every_page() {
    let server = TestServer::start().await;
    let client = server.client();
    let names = [
        PNG,
        GIF,
        JPEG,
        "png-palette-8bit.png",
        "png-interlaced-adam7.png",
        "webp-lossy.webp",
        "bmp-24bit.bmp",
    ];
    let mut ids = BTreeSet::new();
    for name in names {
        ids.insert(upload_id(&client, name).await);
    }

    let first = client.list_page(None, 3).await.unwrap();
    assert_eq!(first.images.len(), 3);
    assert!(first.next.is_some());

    let before = server
        .requests(&["route=\"/image\"", "method=\"GET\""])
        .await;
    let listed: Vec<String> = client.list(2).map_ok(|m| m.id).try_collect().await.unwrap();
    let after = server
        .requests(&["route=\"/image\"", "method=\"GET\""])
        .await;
    // In id order, every image once, in ceil(7 / 2) = 4 requests.
    assert_eq!(listed, ids.iter().cloned().collect::<Vec<_>>());
    assert_eq!(after - before, 4.0);

    // Reading only part of the stream fetches only the pages needed.
    let two: Vec<_> = client.list(2).take(2).try_collect().await.unwrap();
    assert_eq!(two.len(), 2);
    let empty = TestServer::start().await;
    assert_eq!(empty.client().list(5).count().await, 0);
}

#[tokio::test]
async fn batch_upload_skips_known_files_and_reports_each_item() {
    let server = TestServer::start().await;
    let client = server.client();
    client.upload_bytes(corpus(PNG), None).await.unwrap();

    let files = vec![
        BatchFile::read(corpus_dir().join(PNG)).await.unwrap(),
        BatchFile::new("hopper.gif", corpus(GIF)),
        BatchFile::new("notes.jpg", corpus("bad-text-file.jpg")),
        BatchFile::new("empty.jpg", Vec::new()),
        BatchFile::new("progressive.jpg", corpus(JPEG)),
    ];
    let mut items: Vec<_> = client.batch_upload(files).try_collect().await.unwrap();
    items.sort_by_key(|i| i.index);
    let summary: Vec<(usize, &str, Result<UploadOutcome, String>)> = items
        .iter()
        .map(|i| {
            let r = match &i.result {
                Ok(u) => Ok(u.outcome),
                Err(e) => Err(e.code().unwrap_or("?").to_owned()),
            };
            (i.index, i.name.as_str(), r)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, PNG, Ok(UploadOutcome::Skipped)),
            (1, "hopper.gif", Ok(UploadOutcome::Created)),
            (2, "notes.jpg", Err("unsupported_format".to_owned())),
            (3, "empty.jpg", Err("empty_upload".to_owned())),
            (4, "progressive.jpg", Ok(UploadOutcome::Created)),
        ]
    );
    let created = items[1].result.as_ref().unwrap();
    assert_eq!(created.image.filename.as_deref(), Some("hopper.gif"));
    assert_eq!(created.image.id, image_id(&corpus(GIF)));
    let err = items[2].result.as_ref().unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));

    // Everything known: nothing is posted at all.
    let posts = server.requests(&["route=\"/batch\""]).await;
    let again: Vec<_> = client
        .batch_upload(vec![BatchFile::new("g", corpus(GIF))])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        again[0].result.as_ref().unwrap().outcome,
        UploadOutcome::Skipped
    );
    assert_eq!(server.requests(&["route=\"/batch\""]).await, posts);

    // A batch-level failure is one Err item.
    let keyed = TestServer::with(|c| c.api_keys = vec!["k".into()]).await;
    let results: Vec<_> = keyed
        .client()
        .batch_upload(vec![BatchFile::new("g", corpus(GIF))])
        .collect()
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].as_ref().unwrap_err().code(),
        Some("unauthorized")
    );
}

#[tokio::test]
async fn batch_variants_render_every_pair() {
    let server = TestServer::start().await;
    let client = server.client();
    let a = upload_id(&client, PNG).await;
    let b = upload_id(&client, GIF).await;
    let variants = [
        Transform::new().width(20).format(Format::Webp),
        Transform::new().format(Format::Png),
        Transform::new().blur(0.0).format(Format::Png),
    ];
    let mut items: Vec<_> = client
        .batch_variants([a.clone(), b.clone()], &variants)
        .try_collect()
        .await
        .unwrap();
    items.sort_by_key(|i| i.index);
    assert_eq!(items.len(), 6);
    for (i, item) in items.iter().enumerate() {
        let (id, t) = (if i < 3 { &a } else { &b }, &variants[i % 3]);
        assert_eq!(&item.id, id);
        assert_eq!(item.variant, t.batch_variant());
        if i % 3 == 2 {
            let e = item.result.as_ref().unwrap_err();
            assert_eq!(e.code(), Some("bad_transform"));
            assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST));
        } else {
            let url = item.result.as_ref().unwrap();
            assert_eq!(url, &client.url(id, t));
            assert_eq!(reqwest::get(url).await.unwrap().status(), StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn status_reports_the_servers_counters() {
    let server = TestServer::start().await;
    let client = server.client();
    client.upload_bytes(corpus(GIF), None).await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!((status.uploaded_count, status.images), (1, 1));
    assert!(!status.version.is_empty());
}

#[tokio::test]
async fn rate_limited_requests_are_retried_after_retry_after() {
    // One unit of work per second: back-to-back uploads are answered 429 + Retry-After.
    let server = TestServer::with(|c| c.rate_limit = Some(1)).await;
    let names = [PNG, GIF, JPEG];

    // Without retries the 429 comes through, with its Retry-After.
    let impatient = Client::builder(&server.base)
        .max_retries(0)
        .hash_first(false)
        .build()
        .unwrap();
    let mut limited = None;
    for _ in 0..10 {
        if let Err(e) = impatient.upload_bytes(corpus(GIF), None).await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("a 429 within ten back-to-back uploads");
    assert_eq!(e.code(), Some("rate_limited"));
    assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert!(
        matches!(e, Error::Api { retry_after: Some(d), .. } if d >= Duration::from_secs(1)),
        "{e:?}"
    );

    // With retries (the default) every upload gets through, after waiting.
    let patient = Client::builder(&server.base)
        .hash_first(false)
        .build()
        .unwrap();
    let limited_before = server.requests(&["status=\"429\""]).await;
    for name in names {
        patient.upload_bytes(corpus(name), None).await.unwrap();
    }
    assert!(server.requests(&["status=\"429\""]).await > limited_before);
}

/// A stand-in server on 127.0.0.1 that answers `503 overloaded` to the first `failures`
/// connections (then `200` with `ok_body`), counting them.
async fn flaky_server(failures: usize, ok_body: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let body = ok_body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let (status, extra, body) = if n < failures {
                    (
                        "503 Service Unavailable",
                        "Retry-After: 0\r\n",
                        r#"{"code":"overloaded","message":"busy"}"#.to_owned(),
                    )
                } else {
                    ("200 OK", "", body)
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(resp.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (base, seen)
}

#[tokio::test]
async fn overloaded_answers_are_retried_a_bounded_number_of_times() {
    let id = image_id(b"x");
    let meta = serde_json::json!({
        "id": id, "url": format!("/image/{id}.png"), "format": "png",
        "content_type": "image/png", "width": 1, "height": 1, "bytes": 1,
        "has_alpha": false, "filename": null, "created_at": "2026-11-23T10:00:00Z"
    })
    .to_string();
    let fast = |base: &str, retries| {
        Client::builder(base)
            .max_retries(retries)
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .build()
            .unwrap()
    };

    // Two 503s, then success: the third attempt answers.
    let (base, seen) = flaky_server(2, meta.clone()).await;
    let got = fast(&base, 3).meta(&id).await.unwrap();
    assert_eq!(got.id, id);
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    // Always 503: one attempt plus exactly `max_retries` retries, then the error.
    let (base, seen) = flaky_server(usize::MAX, meta).await;
    let e = fast(&base, 2).meta(&id).await.unwrap_err();
    assert_eq!(e.code(), Some("overloaded"));
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

//! Slow and broken clients (issue 7, item 4): slowloris headers, bodies that stall, and
//! clients that vanish mid-upload. The server must cut them off, store nothing, leak no
//! temp files and keep serving everyone else.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::{corpus, files_under, TestServer};

/// Every test finishes well inside this, or fails.
const BOUND: Duration = Duration::from_secs(60);

async fn server_with_short_timeouts() -> TestServer {
    TestServer::with(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_idle_timeout = Duration::from_secs(1);
    })
    .await
}

async fn connect(server: &TestServer) -> TcpStream {
    let addr = server.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Read until the server closes the connection (or resets it); returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// The server is healthy and idle: `/health` answers, no job runs or waits.
async fn assert_idle_and_serving(server: &TestServer) {
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
    // Gauges are updated as jobs finish; give a just-cancelled job a moment to let go.
    let settled = timeout(Duration::from_secs(20), async {
        loop {
            let running = server.metric("progimage_work_in_flight").await;
            let waiting = server.metric("progimage_work_queue_depth").await;
            if running == 0.0 && waiting == 0.0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "work pool still busy after the client left"
    );
}

/// Every file under the store and the cache: leftovers of a stored or half-stored upload.
fn stored_files(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|path| !path.ends_with(".ready-probe"))
        .map(|path| path.display().to_string())
        .collect()
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let server = server_with_short_timeouts().await;
    let mut stream = connect(&server).await;
    let cut_off = timeout(BOUND, async {
        stream.write_all(b"POST /image HTTP/1.1\r\n").await.ok();
        let (mut reader, mut writer) = stream.split();
        let drip = async {
            // One header line every 200 ms, forever: far slower than the timeout allows.
            for i in 0u32.. {
                let line = format!("X-Slow-{i}: {}\r\n", "a".repeat(8));
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            std::future::pending::<()>().await;
        };
        let mut seen = Vec::new();
        let read = async {
            let mut buf = [0u8; 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::select! {
            () = drip => {},
            () = read => {},
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await;
    let answer = cut_off.expect("the server never closed a slowloris connection");
    // hyper answers 408 before closing; a bare close is acceptable too.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "unexpected answer: {answer}"
    );
    assert_idle_and_serving(&server).await;
}

#[tokio::test]
async fn a_raw_body_that_stalls_gets_408_and_nothing_is_stored() {
    let server = server_with_short_timeouts().await;
    let png = corpus("png-rgba-alpha.png");
    let mut stream = connect(&server).await;
    let answer = timeout(BOUND, async {
        let head = format!(
            "POST /image HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
            png.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&png[..png.len() / 2]).await.unwrap();
        // …and then nothing: the rest never comes, the connection stays open.
        read_to_close(&mut stream).await
    })
    .await
    .expect("the server never gave up on a stalled body");
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer}");
    assert!(answer.contains("request_timeout"), "answer: {answer}");
    assert_idle_and_serving(&server).await;
    assert!(stored_files(&server.dir.path().join("store")).is_empty());
    // The same upload from a well-behaved client goes through.
    let (status, body) = server.upload_bytes(png).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_multipart_body_that_stalls_gets_408() {
    let server = server_with_short_timeouts().await;
    let png = corpus("png-rgba-alpha.png");
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\
          Content-Type: image/png\r\n\r\n",
    );
    body.extend_from_slice(&png);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let mut stream = connect(&server).await;
    let answer = timeout(BOUND, async {
        let head = format!(
            "POST /image HTTP/1.1\r\nHost: x\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..body.len() / 2]).await.unwrap();
        read_to_close(&mut stream).await
    })
    .await
    .expect("the server never gave up on a stalled multipart body");
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer}");
    assert!(answer.contains("request_timeout"), "answer: {answer}");
    assert_idle_and_serving(&server).await;
    assert!(stored_files(&server.dir.path().join("store")).is_empty());
}

#[tokio::test]
async fn clients_that_vanish_mid_upload_leave_nothing_behind() {
    // Default (long) timeouts: the disconnect itself must end the request.
    let server = TestServer::start().await;
    let photo = corpus("photo-3mp-canon-exif6.jpg");
    let png = corpus("png-rgba-alpha.png");
    timeout(BOUND, async {
        let mut vanishing = Vec::new();
        for (i, bytes) in [&photo, &png].iter().cycle().take(8).enumerate() {
            let mut stream = connect(&server).await;
            let (path, ctype) = if i % 2 == 0 {
                ("/image", "image/jpeg")
            } else {
                ("/transform/w_64.png", "application/octet-stream")
            };
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            // Anywhere from a few bytes to all but the last one.
            let cut = (bytes.len() - 1) * (i + 1) / 9;
            stream.write_all(&bytes[..cut]).await.unwrap();
            vanishing.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(vanishing); // every client disappears at once
    })
    .await
    .expect("setting up the vanishing clients");

    timeout(BOUND, assert_idle_and_serving(&server))
        .await
        .expect("bounded");
    let listed: serde_json::Value = server.get("/image").await.json().await.unwrap();
    assert_eq!(
        listed["images"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let left = stored_files(&server.dir.path().join("store"));
    assert!(left.is_empty(), "files left by vanished uploads: {left:?}");

    // A normal upload and render still work, and leave the pool idle.
    let (status, body) = timeout(BOUND, server.upload_bytes(photo.clone()))
        .await
        .expect("bounded");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let resp = timeout(BOUND, server.get(&format!("/image/{id}/w_64.png")))
        .await
        .expect("bounded");
    assert_eq!(resp.status(), StatusCode::OK);
    timeout(BOUND, assert_idle_and_serving(&server))
        .await
        .expect("bounded");
    let temp: Vec<String> = stored_files(server.dir.path())
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.contains('#') || name.starts_with(".tmp")
        })
        .collect();
    assert!(temp.is_empty(), "temp files left: {temp:?}");
}

/// Issue 16, item 6: a client that writes its whole body before reading (Python
/// `requests`, many SDKs) gets the early refusal, not a reset connection: the server
/// reads and discards what is still coming before it closes (a lingering close).
#[tokio::test]
async fn an_early_refusal_reaches_a_client_that_sends_its_whole_body_first() {
    let server = TestServer::with(|c| {
        c.api_keys = vec!["key".into()];
        c.max_upload_bytes = 1 << 20;
    })
    .await;
    for (round, (path, status)) in [("/image", "401"), ("/transform.png", "413")]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let body = vec![0x5Au8; 8 << 20];
        let mut stream = connect(&server).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
             Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            if status == "401" { "wrong" } else { "key" },
            body.len()
        );
        let sent = timeout(BOUND, async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await
        })
        .await
        .expect("the write finished in time");
        assert!(
            sent.is_ok(),
            "round {round}: the body could not be sent: {sent:?}"
        );
        let mut answer = Vec::new();
        let read = timeout(BOUND, stream.read_to_end(&mut answer))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(
            read.is_ok() && text.starts_with(&format!("HTTP/1.1 {status}")),
            "round {round}: {read:?} {text:?}"
        );
    }
}

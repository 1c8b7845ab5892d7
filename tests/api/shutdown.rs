//! The real binary: SIGTERM drains in-flight requests, then exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::stream;
use reqwest::StatusCode;

use crate::support::corpus;

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_progimage"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    // The first log line names the bound address.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {}); // keep draining the pipe
    let base = format!("http://{address}");

    // An upload that trickles in slowly, so it is in flight when SIGTERM arrives.
    let bytes = corpus("png-rgba-alpha.png");
    let chunks: Vec<Vec<u8>> = bytes.chunks(1024).map(<[u8]>::to_vec).collect();
    let body = stream::unfold(chunks.into_iter(), |mut rest| async move {
        let chunk = rest.next()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(chunk), rest))
    });
    let client = reqwest::Client::new();
    let upload = tokio::spawn(
        client
            .post(format!("{base}/image"))
            .header("content-type", "image/png")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);

    let resp = upload
        .await
        .unwrap()
        .expect("the in-flight upload completes");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit after draining");
}

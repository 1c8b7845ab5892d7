//! The `progimage-cli` binary run as a subprocess against a real server.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use progimage_client::{image_id, Client, Fit, Format, Transform};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{corpus, corpus_dir, TestServer};

/// Run the CLI with `args` against `base` (given through `PROGIMAGE_URL`), off the
/// runtime's threads so the in-process server keeps serving.
async fn cli(base: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_progimage-cli"));
    command
        .args(args)
        .env("PROGIMAGE_URL", base)
        .env_remove("PROGIMAGE_API_KEY")
        .env_remove("PROGIMAGE_SIGNING_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output().expect("run progimage-cli"))
        .await
        .expect("join")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the whole corpus directory gives: every file that is not stored, by path relative
/// to the directory, with its error code. The images are those SOURCES.md expects to be
/// refused; SOURCES.md itself and the licence texts are not images at all.
fn expected_failures() -> BTreeMap<String, String> {
    let mut expected: BTreeMap<String, String> = [
        ("bad-crc.png", "corrupt_image"),
        ("bad-empty.jpg", "empty_upload"),
        ("bad-text-file.jpg", "unsupported_format"),
        ("bad-pdf-file.png", "unsupported_format"),
        ("bomb-20000x14000.png", "too_many_pixels"),
        ("SOURCES.md", "unsupported_format"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_owned()))
    .collect();
    for entry in std::fs::read_dir(corpus_dir().join("LICENSES")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        expected.insert(format!("LICENSES/{name}"), "unsupported_format".to_owned());
    }
    expected
}

fn relative(path: &Value) -> String {
    let path = Path::new(path.as_str().expect("path"));
    path.strip_prefix(corpus_dir())
        .expect("inside the corpus")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_upload_of_the_corpus_reports_the_expected_failures() {
    let server = TestServer::start().await;
    let dir = corpus_dir();
    let dir = dir.to_str().unwrap();
    let expected = expected_failures();
    assert_eq!(
        expected.len(),
        16,
        "5 refused images, SOURCES.md, 10 licences"
    );

    let out = cli(&server.base, &[], &["--json", "upload", "-j", "3", dir]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = stdout_json(&out);
    let files = report["files"].as_array().unwrap();
    let failed: BTreeMap<String, String> = files
        .iter()
        .filter(|f| f["outcome"] == "failed")
        .map(|f| {
            let code = f["error"]["code"].as_str().unwrap_or("?").to_owned();
            (relative(&f["path"]), code)
        })
        .collect();
    assert_eq!(failed, expected);
    assert_eq!(report["failed"], 16);
    assert_eq!(report["created"], 41);
    assert_eq!(report["total"], 57);
    assert_eq!(report["skipped"], 0);
    // Every stored file's id is the SHA-256 of its bytes, and the server has it.
    let client = Client::new(&server.base).unwrap();
    for f in files.iter().filter(|f| f["outcome"] == "created") {
        let name = relative(&f["path"]);
        assert_eq!(f["id"].as_str().unwrap(), image_id(&corpus(&name)));
    }
    assert_eq!(client.status().await.unwrap().images, 41);

    // Again, as text: everything stored is skipped (hash-first), the failures repeat.
    let posts = server
        .requests(&["route=\"/image\"", "method=\"POST\""])
        .await;
    let out = cli(&server.base, &[], &["upload", dir]).await;
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out);
    assert!(
        table.contains("57 files") && table.contains("41 skipped") && table.contains("16 failed"),
        "{table}"
    );
    assert!(
        table.lines().next().unwrap().starts_with("STATUS"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("failed")
            && l.contains("bomb-20000x14000.png")
            && l.contains("422 too_many_pixels")),
        "{table}"
    );
    // Only the 16 failures were posted again.
    let posted = server
        .requests(&["route=\"/image\"", "method=\"POST\""])
        .await
        - posts;
    assert_eq!(posted, 16.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_good_files_exits_zero_and_uses_the_api_key() {
    let server = TestServer::with(|c| c.api_keys = vec!["k1".into()]).await;
    let a = corpus_dir().join("gif-static.gif");
    let b = corpus_dir().join("png-rgba-alpha.png");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let refused = cli(&server.base, &[], &["--json", "upload", a]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stdout_json(&refused)["files"][0]["error"]["code"],
        "unauthorized"
    );

    let env = [("PROGIMAGE_API_KEY", "k1")];
    let out = cli(&server.base, &env, &["--json", "upload", a, b]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_json(&out);
    assert_eq!(
        (report["created"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(0))
    );

    // A path that does not exist is a failure of its own.
    let out = cli(
        &server.base,
        &env,
        &["--json", "upload", a, "/no/such/file.png"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report = stdout_json(&out);
    assert_eq!(
        (report["skipped"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_writes_a_variant_in_the_format_of_the_file_name() {
    let server = TestServer::start().await;
    let client = Client::new(&server.base).unwrap();
    let id = client
        .upload_bytes(corpus("jpeg-progressive.jpg"), None)
        .await
        .unwrap()
        .image
        .id;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.webp");
    let out_str = out_path.to_str().unwrap();

    let out = cli(
        &server.base,
        &[],
        &[
            "--json", "get", &id, "--w", "30", "--h", "30", "--fit", "cover", "-o", out_str,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let report = stdout_json(&out);
    assert_eq!(report["content_type"], "image/webp");
    assert_eq!(report["bytes"].as_u64(), Some(bytes.len() as u64));
    let t = Transform::new()
        .width(30)
        .height(30)
        .fit(Fit::Cover)
        .format(Format::Webp);
    assert_eq!(report["url"], client.url(&id, &t));
    assert_eq!(client.get(&id, &t).await.unwrap().bytes, bytes);

    // --format wins over the name; a bad transform is the server's error and exit 1.
    let png_path = dir.path().join("thumb.bin");
    let out = cli(
        &server.base,
        &[],
        &[
            "get",
            &id,
            "--w",
            "8",
            "-f",
            "png",
            "-o",
            png_path.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(&std::fs::read(&png_path).unwrap()[1..4], b"PNG");
    let out = cli(
        &server.base,
        &[],
        &["--json", "get", &id, "--blur", "0", "-o", out_str],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stdout_json(&out);
    assert_eq!(err["error"]["code"], "bad_transform");
    assert_eq!(err["error"]["status"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_prints_the_canonical_signed_url_the_server_accepts() {
    let server = TestServer::with(|c| c.signing_key = Some("k".into())).await;
    let client = Client::builder(&server.base)
        .signing_key("k")
        .build()
        .unwrap();
    let id = client
        .upload_bytes(corpus("gif-static.gif"), None)
        .await
        .unwrap()
        .image
        .id;
    let env = [("PROGIMAGE_SIGNING_KEY", "k")];
    let out = cli(
        &server.base,
        &env,
        &[
            "url", &id, "--fit", "cover", "--w", "300", "--h", "200", "-f", "webp", "--bri", "-10",
        ],
    )
    .await;
    assert!(out.status.success());
    let url = text(&out).trim().to_owned();
    let t = Transform::new()
        .width(300)
        .height(200)
        .fit(Fit::Cover)
        .brightness(-10)
        .format(Format::Webp);
    assert_eq!(url, client.url(&id, &t));
    assert!(url.contains(&format!(
        "/image/{id}/w_300,h_200,fit_cover,bri_-10.webp?sig="
    )));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);

    // Without the key: unsigned, and refused.
    let out = cli(
        &server.base,
        &[],
        &["--json", "url", &id, "--w", "300", "-f", "png"],
    )
    .await;
    let url = stdout_json(&out)["url"].as_str().unwrap().to_owned();
    assert!(!url.contains("sig="));
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ascii_prints_art_of_an_id_or_a_file() {
    let server = TestServer::start().await;
    let client = Client::new(&server.base).unwrap();
    let file = corpus_dir().join("jpeg-progressive.jpg");
    let id = client.upload_file(&file).await.unwrap().image.id;

    // stdout is a pipe here, so no colour unless asked for.
    let out = cli(&server.base, &[], &["ascii", &id, "--width", "50"]).await;
    assert!(out.status.success());
    let art = text(&out);
    assert!(!art.contains('\x1b'));
    assert_eq!(art.lines().count(), 18); // floor(50 * 240 / 320 * 0.5)
    assert!(art.lines().all(|l| l.chars().count() == 50), "{art}");

    let out = cli(
        &server.base,
        &[],
        &["ascii", file.to_str().unwrap(), "--width", "50"],
    )
    .await;
    assert_eq!(text(&out), art);

    let out = cli(
        &server.base,
        &[],
        &["ascii", &id, "--width", "20", "--colour", "always"],
    )
    .await;
    assert!(text(&out).contains("\x1b[38;2;"));

    let out = cli(
        &server.base,
        &[],
        &["--json", "ascii", &id, "--width", "20"],
    )
    .await;
    let art = stdout_json(&out)["art"].as_str().unwrap().to_owned();
    assert!(art.lines().all(|l| l.chars().count() == 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_rm_and_meta() {
    let server = TestServer::start().await;
    let client = Client::new(&server.base).unwrap();
    let mut ids = Vec::new();
    for name in ["gif-static.gif", "png-rgba-alpha.png", "webp-lossy.webp"] {
        ids.push(
            client
                .upload_bytes(corpus(name), Some(name))
                .await
                .unwrap()
                .image
                .id,
        );
    }
    ids.sort();

    // Pages of one: the CLI follows the cursor.
    let out = cli(&server.base, &[], &["--json", "ls", "--page-size", "1"]).await;
    assert!(out.status.success());
    let listed: Vec<String> = stdout_json(&out)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
    let out = cli(&server.base, &[], &["ls", "--limit", "2"]).await;
    assert_eq!(text(&out).lines().count(), 2);
    assert!(text(&out).lines().next().unwrap().starts_with(&ids[0]));

    let out = cli(&server.base, &[], &["meta", &ids[1]]).await;
    let meta = stdout_json(&out);
    assert_eq!(meta["id"], ids[1].as_str());

    let out = cli(
        &server.base,
        &[],
        &["--json", "rm", &ids[0], &"0".repeat(64)],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report = stdout_json(&out);
    assert_eq!(report["deleted"][0], ids[0].as_str());
    assert_eq!(report["failed"][0]["error"]["code"], "not_found");
    assert!(!client.exists(&ids[0]).await.unwrap());

    let out = cli(&server.base, &[], &["rm", &ids[1]]).await;
    assert!(out.status.success());
    assert_eq!(text(&out).trim(), format!("deleted {}", ids[1]));

    let out = cli(&server.base, &[], &["--json", "meta", &ids[1]]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["error"]["code"], "not_found");

    // The --url flag overrides the environment.
    let out = cli(
        "http://127.0.0.1:9",
        &[],
        &["--url", &server.base, "--json", "ls"],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(stdout_json(&out)["images"].as_array().unwrap().len(), 1);
}

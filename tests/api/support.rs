//! A real server on 127.0.0.1:0 with a temporary data directory, and helpers to talk to it.

use std::path::PathBuf;
use std::sync::Arc;

use progimage::{AppState, Config};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use crate::s3_server::S3Server;

pub struct TestServer {
    pub base: String,
    pub client: Client,
    pub state: Arc<AppState>,
    pub dir: TempDir,
    /// The S3-compatible server holding the store, when the suite runs against S3.
    pub s3: Option<S3Server>,
    stop: Option<oneshot::Sender<()>>,
}

/// `PROGIMAGE_TEST_STORE=s3` runs the whole suite with originals, metadata and variants
/// in a bucket of a real S3-compatible server on loopback (one per test server).
pub fn suite_uses_s3() -> bool {
    std::env::var("PROGIMAGE_TEST_STORE").is_ok_and(|v| v == "s3")
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(|_| {}).await
    }

    /// A server on the suite's store (local disk, or S3 with `PROGIMAGE_TEST_STORE=s3`).
    pub async fn with(configure: impl FnOnce(&mut Config)) -> TestServer {
        if !suite_uses_s3() {
            return TestServer::on(None, "", configure).await;
        }
        let s3 = S3Server::start().await;
        let mut server = TestServer::on(Some(&s3), "progimage", configure).await;
        server.s3 = Some(s3);
        server
    }

    /// A server on local disk whatever the suite's store (tests of the disk layout).
    pub async fn local(configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::on(None, "", configure).await
    }

    /// A server storing in `s3` under `prefix` (nodes sharing a bucket pass the same).
    pub async fn on(
        s3: Option<&S3Server>,
        prefix: &str,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(dir.path());
        if let Some(s3) = s3 {
            config.store = Some(s3.store_url(prefix));
            config.store_options = s3.store_options();
        }
        configure(&mut config);
        let state = AppState::new(config).await.expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(progimage::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            client: Client::builder().no_gzip().build().expect("client"),
            state,
            dir,
            s3: None,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// POST raw bytes to a path.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// POST a JSON document to a path.
    pub async fn post_json(&self, path: &str, json: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(json)
            .send()
            .await
            .expect("POST JSON")
    }

    /// POST a multipart form to a path.
    pub async fn post_form(&self, path: &str, form: reqwest::multipart::Form) -> Response {
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .expect("POST form")
    }

    /// Upload raw bytes; returns the status and the JSON body.
    pub async fn upload_bytes(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/image"))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("POST /image");
        let status = resp.status();
        (status, resp.json().await.expect("JSON body"))
    }

    /// Upload a corpus file and return its id, asserting it was accepted.
    pub async fn upload_corpus(&self, name: &str) -> String {
        let (status, body) = self.upload_bytes(corpus(name)).await;
        assert!(status.is_success(), "{name}: {status} {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// GET a path and return the body bytes, asserting 200.
    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        let resp = self.get(path).await;
        let status = resp.status();
        let body = resp.bytes().await.expect("body").to_vec();
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// The value of an un-labelled counter or gauge in /metrics (0 when absent).
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("metrics");
        text.lines()
            .filter_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Every file below `root` (none when it does not exist).
pub fn files_under(root: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-images")
}

pub fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Assert a JSON error response: status and stable code.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) {
    assert_eq!(resp.status(), status, "expected {code}");
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// An RGBA picture decoded by a decoder independent of the server's pipeline.
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<[u8; 4]>,
}

impl Pixels {
    pub fn at(&self, x: u32, y: u32) -> [u8; 4] {
        self.rgba[(y * self.width + x) as usize]
    }

    /// Mean absolute difference per channel (RGB) against another picture of the same size.
    pub fn mean_diff(&self, other: &Pixels) -> f64 {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let total: u64 = self
            .rgba
            .iter()
            .zip(&other.rgba)
            .map(|(a, b)| (0..3).map(|i| u64::from(a[i].abs_diff(b[i]))).sum::<u64>())
            .sum();
        total as f64 / (self.rgba.len() as f64 * 3.0)
    }

    pub fn mean_rgb(&self) -> [f64; 3] {
        let n = self.rgba.len() as f64;
        let mut sums = [0f64; 3];
        for p in &self.rgba {
            for i in 0..3 {
                sums[i] += f64::from(p[i]);
            }
        }
        sums.map(|s| s / n)
    }
}

/// Decode a PNG with the `png` crate (expanding palettes and tRNS), 8 or 16 bits.
pub fn decode_png(bytes: &[u8]) -> Pixels {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let data = &buf[..info.buffer_size()];
    let wide = info.bit_depth == png::BitDepth::Sixteen;
    let samples: Vec<u8> = if wide {
        data.chunks(2).map(|c| c[0]).collect() // high byte of each 16-bit sample
    } else {
        data.to_vec()
    };
    let rgba = match info.color_type {
        png::ColorType::Grayscale => samples.iter().map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => samples
            .chunks(2)
            .map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        png::ColorType::Rgb => samples.chunks(3).map(|c| [c[0], c[1], c[2], 255]).collect(),
        png::ColorType::Rgba => samples
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        png::ColorType::Indexed => unreachable!("EXPAND removes palettes"),
    };
    Pixels {
        width: info.width,
        height: info.height,
        rgba,
    }
}

/// Decode a JPEG with `jpeg-decoder` (not the decoder the server uses).
pub fn decode_jpeg(bytes: &[u8]) -> Pixels {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    let data = decoder.decode().expect("jpeg");
    let info = decoder.info().expect("jpeg info");
    let rgba = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => data.iter().map(|&g| [g, g, g, 255]).collect(),
        jpeg_decoder::PixelFormat::RGB24 => {
            data.chunks(3).map(|c| [c[0], c[1], c[2], 255]).collect()
        }
        other => panic!("unexpected JPEG pixel format {other:?}"),
    };
    Pixels {
        width: u32::from(info.width),
        height: u32::from(info.height),
        rgba,
    }
}

/// An 8-bit RGB PNG of `pixels` (row-major, 3 bytes a pixel).
pub fn rgb_png(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    png_of(w, h, png::ColorType::Rgb, pixels)
}

/// An 8-bit RGBA PNG of `pixels` (row-major, 4 bytes a pixel).
pub fn rgba_png(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    png_of(w, h, png::ColorType::Rgba, pixels)
}

fn png_of(w: u32, h: u32, colour: png::ColorType, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
    writer.finish().unwrap();
    out
}

/// The data of each PNG chunk of type `kind`, read from the chunk list directly (the
/// `png` crate used for pixels does not report every chunk).
pub fn png_chunk_data(bytes: &[u8], kind: &[u8; 4]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut pos = 8;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if &bytes[pos + 4..pos + 8] == kind {
            found.push(bytes[pos + 8..pos + 8 + len].to_vec());
        }
        pos += 12 + len;
    }
    found
}

/// The ICC profile of a PNG's `iCCP` chunk, decompressed.
pub fn png_icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    let data = png_chunk_data(bytes, b"iCCP").into_iter().next()?;
    let name_end = data.iter().position(|&b| b == 0)?;
    let mut profile = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(&data[name_end + 2..]),
        &mut profile,
    )
    .ok()?;
    Some(profile)
}

/// A JPEG whose data stops halfway through its scan (before the last row): `422`.
pub fn truncated_jpeg() -> Vec<u8> {
    let whole = corpus("jpeg-grayscale.jpg");
    whole[..whole.len() / 2].to_vec()
}

//! A real progimage server on 127.0.0.1:0 with a temporary data directory (the pattern of
//! the server's own `tests/api/support.rs`), and helpers.

use std::path::PathBuf;
use std::sync::Arc;

use progimage::{AppState, Config};
use progimage_client::Client;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    #[allow(dead_code)]
    pub state: Arc<AppState>,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(dir.path());
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
            state,
            _dir: dir,
            stop: Some(stop),
        }
    }

    /// A client with every default.
    pub fn client(&self) -> Client {
        Client::new(&self.base).expect("client")
    }

    /// The sum of `progimage_http_requests_total` over the series whose labels include
    /// every one of `labels` (e.g. `route="/image"`, `method="POST"`).
    pub async fn requests(&self, labels: &[&str]) -> f64 {
        self.metric("progimage_http_requests_total", labels).await
    }

    /// The sum of a metric over the series whose labels include all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let rest = series.strip_prefix(name)?;
                let ok = (rest.is_empty() || rest.starts_with('{'))
                    && labels.iter().all(|want| rest.contains(want));
                ok.then(|| value.trim().parse::<f64>().ok()).flatten()
            })
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

/// The server's test corpus, shared by the whole workspace.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("test-images")
}

pub fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Upload a corpus file through the client and return the stored id.
pub async fn upload_id(client: &Client, name: &str) -> String {
    client
        .upload_bytes(corpus(name), None)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .image
        .id
}

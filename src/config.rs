//! Every setting, as a command-line flag and a `PROGIMAGE_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "progimage", version, about = "A fast, safe image service")]
pub struct Config {
    /// Address to serve on.
    #[arg(long, env = "PROGIMAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for everything stored locally (originals by default, and the variant cache).
    #[arg(long, env = "PROGIMAGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where originals live: `file:///path` (default: `<data-dir>/store`).
    #[arg(long, env = "PROGIMAGE_STORE")]
    pub store: Option<String>,

    /// Largest accepted upload body, in bytes.
    #[arg(long, env = "PROGIMAGE_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Largest accepted image, in pixels (width × height as stored).
    #[arg(long, env = "PROGIMAGE_MAX_PIXELS", default_value_t = 64_000_000)]
    pub max_pixels: u64,

    /// Image jobs that run at once (default: the number of cores).
    #[arg(long, env = "PROGIMAGE_WORKERS")]
    pub workers: Option<usize>,

    /// Image jobs allowed to wait for a worker before requests are shed with 503.
    #[arg(long, env = "PROGIMAGE_QUEUE", default_value_t = 64)]
    pub queue: usize,

    /// API keys (comma-separated); when set, POST and DELETE need `Authorization: Bearer <key>`.
    #[arg(
        long,
        env = "PROGIMAGE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Key for signed URLs; when set, every variant URL needs a valid `sig`.
    #[arg(long, env = "PROGIMAGE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,

    /// Named transform presets: `thumb=w_200,h_200,fit_cover;hero=w_1600,q_80` makes
    /// `/image/{id}/thumb.webp` work.
    #[arg(long, env = "PROGIMAGE_PRESETS", default_value = "")]
    pub presets: String,

    /// Serve only presets (and untransformed conversions): any other transform is refused.
    #[arg(
        long,
        env = "PROGIMAGE_PRESETS_ONLY",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub presets_only: bool,

    /// Requests per second per API key (or per client address without keys) for work
    /// that renders or stores; over it → 429 `rate_limited`. Cache hits are never limited.
    #[arg(long, env = "PROGIMAGE_RATE_LIMIT")]
    pub rate_limit: Option<u32>,

    /// Seconds to wait for the store before answering 503 `storage_unavailable`.
    #[arg(long, env = "PROGIMAGE_STORE_TIMEOUT_SECS", default_value_t = 10)]
    pub store_timeout_secs: u64,

    /// Hosts and CIDRs (comma-separated) that remote fetch may reach although they are
    /// loopback, private, link-local or metadata addresses: `10.0.0.0/8`, `127.0.0.1`,
    /// `images.internal` (a name matches exactly, case-insensitively).
    #[arg(long, env = "PROGIMAGE_FETCH_ALLOW", value_delimiter = ',')]
    pub fetch_allow: Vec<String>,

    /// Seconds a remote fetch may take in all, redirects and body included.
    #[arg(long, env = "PROGIMAGE_FETCH_TIMEOUT_SECS", default_value_t = 10)]
    pub fetch_timeout_secs: u64,

    /// Redirects a remote fetch follows (each hop re-checked) before giving up.
    #[arg(long, env = "PROGIMAGE_FETCH_MAX_REDIRECTS", default_value_t = 5)]
    pub fetch_max_redirects: usize,

    /// Log format: `text` or `json`.
    #[arg(long, env = "PROGIMAGE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Config {
    /// A configuration with every default and the given data directory (for tests and
    /// embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Config::parse_from(["progimage"]);
        config.data_dir = data_dir.into();
        config
    }

    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

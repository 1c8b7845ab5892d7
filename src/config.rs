//! Every setting, as a command-line flag and a `PROGIMAGE_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

#[derive(Debug, Clone, Parser)]
#[command(name = "progimage", version, about = "A fast, safe image service")]
pub struct Config {
    /// Address to serve on.
    #[arg(long, env = "PROGIMAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for everything stored locally (originals by default, and the variant cache).
    #[arg(long, env = "PROGIMAGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where originals live: `s3://bucket/prefix` (settings from the standard `AWS_*`
    /// variables, `AWS_ENDPOINT_URL` for MinIO and other S3-compatible servers) or
    /// `file:///path` (default: `<data-dir>/store`). With a bucket, rendered variants are
    /// shared through it too, and local disk only caches.
    #[arg(long, env = "PROGIMAGE_STORE")]
    pub store: Option<String>,

    /// Per-server overrides of the `AWS_*` settings, as (`aws_endpoint_url`, value)
    /// pairs; for embedding and tests, not a flag.
    #[arg(skip)]
    pub store_options: Vec<(String, String)>,

    /// Largest accepted upload body, in bytes.
    #[arg(long, env = "PROGIMAGE_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub max_upload_bytes: u64,

    /// Largest accepted image, in pixels (width × height as stored).
    #[arg(long, env = "PROGIMAGE_MAX_PIXELS", default_value_t = 64_000_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pixels: u64,

    /// Image jobs that run at once (default: the number of cores).
    #[arg(long, env = "PROGIMAGE_WORKERS", value_parser = at_least_one)]
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

    /// Who may read `/image/{id}/original` (the byte-identical upload, metadata and all):
    /// `public` (default) or `keys` (only holders of an API key; with no keys configured,
    /// nobody). The stored image's own URL stays public: it is stripped of metadata.
    #[arg(long, env = "PROGIMAGE_ORIGINALS", value_enum, default_value_t = Originals::Public)]
    pub originals: Originals,

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
    #[arg(long, env = "PROGIMAGE_STORE_TIMEOUT_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub store_timeout_secs: u64,

    /// With a shared store: how long a node trusts that an image still exists before
    /// serving its cached variants again without asking the store (an image deleted on
    /// another node stops being served within this many seconds).
    #[arg(long, env = "PROGIMAGE_PRESENCE_TTL_SECS", default_value_t = 2)]
    pub presence_ttl_secs: u64,

    /// Memory budget for the hottest variants, in bytes (0 turns the memory tier off).
    #[arg(long, env = "PROGIMAGE_HOT_CACHE_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub hot_cache_bytes: u64,

    /// Memory for originals being rendered from, in bytes: concurrent renders of one
    /// image share one copy (0 turns it off).
    #[arg(long, env = "PROGIMAGE_ORIGINALS_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub originals_cache_bytes: u64,

    /// Local disk budget for cached variants, in bytes; least recently used go first.
    #[arg(long, env = "PROGIMAGE_CACHE_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub cache_max_bytes: u64,

    /// Remove variants unused for this long (`90s`, `30m`, `12h`, `7d`; plain numbers are
    /// seconds). Originals are kept until deleted. Default: variants stay until evicted.
    #[arg(long, env = "PROGIMAGE_VARIANT_TTL", value_parser = parse_duration)]
    pub variant_ttl: Option<std::time::Duration>,

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

    /// Time a client has to send a request's headers (also how long an idle keep-alive
    /// connection stays open); slower clients are disconnected.
    /// `0` turns the timeout off.
    #[arg(long, env = "PROGIMAGE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,

    /// Longest pause allowed while a request body streams in; a body that stalls longer
    /// is refused with 408 `request_timeout` and nothing is stored. `0` turns it off.
    #[arg(long, env = "PROGIMAGE_BODY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_idle_timeout: std::time::Duration,

    /// Longest time a whole request body may take to arrive, counted from its headers,
    /// however steadily it drips; longer is 408 `request_timeout`. `0` turns it off.
    #[arg(long, env = "PROGIMAGE_BODY_TIMEOUT", default_value = "300s", value_parser = parse_duration)]
    pub body_timeout: std::time::Duration,

    /// Longest a client may leave a response unread (the socket's send buffer full)
    /// before its connection is closed. `0` turns it off.
    #[arg(long, env = "PROGIMAGE_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: std::time::Duration,

    /// Most client connections open at once; past it the server stops accepting (new
    /// connections wait in the kernel's backlog) until one closes.
    #[arg(long, env = "PROGIMAGE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = at_least_one)]
    pub max_connections: usize,

    /// Longest a caller waits for one job on the work pool (a render, a decode); past it
    /// the request gets 504 `timeout`. The job keeps its worker until it ends: image
    /// code cannot be interrupted, so the pool stays bounded. `0` turns it off.
    #[arg(long, env = "PROGIMAGE_JOB_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub job_timeout: std::time::Duration,

    /// Remote fetches (`/fetch`, `{"url"}` uploads) running at once; more are refused
    /// with 503 `overloaded` before anything is downloaded.
    #[arg(long, env = "PROGIMAGE_FETCH_CONCURRENCY", default_value_t = 16, value_parser = at_least_one)]
    pub fetch_concurrency: usize,

    /// On SIGTERM, how long in-flight requests get to finish before the process exits
    /// anyway (still exit code 0). `0` waits without limit.
    #[arg(long, env = "PROGIMAGE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,

    /// Log format: `text` or `json`.
    #[arg(long, env = "PROGIMAGE_LOG_FORMAT", default_value = "text",
        value_parser = ["text", "json"])]
    pub log_format: String,
}

/// A count that must be at least 1 (`0` workers would run nothing).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of at least 1")),
    }
}

/// `90`, `90s`, `30m`, `12h` or `7d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

/// Access to the original bytes (`--originals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Originals {
    Public,
    Keys,
}

impl Config {
    /// A configuration with every default and the given data directory (for tests and
    /// embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        // Every default, and nothing from the `PROGIMAGE_*` environment: an embedding
        // program's (or a developer's shell's) settings must not leak into this config.
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command.get_matches_from(["progimage"]);
        let mut config = Config::from_arg_matches(&matches).expect("the defaults parse");
        config.data_dir = data_dir.into();
        config
    }

    /// True when originals live in a store other nodes share (a bucket), so variants
    /// are shared through it too.
    /// Empty secrets are no secrets: `PROGIMAGE_SIGNING_KEY=` (as a compose file writes an
    /// unset variable) leaves signing off instead of signing with an empty key anyone
    /// can compute, and empty entries of `PROGIMAGE_API_KEYS` are dropped.
    pub fn normalised(mut self) -> Self {
        if self
            .signing_key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            self.signing_key = None;
        }
        self.api_keys.retain(|k| !k.trim().is_empty());
        self
    }

    pub fn shared_store(&self) -> bool {
        self.store
            .as_deref()
            .is_some_and(|s| s.starts_with("s3://"))
    }

    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_for_embedding_ignores_the_environment() {
        // Set for this process only; no other test reads it.
        std::env::set_var("PROGIMAGE_QUEUE", "7");
        let config = Config::with_data_dir("/tmp/x");
        std::env::remove_var("PROGIMAGE_QUEUE");
        assert_eq!(config.queue, 64);
    }

    /// Values that cannot work stop start-up; empty secrets mean none.
    #[test]
    fn impossible_values_are_refused_and_empty_secrets_dropped() {
        let parse = |args: &[&str]| {
            let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
            let argv = std::iter::once("progimage").chain(args.iter().copied());
            command
                .try_get_matches_from(argv)
                .and_then(|m| Config::from_arg_matches(&m))
        };
        for bad in [
            &["--workers", "0"][..],
            &["--max-upload-bytes", "0"],
            &["--max-pixels", "0"],
            &["--store-timeout-secs", "0"],
            &["--log-format", "xml"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--workers", "1", "--log-format", "json"]).is_ok());
        let config = parse(&["--signing-key", "", "--api-keys", ",k1,"])
            .unwrap()
            .normalised();
        assert_eq!(config.signing_key, None);
        assert_eq!(config.api_keys, ["k1"]);
    }

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("h").is_err());
    }
}

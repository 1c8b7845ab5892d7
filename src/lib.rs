//! progimage: an image service. `main.rs` parses the configuration and calls [`serve`];
//! tests build the same [`app`] and serve it on 127.0.0.1:0.

pub mod config;
pub mod error;
pub mod fetch;
pub mod http;
pub mod imaging;
pub mod store;
pub mod telemetry;
pub mod work;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use config::Config;
use error::Error;
use imaging::DecodeLimits;
use store::{open_blob_store, ImageRepo, SingleFlight, VariantCache};
use telemetry::Telemetry;
use work::WorkPool;

/// Everything a request handler needs, shared by all of them.
pub struct AppState {
    pub config: Config,
    pub images: ImageRepo,
    pub variants: VariantCache,
    pub pool: WorkPool,
    pub telemetry: Telemetry,
    /// Renders in progress, keyed by image id and variant file name.
    pub renders: SingleFlight<String, Result<Bytes, Error>>,
    /// Uploads being validated and stored, keyed by image id.
    pub uploads: SingleFlight<String, Result<(axum::http::StatusCode, store::ImageMeta), Error>>,
    pub limits: DecodeLimits,
    pub presets: http::presets::Presets,
    pub rate_limit: http::rate_limit::RateLimit,
    pub stats: Stats,
    /// Remote image loading behind the private-address guard.
    pub fetcher: fetch::Fetcher,
}

/// Counters reported by `/status`.
pub struct Stats {
    started: Instant,
    uploaded: AtomicU64,
    errors: AtomicU64,
    images: AtomicU64,
}

impl Stats {
    pub fn record_upload(&self) {
        self.uploaded.fetch_add(1, Ordering::Relaxed);
        self.images.fetch_add(1, Ordering::Relaxed);
    }
    pub fn record_delete(&self) {
        let _ = self
            .images
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    pub fn images(&self) -> u64 {
        self.images.load(Ordering::Relaxed)
    }
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

impl AppState {
    /// Open storage and build the shared state.
    pub async fn new(config: Config) -> anyhow::Result<Arc<AppState>> {
        let timeout = Duration::from_secs(config.store_timeout_secs);
        let blobs = open_blob_store(config.store.as_deref(), &config.data_dir, timeout)?;
        let images = ImageRepo::new(blobs);
        let image_count = images.ids().await?.len() as u64;
        let cache_dir = config.data_dir.join("cache");
        let variants = tokio::task::spawn_blocking(move || VariantCache::open(cache_dir)).await??;
        let telemetry = Telemetry::default();
        let pool = WorkPool::new(config.worker_count(), config.queue, telemetry.clone());
        let fetcher = fetch::Fetcher::new(
            &config.fetch_allow,
            Duration::from_secs(config.fetch_timeout_secs),
            config.fetch_max_redirects,
            config.max_upload_bytes,
        )?;
        Ok(Arc::new(AppState {
            limits: DecodeLimits::for_pixels(config.max_pixels),
            presets: http::presets::Presets::parse(&config.presets, config.presets_only)?,
            rate_limit: http::rate_limit::RateLimit::new(config.rate_limit),
            config,
            images,
            variants,
            pool,
            telemetry,
            renders: SingleFlight::default(),
            uploads: SingleFlight::default(),
            fetcher,
            stats: Stats {
                started: Instant::now(),
                uploaded: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                images: AtomicU64::new(image_count),
            },
        }))
    }
}

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> axum::Router {
    http::router(state)
}

/// Serve until `shutdown` resolves, then stop accepting and let in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep_state = state.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep_state.telemetry.upkeep();
            upkeep_state.rate_limit.forget_idle();
        }
    });
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    result
}

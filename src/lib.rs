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
use sha2::Digest;

pub use config::Config;
use error::Error;
use imaging::DecodeLimits;
use store::{open_blob_store, CacheLimits, HotCache, ImageRepo, SingleFlight, VariantCache};
use telemetry::Telemetry;
use work::WorkPool;

/// Everything a request handler needs, shared by all of them.
pub struct AppState {
    pub config: Config,
    pub images: ImageRepo,
    pub variants: VariantCache,
    /// Originals recently rendered from, so concurrent renders of one image share one
    /// copy in memory instead of each reading (and holding) its own.
    pub originals: HotCache,
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
    /// Fetches running at once (`--fetch-concurrency`); a fetch past it is refused.
    pub fetch_slots: Arc<tokio::sync::Semaphore>,
    /// Upload bodies being read at once (workers + queue); an upload past it is refused.
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// This state itself, for work that must outlive the request that started it (a
    /// render's single-flight task, a delete's purge): see [`AppState::shared`].
    me: std::sync::Weak<AppState>,
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
        let config = config.normalised();
        let timeout = Duration::from_secs(config.store_timeout_secs);
        let blobs = open_blob_store(
            config.store.as_deref(),
            &config.store_options,
            &config.data_dir,
            timeout,
        )?;
        let images = ImageRepo::new(blobs.clone());
        let image_count = images.ids().await?.len() as u64;
        let cache_dir = config.data_dir.join("cache");
        let limits = CacheLimits {
            memory_bytes: config.hot_cache_bytes,
            disk_bytes: config.cache_max_bytes,
            ttl: config.variant_ttl,
        };
        // With a shared store (a bucket), renders are shared between nodes through it.
        let shared = config.shared_store().then_some(blobs);
        let variants =
            tokio::task::spawn_blocking(move || VariantCache::open(cache_dir, limits, shared))
                .await??;
        let telemetry = Telemetry::default();
        let pool = WorkPool::new(
            config.worker_count(),
            config.queue,
            config.job_timeout,
            telemetry.clone(),
        );
        let fetcher = fetch::Fetcher::new(
            &config.fetch_allow,
            Duration::from_secs(config.fetch_timeout_secs),
            config.fetch_max_redirects,
            config.max_upload_bytes,
        )?;
        let originals = HotCache::new(
            config.originals_cache_bytes,
            (config.originals_cache_bytes / 2) as usize,
        );
        let presets = http::presets::Presets::parse(&config.presets, config.presets_only)?;
        let fetch_slots = Arc::new(tokio::sync::Semaphore::new(config.fetch_concurrency));
        let upload_slots = Arc::new(tokio::sync::Semaphore::new(
            config.worker_count() + config.queue,
        ));
        let state = Arc::new_cyclic(|me| AppState {
            me: me.clone(),
            limits: DecodeLimits::for_pixels(config.max_pixels),
            presets,
            rate_limit: http::rate_limit::RateLimit::new(config.rate_limit),
            config,
            images,
            variants,
            originals,
            pool,
            telemetry,
            renders: SingleFlight::default(),
            uploads: SingleFlight::default(),
            fetch_slots,
            upload_slots,
            fetcher,
            stats: Stats {
                started: Instant::now(),
                uploaded: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                images: AtomicU64::new(image_count),
            },
        });
        tokio::spawn(cache_upkeep(Arc::downgrade(&state)));
        Ok(state)
    }
}

impl AppState {
    /// An owning handle to this state, for tasks spawned off a request.
    pub fn shared(&self) -> Arc<AppState> {
        self.me
            .upgrade()
            .expect("the state is alive while a request uses it")
    }
}

/// Name of the node-local copy of an original in its image's cache directory.
const ORIGINAL_COPY: &str = "original";

impl AppState {
    /// An original's bytes. With a bucket, this node's variant cache keeps a copy (in the
    /// image's cache directory, bounded and evicted like variants): an original never
    /// changes for its id, so renders of a hot image don't download it every time.
    pub async fn original(&self, id: &str) -> Result<Bytes, store::StoreError> {
        if let Some(bytes) = self.originals.get(id) {
            return Ok(bytes);
        }
        let bytes = self.load_original(id).await?;
        if !self.variants.is_deleted(id) {
            self.originals.insert(id, &bytes);
        }
        Ok(bytes)
    }

    async fn load_original(&self, id: &str) -> Result<Bytes, store::StoreError> {
        self.telemetry.original_loaded();
        if !self.config.shared_store() {
            return self.images.original(id).await;
        }
        if let Some(bytes) = self.variants.get_local(id, ORIGINAL_COPY).await? {
            // The copy is a cache file (not fsynced): its id says what it must hash to.
            let copy = bytes.clone();
            let expected = id.to_owned();
            let whole = self
                .pool
                .run(move || hex::encode(sha2::Sha256::digest(&copy)) == expected)
                .await
                .unwrap_or(false);
            if whole {
                return Ok(bytes);
            }
        }
        let bytes = self.images.original(id).await?;
        if let Err(e) = self
            .variants
            .put_local_copy(id, ORIGINAL_COPY, bytes.clone())
            .await
        {
            tracing::warn!(error = %e, id, "could not keep a local copy of an original");
        }
        Ok(bytes)
    }

    /// Drop everything this node holds for a deleted image: cached variants in every
    /// tier and its original in memory.
    pub async fn forget_image(&self, id: &str) -> Result<(), store::StoreError> {
        self.originals.remove(id);
        self.variants.remove_image(id).await
    }

    /// Copy the variant cache's sizes and eviction counts into the metrics.
    pub fn publish_cache_metrics(&self) {
        let evictions = &self.variants.evictions;
        self.telemetry.cache_state(
            self.variants.memory_bytes(),
            self.variants.total_bytes(),
            evictions.size.load(Ordering::Relaxed),
            evictions.ttl.load(Ordering::Relaxed),
        );
    }
}

/// Apply the variant TTL and publish cache sizes, for as long as the state lives.
async fn cache_upkeep(state: std::sync::Weak<AppState>) {
    let every = state
        .upgrade()
        .and_then(|s| s.config.variant_ttl)
        .map_or(Duration::from_secs(5), |ttl| {
            (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(5))
        });
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        if let Err(e) = state.variants.expire().await {
            tracing::warn!(error = %e, "could not expire variants");
        }
        state.publish_cache_metrics();
    }
}

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> axum::Router {
    http::router(state)
}

/// Serve until `shutdown` resolves, then stop accepting and let in-flight requests finish.
///
/// Our own accept loop over hyper's HTTP/1 builder rather than `axum::serve`, which has
/// no header read timeout: a client gets `header_timeout` to send its headers (and a
/// keep-alive connection may sit idle that long), and every request body gets the
/// `body_idle_timeout` (see [`http::body::with_body_timeouts`]). Handlers see the peer
/// address as `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.
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
    let header_timeout = state.config.header_timeout;
    let (body_idle, body_total) = (state.config.body_idle_timeout, state.config.body_timeout);
    let write_timeout = state.config.write_timeout;
    // One permit per open connection: at the cap the loop stops accepting, and new
    // connections wait in the kernel's backlog until one closes.
    let connections = Arc::new(tokio::sync::Semaphore::new(state.config.max_connections));
    let router = app(state.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let state = state.clone();
        let service = hyper::service::service_fn(move |mut req| {
            let router = router.clone();
            let state = state.clone();
            http::drop_unusable_request_id(req.headers_mut());
            async move {
                if let Some(response) = http::host_error(&req) {
                    return Ok(response);
                }
                // Hits in the memory tier skip the router (see `http::hot_hits`).
                if let Some(response) = http::hot_hits::answer(&state, &req).await {
                    return Ok::<_, std::convert::Infallible>(response);
                }
                let mut req = http::body::with_body_timeouts(req, body_idle, body_total);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let mut response = tower::ServiceExt::oneshot(router, req).await?;
                if response.status() == axum::http::StatusCode::NOT_MODIFIED {
                    // The router sizes HEAD answers from their (empty) body, which on a
                    // 304 would claim the representation is 0 bytes (RFC 9110 §8.6).
                    response
                        .headers_mut()
                        .remove(axum::http::header::CONTENT_LENGTH);
                }
                Ok(response)
            }
        });
        let io = http::client_connection::ClientConnection::new(stream, write_timeout);
        let connection =
            graceful.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let deadline = state.config.shutdown_timeout;
    if deadline.is_zero() {
        graceful.shutdown().await;
    } else if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = deadline.as_secs(),
            "shutdown deadline passed with requests still in flight; exiting anyway"
        );
    }
    upkeep.abort();
    Ok(())
}

/// Per-connection accept errors are the client's problem; others (out of file
/// descriptors) get a pause so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

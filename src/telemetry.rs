//! Prometheus metrics, one recorder per server instance (not a process-global one), so
//! several servers in one process — as in the tests — keep separate counts.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Latency buckets in seconds, from a cache hit to a slow render.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct Telemetry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// Request counter and histogram per (route, method, status), registered once: a
    /// lookup by hash instead of building label strings on every request.
    request_series: Arc<RwLock<HashMap<u64, (Counter, Histogram)>>>,
    /// Registered once for the same reason: every variant request counts one of them.
    cache_hits: Counter,
    cache_misses: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .expect("bucket list is non-empty")
            .build_recorder();
        let handle = recorder.handle();
        let (cache_hits, cache_misses) = metrics::with_local_recorder(&recorder, || {
            // Unlabelled counters exist from the start (at 0), so dashboards and alerts
            // see every series before its first event.
            for name in [
                "progimage_work_shed_total",
                "progimage_uploads_total",
                "progimage_bytes_in_total",
                "progimage_pixels_processed_total",
                "progimage_original_loads_total",
            ] {
                counter!(name).absolute(0);
            }
            (
                counter!("progimage_cache_hits_total"),
                counter!("progimage_cache_misses_total"),
            )
        });
        Telemetry {
            recorder: Arc::new(recorder),
            handle,
            request_series: Arc::default(),
            cache_hits,
            cache_misses,
        }
    }
}

impl Telemetry {
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drain histogram buffers; call periodically so an unscraped server stays bounded.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            (route, method, status).hash(&mut h);
            h.finish()
        };
        if let Some((requests, duration)) = self
            .request_series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            requests.increment(1);
            duration.record(seconds);
            return;
        }
        let (requests, duration) = {
            let (route, method, status) = (route.to_owned(), method.to_owned(), status.to_string());
            let series = self.with(|| {
                (
                    counter!("progimage_http_requests_total",
                        "route" => route.clone(), "method" => method, "status" => status.clone()),
                    histogram!("progimage_http_request_duration_seconds",
                        "route" => route, "status" => status),
                )
            });
            self.request_series
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, series.clone());
            series
        };
        requests.increment(1);
        duration.record(seconds);
    }

    pub fn decoded(&self, format: &'static str, seconds: f64, pixels: u64) {
        self.with(|| {
            histogram!("progimage_decode_seconds", "format" => format).record(seconds);
            counter!("progimage_pixels_processed_total").increment(pixels);
        });
    }

    pub fn bytes_in(&self, bytes: u64) {
        self.with(|| counter!("progimage_bytes_in_total").increment(bytes));
    }

    pub fn uploaded(&self) {
        self.with(|| counter!("progimage_uploads_total").increment(1));
    }

    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.increment(1);
        } else {
            self.cache_misses.increment(1);
        }
    }

    /// One variant rendered (decode + transform + encode).
    pub fn rendered(&self, format: &'static str) {
        self.with(|| counter!("progimage_renders_total", "format" => format).increment(1));
    }

    pub fn set_queue(&self, waiting: usize, running: usize) {
        self.with(|| {
            gauge!("progimage_work_queue_depth").set(waiting as f64);
            gauge!("progimage_work_in_flight").set(running as f64);
        });
    }

    /// The variant cache's size per tier and its evictions since start, by cause.
    pub fn cache_state(&self, memory: u64, disk: u64, evicted_size: u64, evicted_ttl: u64) {
        self.with(|| {
            gauge!("progimage_cache_bytes", "tier" => "memory").set(memory as f64);
            gauge!("progimage_cache_bytes", "tier" => "disk").set(disk as f64);
            counter!("progimage_cache_evictions_total", "reason" => "size").absolute(evicted_size);
            counter!("progimage_cache_evictions_total", "reason" => "ttl").absolute(evicted_ttl);
        });
    }

    /// An original read from the store (or this node's disk copy), not from memory.
    pub fn original_loaded(&self) {
        self.with(|| counter!("progimage_original_loads_total").increment(1));
    }

    /// A job refused because the work queue was full.
    pub fn shed(&self) {
        self.with(|| counter!("progimage_work_shed_total").increment(1));
    }
}

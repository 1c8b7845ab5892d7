//! Prometheus metrics, one recorder per server instance (not a process-global one), so
//! several servers in one process — as in the tests — keep separate counts.

use std::sync::Arc;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Latency buckets in seconds, from a cache hit to a slow render.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct Telemetry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Telemetry {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .expect("bucket list is non-empty")
            .build_recorder();
        let handle = recorder.handle();
        Telemetry {
            recorder: Arc::new(recorder),
            handle,
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
        let (route, method, status) = (route.to_owned(), method.to_owned(), status.to_string());
        self.with(|| {
            counter!("progimage_http_requests_total",
                "route" => route.clone(), "method" => method, "status" => status.clone())
            .increment(1);
            histogram!("progimage_http_request_duration_seconds",
                "route" => route, "status" => status)
            .record(seconds);
        });
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
        self.with(|| {
            if hit {
                counter!("progimage_cache_hits_total").increment(1);
            } else {
                counter!("progimage_cache_misses_total").increment(1);
            }
        });
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

    /// A job refused because the work queue was full.
    pub fn shed(&self) {
        self.with(|| counter!("progimage_work_shed_total").increment(1));
    }
}

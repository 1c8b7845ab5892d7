//! The bounded pool for CPU work (decode, resize, encode, hashing). At most `workers` jobs
//! run at once on tokio's blocking threads and at most `queue` more wait; past that a job
//! is refused at once with `overloaded` instead of piling up latency and memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::Error;
use crate::telemetry::Telemetry;

pub struct WorkPool {
    workers: Arc<Semaphore>,
    capacity: usize,
    /// How long a caller waits for its job once admitted (`None`: for ever).
    deadline: Option<std::time::Duration>,
    counts: Arc<Counts>,
    telemetry: Telemetry,
}

#[derive(Default)]
struct Counts {
    /// Jobs admitted and not yet finished (waiting + running).
    admitted: AtomicUsize,
    running: AtomicUsize,
}

/// Releases a job's admission when dropped, wherever the job ends (done, panicked, or
/// abandoned while queued), and keeps the queue gauges true.
struct Admission {
    counts: Arc<Counts>,
    telemetry: Telemetry,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
        publish(&self.counts, &self.telemetry);
    }
}

fn publish(counts: &Counts, telemetry: &Telemetry) {
    let admitted = counts.admitted.load(Ordering::SeqCst);
    let running = counts.running.load(Ordering::SeqCst);
    telemetry.set_queue(admitted.saturating_sub(running), running);
}

impl WorkPool {
    pub fn new(
        workers: usize,
        queue: usize,
        deadline: std::time::Duration,
        telemetry: Telemetry,
    ) -> Self {
        let workers = workers.max(1);
        WorkPool {
            workers: Arc::new(Semaphore::new(workers)),
            capacity: workers + queue,
            deadline: (!deadline.is_zero()).then_some(deadline),
            counts: Arc::default(),
            telemetry,
        }
    }

    /// Whether a job would be admitted now (checked before buffering an upload, so a
    /// full pool refuses at once instead of after the body has been read).
    pub fn has_room(&self) -> bool {
        self.counts.admitted.load(Ordering::SeqCst) < self.capacity
    }

    /// Run `job` on the pool, or fail with [`Error::Overloaded`] when the queue is full,
    /// or [`Error::Timeout`] when it has not finished (queued or running) by the
    /// deadline. A job that overruns keeps its worker until it ends (image code cannot
    /// be interrupted), so at most `workers` jobs ever run; only its caller stops waiting.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(deadline) = self.deadline else {
            return self.run_to_end(job).await;
        };
        tokio::time::timeout(deadline, self.run_to_end(job))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout(format!(
                    "the image job took longer than {} s",
                    deadline.as_secs_f64()
                )))
            })
    }

    async fn run_to_end<T, F>(&self, job: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.counts.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
            self.telemetry.shed();
            return Err(Error::Overloaded);
        }
        let admission = Admission {
            counts: self.counts.clone(),
            telemetry: self.telemetry.clone(),
        };
        publish(&self.counts, &self.telemetry);
        let permit = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("work pool closed".into()))?;
        let counts = self.counts.clone();
        let handle = tokio::task::spawn_blocking(move || {
            counts.running.fetch_add(1, Ordering::SeqCst);
            publish(&counts, &admission.telemetry);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            counts.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            drop(admission);
            result
        });
        match handle.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(Error::Internal("an image job panicked".into())),
        }
    }
}

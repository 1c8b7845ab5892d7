//! Single-flight: concurrent callers asking for the same key share one computation.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::future::{BoxFuture, FutureExt, Shared};

/// The shared answer of one flight: `None` when its task panicked or was aborted.
type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// Flights by key, each with the number that tells it from a later flight of that key.
type Flights<K, V> = Arc<Mutex<HashMap<K, (u64, Flight<V>)>>>;

pub struct SingleFlight<K, V> {
    in_flight: Flights<K, V>,
    next_flight: std::sync::atomic::AtomicU64,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            in_flight: Arc::default(),
            next_flight: Default::default(),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Run `work` for `key` unless a call for the same key is already running, in which
    /// case wait for and share its result. `work` is called only by the caller that
    /// starts the flight, and its future runs as a task of its own: a caller that goes
    /// away (a client disconnecting) neither cancels it nor makes the next caller start
    /// a second one. The entry is removed when the task ends, however it ends, so keys
    /// never pile up.
    ///
    /// `work` must make its result visible elsewhere (the variant cache) before
    /// returning, or a later caller will compute it again — harmless, just slower.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Option<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.join_or_start(key, work).await
    }

    fn join_or_start<F, Fut>(&self, key: K, work: F) -> Flight<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, flight)) = map.get(&key) {
            return flight.clone();
        }
        let number = self
            .next_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (send, answer) = tokio::sync::oneshot::channel();
        // A panic or an abort drops `send`: the waiters get `None`.
        let flight = answer.map(Result::ok).boxed().shared();
        map.insert(key.clone(), (number, flight.clone()));
        drop(map); // `Done` takes the lock: never spawn while holding it
        let done = Done {
            map: self.in_flight.clone(),
            key: Some(key),
            number,
        };
        let work = work();
        tokio::spawn(async move {
            let _done = done;
            let _ = send.send(work.await);
        });
        flight
    }

    /// Flights running now (for tests and gauges).
    pub fn len(&self) -> usize {
        self.in_flight.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes its flight's entry when the flight's task ends (returns, panics or is
/// aborted at shutdown), unless a newer flight took the key.
struct Done<K: Eq + Hash, V> {
    map: Flights<K, V>,
    key: Option<K>,
    number: u64,
}

impl<K: Eq + Hash, V> Drop for Done<K, V> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&key).is_some_and(|(n, _)| *n == self.number) {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_calls_share_one_run() {
        let flight = Arc::new(SingleFlight::<u32, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (flight, runs, barrier) = (flight.clone(), runs.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    flight
                        .run(7, || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            42
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Some(42));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flight.is_empty());
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_cancel_the_work() {
        let flight = Arc::new(SingleFlight::<u32, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let work = |runs: Arc<AtomicUsize>| {
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                7
            }
        };
        let leader = {
            let (flight, runs) = (flight.clone(), runs.clone());
            tokio::spawn(async move { flight.run(1, work(runs)).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        leader.abort(); // the first client disconnects
        assert_eq!(flight.run(1, work(runs.clone())).await, Some(7));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "the second caller joined the first run"
        );
        assert!(flight.is_empty(), "the entry is gone once the work ends");
    }

    #[tokio::test]
    async fn a_panicking_flight_answers_none_and_leaves_no_entry() {
        let flight = SingleFlight::<u32, u32>::default();
        let answer = flight.run(3, || async { panic!("boom") }).await;
        assert_eq!(answer, None);
        assert!(flight.is_empty());
    }
}

//! Running operations: the tasks of one measured iteration, their latencies
//! and their failures.

use super::*;

pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds")
}

/// Operations that failed in a cell, and the first one's error.
#[derive(Default)]
pub(super) struct Failures {
    pub(super) count: AtomicU64,
    pub(super) first: Mutex<Option<String>>,
}

impl Failures {
    pub(super) fn record(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(error);
    }

    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(super) fn first(&self) -> Option<String> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Runs `ops` operations of `workload` on `peer`, shared out among `tasks`
/// tasks, each recording the latencies of its successful operations into
/// its histogram (one per task, taken from and given back to
/// `histograms`) and counting its failed ones into `failures`. Returns the
/// wall time from the first spawn to the last task's end.
pub(super) async fn run(
    peer: &Peer,
    workload: Workload,
    tasks: usize,
    ops: u64,
    seed: u64,
    histograms: &mut Vec<Histogram<u64>>,
    failures: &Arc<Failures>,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (peer, next, failures) = (peer.clone(), next.clone(), failures.clone());
            let mut latencies = histograms.pop().unwrap_or_else(histogram);
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003) ^ task as u64);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < ops {
                    let id = rng.i32(1..=ROWS);
                    let started = Instant::now();
                    match peer.op(workload, id).await {
                        Ok(()) => {
                            let nanos =
                                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            latencies.saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
                        }
                        Err(error) => failures.record(error),
                    }
                }
                latencies
            })
        })
        .collect();
    for handle in handles {
        histograms.push(handle.await.expect("a bench task panicked"));
    }
    start.elapsed()
}

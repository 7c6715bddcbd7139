//! Statistics: what the pool counts and measures, and the [`Stats`] snapshot.
//!
//! Owns: the `Recorder` (counters and histograms the core writes) and the
//! serialisable snapshot types. It may not make pool decisions: nothing
//! synchronises through these counters, so they are plain `std` atomics and
//! stay outside the loom facade on purpose (modelling a thousand histogram
//! buckets would only slow the models down).
//!
//! Cost on the hot path: a get served at once bumps its slot's own checkout
//! counter (the slot's cache line is already owned by the borrower, and only
//! the owner writes it, so it is a load and a store, not an atomic
//! read-modify-write). Hold time is measured with the precise clock on one
//! checkout in `usage_sampling` (default 64) per slot, which keeps the
//! amortised clock cost under half a nanosecond. Everything else is recorded
//! on slow paths.

#[cfg(any(feature = "prometheus", feature = "metrics"))]
mod families;
pub(crate) mod health;
mod histogram;
#[cfg(feature = "metrics")]
mod metrics_export;
#[cfg(feature = "prometheus")]
mod prometheus;

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::health::{
    HealthFinding, HealthReport, HealthStatus, HealthSummary, HealthThresholds,
};
pub(crate) use self::histogram::AtomicHistogram;
pub use self::histogram::HistogramSnapshot;
pub use crate::pool::CloseReason;

/// A counter on its own cache line.
#[derive(Default)]
struct Counter(CachePadded<AtomicU64>);

impl Counter {
    #[inline]
    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the core records. One per pool.
#[derive(Default)]
pub(crate) struct Recorder {
    waited: Counter,
    timeouts: Counter,
    rejected_waiter_cap: Counter,
    rejected_closed: Counter,
    failed_fast: Counter,
    no_idle: Counter,
    created: Counter,
    connect_failures: Counter,
    validations: Counter,
    validation_failures: Counter,
    leaks: Counter,
    closed: [Counter; CloseReason::ALL.len()],
    pub(crate) histograms: Histograms,
}

/// The three latency histograms (boxed: about 4 KiB each).
pub(crate) struct Histograms {
    pub(crate) acquire: AtomicHistogram,
    pub(crate) usage: AtomicHistogram,
    pub(crate) connect: AtomicHistogram,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            acquire: AtomicHistogram::new(),
            usage: AtomicHistogram::new(),
            connect: AtomicHistogram::new(),
        }
    }
}

/// One event the core reports to the recorder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A get that waited and got a connection after `Duration`.
    Waited(u64),
    TimedOut,
    RejectedWaiterCap,
    RejectedClosed,
    NoIdle,
    /// A get failed at once because connecting is failing for good.
    FailedFast,
    /// A connect succeeded after this many nanoseconds.
    Created(u64),
    ConnectFailed,
    Validated {
        ok: bool,
    },
    Leak,
    Closed(CloseReason),
    /// A sampled hold time, nanoseconds.
    Held(u64),
}

impl Recorder {
    #[inline]
    pub(crate) fn record(&self, event: Event) {
        match event {
            Event::Waited(nanos) => {
                self.waited.add();
                self.histograms.acquire.record(nanos);
            }
            Event::TimedOut => self.timeouts.add(),
            Event::RejectedWaiterCap => self.rejected_waiter_cap.add(),
            Event::RejectedClosed => self.rejected_closed.add(),
            Event::NoIdle => self.no_idle.add(),
            Event::FailedFast => self.failed_fast.add(),
            Event::Created(nanos) => {
                self.created.add();
                self.histograms.connect.record(nanos);
            }
            Event::ConnectFailed => self.connect_failures.add(),
            Event::Validated { ok } => {
                self.validations.add();
                if !ok {
                    self.validation_failures.add();
                }
            }
            Event::Leak => self.leaks.add(),
            Event::Closed(reason) => self.closed[reason.index()].add(),
            Event::Held(nanos) => self.histograms.usage.record(nanos),
        }
    }

    /// The counters, given the checkouts summed over the slots (every get
    /// that was served, at once or after waiting).
    pub(crate) fn counters(&self, checkouts: u64) -> Counters {
        let waited = self.waited.get();
        let hits = checkouts.saturating_sub(waited);
        let timeouts = self.timeouts.get();
        let rejected = self.rejected_waiter_cap.get() + self.rejected_closed.get();
        let failed_fast = self.failed_fast.get();
        let no_idle = self.no_idle.get();
        Counters {
            gets: hits + waited + timeouts + rejected + no_idle + failed_fast,
            hits,
            waited,
            timeouts,
            rejected_waiter_cap: self.rejected_waiter_cap.get(),
            rejected_closed: self.rejected_closed.get(),
            failed_fast,
            no_idle,
            created: self.created.get(),
            connect_failures: self.connect_failures.get(),
            closed: CloseReason::ALL
                .iter()
                .map(|&reason| (reason, self.closed[reason.index()].get()))
                .collect(),
            validations: self.validations.get(),
            validation_failures: self.validation_failures.get(),
            leaks: self.leaks.get(),
        }
    }
}

/// Instantaneous counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Gauges {
    /// Connections open or being opened.
    pub total: u32,
    /// Idle connections.
    pub idle: u32,
    /// Connections checked out (or reserved by maintenance).
    pub in_use: u32,
    /// Connections being opened.
    pub connecting: u32,
    /// Callers waiting.
    pub waiting: u32,
    /// `max_size` in force.
    pub max: u32,
    /// `min_idle` in force.
    pub min_idle: u32,
}

/// Monotonic counters since the pool was built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Counters {
    /// Every `get`/`try_get` outcome:
    /// `hits + waited + timeouts + rejected + no_idle + failed_fast`.
    pub gets: u64,
    /// Gets served at once from an idle connection (pool hits).
    pub hits: u64,
    /// Gets that waited and were served.
    pub waited: u64,
    /// Gets that timed out.
    pub timeouts: u64,
    /// Gets refused because `max_waiters` callers already waited.
    pub rejected_waiter_cap: u64,
    /// Gets refused because the pool was closed.
    pub rejected_closed: u64,
    /// Gets failed at once with the connect error (permanent error, or
    /// `fail_fast_after` failures in a row with nothing open).
    pub failed_fast: u64,
    /// `try_get` calls that found nothing idle.
    pub no_idle: u64,
    /// Connections opened.
    pub created: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Connections closed, by reason (a JSON object keyed by reason).
    #[cfg_attr(feature = "serde", serde(serialize_with = "closed_as_map"))]
    pub closed: Vec<(CloseReason, u64)>,
    /// Validity checks run (checkout and keepalive).
    pub validations: u64,
    /// Validity checks that failed.
    pub validation_failures: u64,
    /// Connections held past the leak threshold.
    pub leaks: u64,
}

impl Counters {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(feature = "serde")]
fn closed_as_map<S: serde::Serializer>(
    closed: &[(CloseReason, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(closed.len()))?;
    for (reason, count) in closed {
        map.serialize_entry(reason.as_str(), count)?;
    }
    map.end()
}

/// A consistent-enough snapshot of the pool's statistics (each field is read
/// atomically; the fields are not read at one instant). Serialises to JSON.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// The pool's name.
    pub pool: String,
    /// Instantaneous counts.
    pub gauges: Gauges,
    /// Monotonic counters.
    pub counters: Counters,
    /// `hits / gets` (1.0 when there were no gets).
    pub hit_ratio: f64,
    /// `in_use / max` now.
    pub utilisation: f64,
    /// Time a get spent waiting (gets that waited).
    pub acquire_wait: HistogramSnapshot,
    /// Time a connection was held (sampled, see `usage_sampling`).
    pub usage: HistogramSnapshot,
    /// Time a successful connect took.
    pub connect_time: HistogramSnapshot,
}

impl Stats {
    pub(crate) fn assemble(
        pool: &str,
        gauges: Gauges,
        counters: Counters,
        recorder: &Recorder,
    ) -> Self {
        let hit_ratio = if counters.gets == 0 {
            1.0
        } else {
            counters.hits as f64 / counters.gets as f64
        };
        let utilisation = if gauges.max == 0 {
            0.0
        } else {
            f64::from(gauges.in_use) / f64::from(gauges.max)
        };
        Self {
            pool: pool.to_owned(),
            gauges,
            counters,
            hit_ratio,
            utilisation,
            acquire_wait: recorder.histograms.acquire.snapshot(),
            usage: recorder.histograms.usage.snapshot(),
            connect_time: recorder.histograms.connect.snapshot(),
        }
    }
}

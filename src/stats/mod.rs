//! Statistics: what the pool counts and measures, and the [`Stats`] snapshot.
//!
//! Owns: the `Recorder` (counters and histograms the core writes), the
//! vocabulary of what it records ([`Callback`]) and the serialisable
//! snapshot types. It may not make pool decisions: nothing
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
//!
//! Each latency is recorded twice: into a fine log-linear histogram
//! (`histogram.rs`, for percentiles and the health report) and into the
//! fixed exposition buckets (`buckets.rs`, [`LatencyBuckets`]), which are
//! chosen when the pool is built and never change while it runs, so that a
//! Prometheus histogram keeps one shape from the first scrape on.

mod buckets;
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

pub use self::buckets::{LatencyBuckets, LatencyBucketsError};
#[cfg(any(feature = "prometheus", feature = "metrics"))]
pub use self::families::MetricNames;
pub use self::health::{
    HealthFinding, HealthReport, HealthStatus, HealthSummary, HealthThresholds,
};
pub use self::histogram::HistogramSnapshot;
use self::histogram::LatencyHistogram;
#[cfg(feature = "prometheus")]
pub use self::prometheus::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
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
    validation_timeouts: Counter,
    closed: [Counter; CloseReason::ALL.len()],
    callback_panics: [Counter; Callback::ALL.len()],
    histograms: Histograms,
}

/// The three latency histograms (boxed: about 4 KiB each, plus the fixed
/// buckets).
struct Histograms {
    acquire: LatencyHistogram,
    usage: LatencyHistogram,
    connect: LatencyHistogram,
}

impl Histograms {
    fn new(buckets: &LatencyBuckets) -> Self {
        Self {
            acquire: LatencyHistogram::new(buckets.clone()),
            usage: LatencyHistogram::new(buckets.clone()),
            connect: LatencyHistogram::new(buckets.clone()),
        }
    }
}

/// A user callback, or a piece of the pool's own code, that can panic. The
/// pool catches such panics and counts them per callback
/// ([`Counters::callback_panics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Callback {
    /// [`Manager::connect`](crate::Manager::connect).
    Connect,
    /// [`Manager::is_valid`](crate::Manager::is_valid).
    IsValid,
    /// [`Manager::has_broken`](crate::Manager::has_broken).
    HasBroken,
    /// [`Manager::reset`](crate::Manager::reset).
    Reset,
    /// [`Manager::classify`](crate::Manager::classify).
    Classify,
    /// [`Manager::on_reconfigure`](crate::Manager::on_reconfigure).
    OnReconfigure,
    /// `PoolEvents::on_acquire`.
    OnAcquire,
    /// `PoolEvents::on_release`.
    OnRelease,
    /// `PoolEvents::on_create`.
    OnCreate,
    /// `PoolEvents::on_close`.
    OnClose,
    /// `PoolEvents::on_timeout`.
    OnTimeout,
    /// `PoolEvents::on_leak`.
    OnLeak,
    /// The closure given to [`Pool::retain`](crate::Pool::retain).
    Retain,
    /// Dropping a connection (its `Drop`, when the pool closes it).
    Close,
    /// One of the pool's internal background loops.
    Background,
}

impl Callback {
    /// Every callback, in a fixed order.
    pub const ALL: [Callback; 15] = [
        Callback::Connect,
        Callback::IsValid,
        Callback::HasBroken,
        Callback::Reset,
        Callback::Classify,
        Callback::OnReconfigure,
        Callback::OnAcquire,
        Callback::OnRelease,
        Callback::OnCreate,
        Callback::OnClose,
        Callback::OnTimeout,
        Callback::OnLeak,
        Callback::Retain,
        Callback::Close,
        Callback::Background,
    ];

    /// The snake_case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Callback::Connect => "connect",
            Callback::IsValid => "is_valid",
            Callback::HasBroken => "has_broken",
            Callback::Reset => "reset",
            Callback::Classify => "classify",
            Callback::OnReconfigure => "on_reconfigure",
            Callback::OnAcquire => "on_acquire",
            Callback::OnRelease => "on_release",
            Callback::OnCreate => "on_create",
            Callback::OnClose => "on_close",
            Callback::OnTimeout => "on_timeout",
            Callback::OnLeak => "on_leak",
            Callback::Retain => "retain",
            Callback::Close => "close",
            Callback::Background => "background",
        }
    }

    fn index(self) -> usize {
        self as usize
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
    /// A panic in this callback was caught.
    CallbackPanicked(Callback),
    /// A validity check was abandoned after `validation_timeout`. Counted on
    /// its own, not in `validations` (checks that returned).
    ValidationTimedOut,
}

impl Default for Recorder {
    /// A recorder with the default latency buckets.
    fn default() -> Self {
        Self::with_buckets(&LatencyBuckets::default())
    }
}

impl Recorder {
    /// A recorder whose three latency histograms are exposed with `buckets`
    /// (fixed for the recorder's life: a pool's histograms keep one shape).
    pub(crate) fn with_buckets(buckets: &LatencyBuckets) -> Self {
        Self {
            waited: Counter::default(),
            timeouts: Counter::default(),
            rejected_waiter_cap: Counter::default(),
            rejected_closed: Counter::default(),
            failed_fast: Counter::default(),
            no_idle: Counter::default(),
            created: Counter::default(),
            connect_failures: Counter::default(),
            validations: Counter::default(),
            validation_failures: Counter::default(),
            leaks: Counter::default(),
            validation_timeouts: Counter::default(),
            closed: Default::default(),
            callback_panics: Default::default(),
            histograms: Histograms::new(buckets),
        }
    }

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
            Event::CallbackPanicked(callback) => self.callback_panics[callback.index()].add(),
            Event::ValidationTimedOut => self.validation_timeouts.add(),
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
            validation_timeouts: self.validation_timeouts.get(),
            leaks: self.leaks.get(),
            callback_panics: Callback::ALL
                .iter()
                .map(|&callback| (callback, self.callback_panics[callback.index()].get()))
                .collect(),
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
    /// Validity checks abandoned after `validation_timeout` (the connection
    /// is closed as `Invalid`). Not in `validations`, which counts the checks
    /// that returned.
    pub validation_timeouts: u64,
    /// Connections held past the leak threshold.
    pub leaks: u64,
    /// Panics caught, by callback (a JSON object keyed by callback).
    #[cfg_attr(feature = "serde", serde(serialize_with = "callback_panics_as_map"))]
    pub callback_panics: Vec<(Callback, u64)>,
}

impl Counters {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Panics caught in `callback`.
    pub fn callback_panics(&self, callback: Callback) -> u64 {
        self.callback_panics
            .iter()
            .find(|(c, _)| *c == callback)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(feature = "serde")]
fn closed_as_map<S: serde::Serializer>(
    closed: &[(CloseReason, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(closed.iter().map(|(reason, n)| (reason.as_str(), n)))
}

#[cfg(feature = "serde")]
fn callback_panics_as_map<S: serde::Serializer>(
    panics: &[(Callback, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(panics.iter().map(|(callback, n)| (callback.as_str(), n)))
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
    /// Time a get spent waiting (gets that waited). Every
    /// [`HistogramSnapshot`] of one pool has the same
    /// [`cumulative_buckets`](HistogramSnapshot::cumulative_buckets) bounds,
    /// the pool's [`LatencyBuckets`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_counters_are_counted_apart_from_gets() {
        let recorder = Recorder::default();
        recorder.record(Event::Waited(1_000));
        recorder.record(Event::TimedOut);
        let before = recorder.counters(5);
        recorder.record(Event::CallbackPanicked(Callback::Reset));
        recorder.record(Event::CallbackPanicked(Callback::Reset));
        recorder.record(Event::CallbackPanicked(Callback::Background));
        recorder.record(Event::ValidationTimedOut);
        let after = recorder.counters(5);
        assert_eq!(after.gets, before.gets);
        assert_eq!(after.gets, 4 + 1 + 1, "hits + waited + timeouts");
        assert_eq!(after.callback_panics(Callback::Reset), 2);
        assert_eq!(after.callback_panics(Callback::Background), 1);
        assert_eq!(after.callback_panics(Callback::Connect), 0);
        assert_eq!(after.callback_panics.len(), Callback::ALL.len());
        assert_eq!(after.validation_timeouts, 1);
        assert_eq!((after.validations, after.validation_failures), (0, 0));
    }

    #[test]
    fn callback_names_are_distinct_and_in_index_order() {
        for (index, callback) in Callback::ALL.iter().enumerate() {
            assert_eq!(callback.index(), index);
            let name = callback.as_str();
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert_eq!(
                Callback::ALL.iter().filter(|c| c.as_str() == name).count(),
                1
            );
        }
    }

    #[test]
    fn every_histogram_has_the_recorders_buckets_from_the_start() {
        let buckets = LatencyBuckets::new([0.001, 0.1]).unwrap();
        let recorder = Recorder::with_buckets(&buckets);
        let stats = Stats::assemble("p", Gauges::default(), recorder.counters(0), &recorder);
        for histogram in [&stats.acquire_wait, &stats.usage, &stats.connect_time] {
            assert_eq!(histogram.cumulative_buckets, vec![(0.001, 0), (0.1, 0)]);
            assert_eq!(histogram.count, 0);
        }
        recorder.record(Event::Waited(2_000_000));
        recorder.record(Event::Held(500));
        recorder.record(Event::Created(5_000_000_000));
        let stats = Stats::assemble("p", Gauges::default(), recorder.counters(1), &recorder);
        assert_eq!(
            stats.acquire_wait.cumulative_buckets,
            vec![(0.001, 0), (0.1, 1)]
        );
        assert_eq!(stats.usage.cumulative_buckets, vec![(0.001, 1), (0.1, 1)]);
        assert_eq!(
            stats.connect_time.cumulative_buckets,
            vec![(0.001, 0), (0.1, 0)]
        );
        assert_eq!(stats.connect_time.count, 1, "in +Inf");
        assert_eq!(stats.connect_time.max, std::time::Duration::from_secs(5));
    }
}

//! Fixed latency buckets: the bounds a latency histogram is exposed with
//! ([`LatencyBuckets`], validated), and the lock-free counters that fill
//! them (`FixedHistogram`).
//!
//! Owns: the default bounds and why, their validation, and counting an
//! observation into its bucket. It may not know what it measures or how it
//! is rendered (`families.rs` and the exporters do that).
//!
//! # Why fixed buckets
//!
//! A Prometheus histogram is a set of cumulative counters, one series per
//! `le` bound. `rate()` and `histogram_quantile()` are only right when every
//! bound's series exists from the first scrape and never goes away: a series
//! that appears later, already carrying observations older than itself, is
//! read as a jump (or not at all) by `rate()`, and `histogram_quantile()`
//! over a time range then mixes two different bucket layouts. So every
//! latency histogram is exposed with one fixed list of bounds, the same on
//! every scrape, zero or not, always followed by `+Inf`.
//!
//! The bounds are fixed when the pool is built and cannot change while it
//! runs (a histogram whose shape changed would break the same queries).
//! The fine-grained log-linear histogram (`histogram.rs`) is kept beside
//! them for the percentiles of [`HistogramSnapshot`](super::HistogramSnapshot)
//! and the health report: both are recorded on every observation.
//!
//! # The default bounds
//!
//! [`LatencyBuckets::DEFAULT_BOUNDS`], in seconds: `0.0001, 0.00025, 0.0005,
//! 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10`,
//! sixteen bounds and `+Inf` for each of the three connection latencies
//! (acquire wait, hold time, connect time).
//!
//! - **The progression** is 1, 2.5, 5 per decade, the one Prometheus'
//!   client libraries use for their default buckets (client_golang's
//!   `DefBuckets` is `0.005 .. 10` with the same steps): neighbours are at
//!   most 2.5 times apart, so `histogram_quantile`'s linear interpolation
//!   inside a bucket is off by less than the bucket's width, and three
//!   buckets a decade keep the series count small (17 per histogram and
//!   pool, 51 for the three).
//! - **Down to 100 µs**, two decades below those defaults: a wait served by
//!   a hand-off from another thread, a hold around one query on an embedded
//!   or local database, and a connect to SQLite or over a Unix socket all
//!   take well under a millisecond; with `DefBuckets` they would all fall
//!   into the first bucket and say nothing.
//! - **Up to 10 s**: `connection_timeout` defaults to 30 s, but a wait or a
//!   connect of more than ten seconds is an outage, not a latency to
//!   interpolate; it is counted in `+Inf`, and its exact value is in
//!   `Stats` (`max`, the percentiles) and in the health report. A service
//!   that needs more resolution there adds bounds (up to
//!   [`LatencyBuckets::MAX_BOUNDS`]).
//!
//! The peers give no better default. OpenTelemetry's semantic conventions
//! for `db.client.connection.create_time`, `wait_time` and `use_time` define
//! the instruments and their unit (seconds) but advise no bucket
//! boundaries, so an SDK falls back to the specification's generic default
//! (`0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500,
//! 10000`), which was made for milliseconds: in seconds, everything under
//! five seconds lands in one bucket. HikariCP's metrics go
//! through Micrometer as timers, which publish no buckets at all unless a
//! percentile histogram is switched on for them, and then Micrometer's own
//! set of dozens of generated buckets, clamped by the timer's minimum and
//! maximum expected values; neither is a small fixed list to copy.
//!
//! # Resolution
//!
//! Observations are whole nanoseconds; each bound is rounded to the nearest
//! nanosecond once, at validation, and an observation is counted in the
//! first bucket whose bound it does not exceed (`le` is inclusive: a wait of
//! exactly 1 ms counts in `le="0.001"`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The bounds, in seconds, of the fixed buckets a latency histogram is
/// exposed with: ascending, each counted cumulatively, with an implicit
/// `+Inf` after the last.
///
/// Fixed when the pool is built: the same bounds are written on every
/// scrape from the first, zero or not, so `rate()` and
/// `histogram_quantile()` work over any range. They cannot change while the
/// pool runs. [`Default`] is [`LatencyBuckets::DEFAULT_BOUNDS`] (the module
/// documentation says why).
///
/// ```
/// use slotpool::stats::LatencyBuckets;
///
/// let buckets = LatencyBuckets::new([0.001, 0.01, 0.1, 1.0]).unwrap();
/// assert_eq!(buckets.bounds(), &[0.001, 0.01, 0.1, 1.0]);
/// assert_eq!(LatencyBuckets::default().bounds(), &LatencyBuckets::DEFAULT_BOUNDS);
/// let error = LatencyBuckets::new([0.01, 0.001]).unwrap_err();
/// assert_eq!(error.rule(), "increasing");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "Vec<f64>", into = "Vec<f64>")
)]
pub struct LatencyBuckets {
    /// The bounds as given, seconds.
    bounds: Box<[f64]>,
    /// The same, rounded to whole nanoseconds (what `record` compares).
    limits: Box<[u64]>,
}

impl LatencyBuckets {
    /// The default bounds, seconds: 1, 2.5 and 5 per decade from 100 µs to
    /// 10 s.
    pub const DEFAULT_BOUNDS: [f64; 16] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ];

    /// The most bounds a histogram may have (each is one series per pool).
    pub const MAX_BOUNDS: usize = 64;

    /// Validates `bounds` (seconds): at least one and at most
    /// [`MAX_BOUNDS`](Self::MAX_BOUNDS), each finite and positive, between
    /// 1 ns and `u64::MAX` ns once rounded to whole nanoseconds, and strictly
    /// increasing at that resolution. `+Inf` is implicit: do not list it.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Result<Self, LatencyBucketsError> {
        let bounds: Box<[f64]> = bounds.into_iter().collect();
        if bounds.is_empty() {
            return Err(LatencyBucketsError::Empty);
        }
        if bounds.len() > Self::MAX_BOUNDS {
            return Err(LatencyBucketsError::TooMany {
                count: bounds.len(),
            });
        }
        let mut limits = Vec::with_capacity(bounds.len());
        for (index, &bound) in bounds.iter().enumerate() {
            if !bound.is_finite() {
                return Err(LatencyBucketsError::NotFinite { index, bound });
            }
            if bound <= 0.0 {
                return Err(LatencyBucketsError::NotPositive { index, bound });
            }
            let nanos = (bound * 1e9).round();
            // u64::MAX as f64 rounds up to 2^64, which does not fit.
            if nanos < 1.0 || nanos >= u64::MAX as f64 {
                return Err(LatencyBucketsError::OutOfRange { index, bound });
            }
            let limit = nanos as u64;
            if limits.last().is_some_and(|&previous| limit <= previous) {
                return Err(LatencyBucketsError::NotIncreasing {
                    index,
                    bound,
                    previous: bounds[index - 1],
                });
            }
            limits.push(limit);
        }
        Ok(Self {
            bounds,
            limits: limits.into_boxed_slice(),
        })
    }

    /// As [`new`](Self::new), from durations (exact to the nanosecond).
    pub fn from_durations(
        bounds: impl IntoIterator<Item = Duration>,
    ) -> Result<Self, LatencyBucketsError> {
        Self::new(bounds.into_iter().map(|bound| bound.as_secs_f64()))
    }

    /// The bounds, seconds, ascending (without the implicit `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BOUNDS).expect("the default bounds are valid")
    }
}

impl TryFrom<Vec<f64>> for LatencyBuckets {
    type Error = LatencyBucketsError;

    fn try_from(bounds: Vec<f64>) -> Result<Self, Self::Error> {
        Self::new(bounds)
    }
}

impl From<LatencyBuckets> for Vec<f64> {
    fn from(buckets: LatencyBuckets) -> Self {
        buckets.bounds.into_vec()
    }
}

/// Why a list of bounds is not valid [`LatencyBuckets`]; each variant is
/// one rule, named by [`rule`](Self::rule). Indices count from 0.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LatencyBucketsError {
    /// No bound was given (rule `non_empty`).
    Empty,
    /// More than [`LatencyBuckets::MAX_BOUNDS`] bounds (rule `at_most_64`).
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// A bound is NaN or infinite; `+Inf` is implicit (rule `finite`).
    NotFinite {
        /// Its position.
        index: usize,
        /// The bound.
        bound: f64,
    },
    /// A bound is zero or negative (rule `positive`).
    NotPositive {
        /// Its position.
        index: usize,
        /// The bound.
        bound: f64,
    },
    /// A bound rounds to less than 1 ns or to more than `u64::MAX` ns
    /// (rule `nanosecond_range`).
    OutOfRange {
        /// Its position.
        index: usize,
        /// The bound.
        bound: f64,
    },
    /// A bound is not greater than the one before it, compared at
    /// nanosecond resolution (rule `increasing`).
    NotIncreasing {
        /// Its position.
        index: usize,
        /// The bound.
        bound: f64,
        /// The bound before it.
        previous: f64,
    },
}

impl LatencyBucketsError {
    /// The rule broken: `non_empty`, `at_most_64`, `finite`, `positive`,
    /// `nanosecond_range` or `increasing`.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Empty => "non_empty",
            Self::TooMany { .. } => "at_most_64",
            Self::NotFinite { .. } => "finite",
            Self::NotPositive { .. } => "positive",
            Self::OutOfRange { .. } => "nanosecond_range",
            Self::NotIncreasing { .. } => "increasing",
        }
    }
}

impl fmt::Display for LatencyBucketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("latency buckets: at least one bound is needed"),
            Self::TooMany { count } => write!(
                f,
                "latency buckets: {count} bounds given, at most {} allowed",
                LatencyBuckets::MAX_BOUNDS
            ),
            Self::NotFinite { index, bound } => write!(
                f,
                "latency bucket bound #{index} ({bound}) must be finite (+Inf is implicit)"
            ),
            Self::NotPositive { index, bound } => write!(
                f,
                "latency bucket bound #{index} ({bound}) must be positive (seconds)"
            ),
            Self::OutOfRange { index, bound } => write!(
                f,
                "latency bucket bound #{index} ({bound} s) must be between 1 ns and \
                 {} s",
                u64::MAX as f64 / 1e9
            ),
            Self::NotIncreasing {
                index,
                bound,
                previous,
            } => write!(
                f,
                "latency bucket bound #{index} ({bound}) must be greater than the one before \
                 it ({previous}) at nanosecond resolution"
            ),
        }
    }
}

impl std::error::Error for LatencyBucketsError {}

/// Counts observations (nanoseconds) into fixed buckets: one relaxed atomic
/// counter per bound plus one for `+Inf`. Recording is a binary search over
/// at most 64 bounds and one `fetch_add`: no lock, no allocation. The sum
/// and the maximum are kept by the fine-grained histogram recorded beside
/// it; the count is the sum of the buckets, so the `+Inf` bucket and
/// `_count` always agree.
pub(crate) struct FixedHistogram {
    buckets: LatencyBuckets,
    /// One per bound, then `+Inf`. Not cumulative.
    counts: Box<[AtomicU64]>,
}

impl FixedHistogram {
    pub(crate) fn new(buckets: LatencyBuckets) -> Self {
        let counts = (0..=buckets.limits.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Self { buckets, counts }
    }

    /// Counts one observation in the first bucket whose bound it does not
    /// exceed, or in `+Inf`.
    #[inline]
    pub(crate) fn record(&self, nanos: u64) {
        let bucket = self.buckets.limits.partition_point(|&limit| limit < nanos);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Every bound (seconds) with its cumulative count, ascending, and the
    /// total (the `+Inf` bucket). Counts never decrease from one call to the
    /// next.
    pub(crate) fn snapshot(&self) -> (Vec<(f64, u64)>, u64) {
        let mut cumulative = 0u64;
        let buckets = self
            .buckets
            .bounds
            .iter()
            .zip(self.counts.iter())
            .map(|(&bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        let overflow = self.counts[self.counts.len() - 1].load(Ordering::Relaxed);
        (buckets, cumulative + overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_are_valid_and_sixteen() {
        let buckets = LatencyBuckets::default();
        assert_eq!(buckets.bounds().len(), 16);
        assert_eq!(buckets.limits[0], 100_000);
        assert_eq!(buckets.limits[3], 1_000_000);
        assert_eq!(buckets.limits[15], 10_000_000_000);
    }

    #[test]
    fn each_rule_is_named() {
        let rule = |bounds: &[f64]| LatencyBuckets::new(bounds.iter().copied()).unwrap_err();
        assert_eq!(rule(&[]), LatencyBucketsError::Empty);
        assert_eq!(rule(&[1.0; 65]).rule(), "at_most_64");
        assert_eq!(rule(&[0.1, f64::NAN]).rule(), "finite", "NaN is not finite");
        assert_eq!(rule(&[f64::INFINITY]).rule(), "finite");
        assert_eq!(
            rule(&[0.1, -1.0]),
            LatencyBucketsError::NotPositive {
                index: 1,
                bound: -1.0
            }
        );
        assert_eq!(rule(&[0.0]).rule(), "positive");
        assert_eq!(rule(&[1e-10]).rule(), "nanosecond_range");
        assert_eq!(rule(&[1e11]).rule(), "nanosecond_range");
        assert_eq!(
            rule(&[0.5, 0.5]),
            LatencyBucketsError::NotIncreasing {
                index: 1,
                bound: 0.5,
                previous: 0.5
            }
        );
        // Distinct as floats, equal once rounded to nanoseconds.
        assert_eq!(rule(&[1e-6, 1.0000000001e-6]).rule(), "increasing");
        assert!(
            rule(&[0.2, 0.1])
                .to_string()
                .contains("bound #1 (0.1) must be greater than the one before it (0.2)")
        );
        assert_eq!(
            LatencyBuckets::new([1.0; 64].into_iter().scan(0.0, |s, _| {
                *s += 1.0;
                Some(*s)
            }))
            .unwrap()
            .bounds()
            .len(),
            64
        );
    }

    #[test]
    fn observations_land_in_the_first_bound_they_do_not_exceed() {
        let histogram = FixedHistogram::new(LatencyBuckets::new([0.001, 0.01]).unwrap());
        let (buckets, total) = histogram.snapshot();
        assert_eq!(buckets, vec![(0.001, 0), (0.01, 0)]);
        assert_eq!(total, 0);
        for nanos in [0, 1_000_000, 1_000_001, 10_000_000, 10_000_001, u64::MAX] {
            histogram.record(nanos);
        }
        let (buckets, total) = histogram.snapshot();
        assert_eq!(buckets, vec![(0.001, 2), (0.01, 4)]);
        assert_eq!(total, 6);
    }

    #[test]
    fn durations_are_exact() {
        let buckets =
            LatencyBuckets::from_durations([Duration::from_micros(250), Duration::from_secs(3)])
                .unwrap();
        assert_eq!(buckets.bounds(), &[0.00025, 3.0]);
        assert_eq!(&*buckets.limits, &[250_000, 3_000_000_000]);
    }
}

//! A lock-free log-linear histogram of durations in nanoseconds, and the
//! latency histogram the recorder keeps: that one plus the fixed exposition
//! buckets of `buckets.rs`, recorded together.
//!
//! Owns: the fine bucket layout, recording, percentile extraction and the
//! [`HistogramSnapshot`]. It may not know what it measures, nor choose the
//! exposition bounds (`buckets.rs` does).
//!
//! Written here rather than taken from `hdrhistogram`: that crate's
//! `Histogram` needs `&mut self` to record (so a mutex, or its channel-based
//! `SyncHistogram`, which allocates per recorder), and recording must take no
//! lock and allocate nothing. Layout: values below 16 ns get exact buckets;
//! above that, each power of two is split into 8 linear sub-buckets, so a
//! reported percentile is within 12.5% of the true value (the bucket
//! precision tests assert against). 496 buckets cover the whole `u64` range.
//!
//! These fine buckets are for percentiles only; they are not exposed as
//! Prometheus buckets, because the set of non-empty ones grows as new
//! latencies are seen, and an exposed histogram must keep one shape (see
//! `buckets.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::buckets::{FixedHistogram, LatencyBuckets};

const EXACT: usize = 16;
const SUB_BITS: u32 = 3;
const SUBS: usize = 1 << SUB_BITS;
const BUCKETS: usize = EXACT + (64 - 4) * SUBS;

/// Concurrent histogram: `record` is a few relaxed atomic operations.
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

/// The bucket a value falls in.
fn bucket_of(value: u64) -> usize {
    if value < EXACT as u64 {
        return value as usize;
    }
    let octave = 63 - value.leading_zeros(); // >= 4
    let sub = (value >> (octave - SUB_BITS)) as usize & (SUBS - 1);
    EXACT + (octave as usize - 4) * SUBS + sub
}

/// The largest value that falls in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    if bucket < EXACT {
        return bucket as u64;
    }
    let octave = (bucket - EXACT) / SUBS + 4;
    let sub = ((bucket - EXACT) % SUBS) as u64;
    let shift = octave as u32 - SUB_BITS;
    // ((8 + sub + 1) << shift) - 1, saturating at the top octave.
    (SUBS as u64 + sub + 1)
        .checked_shl(shift)
        .map_or(u64::MAX, |bound| bound.wrapping_sub(1))
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value (nanoseconds).
    #[inline]
    pub(crate) fn record(&self, nanos: u64) {
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(nanos, Ordering::Relaxed);
        if nanos > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(nanos, Ordering::Relaxed);
        }
    }

    /// A snapshot with the usual percentiles.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        let percentile = |fraction: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((fraction * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (bucket, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_nanos(upper_bound(bucket).min(max));
                }
            }
            Duration::from_nanos(max)
        };
        HistogramSnapshot {
            count,
            sum: Duration::from_nanos(self.sum.load(Ordering::Relaxed)),
            p50: percentile(0.50),
            p95: percentile(0.95),
            p99: percentile(0.99),
            p999: percentile(0.999),
            max: Duration::from_nanos(max),
            cumulative_buckets: Vec::new(),
            buckets: counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(bucket, &n)| (Duration::from_nanos(upper_bound(bucket)), n))
                .collect(),
        }
    }
}

/// One latency histogram as the recorder keeps it: the fine histogram for
/// percentiles and the fixed exposition buckets, each observation recorded
/// in both (a few more relaxed atomic adds, on slow paths only).
pub(crate) struct LatencyHistogram {
    fine: AtomicHistogram,
    fixed: FixedHistogram,
}

impl LatencyHistogram {
    pub(crate) fn new(buckets: LatencyBuckets) -> Self {
        Self {
            fine: AtomicHistogram::new(),
            fixed: FixedHistogram::new(buckets),
        }
    }

    /// Records one value (nanoseconds).
    #[inline]
    pub(crate) fn record(&self, nanos: u64) {
        self.fine.record(nanos);
        self.fixed.record(nanos);
    }

    /// The fine snapshot, with the fixed buckets; its `count` is theirs, so
    /// that the `+Inf` bucket and `_count` of an exposition always agree.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut snapshot = self.fine.snapshot();
        let (cumulative, count) = self.fixed.snapshot();
        snapshot.cumulative_buckets = cumulative;
        snapshot.count = count;
        snapshot
    }
}

/// Percentiles of one histogram (each within 12.5% of the true value), and
/// its fixed exposition buckets. Serialises durations as seconds (`f64`), as
/// dashboards expect.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HistogramSnapshot {
    /// Values recorded (the `+Inf` bucket of
    /// [`cumulative_buckets`](Self::cumulative_buckets)). Read a moment
    /// apart from the fine buckets, so while values are being recorded it
    /// may differ from the sum of [`buckets`](Self::buckets) by the few
    /// recorded in between.
    pub count: u64,
    /// Their sum.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub sum: Duration,
    /// Median.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub p50: Duration,
    /// 95th percentile.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub p95: Duration,
    /// 99th percentile.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub p99: Duration,
    /// 99.9th percentile.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub p999: Duration,
    /// Largest value recorded (exact).
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub max: Duration,
    /// The fine histogram's non-empty buckets as (upper bound, count, not
    /// cumulative), ascending: what the percentiles are computed from. Their
    /// set grows as new latencies are seen, so they are not exposed as
    /// Prometheus buckets. Not serialised.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub buckets: Vec<(Duration, u64)>,
    /// The fixed exposition buckets: every configured bound
    /// ([`LatencyBuckets`]), in seconds, with the count of values at or
    /// below it (cumulative), ascending, zero or not. The same bounds on
    /// every snapshot of a pool; the implicit `+Inf` bucket is
    /// [`count`](Self::count). Serialised as `[[bound, count], ...]`.
    pub cumulative_buckets: Vec<(f64, u64)>,
}

#[cfg(feature = "serde")]
fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bounded() {
        for value in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            1000,
            123_456_789,
            u64::MAX / 2,
            u64::MAX,
        ] {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS, "{value}");
            assert!(upper_bound(bucket) >= value, "{value}");
            if bucket > 0 {
                assert!(upper_bound(bucket - 1) < value, "{value}");
            }
        }
    }

    #[test]
    fn percentiles_within_bucket_precision() {
        let histogram = AtomicHistogram::new();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 1000);
        let close = |got: Duration, want_micros: u64| {
            let want = want_micros as f64 * 1000.0;
            let got = got.as_nanos() as f64;
            assert!(got >= want && got <= want * 1.125, "{got} vs {want}");
        };
        close(snapshot.p50, 500);
        close(snapshot.p99, 990);
        assert_eq!(snapshot.max, Duration::from_millis(1));
    }
}

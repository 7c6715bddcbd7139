//! Prometheus (text format 0.0.4) and OpenMetrics text expositions of
//! [`Stats`] snapshots (feature `prometheus`), encoded by `prometheus-client`.
//!
//! Owns: turning the families of `families.rs` into a `prometheus-client`
//! [`Collector`] and choosing the encoder. It may not read the pool: it
//! renders snapshots.
//!
//! # Why prometheus-client, and what it does not do
//!
//! The pool computes its own snapshot, so nothing is registered as a live
//! metric: one [`Collector`] encodes the snapshot's families on each render,
//! counters with `ConstCounter`, gauges with `ConstGauge` and histograms with
//! `MetricEncoder::encode_histogram` (which takes per-bucket counts and
//! accumulates them; the `+Inf` bucket is passed explicitly, since the
//! OpenMetrics encoder does not add it). The crate then owns the formats:
//! escaping of label values and (Prometheus) help texts, `_total` on
//! counters, the unit suffix and `# UNIT` line, `# EOF`. Both formats come
//! from the one collector, so they cannot disagree.
//!
//! What it does differently from the hand-written text this replaced, all
//! of it valid for Prometheus' parser:
//!
//! - floats are written by `dtoa`: an empty histogram's `_sum` is `0.0`
//!   rather than `0`, and very small or large sums use an exponent
//!   (`1.5e-8`); `le` bounds are written as Go's client does (`0.0001`,
//!   `1`, `2.5`), so series match those of Go services;
//! - the collector must be `'static`, so each render clones the snapshots it
//!   is given (a few kilobytes per pool, once per scrape);
//! - the OpenMetrics encoder writes help texts unescaped and puts `le`
//!   before the pool label; our help texts contain no backslash or line
//!   feed (a test checks), and label order carries no meaning;
//! - no `_created` series (optional in OpenMetrics).
//!
//! The costs: the feature now compiles 15 more crates (prometheus-client,
//! its derive macro and so `syn`, `parking_lot`, `dtoa`, `itoa`; 25 in all
//! instead of 10), and a render of two pools takes about 42 µs for 17 KB
//! (release build, the 2-core VM), against 12 µs for the 9 KB the
//! hand-written text produced with only its non-empty buckets: nothing, once
//! per scrape.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit as ClientUnit};

use super::families::{Family, Kind, MetricNames, Samples, Unit, families, flat};
use super::{HistogramSnapshot, Stats};

/// The `Content-Type` of [`Stats::to_prometheus`]'s text.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of [`Stats::to_openmetrics`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Stats {
    /// The snapshot in the Prometheus text exposition format (0.0.4): every
    /// family with its `# HELP` and `# TYPE` lines, every sample labelled
    /// `pool="<name>"`. Serve it with [`PROMETHEUS_CONTENT_TYPE`]
    /// (`text/plain; version=0.0.4`).
    ///
    /// Names follow HikariCP's Micrometer metrics with the `slotpool_` prefix, so
    /// dashboards built for `hikaricp_connections_*` carry over by renaming
    /// ([`render_prometheus_with`](Self::render_prometheus_with) offers
    /// OpenTelemetry's names instead):
    ///
    /// | family | type | HikariCP |
    /// |--------|------|----------|
    /// | `slotpool_connections` | gauge | `hikaricp_connections` |
    /// | `slotpool_connections_active` | gauge | `hikaricp_connections_active` |
    /// | `slotpool_connections_idle` | gauge | `hikaricp_connections_idle` |
    /// | `slotpool_connections_pending` | gauge | `hikaricp_connections_pending` |
    /// | `slotpool_connections_connecting` | gauge | |
    /// | `slotpool_connections_max` | gauge | `hikaricp_connections_max` |
    /// | `slotpool_connections_min` | gauge | `hikaricp_connections_min` |
    /// | `slotpool_connections_gets_total` | counter | |
    /// | `slotpool_connections_hits_total` | counter | |
    /// | `slotpool_connections_waited_total` | counter | |
    /// | `slotpool_connections_timeout_total` | counter | `hikaricp_connections_timeout_total` |
    /// | `slotpool_connections_rejected_total{reason}` | counter | |
    /// | `slotpool_connections_no_idle_total` | counter | |
    /// | `slotpool_connections_created_total` | counter | |
    /// | `slotpool_connections_connect_failures_total` | counter | |
    /// | `slotpool_connections_closed_total{reason}` | counter | |
    /// | `slotpool_connections_validations_total` | counter | |
    /// | `slotpool_connections_validation_failures_total` | counter | |
    /// | `slotpool_connections_validation_timeouts_total` | counter | |
    /// | `slotpool_connections_leaked_total` | counter | |
    /// | `slotpool_callback_panics_total{callback}` | counter | |
    /// | `slotpool_connections_acquire_seconds` | histogram | `hikaricp_connections_acquire_seconds` |
    /// | `slotpool_connections_usage_seconds` | histogram | `hikaricp_connections_usage_seconds` |
    /// | `slotpool_connections_creation_seconds` | histogram | `hikaricp_connections_creation_seconds` |
    ///
    /// `slotpool_connections_rejected_total`'s reasons are `waiter_cap` (refused by
    /// `max_waiters`), `closed` (the pool was closed) and `fail_fast` (failed at
    /// once with the connect error while connecting keeps failing); the
    /// `slotpool_connections_closed_total` reasons are [`CloseReason::as_str`](super::CloseReason::as_str),
    /// and the `slotpool_callback_panics_total` callbacks are
    /// [`Callback::as_str`](super::Callback::as_str). Every label value is
    /// written, zero or not.
    ///
    /// Every sample carries a `pool` label. The histograms' `le` buckets are
    /// the pool's fixed [`LatencyBuckets`](super::LatencyBuckets) (by default
    /// 1, 2.5 and 5 per decade from 100 µs to 10 s), every one written on
    /// every scrape, zero or not, then `+Inf`: a histogram keeps one shape
    /// from the first scrape on, so `rate()` and `histogram_quantile()` are
    /// right over any range. `slotpool_connections_acquire_seconds` covers
    /// the gets that waited (a get served at once from an idle connection
    /// takes no measurable time and is counted only in
    /// `slotpool_connections_hits_total`).
    ///
    #[cfg_attr(
        not(feature = "loom"),
        doc = r##"
```
# use slotpool::{Manager, Pool};
# struct Noop;
# impl Manager for Noop {
#     type Connection = ();
#     type Error = std::io::Error;
#     fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
#     fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> { Ok(()) }
#     fn has_broken(&self, _: &mut ()) -> bool { false }
# }
let pool = Pool::builder().pool_name("orders").max_size(4).build(Noop).unwrap();
drop(pool.get().unwrap());
let text = pool.stats().to_prometheus();
assert!(text.contains("# TYPE slotpool_connections_active gauge"));
assert!(text.contains("slotpool_connections_max{pool=\"orders\"} 4\n"));
assert!(text.contains("slotpool_connections_gets_total{pool=\"orders\"} 1\n"));
assert!(text.contains("slotpool_connections_usage_seconds_bucket{pool=\"orders\",le=\"0.0001\"} "));
```
"##
    )]
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.to_prometheus_into(&mut out);
        out
    }

    /// Appends [`to_prometheus`](Self::to_prometheus)'s text to `out`.
    ///
    /// The output is one complete exposition for this pool, `# HELP` and
    /// `# TYPE` lines included, so appending a second pool's this way repeats
    /// them, which Prometheus rejects. To expose several pools in one scrape,
    /// use [`Stats::render_prometheus`], which writes each family once with
    /// every pool's samples under it.
    pub fn to_prometheus_into(&self, out: &mut String) {
        Self::render_prometheus(std::slice::from_ref(self), out);
    }

    /// Appends one exposition of several pools' snapshots to `out`: each
    /// family's `# HELP` and `# TYPE` lines once, then the samples of every
    /// pool (told apart by their `pool` label). Nothing is written for an
    /// empty slice. Pool names should differ, or the series collide.
    pub fn render_prometheus(pools: &[Stats], out: &mut String) {
        Self::render_prometheus_with(pools, MetricNames::Hikari, out);
    }

    /// As [`render_prometheus`](Self::render_prometheus), with the names of
    /// `names`. In the text formats, dots become underscores, seconds get
    /// `_seconds` and counters `_total`; an OpenTelemetry UpDownCounter is a
    /// gauge. The pool's label is `pool` (HikariCP) or
    /// `db_client_connection_pool_name` (OpenTelemetry); the other labels:
    ///
    /// | [`MetricNames::Hikari`] | [`MetricNames::OpenTelemetry`] (as exposed) | OpenTelemetry instrument | type |
    /// |---|---|---|---|
    /// | `slotpool_connections_idle`, `slotpool_connections_active` | `db_client_connection_count{db_client_connection_state="idle"\|"used"}` | `db.client.connection.count` (UpDownCounter, `{connection}`) | gauge |
    /// | `slotpool_connections` (idle + in use + connecting) | | | gauge |
    /// | `slotpool_connections_max` | `db_client_connection_idle_max` (`max_size`: every connection may be idle) | `db.client.connection.idle.max` (UpDownCounter) | gauge |
    /// | `slotpool_connections_min` | `db_client_connection_idle_min` | `db.client.connection.idle.min` (UpDownCounter) | gauge |
    /// | `slotpool_connections_max` | `db_client_connection_max` | `db.client.connection.max` (UpDownCounter) | gauge |
    /// | `slotpool_connections_pending` | `db_client_connection_pending_requests` | `db.client.connection.pending_requests` (UpDownCounter, `{request}`) | gauge |
    /// | `slotpool_connections_timeout_total` | `db_client_connection_timeouts_total` | `db.client.connection.timeouts` (Counter, `{timeout}`) | counter |
    /// | `slotpool_connections_creation_seconds` | `db_client_connection_create_time_seconds` | `db.client.connection.create_time` (Histogram, `s`) | histogram |
    /// | `slotpool_connections_acquire_seconds` | `db_client_connection_wait_time_seconds` (gets that waited) | `db.client.connection.wait_time` (Histogram, `s`) | histogram |
    /// | `slotpool_connections_usage_seconds` | `db_client_connection_use_time_seconds` (sampled) | `db.client.connection.use_time` (Histogram, `s`) | histogram |
    /// | `slotpool_connections_connecting` | `slotpool_connection_connecting` | `slotpool.connection.connecting` | gauge |
    /// | `slotpool_connections_gets_total` | `slotpool_connection_gets_total` | `slotpool.connection.gets` | counter |
    /// | `slotpool_connections_hits_total` | `slotpool_connection_hits_total` | `slotpool.connection.hits` | counter |
    /// | `slotpool_connections_waited_total` | `slotpool_connection_waited_total` | `slotpool.connection.waited` | counter |
    /// | `slotpool_connections_rejected_total{reason}` | `slotpool_connection_rejected_total{slotpool_reason}` | `slotpool.connection.rejected` | counter |
    /// | `slotpool_connections_no_idle_total` | `slotpool_connection_no_idle_total` | `slotpool.connection.no_idle` | counter |
    /// | `slotpool_connections_created_total` | `slotpool_connection_created_total` | `slotpool.connection.created` | counter |
    /// | `slotpool_connections_connect_failures_total` | `slotpool_connection_connect_failures_total` | `slotpool.connection.connect_failures` | counter |
    /// | `slotpool_connections_closed_total{reason}` | `slotpool_connection_closed_total{slotpool_reason}` | `slotpool.connection.closed` | counter |
    /// | `slotpool_connections_validations_total` | `slotpool_connection_validations_total` | `slotpool.connection.validations` | counter |
    /// | `slotpool_connections_validation_failures_total` | `slotpool_connection_validation_failures_total` | `slotpool.connection.validation_failures` | counter |
    /// | `slotpool_connections_validation_timeouts_total` | `slotpool_connection_validation_timeouts_total` | `slotpool.connection.validation_timeouts` | counter |
    /// | `slotpool_connections_leaked_total` | `slotpool_connection_leaked_total` | `slotpool.connection.leaked` | counter |
    /// | `slotpool_callback_panics_total{callback}` | `slotpool_callback_panics_total{slotpool_callback}` | `slotpool.callback.panics` | counter |
    ///
    /// The OpenTelemetry conventions are of development status (semantic
    /// conventions 1.26 and later); the figures they do not cover keep the
    /// pool's own names under the `slotpool.` namespace, with namespaced
    /// attributes, as the conventions ask of library-specific metrics.
    /// `db.client.connection.wait_time`, like HikariCP's acquire time here,
    /// is recorded for the gets that waited only.
    #[cfg_attr(
        not(feature = "loom"),
        doc = r##"
```
# use slotpool::{Manager, Pool, Stats};
# use slotpool::stats::MetricNames;
# struct Noop;
# impl Manager for Noop {
#     type Connection = ();
#     type Error = std::io::Error;
#     fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
#     fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> { Ok(()) }
#     fn has_broken(&self, _: &mut ()) -> bool { false }
# }
let pool = Pool::builder().pool_name("orders").max_size(4).build(Noop).unwrap();
drop(pool.get().unwrap());
let mut text = String::new();
Stats::render_prometheus_with(&[pool.stats()], MetricNames::OpenTelemetry, &mut text);
assert!(text.contains("# TYPE db_client_connection_count gauge\n"));
assert!(text.contains(
    "db_client_connection_count{db_client_connection_pool_name=\"orders\",\
     db_client_connection_state=\"idle\"} 1\n"
));
assert!(text.contains("# TYPE db_client_connection_wait_time_seconds histogram\n"));
```
"##
    )]
    pub fn render_prometheus_with(pools: &[Stats], names: MetricNames, out: &mut String) {
        render(pools, names, Format::Prometheus, out);
    }

    /// The snapshot in the OpenMetrics text format (1.0): the families of
    /// [`to_prometheus`](Self::to_prometheus), with OpenMetrics' spelling
    /// (counter families named without `_total` in `# TYPE`, their samples
    /// with it; `# UNIT` lines for the histograms), ending with `# EOF`.
    /// Serve it with [`OPENMETRICS_CONTENT_TYPE`].
    pub fn to_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        Self::render_openmetrics(std::slice::from_ref(self), &mut out);
        out
    }

    /// Appends one OpenMetrics exposition of several pools' snapshots to
    /// `out`, each family once, ending with `# EOF` (only `# EOF` for an
    /// empty slice). Names as [`render_prometheus`](Self::render_prometheus).
    pub fn render_openmetrics(pools: &[Stats], out: &mut String) {
        Self::render_openmetrics_with(pools, MetricNames::Hikari, out);
    }

    /// As [`render_openmetrics`](Self::render_openmetrics), with the names of
    /// `names` (the table is on
    /// [`render_prometheus_with`](Self::render_prometheus_with)).
    pub fn render_openmetrics_with(pools: &[Stats], names: MetricNames, out: &mut String) {
        render(pools, names, Format::OpenMetrics, out);
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Prometheus,
    OpenMetrics,
}

fn render(pools: &[Stats], names: MetricNames, format: Format, out: &mut String) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshots {
        pools: pools.to_vec(),
        names,
    }));
    let written = match format {
        Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(out, &registry),
    };
    // Writing to a String cannot fail, nor can the collector: it only
    // passes on the writer's errors.
    debug_assert!(written.is_ok(), "encoding into a String failed");
}

/// Several pools' snapshots as one `prometheus-client` collector.
#[derive(Debug)]
struct Snapshots {
    pools: Vec<Stats>,
    names: MetricNames,
}

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let per_pool: Vec<Vec<Family<'_>>> = self
            .pools
            .iter()
            .map(|stats| families(stats, self.names))
            .collect();
        let Some(first) = per_pool.first() else {
            return Ok(());
        };
        let pool_label = flat(self.names.pool_label());
        for (index, family) in first.iter().enumerate() {
            let name = flat(family.name);
            let unit = family.unit.map(|Unit::Seconds| ClientUnit::Seconds);
            let mut metric = encoder.encode_descriptor(
                &name,
                family.help,
                unit.as_ref(),
                metric_type(family.kind),
            )?;
            for (stats, families) in self.pools.iter().zip(&per_pool) {
                let pool = (pool_label.as_ref(), stats.pool.as_str());
                encode_samples(&mut metric, &families[index], pool)?;
            }
        }
        Ok(())
    }
}

fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Gauge => MetricType::Gauge,
        Kind::Counter => MetricType::Counter,
        Kind::Histogram => MetricType::Histogram,
    }
}

/// One pool's samples of one family.
fn encode_samples(
    metric: &mut MetricEncoder<'_>,
    family: &Family<'_>,
    pool: (&str, &str),
) -> fmt::Result {
    match &family.samples {
        Samples::Values(values) => {
            for (label, value) in values {
                let label = label.map(|(key, value)| (flat(key), value));
                let mut labels = vec![pool];
                if let Some((key, value)) = &label {
                    labels.push((key.as_ref(), value));
                }
                let encoder = metric.encode_family(&labels)?;
                match family.kind {
                    Kind::Counter => ConstCounter::new(*value).encode(encoder)?,
                    Kind::Gauge | Kind::Histogram => ConstGauge::new(*value).encode(encoder)?,
                }
            }
            Ok(())
        }
        Samples::Histogram(snapshot) => {
            let (buckets, count) = per_bucket(snapshot);
            let labels = [pool];
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(snapshot.sum.as_secs_f64(), count, &buckets, None)
        }
    }
}

/// The snapshot's cumulative buckets as the per-bucket counts the encoder
/// wants, `+Inf` included, and the total (the `+Inf` cumulative count, so
/// that `_count` always equals it).
fn per_bucket(snapshot: &HistogramSnapshot) -> (Vec<(f64, u64)>, u64) {
    let mut previous = 0u64;
    let mut buckets: Vec<(f64, u64)> = snapshot
        .cumulative_buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let count = cumulative.saturating_sub(previous);
            previous = previous.max(cumulative);
            (bound, count)
        })
        .collect();
    let overflow = snapshot.count.saturating_sub(previous);
    buckets.push((f64::INFINITY, overflow));
    (buckets, previous + overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cumulative: &[(f64, u64)], count: u64) -> HistogramSnapshot {
        HistogramSnapshot {
            count,
            cumulative_buckets: cumulative.to_vec(),
            ..HistogramSnapshot::default()
        }
    }

    #[test]
    fn buckets_are_passed_per_bucket_with_inf() {
        let (buckets, count) = per_bucket(&snapshot(&[(0.1, 2), (1.0, 2), (10.0, 5)], 7));
        assert_eq!(
            buckets,
            vec![(0.1, 2), (1.0, 0), (10.0, 3), (f64::INFINITY, 2)]
        );
        assert_eq!(count, 7);
        // An inconsistent hand-made snapshot still has +Inf == _count.
        let (buckets, count) = per_bucket(&snapshot(&[(0.1, 4)], 3));
        assert_eq!(buckets, vec![(0.1, 4), (f64::INFINITY, 0)]);
        assert_eq!(count, 4);
    }

    #[test]
    fn help_texts_need_no_escaping() {
        // The OpenMetrics encoder writes help texts as they are.
        let stats = Stats {
            pool: "p".to_owned(),
            gauges: Default::default(),
            counters: Default::default(),
            hit_ratio: 1.0,
            utilisation: 0.0,
            acquire_wait: Default::default(),
            usage: Default::default(),
            connect_time: Default::default(),
        };
        for names in [MetricNames::Hikari, MetricNames::OpenTelemetry] {
            for family in families(&stats, names) {
                assert!(!family.help.contains(['\\', '\n']), "{}", family.name);
            }
        }
    }

    #[test]
    fn prometheus_text_is_the_crate_format() {
        let stats = Stats {
            pool: "a\\b\"c\nd".to_owned(),
            gauges: Default::default(),
            counters: Default::default(),
            hit_ratio: 1.0,
            utilisation: 0.0,
            acquire_wait: snapshot(&[(0.001, 1), (0.01, 1)], 2),
            usage: Default::default(),
            connect_time: Default::default(),
        };
        let text = stats.to_prometheus();
        assert!(text.starts_with(
            "# HELP slotpool_connections Connections open or being opened.\n\
             # TYPE slotpool_connections gauge\n\
             slotpool_connections{pool=\"a\\\\b\\\"c\\nd\"} 0\n"
        ));
        assert!(text.contains(
            "slotpool_connections_acquire_seconds_bucket{pool=\"a\\\\b\\\"c\\nd\",le=\"0.001\"} 1\n\
             slotpool_connections_acquire_seconds_bucket{pool=\"a\\\\b\\\"c\\nd\",le=\"0.01\"} 1\n\
             slotpool_connections_acquire_seconds_bucket{pool=\"a\\\\b\\\"c\\nd\",le=\"+Inf\"} 2\n\
             slotpool_connections_acquire_seconds_sum{pool=\"a\\\\b\\\"c\\nd\"} 0.0\n\
             slotpool_connections_acquire_seconds_count{pool=\"a\\\\b\\\"c\\nd\"} 2\n"
        ));
        let open = stats.to_openmetrics();
        assert!(open.ends_with("# EOF\n"));
        assert!(open.contains("# UNIT slotpool_connections_acquire_seconds seconds\n"));
        let mut none = String::new();
        Stats::render_openmetrics(&[], &mut none);
        assert_eq!(none, "# EOF\n");
    }
}

//! Publishing a [`Stats`] snapshot through the `metrics` crate facade
//! (feature `metrics`), so that any installed recorder, such as
//! `metrics-exporter-prometheus`, exposes the pool's figures.
//!
//! Owns: the mapping from the metric families (see `families.rs`: the same
//! names, help texts and labels as the Prometheus text) to facade calls. It
//! may not read the pool or keep state: each call publishes one snapshot.
//!
//! - gauges: `gauge!(name, "pool" => ..).set(value)`;
//! - counters: `counter!(name, "pool" => .., ..).absolute(value)`, since the
//!   pool already keeps the running totals;
//! - histograms: the facade's histograms want raw samples, which the pool
//!   does not keep, so each latency histogram is published as a summary:
//!   gauges `<name>{quantile="0.5"|"0.95"|"0.99"|"0.999"}` in seconds, a
//!   gauge `<name>_sum` in seconds, a counter `<name>_count`, and a gauge
//!   `<name>_max` in seconds (as HikariCP's Micrometer `_max`).

use metrics::{Label, Unit};

use super::families::{Kind, Samples, families};
use super::{HistogramSnapshot, Stats};

impl Stats {
    /// Records this snapshot through the `metrics` facade (feature
    /// `metrics`). Call it periodically, or before each scrape, with a fresh
    /// [`Pool::stats`](crate::Pool::stats); with no recorder installed it does
    /// nothing.
    ///
    /// The names, help texts and labels are those of
    /// [`to_prometheus`](Self::to_prometheus). Gauges are set; counters are
    /// set to the pool's running totals with `absolute`. The facade's
    /// histograms want raw samples, which the pool does not keep, so each
    /// latency histogram is published as a summary: gauges
    /// `<name>{quantile="0.5"|"0.95"|"0.99"|"0.999"}`, a gauge `<name>_sum`
    /// and a gauge `<name>_max` (as HikariCP's Micrometer `_max`), all in
    /// seconds, and a counter `<name>_count`.
    ///
    /// ```ignore
    /// metrics_exporter_prometheus::PrometheusBuilder::new().install()?;
    /// loop {
    ///     pool.stats().publish_metrics();
    ///     std::thread::sleep(std::time::Duration::from_secs(10));
    /// }
    /// ```
    pub fn publish_metrics(&self) {
        let pool = || Label::new("pool", self.pool.clone());
        let with = |extra: Option<(&'static str, &'static str)>| -> Vec<Label> {
            let mut labels = vec![pool()];
            if let Some((key, value)) = extra {
                labels.push(Label::new(key, value));
            }
            labels
        };
        for family in families(self) {
            let name = family.name;
            match (&family.samples, family.kind) {
                (Samples::Values(values), Kind::Counter) => {
                    metrics::describe_counter!(name, Unit::Count, family.help);
                    for (label, value) in values {
                        metrics::counter!(name, with(*label)).absolute(*value);
                    }
                }
                (Samples::Values(values), _) => {
                    metrics::describe_gauge!(name, Unit::Count, family.help);
                    for (label, value) in values {
                        metrics::gauge!(name, with(*label)).set(*value as f64);
                    }
                }
                (Samples::Histogram(snapshot), _) => {
                    publish_summary(name, family.help, snapshot, pool)
                }
            }
        }
    }
}

/// Publishes one latency histogram as quantile gauges, `_sum`, `_count` and
/// `_max`.
fn publish_summary(
    name: &'static str,
    help: &'static str,
    snapshot: &HistogramSnapshot,
    pool: impl Fn() -> Label,
) {
    metrics::describe_gauge!(name, Unit::Seconds, help);
    for (quantile, value) in [
        ("0.5", snapshot.p50),
        ("0.95", snapshot.p95),
        ("0.99", snapshot.p99),
        ("0.999", snapshot.p999),
    ] {
        metrics::gauge!(name, vec![pool(), Label::new("quantile", quantile)])
            .set(value.as_secs_f64());
    }
    let suffixed = |suffix: &str| format!("{name}{suffix}");
    metrics::gauge!(suffixed("_sum"), vec![pool()]).set(snapshot.sum.as_secs_f64());
    metrics::counter!(suffixed("_count"), vec![pool()]).absolute(snapshot.count);
    metrics::gauge!(suffixed("_max"), vec![pool()]).set(snapshot.max.as_secs_f64());
}

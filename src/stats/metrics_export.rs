//! Publishing a [`Stats`] snapshot through the `metrics` crate facade
//! (feature `metrics`), so that any installed recorder, such as
//! `metrics-exporter-prometheus`, exposes the pool's figures.
//!
//! Owns: the mapping from the metric families (see `families.rs`: the same
//! names, help texts and labels as the Prometheus text, in either
//! [`MetricNames`] scheme) to facade calls. It may not read the pool or keep
//! state: each call publishes one snapshot.
//!
//! - gauges: `gauge!(name, "pool" => ..).set(value)`;
//! - counters: `counter!(name, "pool" => .., ..).absolute(value)`, since the
//!   pool already keeps the running totals;
//! - histograms: the facade's histograms want raw samples, which the pool
//!   does not keep, so each latency histogram is published as a summary:
//!   gauges `<name>{quantile="0.5"|"0.95"|"0.99"|"0.999"}` in seconds, a
//!   gauge `<name>_sum` in seconds, a counter `<name>_count`, and a gauge
//!   `<name>_max` in seconds (as HikariCP's Micrometer `_max`).
//!
//! With [`MetricNames::Hikari`] the names are the Prometheus text's
//! (`slotpool_connections_gets_total`, `slotpool_connections_acquire_seconds`)
//! and the pool's label is `pool`. With [`MetricNames::OpenTelemetry`] they
//! are the semantic conventions' dotted names, which are the facade's own
//! style (`db.client.connection.count`, `db.client.connection.wait_time`,
//! a summary's parts as `db.client.connection.wait_time.sum` and so on),
//! the unit given by `describe_*`, and the pool's label is
//! `db.client.connection.pool.name`; a Prometheus recorder turns the dots
//! into underscores itself.

use metrics::{Label, Unit};

use super::families::{Family, Kind, MetricNames, Samples, families};
use super::{HistogramSnapshot, Stats};

impl Stats {
    /// Records this snapshot through the `metrics` facade (feature
    /// `metrics`), with HikariCP-style names. Call it periodically, or
    /// before each scrape, with a fresh [`Pool::stats`](crate::Pool::stats);
    /// with no recorder installed it does nothing.
    ///
    /// The names, help texts and labels are those of `to_prometheus`
    /// (feature `prometheus`). Gauges are set; counters are
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
        self.publish_metrics_with(MetricNames::Hikari);
    }

    /// As [`publish_metrics`](Self::publish_metrics), with the names of
    /// `names`. [`MetricNames::OpenTelemetry`] publishes the semantic
    /// conventions' dotted names as they are (`db.client.connection.count`
    /// with `db.client.connection.state` = `idle` | `used`,
    /// `db.client.connection.timeouts`, ...; the table is on
    /// `Stats::render_prometheus_with`), labelled
    /// `db.client.connection.pool.name`; a histogram's summary parts are
    /// `<name>.sum`, `<name>.count` and `<name>.max`.
    pub fn publish_metrics_with(&self, names: MetricNames) {
        let pool = || Label::new(names.pool_label(), self.pool.clone());
        let with = |extra: Option<(&'static str, &'static str)>| -> Vec<Label> {
            let mut labels = vec![pool()];
            if let Some((key, value)) = extra {
                labels.push(Label::new(key, value));
            }
            labels
        };
        for family in families(self, names) {
            let name = facade_name(&family, names);
            match (&family.samples, family.kind) {
                (Samples::Values(values), Kind::Counter) => {
                    metrics::describe_counter!(name.clone(), Unit::Count, family.help);
                    for (label, value) in values {
                        metrics::counter!(name.clone(), with(*label)).absolute(*value);
                    }
                }
                (Samples::Values(values), _) => {
                    metrics::describe_gauge!(name.clone(), Unit::Count, family.help);
                    for (label, value) in values {
                        metrics::gauge!(name.clone(), with(*label)).set(*value as f64);
                    }
                }
                (Samples::Histogram(snapshot), _) => {
                    let separator = match names {
                        MetricNames::Hikari => "_",
                        MetricNames::OpenTelemetry => ".",
                    };
                    publish_summary(&name, separator, family.help, snapshot, pool)
                }
            }
        }
    }
}

/// The name a family is published under: the exposed name for HikariCP's
/// scheme, the dotted one for OpenTelemetry's.
fn facade_name(family: &Family<'_>, names: MetricNames) -> String {
    match names {
        MetricNames::Hikari => family.full_name(),
        MetricNames::OpenTelemetry => family.name.to_owned(),
    }
}

/// Publishes one latency histogram as quantile gauges, `_sum`, `_count` and
/// `_max` (or `.sum`, `.count`, `.max`).
fn publish_summary(
    name: &str,
    separator: &str,
    help: &'static str,
    snapshot: &HistogramSnapshot,
    pool: impl Fn() -> Label,
) {
    metrics::describe_gauge!(name.to_owned(), Unit::Seconds, help);
    for (quantile, value) in [
        ("0.5", snapshot.p50),
        ("0.95", snapshot.p95),
        ("0.99", snapshot.p99),
        ("0.999", snapshot.p999),
    ] {
        metrics::gauge!(
            name.to_owned(),
            vec![pool(), Label::new("quantile", quantile)]
        )
        .set(value.as_secs_f64());
    }
    let suffixed = |suffix: &str| format!("{name}{separator}{suffix}");
    metrics::gauge!(suffixed("sum"), vec![pool()]).set(snapshot.sum.as_secs_f64());
    metrics::counter!(suffixed("count"), vec![pool()]).absolute(snapshot.count);
    metrics::gauge!(suffixed("max"), vec![pool()]).set(snapshot.max.as_secs_f64());
}

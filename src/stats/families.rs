//! The metric families a [`Stats`] snapshot is exported as: names, help
//! texts, types, units and labels, in two naming schemes ([`MetricNames`]).
//!
//! Owns: those lists. The Prometheus and OpenMetrics text (feature
//! `prometheus`) and the `metrics` facade export (feature `metrics`) all
//! render them, so they cannot drift apart. It may not read the pool: it
//! describes a snapshot.
//!
//! Names are kept in their base form, as OpenMetrics and prometheus-client
//! want them: without the `_total` of a counter and without the unit, which
//! the encoder appends (`slotpool_connections_gets` + counter is exposed as
//! `slotpool_connections_gets_total`; `slotpool_connections_acquire` + seconds
//! as `slotpool_connections_acquire_seconds`). OpenTelemetry names are
//! dotted, as the semantic conventions spell them; the text exporters turn
//! dots into underscores.

use std::borrow::Cow;

use super::{Callback, CloseReason, HistogramSnapshot, Stats};

/// Which names the exporters use.
///
/// `Stats::render_prometheus_with` (feature `prometheus`) has the table of
/// both; `Stats::publish_metrics_with` (feature `metrics`) publishes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MetricNames {
    /// HikariCP's Micrometer names with the `slotpool_` prefix
    /// (`slotpool_connections_active`, ...) and a `pool` label: the default,
    /// so that dashboards built for `hikaricp_connections_*` carry over.
    #[default]
    Hikari,
    /// OpenTelemetry's semantic conventions for database client connection
    /// pools (`db.client.connection.*`, development status, semantic
    /// conventions 1.26 and later), every series with a
    /// `db.client.connection.pool.name` attribute; the figures the
    /// conventions do not cover under `slotpool.*`.
    OpenTelemetry,
}

impl MetricNames {
    /// The label (attribute) that carries the pool's name.
    pub(super) fn pool_label(self) -> &'static str {
        match self {
            MetricNames::Hikari => "pool",
            MetricNames::OpenTelemetry => "db.client.connection.pool.name",
        }
    }

    fn pick(self, hikari: &'static str, open_telemetry: &'static str) -> &'static str {
        match self {
            MetricNames::Hikari => hikari,
            MetricNames::OpenTelemetry => open_telemetry,
        }
    }
}

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A value that goes up and down (an OpenTelemetry UpDownCounter is
    /// exposed as one).
    Gauge,
    /// A monotonic total.
    Counter,
    /// A latency histogram.
    Histogram,
}

/// The unit appended to an exposed name; `None` for counts (OpenTelemetry's
/// `{connection}`-style annotations are dropped in Prometheus names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Seconds,
}

/// The samples of one family for one pool.
pub(super) enum Samples<'a> {
    /// Plain values, each with at most one label besides the pool's.
    Values(Vec<(Option<(&'static str, &'static str)>, u64)>),
    /// A latency histogram in nanoseconds, rendered in seconds.
    Histogram(&'a HistogramSnapshot),
}

/// One metric family of one pool.
pub(super) struct Family<'a> {
    /// Base name: no `_total`, no unit; dotted for OpenTelemetry.
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: Kind,
    pub(super) unit: Option<Unit>,
    pub(super) samples: Samples<'a>,
}

impl Family<'_> {
    /// The name as HikariCP-style exporters and Prometheus show it: the
    /// base name, then the unit, then `_total` for a counter; dots become
    /// underscores.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) fn full_name(&self) -> String {
        let mut name = flat(self.name).into_owned();
        if self.unit == Some(Unit::Seconds) {
            name.push_str("_seconds");
        }
        if self.kind == Kind::Counter {
            name.push_str("_total");
        }
        name
    }
}

/// A name or label key in Prometheus' character set: dots become
/// underscores (`db.client.connection.count` -> `db_client_connection_count`).
pub(super) fn flat(name: &str) -> Cow<'_, str> {
    if name.contains('.') {
        Cow::Owned(name.replace('.', "_"))
    } else {
        Cow::Borrowed(name)
    }
}

fn value<'a>(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: impl Into<u64>,
) -> Family<'a> {
    Family {
        name,
        help,
        kind,
        unit: None,
        samples: Samples::Values(vec![(None, value.into())]),
    }
}

fn labelled<'a>(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    values: Vec<(Option<(&'static str, &'static str)>, u64)>,
) -> Family<'a> {
    Family {
        name,
        help,
        kind,
        unit: None,
        samples: Samples::Values(values),
    }
}

fn histogram<'a>(
    name: &'static str,
    help: &'static str,
    snapshot: &'a HistogramSnapshot,
) -> Family<'a> {
    Family {
        name,
        help,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        samples: Samples::Histogram(snapshot),
    }
}

/// Every family in `names`, in a fixed order (the same for every pool).
pub(super) fn families(stats: &Stats, names: MetricNames) -> Vec<Family<'_>> {
    match names {
        MetricNames::Hikari => hikari(stats),
        MetricNames::OpenTelemetry => open_telemetry(stats),
    }
}

const WAIT_HELP: &str = "Time requests that waited spent waiting for a connection.";
const USE_HELP: &str = "Time connections were held by their user (sampled).";
const CREATE_HELP: &str = "Time a successful connect took.";

/// HikariCP's names (Micrometer's `hikaricp_connections_*`), `slotpool_`
/// prefixed.
fn hikari(stats: &Stats) -> Vec<Family<'_>> {
    use Kind::Gauge;
    let g = &stats.gauges;
    let mut families = vec![
        value(
            "slotpool_connections",
            "Connections open or being opened.",
            Gauge,
            g.total,
        ),
        value(
            "slotpool_connections_active",
            "Connections checked out (in use).",
            Gauge,
            g.in_use,
        ),
        value(
            "slotpool_connections_idle",
            "Idle connections.",
            Gauge,
            g.idle,
        ),
        value(
            "slotpool_connections_pending",
            "Callers waiting for a connection.",
            Gauge,
            g.waiting,
        ),
        value(
            "slotpool_connections_connecting",
            "Connections being opened.",
            Gauge,
            g.connecting,
        ),
        value(
            "slotpool_connections_max",
            "Configured max_size.",
            Gauge,
            g.max,
        ),
        value(
            "slotpool_connections_min",
            "Configured min_idle.",
            Gauge,
            g.min_idle,
        ),
    ];
    families.extend(counters(stats, MetricNames::Hikari));
    families.extend([
        histogram(
            "slotpool_connections_acquire",
            WAIT_HELP,
            &stats.acquire_wait,
        ),
        histogram("slotpool_connections_usage", USE_HELP, &stats.usage),
        histogram(
            "slotpool_connections_creation",
            CREATE_HELP,
            &stats.connect_time,
        ),
    ]);
    families
}

/// OpenTelemetry's `db.client.connection.*` semantic conventions, then
/// what they do not cover under `slotpool.*`.
fn open_telemetry(stats: &Stats) -> Vec<Family<'_>> {
    use Kind::{Counter, Gauge};
    let (g, c) = (&stats.gauges, &stats.counters);
    let state = "db.client.connection.state";
    let mut families = vec![
        labelled(
            "db.client.connection.count",
            "The number of connections that are currently in state described by the state \
             attribute.",
            Gauge,
            vec![
                (Some((state, "idle")), u64::from(g.idle)),
                (Some((state, "used")), u64::from(g.in_use)),
            ],
        ),
        value(
            "db.client.connection.idle.max",
            "The maximum number of idle open connections allowed (max_size).",
            Gauge,
            g.max,
        ),
        value(
            "db.client.connection.idle.min",
            "The minimum number of idle open connections allowed (min_idle).",
            Gauge,
            g.min_idle,
        ),
        value(
            "db.client.connection.max",
            "The maximum number of open connections allowed (max_size).",
            Gauge,
            g.max,
        ),
        value(
            "db.client.connection.pending_requests",
            "The number of current pending requests for an open connection.",
            Gauge,
            g.waiting,
        ),
        value(
            "db.client.connection.timeouts",
            "The number of connection timeouts that have occurred trying to obtain a connection \
             from the pool.",
            Counter,
            c.timeouts,
        ),
        histogram(
            "db.client.connection.create_time",
            "The time it took to create a new connection.",
            &stats.connect_time,
        ),
        histogram(
            "db.client.connection.wait_time",
            "The time it took to obtain an open connection from the pool (requests that \
             waited).",
            &stats.acquire_wait,
        ),
        histogram(
            "db.client.connection.use_time",
            "The time between borrowing a connection and returning it to the pool (sampled).",
            &stats.usage,
        ),
        value(
            "slotpool.connection.connecting",
            "Connections being opened.",
            Gauge,
            g.connecting,
        ),
    ];
    families.extend(counters(stats, MetricNames::OpenTelemetry));
    families
}

/// The counters both schemes carry (OpenTelemetry's timeouts apart).
fn counters(stats: &Stats, names: MetricNames) -> Vec<Family<'_>> {
    use Kind::Counter;
    let c = &stats.counters;
    let n = |hikari, open_telemetry| names.pick(hikari, open_telemetry);
    let reason = n("reason", "slotpool.reason");
    let callback = n("callback", "slotpool.callback");
    let mut families = vec![
        value(
            n("slotpool_connections_gets", "slotpool.connection.gets"),
            "Connection requests, whatever their outcome.",
            Counter,
            c.gets,
        ),
        value(
            n("slotpool_connections_hits", "slotpool.connection.hits"),
            "Requests served at once from an idle connection.",
            Counter,
            c.hits,
        ),
        value(
            n("slotpool_connections_waited", "slotpool.connection.waited"),
            "Requests that waited and were served.",
            Counter,
            c.waited,
        ),
    ];
    if names == MetricNames::Hikari {
        families.push(value(
            "slotpool_connections_timeout",
            "Requests that timed out waiting for a connection.",
            Counter,
            c.timeouts,
        ));
    }
    families.extend([
        labelled(
            n(
                "slotpool_connections_rejected",
                "slotpool.connection.rejected",
            ),
            "Requests refused at once, by reason.",
            Counter,
            vec![
                (Some((reason, "waiter_cap")), c.rejected_waiter_cap),
                (Some((reason, "closed")), c.rejected_closed),
                (Some((reason, "fail_fast")), c.failed_fast),
            ],
        ),
        value(
            n(
                "slotpool_connections_no_idle",
                "slotpool.connection.no_idle",
            ),
            "try_get calls that found no idle connection.",
            Counter,
            c.no_idle,
        ),
        value(
            n(
                "slotpool_connections_created",
                "slotpool.connection.created",
            ),
            "Connections opened.",
            Counter,
            c.created,
        ),
        value(
            n(
                "slotpool_connections_connect_failures",
                "slotpool.connection.connect_failures",
            ),
            "Connection attempts that failed.",
            Counter,
            c.connect_failures,
        ),
        labelled(
            n("slotpool_connections_closed", "slotpool.connection.closed"),
            "Connections closed, by reason.",
            Counter,
            CloseReason::ALL
                .iter()
                .map(|&r| (Some((reason, r.as_str())), c.closed(r)))
                .collect(),
        ),
        value(
            n(
                "slotpool_connections_validations",
                "slotpool.connection.validations",
            ),
            "Connection validity checks run.",
            Counter,
            c.validations,
        ),
        value(
            n(
                "slotpool_connections_validation_failures",
                "slotpool.connection.validation_failures",
            ),
            "Connection validity checks that failed.",
            Counter,
            c.validation_failures,
        ),
        value(
            n(
                "slotpool_connections_validation_timeouts",
                "slotpool.connection.validation_timeouts",
            ),
            "Connection validity checks abandoned after validation_timeout.",
            Counter,
            c.validation_timeouts,
        ),
        value(
            n("slotpool_connections_leaked", "slotpool.connection.leaked"),
            "Connections held longer than leak_detection_threshold.",
            Counter,
            c.leaks,
        ),
        labelled(
            n("slotpool_callback_panics", "slotpool.callback.panics"),
            "Panics caught in user callbacks and the pool's background work, by callback.",
            Counter,
            Callback::ALL
                .iter()
                .map(|&cb| (Some((callback, cb.as_str())), c.callback_panics(cb)))
                .collect(),
        ),
    ]);
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_exposable() {
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
            let families = families(&stats, names);
            let mut seen: Vec<String> = families.iter().map(Family::full_name).collect();
            let count = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), count, "{names:?}: {seen:?}");
            for family in &families {
                assert!(!family.name.ends_with("_total"), "{}", family.name);
                assert!(!family.name.ends_with("_seconds"), "{}", family.name);
                assert!(family.help.ends_with('.'), "{}", family.name);
                let exposed = flat(family.name);
                assert!(
                    exposed
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                    "{exposed}"
                );
            }
        }
        assert_eq!(
            families(&stats, MetricNames::Hikari).len(),
            24,
            "7 gauges, 14 counter families, 3 histograms"
        );
    }
}

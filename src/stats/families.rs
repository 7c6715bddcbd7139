//! The metric families a [`Stats`] snapshot is exported as: names, help
//! texts, types and labels.
//!
//! Owns: that one list. The Prometheus text (feature `prometheus`) and the
//! `metrics` facade export (feature `metrics`) both render it, so the two
//! can not drift apart. It may not read the pool: it describes a snapshot.

use super::{CloseReason, HistogramSnapshot, Stats};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// The samples of one family for one pool.
pub(super) enum Samples<'a> {
    /// Plain values, each with at most one label besides `pool`.
    Values(Vec<(Option<(&'static str, &'static str)>, u64)>),
    /// A latency histogram in nanoseconds, rendered in seconds.
    Histogram(&'a HistogramSnapshot),
}

/// One metric family of one pool.
pub(super) struct Family<'a> {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: Kind,
    pub(super) samples: Samples<'a>,
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
        samples: Samples::Values(vec![(None, value.into())]),
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
        samples: Samples::Histogram(snapshot),
    }
}

/// Every family, in a fixed order (the same for every pool).
pub(super) fn families(stats: &Stats) -> Vec<Family<'_>> {
    use Kind::{Counter, Gauge};
    let (g, c) = (&stats.gauges, &stats.counters);
    vec![
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
        value(
            "slotpool_connections_gets_total",
            "Connection requests, whatever their outcome.",
            Counter,
            c.gets,
        ),
        value(
            "slotpool_connections_hits_total",
            "Requests served at once from an idle connection.",
            Counter,
            c.hits,
        ),
        value(
            "slotpool_connections_waited_total",
            "Requests that waited and were served.",
            Counter,
            c.waited,
        ),
        value(
            "slotpool_connections_timeout_total",
            "Requests that timed out waiting for a connection.",
            Counter,
            c.timeouts,
        ),
        Family {
            name: "slotpool_connections_rejected_total",
            help: "Requests refused at once, by reason.",
            kind: Counter,
            samples: Samples::Values(vec![
                (Some(("reason", "waiter_cap")), c.rejected_waiter_cap),
                (Some(("reason", "closed")), c.rejected_closed),
                (Some(("reason", "fail_fast")), c.failed_fast),
            ]),
        },
        value(
            "slotpool_connections_no_idle_total",
            "try_get calls that found no idle connection.",
            Counter,
            c.no_idle,
        ),
        value(
            "slotpool_connections_created_total",
            "Connections opened.",
            Counter,
            c.created,
        ),
        value(
            "slotpool_connections_connect_failures_total",
            "Connection attempts that failed.",
            Counter,
            c.connect_failures,
        ),
        Family {
            name: "slotpool_connections_closed_total",
            help: "Connections closed, by reason.",
            kind: Counter,
            samples: Samples::Values(
                CloseReason::ALL
                    .iter()
                    .map(|&reason| (Some(("reason", reason.as_str())), c.closed(reason)))
                    .collect(),
            ),
        },
        value(
            "slotpool_connections_validations_total",
            "Connection validity checks run.",
            Counter,
            c.validations,
        ),
        value(
            "slotpool_connections_validation_failures_total",
            "Connection validity checks that failed.",
            Counter,
            c.validation_failures,
        ),
        value(
            "slotpool_connections_leaked_total",
            "Connections held longer than leak_detection_threshold.",
            Counter,
            c.leaks,
        ),
        histogram(
            "slotpool_connections_acquire_seconds",
            "Time requests that waited spent waiting for a connection.",
            &stats.acquire_wait,
        ),
        histogram(
            "slotpool_connections_usage_seconds",
            "Time connections were held by their user (sampled).",
            &stats.usage,
        ),
        histogram(
            "slotpool_connections_creation_seconds",
            "Time a successful connect took.",
            &stats.connect_time,
        ),
    ]
}

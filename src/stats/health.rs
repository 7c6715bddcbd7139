//! Health assessment: a verdict, its reasons, and what to change, computed
//! from a [`Stats`] snapshot.
//!
//! Owns: the rules, their [`HealthThresholds`] and the [`HealthReport`]. It
//! may not read the pool or its configuration: everything it judges is in the
//! snapshot, so a report can be computed for a snapshot taken elsewhere (for
//! example one read back from a metrics store).
//!
//! The rules are documented on [`HealthReport`].

use std::fmt;
use std::time::Duration;

use super::{HistogramSnapshot, Stats};

/// Thresholds for [`Pool::health_with`](crate::Pool::health_with) and
/// [`Stats::health`]. Every field has a documented default; build
/// with `HealthThresholds { max_p99_acquire_wait: ..., ..Default::default() }`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct HealthThresholds {
    /// Ratios and percentiles of gets (`low_hit_ratio`, `frequent_waits`,
    /// `slow_acquire`) are judged only after this many gets; before, they are
    /// noise (a cold pool's first gets always wait). Default: 100.
    pub min_gets: u64,
    /// Below this hit ratio (gets served at once from an idle connection)
    /// the pool is degraded. Default: 0.9.
    pub min_hit_ratio: f64,
    /// Above this fraction of gets waiting for a returned connection the pool
    /// is degraded. Default: 0.1.
    pub max_wait_ratio: f64,
    /// Above this p99 acquire wait, over every served get (hits count as no
    /// wait), the pool is degraded. Default: 100 ms.
    pub max_p99_acquire_wait: Duration,
    /// Above this fraction of gets failing (timed out, refused by
    /// `max_waiters`, or failed fast on connect errors) the pool is degraded.
    /// Default: 0.01.
    pub max_timeout_ratio: f64,
    /// Above this fraction of gets failing (as above) the pool is unhealthy.
    /// Default: 0.05.
    pub critical_timeout_ratio: f64,
    /// Above this fraction of connect attempts failing the pool is degraded
    /// (with no connection open and any failure, it is unhealthy).
    /// Default: 0.1.
    pub max_connect_failure_ratio: f64,
    /// Above this fraction of validity checks failing the pool is degraded.
    /// Default: 0.1.
    pub max_validation_failure_ratio: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            min_gets: 100,
            min_hit_ratio: 0.9,
            max_wait_ratio: 0.1,
            max_p99_acquire_wait: Duration::from_millis(100),
            max_timeout_ratio: 0.01,
            critical_timeout_ratio: 0.05,
            max_connect_failure_ratio: 0.1,
            max_validation_failure_ratio: 0.1,
        }
    }
}

/// Overall verdict, and the severity of one finding. Ordered: `Healthy <
/// Degraded < Unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HealthStatus {
    /// Nothing to act on.
    Healthy,
    /// Serving, but callers wait, time out or miss more than they should.
    Degraded,
    /// Failing callers: most gets time out, or no connection can be opened.
    Unhealthy,
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule that fired: why, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HealthFinding {
    /// [`HealthStatus::Degraded`] or [`HealthStatus::Unhealthy`].
    pub severity: HealthStatus,
    /// The rule's stable id, e.g. `"low_hit_ratio"` (see [`HealthReport`]).
    pub rule: &'static str,
    /// What was observed, with the figures.
    pub reason: String,
    /// What to change.
    pub recommendation: String,
}

/// The figures the rules judged, for the report's reader.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HealthSummary {
    /// Every get outcome.
    pub gets: u64,
    /// `hits / gets`.
    pub hit_ratio: f64,
    /// `(timeouts + rejected by max_waiters + failed fast) / gets`.
    pub timeout_ratio: f64,
    /// `in_use / max` now.
    pub utilisation: f64,
    /// Connections open now (`total`), in use and idle.
    pub connections: u32,
    /// Connections in use now.
    pub in_use: u32,
    /// Callers waiting now.
    pub waiting: u32,
    /// `max_size` in force.
    pub max_size: u32,
    /// `min_idle` in force.
    pub min_idle: u32,
    /// p99 acquire wait over every served get (hits as zero), milliseconds.
    pub p99_acquire_wait_ms: f64,
    /// p99 hold time (sampled), milliseconds.
    pub p99_usage_ms: f64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Connections held past the leak threshold.
    pub leaks: u64,
    /// Logical cores of this machine (`available_parallelism`), for the
    /// sizing rule.
    pub cores: usize,
}

/// The pool's health: a status, the rules that fired and their
/// recommendations, and the figures judged. Serialises to JSON.
///
/// Counters are cumulative since the pool was built, so the ratios judged here
/// are lifetime ratios; gauges (utilisation, waiting) are as of the snapshot.
///
/// # Rules
///
/// Each finding (`HealthFinding`) names its rule by a stable id:
///
/// | rule | fires when | severity |
/// |------|-----------|----------|
/// | `connect_failures` | no connection is open (idle or in use) and connects have failed | unhealthy |
/// | | connect failures exceed `max_connect_failure_ratio` of attempts | degraded |
/// | `acquire_timeouts` | gets that timed out, were refused by `max_waiters` or failed fast exceed `critical_timeout_ratio` of gets | unhealthy |
/// | | they exceed `max_timeout_ratio` | degraded |
/// | `saturated` | every connection is in use and callers are waiting now | degraded |
/// | `frequent_waits` | after `min_gets` gets, gets that waited for a *returned* connection (waits beyond connections created) exceed `max_wait_ratio` of gets | degraded |
/// | `low_hit_ratio` | after `min_gets` gets, the hit ratio is below `min_hit_ratio` and `frequent_waits` did not fire | degraded |
/// | `slow_acquire` | after `min_gets` gets, the p99 acquire wait over served gets exceeds `max_p99_acquire_wait` | degraded |
/// | `leaks` | any connection was held past `leak_detection_threshold` | degraded |
/// | `validation_failures` | failed validity checks exceed `max_validation_failure_ratio` of checks | degraded |
///
/// The status is the worst severity found, [`HealthStatus::Healthy`] when no
/// rule fires.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HealthReport {
    /// The pool's name.
    pub pool: String,
    /// The worst severity among the findings; `Healthy` when there are none.
    pub status: HealthStatus,
    /// The rules that fired, worst first.
    pub findings: Vec<HealthFinding>,
    /// The figures judged.
    pub summary: HealthSummary,
}

impl HealthReport {
    /// Whether no rule fired.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }

    /// The finding of rule `rule`, if it fired.
    pub fn finding(&self, rule: &str) -> Option<&HealthFinding> {
        self.findings.iter().find(|finding| finding.rule == rule)
    }

    /// The ids of the rules that fired.
    pub fn rules(&self) -> Vec<&'static str> {
        self.findings.iter().map(|finding| finding.rule).collect()
    }
}

impl fmt::Display for HealthReport {
    /// A few lines for logs and terminals: status, then each finding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool '{}': {}", self.pool, self.status)?;
        for finding in &self.findings {
            write!(
                f,
                "\n- [{}] {}: {}\n  -> {}",
                finding.severity, finding.rule, finding.reason, finding.recommendation
            )?;
        }
        Ok(())
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The `fraction` percentile of the acquire wait over every served get,
/// counting the `hits` gets as no wait and the others from `waits`.
fn served_percentile(hits: u64, waits: &HistogramSnapshot, fraction: f64) -> Duration {
    let served = hits + waits.count;
    if served == 0 {
        return Duration::ZERO;
    }
    let rank = ((fraction * served as f64).ceil() as u64).clamp(1, served);
    if rank <= hits {
        return Duration::ZERO;
    }
    let mut seen = hits;
    for &(bound, count) in &waits.buckets {
        seen += count;
        if seen >= rank {
            return bound.min(waits.max);
        }
    }
    waits.max
}

/// HikariCP's pool-sizing rule, with this machine's core count.
fn sizing_rule(cores: usize) -> String {
    format!(
        "HikariCP's sizing rule: connections = (cores × 2) + effective spindles; this machine has \
         {cores} cores, so about {} for a database on SSD or in cache (a database on another \
         host: use its cores). A larger pool rarely helps: waits usually come from long holds",
        cores * 2 + 1
    )
}

impl Stats {
    /// This snapshot's health judged against `thresholds`: the same report
    /// as [`Pool::health_with`](crate::Pool::health_with), for a snapshot
    /// taken earlier or elsewhere.
    pub fn health(&self, thresholds: &HealthThresholds) -> HealthReport {
        assess(self, thresholds)
    }
}

/// Assesses the pool's health from a statistics snapshot (see
/// [`HealthReport`] for the rules).
pub fn assess(stats: &Stats, thresholds: &HealthThresholds) -> HealthReport {
    let (g, c) = (&stats.gauges, &stats.counters);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let refused = c.timeouts + c.rejected_waiter_cap + c.failed_fast;
    let timeout_ratio = ratio(refused, c.gets);
    let p99_acquire = served_percentile(c.hits, &stats.acquire_wait, 0.99);
    let enough_gets = c.gets >= thresholds.min_gets && c.gets > 0;
    let hold = format!(
        "sampled holds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        millis(stats.usage.p50),
        millis(stats.usage.p99),
        millis(stats.usage.max)
    );
    let mut findings = Vec::new();
    let mut add = |severity, rule, reason: String, recommendation: String| {
        findings.push(HealthFinding {
            severity,
            rule,
            reason,
            recommendation,
        });
    };

    // connect_failures
    let attempts = c.created + c.connect_failures;
    let failure_ratio = ratio(c.connect_failures, attempts);
    let open = g.idle + g.in_use;
    if c.connect_failures > 0 && open == 0 {
        add(
            HealthStatus::Unhealthy,
            "connect_failures",
            format!(
                "no connection is open and {} of {attempts} connect attempts failed",
                c.connect_failures
            ),
            "check the database: is it up and reachable from here, are the address, credentials \
             and permissions right, does it accept more connections (its own connection limit)? \
             The last connect error is in the `TimedOut` error's `last_connect_error` and in the \
             logs; the pool retries with `connect_backoff_initial` .. `connect_backoff_max`"
                .to_owned(),
        );
    } else if c.connect_failures > 0 && failure_ratio > thresholds.max_connect_failure_ratio {
        add(
            HealthStatus::Degraded,
            "connect_failures",
            format!(
                "{} of {attempts} connect attempts failed ({}, threshold {})",
                c.connect_failures,
                percent(failure_ratio),
                percent(thresholds.max_connect_failure_ratio)
            ),
            "check the database and the network between: failing connects mean callers wait \
             for replacements; see the logs for the errors"
                .to_owned(),
        );
    }

    // acquire_timeouts
    let timeout_severity = if refused > 0 && timeout_ratio > thresholds.critical_timeout_ratio {
        Some(HealthStatus::Unhealthy)
    } else if refused > 0 && timeout_ratio > thresholds.max_timeout_ratio {
        Some(HealthStatus::Degraded)
    } else {
        None
    };
    if let Some(severity) = timeout_severity {
        let cause = if g.total < g.max && c.connect_failures > 0 {
            "; the pool had room but connects fail: look at the database first"
        } else {
            ""
        };
        add(
            severity,
            "acquire_timeouts",
            format!(
                "{refused} of {} gets failed ({} timed out, {} refused by max_waiters, {} failed \
                 fast on connect errors): {} (threshold {}){cause}",
                c.gets,
                c.timeouts,
                c.rejected_waiter_cap,
                c.failed_fast,
                percent(timeout_ratio),
                percent(if severity == HealthStatus::Unhealthy {
                    thresholds.critical_timeout_ratio
                } else {
                    thresholds.max_timeout_ratio
                })
            ),
            format!(
                "raise `max_size` (now {}) or shorten the time connections are held ({hold}); \
                 {}; raise `connection_timeout` only if callers can afford to wait longer",
                g.max,
                sizing_rule(cores)
            ),
        );
    }

    // saturated
    if g.max > 0 && g.in_use >= g.max && g.waiting > 0 {
        add(
            HealthStatus::Degraded,
            "saturated",
            format!(
                "all {} connections are in use and {} callers are waiting",
                g.max, g.waiting
            ),
            format!(
                "raise `max_size` (now {}) or shorten hold times ({hold}); {}",
                g.max,
                sizing_rule(cores)
            ),
        );
    }

    // frequent_waits, low_hit_ratio
    let waits_for_returns = c.waited.saturating_sub(c.created);
    let wait_ratio = ratio(waits_for_returns, c.gets);
    let frequent_waits = enough_gets && wait_ratio > thresholds.max_wait_ratio;
    if frequent_waits {
        add(
            HealthStatus::Degraded,
            "frequent_waits",
            format!(
                "{} of {} gets waited ({} more than connections created, so they waited for a \
                 connection to come back): {} (threshold {})",
                c.waited,
                c.gets,
                waits_for_returns,
                percent(wait_ratio),
                percent(thresholds.max_wait_ratio)
            ),
            format!(
                "raise `max_size` (now {}) or shorten hold times ({hold}); {}",
                g.max,
                sizing_rule(cores)
            ),
        );
    }
    if enough_gets && !frequent_waits && stats.hit_ratio < thresholds.min_hit_ratio {
        let demand = (g.in_use + g.waiting).max(g.total);
        let suggested = demand.max(g.min_idle + 1).min(g.max.max(1));
        let recommendation = if g.min_idle >= g.max {
            format!(
                "`min_idle` already equals `max_size` ({}): misses come from connections being \
                 closed (see `slotpool_connections_closed_total` by reason) or from try_get; \
                 check `max_lifetime` and `idle_timeout`",
                g.max
            )
        } else {
            format!(
                "raise `min_idle` from {} to {suggested} (connections open now: {}, in use or \
                 wanted now: {}), so that connections are open before they are asked for; \
                 HikariCP recommends a fixed-size pool, `min_idle = max_size` ({}), for spiky \
                 load",
                g.min_idle,
                g.total,
                g.in_use + g.waiting,
                g.max
            )
        };
        add(
            HealthStatus::Degraded,
            "low_hit_ratio",
            format!(
                "{} of {} gets were served at once from an idle connection: {} (threshold {}); \
                 {} waited, {} try_get misses",
                c.hits,
                c.gets,
                percent(stats.hit_ratio),
                percent(thresholds.min_hit_ratio),
                c.waited,
                c.no_idle
            ),
            recommendation,
        );
    }

    // slow_acquire
    if enough_gets && p99_acquire > thresholds.max_p99_acquire_wait {
        add(
            HealthStatus::Degraded,
            "slow_acquire",
            format!(
                "p99 acquire wait over {} served gets is {:.1} ms (threshold {:.1} ms); the {} \
                 gets that waited: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                c.hits + stats.acquire_wait.count,
                millis(p99_acquire),
                millis(thresholds.max_p99_acquire_wait),
                stats.acquire_wait.count,
                millis(stats.acquire_wait.p50),
                millis(stats.acquire_wait.p99),
                millis(stats.acquire_wait.max)
            ),
            format!(
                "if the pool was full, raise `max_size` (now {}) or shorten hold times ({hold}); \
                 if connects are slow (p99 {:.1} ms), raise `min_idle` (now {}) so connections \
                 are ready; {}",
                g.max,
                millis(stats.connect_time.p99),
                g.min_idle,
                sizing_rule(cores)
            ),
        );
    }

    // leaks
    if c.leaks > 0 {
        add(
            HealthStatus::Degraded,
            "leaks",
            format!(
                "{} connections were held longer than `leak_detection_threshold`; longest \
                 sampled hold {:.1} ms",
                c.leaks,
                millis(stats.usage.max)
            ),
            "each leak was logged as a `tracing` warning carrying the checkout location: find \
             that code and return the connection sooner (drop the guard); if such long holds are \
             intended, raise `leak_detection_threshold`"
                .to_owned(),
        );
    }

    // validation_failures
    let validation_ratio = ratio(c.validation_failures, c.validations);
    if c.validation_failures > 0 && validation_ratio > thresholds.max_validation_failure_ratio {
        add(
            HealthStatus::Degraded,
            "validation_failures",
            format!(
                "{} of {} validity checks failed ({}, threshold {})",
                c.validation_failures,
                c.validations,
                percent(validation_ratio),
                percent(thresholds.max_validation_failure_ratio)
            ),
            "connections die while idle: set `keepalive_interval` and `max_lifetime` below the \
             idle timeout of the database and of any firewall or proxy in between"
                .to_owned(),
        );
    }

    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    let status = findings
        .iter()
        .map(|finding| finding.severity)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    HealthReport {
        pool: stats.pool.clone(),
        status,
        findings,
        summary: HealthSummary {
            gets: c.gets,
            hit_ratio: stats.hit_ratio,
            timeout_ratio,
            utilisation: stats.utilisation,
            connections: g.total,
            in_use: g.in_use,
            waiting: g.waiting,
            max_size: g.max,
            min_idle: g.min_idle,
            p99_acquire_wait_ms: millis(p99_acquire),
            p99_usage_ms: millis(stats.usage.p99),
            connect_failures: c.connect_failures,
            leaks: c.leaks,
            cores,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(values_ms: &[u64]) -> HistogramSnapshot {
        // Exact buckets for the test: one per value.
        let mut buckets: Vec<(Duration, u64)> = values_ms
            .iter()
            .map(|&ms| (Duration::from_millis(ms), 1))
            .collect();
        buckets.sort();
        HistogramSnapshot {
            count: values_ms.len() as u64,
            max: buckets.last().map_or(Duration::ZERO, |b| b.0),
            buckets,
            ..HistogramSnapshot::default()
        }
    }

    #[test]
    fn served_percentile_counts_hits_as_no_wait() {
        assert_eq!(served_percentile(0, &waits(&[]), 0.99), Duration::ZERO);
        // 99 hits, 1 wait of 500 ms: the p99 is a hit.
        assert_eq!(served_percentile(99, &waits(&[500]), 0.99), Duration::ZERO);
        // 98 hits, 2 waits: rank 99 is the first wait.
        assert_eq!(
            served_percentile(98, &waits(&[200, 500]), 0.99),
            Duration::from_millis(200)
        );
        assert_eq!(
            served_percentile(0, &waits(&[1, 2, 3]), 1.0),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn status_orders_by_severity() {
        assert!(HealthStatus::Healthy < HealthStatus::Degraded);
        assert!(HealthStatus::Degraded < HealthStatus::Unhealthy);
    }
}

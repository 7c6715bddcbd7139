//! Prometheus text exposition (format 0.0.4) of a [`Stats`] snapshot
//! (feature `prometheus`).
//!
//! Owns: rendering the families of `families.rs` as text. It may not read
//! the pool: it renders a snapshot.

use std::fmt::Write as _;

use super::Stats;
use super::families::{Family, Samples, families};

impl Stats {
    /// The snapshot in the Prometheus text exposition format (0.0.4): every
    /// family with its `# HELP` and `# TYPE` lines, every sample labelled
    /// `pool="<name>"`. Serve it with content type
    /// `text/plain; version=0.0.4`.
    ///
    /// Names follow HikariCP's Micrometer metrics with the `slotpool_` prefix, so
    /// dashboards built for `hikaricp_connections_*` carry over by renaming:
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
    /// | `slotpool_connections_leaked_total` | counter | |
    /// | `slotpool_connections_acquire_seconds` | histogram | `hikaricp_connections_acquire_seconds` |
    /// | `slotpool_connections_usage_seconds` | histogram | `hikaricp_connections_usage_seconds` |
    /// | `slotpool_connections_creation_seconds` | histogram | `hikaricp_connections_creation_seconds` |
    ///
    /// `slotpool_connections_rejected_total`'s reasons are `waiter_cap` (refused by
    /// `max_waiters`), `closed` (the pool was closed) and `fail_fast` (failed at
    /// once with the connect error while connecting keeps failing); the
    /// `slotpool_connections_closed_total` reasons are [`CloseReason::as_str`](super::CloseReason::as_str).
    ///
    /// Every sample carries a `pool` label. The histograms' `le` buckets are the
    /// recorder's non-empty log-linear buckets (each bound within 12.5% of the
    /// next), so the set of `le` series grows as new latencies are seen and never
    /// shrinks; `histogram_quantile` works on them as on any histogram.
    /// `slotpool_connections_acquire_seconds` covers the gets that waited (a get
    /// served at once from an idle connection takes no measurable time and is
    /// counted only in `slotpool_connections_hits_total`).
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
```
"##
    )]
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
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
        let per_pool: Vec<(&str, Vec<Family<'_>>)> = pools
            .iter()
            .map(|stats| (stats.pool.as_str(), families(stats)))
            .collect();
        let Some((_, first)) = per_pool.first() else {
            return;
        };
        for (index, family) in first.iter().enumerate() {
            out.push_str("# HELP ");
            out.push_str(family.name);
            out.push(' ');
            escape_help(family.help, out);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            for (pool, families) in &per_pool {
                write_samples(&families[index], pool, out);
            }
        }
    }
}

fn write_samples(family: &Family<'_>, pool: &str, out: &mut String) {
    match &family.samples {
        Samples::Values(values) => {
            for (label, value) in values {
                write_sample(out, family.name, "", pool, *label, &value.to_string());
            }
        }
        Samples::Histogram(snapshot) => {
            let mut cumulative = 0u64;
            for (bound, count) in &snapshot.buckets {
                cumulative += count;
                let le = seconds(bound.as_secs_f64());
                write_sample(
                    out,
                    family.name,
                    "_bucket",
                    pool,
                    Some(("le", &le)),
                    &cumulative.to_string(),
                );
            }
            write_sample(
                out,
                family.name,
                "_bucket",
                pool,
                Some(("le", "+Inf")),
                &snapshot.count.to_string(),
            );
            write_sample(
                out,
                family.name,
                "_sum",
                pool,
                None,
                &seconds(snapshot.sum.as_secs_f64()),
            );
            write_sample(
                out,
                family.name,
                "_count",
                pool,
                None,
                &snapshot.count.to_string(),
            );
        }
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    pool: &str,
    label: Option<(&str, &str)>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push_str("{pool=\"");
    escape_label(pool, out);
    out.push('"');
    if let Some((key, label_value)) = label {
        out.push(',');
        out.push_str(key);
        out.push_str("=\"");
        escape_label(label_value, out);
        out.push('"');
    }
    out.push_str("} ");
    out.push_str(value);
    out.push('\n');
}

/// Seconds as a Prometheus float: Rust's shortest round-trip form, which
/// never uses an exponent and always parses back to the same value.
fn seconds(value: f64) -> String {
    format!("{value}")
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
}

/// Help texts escape backslash and line feed.
fn escape_help(text: &str, out: &mut String) {
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label("a\\b\"c\nd", &mut out);
        assert_eq!(out, r#"a\\b\"c\nd"#);
    }

    #[test]
    fn help_is_escaped() {
        let mut out = String::new();
        escape_help("a\\b\"c\nd", &mut out);
        assert_eq!(out, r#"a\\b"c\nd"#);
    }

    #[test]
    fn seconds_never_use_an_exponent() {
        assert_eq!(seconds(1.5e-8), "0.000000015");
        assert_eq!(seconds(0.0), "0");
        assert_eq!(seconds(2.5), "2.5");
        assert_eq!(seconds(u64::MAX as f64 / 1e9), "18446744073.709553");
    }
}

//! The results of `bench`: their data model, the text table and the JSON
//! file.
//!
//! Owns: units, rounding and the speed-up calculation. It may not run or
//! time anything.

use std::path::Path;
use std::time::Duration;

use comfy_table::{CellAlignment, Table, presets};
use hdrhistogram::Histogram;
use serde::Serialize;
use slotpool_sqlite::Locking;

use super::args::{BackendKind, BenchArgs, Workload};
use super::bench::PlanSummary;
use super::error::CliError;

/// Everything one `bench` run measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// `sqlite` or `postgres`.
    pub backend: BackendKind,
    /// The operation mix.
    pub workload: Workload,
    /// Worker threads.
    pub workers: u32,
    /// Rows reads pick from.
    pub rows: u32,
    /// Operations per variant, when fixed by `--ops`.
    pub ops_per_variant: Option<u64>,
    /// Seconds per variant, when fixed by `--duration`.
    pub duration_secs: Option<f64>,
    /// SQLite: reader connections of the pools (`max_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<u32>,
    /// PostgreSQL: connections of the pool (`max_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// The database file (SQLite), or the server as `host:port/dbname`
    /// (PostgreSQL; never a password).
    pub database: String,
    /// PostgreSQL: the server's `server_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// PostgreSQL: worker threads of the tokio runtime the tasks run on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_threads: Option<usize>,
    /// SQLite: how every variant locked the file (`sqlite.locking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locking: Option<LockingReport>,
    /// One entry per variant, `unpooled` first.
    pub variants: Vec<VariantResult>,
}

/// The `sqlite.locking` a run used.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LockingReport {
    /// `shared` or `process`.
    pub mode: Locking,
    /// The SQLite VFS it selects: `unix` (SQLite's default) or `unix-excl`.
    pub vfs: &'static str,
}

impl LockingReport {
    fn new(mode: Locking) -> Self {
        Self {
            mode,
            vfs: mode.vfs().unwrap_or("unix"),
        }
    }
}

/// One variant's throughput and latency.
#[derive(Debug, Serialize)]
pub struct VariantResult {
    /// `unpooled`, `slotpool` or `r2d2`.
    pub name: String,
    /// Operations completed (including busy failures).
    pub ops: u64,
    /// SQLite: operations that failed with `SQLITE_BUSY`/`SQLITE_LOCKED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_errors: Option<u64>,
    /// Wall-clock time of the whole run.
    pub elapsed_secs: f64,
    /// `ops / elapsed_secs`.
    pub ops_per_sec: f64,
    /// Per-operation latency percentiles.
    pub latency_us: Latency,
    /// `ops_per_sec` relative to `unpooled`.
    pub speedup_vs_unpooled: f64,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest operation.
    pub max: f64,
}

impl VariantResult {
    /// Summarizes a histogram of per-operation nanoseconds.
    pub fn new(
        name: &str,
        histogram: &Histogram<u64>,
        busy: Option<u64>,
        elapsed: Duration,
    ) -> Self {
        let ops = histogram.len();
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        Self {
            name: name.to_owned(),
            ops,
            busy_errors: busy,
            elapsed_secs: elapsed.as_secs_f64(),
            ops_per_sec: ops as f64 / secs,
            latency_us: Latency {
                mean: histogram.mean() / 1_000.0,
                p50: micros(histogram.value_at_quantile(0.50)),
                p95: micros(histogram.value_at_quantile(0.95)),
                p99: micros(histogram.value_at_quantile(0.99)),
                max: micros(histogram.max()),
            },
            speedup_vs_unpooled: 1.0,
        }
    }
}

impl BenchReport {
    /// A SQLite run: collects the variants and computes each one's speed-up.
    pub fn new(
        plan: &PlanSummary,
        database: &Path,
        readers: u32,
        locking: Locking,
        variants: Vec<VariantResult>,
    ) -> Self {
        Self {
            readers: Some(readers),
            locking: Some(LockingReport::new(locking)),
            ..Self::common(
                plan,
                BackendKind::Sqlite,
                database.display().to_string(),
                variants,
            )
        }
    }

    /// A PostgreSQL run against `target` (`host:port/dbname`).
    pub fn postgres(
        plan: &PlanSummary,
        target: &str,
        server: PostgresRun,
        variants: Vec<VariantResult>,
    ) -> Self {
        Self {
            connections: Some(server.connections),
            server_version: Some(server.server_version),
            runtime_threads: Some(server.runtime_threads),
            ..Self::common(plan, BackendKind::Postgres, target.to_owned(), variants)
        }
    }

    /// What every run has; each one's speed-up against `unpooled`.
    fn common(
        plan: &PlanSummary,
        backend: BackendKind,
        database: String,
        mut variants: Vec<VariantResult>,
    ) -> Self {
        let baseline = variants
            .iter()
            .find(|v| v.name == "unpooled")
            .map(|v| v.ops_per_sec)
            .filter(|ops| *ops > 0.0);
        for variant in &mut variants {
            variant.speedup_vs_unpooled = baseline.map_or(0.0, |base| variant.ops_per_sec / base);
        }
        Self {
            backend,
            workload: plan.workload,
            workers: plan.workers,
            rows: plan.rows,
            ops_per_variant: plan.ops,
            duration_secs: plan.duration.map(|d| d.as_secs_f64()),
            readers: None,
            connections: None,
            database,
            server_version: None,
            runtime_threads: None,
            locking: None,
            variants,
        }
    }
}

/// What a PostgreSQL run states besides the plan.
#[derive(Debug)]
pub struct PostgresRun {
    /// The pool's `max_size`.
    pub connections: u32,
    /// The server's `server_version`.
    pub server_version: String,
    /// Worker threads of the tokio runtime.
    pub runtime_threads: usize,
}

/// The results as a text table with a one-line heading.
pub fn table(report: &BenchReport) -> String {
    let amount = match (report.ops_per_variant, report.duration_secs) {
        (Some(ops), _) => format!("{ops} ops per variant"),
        (None, Some(secs)) => format!("{secs}s per variant"),
        (None, None) => String::new(),
    };
    // Only SQLite counts busy errors.
    let busy = report.backend == BackendKind::Sqlite;
    let mut header = vec!["variant", "ops", "ops/s", "p50", "p95", "p99", "max"];
    if busy {
        header.push("busy errors");
    }
    header.push("vs unpooled");
    let columns = header.len();
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN).set_header(header);
    for v in &report.variants {
        let mut row = vec![
            v.name.clone(),
            v.ops.to_string(),
            format!("{:.0}", v.ops_per_sec),
            micros(v.latency_us.p50),
            micros(v.latency_us.p95),
            micros(v.latency_us.p99),
            micros(v.latency_us.max),
        ];
        if busy {
            row.push(v.busy_errors.unwrap_or(0).to_string());
        }
        row.push(format!("{:.1}x", v.speedup_vs_unpooled));
        table.add_row(row);
    }
    for column in 1..columns {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let workload = workload_name(report.workload);
    let count = |n: Option<u32>| n.unwrap_or(0);
    match report.backend {
        BackendKind::Sqlite => {
            let locking = report
                .locking
                .map(|l| format!(", locking {} ({})", l.mode, l.vfs))
                .unwrap_or_default();
            format!(
                "{workload} workload, {} workers, {amount}, {} readers, {} rows{locking}\n{table}\n\
                 Latency is per operation: checkout + statement + return (unpooled: open + pragmas + statement + close).\n",
                report.workers,
                count(report.readers),
                report.rows,
            )
        }
        BackendKind::Postgres => format!(
            "{workload} workload, {} tasks on {} runtime threads, {amount}, {} connections, {} rows, \
             PostgreSQL {} at {}\n{table}\n\
             Latency is per operation: checkout + statement + return (unpooled: connect + prepare + statement + close).\n",
            report.workers,
            report.runtime_threads.unwrap_or(0),
            count(report.connections),
            report.rows,
            report.server_version.as_deref().unwrap_or("?"),
            report.database,
        ),
    }
}

fn workload_name(workload: Workload) -> &'static str {
    match workload {
        Workload::Read => "read",
        Workload::Write => "write",
        Workload::Mixed => "mixed (90% read)",
    }
}

/// `12.3 µs`, `4.56 ms`.
fn micros(us: f64) -> String {
    if us >= 1_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// Prints the report's table, then writes the JSON and the plot that the
/// bench's `--json` and `--plot` flags ask for.
pub fn emit(bench: &BenchReport, args: &BenchArgs) -> Result<(), CliError> {
    print!("{}", table(bench));
    if let Some(path) = &args.json {
        write_json(bench, path)?;
    }
    if let Some(path) = &args.plot {
        super::plot::draw(bench, path)?;
    }
    Ok(())
}

/// Writes the report as pretty JSON.
pub fn write_json(report: &BenchReport, path: &Path) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}

//! `slotpool stats`: a short read load against a [`SqlitePool`], then the
//! pools' counts as a table, JSON or Prometheus text.
//!
//! Owns: the rendering of [`State`]. [`prometheus`] is the one place the
//! exposition format lives, so a richer statistics module can replace it.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, Table, presets};
use slotpool::State;
use slotpool::sqlite::SqlitePool;

use super::args::StatsArgs;
use super::backends;
use super::config_cmd;
use super::error::CliError;

/// Rows the short load reads from.
const ROWS: u32 = 1_000;

/// `slotpool stats`.
pub fn run(args: &StatsArgs) -> Result<(), CliError> {
    let mut config = config_cmd::load(&args.source)?;
    let (db, _temp_dir) = match &args.db {
        Some(db) => (db.clone(), None),
        None => {
            let dir = tempfile::tempdir().map_err(CliError::TempDir)?;
            (dir.path().join("stats.db"), Some(dir))
        }
    };
    config.sqlite.path = db.to_string_lossy().into_owned();
    config.sqlite.read_only = false;
    let pool = SqlitePool::new(config)?;
    backends::seed(&*pool.writer()?, ROWS)?;
    load(&pool, args.workers, args.ops)?;

    let pools = [
        (
            pool.writer_pool().name().to_owned(),
            pool.writer_pool().state(),
        ),
        (
            pool.reader_pool().name().to_owned(),
            pool.reader_pool().state(),
        ),
    ];
    if args.prometheus {
        print!("{}", prometheus(&pools));
    } else if args.json {
        println!("{}", json(&pools)?);
    } else {
        print!("{}", table(&pools));
    }
    Ok(())
}

/// `workers` threads each reading `ops` random rows through the readers.
fn load(pool: &SqlitePool, workers: u32, ops: u64) -> Result<(), CliError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(u64::from(worker));
                    for _ in 0..ops {
                        let conn = pool.reader()?;
                        backends::read(&conn, rng.i64(1..=i64::from(ROWS)))
                            .map_err(|e| CliError::Database(e.into()))?;
                    }
                    Ok::<(), CliError>(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|handle| handle.join().unwrap_or(Err(CliError::WorkerPanicked)))
    })
}

fn table(pools: &[(String, State)]) -> String {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN).set_header(vec![
        "pool",
        "connections",
        "idle",
        "in use",
        "connecting",
        "waiting",
        "max",
    ]);
    for (name, s) in pools {
        table.add_row(vec![
            name.clone(),
            s.connections.to_string(),
            s.idle_connections.to_string(),
            s.in_use.to_string(),
            s.connecting.to_string(),
            s.waiting.to_string(),
            s.max_size.to_string(),
        ]);
    }
    for column in 1..=6 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

fn json(pools: &[(String, State)]) -> Result<String, CliError> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        pool: &'a str,
        #[serde(flatten)]
        state: &'a State,
    }
    let entries: Vec<Entry<'_>> = pools
        .iter()
        .map(|(pool, state)| Entry { pool, state })
        .collect();
    #[derive(serde::Serialize)]
    struct Document<'a> {
        pools: Vec<Entry<'a>>,
    }
    Ok(serde_json::to_string_pretty(&Document { pools: entries })?)
}

/// A gauge family: name, help text, and the count it reports.
type Gauge = (&'static str, &'static str, fn(&State) -> u32);

/// The pools' counts in the Prometheus text exposition format: one gauge
/// family per count, each with a `pool` label.
pub fn prometheus(pools: &[(String, State)]) -> String {
    let gauges: [Gauge; 5] = [
        (
            "slotpool_connections_active",
            "Connections checked out by callers.",
            |s| s.in_use,
        ),
        (
            "slotpool_connections_idle",
            "Open connections nobody uses.",
            |s| s.idle_connections,
        ),
        (
            "slotpool_connections_pending",
            "Callers waiting for a connection.",
            |s| s.waiting,
        ),
        ("slotpool_connections_max", "The max_size in force.", |s| {
            s.max_size
        }),
        (
            "slotpool_connections",
            "Connections open or being opened.",
            |s| s.connections,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (pool, state) in pools {
            let _ = writeln!(out, "{name}{{pool=\"{}\"}} {}", label(pool), value(state));
        }
    }
    out
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

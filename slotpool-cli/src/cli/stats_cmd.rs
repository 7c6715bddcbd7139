//! `slotpool stats`: a short read load against a [`SqlitePool`], then the
//! pools' statistics as a table, JSON or Prometheus text.
//!
//! Owns: the table layout; JSON and Prometheus rendering are the library's
//! (`Stats` is serde-serialisable, `Stats::render_prometheus`). It may not
//! compute statistics itself.

use comfy_table::{CellAlignment, Table, presets};
use slotpool::Stats;
use slotpool_sqlite::SqlitePool;

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

    let pools = [pool.writer_pool().stats(), pool.reader_pool().stats()];
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

fn table(pools: &[Stats]) -> String {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN).set_header(vec![
        "pool",
        "connections",
        "idle",
        "in use",
        "waiting",
        "max",
        "gets",
        "hit ratio",
        "waited",
        "timeouts",
        "created",
        "acquire p99",
        "hold p99",
    ]);
    for stats in pools {
        let (gauges, counters) = (&stats.gauges, &stats.counters);
        table.add_row(vec![
            stats.pool.clone(),
            gauges.total.to_string(),
            gauges.idle.to_string(),
            gauges.in_use.to_string(),
            gauges.waiting.to_string(),
            gauges.max.to_string(),
            counters.gets.to_string(),
            format!("{:.3}", stats.hit_ratio),
            counters.waited.to_string(),
            counters.timeouts.to_string(),
            counters.created.to_string(),
            format!("{:?}", stats.acquire_wait.p99),
            format!("{:?}", stats.usage.p99),
        ]);
    }
    for column in 1..=12 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

fn json(pools: &[Stats]) -> Result<String, CliError> {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        pools: &'a [Stats],
    }
    Ok(serde_json::to_string_pretty(&Document { pools })?)
}

/// Every pool's statistics in one Prometheus exposition (each metric
/// family's HELP/TYPE once, one sample per pool).
pub fn prometheus(pools: &[Stats]) -> String {
    let mut out = String::new();
    Stats::render_prometheus(pools, &mut out);
    out
}

//! `slotpool bench`: runs the same workload through each variant, timing
//! every operation, and hands the results to `report` and `plot`.
//!
//! Owns: the run plan, the worker threads, timing and progress. It may not
//! know how a variant talks to SQLite (see `backends`).
//!
//! Owns: the run plan (ops or duration, workers, mix), worker threads,
//! per-operation timing into HDR histograms, and the progress bar. The
//! PostgreSQL run (`--backend postgres`) is `pg_bench`'s, on this plan.
//!
//! Locking: without `--db` the database is a fresh file in a temporary
//! directory that no other process knows of, so every variant opens it with
//! `sqlite.locking = process` (SQLite's `unix-excl` VFS); with `--db` the
//! configured `sqlite.locking` applies (default `shared`), because a user's
//! file may be shared. `--locking` overrides both.
//!
//! What bounds the pooled `read` figure with 2 workers and `shared` locking
//! is SQLite, not this harness or the pool. The figures are in
//! BENCHMARKS.md, "The main job". Each pooled read is its own read
//! transaction: one `fstat()` of the database file, and WAL read lock 0
//! taken and released on the `-shm` file.
//! The lock goes through `fcntl()` whenever no other connection in the
//! process holds it, and SQLite's unix VFS makes that call while holding the
//! one per-process mutex of the `-shm` file. With the two workers on
//! separate cores, this costs 1.5 `fcntl` and 0.6 `futex` calls per read, and
//! a p95 of 25 to 35 µs. With both on one core, one worker is usually
//! preempted inside its transaction, so the other never makes the call.
//! Whether the scheduler spreads or packs the two workers is decided per
//! run. With `process` locking the WAL index is in heap memory and none of
//! these `fcntl` calls is made. The timing here (two clock reads and one
//! histogram record per operation) is about 4% of the pooled CPU profile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rusqlite::Connection;
use slotpool::Manager;
use slotpool_sqlite::Locking;
use slotpool_sqlite::SqliteManager;

use super::args::{BackendKind, BenchArgs, Competitor, Workload};
use super::backends::{self, Backend, OpError, R2d2, Slotpool, Unpooled};
use super::config_cmd;
use super::error::CliError;
use super::pg_bench;
use super::report::{self, BenchReport, VariantResult};

/// Operations per variant when neither `--ops` nor `--duration` is given:
/// a few seconds of unpooled work on two cores in a release build.
pub const DEFAULT_OPS: u64 = 50_000;

/// Untimed operations per worker before each variant is measured.
pub(super) const WARMUP_OPS: u64 = 200;

/// Progress is published every this many operations per worker.
const PROGRESS_BATCH: u64 = 256;

/// Longest latency the histograms hold; longer ones are clamped.
pub(super) const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stop {
    /// After this many operations in total.
    Ops(u64),
    /// After this long.
    Duration(Duration),
}

/// `slotpool bench`: SQLite here, PostgreSQL in `pg_bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    match args.backend {
        BackendKind::Sqlite => run_sqlite(args),
        BackendKind::Postgres => pg_bench::run(args),
    }
}

fn run_sqlite(args: &BenchArgs) -> Result<(), CliError> {
    if args.url.is_some() {
        return Err(CliError::Usage(
            "--url names a PostgreSQL server: add --backend postgres".to_owned(),
        ));
    }
    let mut config = config_cmd::load(&args.source)?;
    // The temporary directory lives until the end of the run.
    let (db, _temp_dir) = match &args.db {
        Some(db) => (db.clone(), None),
        None => {
            let dir = tempfile::tempdir().map_err(CliError::TempDir)?;
            (dir.path().join("bench.db"), Some(dir))
        }
    };
    config.sqlite.path = db.to_string_lossy().into_owned();
    config.sqlite.read_only = false;
    config.sqlite.locking = bench_locking(args.locking.map(Locking::from), args.db.is_some())
        .unwrap_or(config.sqlite.locking);
    // The configuration was validated before these overrides: `--locking
    // process` on a non-unix target must fail as the setting would.
    config.validate()?;

    let plan = Plan::new(args, Stop::Ops(DEFAULT_OPS));

    // Create and seed the database through the same opener every variant
    // uses: a bad path fails here, before anything is timed, with SQLite's
    // error naming the file.
    let opener = SqliteManager::new(config.sqlite.clone())?;
    backends::seed(&opener.connect()?, args.rows)?;
    drop(opener);

    // Each variant runs alone: no connection of another variant stays open
    // (an application without a pool holds none between operations either).
    let mut results = Vec::new();
    let unpooled = Unpooled::new(&config.sqlite)?;
    results.push(plan.measure("unpooled", &unpooled)?);
    drop(unpooled);
    let pooled = Slotpool::new(config.clone())?;
    results.push(plan.measure("slotpool", &pooled)?);
    drop(pooled);
    for competitor in dedup(&args.compare) {
        match competitor {
            Competitor::R2d2 => {
                let r2d2 = R2d2::new(&config)?;
                results.push(plan.measure("r2d2", &r2d2)?);
            }
        }
    }

    let bench = BenchReport::new(
        &plan.describe(),
        &db,
        config.pool.max_size,
        config.sqlite.locking,
        results,
    );
    report::emit(&bench, args)
}

/// The locking to override the configured `sqlite.locking` with: the
/// `--locking` flag, else `process` for the bench's own temporary file (no
/// other process can know of it; unix only, as `unix-excl` is), else none (a
/// `--db` file may be shared).
fn bench_locking(flag: Option<Locking>, given_db: bool) -> Option<Locking> {
    flag.or((!given_db && cfg!(unix)).then_some(Locking::Process))
}

fn dedup(competitors: &[Competitor]) -> Vec<Competitor> {
    let mut unique = competitors.to_vec();
    unique.dedup();
    unique
}

/// What every variant runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// The operation mix.
    pub(super) workload: Workload,
    /// Threads or tasks issuing operations.
    pub(super) workers: u32,
    /// Rows in the items table.
    pub(super) rows: u32,
    /// When each variant's run stops.
    pub(super) stop: Stop,
    /// No progress bar.
    pub(super) quiet: bool,
}

/// The plan, as the report states it.
pub struct PlanSummary {
    /// The operation mix.
    pub workload: Workload,
    /// Worker threads.
    pub workers: u32,
    /// Rows in the items table.
    pub rows: u32,
    /// Operations per variant, when fixed.
    pub ops: Option<u64>,
    /// Time per variant, when fixed.
    pub duration: Option<Duration>,
}

/// One worker's part of a run.
#[derive(Clone, Copy)]
struct Run {
    worker: u32,
    stop: Stop,
    started: Instant,
}

/// One worker's tally.
struct Tally {
    histogram: Histogram<u64>,
    busy: u64,
}

impl Plan {
    /// The plan `args` ask for; `default` when neither `--ops` nor
    /// `--duration` is given.
    pub(super) fn new(args: &BenchArgs, default: Stop) -> Self {
        let stop = match (args.duration, args.ops) {
            (Some(duration), _) => Stop::Duration(duration),
            (None, Some(ops)) => Stop::Ops(ops),
            (None, None) => default,
        };
        Self {
            workload: args.workload,
            workers: args.workers,
            rows: args.rows,
            stop,
            quiet: args.quiet,
        }
    }

    /// `worker`'s share of `stop`'s operations (`u64::MAX` for a duration).
    pub(super) fn quota(&self, stop: Stop, worker: u32) -> u64 {
        match stop {
            Stop::Ops(total) => {
                let workers = u64::from(self.workers);
                total / workers + u64::from(u64::from(worker) < total % workers)
            }
            Stop::Duration(_) => u64::MAX,
        }
    }

    /// When a run of `stop` begun at `started` ends, if it is timed.
    pub(super) fn deadline(stop: Stop, started: Instant) -> Option<Instant> {
        match stop {
            Stop::Duration(duration) => Some(started + duration),
            Stop::Ops(_) => None,
        }
    }

    /// Whether the next operation is a write (one in ten for `mixed`).
    pub(super) fn is_write(&self, rng: &mut fastrand::Rng) -> bool {
        match self.workload {
            Workload::Read => false,
            Workload::Write => true,
            Workload::Mixed => rng.u8(0..10) == 0,
        }
    }

    /// Publishes a worker's progress after `done` operations (every
    /// `PROGRESS_BATCH`), as operations or as elapsed time.
    pub(super) fn publish(
        bar: &ProgressBar,
        done: u64,
        deadline: Option<Instant>,
        started: Instant,
        now: Instant,
    ) {
        if done.is_multiple_of(PROGRESS_BATCH) {
            match deadline {
                Some(_) => {
                    bar.set_position(u64::try_from((now - started).as_millis()).unwrap_or(u64::MAX))
                }
                None => bar.inc(PROGRESS_BATCH),
            }
        }
    }

    /// Publishes the operations a worker did after its last batch.
    pub(super) fn publish_rest(bar: &ProgressBar, done: u64, deadline: Option<Instant>) {
        if deadline.is_none() {
            bar.inc(done % PROGRESS_BATCH);
        }
    }

    pub(super) fn describe(&self) -> PlanSummary {
        let (ops, duration) = match self.stop {
            Stop::Ops(ops) => (Some(ops), None),
            Stop::Duration(duration) => (None, Some(duration)),
        };
        PlanSummary {
            workload: self.workload,
            workers: self.workers,
            rows: self.rows,
            ops,
            duration,
        }
    }

    pub(super) fn progress(&self, name: &str) -> ProgressBar {
        let (length, template) = match self.stop {
            Stop::Ops(ops) => (
                ops,
                "{msg:>9} [{bar:30}] {human_pos}/{human_len} ops, {eta} left",
            ),
            Stop::Duration(duration) => (
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                "{msg:>9} [{bar:30}] {elapsed} of {len} ms",
            ),
        };
        if self.quiet {
            return ProgressBar::hidden();
        }
        // Hidden by indicatif itself when stderr is not a terminal.
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(name.to_owned());
        bar
    }

    /// Runs the plan through `backend` on `workers` threads, after an
    /// untimed warm-up.
    fn measure(&self, name: &str, backend: &dyn Backend) -> Result<VariantResult, CliError> {
        // Untimed: lets a pool open its connections and fill their statement
        // caches, so the measurement shows the steady state.
        let warm_up = Stop::Ops(u64::from(self.workers) * WARMUP_OPS);
        self.run(backend, warm_up, &ProgressBar::hidden())?;

        let bar = self.progress(name);
        let (tallies, elapsed) = self.run(backend, self.stop, &bar)?;
        bar.finish_and_clear();
        let mut histogram = new_histogram();
        let mut busy = 0;
        for tally in tallies {
            busy += tally.busy;
            // Same bounds on both sides: adding cannot fail.
            let _ = histogram.add(&tally.histogram);
        }
        Ok(VariantResult::new(name, &histogram, Some(busy), elapsed))
    }

    /// `workers` threads running `stop`'s worth of operations.
    fn run(
        &self,
        backend: &dyn Backend,
        stop: Stop,
        bar: &ProgressBar,
    ) -> Result<(Vec<Tally>, Duration), CliError> {
        let failed = AtomicBool::new(false);
        let started = Instant::now();
        let outcomes: Vec<Result<Tally, CliError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.workers)
                .map(|worker| {
                    let failed = &failed;
                    let run = Run {
                        worker,
                        stop,
                        started,
                    };
                    scope.spawn(move || self.worker(run, backend, bar, failed))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or(Err(CliError::WorkerPanicked)))
                .collect()
        });
        let elapsed = started.elapsed();
        let tallies = outcomes.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok((tallies, elapsed))
    }

    /// One worker's loop: pick an operation, time it, record it.
    fn worker(
        &self,
        run: Run,
        backend: &dyn Backend,
        bar: &ProgressBar,
        failed: &AtomicBool,
    ) -> Result<Tally, CliError> {
        let Run {
            worker,
            stop,
            started,
        } = run;
        let mut rng = fastrand::Rng::with_seed(0x5107_9001 ^ u64::from(worker));
        let quota = self.quota(stop, worker);
        let deadline = Self::deadline(stop, started);
        let rows = i64::from(self.rows);
        let mut tally = Tally {
            histogram: new_histogram(),
            busy: 0,
        };
        let mut done = 0u64;
        while done < quota && !failed.load(Ordering::Relaxed) {
            let id = rng.i64(1..=rows);
            let is_write = self.is_write(&mut rng);
            let mut op = |conn: &Connection| {
                if is_write {
                    backends::write(conn, id)
                } else {
                    backends::read(conn, id)
                }
            };
            let start = Instant::now();
            let outcome = if is_write {
                backend.with_writer(&mut op)
            } else {
                backend.with_reader(&mut op)
            };
            let now = Instant::now();
            let nanos = u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX);
            tally
                .histogram
                .saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
            match outcome {
                Ok(()) => {}
                Err(OpError::Busy) => tally.busy += 1,
                Err(OpError::Fatal(error)) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            }
            done += 1;
            if deadline.is_some_and(|deadline| now >= deadline) {
                break;
            }
            Self::publish(bar, done, deadline, started, now);
        }
        Self::publish_rest(bar, done, deadline);
        Ok(tally)
    }
}

pub(super) fn new_histogram() -> Histogram<u64> {
    // Three significant digits from 1 ns to a minute.
    match Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3) {
        Ok(histogram) => histogram,
        Err(_) => unreachable!("constant bounds are valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_else_process_for_the_temporary_file_only() {
        for given_db in [false, true] {
            for flag in [Locking::Shared, Locking::Process] {
                assert_eq!(bench_locking(Some(flag), given_db), Some(flag));
            }
        }
        let temporary = cfg!(unix).then_some(Locking::Process);
        assert_eq!(bench_locking(None, false), temporary);
        assert_eq!(
            bench_locking(None, true),
            None,
            "a --db file keeps its setting"
        );
    }
}

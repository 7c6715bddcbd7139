//! `slotpool bench --backend postgres --url URL`: the pooled-vs-unpooled
//! comparison against a PostgreSQL server, each worker a task on a tokio
//! multi-thread runtime (one worker thread per core), timing every
//! operation into HDR histograms, on `bench`'s plan (workloads, `--ops` or
//! `--duration`, `--workers`, progress) and `report`'s table, JSON and plot.
//!
//! Owns: the PostgreSQL run: its settings (the pool's from the usual
//! configuration, the server's from `--url`), the runtime, the tasks and
//! their timing. It may not know the SQL (see `pg_backends`).
//!
//! `unpooled` runs first, then `slotpool`; only one is open at a time. Both
//! get an untimed warm-up (`WARMUP_OPS` per worker) that lets the pool open
//! its connections and prepare its statements.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use slotpool::AsyncManager;
use slotpool_postgres::{PgConfig, PgError, PgManager};

use super::args::BenchArgs;
use super::bench::{MAX_LATENCY_NS, Plan, Stop, WARMUP_OPS, new_histogram};
use super::config_cmd;
use super::error::CliError;
use super::pg_backends::{self, Variant};
use super::report::{self, BenchReport, PostgresRun, VariantResult};

/// Time per variant when neither `--ops` nor `--duration` is given. Not a
/// count, as for SQLite: a new connection (a new server process, and TLS
/// unless `sslmode=disable`) costs milliseconds, so one count would make
/// `unpooled` run for half a minute or `slotpool` for a few milliseconds.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3);

/// `slotpool bench --backend postgres`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let url = args
        .url
        .as_deref()
        .ok_or_else(|| CliError::Usage("--backend postgres needs --url".to_owned()))?;
    // The pool's settings as for SQLite (`--config`, `--profile`,
    // `SLOTPOOL_*`); the server's from the url.
    let config = config_cmd::load(&args.source)?;
    let settings = PgConfig::from_connection_string(url).map_err(PgError::from)?;
    let plan = Plan::new(args, Stop::Duration(DEFAULT_DURATION));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let runtime_threads = runtime.metrics().num_workers();

    let (target, server_version, results) = runtime.block_on(async {
        // Connect and seed through the manager both variants use: an
        // unreachable server or a bad password fails here, before anything
        // is timed, naming the server and user.
        let manager = PgManager::new(settings.clone())?;
        let target = manager.target().to_owned();
        let conn = manager.connect().await?;
        let server_version = pg_backends::seed(&conn, args.rows).await?;
        drop(conn);

        let mut results = Vec::new();
        let unpooled = Arc::new(Variant::Unpooled(Box::new(manager)));
        results.push(measure(&plan, "unpooled", &unpooled).await?);
        close(unpooled).await;
        let pooled = Arc::new(Variant::slotpool(
            PgManager::new(settings)?,
            config.pool.clone(),
        )?);
        results.push(measure(&plan, "slotpool", &pooled).await?);
        close(pooled).await;
        Ok::<_, CliError>((target, server_version, results))
    })?;
    drop(runtime);

    let bench = BenchReport::postgres(
        &plan.describe(),
        &target,
        PostgresRun {
            connections: config.pool.max_size,
            server_version,
            runtime_threads,
        },
        results,
    );
    report::emit(&bench, args)
}

/// Closes a variant once its tasks are done with it.
async fn close(variant: Arc<Variant>) {
    if let Ok(variant) = Arc::try_unwrap(variant) {
        variant.close().await;
    }
}

/// Runs the plan through `variant` on `workers` tasks, after an untimed
/// warm-up.
async fn measure(
    plan: &Plan,
    name: &str,
    variant: &Arc<Variant>,
) -> Result<VariantResult, CliError> {
    let warm_up = Stop::Ops(u64::from(plan.workers) * WARMUP_OPS);
    run_tasks(plan, variant, warm_up, &ProgressBar::hidden()).await?;

    let bar = plan.progress(name);
    let (histograms, elapsed) = run_tasks(plan, variant, plan.stop, &bar).await?;
    bar.finish_and_clear();
    let mut histogram = new_histogram();
    for part in &histograms {
        // Same bounds on both sides: adding cannot fail.
        let _ = histogram.add(part);
    }
    Ok(VariantResult::new(name, &histogram, None, elapsed))
}

/// `workers` tasks running `stop`'s worth of operations; the first error
/// stops them all and is returned.
async fn run_tasks(
    plan: &Plan,
    variant: &Arc<Variant>,
    stop: Stop,
    bar: &ProgressBar,
) -> Result<(Vec<Histogram<u64>>, Duration), CliError> {
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..plan.workers)
        .map(|worker| {
            let run = TaskRun {
                plan: *plan,
                worker,
                stop,
                started,
            };
            tokio::spawn(task(run, variant.clone(), bar.clone(), failed.clone()))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(handle.await.unwrap_or(Err(CliError::WorkerPanicked)));
    }
    let elapsed = started.elapsed();
    let histograms = outcomes.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((histograms, elapsed))
}

/// One task's part of a run.
struct TaskRun {
    plan: Plan,
    worker: u32,
    stop: Stop,
    started: Instant,
}

/// One task's loop: pick an operation, time it, record it.
async fn task(
    run: TaskRun,
    variant: Arc<Variant>,
    bar: ProgressBar,
    failed: Arc<AtomicBool>,
) -> Result<Histogram<u64>, CliError> {
    let TaskRun {
        plan,
        worker,
        stop,
        started,
    } = run;
    let mut rng = fastrand::Rng::with_seed(0x5107_9001 ^ u64::from(worker));
    let quota = plan.quota(stop, worker);
    let deadline = Plan::deadline(stop, started);
    let rows = i64::from(plan.rows);
    let mut histogram = new_histogram();
    let mut done = 0u64;
    while done < quota && !failed.load(Ordering::Relaxed) {
        let id = rng.i64(1..=rows);
        let is_write = plan.is_write(&mut rng);
        let start = Instant::now();
        let outcome = variant.run(is_write, id).await;
        let now = Instant::now();
        let nanos = u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX);
        histogram.saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
        if let Err(error) = outcome {
            failed.store(true, Ordering::Relaxed);
            return Err(error);
        }
        done += 1;
        if deadline.is_some_and(|deadline| now >= deadline) {
            break;
        }
        Plan::publish(&bar, done, deadline, started, now);
    }
    Plan::publish_rest(&bar, done, deadline);
    Ok(histogram)
}

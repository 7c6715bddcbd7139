//! slotpool-postgres against its peers on a real PostgreSQL server, in one
//! run: the same server, the same tokio runtime (multi-thread, 2 workers),
//! the same workloads and task counts.
//!
//! # Workloads and cells
//!
//! * `select1`: a prepared `SELECT 1`;
//! * `point_read`: a prepared `SELECT id, payload FROM
//!   slotpool_bench.point_read WHERE id = $1`, by a random primary key, on
//!   a table of 10,000 rows (`int4` key, 32-byte text) that the bench
//!   creates in its own schema `slotpool_bench` if missing (kept between
//!   runs, never dropped).
//!
//! Each workload runs at 1, 16 and 64 tasks on pools of 4 and 16
//! connections (6 cells per workload, 12 in all), each cell with each of
//! the 6 pools below: 72 measurements. Criterion group
//! `pg/<workload>/pool=<size>/tasks=<n>`, function `<pool>`.
//!
//! One operation is checkout + query + return: the pool's get, the cached
//! statement, `query_one` (the row's columns read and checked), and the
//! guard dropped. An iteration of criterion's is one operation; the
//! iteration's operations are shared out among the tasks (each claims the
//! next one from a counter until none is left) and the iteration is timed
//! from the first spawn to the last task's end. So criterion's time is
//! wall-clock time per operation across all tasks (1 / throughput), and its
//! `thrpt` line is operations per second. Each operation is also timed on
//! its own into an HDR histogram (per task, merged per cell), from before
//! the get to after the guard's drop: p50/p99/p99.9 are per-operation
//! latencies, waiting for a connection included. The histogram holds every
//! operation criterion ran for that cell (its warm-up and its samples); a
//! warm-up of our own runs before it (`max(256, 16 x tasks)` operations),
//! so every connection the tasks reach has its statement prepared.
//!
//! An operation that fails (a connection the server or an administrator
//! ended: the server is shared) is counted in the cell's `errors` and left
//! out of its latencies, and the run goes on (each pool replaces a closed
//! connection its own way); a wrong row panics.
//!
//! Every pool opens all its connections before its cell is measured (its
//! `max_size` checked out at once, then returned), and only one pool is
//! open at a time (the server's `max_connections` is 100 and other test
//! suites share it). Each pool is built anew for each cell and closed after.
//!
//! # The pools, and why each is set up so
//!
//! All connect with tokio-postgres's `NoTls` or sqlx without TLS
//! (`sslmode=disable` whatever the url says: the bench compares pools, not
//! TLS stacks), tag their connections `application_name =
//! slotpool-bench-pg`, and keep their default connection timeouts (30 s;
//! deadpool has none by default), so no operation fails while 64 tasks
//! queue for 4 connections.
//!
//! * `slotpool`: `Pool<Async<PgManager>>` with every default: `max_size`
//!   only; the manager from `PgManager::from_tokio_postgres` with the
//!   default `PgConfig` (`recycling = verified`, statement cache of 100),
//!   and the pool's `validation_idle_window` of 500 ms (a connection idle
//!   that long gets one round trip before it is handed out: rare in a
//!   measured cell, where connections cycle within milliseconds).
//!   Statements through the connection's `prepare_cached`, whose cache
//!   survives the return.
//! * `deadpool-postgres`: 0.14 with `RecyclingMethod::Fast`, its default
//!   (recycling checks `is_closed()` only, no round trip). Statements
//!   through `ClientWrapper::prepare_cached`, its per-connection cache.
//! * `bb8-postgres`: bb8 0.9 with bb8-postgres 0.9's manager and bb8's
//!   defaults, so `test_on_check_out = true`: bb8-postgres's `is_valid`
//!   sends `simple_query("")`, one round trip on every checkout.
//!   bb8-postgres has no statement cache (its connection is a bare
//!   `Client`), and preparing per checkout would add a round trip the
//!   others do not pay, so its manager is wrapped in a thin
//!   `ManageConnection` whose connection is the `Client` plus a map of the
//!   statements prepared on it; `connect`, `is_valid` and `has_broken` are
//!   bb8-postgres's own.
//! * `bb8-no-test`: the same with `test_on_check_out(false)`.
//! * `sqlx`: sqlx 0.8 (`runtime-tokio`, `postgres`; 0.9 needs Rust 1.94,
//!   above this workspace's 1.87) with its defaults, so
//!   `test_before_acquire = true`: a ping (a protocol Sync, one round trip)
//!   on every acquire. `sqlx::query` statements are prepared and cached per
//!   connection automatically (capacity 100). Note that sqlx 0.8 also pings
//!   every connection on release, in a task it spawns when the guard drops,
//!   with or without the acquire test: the connection is idle again only
//!   after that round trip (that is inside the throughput, not inside the
//!   measured latency, which ends at the drop).
//! * `sqlx-no-test`: the same with `test_before_acquire(false)`.
//!
//! # Running it
//!
//! `cargo bench -p slotpool-postgres --bench pg` (about 2.5 minutes on 2
//! cores: 72 measurements of about 2 s each, pool setup included);
//! `-- --quick` for a smoke run (criterion's quick mode, about 1 minute; no
//! JSON is written); `SLOTPOOL_BENCH_LONG=1` for longer measurements
//! (1 s warm-up, 5 s, 30 samples instead of 300 ms, 1 s, 10); a criterion
//! filter selects cells (`-- select1`, `-- 'pool=4/tasks=64'`). The server
//! is `SLOTPOOL_BENCH_PG_URL` (a libpq connection string, either form),
//! default `host=127.0.0.1 user=postgres dbname=test`. Without a reachable
//! server the bench prints a loud SKIPPED line and exits 0 (1 under
//! `SLOTPOOL_REQUIRE_PG=1`).
//!
//! Output: criterion's lines, a table per cell (ops/s and latency
//! percentiles per pool), the whole table at the end, and (not in
//! `--quick`) `<target>/bench-results/pg.json`: `bench`, `mode`,
//! `load_average_end` and `results` (`benches/common`'s envelope), where
//! `results` has `server`, `server_version`, `runtime`, `rows_in_table`,
//! `table`, `measure_s`, `peers` (each pool's setup in words) and `cells`,
//! one per cell and pool: `workload`, `pool_size`, `tasks`, `pool`,
//! `criterion_group`, `ops`, `elapsed_s`, `ops_per_s`, `ns_per_op` (all
//! over every iteration criterion timed), `criterion_mean_ns` (criterion's
//! own estimate), `latency_{mean,p50,p99,p999,max}_ns`, `errors`,
//! `first_error`, `load_average`.

#[path = "../../../benches/common/mod.rs"]
mod common;
mod peers;
mod results;
mod run;
mod server;

use peers::*;
use results::*;
use run::*;
use server::*;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use slotpool::runtime::Tokio;
use slotpool::{Async, Pool};
use slotpool_postgres::{PgConfig, PgManager, SslMode};
use sqlx::Row as _;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Statement};

/// The server when `SLOTPOOL_BENCH_PG_URL` is unset.
const DEFAULT_URL: &str = "host=127.0.0.1 user=postgres dbname=test";
/// Every peer's connections carry this `application_name`.
const APPLICATION_NAME: &str = "slotpool-bench-pg";
/// Rows in the point-read table.
const ROWS: i32 = 10_000;
const SELECT_ONE: &str = "SELECT 1";
const POINT_READ: &str = "SELECT id, payload FROM slotpool_bench.point_read WHERE id = $1";
/// Creates the bench's schema and table once (under an advisory lock, so
/// concurrent runs do not race on `IF NOT EXISTS`) and fills in any missing
/// rows.
const SETUP: &str = "BEGIN;
SELECT pg_advisory_xact_lock(5107900101);
CREATE SCHEMA IF NOT EXISTS slotpool_bench;
CREATE TABLE IF NOT EXISTS slotpool_bench.point_read (
    id int4 PRIMARY KEY,
    payload text NOT NULL
);
INSERT INTO slotpool_bench.point_read (id, payload)
    SELECT g, md5(g::text) FROM generate_series(1, 10000) AS g
    ON CONFLICT (id) DO NOTHING;
COMMIT;
ANALYZE slotpool_bench.point_read;";

const TASKS: [usize; 3] = [1, 16, 64];
const POOL_SIZES: [u32; 2] = [4, 16];
/// The runtime's worker threads.
const WORKERS: usize = 2;
/// Longest latency the histograms hold; longer ones are clamped.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    Select1,
    PointRead,
}

impl Workload {
    const ALL: [Workload; 2] = [Workload::Select1, Workload::PointRead];

    fn name(self) -> &'static str {
        match self {
            Workload::Select1 => "select1",
            Workload::PointRead => "point_read",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Workload::Select1 => SELECT_ONE,
            Workload::PointRead => POINT_READ,
        }
    }

    /// Checks a tokio-postgres row of this workload.
    fn check(self, row: &tokio_postgres::Row, id: i32) {
        match self {
            Workload::Select1 => assert_eq!(row.get::<_, i32>(0), 1),
            Workload::PointRead => {
                assert_eq!(row.get::<_, i32>(0), id);
                std::hint::black_box(row.get::<_, &str>(1));
            }
        }
    }
}

fn has_arg(flag: &str) -> bool {
    std::env::args().any(|arg| arg == flag)
}

/// Criterion's settings for this bench: 300 ms warm-up, 1 s measurement,
/// 10 samples (`SLOTPOOL_BENCH_LONG=1`: 1 s, 5 s, 30 samples); `--quick`
/// is criterion's own.
fn criterion_config() -> Criterion {
    let c = Criterion::default();
    let c = match common::mode() {
        common::Mode::Long => c
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .sample_size(30),
        _ => c
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10),
    };
    c.configure_from_args()
}

fn skip(why: &str) {
    let required = std::env::var("SLOTPOOL_REQUIRE_PG").is_ok_and(|v| v == "1");
    eprintln!(
        "\n*** SKIPPED: bench `pg` did NOT run: {why}. Point SLOTPOOL_BENCH_PG_URL at a \
         server (default `{DEFAULT_URL}`).{} ***\n",
        if required {
            " SLOTPOOL_REQUIRE_PG=1: failing."
        } else {
            " Set SLOTPOOL_REQUIRE_PG=1 to make this a failure."
        }
    );
    if required {
        std::process::exit(1);
    }
}

fn main() {
    let mut criterion = criterion_config();
    let listing = has_arg("--list");
    // `cargo bench` passes --bench; without it (cargo test --benches) or
    // with --test, criterion runs each benchmark once: no figures to keep.
    let measuring = has_arg("--bench") && !has_arg("--test") && !listing;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = match Server::from_env() {
        Ok(server) => server,
        Err(why) => return skip(&why),
    };
    let version = if listing {
        String::new()
    } else {
        match runtime.block_on(setup(&server)) {
            Ok(version) => version,
            Err(why) => {
                return skip(&format!(
                    "PostgreSQL is not reachable at {} ({why})",
                    server.shown
                ));
            }
        }
    };
    if !listing {
        println!(
            "\n== pg: PostgreSQL {version} at {}, tokio multi-thread with {WORKERS} workers, \
             load {:.2}",
            server.shown,
            common::load_average()
        );
    }

    let mut histograms: Vec<Histogram<u64>> = (0..64).map(|_| histogram()).collect();
    let mut rows: Vec<Row> = Vec::new();
    let mut seed = 0u64;
    for workload in Workload::ALL {
        for pool_size in POOL_SIZES {
            for tasks in TASKS {
                let group_id = group_name(workload, pool_size, tasks);
                let mut group = criterion.benchmark_group(&group_id);
                group.throughput(Throughput::Elements(1));
                let first_row = rows.len();
                for kind in Kind::ALL {
                    let id = format!("{group_id}/{}", kind.name());
                    if listing {
                        // Criterion prints the id without running it.
                        group.bench_function(kind.name(), |b| b.iter(|| ()));
                        continue;
                    }
                    if !common::selected(&id) {
                        continue;
                    }
                    let peer = runtime.block_on(Peer::build(kind, pool_size, &server));
                    // Untimed: every connection the tasks reach prepares its
                    // statement.
                    seed += 1;
                    let warm_up = (16 * tasks as u64).max(256);
                    let failures = Arc::new(Failures::default());
                    runtime.block_on(run(
                        &peer,
                        workload,
                        tasks,
                        warm_up,
                        seed,
                        &mut histograms,
                        &failures,
                    ));
                    for h in &mut histograms {
                        h.reset();
                    }
                    let failures = Arc::new(Failures::default());
                    let load = common::load_average();
                    let (mut ops, mut elapsed) = (0u64, Duration::ZERO);
                    group.bench_function(kind.name(), |b| {
                        b.iter_custom(|iters| {
                            seed += 1;
                            let wall = runtime.block_on(run(
                                &peer,
                                workload,
                                tasks,
                                iters,
                                seed,
                                &mut histograms,
                                &failures,
                            ));
                            ops += iters;
                            elapsed += wall;
                            wall
                        })
                    });
                    let mut latencies = histogram();
                    for h in &mut histograms {
                        latencies.add(&*h).expect("same bounds");
                        h.reset();
                    }
                    runtime.block_on(peer.close());
                    rows.push(Row {
                        workload,
                        pool_size,
                        tasks,
                        kind,
                        ops,
                        elapsed,
                        latencies,
                        errors: failures.count(),
                        first_error: failures.first(),
                        load,
                    });
                }
                group.finish();
                if rows.len() > first_row {
                    println!();
                    print_header();
                    for row in &rows[first_row..] {
                        print_row(row);
                    }
                    println!();
                }
            }
        }
    }
    criterion.final_summary();
    if rows.is_empty() {
        return;
    }

    println!(
        "\n== pg: every cell (latency per operation: checkout + query + return; \
         ops/s over every timed iteration)"
    );
    print_header();
    for row in &rows {
        print_row(row);
    }
    if !measuring {
        return;
    }
    let means = criterion_means();
    let peers: serde_json::Map<String, Value> = Kind::ALL
        .iter()
        .map(|kind| (kind.name().to_owned(), json!(kind.describe())))
        .collect();
    common::write_results(
        "pg",
        json!({
            "server": server.shown,
            "server_version": version,
            "runtime": { "flavor": "multi_thread", "workers": WORKERS },
            "rows_in_table": ROWS,
            "table": "slotpool_bench.point_read",
            "measure_s": criterion_measure_s(),
            "peers": peers,
            "cells": rows.iter().map(|row| row.json(&means)).collect::<Vec<_>>(),
        }),
    );
}

/// Criterion's measurement time per benchmark, as configured.
fn criterion_measure_s() -> f64 {
    match common::mode() {
        common::Mode::Long => 5.0,
        _ => 1.0,
    }
}

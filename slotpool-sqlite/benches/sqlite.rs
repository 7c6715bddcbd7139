//! Workload 4, statement cycle on SQLite: checkout + `prepare_cached("SELECT
//! 1")` + query + return, on 1 thread and on 2 threads (4 connections, so
//! nobody waits).
//!
//! Every pool wraps the same `slotpool_sqlite::SqliteManager` (a WAL file
//! database in a temporary directory, the crate's default pragmas and
//! statement cache), so only the pool machinery differs:
//!
//! * `owned` (the floor): each thread owns one connection from
//!   `SqliteManager::connect`, no pool;
//! * `slotpool`, `r2d2` (checkout tests off), `deadpool` (managed, through
//!   `common::block_on`; its `recycle` runs the manager's `reset`, as
//!   slotpool's return does);
//! * `unpooled`: open a connection per operation (connect + pragmas), run the
//!   statement, close.
//!
//! `cargo bench --bench sqlite` (add `-- --quick` for a smoke run).
//! Reported as time per statement per thread.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::block_on;
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::Connection;
use slotpool::Manager;
use slotpool_sqlite::{SqliteError, SqliteManager};

/// The statement every variant runs.
fn statement(conn: &Connection) -> i64 {
    conn.prepare_cached("SELECT 1")
        .unwrap()
        .query_row([], |row| row.get(0))
        .unwrap()
}

/// The same `SqliteManager` behind r2d2's and deadpool's manager traits.
struct Shared(SqliteManager);

impl r2d2::ManageConnection for Shared {
    type Connection = Connection;
    type Error = SqliteError;
    fn connect(&self) -> Result<Connection, SqliteError> {
        self.0.connect()
    }
    fn is_valid(&self, conn: &mut Connection) -> Result<(), SqliteError> {
        self.0.is_valid(conn)
    }
    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.0.has_broken(conn)
    }
}

impl deadpool::managed::Manager for Shared {
    type Type = Connection;
    type Error = SqliteError;
    async fn create(&self) -> Result<Connection, SqliteError> {
        self.0.connect()
    }
    async fn recycle(
        &self,
        conn: &mut Connection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<SqliteError> {
        self.0
            .reset(conn)
            .map_err(deadpool::managed::RecycleError::Backend)
    }
}

fn manager(dir: &tempfile::TempDir) -> SqliteManager {
    SqliteManager::file(dir.path().join("bench.db"))
}

/// Runs `op` `iters` times on each of `threads` threads at once (each with
/// its own per-thread state from `setup`) and returns the mean of the
/// threads' elapsed times.
fn run_threads<S>(
    threads: usize,
    iters: u64,
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Duration {
    let (setup, op) = (Arc::new(setup), Arc::new(op));
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (setup, op, start_line) = (setup.clone(), op.clone(), start_line.clone());
            thread::spawn(move || {
                let mut state = setup();
                start_line.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    op(&mut state);
                }
                start.elapsed()
            })
        })
        .collect();
    start_line.wait();
    let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total / threads as u32
}

fn one_thread(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("statement/1-thread");

    let conn = manager(&dir).connect().unwrap();
    group.bench_function("owned-floor", |b| b.iter(|| statement(&conn)));
    drop(conn);

    let pool = common::slotpool_pool(manager(&dir), 4);
    group.bench_function("slotpool", |b| b.iter(|| statement(&pool.get().unwrap())));
    drop(pool);

    let pool = common::r2d2_pool(Shared(manager(&dir)), 4);
    group.bench_function("r2d2", |b| b.iter(|| statement(&pool.get().unwrap())));
    drop(pool);

    let pool = common::deadpool_pool(Shared(manager(&dir)), 4);
    group.bench_function("deadpool", |b| {
        b.iter(|| statement(&block_on(pool.get()).unwrap()))
    });
    drop(pool);

    let m = manager(&dir);
    group.bench_function("unpooled", |b| b.iter(|| statement(&m.connect().unwrap())));
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("statement/2-threads");

    let m = Arc::new(manager(&dir));
    group.bench_function("owned-floor", |b| {
        b.iter_custom(|iters| {
            let m = m.clone();
            run_threads(
                2,
                iters,
                move || m.connect().unwrap(),
                |conn| {
                    statement(conn);
                },
            )
        })
    });

    let pool = Arc::new(common::slotpool_pool(manager(&dir), 4));
    group.bench_function("slotpool", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                || (),
                move |_| {
                    statement(&pool.get().unwrap());
                },
            )
        })
    });

    let pool = Arc::new(common::r2d2_pool(Shared(manager(&dir)), 4));
    group.bench_function("r2d2", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                || (),
                move |_| {
                    statement(&pool.get().unwrap());
                },
            )
        })
    });

    let pool = common::deadpool_pool(Shared(manager(&dir)), 4);
    group.bench_function("deadpool", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                || (),
                move |_| {
                    statement(&block_on(pool.get()).unwrap());
                },
            )
        })
    });

    group.bench_function("unpooled", |b| {
        b.iter_custom(|iters| {
            let m = m.clone();
            run_threads(
                2,
                iters,
                || (),
                move |_| {
                    statement(&m.connect().unwrap());
                },
            )
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = one_thread, two_threads }
criterion_main!(benches);

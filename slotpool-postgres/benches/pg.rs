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

#[path = "../../benches/common/mod.rs"]
mod common;

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

/// The pools under test, as configured (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Slotpool,
    Deadpool,
    Bb8,
    Bb8NoTest,
    Sqlx,
    SqlxNoTest,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Slotpool,
        Kind::Deadpool,
        Kind::Bb8,
        Kind::Bb8NoTest,
        Kind::Sqlx,
        Kind::SqlxNoTest,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Slotpool => "slotpool",
            Kind::Deadpool => "deadpool-postgres",
            Kind::Bb8 => "bb8-postgres",
            Kind::Bb8NoTest => "bb8-no-test",
            Kind::Sqlx => "sqlx",
            Kind::SqlxNoTest => "sqlx-no-test",
        }
    }

    /// How it is set up, for the JSON.
    fn describe(self) -> &'static str {
        match self {
            Kind::Slotpool => {
                "slotpool Pool<Async<PgManager>>, defaults (recycling verified, \
                 validation_idle_window 500ms); prepare_cached"
            }
            Kind::Deadpool => {
                "deadpool-postgres 0.14, RecyclingMethod::Fast (its default); prepare_cached"
            }
            Kind::Bb8 => {
                "bb8 0.9 + bb8-postgres 0.9, defaults (test_on_check_out = true: \
                 simple_query(\"\") per checkout); statements cached per connection by a \
                 thin wrapper manager"
            }
            Kind::Bb8NoTest => {
                "bb8 0.9 + bb8-postgres 0.9, test_on_check_out = false; statements cached \
                 per connection by a thin wrapper manager"
            }
            Kind::Sqlx => {
                "sqlx 0.8 PgPool, defaults (test_before_acquire = true: a ping per acquire; \
                 a ping per release in a spawned task); automatic statement cache"
            }
            Kind::SqlxNoTest => {
                "sqlx 0.8 PgPool, test_before_acquire = false (still a ping per release); \
                 automatic statement cache"
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The server: one connection string, as each client spells it.
// ---------------------------------------------------------------------------

struct Server {
    /// tokio-postgres's config: slotpool, deadpool-postgres, bb8-postgres.
    tokio: tokio_postgres::Config,
    /// sqlx's.
    sqlx: sqlx::postgres::PgConnectOptions,
    /// `host:port/dbname as user`, no password.
    shown: String,
}

impl Server {
    fn from_env() -> Result<Self, String> {
        let url = std::env::var("SLOTPOOL_BENCH_PG_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        // tokio-postgres's parse errors do not quote the string.
        let mut tokio = tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("SLOTPOOL_BENCH_PG_URL is not a connection string: {e}"))?;
        tokio
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .application_name(APPLICATION_NAME)
            .connect_timeout(Duration::from_secs(5));
        let host = tokio.get_hosts().first().cloned();
        let port = tokio.get_ports().first().copied().unwrap_or(5432);
        let user = tokio.get_user().unwrap_or("postgres").to_owned();
        let dbname = tokio.get_dbname().unwrap_or(&user).to_owned();
        let mut sqlx = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .port(port)
            .username(&user)
            .database(&dbname)
            .ssl_mode(sqlx::postgres::PgSslMode::Disable)
            .application_name(APPLICATION_NAME);
        let host_shown = match &host {
            Some(Host::Tcp(name)) => {
                sqlx = sqlx.host(name);
                name.clone()
            }
            #[cfg(unix)]
            Some(Host::Unix(dir)) => {
                sqlx = sqlx.socket(dir);
                dir.display().to_string()
            }
            None => {
                tokio.host("localhost");
                sqlx = sqlx.host("localhost");
                "localhost".to_owned()
            }
        };
        if let Some(password) = tokio.get_password() {
            sqlx = sqlx.password(&String::from_utf8_lossy(password));
        }
        Ok(Self {
            tokio,
            sqlx,
            shown: format!("{host_shown}:{port}/{dbname} as {user}"),
        })
    }

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.tokio.connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

/// Connects once and creates the table; `Err` (a reason to skip) when the
/// server cannot be reached. Returns the server's version.
async fn setup(server: &Server) -> Result<String, String> {
    let client = match tokio::time::timeout(Duration::from_secs(10), server.connect()).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => return Err(error_chain(&error)),
        Err(_) => return Err("no answer within 10 s".to_owned()),
    };
    // The server answered: from here on a failure is the bench's, not a skip.
    client
        .batch_execute(SETUP)
        .await
        .unwrap_or_else(|e| panic!("creating slotpool_bench.point_read: {}", error_chain(&e)));
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM slotpool_bench.point_read WHERE id BETWEEN 1 AND $1",
            &[&ROWS],
        )
        .await
        .expect("count rows")
        .get(0);
    assert_eq!(count, i64::from(ROWS), "slotpool_bench.point_read rows");
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .expect("server_version")
        .get(0);
    Ok(version)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// bb8-postgres with a statement cache per connection.
// ---------------------------------------------------------------------------

/// bb8-postgres's manager; its connection gains a map of prepared
/// statements. `connect`, `is_valid` and `has_broken` are bb8-postgres's.
struct Bb8Cached(bb8_postgres::PostgresConnectionManager<NoTls>);

struct CachedClient {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl bb8::ManageConnection for Bb8Cached {
    type Connection = CachedClient;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<CachedClient, tokio_postgres::Error> {
        Ok(CachedClient {
            client: self.0.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut CachedClient) -> Result<(), tokio_postgres::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut CachedClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

impl CachedClient {
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

// ---------------------------------------------------------------------------
// The pools.
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Peer {
    Slotpool(Pool<Async<PgManager>>),
    Deadpool(deadpool_postgres::Pool),
    Bb8(bb8::Pool<Bb8Cached>),
    Sqlx(sqlx::PgPool),
}

impl Peer {
    /// Builds `kind` with `size` connections, all opened before it returns.
    /// Runs on the runtime (slotpool's and bb8's tasks go there).
    async fn build(kind: Kind, size: u32, server: &Server) -> Peer {
        let peer = match kind {
            Kind::Slotpool => {
                let settings = PgConfig {
                    sslmode: SslMode::Disable,
                    ..PgConfig::default()
                };
                let manager = PgManager::from_tokio_postgres(server.tokio.clone(), settings)
                    .expect("slotpool manager");
                let pool = Pool::builder()
                    .max_size(size)
                    .build(Async::new(manager, Tokio::current()))
                    .expect("slotpool pool");
                Peer::Slotpool(pool)
            }
            Kind::Deadpool => {
                let manager = deadpool_postgres::Manager::from_config(
                    server.tokio.clone(),
                    NoTls,
                    deadpool_postgres::ManagerConfig {
                        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                    },
                );
                let pool = deadpool_postgres::Pool::builder(manager)
                    .max_size(size as usize)
                    .build()
                    .expect("deadpool pool");
                Peer::Deadpool(pool)
            }
            Kind::Bb8 | Kind::Bb8NoTest => {
                let manager = Bb8Cached(bb8_postgres::PostgresConnectionManager::new(
                    server.tokio.clone(),
                    NoTls,
                ));
                let mut builder = bb8::Pool::builder().max_size(size);
                if kind == Kind::Bb8NoTest {
                    builder = builder.test_on_check_out(false);
                }
                Peer::Bb8(builder.build(manager).await.expect("bb8 pool"))
            }
            Kind::Sqlx | Kind::SqlxNoTest => {
                let mut options = sqlx::postgres::PgPoolOptions::new().max_connections(size);
                if kind == Kind::SqlxNoTest {
                    options = options.test_before_acquire(false);
                }
                Peer::Sqlx(options.connect_lazy_with(server.sqlx.clone()))
            }
        };
        peer.open_all(size).await;
        peer
    }

    /// Checks out `size` connections at once (so each is opened), then
    /// returns them.
    async fn open_all(&self, size: u32) {
        match self {
            Peer::Slotpool(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get_async().await.expect("slotpool get"));
                }
            }
            Peer::Deadpool(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get().await.expect("deadpool get"));
                }
            }
            Peer::Bb8(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get().await.expect("bb8 get"));
                }
            }
            Peer::Sqlx(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.acquire().await.expect("sqlx acquire"));
                }
                drop(held);
                // sqlx returns connections in spawned tasks (after a ping):
                // wait until all are idle again.
                while pool.num_idle() < size as usize {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// One operation: checkout, the workload's cached statement, return.
    /// An error (a connection the server or an administrator ended) is
    /// returned, to be counted; a wrong row panics.
    async fn op(&self, workload: Workload, id: i32) -> Result<(), String> {
        let sql = workload.sql();
        match self {
            Peer::Slotpool(pool) => {
                let conn = pool.get_async().await.map_err(|e| error_chain(&e))?;
                let statement = conn
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => conn.query_one(&statement, &[]).await,
                    Workload::PointRead => conn.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Deadpool(pool) => {
                let client = pool.get().await.map_err(|e| error_chain(&e))?;
                let statement = client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => client.query_one(&statement, &[]).await,
                    Workload::PointRead => client.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Bb8(pool) => {
                let mut conn = pool.get().await.map_err(|e| error_chain(&e))?;
                let statement = conn.statement(sql).await.map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => conn.client.query_one(&statement, &[]).await,
                    Workload::PointRead => conn.client.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Sqlx(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| error_chain(&e))?;
                match workload {
                    Workload::Select1 => {
                        let one: i32 = sqlx::query_scalar(sql)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(|e| error_chain(&e))?;
                        assert_eq!(one, 1);
                    }
                    Workload::PointRead => {
                        let row = sqlx::query(sql)
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(|e| error_chain(&e))?;
                        assert_eq!(row.get::<i32, _>(0), id);
                        std::hint::black_box(row.get::<&str, _>(1));
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes every connection (waiting where the pool lets us).
    async fn close(self) {
        match self {
            Peer::Slotpool(pool) => {
                // Nothing is checked out: returns at once.
                let _ = pool.close_timeout(Duration::ZERO);
            }
            Peer::Deadpool(pool) => pool.close(),
            Peer::Bb8(pool) => drop(pool),
            Peer::Sqlx(pool) => pool.close().await,
        }
    }
}

// ---------------------------------------------------------------------------
// Running operations.
// ---------------------------------------------------------------------------

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds")
}

/// Operations that failed in a cell, and the first one's error.
#[derive(Default)]
struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Failures {
    fn record(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(error);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn first(&self) -> Option<String> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Runs `ops` operations of `workload` on `peer`, shared out among `tasks`
/// tasks, each recording the latencies of its successful operations into
/// its histogram (one per task, taken from and given back to
/// `histograms`) and counting its failed ones into `failures`. Returns the
/// wall time from the first spawn to the last task's end.
async fn run(
    peer: &Peer,
    workload: Workload,
    tasks: usize,
    ops: u64,
    seed: u64,
    histograms: &mut Vec<Histogram<u64>>,
    failures: &Arc<Failures>,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (peer, next, failures) = (peer.clone(), next.clone(), failures.clone());
            let mut latencies = histograms.pop().unwrap_or_else(histogram);
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003) ^ task as u64);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < ops {
                    let id = rng.i32(1..=ROWS);
                    let started = Instant::now();
                    match peer.op(workload, id).await {
                        Ok(()) => {
                            let nanos =
                                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            latencies.saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
                        }
                        Err(error) => failures.record(error),
                    }
                }
                latencies
            })
        })
        .collect();
    for handle in handles {
        histograms.push(handle.await.expect("a bench task panicked"));
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------
// Results.
// ---------------------------------------------------------------------------

struct Row {
    workload: Workload,
    pool_size: u32,
    tasks: usize,
    kind: Kind,
    ops: u64,
    elapsed: Duration,
    latencies: Histogram<u64>,
    /// Operations that failed (counted in `ops`, not in `latencies`).
    errors: u64,
    first_error: Option<String>,
    load: f64,
}

impl Row {
    fn group(&self) -> String {
        group_name(self.workload, self.pool_size, self.tasks)
    }

    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn json(&self, criterion_means: &HashMap<(String, String), f64>) -> Value {
        let l = &self.latencies;
        json!({
            "workload": self.workload.name(),
            "pool_size": self.pool_size,
            "tasks": self.tasks,
            "pool": self.kind.name(),
            "criterion_group": self.group(),
            "ops": self.ops,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_s": self.ops_per_s(),
            "ns_per_op": 1e9 / self.ops_per_s(),
            "criterion_mean_ns": criterion_means
                .get(&(self.group(), self.kind.name().to_owned()))
                .copied(),
            "latency_mean_ns": l.mean(),
            "latency_p50_ns": l.value_at_quantile(0.5),
            "latency_p99_ns": l.value_at_quantile(0.99),
            "latency_p999_ns": l.value_at_quantile(0.999),
            "latency_max_ns": l.max(),
            "errors": self.errors,
            "first_error": self.first_error,
            "load_average": self.load,
        })
    }
}

fn group_name(workload: Workload, pool_size: u32, tasks: usize) -> String {
    format!("pg/{}/pool={pool_size}/tasks={tasks}", workload.name())
}

fn us(nanos: u64) -> String {
    format!("{:.1}", nanos as f64 / 1_000.0)
}

fn print_header() {
    println!(
        "{:<11} {:>4} {:>5} {:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>5}",
        "workload",
        "pool",
        "tasks",
        "pool",
        "ops",
        "ops/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "load"
    );
}

fn print_row(row: &Row) {
    let l = &row.latencies;
    println!(
        "{:<11} {:>4} {:>5} {:<18} {:>9} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>5.2}",
        row.workload.name(),
        row.pool_size,
        row.tasks,
        row.kind.name(),
        row.ops,
        row.ops_per_s(),
        us(l.value_at_quantile(0.5)),
        us(l.value_at_quantile(0.99)),
        us(l.value_at_quantile(0.999)),
        us(l.max()),
        row.load,
    );
    if let Some(error) = &row.first_error {
        println!(
            "    !! {} of {} operations failed; the first: {error}",
            row.errors, row.ops
        );
    }
}

/// Criterion's mean estimates, `(group, function) -> ns`, from
/// `<target>/criterion/**/new/{benchmark,estimates}.json` (as
/// `scripts/bench_report.py` reads them).
fn criterion_means() -> HashMap<(String, String), f64> {
    fn walk(dir: &std::path::Path, out: &mut HashMap<(String, String), f64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && path
                    .parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n == "new")
            {
                let read = |p: &std::path::Path| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
                };
                let (Some(info), Some(estimates)) =
                    (read(&path), read(&path.with_file_name("estimates.json")))
                else {
                    continue;
                };
                let (Some(group), Some(function), Some(mean)) = (
                    info["group_id"].as_str(),
                    info["function_id"].as_str(),
                    estimates["mean"]["point_estimate"].as_f64(),
                ) else {
                    continue;
                };
                if group.starts_with("pg/") {
                    out.insert((group.to_owned(), function.to_owned()), mean);
                }
            }
        }
    }
    let mut out = HashMap::new();
    walk(&common::target_dir().join("criterion"), &mut out);
    out
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

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

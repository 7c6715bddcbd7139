#![cfg(not(feature = "loom"))]
//! A fleet through PgBouncer: 8 processes (this test binary started again
//! with `SLOTPOOL_FLEET_WORKER` set, running only `fleet_worker`), each
//! with a pool of 10 in pooler mode, against PgBouncer's `slotpool_fleet`
//! database (`default_pool_size` 10, every server connection logged in as
//! `slotpool_pgbouncer`). Each process runs a fixed number of transactions
//! with more tasks than connections, writing to a table of this run, and
//! prints its figures and pool statistics as one JSON line.
//!
//! Checked: no failed transaction; the server connections PgBouncer holds
//! (sampled from `pg_stat_activity` on the primary while the fleet runs)
//! never exceed its pool size; every process's statistics agree (every get
//! served, as many connections returned as acquired, nothing in use at the
//! end, no more than 10 connections open); the table holds exactly
//! processes × transactions rows. The figures are printed for
//! docs/SCALING.md:
//!
//! ```text
//! scripts/pgbouncer.sh start
//! cargo test -p slotpool-postgres --test fleet -- --nocapture
//! ```
//!
//! `SLOTPOOL_FLEET_PROCESSES` (8), `SLOTPOOL_FLEET_TRANSACTIONS` (500 per
//! process), `SLOTPOOL_FLEET_TASKS` (20 per process) and
//! `SLOTPOOL_FLEET_POOL_SIZE` (10 per process) change the shape.

#[path = "support/bouncer.rs"]
mod bouncer;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bouncer::{FLEET_DB, FLEET_ROLE, bouncer_or_skip};
use slotpool::runtime::Tokio;
use slotpool::{Async, Pool, PoolConfig};
use slotpool_postgres::PgManager;
use support::{PG_HOST, PG_PORT, PG_USER, monitor_or_skip, unique_tag};
use tokio_postgres::NoTls;

/// Set in a worker process: its number.
const WORKER_VAR: &str = "SLOTPOOL_FLEET_WORKER";
/// Set in a worker process: the table to write.
const TABLE_VAR: &str = "SLOTPOOL_FLEET_TABLE";
/// Marks the worker's result line among the test harness's output.
const RESULT_MARK: &str = "FLEET_RESULT ";
/// The longest the whole fleet may run.
const FLEET_DEADLINE: Duration = Duration::from_secs(300);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The worker: a no-op unless started by `fleet_of_processes_through_pgbouncer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_worker() {
    let Ok(worker) = std::env::var(WORKER_VAR) else {
        return;
    };
    let worker: u32 = worker.parse().expect("worker number");
    let table = std::env::var(TABLE_VAR).expect("table name");
    let transactions = knob("SLOTPOOL_FLEET_TRANSACTIONS", 500);
    let tasks = knob("SLOTPOOL_FLEET_TASKS", 20);
    let pool_size = knob("SLOTPOOL_FLEET_POOL_SIZE", 10) as u32;
    let bouncer = bouncer_or_skip("fleet_worker").await.expect("PgBouncer");
    let tag = unique_tag(&format!("fleet{worker}"));
    let config = bouncer.config(
        PoolConfig {
            max_size: pool_size,
            connection_timeout: Duration::from_secs(60),
            ..PoolConfig::default()
        },
        bouncer.settings(&tag, FLEET_DB),
    );
    let pool = Arc::new(
        Pool::builder()
            .config(config.pool)
            .build(Async::new(
                PgManager::new(config.postgres).expect("settings"),
                Tokio::current(),
            ))
            .expect("pool"),
    );
    let next = Arc::new(AtomicU64::new(0));
    let acquired = Arc::new(AtomicU64::new(0));
    let released = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let insert =
        format!("INSERT INTO {table} (worker, n, server_pid) VALUES ($1, $2, pg_backend_pid())");
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (pool, next, acquired, released, committed, failures, insert) = (
            pool.clone(),
            next.clone(),
            acquired.clone(),
            released.clone(),
            committed.clone(),
            failures.clone(),
            insert.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= transactions {
                    return;
                }
                let mut conn = match pool.get_async().await {
                    Ok(conn) => conn,
                    Err(error) => {
                        failures.lock().unwrap().push(format!("get: {error}"));
                        continue;
                    }
                };
                acquired.fetch_add(1, Ordering::Relaxed);
                let outcome = async {
                    let tx = conn.transaction().await?;
                    tx.execute(&insert, &[&(worker as i32), &(n as i64)]).await?;
                    let row = tx
                        .query_one("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND $1::int4 >= 0", &[&(worker as i32)])
                        .await?;
                    let _: i64 = row.get(0);
                    tx.commit().await
                }
                .await;
                match outcome {
                    Ok(()) => {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => failures
                        .lock()
                        .unwrap()
                        .push(format!("transaction {n}: {error:?}")),
                }
                drop(conn);
                released.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = started.elapsed();
    let stats = pool.stats();
    let failures = failures.lock().unwrap().clone();
    let line = serde_json::json!({
        "worker": worker,
        "pid": std::process::id(),
        "transactions": transactions,
        "committed": committed.load(Ordering::Relaxed),
        "failed": failures.len(),
        "failures": failures.iter().take(5).collect::<Vec<_>>(),
        "acquired": acquired.load(Ordering::Relaxed),
        "released": released.load(Ordering::Relaxed),
        "elapsed_ms": elapsed.as_millis() as u64,
        "throughput": transactions as f64 / elapsed.as_secs_f64(),
        "max_size": pool_size,
        "gets": stats.counters.gets,
        "hits": stats.counters.hits,
        "waited": stats.counters.waited,
        "timeouts": stats.counters.timeouts,
        "created": stats.counters.created,
        "closed": stats.counters.closed.iter().map(|c| c.1).sum::<u64>(),
        "total": stats.gauges.total,
        "idle": stats.gauges.idle,
        "in_use": stats.gauges.in_use,
        "wait_p99_us": stats.acquire_wait.p99.as_micros() as u64,
        "wait_max_us": stats.acquire_wait.max.as_micros() as u64,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{RESULT_MARK}{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// A connection to the primary's `test` database, where PgBouncer's
/// `slotpool_fleet` leads.
async fn primary_test_db() -> tokio_postgres::Client {
    let conn = format!(
        "host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=test application_name=sp_fleet_monitor"
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls)
        .await
        .expect("the primary's test database");
    tokio::spawn(connection);
    client
}

struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_processes_through_pgbouncer() {
    if std::env::var(WORKER_VAR).is_ok() {
        return;
    }
    let test = "fleet_of_processes_through_pgbouncer";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(bouncer) = bouncer_or_skip(test).await else {
        return;
    };
    let processes = knob("SLOTPOOL_FLEET_PROCESSES", 8);
    let transactions = knob("SLOTPOOL_FLEET_TRANSACTIONS", 500);
    let tasks = knob("SLOTPOOL_FLEET_TASKS", 20);
    let pool_size = knob("SLOTPOOL_FLEET_POOL_SIZE", 10);
    assert!(
        processes * pool_size <= u64::from(bouncer.max_client_conn),
        "the fleet's client connections must fit PgBouncer's max_client_conn"
    );
    monitor
        .exec(&format!(
            "DO $$ BEGIN CREATE ROLE {FLEET_ROLE} LOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .await;
    let db = primary_test_db().await;
    let table = unique_tag("fleet");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (worker int NOT NULL, n bigint NOT NULL, server_pid int NOT NULL, \
         PRIMARY KEY (worker, n)); GRANT SELECT, INSERT ON {table} TO {FLEET_ROLE}"
    ))
    .await
    .expect("create the fleet's table");
    let count_servers = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{FLEET_ROLE}' \
         AND backend_type = 'client backend'"
    );

    // PgBouncer's own view: clients waiting for a server connection.
    let admin = {
        let conn = format!(
            "host={} port={} user={PG_USER} dbname=pgbouncer",
            bouncer::BOUNCER_HOST,
            bouncer::BOUNCER_PORT
        );
        let (client, connection) = tokio_postgres::connect(&conn, NoTls)
            .await
            .expect("PgBouncer's admin console");
        tokio::spawn(connection);
        client
    };
    let (mut max_cl_waiting, mut max_wait_us) = (0u64, 0u64);

    let exe = std::env::current_exe().expect("this test binary");
    let started = Instant::now();
    let mut fleet = Fleet(Vec::new());
    for worker in 0..processes {
        let child = Command::new(&exe)
            .args(["--exact", "fleet_worker", "--nocapture", "--test-threads=1"])
            .env(WORKER_VAR, worker.to_string())
            .env(TABLE_VAR, &table)
            .env("SLOTPOOL_FLEET_TRANSACTIONS", transactions.to_string())
            .env("SLOTPOOL_FLEET_TASKS", tasks.to_string())
            .env("SLOTPOOL_FLEET_POOL_SIZE", pool_size.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a worker");
        fleet.0.push(child);
    }

    // Sample PgBouncer's server connections until every worker has exited.
    let mut samples = 0u64;
    let mut max_servers = 0i64;
    loop {
        let servers: i64 = db
            .query_one(&count_servers, &[])
            .await
            .expect("sample pg_stat_activity")
            .get(0);
        samples += 1;
        max_servers = max_servers.max(servers);
        for message in admin.simple_query("SHOW POOLS").await.expect("SHOW POOLS") {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                if row.get("database") != Some(FLEET_DB) {
                    continue;
                }
                let field =
                    |name: &str| -> u64 { row.get(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
                max_cl_waiting = max_cl_waiting.max(field("cl_waiting"));
                max_wait_us = max_wait_us.max(field("maxwait") * 1_000_000 + field("maxwait_us"));
            }
        }
        let mut running = 0;
        for child in &mut fleet.0 {
            if child.try_wait().expect("a worker's status").is_none() {
                running += 1;
            }
        }
        if running == 0 {
            break;
        }
        assert!(
            started.elapsed() < FLEET_DEADLINE,
            "the fleet did not finish within {FLEET_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = started.elapsed();

    let mut results = Vec::new();
    for (worker, child) in fleet.0.iter_mut().enumerate() {
        let status = child.wait().expect("a worker's status");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                // The harness's "test fleet_worker ... " may lead the line.
                let at = line.find(RESULT_MARK)?;
                Some(line[at + RESULT_MARK.len()..].to_owned())
            });
        assert!(status.success(), "worker {worker} exited with {status}");
        let line = line.unwrap_or_else(|| panic!("worker {worker} printed no result"));
        let result: serde_json::Value = serde_json::from_str(&line).expect("a JSON result");
        results.push(result);
    }

    let rows: i64 = db
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count the rows")
        .get(0);
    let distinct_servers: i64 = db
        .query_one(
            &format!("SELECT count(DISTINCT server_pid) FROM {table}"),
            &[],
        )
        .await
        .expect("count the server connections")
        .get(0);
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop the fleet's table");

    let number = |r: &serde_json::Value, key: &str| {
        r[key].as_u64().unwrap_or_else(|| panic!("{key} in {r}"))
    };
    let mut total_throughput = 0.0;
    eprintln!(
        "\nfleet: {processes} processes x {transactions} transactions, {tasks} tasks and a pool of \
         {pool_size} each, through PgBouncer (transaction mode, default_pool_size {})",
        bouncer.pool_size
    );
    for r in &results {
        let worker = number(r, "worker");
        assert_eq!(
            number(r, "failed"),
            0,
            "worker {worker} failed: {}",
            r["failures"]
        );
        assert_eq!(number(r, "committed"), transactions, "worker {worker}: {r}");
        assert_eq!(number(r, "acquired"), transactions, "worker {worker}: {r}");
        assert_eq!(
            number(r, "released"),
            number(r, "acquired"),
            "worker {worker}: {r}"
        );
        assert_eq!(number(r, "gets"), transactions, "worker {worker}: {r}");
        assert_eq!(
            number(r, "hits") + number(r, "waited"),
            number(r, "gets"),
            "worker {worker}: every get served: {r}"
        );
        assert_eq!(number(r, "timeouts"), 0, "worker {worker}: {r}");
        assert_eq!(
            number(r, "in_use"),
            0,
            "worker {worker}: nothing left checked out: {r}"
        );
        assert_eq!(
            number(r, "total"),
            number(r, "idle"),
            "worker {worker}: {r}"
        );
        assert!(number(r, "total") <= pool_size, "worker {worker}: {r}");
        assert!(
            number(r, "created") - number(r, "closed") <= pool_size,
            "worker {worker}: {r}"
        );
        let throughput = r["throughput"].as_f64().unwrap_or(0.0);
        total_throughput += throughput;
        eprintln!(
            "  worker {worker}: {throughput:7.0} tx/s, {} ms, pool wait p99 {} us (max {} us), \
             gets {} (hits {}, waited {}), connections opened {}",
            number(r, "elapsed_ms"),
            number(r, "wait_p99_us"),
            number(r, "wait_max_us"),
            number(r, "gets"),
            number(r, "hits"),
            number(r, "waited"),
            number(r, "created"),
        );
    }
    eprintln!(
        "  fleet: {} transactions in {:.2} s wall = {:.0} tx/s (sum of workers {:.0} tx/s); \
         server connections: at most {max_servers} seen in {samples} samples of pg_stat_activity, \
         {distinct_servers} distinct backends served transactions; PgBouncer pool size {}; \
         PgBouncer: at most {max_cl_waiting} clients waiting for a server, longest wait \
         {max_wait_us} us\n",
        processes * transactions,
        wall.as_secs_f64(),
        (processes * transactions) as f64 / wall.as_secs_f64(),
        total_throughput,
        bouncer.pool_size,
    );
    assert_eq!(
        rows,
        (processes * transactions) as i64,
        "every transaction's row"
    );
    assert!(max_servers >= 1, "the sampler saw PgBouncer's connections");
    assert!(
        max_servers <= i64::from(bouncer.pool_size),
        "PgBouncer held {max_servers} server connections, above its pool size {}",
        bouncer.pool_size
    );
    assert!(
        distinct_servers <= i64::from(bouncer.pool_size),
        "{distinct_servers} server backends served the fleet (pool size {})",
        bouncer.pool_size
    );
}

#![cfg(not(feature = "loom"))]
//! slotpool against a real PostgreSQL server, through the r2d2 adapter and
//! `r2d2_postgres`, unchanged.
//!
//! The server is expected at 127.0.0.1:5432 (trust auth, user `postgres`,
//! database `postgres`). When it is not reachable each test prints a loud
//! `SKIPPED` line and passes, unless `SLOTPOOL_REQUIRE_PG=1`, which makes it
//! fail. Each test tags its pooled connections with a unique
//! `application_name`, and an unpooled monitor connection counts (and kills)
//! exactly those backends in `pg_stat_activity`.

mod pg_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pg_support::proxy::Proxy;
use pg_support::{PG_ADDR, conn_string, eventually, monitor_or_skip, pg_addr, unique_tag};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use slotpool::compat::r2d2::R2d2Manager;
use slotpool::{Builder, Error, Pool};

type PgManager = R2d2Manager<PostgresConnectionManager<NoTls>>;

/// An `r2d2_postgres` manager for `tag`'s connections through `port`.
fn manager(port: u16, tag: &str) -> PgManager {
    let config = conn_string(port, tag)
        .parse()
        .expect("a valid connection string");
    R2d2Manager::new(PostgresConnectionManager::new(config, NoTls))
}

/// The reset hook r2d2_postgres users want: end any transaction left open.
/// Outside a transaction PostgreSQL answers ROLLBACK with a warning only; on a
/// dead connection it fails, and the pool discards the connection.
fn with_rollback(manager: PgManager) -> PgManager {
    manager.with_reset(|client| client.batch_execute("ROLLBACK"))
}

/// A builder with test-sized timeouts: `get()` waits up to 5 s, a health
/// check up to 1 s (it must stay below `connection_timeout`), and failed
/// connects are retried after 10 ms, backing off to at most 200 ms.
fn builder() -> Builder<PgManager> {
    Pool::builder()
        .validation_timeout(Duration::from_secs(1))
        .connect_backoff_initial(Duration::from_millis(10))
        .connect_backoff_max(Duration::from_millis(200))
}

fn backend_pid(client: &mut postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("SELECT pg_backend_pid()")
        .get(0)
}

/// 1. The server never sees more than `max_size` connections while 8 threads
///    hammer `get()` + `SELECT 1`, and the pool shrinks back to `min_idle`.
#[test]
fn server_connections_stay_within_max_size() {
    const MAX_SIZE: u32 = 4;
    const MIN_IDLE: u32 = 2;
    let Some(mut monitor) = monitor_or_skip("load") else {
        return;
    };
    let tag = unique_tag("load");
    let pool = builder()
        .max_size(MAX_SIZE)
        .min_idle(MIN_IDLE)
        .idle_timeout(Some(Duration::from_millis(200)))
        .build(manager(PG_ADDR.1, &tag))
        .expect("pool");
    eventually(
        "min_idle connections at build",
        Duration::from_secs(5),
        || monitor.count(&tag) == MIN_IDLE as usize,
    );

    let stop = AtomicBool::new(false);
    let queries = AtomicUsize::new(0);
    let (samples, peak) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            // Its own unpooled connection: `Client` is not `Sync`.
            let mut sampler = monitor_or_skip("load_sampler").expect("monitor connection");
            let (mut samples, mut peak) = (0_usize, 0_usize);
            // Exact, because nothing is discarded during the load: a
            // discarded connection's backend can outlive its slot by a few
            // milliseconds on the server, while its replacement connects.
            while !stop.load(Ordering::SeqCst) {
                let count = sampler.count(&tag);
                assert!(
                    count <= MAX_SIZE as usize,
                    "{count} server connections for max_size {MAX_SIZE}"
                );
                peak = peak.max(count);
                samples += 1;
                std::thread::sleep(Duration::from_millis(2)); // sampling pace
            }
            (samples, peak)
        });
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    // Bounded by time (and a generous count), so the
                    // sampler sees the whole load whatever the machine's speed.
                    let end = Instant::now() + Duration::from_millis(1200);
                    for _ in 0..200_000 {
                        if Instant::now() >= end {
                            break;
                        }
                        let mut conn = pool.get().expect("get() under load");
                        conn.simple_query("SELECT 1").expect("SELECT 1");
                        drop(conn);
                        queries.fetch_add(1, Ordering::Relaxed);
                        let state = pool.state();
                        assert!(state.connections <= MAX_SIZE, "pool state {state}");
                    }
                })
            })
            .collect();
        // Join every worker before judging any, and stop the sampler first:
        // a failed worker must fail the test, not leave the sampler looping.
        let finished: Vec<_> = workers.into_iter().map(|worker| worker.join()).collect();
        stop.store(true, Ordering::SeqCst);
        let sampled = sampler.join().expect("sampler thread");
        for worker in finished {
            worker.expect("worker thread");
        }
        sampled
    });
    let after = monitor.count(&tag);
    eprintln!(
        "load: {} queries, {samples} pg_stat_activity samples, peak {peak}, after {after}",
        queries.load(Ordering::Relaxed)
    );
    assert!(
        samples >= 20,
        "only {samples} samples were taken during the load"
    );
    assert!(
        peak >= MIN_IDLE as usize,
        "the load never used the pool's connections"
    );
    assert!(
        after <= MAX_SIZE as usize,
        "{after} server connections after the load"
    );

    // Idle retirement (maintenance, every idle_timeout / 4) brings the pool,
    // and the server's view of it, back to min_idle and no further.
    eventually(
        "idle retirement down to min_idle on the server",
        Duration::from_secs(5),
        || monitor.count(&tag) == MIN_IDLE as usize,
    );
    let state = pool.state();
    assert_eq!(state.connections, MIN_IDLE, "pool state {state}");
    {
        let mut conn = pool.get().expect("get() after retirement");
        conn.simple_query("SELECT 1").expect("SELECT 1");
    }
    let state = pool.state();
    assert_eq!(state.connections, MIN_IDLE, "pool state {state}");
    assert_eq!(monitor.count(&tag), MIN_IDLE as usize);
}

/// Runs `threads` x `rounds` of `get()` + `SELECT pg_backend_pid()`; any error
/// fails the test. Returns the backend pids that served the queries.
fn traffic(pool: &Pool<PgManager>, threads: usize, rounds: usize) -> HashSet<i32> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut pids = HashSet::new();
                    for round in 0..rounds {
                        let mut conn = pool
                            .get()
                            .unwrap_or_else(|error| panic!("get() #{round} failed: {error}"));
                        let pid = conn
                            .query_one("SELECT pg_backend_pid()", &[])
                            .unwrap_or_else(|error| panic!("query #{round} failed: {error}"))
                            .get(0);
                        pids.insert(pid);
                    }
                    pids
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("traffic thread"))
            .collect()
    })
}

/// 2. `pg_terminate_backend` on every pool connection, idle and then in use:
///    only the query running on a killed connection fails; the dead
///    connections are discarded and the pool refills with new backends.
#[test]
fn terminated_backends_are_discarded_and_replaced() {
    const MAX_SIZE: u32 = 3;
    let Some(mut monitor) = monitor_or_skip("kill") else {
        return;
    };
    let tag = unique_tag("kill");
    let pool = builder()
        .max_size(MAX_SIZE)
        .validation_idle_window(Duration::ZERO) // validate on every checkout
        .build(with_rollback(manager(PG_ADDR.1, &tag)))
        .expect("pool");

    // Fill the pool: MAX_SIZE connections checked out together, then idle.
    let held: Vec<_> = (0..MAX_SIZE).map(|_| pool.get().expect("get()")).collect();
    drop(held);
    assert_eq!(pool.state().idle_connections, MAX_SIZE);

    // While idle.
    let killed: HashSet<i32> = monitor.terminate_all(&tag).into_iter().collect();
    assert_eq!(killed.len(), MAX_SIZE as usize, "killed {killed:?}");
    let served = traffic(&pool, 3, 20);
    assert!(
        served.is_disjoint(&killed),
        "a killed backend served a query: {served:?}"
    );
    let now: HashSet<i32> = monitor.pids(&tag).into_iter().collect();
    assert!(
        now.is_disjoint(&killed) && !now.is_empty(),
        "backends now {now:?}"
    );
    assert!(now.len() <= MAX_SIZE as usize);

    // While in use: every connection is checked out; one runs a long query.
    let mut held: Vec<_> = (0..MAX_SIZE).map(|_| pool.get().expect("get()")).collect();
    let mut running = held.pop().expect("a connection");
    let running_pid = backend_pid(&mut running);
    let killed = std::thread::scope(|scope| {
        let query = scope.spawn(move || {
            let result = running.simple_query("SELECT pg_sleep(30)");
            drop(running); // returned dead: has_broken / reset discard it
            result
        });
        eventually("pg_sleep to start", Duration::from_secs(5), || {
            monitor.is_running(running_pid, "SELECT pg_sleep")
        });
        let killed: HashSet<i32> = monitor.terminate_all(&tag).into_iter().collect();
        let error = query
            .join()
            .expect("query thread")
            .expect_err("the query on a killed backend must fail");
        eprintln!("the one expected error: {error:?}");
        // The server's FATAL, or the closed socket if that was read first.
        assert!(
            error.code() == Some(&postgres::error::SqlState::ADMIN_SHUTDOWN) || error.is_closed(),
            "not a termination: {error:?}"
        );
        killed
    });
    assert_eq!(killed.len(), MAX_SIZE as usize, "killed {killed:?}");
    assert!(killed.contains(&running_pid));
    drop(held); // returned without a query: ROLLBACK fails, so they are discarded
    let state = pool.state();
    assert_eq!(state.connections, 0, "dead connections kept: {state}");

    let served = traffic(&pool, 3, 20);
    assert!(
        served.is_disjoint(&killed),
        "a killed backend served a query: {served:?}"
    );
    let now: HashSet<i32> = monitor.pids(&tag).into_iter().collect();
    assert!(
        now.is_disjoint(&killed) && !now.is_empty(),
        "backends now {now:?}"
    );
    assert!(now.len() <= MAX_SIZE as usize);
}

/// The database-down contract for one `get_timeout(WAIT)`: it fails, within
/// its deadline plus a margin, with a typed error carrying the connect error.
/// Returns how long it took and whether it was a timeout (not fail-fast).
fn down_get(pool: &Pool<PgManager>, label: &str) -> (Duration, bool) {
    const WAIT: Duration = Duration::from_millis(500);
    const MARGIN: Duration = Duration::from_secs(2);
    let start = Instant::now();
    let result = pool.get_timeout(WAIT);
    let elapsed = start.elapsed();
    let Err(error) = result else {
        panic!("{label}: get_timeout succeeded while the database is down");
    };
    assert!(
        elapsed <= WAIT + MARGIN,
        "{label}: get_timeout({WAIT:?}) took {elapsed:?}"
    );
    eprintln!("{label} after {elapsed:?}: {error}");
    let timed_out = match &error {
        Error::TimedOut {
            last_connect_error, ..
        } => {
            // The stale connection is discarded at checkout and the worker's
            // connects fail within milliseconds, so a timeout carries the
            // typed cause.
            let cause: &postgres::Error = last_connect_error
                .as_deref()
                .unwrap_or_else(|| panic!("{label}: no last connect error: {error}"));
            assert!(!cause.to_string().is_empty());
            true
        }
        Error::Connect { source, .. } => {
            // Fail-fast: `fail_fast_after` consecutive failures, nothing open.
            let cause: &postgres::Error = source;
            assert!(!cause.to_string().is_empty());
            false
        }
        other => panic!("{label}: unexpected error while down: {other}"),
    };
    (elapsed, timed_out)
}

/// `get()` until it succeeds, at most 5 s. With fail-fast on, the first gets
/// after an outage may still fail at once with the last connect error while
/// the worker reconnects; those must stay typed.
fn recover(pool: &Pool<PgManager>, label: &str) {
    let start = Instant::now();
    let mut attempts = 0;
    let mut conn = loop {
        attempts += 1;
        match pool.get() {
            Ok(conn) => break conn,
            Err(error @ (Error::Connect { .. } | Error::TimedOut { .. })) => {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{label}: no recovery 5 s after resume: {error}"
                );
                std::thread::sleep(Duration::from_millis(10)); // retry pace
            }
            Err(other) => panic!("{label}: unexpected error after resume: {other}"),
        }
    };
    conn.simple_query("SELECT 1")
        .unwrap_or_else(|error| panic!("{label}: SELECT 1 after resume: {error}"));
    eprintln!(
        "{label}: recovered in {:?} ({attempts} get calls)",
        start.elapsed()
    );
}

/// 3. The database-down contract over a real socket: while the proxy is
///    blackholed every `get_timeout(500ms)` returns a typed error within its
///    deadline; after `resume()` the same pools serve again. Two pools share
///    the proxy: one with fail-fast (the default) and one without, whose
///    gets wait out their deadline.
#[test]
fn database_down_fails_typed_within_deadline_and_recovers() {
    let Some(mut monitor) = monitor_or_skip("down") else {
        return;
    };
    let tag = unique_tag("down");
    let proxy = Proxy::start(pg_addr()).expect("proxy");
    let pool = |fail_fast_after| {
        builder()
            .max_size(2)
            .validation_idle_window(Duration::ZERO)
            .fail_fast_after(fail_fast_after)
            .build(manager(proxy.port(), &tag))
            .expect("pool")
    };
    let (fast, patient) = (pool(5), pool(0));
    for pool in [&fast, &patient] {
        pool.get()
            .expect("get() through the proxy")
            .simple_query("SELECT 1")
            .expect("SELECT 1 through the proxy");
    }
    assert_eq!(
        monitor.count(&tag),
        2,
        "the pools connect through the proxy"
    );

    proxy.blackhole();
    eventually(
        "the severed backends to exit",
        Duration::from_secs(5),
        || monitor.count(&tag) == 0,
    );
    for attempt in 0..4 {
        down_get(&fast, &format!("fail-fast pool, down #{attempt}"));
    }
    for attempt in 0..2 {
        let (elapsed, timed_out) = down_get(&patient, &format!("patient pool, down #{attempt}"));
        assert!(timed_out, "fail_fast_after = 0 must wait out the deadline");
        assert!(
            elapsed >= Duration::from_millis(450),
            "returned early: {elapsed:?}"
        );
    }

    proxy.resume();
    recover(&fast, "fail-fast pool");
    recover(&patient, "patient pool");
    // No backend outlives its connection: the server holds exactly the
    // connections the pools hold (checks abandoned during the outage freed
    // their room for replacements, so a pool may now hold its max_size).
    eventually(
        "server backends == pooled connections",
        Duration::from_secs(10),
        || {
            let pooled: u32 = [&fast, &patient]
                .iter()
                .map(|pool| pool.state().connections)
                .sum();
            pooled <= 4 && monitor.count(&tag) == pooled as usize
        },
    );
}

/// 4. A transaction left open by one borrower is rolled back (by the
///    `with_reset` hook) before the next borrower gets the same connection.
#[test]
fn open_transaction_is_rolled_back_before_next_borrower() {
    let Some(_monitor) = monitor_or_skip("reset") else {
        return;
    };
    let leaked = |reset: bool| -> (Option<i64>, i64) {
        let tag = unique_tag("reset");
        let manager = manager(PG_ADDR.1, &tag);
        let manager = if reset {
            with_rollback(manager)
        } else {
            manager
        };
        let pool = builder()
            .max_size(1) // so the next borrower gets the same session
            .build(manager)
            .expect("pool");

        let first_pid = {
            let mut conn = pool.get().expect("first borrower");
            // Separate calls: in one multi-statement query, BEGIN would pull
            // the CREATE into the transaction that is about to be rolled back.
            conn.batch_execute("CREATE TEMP TABLE reset_probe (v int)")
                .expect("create a session-local table");
            conn.batch_execute("BEGIN; INSERT INTO reset_probe VALUES (1)")
                .expect("open a transaction");
            let txid: Option<i64> = conn
                .query_one("SELECT txid_current_if_assigned()", &[])
                .expect("txid")
                .get(0);
            assert!(txid.is_some(), "the insert assigned a transaction id");
            backend_pid(&mut conn)
        }; // returned with the transaction open

        let mut conn = pool.get().expect("second borrower");
        assert_eq!(backend_pid(&mut conn), first_pid, "the same session");
        let txid: Option<i64> = conn
            .query_one("SELECT txid_current_if_assigned()", &[])
            .expect("txid")
            .get(0);
        let rows: i64 = conn
            .query_one("SELECT count(*) FROM reset_probe", &[])
            .expect("count")
            .get(0);
        (txid, rows)
    };

    // Without the hook (r2d2's behaviour) the next borrower inherits it...
    let (txid, rows) = leaked(false);
    assert!(
        txid.is_some(),
        "control: the transaction should leak without a reset"
    );
    assert_eq!(
        rows, 1,
        "control: the uncommitted row is visible to the next borrower"
    );
    // ...with it, the next borrower starts clean.
    let (txid, rows) = leaked(true);
    assert_eq!(txid, None, "the next borrower is inside a transaction");
    assert_eq!(rows, 0, "the uncommitted row survived the return");
}

/// 4b. A borrower that returns a connection in an *aborted* transaction (a
///     statement failed after BEGIN) leaves the next borrower a usable one.
#[test]
fn aborted_transaction_is_cleared_before_next_borrower() {
    let Some(_monitor) = monitor_or_skip("abort") else {
        return;
    };
    let tag = unique_tag("abort");
    let pool = builder()
        .max_size(1)
        .build(with_rollback(manager(PG_ADDR.1, &tag)))
        .expect("pool");
    let first_pid = {
        let mut conn = pool.get().expect("first borrower");
        let pid = backend_pid(&mut conn);
        conn.batch_execute("BEGIN").expect("BEGIN");
        conn.batch_execute("SELECT 1/0")
            .expect_err("division by zero aborts the transaction");
        let error = conn
            .simple_query("SELECT 1")
            .expect_err("statements fail in an aborted transaction");
        assert_eq!(
            error.code(),
            Some(&postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
        );
        pid
    }; // returned in the aborted transaction
    let mut conn = pool.get().expect("second borrower");
    assert_eq!(
        backend_pid(&mut conn),
        first_pid,
        "the same session, usable again"
    );
}

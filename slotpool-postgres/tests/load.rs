#![cfg(not(feature = "loom"))]
//! `Pool<Async<PgManager>>` under load against the real server: 64 tasks on
//! 8 connections (a multi-thread runtime with 2 workers), each test bounded
//! (a few seconds of load, everything joined within [`HARD_LIMIT`]).
//!
//! * exclusive use: no connection is held by two borrowers at once, checked
//!   on the client (a set of the backend pids in use) and on the server (a
//!   transaction-local setting each borrower sets and reads back), with
//!   every result checked;
//! * `pg_terminate_backend` of every pool backend, three times, mid-load: zero
//!   failed requests after one retry, and no retry at all for a request
//!   that did not overlap a kill (see [`terminated_backends_cost_at_most_one_retry`]);
//! * credential rotation (`ALTER ROLE ... PASSWORD`, `set_credentials`,
//!   `evict_idle`) mid-load: zero failed requests;
//! * a storm of cancelled `get_async` futures and of queries cancelled
//!   mid-transaction: every checkout sees no transaction and no statement
//!   left running (nor one cancelled under it), and no connection is lost;
//! * two single-connection reductions of what the storm and the kill test
//!   run into: a cancel request sent for a statement that had already
//!   finished hits the next borrower's statement, and a connection whose
//!   borrower just got 57P01 is handed out again within the validation
//!   window.
//!
//! The tests run one at a time (`one_at_a_time`): each drives 64 tasks on
//! a 2-worker runtime, and several at once on a 2-core machine starve each
//! other's connects past their bounds.
//!
//! The single-connection versions (a killed idle connection replaced, an
//! abandoned query cancelled on return, rotation with trust-auth roles, an
//! outage behind a proxy) are in `pool.rs`; a server restart under load is
//! in `restart.rs`, its own test binary.

mod support;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, ErrorClass, Pool, PoolConfig};
use slotpool_postgres::{Credentials, PgConfig, PgConnection, PgError, PgManager, Secret};
use support::{monitor_or_skip, pool_config, settings, unique_tag};
use tokio::task::JoinHandle;
use tokio_postgres::SimpleQueryMessage;

use slotpool_postgres::PgPool;

/// Concurrent borrowers.
const TASKS: usize = 64;
/// The pool's `max_size`.
const CONNECTIONS: u32 = 8;
/// The whole load of a test, kills and rotation included, must be over
/// within this (a hang fails the test instead of stalling the run).
const HARD_LIMIT: Duration = Duration::from_secs(25);

fn build(settings: PgConfig, config: PoolConfig) -> Arc<PgPool> {
    let manager = PgManager::new(settings).expect("valid settings");
    Arc::new(
        Pool::builder()
            .config(config)
            .build(Async::new(manager, Tokio::current()))
            .expect("a valid pool"),
    )
}

/// What the tasks of one test share: a stop flag, the failures they saw
/// (the first one stops them all), and a request counter.
#[derive(Default)]
struct Run {
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    done: AtomicU64,
}

impl Run {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn fail(&self, why: String) {
        self.failures.lock().unwrap().push(why);
        self.stop();
    }

    fn failed(&self) -> bool {
        !self.failures.lock().unwrap().is_empty()
    }

    fn count(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn assert_no_failures(&self, what: &str) {
        let failures = self.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{what}: {} failure(s), the first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}

/// Serialises the tests of this file (see the module docs); a failed test
/// does not block the rest (tokio's mutex is not poisoned).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Waits for every task, at most [`HARD_LIMIT`] after `started`; a task's
/// panic is raised here.
async fn join_all<T>(started: Instant, handles: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        let left = HARD_LIMIT.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, handle).await {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(error)) => std::panic::resume_unwind(error.into_panic()),
            Err(_) => panic!("the load did not finish within {HARD_LIMIT:?}"),
        }
    }
    results
}

/// Lets the load run until `condition` holds, at most `limit`; fails early
/// if a task failed.
async fn until(run: &Run, what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition().await {
        run.assert_no_failures(what);
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets the load run for `period` (time under load, not synchronisation),
/// stopping early if a task failed.
async fn under_load(run: &Run, period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end && !run.failed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The columns of the first row of a simple query's result.
fn first_row(messages: &[SimpleQueryMessage]) -> Option<Vec<Option<String>>> {
    messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(
            (0..row.len())
                .map(|i| row.get(i).map(str::to_owned))
                .collect(),
        ),
        _ => None,
    })
}

/// A small deterministic generator (xorshift64*), one per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % bound
    }
}

// ---------------------------------------------------------------------------
// 1. Exclusive use.
// ---------------------------------------------------------------------------

const EXCLUSIVE_REQUESTS_PER_TASK: u64 = 40;

/// 64 tasks, 8 connections, 40 requests each. A request is a transaction:
/// `SET LOCAL slotpool.holder` to a token only this request knows, read it
/// back with the backend's pid, claim the pid in a shared in-use set
/// (failing if another borrower holds it), run a second statement that
/// reads the token again and computes from a parameter, commit, release
/// the pid, return the connection. Two borrowers on one connection would
/// meet in the set, or see each other's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_eight_connections_never_share_one() {
    let _serial = one_at_a_time().await;
    let test = "sixty_four_tasks_on_eight_connections_never_share_one";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("load_exclusive");
    let pool = build(settings(&tag), pool_config(CONNECTIONS));
    let run = Run::new();
    let in_use = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let started = Instant::now();
    let handles = (0..TASKS as u64)
        .map(|task| {
            let (pool, run, in_use, seen) =
                (pool.clone(), run.clone(), in_use.clone(), seen.clone());
            tokio::spawn(async move {
                for n in 0..EXCLUSIVE_REQUESTS_PER_TASK {
                    if run.stopped() {
                        return;
                    }
                    let value = (task * 1_000 + n) as i64;
                    match exclusive_request(&pool, &in_use, &seen, value).await {
                        Ok(()) => run.count(),
                        Err(why) => run.fail(format!("task {task}, request {n}: {why}")),
                    }
                }
            })
        })
        .collect();
    join_all(started, handles).await;
    let elapsed = started.elapsed();
    run.assert_no_failures("exclusive use");
    assert_eq!(run.done(), TASKS as u64 * EXCLUSIVE_REQUESTS_PER_TASK);
    assert!(in_use.lock().unwrap().is_empty());

    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.len() <= CONNECTIONS as usize,
        "requests ran on {} backends, max_size {CONNECTIONS}",
        seen.len()
    );
    let open: HashSet<i32> = monitor.pids(&tag).await.into_iter().collect();
    assert!(
        open.is_subset(&seen),
        "open backends {open:?}, served {seen:?}"
    );
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state}");
    eprintln!(
        "{test}: {} requests on {} connections in {elapsed:?}",
        run.done(),
        seen.len()
    );
}

async fn exclusive_request(
    pool: &PgPool,
    in_use: &Mutex<HashSet<i32>>,
    seen: &Mutex<HashSet<i32>>,
    value: i64,
) -> Result<(), String> {
    let mut conn = pool.get_async().await.map_err(|e| got_nothing(&e))?;
    let token = format!("holder-{value}");
    let tx = conn
        .transaction()
        .await
        .map_err(|e| format!("BEGIN: {}", text(e)))?;
    tx.batch_execute(&format!("SET LOCAL slotpool.holder = '{token}'"))
        .await
        .map_err(|e| format!("SET LOCAL: {}", text(e)))?;
    let mine = tx
        .prepare_cached("SELECT pg_backend_pid(), current_setting('slotpool.holder')")
        .await
        .map_err(|e| format!("prepare: {}", text(e)))?;
    let row = tx
        .query_one(&mine, &[])
        .await
        .map_err(|e| format!("first statement: {}", text(e)))?;
    let (pid, holder): (i32, String) = (row.get(0), row.get(1));
    if holder != token {
        return Err(format!(
            "backend {pid}: set {token:?}, read {holder:?} (another borrower's)"
        ));
    }
    if !in_use.lock().unwrap().insert(pid) {
        return Err(format!("backend {pid} is held by two borrowers at once"));
    }
    seen.lock().unwrap().insert(pid);
    // Held: the statements below give the other tasks time to collide.
    let outcome = async {
        let again = tx
            .prepare_cached(
                "SELECT current_setting('slotpool.holder'), pg_backend_pid(), $1::int8 * 3",
            )
            .await
            .map_err(|e| format!("prepare: {}", text(e)))?;
        let row = tx
            .query_one(&again, &[&value])
            .await
            .map_err(|e| format!("second statement: {}", text(e)))?;
        let (holder, same, tripled): (String, i32, i64) = (row.get(0), row.get(1), row.get(2));
        if holder != token || same != pid || tripled != value * 3 {
            return Err(format!(
                "backend {pid}: expected ({token:?}, {pid}, {}), got ({holder:?}, {same}, {tripled})",
                value * 3
            ));
        }
        tx.commit().await.map_err(|e| format!("COMMIT: {}", text(e)))
    }
    .await;
    // Released before the guard goes back to the pool.
    in_use.lock().unwrap().remove(&pid);
    outcome?;
    if conn.dirt().any() {
        return Err(format!("a clean request left {:?}", conn.dirt()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Every pool backend terminated mid-load.
// ---------------------------------------------------------------------------

/// How many times the test kills every pool backend.
const KILL_ROUNDS: usize = 3;

/// Why one attempt of a request failed.
enum AttemptError {
    /// The connection was finished under the query (closed, I/O, a FATAL
    /// such as 57P01 `admin_shutdown`): what `classify` calls permanent on
    /// an open connection, and what a client may retry elsewhere.
    Connection(String),
    /// Anything else: the get failed, a wrong result, an ordinary error.
    Other(String),
}

async fn doubling_attempt(pool: &PgPool, value: i64) -> Result<(), AttemptError> {
    let conn = pool
        .get_async()
        .await
        .map_err(|e| AttemptError::Other(got_nothing(&e)))?;
    let classified = |error: tokio_postgres::Error| {
        let error = PgError::from(error);
        if error.class() == ErrorClass::Permanent {
            AttemptError::Connection(error.to_string())
        } else {
            AttemptError::Other(error.to_string())
        }
    };
    let statement = conn
        .prepare_cached("SELECT $1::int8 * 2")
        .await
        .map_err(classified)?;
    let row = conn
        .query_one(&statement, &[&value])
        .await
        .map_err(classified)?;
    let doubled: i64 = row.get(0);
    if doubled != value * 2 {
        return Err(AttemptError::Other(format!(
            "{value} * 2 came back as {doubled}"
        )));
    }
    Ok(())
}

/// A request that needed its retry: when it started and when its first
/// attempt failed.
struct Retried {
    started: Instant,
    failed_at: Instant,
    why: String,
}

/// Every backend of the pool is terminated at once, three times, while 64 tasks
/// loop over requests (a checkout and one query, `SELECT $1 * 2`, result
/// checked).
///
/// The retry window, as asserted: a request whose attempt fails because
/// the connection was finished under it (closed, 57P01 `admin_shutdown`,
/// an I/O error: `classify` says permanent) drops that connection and
/// retries once, at once, on a fresh checkout. A request fails if its
/// retry fails too, or if anything else goes wrong (a get error, a wrong
/// result). Asserted:
///
/// * zero failed requests;
/// * a request that did not overlap a kill (it started after the killed
///   backends had all exited, or its attempt failed before the kill
///   began) never needs its retry;
/// * first attempts fail at most once per killed backend: a dead
///   connection is not handed out again.
///
/// The pool validates every checkout (`validation_idle_window = 0`: one
/// Sync round trip, `recycling = "verified"`), and `has_broken` closes a
/// connection whose client saw the close. (With a validation window, a
/// connection whose borrower just got 57P01 can be handed out again before
/// its client sees the close: see
/// `a_connection_killed_under_its_borrower_is_not_handed_out_again`.)
///
/// Checked against broken managers (a wrapper, not kept): with `is_valid`
/// always passing, the per-backend bound fails in most runs; with
/// `is_valid` passing and `has_broken` always false, requests fail after
/// their retry in every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_cost_at_most_one_retry() {
    let _serial = one_at_a_time().await;
    let test = "terminated_backends_cost_at_most_one_retry";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("load_terminate");
    let pool = build(
        settings(&tag),
        PoolConfig {
            validation_idle_window: Duration::ZERO,
            ..pool_config(CONNECTIONS)
        },
    );
    let run = Run::new();
    let retries = Arc::new(Mutex::new(Vec::<Retried>::new()));
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS as i64)
        .map(|task| {
            let (pool, run, retries) = (pool.clone(), run.clone(), retries.clone());
            tokio::spawn(async move {
                let mut n = 0i64;
                while !run.stopped() {
                    n += 1;
                    let value = task * 1_000_000 + n;
                    let request_started = Instant::now();
                    let why = match doubling_attempt(&pool, value).await {
                        Ok(()) => {
                            run.count();
                            continue;
                        }
                        Err(AttemptError::Connection(why)) => why,
                        Err(AttemptError::Other(why)) => {
                            run.fail(format!("task {task}, request {n}: {why}"));
                            return;
                        }
                    };
                    retries.lock().unwrap().push(Retried {
                        started: request_started,
                        failed_at: Instant::now(),
                        why: why.clone(),
                    });
                    match doubling_attempt(&pool, value).await {
                        Ok(()) => run.count(),
                        Err(AttemptError::Connection(again) | AttemptError::Other(again)) => {
                            run.fail(format!(
                                "task {task}, request {n}: failed after its retry: \
                                 first {why}; then {again}"
                            ));
                            return;
                        }
                    }
                }
            })
        })
        .collect();

    let mut windows = Vec::new();
    let mut killed = Vec::new();
    for round in 1..=KILL_ROUNDS {
        until(
            &run,
            "the pool to fill under load",
            Duration::from_secs(5),
            async || monitor.count(&tag).await == CONNECTIONS as usize,
        )
        .await;
        under_load(&run, Duration::from_millis(300)).await;
        let before = run.done();
        let kill_started = Instant::now();
        let pids = monitor.terminate_at_once(&tag).await;
        let kill_ended = Instant::now();
        assert_eq!(
            pids.len(),
            CONNECTIONS as usize,
            "round {round}: killed {pids:?}"
        );
        windows.push((kill_started, kill_ended));
        killed.extend(pids);
        until(
            &run,
            "requests to succeed after the kill",
            Duration::from_secs(5),
            async || run.done() >= before + TASKS as u64,
        )
        .await;
    }
    under_load(&run, Duration::from_millis(300)).await;
    run.stop();
    join_all(started, handles).await;
    let elapsed = started.elapsed();
    run.assert_no_failures("requests after one retry");

    let retries = std::mem::take(&mut *retries.lock().unwrap());
    let outside: Vec<String> = retries
        .iter()
        .filter(|retried| {
            !windows
                .iter()
                .any(|&(from, to)| retried.started <= to && retried.failed_at >= from)
        })
        .map(|retried| {
            format!(
                "started {:?} after the test began, failed {:?} later: {}",
                retried.started - started,
                retried.failed_at - retried.started,
                retried.why
            )
        })
        .collect();
    assert!(
        outside.is_empty(),
        "requests that overlapped no kill needed a retry (kill windows {:?}): {outside:#?}",
        windows
            .iter()
            .map(|&(from, to)| (from - started, to - started))
            .collect::<Vec<_>>()
    );
    assert!(
        retries.len() <= killed.len(),
        "{} first attempts failed for {} killed backends: dead connections were handed out again",
        retries.len(),
        killed.len()
    );
    let open = monitor.pids(&tag).await;
    assert!(
        open.iter().all(|pid| !killed.contains(pid)),
        "a killed backend is open again?"
    );
    let stats = pool.stats();
    eprintln!(
        "{test}: {} requests, {} retried, {} backends killed, {} validations ({} failed), in {elapsed:?}",
        run.done(),
        retries.len(),
        killed.len(),
        stats.counters.validations,
        stats.counters.validation_failures,
    );
}

// ---------------------------------------------------------------------------
// 3. Credential rotation under load.
// ---------------------------------------------------------------------------

const OLD_PASSWORD: &str = "L0ad-0ld-passw0rd";
const NEW_PASSWORD: &str = "L0ad-n3w-passw0rd";

/// A role that must log in with a SCRAM password; 64 tasks query through
/// the pool as it. Mid-load the password changes on the server (`ALTER
/// ROLE`), the manager gets the new one (`set_credentials`) and the pool
/// evicts (`evict_idle`): idle connections close now, checked-out ones on
/// return, and new ones log in with the new password. Zero failed
/// requests, and none of the connections opened with the old password is
/// left.
///
/// Between `ALTER ROLE` and `set_credentials` a connect with the old
/// password would fail (28P01, permanent). None happens: the pool is full
/// and nothing closes its connections until the eviction, which comes
/// after the new credentials. That order is the rotation the README
/// documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_rotate_under_load_without_a_failed_request() {
    let _serial = one_at_a_time().await;
    let test = "credentials_rotate_under_load_without_a_failed_request";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(role) = monitor.password_role(test, OLD_PASSWORD).await else {
        return;
    };
    let tag = unique_tag("load_rotation");
    let pool = build(
        PgConfig {
            user: role.name.clone(),
            password: Secret::new(OLD_PASSWORD),
            ..settings(&tag)
        },
        pool_config(CONNECTIONS),
    );
    let run = Run::new();
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS as i64)
        .map(|task| {
            let (pool, run, user) = (pool.clone(), run.clone(), role.name.clone());
            tokio::spawn(async move {
                let mut n = 0i64;
                while !run.stopped() {
                    n += 1;
                    let value = task * 1_000_000 + n;
                    match as_user_request(&pool, &user, value).await {
                        Ok(()) => run.count(),
                        Err(why) => run.fail(format!("task {task}, request {n}: {why}")),
                    }
                }
            })
        })
        .collect();

    until(
        &run,
        "the pool to fill under load",
        Duration::from_secs(5),
        async || monitor.count(&tag).await == CONNECTIONS as usize,
    )
    .await;
    under_load(&run, Duration::from_millis(200)).await;
    let old: Vec<i32> = monitor.pids(&tag).await;
    monitor
        .exec(&format!(
            "ALTER ROLE \"{}\" PASSWORD '{NEW_PASSWORD}'",
            role.name
        ))
        .await;
    pool.manager()
        .manager()
        .set_credentials(Credentials::new(role.name.clone(), NEW_PASSWORD));
    pool.evict_idle();
    let rotated_at = run.done();
    until(
        &run,
        "every connection opened with the old password to close",
        Duration::from_secs(5),
        async || {
            let open = monitor.pids(&tag).await;
            !open.is_empty() && open.iter().all(|pid| !old.contains(pid))
        },
    )
    .await;
    until(
        &run,
        "requests on the new connections",
        Duration::from_secs(5),
        async || run.done() >= rotated_at + 2 * TASKS as u64,
    )
    .await;
    under_load(&run, Duration::from_millis(200)).await;
    run.stop();
    join_all(started, handles).await;
    let elapsed = started.elapsed();
    run.assert_no_failures("rotation under load");
    let open = monitor.pids(&tag).await;
    assert!(
        open.iter().all(|pid| !old.contains(pid)),
        "old {old:?}, open {open:?}"
    );
    assert!(open.len() <= CONNECTIONS as usize);
    eprintln!(
        "{test}: {} requests ({} after the rotation), {} connections replaced, in {elapsed:?}",
        run.done(),
        run.done() - rotated_at,
        old.len()
    );
}

async fn as_user_request(pool: &PgPool, user: &str, value: i64) -> Result<(), String> {
    let conn = pool.get_async().await.map_err(|e| got_nothing(&e))?;
    let statement = conn
        .prepare_cached("SELECT current_user::text, $1::int8 + 7")
        .await
        .map_err(|e| format!("prepare: {}", text(e)))?;
    let row = conn
        .query_one(&statement, &[&value])
        .await
        .map_err(|e| format!("query: {}", text(e)))?;
    let (current, sum): (String, i64) = (row.get(0), row.get(1));
    if current != user || sum != value + 7 {
        return Err(format!(
            "expected ({user:?}, {}), got ({current:?}, {sum})",
            value + 7
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Cancelled gets and cancelled queries.
// ---------------------------------------------------------------------------

/// How long a checkout's own check may take; a statement left running
/// (the cancelled ones sleep 5 s) would hold it longer.
const CHECK_BOUND: Duration = Duration::from_secs(2);

/// What every checkout of the storm checks first: no transaction open
/// (`txid_current_if_assigned()` is NULL and the transaction began with
/// this statement; in a failed transaction the statement fails) and no
/// statement still running before it (it answers within [`CHECK_BOUND`],
/// where a leftover `pg_sleep(5)` would hold it), and no cancel request
/// meant for a previous borrower's statement hits it.
async fn check_clean(conn: &PgConnection) -> Result<(), String> {
    let sql = "SELECT txid_current_if_assigned() IS NULL, \
               transaction_timestamp() = statement_timestamp(), pg_backend_pid()";
    let messages = match tokio::time::timeout(CHECK_BOUND, conn.simple_query(sql)).await {
        Ok(Ok(messages)) => messages,
        Ok(Err(error)) => {
            return Err(format!(
                "the checkout's first statement failed: {}",
                text(error)
            ));
        }
        Err(_) => {
            return Err(format!(
                "the checkout's first statement waited {CHECK_BOUND:?}: \
                 a statement was still running on the connection"
            ));
        }
    };
    match first_row(&messages).as_deref() {
        Some([Some(no_txid), Some(fresh), Some(_pid)]) if no_txid == "t" && fresh == "t" => Ok(()),
        other => Err(format!(
            "handed out inside a transaction (no txid assigned, began with this statement, pid): {other:?}"
        )),
    }
}

/// Counts of what the storm did, to show it did it.
#[derive(Default)]
struct StormCounts {
    gets_cancelled: AtomicU64,
    requests_cancelled: AtomicU64,
    queries_cancelled: AtomicU64,
    checkouts_checked: AtomicU64,
}

/// One iteration of the storm; `Err` only for a checkout that was not
/// clean (or a wrong result).
async fn storm_step(pool: &PgPool, rng: &mut Rng, counts: &StormCounts) -> Result<(), String> {
    let tiny = Duration::from_micros(rng.below(3_000));
    match rng.below(7) {
        // A get dropped while it waits (most do: 64 tasks, 8 connections),
        // or the instant it is served.
        0 | 1 => match tokio::time::timeout(tiny, pool.get_async()).await {
            Err(_) => {
                counts.gets_cancelled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(conn) => {
                let conn = conn.map_err(|e| got_nothing(&e))?;
                checked(&conn, counts).await
            }
        },
        // A whole request dropped at a random point: mid-get, mid-check,
        // mid-BEGIN, mid-statement or mid-COMMIT. A check that completes
        // must pass.
        2 | 3 => {
            let verdict = Mutex::new(Ok(()));
            let request = async {
                let mut conn = pool.get_async().await.map_err(|e| got_nothing(&e))?;
                let result = checked(&conn, counts).await;
                *verdict.lock().unwrap() = result.clone();
                result?;
                let tx = conn.transaction().await.map_err(text)?;
                tx.query("SELECT txid_current(), pg_sleep(0.001)", &[])
                    .await
                    .map_err(text)?;
                tx.execute("SELECT txid_current()", &[])
                    .await
                    .map_err(text)?;
                tx.commit().await.map_err(text)
            };
            match tokio::time::timeout(tiny, request).await {
                Err(_) => {
                    counts.requests_cancelled.fetch_add(1, Ordering::Relaxed);
                    verdict.into_inner().unwrap()
                }
                Ok(result) => result,
            }
        }
        // A long statement in a transaction, cancelled (its future
        // dropped); then the transaction is dropped (tokio-postgres queues
        // a ROLLBACK), or leaked (nothing ends it).
        4 | 5 => {
            let mut conn = pool.get_async().await.map_err(|e| got_nothing(&e))?;
            checked(&conn, counts).await?;
            let leak = rng.below(2) == 0;
            let tx = conn.transaction().await.map_err(text)?;
            tx.execute("SELECT txid_current()", &[])
                .await
                .map_err(text)?;
            let sleep = tx.query("SELECT pg_sleep(5)", &[]);
            if let Ok(early) = tokio::time::timeout(tiny, sleep).await {
                let how = early.map_or_else(text, |rows| format!("{} rows", rows.len()));
                return Err(format!(
                    "this borrower's pg_sleep(5) ended within {tiny:?}: {how}"
                ));
            }
            counts.queries_cancelled.fetch_add(1, Ordering::Relaxed);
            if leak {
                std::mem::forget(tx);
            }
            Ok(())
        }
        // A transaction begun as SQL, then a short or a long statement
        // cancelled: polled once (sent) or for a moment, then dropped. A
        // short one has finished on the server by the time the return's
        // cancel request arrives.
        _ => {
            let conn = pool.get_async().await.map_err(|e| got_nothing(&e))?;
            checked(&conn, counts).await?;
            conn.batch_execute("BEGIN; SELECT txid_current()")
                .await
                .map_err(text)?;
            let cancelled = if rng.below(2) == 0 {
                sent_then_dropped(conn.simple_query("SELECT txid_current()")).await
            } else {
                let sleep = conn.simple_query("SELECT pg_sleep(5)");
                tokio::time::timeout(tiny, sleep).await.is_err()
            };
            if cancelled {
                counts.queries_cancelled.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }
}

/// A failed get, with the connect error behind it if there is one.
fn got_nothing(error: &slotpool::Error<PgError>) -> String {
    match error.connect_error() {
        Some(cause) => format!("get: {error}: {cause}"),
        None => format!("get: {error}"),
    }
}

/// An error as `PgError` shows it (with the SQLSTATE).
fn text(error: tokio_postgres::Error) -> String {
    PgError::from(error).to_string()
}

/// Polls `future` once (a query is sent), then drops it; whether it was
/// still pending.
async fn sent_then_dropped<F: Future>(future: F) -> bool {
    let mut future = Box::pin(future);
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_pending())).await
}

async fn checked(conn: &PgConnection, counts: &StormCounts) -> Result<(), String> {
    let result = check_clean(conn).await;
    counts.checkouts_checked.fetch_add(1, Ordering::Relaxed);
    result
}

/// 64 tasks on 8 connections for about 1.5 s, each iteration one of:
/// a `get_async` under a timeout of 0 to 3 ms (dropped while waiting or as
/// it is served); a whole request (get, check, `BEGIN`, statements,
/// `COMMIT`) under such a timeout, so it is dropped anywhere; a
/// `pg_sleep(5)` in a transaction cancelled after 0 to 3 ms, the
/// transaction then dropped or leaked; a transaction begun as SQL with a
/// statement cancelled in it. Every checkout first runs [`check_clean`].
/// Afterwards no backend is active or in a transaction, and all 8
/// connections can be checked out at once, clean: no cancelled future kept
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_gets_and_queries_leave_nothing_to_the_next_borrower() {
    let _serial = one_at_a_time().await;
    let test = "cancelled_gets_and_queries_leave_nothing_to_the_next_borrower";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("load_cancel");
    let pool = build(settings(&tag), pool_config(CONNECTIONS));
    let run = Run::new();
    let counts = Arc::new(StormCounts::default());
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS as u64)
        .map(|task| {
            let (pool, run, counts) = (pool.clone(), run.clone(), counts.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(task + 1);
                let mut n = 0u64;
                while !run.stopped() {
                    n += 1;
                    match storm_step(&pool, &mut rng, &counts).await {
                        Ok(()) => run.count(),
                        Err(why) => run.fail(format!("task {task}, step {n}: {why}")),
                    }
                }
            })
        })
        .collect();
    under_load(&run, Duration::from_millis(1_500)).await;
    run.stop();
    join_all(started, handles).await;
    let elapsed = started.elapsed();
    run.assert_no_failures("cancelled gets and queries");

    let gets_cancelled = counts.gets_cancelled.load(Ordering::Relaxed);
    let requests_cancelled = counts.requests_cancelled.load(Ordering::Relaxed);
    let queries_cancelled = counts.queries_cancelled.load(Ordering::Relaxed);
    let checked = counts.checkouts_checked.load(Ordering::Relaxed);
    assert!(
        gets_cancelled > 0 && requests_cancelled > 0 && queries_cancelled > 0 && checked > 0,
        "the storm cancelled nothing: gets {gets_cancelled}, requests {requests_cancelled}, \
         queries {queries_cancelled}, checked {checked}"
    );

    // The last returns' resets finish; then nothing runs or is open.
    support::eventually(
        "no pool backend active or in a transaction",
        Duration::from_secs(5),
        || async {
            monitor
                .value(&format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{tag}' \
                     AND (state <> 'idle' OR backend_xid IS NOT NULL)"
                ))
                .await
                .as_deref()
                == Some("0")
        },
    )
    .await;
    support::eventually(
        "every connection back in the pool",
        Duration::from_secs(5),
        || async { pool.state().in_use == 0 },
    )
    .await;
    let mut all = Vec::new();
    for _ in 0..CONNECTIONS {
        let conn = pool
            .get_timeout_async(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} of {CONNECTIONS} connections could be checked out: {e}",
                    all.len()
                )
            });
        check_clean(&conn).await.unwrap();
        all.push(conn);
    }
    eprintln!(
        "{test}: {} steps, {checked} checkouts checked, {gets_cancelled} gets, \
         {requests_cancelled} requests and {queries_cancelled} queries cancelled, in {elapsed:?}",
        run.done()
    );
}

/// The storm's failure, reduced: one connection. A borrower drops a short
/// statement's future right after sending it (the statement finishes on
/// the server at once, but the connection counts as interrupted), so the
/// return's reset sends a cancel request and then its `ROLLBACK`. The next
/// borrower's statement must not be the one the cancel request hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_for_a_finished_statement_never_hits_the_next_borrower() {
    let _serial = one_at_a_time().await;
    let test = "a_cancel_request_for_a_finished_statement_never_hits_the_next_borrower";
    let Some(_monitor) = monitor_or_skip(test).await else {
        return;
    };
    let pool = build(
        settings(&unique_tag("late_cancel")),
        PoolConfig {
            max_size: 1,
            ..pool_config(CONNECTIONS)
        },
    );
    let mut hit = Vec::new();
    for round in 0..20 {
        {
            let conn = pool.get_async().await.unwrap();
            if !sent_then_dropped(conn.simple_query("SELECT 1")).await {
                continue; // answered within its first poll: nothing interrupted
            }
            assert!(conn.dirt().interrupted);
        }
        let conn = pool.get_async().await.unwrap();
        assert!(!conn.dirt().any(), "reset before the next borrower");
        if let Err(error) = conn.simple_query("SELECT pg_sleep(0.1)").await {
            hit.push(format!("round {round}: {}", PgError::from(error)));
        }
    }
    assert!(
        hit.is_empty(),
        "the next borrower's statement was cancelled: {hit:#?}"
    );
}

/// A borrower's statement fails with 57P01 (`pg_terminate_backend`) and
/// the borrower returns the connection at once, as `?` does; the next
/// checkout comes within `validation_idle_window` (the default 500 ms), so
/// only `has_broken` stands between it and the dead connection. It must
/// not get that connection: the client has been told the session is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_under_its_borrower_is_not_handed_out_again() {
    let _serial = one_at_a_time().await;
    let test = "a_connection_killed_under_its_borrower_is_not_handed_out_again";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("fatal_return");
    let pool = build(
        settings(&tag),
        PoolConfig {
            max_size: 1,
            validation_idle_window: Duration::from_millis(500),
            ..pool_config(CONNECTIONS)
        },
    );
    let mut handed_out_again = Vec::new();
    for round in 0..10 {
        {
            let conn = pool.get_async().await.unwrap();
            let (result, _) = tokio::join!(conn.simple_query("SELECT pg_sleep(5)"), async {
                support::eventually("the statement to run", Duration::from_secs(5), || async {
                    let pids = monitor.pids(&tag).await;
                    pids.len() == 1 && monitor.state(pids[0]).await.as_deref() == Some("active")
                })
                .await;
                monitor.terminate_at_once(&tag).await
            });
            let error = PgError::from(result.expect_err("terminated"));
            assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
        }
        let conn = pool.get_async().await.unwrap();
        if let Err(error) = conn.simple_query("SELECT 1").await {
            handed_out_again.push(format!("round {round}: {}", PgError::from(error)));
        }
    }
    assert!(
        handed_out_again.is_empty(),
        "the dead connection was handed to the next borrower: {handed_out_again:#?}"
    );
}

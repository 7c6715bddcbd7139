#![cfg(not(feature = "loom"))]
//! A real server restart (`pg_ctlcluster ... restart`) while 64 tasks
//! query through an 8-connection pool. Its own test binary: cargo runs test
//! binaries one after another, so the restart cannot break another test of
//! this workspace's run (it does end every other session on the server).
//!
//! The restart command: `SLOTPOOL_PG_RESTART` (run with `sh -c`) if set;
//! otherwise `pg_ctlcluster --skip-systemctl-redirect <version> <cluster>
//! restart`, the cluster read from the server's `cluster_name` (Debian's
//! `15/main`), when `pg_ctlcluster` is on the `PATH` and this process runs
//! as root or as the owner of the data directory. If neither is possible
//! the test skips loudly (and fails under `SLOTPOOL_REQUIRE_PG=1`).
//!
//! Whatever happens, the test returns (or unwinds) only once the server
//! accepts connections again, waiting at most [`SERVER_BACK_LIMIT`].

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, Pool, PoolConfig};
use slotpool_postgres::PgManager;
use support::{PG_DB, PG_HOST, PG_PORT, PG_USER, monitor_or_skip, settings, skip, unique_tag};
use tokio_postgres::NoTls;

type PgPool = Pool<Async<PgManager>>;

const TASKS: usize = 64;
const CONNECTIONS: u32 = 8;
/// Each get's deadline (`get_timeout_async`).
const GET_DEADLINE: Duration = Duration::from_secs(1);
/// How far past its deadline a get may return (timer and scheduling slack
/// on a loaded 2-core machine); beyond it, the get hung.
const GET_SLACK: Duration = Duration::from_secs(1);
/// A query on a checked-out connection must answer (or fail) within this.
const QUERY_BOUND: Duration = Duration::from_secs(3);
/// How long the restart command may take.
const RESTART_LIMIT: Duration = Duration::from_secs(20);
/// How long the server may take to accept connections once the command
/// returned (and the most a failing test waits for it before unwinding).
const SERVER_BACK_LIMIT: Duration = Duration::from_secs(20);
/// From the server accepting connections to a request through the pool
/// succeeding, and to the pool holding `max_size` live connections again.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// How to restart the server here, or why it cannot be done.
fn restart_command(
    cluster_name: Option<&str>,
    data_directory: Option<&str>,
) -> Result<std::process::Command, String> {
    if let Ok(script) = std::env::var("SLOTPOOL_PG_RESTART") {
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(script);
        return Ok(command);
    }
    let unset = "set SLOTPOOL_PG_RESTART to a command that restarts the server";
    let Some((version, cluster)) = cluster_name.and_then(|name| name.split_once('/')) else {
        return Err(format!(
            "the server's cluster_name ({cluster_name:?}) is not Debian's <version>/<cluster>; {unset}"
        ));
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("pg_ctlcluster").is_file())
    });
    if !on_path {
        return Err(format!("pg_ctlcluster is not on the PATH; {unset}"));
    }
    let euid = effective_uid();
    let owner = data_directory.and_then(|dir| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).ok().map(|meta| meta.uid())
    });
    if euid != Some(0) && (euid.is_none() || euid != owner) {
        return Err(format!(
            "pg_ctlcluster needs root or the cluster's owner (uid {euid:?}, data directory owner {owner:?}); {unset}"
        ));
    }
    let mut command = std::process::Command::new("pg_ctlcluster");
    command.args(["--skip-systemctl-redirect", version, cluster, "restart"]);
    Ok(command)
}

/// This process's effective uid, from `/proc/self/status` (Linux).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// One superuser connect and `SELECT 1`, bounded: whether the server
/// accepts connections.
async fn accepts_connections() -> bool {
    let conn = format!(
        "host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB} \
         application_name=sp_restart_probe connect_timeout=1"
    );
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await?;
        Ok::<_, tokio_postgres::Error>(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(()))
    )
}

/// Polls until the server accepts connections, at most `limit`; when it
/// did.
async fn wait_for_server(limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if accepts_connections().await {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Armed while the server may be down: on an unwind it waits (on a thread
/// of its own, with its own runtime) until the server accepts connections
/// again, so a failing test does not leave it down for the next binary.
struct ServerBack {
    armed: bool,
}

impl Drop for ServerBack {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let waited = std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(wait_for_server(RESTART_LIMIT + SERVER_BACK_LIMIT))
        })
        .join();
        if !matches!(waited, Ok(Some(_))) {
            eprintln!(
                "\n*** the PostgreSQL server at {PG_HOST}:{PG_PORT} did not come back after the restart test ***\n"
            );
        }
    }
}

/// What one request saw.
struct Outcome {
    started: Instant,
    ended: Instant,
    ok: bool,
    why: Option<String>,
}

/// 64 tasks loop over requests (a get with a 1 s deadline, then `SELECT
/// $1 * 2` bounded by 3 s, result checked) while the server restarts.
/// Asserted:
///
/// * before the restart, every request succeeds;
/// * during the outage no get returns later than its deadline (plus
///   [`GET_SLACK`]) and no query hangs: requests fail, fast;
/// * once the server accepts connections, a request succeeds within
///   [`RECOVERY_BOUND`], and the pool is back to `max_size` live
///   connections (all new backends) within it;
/// * from then on every request succeeds.
///
/// After a failed request a task pauses 10 ms (pacing, so 64 tasks do not
/// spin on fast failures; nothing waits on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_from_a_server_restart_under_load() {
    let test = "the_pool_recovers_from_a_server_restart_under_load";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let cluster_name = monitor.value("SHOW cluster_name").await;
    let data_directory = monitor.value("SHOW data_directory").await;
    let mut command = match restart_command(cluster_name.as_deref(), data_directory.as_deref()) {
        Ok(command) => command,
        Err(why) => {
            skip(test, &format!("cannot restart the server: {why}"));
            return;
        }
    };
    let postmaster_started = monitor
        .value("SELECT pg_postmaster_start_time()::text")
        .await;

    let tag = unique_tag("restart");
    let pool = Arc::new(
        Pool::builder()
            .config(PoolConfig {
                max_size: CONNECTIONS,
                connection_timeout: GET_DEADLINE,
                validation_timeout: Duration::from_millis(500),
                validation_idle_window: Duration::from_millis(50),
                connect_backoff_initial: Duration::from_millis(10),
                connect_backoff_max: Duration::from_millis(200),
                ..PoolConfig::default()
            })
            .build(Async::new(
                PgManager::new(settings(&tag)).unwrap(),
                Tokio::current(),
            ))
            .expect("a valid pool"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_get = Arc::new(Mutex::new(Duration::ZERO));
    let succeeded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS as i64)
        .map(|task| {
            let (pool, stop, slowest_get, succeeded) = (
                pool.clone(),
                stop.clone(),
                slowest_get.clone(),
                succeeded.clone(),
            );
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut n = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let value = task * 1_000_000 + n;
                    let request_started = Instant::now();
                    let result = request(&pool, value, &slowest_get).await;
                    let ok = result.is_ok();
                    outcomes.push(Outcome {
                        started: request_started,
                        ended: Instant::now(),
                        ok,
                        why: result.err(),
                    });
                    if ok {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                outcomes
            })
        })
        .collect();

    // Warm: the pool full under load.
    support::eventually(
        "the pool to fill under load",
        Duration::from_secs(5),
        || async { monitor.count(&tag).await == CONNECTIONS as usize },
    )
    .await;
    let warm_at = Instant::now();
    let old_pids = monitor.pids(&tag).await;
    drop(monitor);

    // The restart, on a thread of its own: the command blocks.
    let mut server_back = ServerBack { armed: true };
    let restart_started = Instant::now();
    let restart = std::thread::spawn(move || command.output());
    while !restart.is_finished() {
        assert!(
            restart_started.elapsed() < RESTART_LIMIT,
            "the restart command did not finish within {RESTART_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = restart
        .join()
        .expect("the restart thread")
        .expect("the restart command runs");
    assert!(
        output.status.success(),
        "the restart command failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let restart_ended = Instant::now();
    let back_at = wait_for_server(SERVER_BACK_LIMIT).await.unwrap_or_else(|| {
        panic!("the server did not accept connections within {SERVER_BACK_LIMIT:?} of the restart")
    });
    server_back.armed = false;
    let monitor = monitor_or_skip(test).await.expect("the server is back");
    let restarted = monitor
        .value("SELECT pg_postmaster_start_time()::text")
        .await;
    assert_ne!(restarted, postmaster_started, "the server did not restart");

    // Recovery: `max_size` live connections, all new.
    let refill_deadline = back_at + RECOVERY_BOUND;
    let refilled_at = loop {
        let open = monitor.pids(&tag).await;
        if open.len() == CONNECTIONS as usize {
            assert!(open.iter().all(|pid| !old_pids.contains(pid)));
            break Instant::now();
        }
        assert!(
            Instant::now() < refill_deadline,
            "the pool did not refill within {RECOVERY_BOUND:?} of the server's return: \
             {} backends open, pool {}",
            open.len(),
            pool.state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Then a stretch of load in which every request must succeed.
    let steady_from = Instant::now();
    let steady_until = steady_from + Duration::from_millis(500);
    while Instant::now() < steady_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for handle in handles {
        let left = Duration::from_secs(25).saturating_sub(started.elapsed());
        let task = tokio::time::timeout(left, handle)
            .await
            .expect("the load finished in time")
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        outcomes.extend(task);
    }
    let elapsed = started.elapsed();

    let failed = |from: Instant, to: Instant| -> Vec<String> {
        outcomes
            .iter()
            .filter(|outcome| !outcome.ok && outcome.started >= from && outcome.started < to)
            .map(|outcome| {
                format!(
                    "started {:?} after the test began: {}",
                    outcome.started - started,
                    outcome.why.as_deref().unwrap_or("?")
                )
            })
            .collect()
    };
    let hung: Vec<&str> = outcomes
        .iter()
        .filter_map(|outcome| outcome.why.as_deref())
        .filter(|why| why.contains("hung"))
        .collect();
    assert!(hung.is_empty(), "queries hung: {hung:?}");
    let before = failed(warm_at, restart_started);
    assert!(
        before.is_empty(),
        "requests failed before the restart: {before:#?}"
    );
    let after = failed(steady_from, Instant::now() + Duration::from_secs(60));
    assert!(
        after.is_empty(),
        "{} requests failed after the pool had recovered, the first: {:#?}",
        after.len(),
        &after[..after.len().min(5)]
    );
    let during = failed(restart_started, steady_from).len();
    assert!(during > 0, "the restart went unnoticed: no request failed");
    let first_success_after = outcomes
        .iter()
        .filter(|outcome| outcome.ok && outcome.started >= back_at)
        .map(|outcome| outcome.ended)
        .min()
        .expect("requests succeeded after the restart");
    assert!(
        first_success_after - back_at <= RECOVERY_BOUND,
        "the first request after the server's return succeeded {:?} later",
        first_success_after - back_at
    );
    let slowest_get = *slowest_get.lock().unwrap();
    assert!(
        slowest_get <= GET_DEADLINE + GET_SLACK,
        "a get took {slowest_get:?}, deadline {GET_DEADLINE:?}"
    );
    eprintln!(
        "{test}: {} requests ({} ok, {during} failed during the outage); restart command {:?}, \
         server back {:?} after it, first success {:?} and {CONNECTIONS} connections {:?} after that; \
         slowest get {slowest_get:?}; in {elapsed:?}",
        outcomes.len(),
        succeeded.load(Ordering::Relaxed),
        restart_ended - restart_started,
        back_at - restart_ended,
        first_success_after - back_at,
        refilled_at - back_at,
    );
}

async fn request(pool: &PgPool, value: i64, slowest_get: &Mutex<Duration>) -> Result<(), String> {
    let asked = Instant::now();
    let got = pool.get_timeout_async(GET_DEADLINE).await;
    let took = asked.elapsed();
    {
        let mut slowest = slowest_get.lock().unwrap();
        *slowest = (*slowest).max(took);
    }
    let conn = got.map_err(|e| match e.connect_error() {
        Some(cause) => format!("get ({took:?}): {e}: {cause}"),
        None => format!("get ({took:?}): {e}"),
    })?;
    let query = async {
        let statement = conn.prepare_cached("SELECT $1::int8 * 2").await?;
        conn.query_one(&statement, &[&value]).await
    };
    let row = tokio::time::timeout(QUERY_BOUND, query)
        .await
        .map_err(|_| format!("the query hung for {QUERY_BOUND:?}"))?
        .map_err(|e| format!("query: {}", slotpool_postgres::PgError::from(e)))?;
    let doubled: i64 = row.get(0);
    if doubled != value * 2 {
        return Err(format!("{value} * 2 came back as {doubled}"));
    }
    Ok(())
}

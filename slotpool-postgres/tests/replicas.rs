#![cfg(not(feature = "loom"))]
//! `ReplicaSet` against a real streaming replica: the local primary at
//! 127.0.0.1:5432 and the replica `scripts/pg-replica.sh start` runs at
//! 127.0.0.1:5433. Without that replica every test here prints a loud
//! SKIPPED line (a failure under `SLOTPOOL_REQUIRE_PG=1`).
//!
//! The tests share one replica and pause, stop and restart it, so they run
//! one at a time (`SERIAL`), and each puts the replica back as it found it
//! (running, replaying) in a drop guard, even when it fails. No sleep
//! synchronises anything: conditions are polled with a bounded deadline,
//! and the only durations asserted are deadline contracts, with margins.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, Pool, PoolConfig};
use slotpool_postgres::{
    Fallback, MemberStatus, PgConfig, PgConnection, PgError, PgManager, PgPool, ReadYourWrites,
    ReplicaError, ReplicaSet, ReplicaSetBuilder,
};
use support::proxy::{Proxy, Silence, Silent};
use support::{
    PG_HOST, PG_USER, eventually, first_value, monitor_or_skip, pool_config, settings, skip,
    unique_tag,
};
use tokio_postgres::{Client, NoTls};

const REPLICA_PORT: u16 = 5433;
const PROBE_TABLE: &str = "slotpool_replica_probe";

/// One test at a time: they share the replica and stop or pause it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The primary and replica monitors of a test that can run.
struct Servers {
    primary: support::Monitor,
    replica: Client,
}

async fn servers_or_skip(test: &str) -> Option<Servers> {
    let primary = monitor_or_skip(test).await?;
    match replica_client().await {
        Ok(replica) => Some(Servers { primary, replica }),
        Err(why) => {
            skip(
                test,
                &format!(
                    "no streaming replica at {PG_HOST}:{REPLICA_PORT} ({why}); \
                     start one with `scripts/pg-replica.sh start`"
                ),
            );
            None
        }
    }
}

async fn replica_client() -> Result<Client, String> {
    let conn = format!(
        "host={PG_HOST} port={REPLICA_PORT} user={PG_USER} dbname=postgres \
         application_name=sp_replica_monitor connect_timeout=2"
    );
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(&conn, NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let recovery = first_value(
            &client
                .simple_query("SELECT pg_is_in_recovery()")
                .await
                .map_err(|e| e.to_string())?,
        );
        if recovery.as_deref() != Some("t") {
            return Err("the server there is not in recovery".to_owned());
        }
        Ok(client)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".to_owned()))
}

async fn replica_value(replica: &Client, sql: &str) -> Option<String> {
    first_value(&replica.simple_query(sql).await.expect(sql))
}

fn replica_settings(tag: &str) -> PgConfig {
    PgConfig {
        port: Some(u32::from(REPLICA_PORT)),
        ..settings(tag)
    }
}

fn pool(config: PgConfig, max_size: u32) -> PgPool {
    Pool::builder()
        .config(pool_config(max_size))
        .build(Async::new(
            PgManager::new(config).unwrap(),
            Tokio::current(),
        ))
        .expect("a valid pool")
}

/// A set over the primary and the real replica, named `primary` and
/// `replica`, checking health every 50 ms.
fn builder(tag: &str) -> ReplicaSetBuilder {
    ReplicaSet::builder(pool(settings(tag), 4))
        .replica("replica", pool(replica_settings(tag), 4))
        .health_interval(Duration::from_millis(50))
        .check_timeout(Duration::from_millis(500))
}

async fn in_recovery(conn: &PgConnection) -> bool {
    let value = first_value(
        &conn
            .simple_query("SELECT pg_is_in_recovery()")
            .await
            .expect("pg_is_in_recovery()"),
    );
    value.as_deref() == Some("t")
}

async fn read_recovery(conn: &mut PgConnection) -> Result<bool, PgError> {
    let row = conn.query_one("SELECT pg_is_in_recovery()", &[]).await?;
    Ok(row.get(0))
}

fn status(set: &ReplicaSet, name: &str) -> MemberStatus {
    set.member(name).expect("a member of the set")
}

/// Runs `scripts/pg-replica.sh <args>` (on a blocking thread) and panics
/// if it fails.
async fn replica_script(args: &'static [&'static str]) {
    tokio::task::spawn_blocking(move || run_script(args))
        .await
        .expect("the script's thread");
}

fn run_script(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-replica.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .expect("run scripts/pg-replica.sh");
    assert!(
        output.status.success(),
        "scripts/pg-replica.sh {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts the replica again when dropped (a test that stopped it may have
/// failed before restarting it).
struct RestartReplica;

impl Drop for RestartReplica {
    fn drop(&mut self) {
        run_script(&["start"]);
    }
}

/// Resumes WAL replay on the replica when dropped.
struct ResumeReplay;

impl Drop for ResumeReplay {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                PG_HOST,
                "-p",
                &REPLICA_PORT.to_string(),
                "-U",
                PG_USER,
                "-d",
                "postgres",
                "-c",
                "SELECT pg_wal_replay_resume()",
            ])
            .output();
    }
}

/// Pauses replay and waits until the replica reports it paused.
async fn pause_replay(replica: &Client) -> ResumeReplay {
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pg_wal_replay_pause()");
    let guard = ResumeReplay;
    eventually("replay paused", Duration::from_secs(10), || async {
        replica_value(replica, "SELECT pg_get_wal_replay_pause_state()")
            .await
            .as_deref()
            == Some("paused")
    })
    .await;
    guard
}

async fn resume_replay(replica: &Client) {
    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .expect("pg_wal_replay_resume()");
}

/// The probe table exists on the primary and the replica has replayed it.
async fn probe_table(servers: &Servers) {
    servers
        .primary
        .exec(&format!(
            "CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id bigserial PRIMARY KEY, tag text NOT NULL)"
        ))
        .await;
    eventually(
        "the replica has the probe table",
        Duration::from_secs(10),
        || async {
            replica_value(
                &servers.replica,
                &format!("SELECT to_regclass('{PROBE_TABLE}') IS NOT NULL"),
            )
            .await
            .as_deref()
                == Some("t")
        },
    )
    .await;
}

async fn sees(conn: &PgConnection, tag: &str) -> bool {
    let row = conn
        .query_one(
            &format!("SELECT count(*) FROM {PROBE_TABLE} WHERE tag = $1"),
            &[&tag],
        )
        .await
        .expect("count the probe rows");
    row.get::<_, i64>(0) == 1
}

/// Polls health checks until `name` is routable (or not).
async fn until_routable(set: &ReplicaSet, name: &str, routable: bool, limit: Duration) {
    eventually(
        &format!("member {name} routable = {routable}"),
        limit,
        || async {
            set.check_health()
                .await
                .iter()
                .any(|m| m.name == name && m.routable() == routable)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_land_on_the_replica_and_writes_on_the_primary() {
    let _serial = SERIAL.lock().await;
    let test = "reads_land_on_the_replica_and_writes_on_the_primary";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let set = builder(&unique_tag("replica_reads")).build().unwrap();
    let statuses = set.check_health().await;
    assert!(statuses.iter().all(MemberStatus::routable), "{statuses:#?}");

    for _ in 0..10 {
        let conn = set.read().await.unwrap();
        assert_eq!(conn.member(), "replica");
        assert!(!conn.is_primary());
        assert!(
            in_recovery(&conn).await,
            "a read's connection is the replica's"
        );
    }
    let served = set
        .read_with(Duration::from_secs(2), async |conn| {
            read_recovery(conn).await
        })
        .await
        .unwrap();
    assert!(served, "read_with ran on the replica");
    let conn = set.write().await.unwrap();
    assert!(conn.is_primary());
    assert_eq!(conn.member(), "primary");
    assert!(
        !in_recovery(&conn).await,
        "a write's connection is the primary's"
    );
    drop(conn);

    let primary = status(&set, "primary");
    let replica = status(&set, "replica");
    assert_eq!(
        (primary.writes, primary.reads, primary.fallback_reads),
        (1, 0, 0)
    );
    assert_eq!(
        (replica.reads, replica.failures, replica.skipped),
        (11, 0, 0)
    );
    assert!(replica.healthy && !replica.lagging);
    assert!(replica.replay_lsn.is_some() && replica.lag_bytes.is_some());
    assert!(replica.checks >= 1 && replica.failed_checks == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_is_skipped_and_rejoins_when_it_catches_up() {
    let _serial = SERIAL.lock().await;
    let test = "a_lagging_replica_is_skipped_and_rejoins_when_it_catches_up";
    let Some(servers) = servers_or_skip(test).await else {
        return;
    };
    probe_table(&servers).await;
    let tag = unique_tag("replica_lag");
    let set = builder(&tag).max_lag_bytes(0).build().unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;

    let paused = pause_replay(&servers.replica).await;
    // WAL the paused replica cannot replay: it falls behind, exactly.
    servers
        .primary
        .exec(&format!("INSERT INTO {PROBE_TABLE} (tag) VALUES ('{tag}')"))
        .await;
    let statuses = set.check_health().await;
    let replica = statuses.iter().find(|m| m.name == "replica").unwrap();
    assert!(replica.healthy, "reachable: {replica:#?}");
    assert!(replica.lagging, "behind the primary: {replica:#?}");
    assert!(replica.lag_bytes.is_some_and(|lag| lag > 0), "{replica:#?}");

    let skipped_before = replica.skipped;
    let conn = set.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert!(conn.is_primary(), "the lagging replica is skipped");
    assert!(sees(&conn, &tag).await);
    drop(conn);
    let replica = status(&set, "replica");
    assert_eq!(replica.skipped, skipped_before + 1);
    assert_eq!(status(&set, "primary").fallback_reads, 1);

    resume_replay(&servers.replica).await;
    drop(paused);
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;
    let conn = set.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert_eq!(conn.member(), "replica", "it rejoined");
    assert!(in_recovery(&conn).await);
    assert!(sees(&conn, &tag).await, "and replayed the write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reads_its_own_writes() {
    let _serial = SERIAL.lock().await;
    let test = "a_session_reads_its_own_writes";
    let Some(servers) = servers_or_skip(test).await else {
        return;
    };
    probe_table(&servers).await;
    let tag = unique_tag("replica_ryw");
    let set = builder(&tag)
        .read_your_writes(ReadYourWrites::UntilReplayed)
        .build()
        .unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;

    // Replay paused: the replica deterministically misses the write.
    let paused = pause_replay(&servers.replica).await;
    let session = set.session();
    let writer = session.write().await.unwrap();
    assert!(writer.is_primary());
    writer
        .execute(
            &format!("INSERT INTO {PROBE_TABLE} (tag) VALUES ($1)"),
            &[&tag],
        )
        .await
        .unwrap();
    let position = session
        .committed(&writer)
        .await
        .unwrap()
        .expect("a position");
    drop(writer);
    assert_eq!(session.position(), Some(position));

    let conn = session.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert!(conn.is_primary(), "the replica has not replayed the write");
    assert!(sees(&conn, &tag).await, "the session sees its write");
    drop(conn);
    // Without read-your-writes the read goes to the (healthy, unbounded)
    // replica, which does not have the row.
    let conn = set.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert_eq!(conn.member(), "replica");
    assert!(
        !sees(&conn, &tag).await,
        "the paused replica misses the write"
    );
    drop(conn);
    // The same through read_with.
    let seen = session
        .read_with(Duration::from_secs(2), async |conn| {
            let row = conn
                .query_one(
                    &format!("SELECT count(*) FROM {PROBE_TABLE} WHERE tag = $1"),
                    &[&tag],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        })
        .await
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(status(&set, "primary").session_reads, 2);

    // A write connection returned without `committed`: the next read asks
    // the primary where it is, and still goes there.
    let other = unique_tag("replica_ryw2");
    let later = set.session();
    let writer = later.write().await.unwrap();
    writer
        .execute(
            &format!("INSERT INTO {PROBE_TABLE} (tag) VALUES ($1)"),
            &[&other],
        )
        .await
        .unwrap();
    drop(writer);
    let conn = later.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert!(conn.is_primary());
    assert!(sees(&conn, &other).await);
    drop(conn);
    assert!(later.position().is_some_and(|at| at >= position));

    // Once the replica replays the write, the session reads from it.
    resume_replay(&servers.replica).await;
    drop(paused);
    eventually(
        "the session's read lands on the replica",
        Duration::from_secs(20),
        || async {
            let conn = session.read_timeout(Duration::from_secs(2)).await.unwrap();
            let on_replica = !conn.is_primary();
            assert!(sees(&conn, &tag).await, "every session read sees the write");
            on_replica
        },
    )
    .await;
    // A position carried to a later request works the same.
    let carried = set.session_after(position);
    let conn = carried.read_timeout(Duration::from_secs(2)).await.unwrap();
    assert!(sees(&conn, &tag).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_based_read_your_writes_and_off() {
    let _serial = SERIAL.lock().await;
    let test = "time_based_read_your_writes_and_off";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("replica_ryw_time");
    let primary = pool(settings(&tag), 2);
    let replica = pool(replica_settings(&tag), 2);
    let sets = [
        (ReadYourWrites::For(Duration::from_secs(3600)), true),
        (ReadYourWrites::Off, false),
    ];
    for (mode, on_primary) in sets {
        let set = ReplicaSet::builder(primary.clone())
            .replica("replica", replica.clone())
            .read_your_writes(mode)
            .build()
            .unwrap();
        until_routable(&set, "replica", true, Duration::from_secs(20)).await;
        let session = set.session();
        let writer = session.write().await.unwrap();
        writer.batch_execute("SELECT 1").await.unwrap();
        assert_eq!(session.committed(&writer).await.unwrap(), None);
        drop(writer);
        let conn = session.read().await.unwrap();
        assert_eq!(conn.is_primary(), on_primary, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_replica_mid_load_loses_no_read_and_it_rejoins() {
    let _serial = SERIAL.lock().await;
    let test = "stopping_the_replica_mid_load_loses_no_read_and_it_rejoins";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let _restart = RestartReplica;
    let tag = unique_tag("replica_stop");
    let mut replica_settings = replica_settings(&tag);
    replica_settings.connect_timeout = Some(Duration::from_millis(500));
    let set = ReplicaSet::builder(pool(settings(&tag), 4))
        .replica("replica", pool(replica_settings, 4))
        .health_interval(Duration::from_millis(50))
        .check_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;

    const DEADLINE: Duration = Duration::from_secs(2);
    const MARGIN: Duration = Duration::from_secs(1);
    let done = AtomicBool::new(false);
    let on_replica = AtomicU64::new(0);
    let on_primary = AtomicU64::new(0);
    let reader = || async {
        while !done.load(Ordering::SeqCst) {
            let started = Instant::now();
            let result = set
                .read_with(DEADLINE, async |conn| read_recovery(conn).await)
                .await;
            let took = started.elapsed();
            let recovery = result.unwrap_or_else(|e| panic!("a read was lost: {e}"));
            assert!(took < DEADLINE + MARGIN, "a read took {took:?}");
            let counter = if recovery { &on_replica } else { &on_primary };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    };
    let controller = async {
        let served = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        eventually(
            "replica reads before the stop",
            Duration::from_secs(20),
            || async { served(&on_replica) >= 50 },
        )
        .await;
        replica_script(&["stop", "--keep"]).await;
        let primary_before = served(&on_primary);
        eventually(
            "primary reads while the replica is down",
            Duration::from_secs(20),
            || async { served(&on_primary) >= primary_before + 50 },
        )
        .await;
        let down = status(&set, "replica");
        assert!(
            !down.healthy,
            "the stopped replica is marked down: {down:#?}"
        );
        assert!(down.last_error.is_some());
        replica_script(&["start"]).await;
        let replica_before = served(&on_replica);
        eventually(
            "reads land on the replica again",
            Duration::from_secs(30),
            || async { served(&on_replica) >= replica_before + 50 },
        )
        .await;
        done.store(true, Ordering::SeqCst);
    };
    tokio::join!(reader(), reader(), reader(), reader(), controller);

    let primary = status(&set, "primary");
    let replica = status(&set, "replica");
    let (replica_served, primary_served) = (
        on_replica.load(Ordering::SeqCst),
        on_primary.load(Ordering::SeqCst),
    );
    assert!(replica.healthy && replica.routable(), "{replica:#?}");
    assert!(
        replica.failures >= 1 && replica.failed_checks >= 1,
        "{replica:#?}"
    );
    // Every primary read ran the caller's read once and succeeded.
    assert_eq!(primary.reads, primary_served, "{primary:#?}");
    assert_eq!(primary.fallback_reads, primary_served);
    assert_eq!(primary.writes, 0);
    // A replica read that failed under the caller was counted on the
    // replica and retried on the primary.
    assert!(replica.reads >= replica_served, "{replica:#?}");
    assert!(
        replica.reads - replica_served <= replica.failures,
        "{replica:#?}"
    );
    assert_eq!(set.rejected_reads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_vanished_replica_is_skipped_within_the_deadline() {
    let _serial = SERIAL.lock().await;
    let test = "a_hanging_or_vanished_replica_is_skipped_within_the_deadline";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("replica_hang");
    // A replica host that accepts and never answers: connects hang (for
    // longer than the read's whole deadline).
    let silent = Silent::start(Silence::Always).unwrap();
    let mut hanging = replica_settings(&tag);
    hanging.port = Some(u32::from(silent.port()));
    hanging.connect_timeout = Some(Duration::from_secs(30));
    // The real replica behind a proxy that can take it away.
    let proxy = Proxy::start(([127, 0, 0, 1], REPLICA_PORT).into()).unwrap();
    let mut proxied = replica_settings(&tag);
    proxied.port = Some(u32::from(proxy.port()));
    let set = ReplicaSet::builder(pool(settings(&tag), 4))
        .replica("hanging", pool(hanging, 2))
        .replica("proxied", pool(proxied, 2))
        .health_interval(Duration::from_secs(3600))
        .check_timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    const DEADLINE: Duration = Duration::from_secs(1);
    const MARGIN: Duration = Duration::from_millis(750);
    // Both look healthy (never checked); whichever comes first, the read is
    // served within the deadline, and the hanging one is marked down.
    let mut served_by = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let conn = set.read_timeout(DEADLINE).await.unwrap();
        assert!(
            started.elapsed() < DEADLINE + MARGIN,
            "{:?}",
            started.elapsed()
        );
        assert!(in_recovery(&conn).await || conn.is_primary());
        served_by.push(conn.member().to_owned());
    }
    let hanging_status = status(&set, "hanging");
    assert!(!hanging_status.healthy, "{hanging_status:#?}");
    assert_eq!(hanging_status.reads, 0);
    assert!(served_by.iter().all(|member| member != "hanging"));
    assert!(
        served_by.iter().any(|member| member == "proxied"),
        "{served_by:?}"
    );

    // The proxied replica vanishes: existing connections are cut, new ones
    // refused at once. The read is retried on the primary within the
    // deadline.
    proxy.blackhole();
    let started = Instant::now();
    let recovery = set
        .read_with(DEADLINE, async |conn| read_recovery(conn).await)
        .await
        .unwrap();
    assert!(
        started.elapsed() < DEADLINE + MARGIN,
        "{:?}",
        started.elapsed()
    );
    assert!(!recovery, "served by the primary");
    let proxied_status = status(&set, "proxied");
    assert!(!proxied_status.healthy, "{proxied_status:#?}");
    assert!(proxied_status.failures >= 1);

    // Nothing can serve on a replica now: the primary does, at once.
    let conn = set.read_timeout(DEADLINE).await.unwrap();
    assert!(conn.is_primary());
    drop(conn);

    // Back: a health check passes and reads return to it.
    proxy.resume();
    until_routable(&set, "proxied", true, Duration::from_secs(20)).await;
    let conn = set.read_timeout(DEADLINE).await.unwrap();
    assert_eq!(conn.member(), "proxied");
    assert!(in_recovery(&conn).await);
    drop(conn);
    let hanging_status = set
        .check_health()
        .await
        .into_iter()
        .find(|m| m.name == "hanging")
        .unwrap();
    assert!(
        !hanging_status.healthy,
        "a check of the hanging one fails too"
    );
    assert!(hanging_status.failed_checks >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_gives_the_typed_error_naming_the_replica() {
    let _serial = SERIAL.lock().await;
    let test = "fail_fast_gives_the_typed_error_naming_the_replica";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("replica_failfast");
    let proxy = Proxy::start(([127, 0, 0, 1], REPLICA_PORT).into()).unwrap();
    let mut proxied = replica_settings(&tag);
    proxied.port = Some(u32::from(proxy.port()));
    let set = ReplicaSet::builder(pool(settings(&tag), 2))
        .replica("replica", pool(proxied, 2))
        .fallback(Fallback::FailFast)
        .health_interval(Duration::from_secs(3600))
        .check_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;
    assert_eq!(set.read().await.unwrap().member(), "replica");

    proxy.blackhole();
    let started = Instant::now();
    let error = set
        .read_with(Duration::from_secs(1), async |conn| {
            read_recovery(conn).await
        })
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let ReplicaError::NoHealthyReplica { skipped } = &error else {
        panic!("expected NoHealthyReplica, got {error:?}");
    };
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, "replica");
    assert!(error.to_string().contains("'replica'"), "{error}");

    // Marked down: the next read fails at once, with the reason.
    let error = set.read_timeout(Duration::from_secs(1)).await.unwrap_err();
    let ReplicaError::NoHealthyReplica { skipped } = &error else {
        panic!("expected NoHealthyReplica, got {error:?}");
    };
    assert!(skipped[0].1.starts_with("down: "), "{skipped:?}");
    assert_eq!(set.rejected_reads(), 2);
    let primary = status(&set, "primary");
    assert_eq!(
        (primary.reads, primary.fallback_reads),
        (0, 0),
        "no read fell back"
    );
    // Writes are unaffected.
    assert!(set.write().await.unwrap().is_primary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_rejects_bad_settings() {
    // No server needed: pools connect lazily.
    let tag = unique_tag("replica_builder");
    let primary = || pool(settings(&tag), 1);
    let replica = || pool(replica_settings(&tag), 1);
    let rejected = |result: Result<ReplicaSet, ReplicaError>, what: &str| match result {
        Err(ReplicaError::Build(why)) => assert!(why.contains(what), "{why}"),
        other => panic!("expected a build error about {what}, got {other:?}"),
    };
    rejected(
        ReplicaSet::builder(primary())
            .replica("a", replica())
            .replica("a", replica())
            .build(),
        "two members are named 'a'",
    );
    rejected(
        ReplicaSet::builder(primary())
            .replica("primary", replica())
            .build(),
        "two members are named 'primary'",
    );
    rejected(
        ReplicaSet::builder(primary())
            .replica("a", replica())
            .replica_share(1.0)
            .build(),
        "replica_share",
    );
    rejected(
        ReplicaSet::builder(primary())
            .fallback(Fallback::FailFast)
            .build(),
        "FailFast",
    );
    let set = ReplicaSet::builder(primary())
        .replica("a", replica())
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let names: Vec<_> = set
        .members()
        .into_iter()
        .map(|m| (m.name, m.role))
        .collect();
    assert_eq!(
        names,
        [
            ("primary".to_owned(), slotpool_postgres::Role::Primary),
            ("a".to_owned(), slotpool_postgres::Role::Replica)
        ]
    );
    assert!(set.replica_pool("a").is_some() && set.replica_pool("b").is_none());
}

/// Sends `signal` to a replica backend (root or postgres may).
fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Lets a stopped backend run again when dropped.
struct Continue(i32);

impl Drop for Continue {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_hangs_mid_read_is_retried_on_the_primary() {
    let _serial = SERIAL.lock().await;
    let test = "a_replica_that_hangs_mid_read_is_retried_on_the_primary";
    let Some(servers) = servers_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("replica_midread");
    // One replica connection, never re-validated: the read gets the very
    // connection whose backend is stopped.
    let replica_pool = Pool::builder()
        .config(PoolConfig {
            validation_idle_window: Duration::from_secs(3600),
            ..pool_config(1)
        })
        .build(Async::new(
            PgManager::new(replica_settings(&tag)).unwrap(),
            Tokio::current(),
        ))
        .unwrap();
    let set = ReplicaSet::builder(pool(settings(&tag), 2))
        .replica("replica", replica_pool)
        .health_interval(Duration::from_secs(3600))
        .check_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;
    let conn = set.read().await.unwrap();
    assert_eq!(conn.member(), "replica");
    let pid: i32 = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(conn);
    let may_signal = std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success());
    if !may_signal {
        skip(
            test,
            "this user may not signal the replica's backends (run as root or postgres)",
        );
        return;
    }

    // The backend freezes (SIGSTOP): the connection is open and silent.
    signal(pid, "-STOP");
    let resumed = Continue(pid);
    const DEADLINE: Duration = Duration::from_secs(2);
    let started = Instant::now();
    let recovery = set
        .read_with(DEADLINE, async |conn| read_recovery(conn).await)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < DEADLINE + Duration::from_secs(1), "{took:?}");
    assert!(!recovery, "retried on the primary");
    drop(resumed);
    servers
        .replica
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();

    let replica = status(&set, "replica");
    assert!(!replica.healthy, "{replica:#?}");
    assert_eq!((replica.reads, replica.failures), (2, 1), "{replica:#?}");
    assert!(
        replica
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("longer than the replicas' share")),
        "{replica:#?}"
    );
    let primary = status(&set, "primary");
    assert_eq!((primary.reads, primary.fallback_reads), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_least_loaded_replica() {
    let _serial = SERIAL.lock().await;
    let test = "reads_go_to_the_least_loaded_replica";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    // Two members over the same replica server, with pools of their own.
    let tag = unique_tag("replica_load");
    let set = ReplicaSet::builder(pool(settings(&tag), 2))
        .replica("r1", pool(replica_settings(&tag), 2))
        .replica("r2", pool(replica_settings(&tag), 2))
        .health_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    until_routable(&set, "r1", true, Duration::from_secs(20)).await;
    let first = set.read().await.unwrap();
    let busy = first.member().to_owned();
    let other = if busy == "r1" { "r2" } else { "r1" };
    // While `first` is out, its pool is half used, the other's idle.
    for _ in 0..5 {
        let conn = set.read().await.unwrap();
        assert_eq!(conn.member(), other);
    }
    // Both half used: the rotation spreads reads over both.
    let second = set.read().await.unwrap();
    assert_eq!(second.member(), other);
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(set.read().await.unwrap().member().to_owned());
    }
    assert!(
        members.iter().any(|m| m == "r1") && members.iter().any(|m| m == "r2"),
        "{members:?}"
    );
    drop((first, second));
    let (r1, r2) = (status(&set, "r1"), status(&set, "r2"));
    assert_eq!(r1.reads + r2.reads, 11);
    assert_eq!(status(&set, "primary").reads, 0);
}

/// The caller's closure misbehaves, not the replica: an SQL error comes
/// back as it is (the replica stays healthy and the read is not re-run on
/// the primary), and a closure that panics mid-read, in a task, takes no
/// connection with it: both pools are at rest afterwards and the next read
/// is served by the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_panicking_read_closure_loses_no_connection() {
    let _serial = SERIAL.lock().await;
    let test = "a_failing_or_panicking_read_closure_loses_no_connection";
    let Some(_servers) = servers_or_skip(test).await else {
        return;
    };
    let set = builder(&unique_tag("replica_closure")).build().unwrap();
    until_routable(&set, "replica", true, Duration::from_secs(20)).await;

    let error = set
        .read_with(Duration::from_secs(2), async |conn| {
            let row = conn.query_one("SELECT 1 / 0", &[]).await?;
            Ok(row.get::<_, i32>(0))
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ReplicaError::Query { member, .. } if member == "replica"),
        "{error}"
    );
    let replica = status(&set, "replica");
    assert!(replica.routable(), "{replica:#?}");
    assert_eq!(
        status(&set, "primary").reads,
        0,
        "not re-run on the primary"
    );

    let task = tokio::spawn({
        let set = set.clone();
        async move {
            set.read_with(Duration::from_secs(2), async |conn| {
                read_recovery(conn).await?;
                panic!("the caller's closure panics mid-read");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await
        }
    });
    assert!(task.await.unwrap_err().is_panic());
    for name in ["replica", "primary"] {
        let pool = status(&set, name).pool;
        assert_eq!((pool.in_use, pool.waiting), (0, 0), "{name}: {pool:?}");
    }
    let conn = set.read().await.unwrap();
    assert_eq!(conn.member(), "replica");
    assert!(in_recovery(&conn).await);
}

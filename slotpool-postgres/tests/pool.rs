#![cfg(not(feature = "loom"))]
//! `Pool<Async<PgManager>>` against the real server: the pool calls the
//! manager's `connect`, `is_valid` and `reset` as tasks on the tokio
//! runtime and `has_broken`/`needs_reset` when a connection comes back.
//! These tests check what a borrower sees through the pool: reuse with the
//! statement cache kept, resets before the next borrower, cancelled
//! queries, replaced connections, rotation with `evict_idle`, permanent
//! errors failing fast, and an outage.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, Pool, PoolConfig};
use slotpool_postgres::{Config, Credentials, PgConfig, PgConnection, PgManager};
use support::proxy::Proxy;
use support::{PG_PORT, first_value, monitor_or_skip, pool_config, settings, unique_tag};

use slotpool_postgres::PgPool;

fn build(manager: PgManager, config: PoolConfig) -> PgPool {
    Pool::builder()
        .config(config)
        .build(Async::new(manager, Tokio::current()))
        .expect("a valid pool")
}

async fn peek(conn: &PgConnection, sql: &str) -> Option<String> {
    first_value(&conn.client().simple_query(sql).await.expect(sql))
}

async fn pid(conn: &PgConnection) -> String {
    peek(conn, "SELECT pg_backend_pid()").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_reuses_connections_and_their_statement_caches() {
    let Some(monitor) =
        monitor_or_skip("the_pool_reuses_connections_and_their_statement_caches").await
    else {
        return;
    };
    let tag = unique_tag("pool_reuse");
    let pool = build(PgManager::new(settings(&tag)).unwrap(), pool_config(2));
    for i in 0..20i32 {
        let conn = pool.get_async().await.unwrap();
        let statement = conn.prepare_cached("SELECT $1::int4 + 1").await.unwrap();
        let row = conn.query_one(&statement, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    assert_eq!(
        monitor.count(&tag).await,
        1,
        "sequential borrows share one connection"
    );
    let stats = pool.manager().manager().statement_cache_stats();
    assert_eq!(
        (stats.hits, stats.misses),
        (19, 1),
        "the cache survived every return"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_return_is_reset_before_the_next_borrower() {
    let Some(_monitor) = monitor_or_skip("a_dirty_return_is_reset_before_the_next_borrower").await
    else {
        return;
    };
    let pool = build(
        PgManager::new(settings(&unique_tag("pool_reset"))).unwrap(),
        pool_config(1),
    );
    let (first_pid, default_path) = {
        let conn = pool.get_async().await.unwrap();
        let default_path = peek(&conn, "SHOW search_path").await;
        conn.batch_execute("SET search_path TO pg_catalog; BEGIN; SELECT pg_advisory_xact_lock(5)")
            .await
            .unwrap();
        (pid(&conn).await, default_path)
    };
    let conn = pool.get_async().await.unwrap();
    assert_eq!(pid(&conn).await, first_pid, "the same connection, reset");
    assert_eq!(peek(&conn, "SHOW search_path").await, default_path);
    assert_eq!(
        peek(
            &conn,
            "SELECT transaction_timestamp() = statement_timestamp()"
        )
        .await
        .as_deref(),
        Some("t"),
        "no transaction left open"
    );
    assert!(!conn.dirt().any());
}

/// A query abandoned by its borrower (its future dropped): the next
/// borrower gets a fresh connection at once, not one with a statement still
/// running or a cancel request on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_query_closes_its_connection_on_return() {
    let Some(_monitor) =
        monitor_or_skip("an_abandoned_query_closes_its_connection_on_return").await
    else {
        return;
    };
    let pool = build(
        PgManager::new(settings(&unique_tag("pool_cancel"))).unwrap(),
        pool_config(1),
    );
    let first_pid = {
        let conn = pool.get_async().await.unwrap();
        let pid = pid(&conn).await;
        let abandoned = tokio::time::timeout(
            Duration::from_millis(300),
            conn.query("SELECT pg_sleep(30)", &[]),
        )
        .await;
        assert!(abandoned.is_err());
        pid
    };
    let started = Instant::now();
    let conn = pool.get_async().await.unwrap();
    assert_eq!(peek(&conn, "SELECT 1").await.as_deref(), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(pid(&conn).await, first_pid, "closed and replaced, not kept");
}

/// A connection the server killed while it sat idle is found by the
/// checkout's `is_valid` and replaced. `validation_idle_window = 0`: every
/// checkout is checked (see the next test for the window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_replaced() {
    let Some(monitor) = monitor_or_skip("a_killed_connection_is_replaced").await else {
        return;
    };
    let tag = unique_tag("pool_killed");
    let config = PoolConfig {
        validation_idle_window: Duration::ZERO,
        ..pool_config(1)
    };
    let pool = build(PgManager::new(settings(&tag)).unwrap(), config);
    let first_pid = pid(&pool.get_async().await.unwrap()).await;
    monitor.terminate_all(&tag).await;
    let conn = pool.get_async().await.unwrap();
    assert_ne!(pid(&conn).await, first_pid);
}

/// The same with the default kind of window: a connection idle longer than
/// `validation_idle_window` is checked on checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_idle_past_the_window_is_replaced() {
    let Some(monitor) =
        monitor_or_skip("a_killed_connection_idle_past_the_window_is_replaced").await
    else {
        return;
    };
    let tag = unique_tag("pool_killed_window");
    let pool = build(PgManager::new(settings(&tag)).unwrap(), pool_config(1));
    let first_pid = pid(&pool.get_async().await.unwrap()).await;
    monitor.terminate_all(&tag).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // past the 50 ms window
    let conn = pool.get_async().await.unwrap();
    assert_ne!(pid(&conn).await, first_pid);
}

/// Rotation: a new provider, then `evict_idle`: idle connections close now,
/// checked-out ones when they come back, and new ones log in as the new
/// role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_a_provider_change_and_evict_idle() {
    let Some(monitor) = monitor_or_skip("rotation_is_a_provider_change_and_evict_idle").await
    else {
        return;
    };
    let (old_role, new_role) = (
        monitor.temp_role("rot_old", "").await,
        monitor.temp_role("rot_new", "").await,
    );
    let current = Arc::new(Mutex::new(Credentials::without_password(&old_role.name)));
    let manager = PgManager::new(settings(&unique_tag("pool_rotation"))).unwrap();
    let shared = current.clone();
    manager.set_credentials_provider(move || {
        let credentials = shared.lock().unwrap().clone();
        async move { Ok(credentials) }
    });
    let pool = build(manager, pool_config(2));
    let held = pool.get_async().await.unwrap();
    let idle = pool.get_async().await.unwrap();
    assert_eq!(
        peek(&idle, "SELECT current_user").await,
        Some(old_role.name.clone())
    );
    drop(idle);

    *current.lock().unwrap() = Credentials::without_password(&new_role.name);
    pool.evict_idle();
    drop(held); // evicted on return
    let conn = pool.get_async().await.unwrap();
    assert_eq!(
        peek(&conn, "SELECT current_user").await,
        Some(new_role.name.clone())
    );
    let old = old_role.name.clone();
    support::eventually(
        "the old role's sessions to close",
        Duration::from_secs(5),
        || {
            let old = old.clone();
            let monitor = &monitor;
            async move {
                monitor
                    .value(&format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{old}'"
                    ))
                    .await
                    .as_deref()
                    == Some("0")
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_connect_error_fails_the_get_at_once() {
    let Some(_monitor) = monitor_or_skip("a_permanent_connect_error_fails_the_get_at_once").await
    else {
        return;
    };
    let manager = PgManager::new(PgConfig {
        dbname: format!("no_such_db_{}", std::process::id()),
        ..settings(&unique_tag("pool_no_db"))
    })
    .unwrap();
    let pool = build(manager, pool_config(1));
    let started = Instant::now();
    let error = pool
        .get_timeout_async(Duration::from_secs(10))
        .await
        .expect_err("no such database");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let cause = error.connect_error().expect("the manager's error");
    assert_eq!(cause.code().map(|c| c.code()), Some("3D000"), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_every_statement_retires_the_connection_on_return() {
    let Some(_monitor) =
        monitor_or_skip("discarding_every_statement_retires_the_connection_on_return").await
    else {
        return;
    };
    let pool = build(
        PgManager::new(settings(&unique_tag("pool_discard"))).unwrap(),
        pool_config(1),
    );
    let first_pid = {
        let conn = pool.get_async().await.unwrap();
        conn.batch_execute("DISCARD ALL").await.unwrap();
        pid(&conn).await
    };
    let conn = pool.get_async().await.unwrap();
    assert_ne!(pid(&conn).await, first_pid);
}

/// An outage behind a stable address: gets fail within their deadline
/// while the server is gone, and the pool recovers once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_gets_in_time_and_the_pool_recovers() {
    let Some(_monitor) =
        monitor_or_skip("an_outage_fails_gets_in_time_and_the_pool_recovers").await
    else {
        return;
    };
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT))).unwrap();
    let pool = build(
        PgManager::new(PgConfig {
            port: Some(u32::from(proxy.port())),
            ..settings(&unique_tag("pool_outage"))
        })
        .unwrap(),
        PoolConfig {
            connection_timeout: Duration::from_secs(2),
            validation_timeout: Duration::from_millis(500),
            validation_idle_window: Duration::ZERO,
            ..pool_config(1)
        },
    );
    drop(pool.get_async().await.unwrap());
    proxy.blackhole();
    let started = Instant::now();
    assert!(pool.get_async().await.is_err(), "the server is gone");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    proxy.resume();
    // After `fail_fast_after` failed connects a get fails at once with the
    // last connect error (and asks for a new connect), so the first gets
    // after the outage may still fail; within a few seconds one succeeds.
    let deadline = Instant::now() + Duration::from_secs(5);
    let conn = loop {
        match pool.get_async().await {
            Ok(conn) => break conn,
            Err(error) => {
                let cause = error.connect_error().expect("a connect error");
                assert_eq!(cause.class(), slotpool::ErrorClass::Transient, "{cause}");
                assert!(
                    Instant::now() < deadline,
                    "the pool never reconnected: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(peek(&conn, "SELECT 1").await.as_deref(), Some("1"));
}

/// The whole configuration from one profile: the pool's settings and the
/// `[postgres]` section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_from_a_profile() {
    let Some(monitor) = monitor_or_skip("a_pool_from_a_profile").await else {
        return;
    };
    let tag = unique_tag("pool_profile");
    let text = format!(
        r#"
[profiles.test]
max_size = 3
min_idle = 2

[profiles.test.postgres]
url = "host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
sslmode = "disable"
application_name = "{tag}"
statement_timeout = "4s"
"#
    );
    let config = Config::from_toml_str(&text, "test").unwrap();
    let pool = build(PgManager::new(config.postgres).unwrap(), config.pool);
    let conn = pool.get_async().await.unwrap();
    assert_eq!(
        peek(&conn, "SHOW statement_timeout").await.as_deref(),
        Some("4s")
    );
    support::eventually(
        "min_idle idle connections",
        Duration::from_secs(5),
        || async { pool.state().idle_connections >= 2 },
    )
    .await;
    let open = monitor.count(&tag).await;
    assert!(
        (3..=3).contains(&open),
        "one in use, two idle, max_size 3: {open}"
    );
}

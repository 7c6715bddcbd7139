#![cfg(not(feature = "loom"))]
//! What a borrower leaves behind, and how each recycling mode deals with it,
//! against the real server: the manager's `needs_reset`, `reset`,
//! `has_broken` and `is_valid` called directly, as the pool calls them when
//! a connection comes back or is handed out stale.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slotpool::AsyncManager;
use slotpool_postgres::{PgConfig, PgConnection, PgError, PgManager, Recycling};
use support::proxy::Proxy;
use support::{Monitor, PG_PORT, first_value, monitor_or_skip, settings, unique_tag};
use tokio_postgres::IsolationLevel;

async fn open(tag: &str, recycling: Recycling) -> (PgManager, PgConnection) {
    let manager = PgManager::new(PgConfig {
        recycling,
        ..settings(tag)
    })
    .unwrap();
    let conn = manager.connect().await.unwrap();
    (manager, conn)
}

/// A value read with the client's own (untracked) method, so that reading
/// never changes what the connection tracked.
async fn peek(conn: &PgConnection, sql: &str) -> Option<String> {
    first_value(&conn.client().simple_query(sql).await.expect(sql))
}

async fn pid(conn: &PgConnection) -> i32 {
    peek(conn, "SELECT pg_backend_pid()")
        .await
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether a transaction begun before this statement is open (a failed one
/// counts).
async fn in_transaction(conn: &PgConnection) -> bool {
    match conn
        .client()
        .simple_query("SELECT transaction_timestamp() <> statement_timestamp()")
        .await
    {
        Ok(messages) => first_value(&messages).as_deref() == Some("t"),
        Err(_) => true,
    }
}

/// Advisory locks `pid` holds, of any kind.
async fn advisory_locks(monitor: &Monitor, pid: i32) -> String {
    monitor
        .value(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {pid}"
        ))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_connection_used_cleanly_needs_no_reset() {
    let Some(_monitor) = monitor_or_skip("a_connection_used_cleanly_needs_no_reset").await else {
        return;
    };
    let (manager, mut conn) = open(&unique_tag("clean_use"), Recycling::Verified).await;
    conn.query("SELECT $1::int4", &[&1i32]).await.unwrap();
    conn.query_one("SELECT 1", &[]).await.unwrap();
    conn.execute("SELECT 1", &[]).await.unwrap();
    conn.query_typed(
        "SELECT $1::int8",
        &[(&1i64, tokio_postgres::types::Type::INT8)],
    )
    .await
    .unwrap();
    let statement = conn.prepare_cached("SELECT 2").await.unwrap();
    conn.query(&statement, &[]).await.unwrap();
    conn.batch_execute("BEGIN; SET LOCAL search_path TO pg_catalog; COMMIT")
        .await
        .unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.execute("SELECT 1", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.rollback().await.unwrap();
    drop(conn.transaction().await.unwrap()); // rolled back on drop
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .read_only(true)
        .start()
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!conn.dirt().any(), "{:?}", conn.dirt());
    assert!(!manager.needs_reset(&mut conn));
    assert!(!manager.has_broken(&mut conn));
    assert!(!in_transaction(&conn).await);
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back() {
    let Some(monitor) = monitor_or_skip("a_transaction_left_open_is_rolled_back").await else {
        return;
    };
    let (manager, mut conn) = open(&unique_tag("open_tx"), Recycling::Verified).await;
    let backend = pid(&conn).await;

    // Begun as SQL, holding a transaction-scoped lock.
    conn.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7)")
        .await
        .unwrap();
    assert!(conn.dirt().transaction);
    assert!(manager.needs_reset(&mut conn));
    assert_eq!(advisory_locks(&monitor, backend).await, "1");
    manager.reset(&mut conn).await.unwrap();
    assert!(!conn.dirt().any());
    assert!(!in_transaction(&conn).await);
    assert_eq!(
        advisory_locks(&monitor, backend).await,
        "0",
        "the ROLLBACK released it"
    );

    // Begun through the wrapper and never ended (leaked).
    std::mem::forget(conn.transaction().await.unwrap());
    assert!(manager.needs_reset(&mut conn));
    assert!(in_transaction(&conn).await);
    manager.reset(&mut conn).await.unwrap();
    assert!(!in_transaction(&conn).await);

    // Failed: an error inside the transaction.
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute("SELECT 1/0")
        .await
        .expect_err("division by zero");
    assert!(manager.needs_reset(&mut conn));
    manager.reset(&mut conn).await.unwrap();
    assert_eq!(peek(&conn, "SELECT 3").await.as_deref(), Some("3"));
    assert!(!manager.needs_reset(&mut conn));
}

#[tokio::test]
async fn savepoints_keep_the_transaction_open() {
    let Some(_monitor) = monitor_or_skip("savepoints_keep_the_transaction_open").await else {
        return;
    };
    let (_manager, mut conn) = open(&unique_tag("savepoint"), Recycling::Verified).await;
    {
        let mut tx = conn.transaction().await.unwrap();
        let savepoint = tx.savepoint("s1").await.unwrap();
        savepoint.commit().await.unwrap();
        let nested = tx.transaction().await.unwrap();
        nested.rollback().await.unwrap();
        assert!(tx.query_one("SELECT 1", &[]).await.is_ok());
        std::mem::forget(tx);
    }
    assert!(
        conn.dirt().transaction,
        "the outer transaction is still open"
    );
}

/// A query whose future was dropped keeps running on the server. The
/// connection is closed on return (`has_broken`), not reset: a cancel request
/// sent by a reset could arrive after the reset and hit the next borrower's
/// statement (57014). Closing it sends the cancel for the statement, which
/// may then arrive as late as it likes: it names a backend nobody will use.
#[tokio::test]
async fn an_interrupted_query_closes_the_connection_and_is_cancelled() {
    let Some(monitor) =
        monitor_or_skip("an_interrupted_query_closes_the_connection_and_is_cancelled").await
    else {
        return;
    };
    let (manager, mut conn) = open(&unique_tag("interrupted"), Recycling::Verified).await;
    let backend = pid(&conn).await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        conn.query("SELECT pg_sleep(30)", &[]),
    )
    .await;
    assert!(abandoned.is_err(), "the query was still running");
    assert!(conn.dirt().interrupted);
    assert!(
        manager.has_broken(&mut conn),
        "closed on return, not reused"
    );
    assert!(!manager.needs_reset(&mut conn));
    assert_eq!(monitor.state(backend).await.as_deref(), Some("active"));

    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor.state(backend).await.as_deref() == Some("active") {
        assert!(
            Instant::now() < deadline,
            "the abandoned statement still runs 10 s after its connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn session_state_is_restored_and_the_statement_cache_kept() {
    let Some(monitor) =
        monitor_or_skip("session_state_is_restored_and_the_statement_cache_kept").await
    else {
        return;
    };
    let tag = unique_tag("session");
    let manager = PgManager::new(PgConfig {
        statement_timeout: Some(Duration::from_millis(2500)),
        ..settings(&tag)
    })
    .unwrap();
    let mut conn = manager.connect().await.unwrap();
    let backend = pid(&conn).await;
    let default_path = peek(&conn, "SHOW search_path").await;
    let cached = conn.prepare_cached("SELECT 5").await.unwrap();

    for statement in [
        "SET search_path TO pg_catalog",
        "SET statement_timeout = 0",
        "SET application_name = 'changed'",
        "LISTEN slotpool_channel",
        "CREATE TEMP TABLE scratch (x int)",
        "SELECT pg_advisory_lock(11)",
        "PREPARE by_name AS SELECT 1",
        "BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT 1; COMMIT",
    ] {
        conn.batch_execute(statement).await.expect(statement);
    }
    let dirt = conn.dirt();
    assert!(
        dirt.session && dirt.prepared && !dirt.transaction,
        "{dirt:?}"
    );
    assert!(manager.needs_reset(&mut conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(!conn.dirt().any());

    assert_eq!(peek(&conn, "SHOW search_path").await, default_path);
    assert_eq!(
        peek(&conn, "SHOW statement_timeout").await.as_deref(),
        Some("2500ms")
    );
    assert_eq!(
        peek(&conn, "SHOW application_name").await,
        Some(tag.clone())
    );
    assert_eq!(
        peek(&conn, "SELECT count(*) FROM pg_listening_channels()")
            .await
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        peek(&conn, "SELECT to_regclass('pg_temp.scratch') IS NULL")
            .await
            .as_deref(),
        Some("t")
    );
    assert_eq!(advisory_locks(&monitor, backend).await, "0");
    assert_eq!(
        peek(&conn, "SELECT count(*) FROM pg_cursors")
            .await
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        peek(
            &conn,
            "SELECT count(*) FROM pg_prepared_statements WHERE from_sql"
        )
        .await
        .as_deref(),
        Some("0")
    );
    // The protocol-level statement of the cache survived, and still runs.
    assert_ne!(
        peek(
            &conn,
            "SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql"
        )
        .await
        .as_deref(),
        Some("0")
    );
    let again = conn.prepare_cached("SELECT 5").await.unwrap();
    let five: i32 = conn.query_one(&again, &[]).await.unwrap().get(0);
    assert_eq!(five, 5);
    assert_eq!(conn.statement_cache_stats().hits, 1);
    drop(cached);
}

/// Changes made around the tracking (the client's own methods, reached by
/// `Deref`) are invisible to `verified` until marked, and always undone by
/// `clean`.
#[tokio::test]
async fn untracked_changes_need_marking_or_clean_mode() {
    let Some(_monitor) = monitor_or_skip("untracked_changes_need_marking_or_clean_mode").await
    else {
        return;
    };
    let (manager, mut conn) = open(&unique_tag("untracked"), Recycling::Verified).await;
    let default_path = peek(&conn, "SHOW search_path").await;
    conn.client()
        .batch_execute("SET search_path TO pg_catalog")
        .await
        .unwrap();
    assert!(
        !manager.needs_reset(&mut conn),
        "verified trusts the tracking"
    );
    conn.mark_session_changed();
    assert!(manager.needs_reset(&mut conn));
    manager.reset(&mut conn).await.unwrap();
    assert_eq!(peek(&conn, "SHOW search_path").await, default_path);

    let (manager, mut conn) = open(&unique_tag("untracked_clean"), Recycling::Clean).await;
    assert!(manager.needs_reset(&mut conn), "clean resets every return");
    manager.reset(&mut conn).await.unwrap(); // a clean connection: one check
    conn.client()
        .batch_execute("SET search_path TO pg_catalog; BEGIN; SELECT pg_advisory_xact_lock(3)")
        .await
        .unwrap();
    assert!(!conn.dirt().any(), "nothing was tracked");
    assert!(manager.needs_reset(&mut conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(
        !in_transaction(&conn).await,
        "the untracked transaction was rolled back"
    );
    assert_eq!(
        peek(&conn, "SHOW search_path").await,
        default_path,
        "and the batch ran after the rollback"
    );
}

#[tokio::test]
async fn discarding_every_statement_retires_the_connection() {
    let Some(_monitor) = monitor_or_skip("discarding_every_statement_retires_the_connection").await
    else {
        return;
    };
    let (manager, mut conn) = open(&unique_tag("discard"), Recycling::Verified).await;
    conn.prepare_cached("SELECT 6").await.unwrap();
    assert_eq!(conn.statement_cache_stats().len, 1);
    conn.batch_execute("DISCARD ALL").await.unwrap();
    assert!(conn.dirt().statements_discarded);
    assert_eq!(
        conn.statement_cache_stats().len,
        0,
        "the cache forgot them too"
    );
    // Still usable by this borrower: the statement is prepared again.
    let statement = conn.prepare_cached("SELECT 6").await.unwrap();
    assert!(conn.query(&statement, &[]).await.is_ok());
    assert!(
        manager.has_broken(&mut conn),
        "the pool closes it on return"
    );
    assert!(!manager.needs_reset(&mut conn));
}

/// `fast` trusts `is_closed()`, which cannot see a connection the server
/// side dropped silently; `verified` and `clean` make one round trip.
#[tokio::test]
async fn verified_finds_a_silently_dropped_connection_and_fast_does_not() {
    let Some(_monitor) =
        monitor_or_skip("verified_finds_a_silently_dropped_connection_and_fast_does_not").await
    else {
        return;
    };
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT))).unwrap();
    let mut opened = Vec::new();
    for recycling in [Recycling::Fast, Recycling::Verified, Recycling::Clean] {
        let manager = PgManager::new(PgConfig {
            port: Some(u32::from(proxy.port())),
            recycling,
            ..settings(&unique_tag("half_open"))
        })
        .unwrap();
        let mut conn = manager.connect().await.unwrap();
        manager.is_valid(&mut conn).await.unwrap();
        opened.push((recycling, manager, conn));
    }
    proxy.half_open();
    for (recycling, manager, mut conn) in opened {
        assert!(!conn.is_closed(), "{recycling}: nothing arrived to say so");
        let checked = tokio::time::timeout(Duration::from_secs(5), manager.is_valid(&mut conn))
            .await
            .expect("the check answers");
        match recycling {
            Recycling::Fast => {
                assert!(checked.is_ok(), "fast cannot see it");
                assert!(
                    conn.simple_query("SELECT 1").await.is_err(),
                    "and the borrower pays"
                );
            }
            Recycling::Verified | Recycling::Clean => {
                let error = checked.expect_err("one round trip finds it");
                assert!(
                    matches!(error, PgError::Postgres(_) | PgError::Closed),
                    "{error}"
                );
                assert_eq!(manager.classify(&error), slotpool::ErrorClass::Permanent);
            }
        }
    }
}

#[tokio::test]
async fn every_mode_sees_a_closed_connection() {
    let Some(_monitor) = monitor_or_skip("every_mode_sees_a_closed_connection").await else {
        return;
    };
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT))).unwrap();
    let mut opened = Vec::new();
    for recycling in [Recycling::Fast, Recycling::Verified, Recycling::Clean] {
        let manager = PgManager::new(PgConfig {
            port: Some(u32::from(proxy.port())),
            recycling,
            ..settings(&unique_tag("closed"))
        })
        .unwrap();
        let conn = manager.connect().await.unwrap();
        opened.push((manager, conn));
    }
    proxy.blackhole();
    for (manager, mut conn) in opened {
        support::eventually(
            "the client to see the close",
            Duration::from_secs(5),
            || async { conn.is_closed() },
        )
        .await;
        assert!(manager.has_broken(&mut conn));
        let error = manager.is_valid(&mut conn).await.expect_err("closed");
        assert!(matches!(error, PgError::Closed), "{error}");
    }
}

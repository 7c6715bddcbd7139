#![cfg(not(feature = "loom"))]
//! The pool through a real PgBouncer in transaction mode (127.0.0.1:6432,
//! `scripts/pgbouncer.sh start`), with `postgres.pooler = "transaction"`:
//! queries with and without parameters, refused prepares and session state,
//! transactions committed, rolled back and left open, many tasks over a
//! small pool, a server backend killed on the primary, and deadlines. Then
//! the failure pooler mode prevents: named prepared statements through the
//! same PgBouncer, made deterministic with a two-connection server pool.
//!
//! Without PgBouncer every test prints a loud SKIPPED line;
//! `SLOTPOOL_REQUIRE_PG=1` makes that a failure.

#[path = "support/bouncer.rs"]
mod bouncer;
mod support;

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bouncer::{Bouncer, INTERLEAVE_DB, bouncer_or_skip, fresh_server_pool};
use slotpool::runtime::Tokio;
use slotpool::{Async, Pool, PoolConfig};
use slotpool_postgres::tokio_postgres::error::SqlState;
use slotpool_postgres::{Config, PgManager, PoolerViolation};
use support::{Monitor, monitor_or_skip, pool_config, unique_tag};

use slotpool_postgres::PgPool;

fn build(config: Config) -> PgPool {
    Pool::builder()
        .config(config.pool)
        .build(Async::new(
            PgManager::new(config.postgres).expect("valid settings"),
            Tokio::current(),
        ))
        .expect("a valid pool")
}

/// The primary's monitor and PgBouncer's settings, or a skip.
async fn both_or_skip(test: &str) -> Option<(Monitor, Bouncer)> {
    let monitor = monitor_or_skip(test).await?;
    let bouncer = bouncer_or_skip(test).await?;
    Some((monitor, bouncer))
}

fn violation(error: &slotpool_postgres::tokio_postgres::Error) -> Option<PoolerViolation> {
    error
        .source()
        .and_then(|source| source.downcast_ref::<PoolerViolation>())
        .copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_as_unnamed_statements_through_pgbouncer() {
    let Some((_monitor, bouncer)) =
        both_or_skip("queries_run_as_unnamed_statements_through_pgbouncer").await
    else {
        return;
    };
    let tag = unique_tag("pooler_queries");
    let config = bouncer.config(pool_config(2), bouncer.settings(&tag, "postgres"));
    // The derived lifetimes nest inside PgBouncer's timeouts.
    let bound = [bouncer.client_idle_timeout, bouncer.server_idle_timeout]
        .into_iter()
        .flatten()
        .min();
    if let Some(bound) = bound {
        assert!(config.pool.max_lifetime.is_some_and(|l| l < bound));
        assert!(config.pool.idle_timeout.is_none_or(|i| i < bound));
    }
    let pool = build(config);
    for i in 0..20i32 {
        let conn = pool.get_async().await.unwrap();
        let row = conn
            .query_one("SELECT $1::int4 + 1, $2::text || 'x'", &[&i, &"a"])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
        assert_eq!(row.get::<_, String>(1), "ax");
        let none = conn
            .query_opt("SELECT 1 WHERE $1::int8 < 0", &[&i64::from(i)])
            .await
            .unwrap();
        assert!(none.is_none());
        let rows = conn
            .query("SELECT generate_series(1, 3)", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(conn.execute("SELECT 1", &[]).await.unwrap(), 1);
        let typed = conn
            .query_typed_one(
                "SELECT $1 * 2",
                &[(&i, slotpool_postgres::tokio_postgres::types::Type::INT4)],
            )
            .await
            .unwrap();
        assert_eq!(typed.get::<_, i32>(0), i * 2);
        assert!(!conn.dirt().any(), "nothing left to reset");
    }
    // Parameter types are learnt once per SQL text and connection.
    let stats = pool.manager().manager().statement_cache_stats();
    assert!(stats.misses <= 4, "{stats:?}");
    assert!(stats.hits >= 36, "{stats:?}");
    // And no named statement stays behind on the server connections the
    // pool used (each query below may run on any of them).
    let conn = pool.get_async().await.unwrap();
    for _ in 0..5 {
        let left = conn
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(left.get::<_, i64>(0), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepares_and_session_state_are_refused_before_anything_is_sent() {
    let Some((_monitor, bouncer)) =
        both_or_skip("prepares_and_session_state_are_refused_before_anything_is_sent").await
    else {
        return;
    };
    let tag = unique_tag("pooler_refused");
    let pool = build(bouncer.config(pool_config(1), bouncer.settings(&tag, "postgres")));
    let mut conn = pool.get_async().await.unwrap();
    for result in [
        conn.prepare_cached("SELECT 1").await,
        conn.prepare("SELECT 1").await,
    ] {
        let error = result.expect_err("refused");
        assert_eq!(violation(&error), Some(PoolerViolation::NamedStatement));
        // tokio-postgres's Display is the kind ("error serializing
        // parameter 0", as "db error" for a server error); the explanation
        // is the source, as a server error's is.
        let why = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(why.contains("query_typed"), "{why}");
        assert!(why.contains("postgres.pooler = \"transaction\""), "{why}");
    }
    for sql in [
        "SET search_path TO pg_catalog",
        "LISTEN jobs",
        "SELECT pg_advisory_lock(17)",
        "CREATE TEMP TABLE t (x int)",
    ] {
        let error = conn.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            violation(&error),
            Some(PoolerViolation::SessionState),
            "{sql}"
        );
        let error = conn.execute(sql, &[]).await.expect_err(sql);
        assert_eq!(
            violation(&error),
            Some(PoolerViolation::SessionState),
            "{sql}"
        );
    }
    let error = conn
        .batch_execute("DISCARD ALL")
        .await
        .expect_err("DISCARD ALL");
    assert_eq!(violation(&error), Some(PoolerViolation::PreparedStatements));
    assert!(!conn.dirt().any(), "refused statements were never sent");
    // What works instead: transaction-scoped state.
    let tx = conn.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL statement_timeout = '5s'")
        .await
        .unwrap();
    let row = tx
        .query_one(
            "SELECT current_setting('statement_timeout'), pg_try_advisory_xact_lock($1)",
            &[&17i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "5s");
    assert!(row.get::<_, bool>(1));
    tx.commit().await.unwrap();
    let after = conn
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .unwrap();
    assert_eq!(
        after.get::<_, String>(0),
        "0",
        "SET LOCAL ended with its transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_roll_back_and_are_reset_through_pgbouncer() {
    let Some((monitor, bouncer)) =
        both_or_skip("transactions_commit_roll_back_and_are_reset_through_pgbouncer").await
    else {
        return;
    };
    let tag = unique_tag("pooler_tx");
    let table = format!("{tag}_t");
    monitor
        .exec(&format!("CREATE TABLE {table} (k int PRIMARY KEY)"))
        .await;
    let pool = build(bouncer.config(pool_config(2), bouncer.settings(&tag, "postgres")));
    let insert = format!("INSERT INTO {table} VALUES ($1)");
    {
        let mut conn = pool.get_async().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute(&insert, &[&1i32]).await.unwrap();
        tx.commit().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute(&insert, &[&2i32]).await.unwrap();
        tx.rollback().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute(&insert, &[&3i32]).await.unwrap();
        drop(tx); // rolled back
        // A transaction begun as SQL and left open by the borrower.
        conn.batch_execute("BEGIN").await.unwrap();
        conn.execute(&insert, &[&4i32]).await.unwrap();
        assert!(conn.dirt().transaction);
    }
    let conn = pool.get_async().await.unwrap();
    assert!(!conn.dirt().any(), "the reset rolled it back");
    let kept = monitor
        .value(&format!(
            "SELECT string_agg(k::text, ',' ORDER BY k) FROM {table}"
        ))
        .await;
    assert_eq!(kept.as_deref(), Some("1"));
    // An error inside a transaction, then the transaction's end.
    let mut conn = conn;
    let tx = conn.transaction().await.unwrap();
    let duplicate = tx.execute(&insert, &[&1i32]).await.expect_err("duplicate");
    assert_eq!(duplicate.code(), Some(&SqlState::UNIQUE_VIOLATION));
    tx.rollback().await.unwrap();
    assert_eq!(conn.execute(&insert, &[&5i32]).await.unwrap(), 1);
    drop(conn);
    drop(pool);
    monitor.exec(&format!("DROP TABLE {table}")).await;
}

/// More tasks than connections, each transaction pinned to one server
/// connection by PgBouncer and holding one pooled connection exclusively:
/// `SET LOCAL` inside each transaction is seen by that transaction alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_a_small_pool_through_pgbouncer() {
    let Some((monitor, bouncer)) =
        both_or_skip("many_tasks_share_a_small_pool_through_pgbouncer").await
    else {
        return;
    };
    const TASKS: i32 = 24;
    const EACH: i32 = 10;
    let tag = unique_tag("pooler_many");
    let table = format!("{tag}_t");
    monitor
        .exec(&format!("CREATE TABLE {table} (task int, i int, who text)"))
        .await;
    let pool = Arc::new(build(
        bouncer.config(pool_config(4), bouncer.settings(&tag, "postgres")),
    ));
    let in_use = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let insert =
        format!("INSERT INTO {table} VALUES ($1, $2, current_setting('application_name'))");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        let in_use = in_use.clone();
        let insert = insert.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let mut conn = pool.get_async().await.unwrap();
                let key = std::ptr::from_ref::<slotpool_postgres::PgConnection>(&conn) as usize;
                assert!(
                    in_use.lock().unwrap().insert(key),
                    "a connection lent twice"
                );
                let who = format!("w{task}_{i}");
                let tx = conn.transaction().await.unwrap();
                tx.batch_execute(&format!("SET LOCAL application_name = '{who}'"))
                    .await
                    .unwrap();
                tx.execute(&insert, &[&task, &i]).await.unwrap();
                let seen: String = tx
                    .query_one("SELECT current_setting('application_name')", &[])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(seen, who, "the transaction stayed on one server connection");
                tx.commit().await.unwrap();
                assert!(in_use.lock().unwrap().remove(&key));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows = monitor
        .value(&format!(
            "SELECT count(*) FILTER (WHERE who = 'w' || task || '_' || i) FROM {table}"
        ))
        .await;
    assert_eq!(rows, Some((TASKS * EACH).to_string()));
    let stats = pool.stats();
    assert_eq!(stats.gauges.in_use, 0);
    assert!(stats.counters.created <= 4 + stats.counters.closed.iter().map(|c| c.1).sum::<u64>());
    assert_eq!(stats.counters.timeouts, 0);
    drop(pool);
    monitor.exec(&format!("DROP TABLE {table}")).await;
}

/// The server backend behind a transaction is terminated on the primary:
/// that borrower gets an error, and the next borrower a working connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_on_the_primary_costs_one_error() {
    let Some((monitor, bouncer)) =
        both_or_skip("a_backend_killed_on_the_primary_costs_one_error").await
    else {
        return;
    };
    let tag = unique_tag("pooler_kill");
    let pool = build(bouncer.config(pool_config(1), bouncer.settings(&tag, "postgres")));
    {
        let mut conn = pool.get_async().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        let pid: i32 = tx
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let killed = monitor
            .value(&format!("SELECT pg_terminate_backend({pid}, 5000)"))
            .await;
        assert_eq!(killed.as_deref(), Some("t"));
        let failed = tx.query_one("SELECT 1", &[]).await;
        assert!(failed.is_err(), "the killed backend's transaction fails");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = pool.get_async().await.unwrap();
    let row = conn.query_one("SELECT $1::int4", &[&7i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert!(Instant::now() < deadline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_hold_through_pgbouncer() {
    let Some((_monitor, bouncer)) = both_or_skip("deadlines_hold_through_pgbouncer").await else {
        return;
    };
    let tag = unique_tag("pooler_deadline");
    let pool = build(bouncer.config(
        PoolConfig {
            connection_timeout: Duration::from_millis(300),
            validation_timeout: Duration::from_millis(100),
            ..pool_config(1)
        },
        bouncer.settings(&tag, "postgres"),
    ));
    let held = pool.get_async().await.unwrap();
    let started = Instant::now();
    let waited = pool.get_async().await;
    assert!(
        matches!(waited, Err(slotpool::Error::TimedOut { .. })),
        "{waited:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline held"
    );
    // A statement abandoned at its caller's deadline: the connection is
    // closed on return (its statement cancelled through PgBouncer), and the
    // next borrower is served at once.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        held.query("SELECT pg_sleep(30)", &[]),
    )
    .await;
    assert!(abandoned.is_err());
    drop(held);
    let started = Instant::now();
    let conn = pool.get_async().await.unwrap();
    assert_eq!(
        conn.query_one("SELECT 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Without pooler mode, a statement prepared by one client is executed by
/// PgBouncer on another server connection when a second client's
/// transaction holds the first: deterministic with PgBouncer's
/// `slotpool_interleave` database (`pool_size = 2`, and PgBouncer hands
/// out the most recently released server connection first), emptied first
/// so that no statement an earlier run left behind answers in its place.
/// With pooler mode, the same interleaving succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_statements_break_through_pgbouncer_and_pooler_mode_prevents_it() {
    let Some((_monitor, bouncer)) =
        both_or_skip("named_statements_break_through_pgbouncer_and_pooler_mode_prevents_it").await
    else {
        return;
    };
    let tag = unique_tag("pooler_named");
    fresh_server_pool(INTERLEAVE_DB).await;
    // Two borrowers of a pool without pooler mode, at once.
    let named = build(Config {
        pool: pool_config(2),
        postgres: bouncer.settings_without_pooler_mode(&tag, INTERLEAVE_DB),
    });
    let a = named.get_async().await.unwrap();
    let b = named.get_async().await.unwrap();
    let statement = a.prepare_cached("SELECT $1::int4 + 1").await.unwrap();
    // B's transaction takes the server connection A prepared on.
    b.batch_execute("BEGIN").await.unwrap();
    let broken = a.query_one(&statement, &[&1i32]).await;
    b.batch_execute("ROLLBACK").await.unwrap();
    let error = broken.expect_err("the statement is not on the other server connection");
    assert_eq!(
        error.code(),
        Some(&SqlState::INVALID_SQL_STATEMENT_NAME),
        "{error:?}"
    );
    let message = error.as_db_error().map(|e| e.message().to_owned()).unwrap();
    assert!(
        message.starts_with("prepared statement \"s") && message.ends_with("does not exist"),
        "{message}"
    );
    drop((statement, a, b));
    drop(named);
    // The statement is still on the first server connection (its Close went
    // to whichever one PgBouncer picked): a later client whose counter
    // reaches the same name gets `prepared statement "s.." already exists`,
    // or, worse, runs this statement. Leave nothing behind.
    fresh_server_pool(INTERLEAVE_DB).await;

    let pooled = build(bouncer.config(pool_config(2), bouncer.settings(&tag, INTERLEAVE_DB)));
    let a = pooled.get_async().await.unwrap();
    let b = pooled.get_async().await.unwrap();
    for i in 0..5i32 {
        let first = a.query_one("SELECT $1::int4 + 1", &[&i]).await.unwrap();
        b.batch_execute("BEGIN").await.unwrap();
        let second = a.query_one("SELECT $1::int4 + 1", &[&i]).await;
        b.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(first.get::<_, i32>(0), i + 1);
        assert_eq!(second.unwrap().get::<_, i32>(0), i + 1);
    }
}

/// Settings that would set session state at connect are rejected when the
/// configuration is validated, naming the setting and the rule.
#[test]
fn session_settings_are_rejected_in_pooler_mode() {
    let config: slotpool_postgres::PgConfig =
        "host=127.0.0.1 port=6432 user=postgres pooler=transaction"
            .parse()
            .unwrap();
    assert_eq!(config.pooler, slotpool_postgres::PoolerMode::Transaction);
    let mut timed = config.clone();
    timed.statement_timeout = Some(Duration::from_secs(5));
    let error = timed.validate().expect_err("startup options").to_string();
    assert!(error.contains("postgres.statement_timeout"), "{error}");
    assert!(error.contains("unsupported startup parameter"), "{error}");
    let mut clean = config.clone();
    clean.recycling = slotpool_postgres::Recycling::Clean;
    assert!(
        clean
            .validate()
            .expect_err("clean")
            .to_string()
            .contains("postgres.recycling")
    );
    let options: slotpool_postgres::PgConfig = slotpool_postgres::PgConfig {
        url: "host=h options='-c work_mem=64MB'".into(),
        pooler: slotpool_postgres::PoolerMode::Transaction,
        ..slotpool_postgres::PgConfig::default()
    };
    assert!(
        options
            .problems()
            .iter()
            .any(|p| p.to_string().contains("`options`")),
        "{:?}",
        options.problems()
    );
    let wrong = "host=h pooler=session".parse::<slotpool_postgres::PgConfig>();
    assert!(wrong.is_err_and(|e| e.to_string().contains("none, transaction")));
}

#![cfg(not(feature = "loom"))]
//! The per-connection statement cache against the real server: bounded by
//! `statement_cache_capacity`, least recently used out first (and closed on
//! the server), hits and misses counted per connection and per manager,
//! surviving a reset, off at capacity 0.

mod support;

use slotpool::AsyncManager;
use slotpool_postgres::{PgConfig, PgConnection, PgManager};
use support::{first_value, monitor_or_skip, settings, unique_tag};
use tokio_postgres::types::Type;

async fn open(capacity: u32) -> (PgManager, PgConnection) {
    let manager = PgManager::new(PgConfig {
        statement_cache_capacity: capacity,
        ..settings(&unique_tag("cache"))
    })
    .unwrap();
    let conn = manager.connect().await.unwrap();
    (manager, conn)
}

/// Protocol-level prepared statements the session holds, by text.
async fn server_statements(conn: &PgConnection) -> Vec<String> {
    let messages = conn
        .client()
        .simple_query(
            "SELECT statement FROM pg_prepared_statements WHERE NOT from_sql ORDER BY statement",
        )
        .await
        .unwrap();
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_least_recently_used_statement_is_evicted_and_closed() {
    let Some(_monitor) =
        monitor_or_skip("the_least_recently_used_statement_is_evicted_and_closed").await
    else {
        return;
    };
    let (manager, conn) = open(2).await;
    conn.prepare_cached("SELECT 'a'").await.unwrap();
    conn.prepare_cached("SELECT 'b'").await.unwrap();
    conn.prepare_cached("SELECT 'a'").await.unwrap(); // a hit: 'a' is now the most recent
    conn.prepare_cached("SELECT 'c'").await.unwrap(); // evicts 'b', not 'a'
    let stats = conn.statement_cache_stats();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.evictions,
            stats.len,
            stats.capacity
        ),
        (1, 3, 1, 2, 2)
    );
    // The evicted statement was closed on the server (Close is sent when
    // the last clone drops; the next round trip has processed it).
    assert_eq!(server_statements(&conn).await, ["SELECT 'a'", "SELECT 'c'"]);
    conn.prepare_cached("SELECT 'a'").await.unwrap();
    assert_eq!(conn.statement_cache_stats().hits, 2, "'a' survived");
    conn.prepare_cached("SELECT 'b'").await.unwrap();
    assert_eq!(conn.statement_cache_stats().misses, 4, "'b' was gone");

    let total = manager.statement_cache_stats();
    assert_eq!((total.hits, total.misses, total.evictions), (2, 4, 2));
}

#[tokio::test]
async fn the_cache_survives_a_return_and_counts_per_manager() {
    let Some(_monitor) =
        monitor_or_skip("the_cache_survives_a_return_and_counts_per_manager").await
    else {
        return;
    };
    let (manager, mut conn) = open(10).await;
    let mut other = manager.connect().await.unwrap();
    let first = conn.prepare_cached("SELECT $1::int4 * 2").await.unwrap();
    other.prepare_cached("SELECT $1::int4 * 2").await.unwrap(); // its own cache
    conn.batch_execute("SET search_path TO pg_catalog")
        .await
        .unwrap();
    assert!(manager.needs_reset(&mut conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(!manager.needs_reset(&mut other));

    let again = conn.prepare_cached("SELECT $1::int4 * 2").await.unwrap();
    let doubled: i32 = conn.query_one(&again, &[&21i32]).await.unwrap().get(0);
    assert_eq!(doubled, 42);
    // Not prepared again: with `first` still held, a second prepare would
    // show as a second server-side statement.
    assert_eq!(server_statements(&conn).await, ["SELECT $1::int4 * 2"]);
    drop(first);
    assert_eq!(conn.statement_cache_stats().hits, 1);
    assert_eq!(other.statement_cache_stats().hits, 0);
    let total = manager.statement_cache_stats();
    assert_eq!((total.hits, total.misses, total.len), (1, 2, 0));
}

#[tokio::test]
async fn parameter_types_are_part_of_the_key() {
    let Some(_monitor) = monitor_or_skip("parameter_types_are_part_of_the_key").await else {
        return;
    };
    let (_manager, conn) = open(10).await;
    let int4 = conn
        .prepare_typed_cached("SELECT $1", &[Type::INT4])
        .await
        .unwrap();
    let text = conn
        .prepare_typed_cached("SELECT $1", &[Type::TEXT])
        .await
        .unwrap();
    assert_eq!(int4.params(), [Type::INT4]);
    assert_eq!(text.params(), [Type::TEXT]);
    assert_eq!(conn.statement_cache_stats().len, 2);
    assert!(conn.remove_cached_statement("SELECT $1", &[Type::TEXT]));
    assert!(!conn.remove_cached_statement("SELECT $1", &[Type::TEXT]));
    assert_eq!(conn.statement_cache_stats().len, 1);
    conn.clear_statement_cache();
    assert_eq!(conn.statement_cache_stats().len, 0);
}

#[tokio::test]
async fn capacity_zero_caches_nothing() {
    let Some(_monitor) = monitor_or_skip("capacity_zero_caches_nothing").await else {
        return;
    };
    let (_manager, conn) = open(0).await;
    for _ in 0..3 {
        let statement = conn.prepare_cached("SELECT 7").await.unwrap();
        let row = conn.query_one(&statement, &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
    }
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.len), (0, 3, 0));
    assert!(
        server_statements(&conn).await.is_empty(),
        "each was closed when dropped"
    );
    assert_eq!(
        first_value(&conn.client().simple_query("SELECT 1").await.unwrap()).as_deref(),
        Some("1")
    );
}

/// A statement cached inside a transaction is the session's, not the
/// transaction's: it outlives a rollback.
#[tokio::test]
async fn statements_cached_in_a_transaction_outlive_it() {
    let Some(_monitor) = monitor_or_skip("statements_cached_in_a_transaction_outlive_it").await
    else {
        return;
    };
    let (_manager, mut conn) = open(10).await;
    {
        let tx = conn.transaction().await.unwrap();
        tx.prepare_cached("SELECT 8").await.unwrap();
        tx.rollback().await.unwrap();
    }
    let statement = conn.prepare_cached("SELECT 8").await.unwrap();
    assert_eq!(
        conn.query_one(&statement, &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        8
    );
    assert_eq!(conn.statement_cache_stats().hits, 1);
}

#![cfg(not(feature = "loom"))]
//! SQLite's part of the fault suite (moved here from the core's
//! `tests/faults.rs` with the backend): a file that is not a database, and a
//! fatal error on a pooled connection.

use std::time::{Duration, Instant};

use slotpool::{CloseReason, Pool};
use slotpool_sqlite::{SqliteError, SqliteManager};

const MARGIN: Duration = Duration::from_secs(1);

#[test]
fn sqlite_garbage_file_is_evicted_and_reported_as_notadb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let pool = Pool::builder()
        .max_size(2)
        .fail_fast_after(1)
        .build(SqliteManager::file(&path))
        .unwrap();
    {
        let conn = pool.get().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    pool.close().expect("nothing is checked out");
    drop(pool);
    // Replace the database by garbage.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let pool = Pool::builder()
        .max_size(2)
        .build(SqliteManager::file(&path))
        .unwrap();
    let started = Instant::now();
    let error = pool.get_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(
        started.elapsed() < MARGIN,
        "a permanent error should fail at once"
    );
    let source = error.connect_error().expect("typed cause");
    assert_eq!(
        source.code(),
        Some(rusqlite::ErrorCode::NotADatabase),
        "{error}"
    );
    // (A probe connect may be in flight: `connecting` is not a pooled
    // connection.)
    let state = pool.state();
    assert_eq!(
        state.idle_connections + state.in_use,
        0,
        "no broken connection is pooled: {state}"
    );
}

#[test]
fn sqlite_fatal_error_on_a_pooled_connection_evicts_it() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::builder()
        .max_size(1)
        .build(SqliteManager::file(dir.path().join("app.db")))
        .unwrap();
    let mut conn = pool.get().unwrap();
    let corrupt = SqliteError::from(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        None,
    ));
    assert!(conn.note_error(&corrupt), "SQLITE_CORRUPT is fatal");
    drop(conn);
    assert_eq!(pool.stats().counters.closed(CloseReason::Fatal), 1);
    let busy = SqliteError::from(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        None,
    ));
    let mut conn = pool.get().unwrap();
    assert!(!conn.note_error(&busy), "SQLITE_BUSY is transient");
}

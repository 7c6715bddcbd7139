#![cfg(not(feature = "loom"))]
//! The SQLite backend against real database files in temporary directories:
//! pragmas, rollback on return, the single writer, read-only readers, shared
//! in-memory databases, `sqlite.locking` (in this process and against another
//! one), and how open failures are classified.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use slotpool::{ErrorClass, Manager, Pool, PoolConfig};
use slotpool_sqlite::{
    Config, Locking, SqliteConfig, SqliteError, SqliteManager, SqlitePool, Synchronous, TempStore,
};
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn path_in(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

fn pragma<T: rusqlite::types::FromSql>(conn: &rusqlite::Connection, name: &str) -> T {
    conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
}

fn sqlite_pool(dir: &TempDir, readers: u32, busy_timeout: Duration) -> SqlitePool {
    let mut config = Config {
        pool: PoolConfig {
            max_size: readers,
            connection_timeout: Duration::from_secs(10),
            ..PoolConfig::default()
        },
        ..Config::default()
    };
    config.sqlite.path = path_in(dir, "app.db");
    config.sqlite.busy_timeout = busy_timeout;
    SqlitePool::new(config).expect("sqlite pool")
}

#[test]
fn every_pragma_is_applied_to_new_connections() {
    let dir = temp_dir();
    let config = SqliteConfig {
        path: path_in(&dir, "pragmas.db"),
        synchronous: Synchronous::Normal,
        mmap_size: 1 << 20,
        cache_size: -4000,
        busy_timeout: Duration::from_millis(1234),
        foreign_keys: true,
        temp_store: TempStore::Memory,
        ..SqliteConfig::default()
    };
    let pool = Pool::builder()
        .max_size(2)
        .build(SqliteManager::new(config).unwrap())
        .unwrap();
    let conn = pool.get().unwrap();
    assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
    assert_eq!(pragma::<i64>(&conn, "synchronous"), 1, "NORMAL");
    assert_eq!(pragma::<i64>(&conn, "mmap_size"), 1 << 20);
    assert_eq!(pragma::<i64>(&conn, "cache_size"), -4000);
    assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 1234);
    assert_eq!(pragma::<i64>(&conn, "foreign_keys"), 1);
    assert_eq!(pragma::<i64>(&conn, "temp_store"), 2, "MEMORY");
}

#[test]
fn pragmas_skip_journal_mode_where_it_cannot_apply() {
    let dir = temp_dir();
    let read_only = SqliteManager::new(SqliteConfig {
        path: path_in(&dir, "x.db"),
        read_only: true,
        ..SqliteConfig::default()
    })
    .unwrap();
    assert!(
        !read_only
            .pragmas()
            .iter()
            .any(|p| p.starts_with("PRAGMA journal_mode"))
    );
    let memory = SqliteManager::memory("pragmas_skip_journal_mode").unwrap();
    assert!(
        !memory
            .pragmas()
            .iter()
            .any(|p| p.starts_with("PRAGMA journal_mode"))
    );
    let file = SqliteManager::file(dir.path().join("y.db"));
    assert!(
        file.pragmas()
            .iter()
            .any(|p| p == "PRAGMA journal_mode = WAL")
    );
}

#[test]
fn a_transaction_left_open_is_rolled_back_on_return() {
    let dir = temp_dir();
    let pool = Pool::builder()
        .max_size(1)
        .build(SqliteManager::file(dir.path().join("rollback.db")))
        .unwrap();
    pool.get()
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER)")
        .unwrap();
    {
        let conn = pool.get().unwrap();
        conn.execute_batch("BEGIN; INSERT INTO t VALUES (1);")
            .unwrap();
        assert!(!conn.is_autocommit());
    } // returned with the transaction open

    let conn = pool.get().unwrap(); // the same, single connection
    assert!(conn.is_autocommit(), "the next borrower starts clean");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the uncommitted row is gone");
}

#[test]
fn writers_queue_for_the_single_writer_without_sqlite_busy() {
    let dir = temp_dir();
    // busy_timeout 0: any lock collision would fail at once with SQLITE_BUSY.
    let pool = sqlite_pool(&dir, 4, Duration::ZERO);
    pool.writer()
        .unwrap()
        .execute_batch("CREATE TABLE log(thread INTEGER, n INTEGER)")
        .unwrap();

    let barrier = Barrier::new(4);
    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|thread| {
                let (pool, barrier) = (&pool, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut errors = Vec::new();
                    for n in 0..200 {
                        let result = pool.writer().map_err(|e| e.to_string()).and_then(|conn| {
                            conn.execute("INSERT INTO log VALUES (?1, ?2)", [thread, n])
                                .map_err(|e| e.to_string())
                        });
                        if let Err(error) = result {
                            errors.push(error);
                        }
                    }
                    errors
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(errors.is_empty(), "errors: {errors:?}");
    let rows: i64 = pool
        .reader()
        .unwrap()
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 800);
    assert_eq!(pool.writer_pool().state().max_size, 1);
}

#[test]
fn an_open_read_transaction_does_not_block_the_writer() {
    let dir = temp_dir();
    // busy_timeout 0: if the reader blocked the writer, the commit would fail.
    let pool = sqlite_pool(&dir, 2, Duration::ZERO);
    pool.writer()
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();

    let reader = pool.reader().unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let count = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&reader), 1); // the read transaction now holds a snapshot

    let started = Instant::now();
    let writer = pool.writer_timeout(Duration::from_secs(1)).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT;")
        .unwrap();
    drop(writer);
    assert!(started.elapsed() < Duration::from_secs(1));

    assert_eq!(count(&reader), 1, "the reader keeps its snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader), 2, "and sees the commit afterwards");
}

#[test]
fn readers_are_read_only() {
    let dir = temp_dir();
    let pool = sqlite_pool(&dir, 2, Duration::from_secs(1));
    pool.writer()
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER)")
        .unwrap();
    let reader = pool.reader().unwrap();
    let error = reader
        .execute("INSERT INTO t VALUES (1)", [])
        .expect_err("a reader must not write");
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::ReadOnly));
}

#[test]
fn readers_open_on_a_database_the_pool_creates() {
    let dir = temp_dir();
    let path = dir.path().join("fresh.db");
    assert!(!path.exists());
    let pool = SqlitePool::open(&path).unwrap();
    assert!(path.exists(), "the writer created the file");
    let reader = pool.reader().unwrap();
    assert_eq!(pragma::<String>(&reader, "journal_mode"), "wal");
}

#[test]
fn a_shared_memory_database_is_seen_by_every_connection() {
    let pool = Pool::builder()
        .max_size(2)
        .build(SqliteManager::memory("tests_shared_memory").unwrap())
        .unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    a.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (7);")
        .unwrap();
    let x: i64 = b.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 7);

    // With every pooled connection gone, the manager's anchor keeps it alive.
    drop(a.detach());
    drop(b.detach());
    let c = pool.get().unwrap();
    let x: i64 = c.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 7);
}

#[test]
fn separate_memory_names_are_separate_databases() {
    let one = SqliteManager::memory("tests_memory_one").unwrap();
    let two = SqliteManager::memory("tests_memory_two").unwrap();
    one.connect()
        .unwrap()
        .execute_batch("CREATE TABLE only_in_one(x)")
        .unwrap();
    let tables: i64 = two
        .connect()
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn a_file_replaced_by_garbage_fails_with_a_permanent_notadb() {
    let dir = temp_dir();
    let path = dir.path().join("garbage.db");
    let manager = SqliteManager::file(&path);
    manager
        .connect()
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let _ = std::fs::remove_file(dir.path().join("garbage.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("garbage.db-shm"));
    std::fs::write(&path, vec![0xA5_u8; 8192]).unwrap();

    let error = manager.connect().expect_err("garbage is not a database");
    assert_eq!(error.code(), Some(ErrorCode::NotADatabase), "{error}");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
    let message = error.to_string();
    assert!(message.contains("garbage.db"), "names the file: {message}");
}

#[test]
fn a_missing_directory_is_named_and_permanent() {
    let dir = temp_dir();
    let path = dir.path().join("no/such/dir/app.db");
    let manager = SqliteManager::file(&path);
    let error = manager.connect().expect_err("no directory");
    assert!(
        matches!(error, SqliteError::MissingDirectory { .. }),
        "{error:?}"
    );
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
    assert!(error.to_string().contains("no/such/dir"), "{error}");

    let mut config = Config::default();
    config.sqlite.path = path.display().to_string();
    let started = Instant::now();
    let error = SqlitePool::new(config).expect_err("the pool reports it");
    assert!(started.elapsed() < Duration::from_secs(5), "fails at once");
    assert!(
        matches!(
            error.connect_error(),
            Some(SqliteError::MissingDirectory { .. })
        ),
        "{error}"
    );
}

#[test]
fn lock_contention_is_transient() {
    let busy = SqliteError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        None,
    ));
    assert_eq!(busy.class(), ErrorClass::Transient);
    let readonly_later = SqliteError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
        None,
    ));
    assert_eq!(readonly_later.class(), ErrorClass::Transient);
    let readonly_on_open = SqliteError::Open {
        path: "x.db".into(),
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        ),
    };
    assert_eq!(readonly_on_open.class(), ErrorClass::Permanent);
}

#[test]
fn validation_and_reset_are_cheap_and_succeed_on_a_healthy_connection() {
    let dir = temp_dir();
    let manager = SqliteManager::file(dir.path().join("checks.db"));
    let mut conn = manager.connect().unwrap();
    manager.is_valid(&mut conn).unwrap();
    assert!(!manager.has_broken(&mut conn));
    manager.reset(&mut conn).unwrap();
    let started = Instant::now();
    for _ in 0..1000 {
        manager.is_valid(&mut conn).unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

// ---------------------------------------------------------------------------
// sqlite.locking
// ---------------------------------------------------------------------------

/// `<db>-shm` / `<db>-wal` next to the database file.
fn sidecar(db: &str, suffix: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{db}{suffix}"))
}

/// A pool of two read-write connections to `db`, opened with `locking`.
fn locking_pool(db: &str, locking: Locking) -> Pool<SqliteManager> {
    let manager = SqliteManager::new(SqliteConfig {
        path: db.to_owned(),
        locking,
        ..SqliteConfig::default()
    })
    .unwrap();
    Pool::builder().max_size(2).build(manager).unwrap()
}

#[cfg(unix)]
#[test]
fn process_locking_shares_the_file_in_process_without_a_shm_file() {
    let dir = temp_dir();
    let db = path_in(&dir, "excl.db");
    let pool = locking_pool(&db, Locking::Process);
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    assert_eq!(pragma::<String>(&a, "journal_mode"), "wal");
    assert_eq!(pragma::<String>(&b, "journal_mode"), "wal");
    a.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1)")
        .unwrap();
    let seen: i64 = b
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 1, "b reads a's commit");
    b.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    let seen: i64 = a
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 3, "a reads b's commit");
    assert!(
        sidecar(&db, "-wal").exists(),
        "the commits went to the WAL file"
    );
    assert!(
        !sidecar(&db, "-shm").exists(),
        "unix-excl keeps the WAL index in heap memory"
    );
}

#[test]
fn shared_locking_keeps_the_wal_index_in_a_shm_file() {
    let dir = temp_dir();
    let db = path_in(&dir, "shared.db");
    let pool = locking_pool(&db, Locking::Shared);
    let conn = pool.get().unwrap();
    assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
    let one: i64 = conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(one, 1);
    let _ = pragma::<i64>(&conn, "user_version"); // a read of the database
    assert!(sidecar(&db, "-shm").exists());
}

#[cfg(unix)]
#[test]
fn process_locking_applies_to_file_uris_and_is_ignored_in_memory() {
    let dir = temp_dir();
    let db = path_in(&dir, "uri.db");
    let pool = locking_pool(&format!("file:{db}"), Locking::Process);
    let conn = pool.get().unwrap();
    assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
    let _ = pragma::<i64>(&conn, "user_version");
    assert!(!sidecar(&db, "-shm").exists(), "unix-excl for a file: URI");

    for path in [":memory:", "file:locking_mem?mode=memory&cache=shared"] {
        let pool = locking_pool(path, Locking::Process);
        let conn = pool.get().unwrap();
        let one: i64 = conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
        assert_eq!(one, 1, "{path}");
    }
}

#[cfg(unix)]
#[test]
fn locking_cannot_change_while_the_pool_runs() {
    let dir = temp_dir();
    let db = path_in(&dir, "kept.db");
    let pool = locking_pool(&db, Locking::Shared);
    let config = PoolConfig {
        max_size: 2,
        ..PoolConfig::default()
    };
    let mut sqlite = pool.manager().config().clone();
    sqlite.locking = Locking::Process;
    pool.manager().reconfigure(&sqlite);
    pool.reconfigure(config).unwrap();
    // A connection opened after the change still uses SQLite's unix VFS.
    let conn = pool.get().unwrap();
    let _ = pragma::<i64>(&conn, "user_version");
    assert!(sidecar(&db, "-shm").exists(), "locking kept as `shared`");
}

/// Set for the child run of `locking_child_reads_the_database`: the
/// database it tries to read.
const CHILD_DB_VAR: &str = "SLOTPOOL_TEST_LOCKING_CHILD_DB";
/// What the child prints before its outcome.
const CHILD_MARK: &str = "locking-child-outcome: ";

/// Not a test of its own: run by `another_process_*` below, in a child
/// process (this test binary, re-executed with `--exact` and
/// `CHILD_DB_VAR` set). Reads the database through SQLite's default `unix`
/// VFS, as any other program would, without waiting for locks, and prints
/// what happened. Without the variable it does nothing.
#[test]
fn locking_child_reads_the_database() {
    let Some(db) = std::env::var_os(CHILD_DB_VAR) else {
        return;
    };
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open");
    conn.busy_timeout(Duration::ZERO).expect("busy_timeout");
    let outcome = match conn.query_row("SELECT sum(x) FROM t", [], |r| r.get::<_, i64>(0)) {
        Ok(sum) => format!("read {sum}"),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => format!("busy: {e}"),
        Err(e) => format!("error: {e}"),
    };
    // libtest prints the test's name on the same line first.
    println!("{CHILD_MARK}{outcome}");
}

/// Runs `locking_child_reads_the_database` in a child process on `db`.
fn read_from_another_process(db: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "locking_child_reads_the_database",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_VAR, db)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.split_once(CHILD_MARK).map(|(_, outcome)| outcome))
        .unwrap_or_else(|| panic!("the child ran no read: {stdout}"))
        .to_owned()
}

#[cfg(unix)]
#[test]
fn another_process_is_locked_out_while_a_process_locking_pool_is_open() {
    let dir = temp_dir();
    let db = path_in(&dir, "locked.db");
    let pool = locking_pool(&db, Locking::Process);
    pool.get()
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (5)")
        .unwrap();
    // The connection is idle in the pool, still open.
    let outcome = read_from_another_process(&db);
    assert!(
        outcome.starts_with("busy: ") && outcome.contains("database is locked"),
        "{outcome}"
    );
}

#[cfg(unix)]
#[test]
fn the_process_lock_goes_with_the_last_connection() {
    let dir = temp_dir();
    let db = path_in(&dir, "released.db");
    // The manager's own connection, not a pool's: a pool closes connections
    // on its closer thread, which a test cannot wait for.
    let manager = SqliteManager::new(SqliteConfig {
        path: db.clone(),
        locking: Locking::Process,
        ..SqliteConfig::default()
    })
    .unwrap();
    let conn = manager.connect().unwrap();
    conn.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (5)")
        .unwrap();
    assert!(read_from_another_process(&db).starts_with("busy: "));
    drop(conn);
    assert_eq!(read_from_another_process(&db), "read 5");
}

#[test]
fn another_process_reads_while_a_shared_locking_pool_is_open() {
    let dir = temp_dir();
    let db = path_in(&dir, "open.db");
    let pool = locking_pool(&db, Locking::Shared);
    let conn = pool.get().unwrap();
    conn.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (7)")
        .unwrap();
    assert_eq!(read_from_another_process(&db), "read 7");
    drop(conn);
}

#[test]
fn new_sqlite_settings_apply_to_connections_opened_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteConfig {
        path: dir.path().join("app.db").to_string_lossy().into_owned(),
        cache_size: -1000,
        ..Default::default()
    };
    let pool = Pool::builder()
        .max_size(2)
        .build(SqliteManager::new(sqlite.clone()).unwrap())
        .unwrap();
    let cache_size = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA cache_size", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(cache_size(&pool.get().unwrap()), -1000);
    let changed = SqliteConfig {
        cache_size: -4321,
        ..sqlite
    };
    pool.manager().reconfigure(&changed);
    pool.reconfigure((*pool.config()).clone()).unwrap();
    pool.evict_idle(); // retire the connection opened with the old settings
    assert_eq!(cache_size(&pool.get().unwrap()), -4321);
}

#[test]
fn sqlite_pool_reconfigure_reaches_both_pools_and_keeps_their_shape() {
    let dir = temp_dir();
    let pool = sqlite_pool(&dir, 2, Duration::from_secs(5));
    let cache_size = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA cache_size", [], |row| row.get(0))
            .unwrap()
    };
    let mut config = Config::default();
    config.pool.max_size = 5;
    config.sqlite.path = path_in(&dir, "app.db");
    config.sqlite.cache_size = -777;
    pool.reconfigure(config.clone()).unwrap();
    assert_eq!(pool.reader_pool().config().max_size, 5);
    assert_eq!(
        pool.writer_pool().config().max_size,
        1,
        "one writer, always"
    );
    pool.reader_pool().evict_idle();
    pool.writer_pool().evict_idle();
    assert_eq!(cache_size(&pool.reader().unwrap()), -777);
    assert_eq!(cache_size(&pool.writer().unwrap()), -777);
    assert!(
        pool.reader()
            .unwrap()
            .execute_batch("CREATE TABLE x(y)")
            .is_err(),
        "readers stay read-only"
    );

    // An invalid configuration changes nothing.
    config.pool.max_size = 0;
    assert!(pool.reconfigure(config).is_err());
    assert_eq!(pool.reader_pool().config().max_size, 5);
}

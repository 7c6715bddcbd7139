#![cfg(not(feature = "loom"))]
//! The r2d2 adapter without a server: each `Manager` method maps onto the
//! wrapped `r2d2::ManageConnection` (or the hook), and a SQLite manager
//! written for r2d2 runs unchanged under both pools.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use slotpool::compat::r2d2::R2d2Manager;
use slotpool::{Error, ErrorClass, Manager, Pool};

/// What the r2d2 manager reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FakeError {
    #[error("server unreachable")]
    Unreachable,
    #[error("bad password")]
    BadPassword,
    #[error("connection {0} failed its check")]
    Invalid(usize),
    #[error("connection {0} could not be reset")]
    ResetFailed(usize),
}

/// Counters and switches shared between a test and its r2d2 manager.
#[derive(Debug, Default)]
struct Calls {
    connects: AtomicUsize,
    validations: AtomicUsize,
    broken_checks: AtomicUsize,
    resets: AtomicUsize,
    /// `connect` fails with this while set (1 = unreachable, 2 = bad password).
    failing: AtomicUsize,
    /// `is_valid` fails while set.
    invalid: AtomicBool,
}

/// A connection of the fake r2d2 manager.
#[derive(Debug)]
struct FakeConn {
    id: usize,
    broken: bool,
    dirty: bool,
    reset_fails: bool,
}

/// A plain r2d2 manager, written against r2d2's trait only.
#[derive(Debug)]
struct FakeManager(Arc<Calls>);

impl r2d2::ManageConnection for FakeManager {
    type Connection = FakeConn;
    type Error = FakeError;

    fn connect(&self) -> Result<FakeConn, FakeError> {
        match self.0.failing.load(Ordering::SeqCst) {
            1 => return Err(FakeError::Unreachable),
            2 => return Err(FakeError::BadPassword),
            _ => {}
        }
        let id = self.0.connects.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(FakeConn {
            id,
            broken: false,
            dirty: false,
            reset_fails: false,
        })
    }

    fn is_valid(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        self.0.validations.fetch_add(1, Ordering::SeqCst);
        if self.0.invalid.load(Ordering::SeqCst) {
            Err(FakeError::Invalid(conn.id))
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, conn: &mut FakeConn) -> bool {
        self.0.broken_checks.fetch_add(1, Ordering::SeqCst);
        conn.broken
    }
}

fn fake() -> (FakeManager, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    (FakeManager(calls.clone()), calls)
}

/// The hook a database user would write (ROLLBACK), on the fake connection.
fn clean(calls: Arc<Calls>) -> impl Fn(&mut FakeConn) -> Result<(), FakeError> + Send + Sync {
    move |conn| {
        calls.resets.fetch_add(1, Ordering::SeqCst);
        if conn.reset_fails {
            return Err(FakeError::ResetFailed(conn.id));
        }
        conn.dirty = false;
        Ok(())
    }
}

#[test]
fn each_method_calls_the_wrapped_manager() {
    let (inner, calls) = fake();
    let manager = R2d2Manager::new(inner);

    let mut conn = Manager::connect(&manager).expect("connect");
    assert_eq!((conn.id, calls.connects.load(Ordering::SeqCst)), (1, 1));

    assert_eq!(manager.is_valid(&mut conn), Ok(()));
    calls.invalid.store(true, Ordering::SeqCst);
    assert_eq!(manager.is_valid(&mut conn), Err(FakeError::Invalid(1)));
    assert_eq!(calls.validations.load(Ordering::SeqCst), 2);

    assert!(!manager.has_broken(&mut conn));
    conn.broken = true;
    assert!(manager.has_broken(&mut conn));
    assert_eq!(calls.broken_checks.load(Ordering::SeqCst), 2);

    // No hooks: reset does nothing, every error is transient.
    conn.dirty = true;
    assert_eq!(manager.reset(&mut conn), Ok(()));
    assert!(
        conn.dirty,
        "r2d2 has no reset; the default must not touch the connection"
    );
    assert_eq!(
        manager.classify(&FakeError::BadPassword),
        ErrorClass::Transient
    );

    calls.failing.store(1, Ordering::SeqCst);
    assert_eq!(
        Manager::connect(&manager).map(|conn| conn.id),
        Err(FakeError::Unreachable)
    );
    assert!(format!("{manager:?}").contains("R2d2Manager"));
    let _inner: &FakeManager = manager.inner();
    let _inner: FakeManager = manager.into_inner();
}

#[test]
fn hooks_reset_and_classify() {
    let (inner, calls) = fake();
    let manager = R2d2Manager::from(inner)
        .with_reset(clean(calls.clone()))
        .with_classify(|error| match error {
            FakeError::BadPassword => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        });
    let mut conn = Manager::connect(&manager).expect("connect");
    conn.dirty = true;
    assert_eq!(manager.reset(&mut conn), Ok(()));
    assert!(!conn.dirty);
    conn.reset_fails = true;
    assert_eq!(manager.reset(&mut conn), Err(FakeError::ResetFailed(1)));
    assert_eq!(calls.resets.load(Ordering::SeqCst), 2);
    assert_eq!(
        manager.classify(&FakeError::BadPassword),
        ErrorClass::Permanent
    );
    assert_eq!(
        manager.classify(&FakeError::Unreachable),
        ErrorClass::Transient
    );
}

#[test]
fn pool_uses_the_mapping() {
    let (inner, calls) = fake();
    let pool = Pool::builder()
        .max_size(1)
        .connection_timeout(Duration::from_secs(10))
        .validation_idle_window(Duration::ZERO) // r2d2's test_on_check_out
        .build(R2d2Manager::new(inner).with_reset(clean(calls.clone())))
        .expect("pool");

    // Reset on return: the next borrower gets the same, clean connection.
    {
        let mut conn = pool.get().expect("get");
        assert_eq!(conn.id, 1);
        conn.dirty = true;
    }
    {
        let conn = pool.get().expect("get");
        assert_eq!(conn.id, 1, "a reset connection is reused");
        assert!(!conn.dirty, "the reset hook ran on return");
    }
    assert!(calls.resets.load(Ordering::SeqCst) >= 1);
    assert!(
        calls.validations.load(Ordering::SeqCst) >= 1,
        "validated on checkout"
    );

    // has_broken on return discards it.
    pool.get().expect("get").broken = true;
    assert_eq!(
        pool.get().expect("get").id,
        2,
        "a broken connection is replaced"
    );

    // A failing reset discards it.
    pool.get().expect("get").reset_fails = true;
    assert_eq!(
        pool.get().expect("get").id,
        3,
        "a connection that failed reset is replaced"
    );

    // is_valid failing at checkout discards the idle connection: the caller
    // never sees it. (Whether the replacement, brand new, is checked too is
    // the core's choice; either way connection 3 must not come back.)
    let validations = calls.validations.load(Ordering::SeqCst);
    calls.invalid.store(true, Ordering::SeqCst);
    let result = pool
        .get_timeout(Duration::from_millis(300))
        .map(|conn| conn.id);
    assert!(
        calls.validations.load(Ordering::SeqCst) > validations,
        "is_valid was not called"
    );
    assert!(
        !matches!(result, Ok(3)),
        "an invalid connection was handed out"
    );
    calls.invalid.store(false, Ordering::SeqCst);
    let id = pool.get().expect("get").id;
    assert!(id > 3, "the invalid connection was replaced, got {id}");
}

#[test]
fn connect_errors_reach_callers_typed() {
    let (inner, calls) = fake();
    calls.failing.store(1, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(1)
        .fail_fast_after(0) // wait out every deadline
        .connect_backoff_initial(Duration::from_millis(10))
        .connect_backoff_max(Duration::from_millis(50))
        .build(R2d2Manager::new(inner))
        .expect("pool");
    let error = pool
        .get_timeout(Duration::from_millis(300))
        .map(|conn| conn.id)
        .expect_err("connect keeps failing");
    match &error {
        Error::TimedOut {
            last_connect_error, ..
        } => assert_eq!(last_connect_error.as_deref(), Some(&FakeError::Unreachable)),
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(error.connect_error(), Some(&FakeError::Unreachable));

    calls.failing.store(0, Ordering::SeqCst);
    assert_eq!(pool.get().expect("recovers").id, 1);
}

#[test]
fn classify_hook_makes_errors_permanent() {
    let (inner, calls) = fake();
    calls.failing.store(2, Ordering::SeqCst); // bad password, every time
    let pool = Pool::builder()
        .max_size(1)
        .connect_backoff_initial(Duration::from_millis(10))
        .connect_backoff_max(Duration::from_millis(50))
        .build(R2d2Manager::new(inner).with_classify(|error| match error {
            FakeError::BadPassword => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        }))
        .expect("pool");
    // Once a permanent error is known, get() fails at once with it, typed.
    let mut failed_fast = None;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let result = pool
            .get_timeout(Duration::from_millis(300))
            .map(|conn| conn.id);
        if let Err(Error::Connect { source, .. }) = result {
            failed_fast = Some((start.elapsed(), source));
            break;
        }
    }
    let (elapsed, source) = failed_fast.expect("a permanent error fails gets fast");
    assert_eq!(*source, FakeError::BadPassword);
    assert!(elapsed < Duration::from_millis(250), "took {elapsed:?}");
}

// ----------------------------------------------------------------- SQLite

/// An r2d2 manager for rusqlite 0.41, shaped exactly like `r2d2_sqlite`'s
/// `SqliteConnectionManager` (a file, `execute_batch("")` as the check,
/// never broken). `r2d2_sqlite` itself cannot be a dependency: its latest
/// release (0.35) needs rusqlite 0.40, whose `libsqlite3-sys` cannot be
/// linked next to the 0.41 this crate uses.
#[derive(Debug)]
struct SqliteConnectionManager {
    path: std::path::PathBuf,
}

impl r2d2::ManageConnection for SqliteConnectionManager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _conn: &mut rusqlite::Connection) -> bool {
        false
    }
}

#[test]
fn sqlite_r2d2_manager_runs_unchanged_under_both_pools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("adapter.db");
    let manager = || SqliteConnectionManager { path: path.clone() };

    // slotpool, through the adapter, with a rollback-on-return hook.
    let pool = Pool::builder()
        .max_size(2)
        .connection_timeout(Duration::from_secs(10))
        .build(R2d2Manager::new(manager()).with_reset(|conn| {
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK")?;
            }
            Ok(())
        }))
        .expect("slotpool");
    {
        let conn = pool.get().expect("get");
        conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2);")
            .expect("create");
    }
    {
        let conn = pool.get().expect("get");
        conn.execute_batch("BEGIN; INSERT INTO t VALUES (3);")
            .expect("left open");
    }
    let (sum, autocommit) = {
        let conn = pool.get().expect("get");
        let sum: i64 = conn
            .query_row("SELECT sum(v) FROM t", [], |row| row.get(0))
            .expect("sum");
        (sum, conn.is_autocommit())
    };
    assert_eq!(sum, 3, "the open transaction was rolled back on return");
    assert!(autocommit);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let conn = pool.get().expect("get");
                    let count: i64 = conn
                        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                        .expect("count");
                    assert_eq!(count, 2);
                }
            });
        }
    });
    assert!(pool.state().connections <= 2);

    // The same manager type in r2d2 itself sees slotpool's writes.
    let r2d2_pool = r2d2::Pool::builder()
        .max_size(1)
        .build(manager())
        .expect("r2d2 pool");
    let sum: i64 = r2d2_pool
        .get()
        .expect("r2d2 get")
        .query_row("SELECT sum(v) FROM t", [], |row| row.get(0))
        .expect("sum");
    assert_eq!(sum, 3);
}

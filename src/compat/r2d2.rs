//! [`R2d2Manager`]: any [`r2d2::ManageConnection`] as a slotpool
//! [`Manager`], unchanged.
//!
//! Owns: the mapping from r2d2's manager trait onto slotpool's, and the two
//! hooks r2d2 has no place for (reset on return, error classification). It
//! may not hold pool logic.
//!
//! Managers written for r2d2 (`r2d2_postgres`, `r2d2_sqlite`, diesel's
//! `ConnectionManager`, redis's r2d2 support, ...) work through it as they
//! are:
//!
//! | slotpool [`Manager`]      | r2d2 [`ManageConnection`]           |
//! |---------------------------|-------------------------------------|
//! | `connect`                 | `connect`                           |
//! | `is_valid`                | `is_valid`                          |
//! | `has_broken`              | `has_broken`                        |
//! | `reset`                   | none: `Ok(())`, or the [`with_reset`](R2d2Manager::with_reset) hook |
//! | `classify`                | none: transient, or the [`with_classify`](R2d2Manager::with_classify) hook |
//! | `Connection`, `Error`     | the same types, so errors stay typed |
//!
//! # Differences in when the checks run
//!
//! * r2d2 calls `is_valid` on *every* checkout by default
//!   (`test_on_check_out(true)`). slotpool calls it only for a connection
//!   that sat idle at least `validation_idle_window` (default 500 ms, as
//!   HikariCP). Set the window to zero for r2d2's behaviour.
//! * r2d2 has no reset step, so a transaction left open by one borrower is
//!   seen by the next. With [`with_reset`](R2d2Manager::with_reset) the pool
//!   runs your hook on every return (before the next borrower can see the
//!   connection) and discards the connection if the hook fails.
//!
//! # Limitation: `Send + Sync` errors
//!
//! r2d2 asks only `Error: std::error::Error + 'static`; slotpool reports
//! connect errors to many waiters and across threads, so it also needs
//! `Send + Sync`. [`R2d2Manager`] implements [`Manager`] only when
//! `M::Error: Send + Sync`. The common managers qualify (`postgres::Error`,
//! `rusqlite::Error`, diesel's `r2d2::Error`, `redis::RedisError`); a manager
//! whose error holds an `Rc` or a non-`Sync` box does not, and needs a
//! wrapper manager that converts the error.
//!
//! # PostgreSQL
//!
//! With `r2d2_postgres = "0.18"` (tested in `tests/postgres.rs`):
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```no_run
use r2d2_postgres::{PostgresConnectionManager, postgres};
use slotpool::{Pool, compat::r2d2::R2d2Manager};

# fn main() -> Result<(), Box<dyn std::error::Error>> {
let config: postgres::Config = "host=127.0.0.1 user=postgres application_name=my_service".parse()?;
let manager = R2d2Manager::new(PostgresConnectionManager::new(config, postgres::NoTls))
    // r2d2 would hand the next borrower an open transaction: roll it back.
    // Outside a transaction, PostgreSQL answers ROLLBACK with a warning only.
    .with_reset(|client| client.batch_execute("ROLLBACK"));
let pool = Pool::builder().max_size(16).build(manager)?;
let row = pool.get()?.query_one("SELECT 1 + 1", &[])?;
assert_eq!(row.get::<_, i32>(0), 2);
# Ok(())
# }
```
"#
)]

use std::fmt;

use ::r2d2::ManageConnection;

use crate::manager::{ErrorClass, Manager};

/// The reset hook's type: runs on every return.
type ResetHook<M> = Box<
    dyn Fn(&mut <M as ManageConnection>::Connection) -> Result<(), <M as ManageConnection>::Error>
        + Send
        + Sync,
>;

/// The classify hook's type: runs on every connect error.
type ClassifyHook<M> = Box<dyn Fn(&<M as ManageConnection>::Error) -> ErrorClass + Send + Sync>;

/// Wraps an r2d2 manager `M` so a slotpool [`Pool`](crate::Pool) can use it.
///
/// `connect`, `is_valid` and `has_broken` call `M`'s; `reset` is `Ok(())`
/// unless set with [`with_reset`](Self::with_reset); every connect error is
/// transient unless [`with_classify`](Self::with_classify) says otherwise.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::Pool;
use slotpool::compat::r2d2::R2d2Manager;

/// A tiny r2d2 manager; `r2d2_postgres::PostgresConnectionManager` and
/// friends plug in the same way.
#[derive(Debug)]
struct Scratchpads;

impl r2d2::ManageConnection for Scratchpads {
    type Connection = Vec<String>;
    type Error = std::io::Error;

    fn connect(&self) -> Result<Vec<String>, std::io::Error> {
        Ok(Vec::new())
    }
    fn is_valid(&self, _conn: &mut Vec<String>) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _conn: &mut Vec<String>) -> bool {
        false
    }
}

let manager = R2d2Manager::new(Scratchpads).with_reset(|conn| {
    conn.clear(); // what a database manager would do with ROLLBACK
    Ok(())
});
let pool = Pool::builder().max_size(1).build(manager).unwrap();

pool.get().unwrap().push("BEGIN".to_owned()); // returned dirty...
assert!(pool.get().unwrap().is_empty()); // ...and reset before the next borrower
assert_eq!(pool.state().connections, 1);
```
"#
)]
pub struct R2d2Manager<M: ManageConnection> {
    inner: M,
    reset: Option<ResetHook<M>>,
    classify: Option<ClassifyHook<M>>,
}

impl<M: ManageConnection> R2d2Manager<M> {
    /// Wraps `manager`: no reset on return, every connect error transient.
    pub fn new(manager: M) -> Self {
        Self {
            inner: manager,
            reset: None,
            classify: None,
        }
    }

    /// Runs `reset` on every connection that comes back to the pool, before
    /// the next borrower can see it (r2d2 has no such step). An error
    /// discards the connection; the pool opens another when needed.
    ///
    /// For `r2d2_postgres`: `.with_reset(|client| client.batch_execute("ROLLBACK"))`
    /// ends any transaction left open (outside one, PostgreSQL only warns).
    #[must_use]
    pub fn with_reset<F>(mut self, reset: F) -> Self
    where
        F: Fn(&mut M::Connection) -> Result<(), M::Error> + Send + Sync + 'static,
    {
        self.reset = Some(Box::new(reset));
        self
    }

    /// Tells permanent errors (bad credentials, a missing database, a
    /// corrupt file) from transient ones (see [`Manager::classify`]): a
    /// permanent connect error makes `get()` fail at once, and an error passed
    /// to [`PooledConnection::note_error`](crate::PooledConnection::note_error)
    /// that is permanent closes the connection on return. Default: every
    /// error is [`ErrorClass::Transient`].
    #[must_use]
    pub fn with_classify<F>(mut self, classify: F) -> Self
    where
        F: Fn(&M::Error) -> ErrorClass + Send + Sync + 'static,
    {
        self.classify = Some(Box::new(classify));
        self
    }

    /// The wrapped r2d2 manager.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Unwraps the r2d2 manager (dropping the hooks).
    pub fn into_inner(self) -> M {
        self.inner
    }
}

impl<M: ManageConnection> From<M> for R2d2Manager<M> {
    fn from(manager: M) -> Self {
        Self::new(manager)
    }
}

impl<M> Manager for R2d2Manager<M>
where
    M: ManageConnection,
    M::Error: Send + Sync,
{
    type Connection = M::Connection;
    type Error = M::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.inner.connect()
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.inner.has_broken(conn)
    }

    fn reset(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        match &self.reset {
            Some(reset) => reset(conn),
            None => Ok(()),
        }
    }

    fn classify(&self, error: &Self::Error) -> ErrorClass {
        match &self.classify {
            Some(classify) => classify(error),
            None => ErrorClass::Transient,
        }
    }
}

impl<M: ManageConnection + fmt::Debug> fmt::Debug for R2d2Manager<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("R2d2Manager")
            .field("inner", &self.inner)
            .field("reset", &self.reset.is_some())
            .field("classify", &self.classify.is_some())
            .finish()
    }
}

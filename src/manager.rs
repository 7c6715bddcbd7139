//! The [`Manager`] trait: how the pool opens, checks and resets connections.
//!
//! Owns: the contract between the pool and a backend. It may not know about
//! slots, waiters or configuration.

/// How the pool should treat a connect error (see [`Manager::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Worth retrying with backoff (the server is restarting, a network blip).
    Transient,
    /// Retrying cannot help (bad credentials, a missing database): `get()`
    /// fails at once with this error.
    Permanent,
}

/// Opens and checks connections of one kind; the pool calls it from its
/// background worker (connect) and on checkout and return (checks).
///
/// Shaped like r2d2's `ManageConnection`, so porting a manager is mechanical
/// (and [`compat`](crate) adapters wrap r2d2 managers unchanged).
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::{Manager, Pool};

struct Counter;

impl Manager for Counter {
    type Connection = u64;
    type Error = std::io::Error;
    fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
    fn is_valid(&self, _conn: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
    fn has_broken(&self, _conn: &mut u64) -> bool { false }
    fn reset(&self, conn: &mut u64) -> Result<(), std::io::Error> {
        *conn = 0; // give the next borrower a clean connection
        Ok(())
    }
}

let pool = Pool::builder().max_size(2).build(Counter).unwrap();
let mut conn = pool.get().unwrap();
*conn += 1;
```
"#
)]
pub trait Manager: Send + Sync + 'static {
    /// The pooled resource.
    type Connection: Send + 'static;
    /// What `connect` and the checks fail with; reported to callers typed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection. Runs on the pool's worker thread, never on a
    /// caller's path, so a slow or hanging connect cannot break a deadline.
    fn connect(&self) -> Result<Self::Connection, Self::Error>;

    /// Checks a connection that sat idle longer than
    /// `validation_idle_window` before handing it out (e.g. `SELECT 1`).
    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error>;

    /// A cheap, non-blocking check on return; `true` discards the connection.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;

    /// Runs when a connection comes back, before the next borrower can see
    /// it (e.g. roll back a transaction left open). An error discards the
    /// connection. Default: nothing.
    fn reset(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = conn;
        Ok(())
    }

    /// Tells transient connect errors from permanent ones. Default: transient.
    fn classify(&self, error: &Self::Error) -> ErrorClass {
        let _ = error;
        ErrorClass::Transient
    }

    /// Called after `Pool::reconfigure` swapped in `config`, before any
    /// connection is opened with it; a manager that reads settings from the
    /// pool's configuration (the SQLite manager's `[sqlite]` section) takes
    /// them here. Default: nothing.
    fn on_reconfigure(&self, config: &crate::config::PoolConfig) {
        let _ = config;
    }
}

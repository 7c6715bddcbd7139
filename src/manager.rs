//! The [`Manager`] and [`AsyncManager`] traits: how the pool opens, checks
//! and resets connections, blocking or asynchronously.
//!
//! Owns: the contract between the pool and a backend, including which
//! thread runs each call. It may not know about slots or waiters.

/// How the pool should treat a connect error (see [`Manager::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Worth retrying with backoff (the server is restarting, a network blip).
    Transient,
    /// Retrying cannot help (bad credentials, a missing database). While
    /// no connection is open, gets fail at once with [`Error::Connect`]
    /// carrying this error (none could come back to serve them), and
    /// callers already waiting are woken with it. While connections are
    /// open, gets wait for one of them to come back as usual, and a timeout
    /// carries this error as its cause. Retrying stops until the next
    /// request.
    ///
    /// [`Error::Connect`]: crate::Error::Connect
    Permanent,
}

/// Opens and checks connections of one kind, with calls that may block.
///
/// Which thread runs each call, so a slow or hanging call never breaks a
/// caller's deadline: `connect` on a connector thread of the pool;
/// `is_valid` on a checker thread (or on the caller's own thread for
/// `try_get`); `has_broken` and `reset` on the thread returning the
/// connection (keep them quick: they delay only that caller); dropping a
/// connection (its close) on the pool's closer thread. Every call runs in a
/// panic boundary: a panic is logged, counted, and treated as a failure.
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

    /// Opens a new connection. Runs on a connector thread, never on a
    /// caller's path, so a slow or hanging connect cannot break a deadline.
    fn connect(&self) -> Result<Self::Connection, Self::Error>;

    /// Checks a connection that sat idle longer than
    /// `validation_idle_window` before handing it out (e.g. `SELECT 1`), and
    /// idle connections every `keepalive_interval`. A check that has not
    /// answered within `validation_timeout` is abandoned: its room is freed
    /// and the connection is closed when the call returns.
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

/// Opens and checks connections with async calls, for clients whose
/// connection is driven by a task on the application's runtime
/// (`tokio_postgres::Client`).
///
/// The pool runs these futures as tasks on the runtime given to the
/// builder (`Builder::build_async`), never on a pool thread and never
/// blocking a runtime thread. Checkout, hand-off, deadlines, cancellation
/// safety, validation off the caller's path, panic boundaries and every
/// setting behave as for a [`Manager`]; the differences are where the
/// calls run and `reset`, which needs a cheap synchronous question first
/// ([`needs_reset`](Self::needs_reset)): a connection that needs no reset
/// goes straight back to the pool, one that does is reset by a task before
/// the next borrower can see it.
pub trait AsyncManager: Send + Sync + 'static {
    /// The pooled resource.
    type Connection: Send + 'static;
    /// What `connect` and the checks fail with; reported to callers typed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection (a task on the runtime).
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Checks a connection that sat idle longer than
    /// `validation_idle_window`, or is due for a keepalive (a task on the
    /// runtime; abandoned after `validation_timeout`).
    fn is_valid(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A cheap, non-blocking check on return; `true` discards the
    /// connection (e.g. `tokio_postgres::Client::is_closed`).
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;

    /// A cheap, non-blocking question on return: must `reset` run before
    /// the next borrower sees this connection? Default: no.
    fn needs_reset(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Restores a returned connection (e.g. roll back a transaction left
    /// open), as a task on the runtime, when
    /// [`needs_reset`](Self::needs_reset) says so. An error discards the
    /// connection. Default: nothing.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        std::future::ready(Ok(()))
    }

    /// Tells transient connect errors from permanent ones. Default: transient.
    fn classify(&self, error: &Self::Error) -> ErrorClass {
        let _ = error;
        ErrorClass::Transient
    }

    /// Called after `Pool::reconfigure` swapped in `config`. Default: nothing.
    fn on_reconfigure(&self, config: &crate::config::PoolConfig) {
        let _ = config;
    }
}

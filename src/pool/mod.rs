//! The public pool: [`Pool`], its [`Builder`] and the [`PooledConnection`]
//! guard.
//!
//! Owns: the public API and handle lifetime (the last `Pool` handle closes the
//! pool). The protocols live one per file beside it (see `shared.rs`); this
//! module only calls them. It may not touch slots or waiters directly.

mod builder;
mod checkout;
mod close;
pub(crate) mod create;
mod evict;
mod get_async;
mod guard;
mod reconfigure;
mod release;
mod report;
mod room;
pub(crate) mod shared;
mod vacate;
mod validate;

use std::fmt;
use std::panic::Location;
use std::time::Duration;

pub use self::builder::Builder;
pub use self::get_async::Acquire;
pub use self::guard::PooledConnection;
pub use self::report::State;
pub(crate) use self::shared::Shared;
pub use self::vacate::CloseReason;
use crate::backend::Backend;
use crate::config::{ConfigError, PoolConfig};
use crate::error::{BuildError, CloseTimedOut, Error, TryGetError};
use crate::slot::Lease;
use crate::sync::{Arc, Ordering};

/// A pool of connections made by `M`. Cheap to clone: clones share one pool.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::{Manager, Pool};
# struct Noop;
# impl Manager for Noop {
#     type Connection = ();
#     type Error = std::io::Error;
#     fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
#     fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> { Ok(()) }
#     fn has_broken(&self, _: &mut ()) -> bool { false }
# }
let pool = Pool::builder().max_size(4).build(Noop).unwrap();
{
    let _conn = pool.get().unwrap();
    assert_eq!(pool.state().in_use, 1);
} // returned here
assert_eq!(pool.state().idle_connections, 1);
```
"#
)]
pub struct Pool<M: Backend> {
    shared: Arc<Shared<M>>,
}

impl<M: Backend> Pool<M> {
    /// A pool with the default configuration (see [`PoolConfig`]).
    pub fn new(manager: M) -> Result<Self, BuildError<M::Error>> {
        Self::builder().build(manager)
    }

    /// A builder; settings given to it override a [`PoolConfig`] passed with
    /// [`Builder::config`], which overrides the defaults.
    pub fn builder() -> Builder<M> {
        Builder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared<M>>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Shared<M> {
        &self.shared
    }

    /// Gets a connection, waiting up to `connection_timeout`.
    ///
    /// The caller's location is recorded for leak reports.
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    #[track_caller]
    pub fn get(&self) -> Result<PooledConnection<'_, M>, Error<M::Error>> {
        self.get_within(None, Location::caller())
    }

    /// Gets a connection, waiting up to `timeout`.
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> Result<PooledConnection<'_, M>, Error<M::Error>> {
        self.get_within(Some(timeout), Location::caller())
    }

    /// `get` and `get_timeout`: the fast path, else waiting up to `timeout`
    /// (`None`: `connection_timeout`).
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    fn get_within(
        &self,
        timeout: Option<Duration>,
        site: &'static Location<'static>,
    ) -> Result<PooledConnection<'_, M>, Error<M::Error>> {
        // The two paths meet on the lease (a word), not on the `Result`: the
        // guard is built once, after the merge, which keeps the fast path's
        // guard in registers instead of a stack copy.
        let lease = match self.shared.try_acquire_fast::<false>(site) {
            Some(lease) => lease,
            None => self.acquire_slow(timeout, site)?,
        };
        Ok(PooledConnection::borrowed(&self.shared, lease))
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(
        &self,
        timeout: Option<Duration>,
        site: &'static Location<'static>,
    ) -> Result<Lease<M::Connection>, Error<M::Error>> {
        let timeout = timeout.unwrap_or_else(|| self.shared.config().connection_timeout);
        self.shared.acquire_slow(timeout, site)
    }

    /// Gets a connection asynchronously, waiting up to `connection_timeout`
    /// in the same FIFO queue as synchronous callers. Needs no particular
    /// runtime; dropping the future cancels the wait safely.
    #[track_caller]
    pub fn get_async(&self) -> Acquire<'_, M> {
        Acquire::new(&self.shared, None, Location::caller())
    }

    /// Like [`get_async`](Self::get_async), waiting up to `timeout`.
    #[track_caller]
    pub fn get_timeout_async(&self, timeout: Duration) -> Acquire<'_, M> {
        Acquire::new(&self.shared, Some(timeout), Location::caller())
    }

    /// Gets an idle connection without waiting: [`TryGetError::NoIdle`] when
    /// none is idle (the pool then opens one in the background if it has
    /// room). It never waits for another thread, so a connection due for
    /// validation is checked on this thread, as r2d2's `try_get` does.
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    #[track_caller]
    pub fn try_get(&self) -> Result<PooledConnection<'_, M>, TryGetError> {
        let lease = match self.shared.try_acquire_fast::<true>(Location::caller()) {
            Some(lease) => lease,
            None => return Err(self.shared.closed_or_no_idle()),
        };
        Ok(PooledConnection::borrowed(&self.shared, lease))
    }

    /// Like [`get`](Self::get), but the guard owns a handle to the pool's
    /// shared state, so it is `'static` (for spawned threads and tasks). It
    /// costs two more atomic operations on a shared counter per checkout.
    #[track_caller]
    pub fn get_owned(&self) -> Result<PooledConnection<'static, M>, Error<M::Error>> {
        let site = Location::caller();
        let lease = match self.shared.try_acquire_fast::<false>(site) {
            Some(lease) => lease,
            None => self
                .shared
                .acquire_slow(self.shared.config().connection_timeout, site)?,
        };
        Ok(PooledConnection::owned(self.shared.clone(), lease))
    }

    /// The pool's counts now (r2d2's names where they exist).
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// A statistics snapshot: gauges, counters, hit ratio, utilisation and
    /// latency percentiles. Serialises to JSON with serde.
    pub fn stats(&self) -> crate::stats::Stats {
        self.shared.stats()
    }

    /// The pool's health with the default thresholds: a status, the reasons,
    /// and recommendations computed from [`stats`](Self::stats).
    pub fn health(&self) -> crate::stats::HealthReport {
        self.health_with(&crate::stats::HealthThresholds::default())
    }

    /// The pool's health judged against `thresholds`.
    pub fn health_with(
        &self,
        thresholds: &crate::stats::HealthThresholds,
    ) -> crate::stats::HealthReport {
        crate::stats::health::assess(&self.shared.stats(), thresholds)
    }

    /// The configuration in force.
    pub fn config(&self) -> std::sync::Arc<PoolConfig> {
        self.shared.config()
    }

    /// Replaces the configuration while the pool serves. The swap is atomic;
    /// a larger `max_size` serves current waiters at once; a smaller one
    /// retires idle excess now and in-use excess as it comes back, never
    /// under its user; new timeouts apply to the next `get()`. `max_size`
    /// cannot exceed the capacity fixed at build, and `pool_name` is fixed.
    pub fn reconfigure(&self, config: PoolConfig) -> Result<(), ConfigError> {
        self.shared.reconfigure(config)
    }

    /// Loads `profile` from the TOML file at `path` (defaults < file <
    /// `SLOTPOOL_*` variables), validates it and applies it with
    /// [`reconfigure`](Self::reconfigure). On any error the running
    /// configuration is left untouched. Explicit builder calls made when the
    /// pool was built are not re-applied: the file is the whole truth.
    #[cfg(feature = "config")]
    pub fn reload_from_file(
        &self,
        path: impl AsRef<std::path::Path>,
        profile: &str,
    ) -> Result<(), ConfigError> {
        let vars = crate::config::process_env();
        let config = PoolConfig::load(Some(path.as_ref()), Some(profile), vars)?;
        self.reconfigure(config)
    }

    /// The manager the pool opens and checks connections with.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// The pool's name (`pool_name`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The slot array's capacity: the largest `max_size` reconfiguration may set.
    pub fn capacity(&self) -> usize {
        self.shared.slots.capacity()
    }

    /// Closes the pool: new gets fail at once with [`Error::Closed`],
    /// waiters wake with it, idle connections are closed now, and in-use
    /// ones when they come back. Then waits up to `close_timeout` (read when
    /// called) for checked-out connections to come back; if some are still
    /// out, says how many (the pool stays closed, and closes them when they
    /// return). Safe to call from many threads and more than once.
    ///
    /// Dropping the last `Pool` handle closes the pool the same way but
    /// waits for nothing: a drop must not block (it may run on an async
    /// runtime's thread). Call `close` (or
    /// [`close_timeout`](Self::close_timeout)) first for a bounded drain.
    pub fn close(&self) -> Result<(), CloseTimedOut> {
        self.close_timeout(self.shared.config().close_timeout)
    }

    /// Like [`close`](Self::close), waiting up to `timeout` instead of
    /// `close_timeout`. A zero timeout only reports what is still out.
    pub fn close_timeout(&self, timeout: Duration) -> Result<(), CloseTimedOut> {
        self.shared.close();
        self.shared.wait_drained(timeout)
    }

    /// Closes every idle connection now, and every connection in use now
    /// when it comes back (never under its user).
    pub fn evict_idle(&self) {
        self.shared.evict_idle();
    }

    /// Closes this checked-out connection instead of returning it.
    pub fn evict(&self, conn: PooledConnection<'_, M>) {
        conn.evict();
    }

    /// Closes the idle connections for which `keep` returns false. Each is
    /// reserved while `keep` looks at it, so no borrower can see it
    /// half-checked; connections in use are not visited.
    ///
    /// If `keep` panics, the connection it was looking at stays in the pool,
    /// the panic is logged and counted (`callback_panics`), and it is then
    /// re-raised here.
    pub fn retain(&self, keep: impl FnMut(&mut M::Connection, &ConnectionInfo) -> bool) {
        self.shared.retain(keep);
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.waiters.signal().closed()
    }

    /// Runs one pass of background work on the calling thread (pools built
    /// with `Builder::manual_background`: tests and loom models; feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    pub fn run_background_step(&self) {
        crate::background::step(&self.shared);
    }
}

/// What [`Pool::retain`] tells its predicate about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Time since it was opened.
    pub age: Duration,
    /// Time since it was last returned (or opened).
    pub idle: Duration,
    /// Checkouts served by its slot.
    pub checkouts: u64,
}

impl<M: Backend> Clone for Pool<M> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Backend> Drop for Pool<M> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Last handle: release everything. Owned guards still out keep
            // the memory alive and close their connection on return.
            self.shared.close();
        }
    }
}

impl<M: Backend> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

//! [`Backend`]: the pool's one view of a manager, blocking or async, so one
//! core serves both; and [`Async`], which makes an
//! [`AsyncManager`] a backend.
//!
//! Owns: the mapping from each manager trait onto the calls the core makes,
//! and which of them may be pending. It may not decide where a call runs
//! (the core does: a blocking call on a lane thread or the caller's thread,
//! a pending one as a task on the backend's runtime).
//!
//! `Backend` is implemented for every [`Manager`] and for [`Async<A>`] of
//! every [`AsyncManager`]; it is sealed, so those are the only two. Users
//! name it only in bounds (`Pool<M: Backend>`); its methods are hidden.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::PoolConfig;
use crate::manager::{AsyncManager, ErrorClass, Manager};
use crate::runtime::Runtime;

/// A call that finished (a blocking manager), or a future to run as a task
/// (an async one).
#[doc(hidden)]
pub enum Call<'a, T, E> {
    /// The call ran and returned.
    Done(Result<T, E>),
    /// The call's future, to be awaited on the backend's runtime.
    Pending(Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>),
}

mod sealed {
    /// Only the two implementations in this module.
    pub trait Sealed {}
}

/// How the pool calls a manager: every [`Manager`] (blocking calls, run on
/// the pool's threads) and every [`Async`] of an [`AsyncManager`] (futures,
/// run as tasks on its runtime). Sealed: implement one of the two manager
/// traits instead.
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    /// The pooled resource.
    type Connection: Send + 'static;
    /// What connecting and the checks fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The runtime an async backend's futures run on; `None` for a blocking
    /// one.
    #[doc(hidden)]
    fn runtime(&self) -> Option<&dyn Runtime>;

    /// Opens a connection.
    #[doc(hidden)]
    fn connect(&self) -> Call<'_, Self::Connection, Self::Error>;

    /// Checks a connection.
    #[doc(hidden)]
    fn is_valid<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error>;

    /// The cheap check on return.
    #[doc(hidden)]
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;

    /// Whether `reset` must run before the next borrower.
    #[doc(hidden)]
    fn needs_reset(&self, conn: &mut Self::Connection) -> bool;

    /// Restores a returned connection.
    #[doc(hidden)]
    fn reset<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error>;

    /// Transient or permanent.
    #[doc(hidden)]
    fn classify(&self, error: &Self::Error) -> ErrorClass;

    /// A new configuration is in force.
    #[doc(hidden)]
    fn on_reconfigure(&self, config: &PoolConfig);
}

impl<M: Manager> sealed::Sealed for M {}

impl<M: Manager> Backend for M {
    type Connection = M::Connection;
    type Error = M::Error;

    #[inline(always)]
    fn runtime(&self) -> Option<&dyn Runtime> {
        None
    }

    fn connect(&self) -> Call<'_, Self::Connection, Self::Error> {
        Call::Done(Manager::connect(self))
    }

    fn is_valid<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error> {
        Call::Done(Manager::is_valid(self, conn))
    }

    #[inline(always)]
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        Manager::has_broken(self, conn)
    }

    /// A blocking manager's reset runs on every return (on the returning
    /// caller's thread), as it always has.
    #[inline(always)]
    fn needs_reset(&self, _conn: &mut Self::Connection) -> bool {
        true
    }

    #[inline(always)]
    fn reset<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error> {
        Call::Done(Manager::reset(self, conn))
    }

    fn classify(&self, error: &Self::Error) -> ErrorClass {
        Manager::classify(self, error)
    }

    fn on_reconfigure(&self, config: &PoolConfig) {
        Manager::on_reconfigure(self, config);
    }
}

/// An [`AsyncManager`] and the [`Runtime`] its futures run on: what a pool
/// of async connections is built from.
///
#[cfg_attr(
    all(feature = "tokio", not(feature = "loom")),
    doc = r#"
```
use std::time::Duration;
use slotpool::{Async, AsyncManager, Pool};
use slotpool::runtime::Tokio;

struct Counter;

impl AsyncManager for Counter {
    type Connection = u64;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
    async fn is_valid(&self, _conn: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
    fn has_broken(&self, _conn: &mut u64) -> bool { false }
}

# let runtime = tokio::runtime::Runtime::new().unwrap();
# runtime.block_on(async {
let pool = Pool::builder()
    .max_size(4)
    .build(Async::new(Counter, Tokio::current()))
    .unwrap();
let mut conn = pool.get_async().await.unwrap();
*conn += 1;
# });
```
"#
)]
pub struct Async<A> {
    manager: A,
    runtime: Arc<dyn Runtime>,
}

impl<A: AsyncManager> Async<A> {
    /// `manager`'s futures will run as tasks on `runtime`.
    pub fn new(manager: A, runtime: impl Runtime) -> Self {
        Self {
            manager,
            runtime: Arc::new(runtime),
        }
    }

    /// The async manager.
    pub fn manager(&self) -> &A {
        &self.manager
    }
}

impl<A: fmt::Debug> fmt::Debug for Async<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

impl<A: AsyncManager> sealed::Sealed for Async<A> {}

impl<A: AsyncManager> Backend for Async<A> {
    type Connection = A::Connection;
    type Error = A::Error;

    fn runtime(&self) -> Option<&dyn Runtime> {
        Some(&*self.runtime)
    }

    fn connect(&self) -> Call<'_, Self::Connection, Self::Error> {
        Call::Pending(Box::pin(self.manager.connect()))
    }

    fn is_valid<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error> {
        Call::Pending(Box::pin(self.manager.is_valid(conn)))
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.manager.has_broken(conn)
    }

    fn needs_reset(&self, conn: &mut Self::Connection) -> bool {
        self.manager.needs_reset(conn)
    }

    fn reset<'a>(&'a self, conn: &'a mut Self::Connection) -> Call<'a, (), Self::Error> {
        Call::Pending(Box::pin(self.manager.reset(conn)))
    }

    fn classify(&self, error: &Self::Error) -> ErrorClass {
        self.manager.classify(error)
    }

    fn on_reconfigure(&self, config: &PoolConfig) {
        self.manager.on_reconfigure(config);
    }
}

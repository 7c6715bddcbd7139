//! [`Runtime`]: where an [`AsyncManager`](crate::AsyncManager)'s futures
//! run.
//!
//! Owns: the two things the pool needs from an async runtime, spawning a
//! task and sleeping, and the tokio implementation (feature `tokio`). It may
//! not hold pool logic.
//!
//! The pool never blocks on a future: it spawns `connect`, `is_valid` and
//! `reset` as tasks and settles their outcome when they finish, so the
//! runtime's threads stay free and the pool's own threads never poll user
//! futures. Another runtime plugs in by implementing this trait (for
//! async-std: `async_std::task::spawn` and `async_std::task::sleep`; for
//! smol: an `Executor::spawn(..).detach()` and `smol::Timer::after`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed task or timer future.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An async runtime the pool spawns an [`AsyncManager`](crate::AsyncManager)'s
/// futures on.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture);

    /// A future that completes after `duration` (connect backoff).
    fn sleep(&self, duration: Duration) -> BoxFuture;
}

/// The tokio runtime (feature `tokio`), through a
/// [`Handle`](tokio::runtime::Handle): tasks are spawned on it, timers are
/// its own.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub struct Tokio(pub tokio::runtime::Handle);

#[cfg(feature = "tokio")]
impl Tokio {
    /// The runtime of the calling context.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `Handle::current` does).
    #[must_use]
    pub fn current() -> Self {
        Self(tokio::runtime::Handle::current())
    }
}

#[cfg(feature = "tokio")]
impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture) {
        drop(self.0.spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

//! [`PooledConnection`]: the guard a checkout returns.
//!
//! Owns: the guard's lifetime rules. It returns its lease to the pool core on
//! drop (also during unwinding, so a panic never leaks a slot). It may not
//! decide a connection's fate: it records the user's wish (`mark_broken`,
//! `note_error`) and the return path acts on it.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::{CloseReason, Shared};
use crate::backend::Backend;
use crate::manager::ErrorClass;
use crate::slot::Lease;
use crate::sync::Arc;

/// How a guard reaches its pool: borrowed (free) or owned (`'static`).
enum PoolRef<'a, M: Backend> {
    Borrowed(&'a Shared<M>),
    Owned(Arc<Shared<M>>),
}

impl<M: Backend> PoolRef<'_, M> {
    #[inline(always)]
    fn get(&self) -> &Shared<M> {
        match self {
            PoolRef::Borrowed(shared) => shared,
            PoolRef::Owned(shared) => shared,
        }
    }
}

/// A connection checked out of a [`Pool`](crate::Pool); derefs to the
/// connection and returns it on drop.
///
/// The guard borrows the pool (as bb8's does): cloning an `Arc` per checkout
/// would add two contended atomic operations to every get and return. Use
/// [`Pool::get_owned`](crate::Pool::get_owned) for a `'static` guard.
///
/// The connection stays in its slot while the guard holds it, but the guard
/// is `Send` and `Sync` only as far as the connection is: a guard of a
/// connection that is not `Sync` (a `rusqlite::Connection`) cannot be shared
/// between threads.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```compile_fail
use std::cell::Cell;
// A connection that may move between threads but not be shared (like a
// `rusqlite::Connection`).
struct NotSync;
impl slotpool::Manager for NotSync {
    type Connection = Cell<u32>;
    type Error = std::io::Error;
    fn connect(&self) -> Result<Cell<u32>, std::io::Error> { Ok(Cell::new(0)) }
    fn is_valid(&self, _: &mut Cell<u32>) -> Result<(), std::io::Error> { Ok(()) }
    fn has_broken(&self, _: &mut Cell<u32>) -> bool { false }
}
fn shareable<T: Sync>() {}
shareable::<slotpool::PooledConnection<'static, NotSync>>();
```

The same guard over a `Sync` connection is `Sync`:

```
struct Shareable;
impl slotpool::Manager for Shareable {
    type Connection = u32;
    type Error = std::io::Error;
    fn connect(&self) -> Result<u32, std::io::Error> { Ok(0) }
    fn is_valid(&self, _: &mut u32) -> Result<(), std::io::Error> { Ok(()) }
    fn has_broken(&self, _: &mut u32) -> bool { false }
}
fn shareable<T: Sync>() {}
shareable::<slotpool::PooledConnection<'static, Shareable>>();
```
"#
)]
pub struct PooledConnection<'a, M: Backend> {
    pool: PoolRef<'a, M>,
    /// `Some` until the guard is dropped or detached. Its `discard` is set
    /// when the connection must be closed on return instead of reused.
    lease: Option<Lease<M::Connection>>,
}

impl<'a, M: Backend> PooledConnection<'a, M> {
    #[inline(always)]
    pub(crate) fn borrowed(shared: &'a Shared<M>, lease: Lease<M::Connection>) -> Self {
        Self {
            pool: PoolRef::Borrowed(shared),
            lease: Some(lease),
        }
    }

    #[inline(always)]
    fn shared(&self) -> &Shared<M> {
        self.pool.get()
    }

    /// Makes the pool close this connection on return instead of reusing it
    /// (e.g. after an error that left it in an unknown state).
    pub fn mark_broken(&mut self) {
        self.lease_mut().discard.get_or_insert(CloseReason::Broken);
    }

    /// Tells the pool about an error this connection produced: one the
    /// manager classifies as permanent (e.g. SQLITE_CORRUPT, SQLITE_NOTADB)
    /// makes the pool close the connection on return. Returns whether it did.
    pub fn note_error(&mut self, error: &M::Error) -> bool {
        let fatal = self.shared().classify(error) == ErrorClass::Permanent;
        if fatal {
            self.lease_mut().discard = Some(CloseReason::Fatal);
        }
        fatal
    }

    /// Closes this connection now instead of returning it (`Pool::evict`).
    pub(crate) fn evict(mut self) {
        self.lease_mut().discard = Some(CloseReason::Evicted);
    }

    /// Takes the connection out of the pool for good; its slot is freed.
    pub fn detach(mut self) -> M::Connection {
        let lease = self.take_lease();
        let shared = self.shared();
        shared.detach(lease)
    }

    fn lease_mut(&mut self) -> &mut Lease<M::Connection> {
        match &mut self.lease {
            Some(lease) => lease,
            None => unreachable!("a guard holds its lease until drop or detach"),
        }
    }

    fn take_lease(&mut self) -> Lease<M::Connection> {
        match self.lease.take() {
            Some(lease) => lease,
            None => unreachable!("a guard holds its lease until drop or detach"),
        }
    }
}

impl<M: Backend> PooledConnection<'static, M> {
    pub(crate) fn owned(shared: Arc<Shared<M>>, lease: Lease<M::Connection>) -> Self {
        Self {
            pool: PoolRef::Owned(shared),
            lease: Some(lease),
        }
    }
}

impl<M: Backend> Deref for PooledConnection<'_, M> {
    type Target = M::Connection;

    #[inline(always)]
    fn deref(&self) -> &M::Connection {
        match &self.lease {
            Some(lease) => self.shared().slots.conn(lease),
            None => unreachable!("a guard holds its lease until drop or detach"),
        }
    }
}

impl<M: Backend> DerefMut for PooledConnection<'_, M> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut M::Connection {
        // `self.pool` and `self.lease` are borrowed apart, so the pool is
        // reached through the field, not `shared()`.
        let shared = self.pool.get();
        match &mut self.lease {
            Some(lease) => shared.slots.conn_mut(lease),
            None => unreachable!("a guard holds its lease until drop or detach"),
        }
    }
}

impl<M: Backend> Drop for PooledConnection<'_, M> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.shared().release(lease);
        }
    }
}

impl<M: Backend> fmt::Debug for PooledConnection<'_, M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("pool", &&*self.shared().name)
            .field("connection", &**self)
            .field(
                "discard",
                &self.lease.as_ref().and_then(|lease| lease.discard),
            )
            .finish()
    }
}

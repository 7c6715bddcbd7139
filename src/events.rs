//! [`PoolEvents`]: hooks a user can set on the builder to observe the pool
//! (like r2d2's `HandleEvent`).
//!
//! Owns: the trait and its event types. Hooks run on the thread that caused
//! the event and must be quick; with no hook set, the cost is one predictable
//! branch. Acquire and release hooks are the only ones on the hot path. It
//! may not change the pool: hooks only observe.

use std::panic::Location;
use std::time::Duration;

use crate::pool::CloseReason;

/// Observes a pool's lifecycle. Every method has an empty default, so
/// implement only what you need.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use slotpool::{CloseReason, PoolEvents};
///
/// #[derive(Default)]
/// struct CountCloses(AtomicU64);
///
/// impl PoolEvents for CountCloses {
///     fn on_close(&self, _slot: usize, _reason: CloseReason) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait PoolEvents: Send + Sync + 'static {
    /// A connection was checked out from `slot` at `site`, after waiting
    /// `waited` (zero when served at once).
    fn on_acquire(&self, slot: usize, waited: Duration, site: &'static Location<'static>) {
        let _ = (slot, waited, site);
    }
    /// A connection came back to `slot`.
    fn on_release(&self, slot: usize) {
        let _ = slot;
    }
    /// A connection was opened into `slot`; connecting took `took`.
    fn on_create(&self, slot: usize, took: Duration) {
        let _ = (slot, took);
    }
    /// A connection in `slot` was closed for `reason`.
    fn on_close(&self, slot: usize, reason: CloseReason) {
        let _ = (slot, reason);
    }
    /// A get timed out after `waited`.
    fn on_timeout(&self, waited: Duration) {
        let _ = waited;
    }
    /// The connection in `slot` has been held for `held`, past the leak
    /// threshold; `site` is where it was checked out.
    fn on_leak(&self, slot: usize, held: Duration, site: Option<&'static Location<'static>>) {
        let _ = (slot, held, site);
    }
}

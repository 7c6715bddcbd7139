//! Closing the pool: refuse new gets, wake waiters, close idle connections
//! now and in-use ones as they come back; and waiting for the drain.
//!
//! Owns: the close protocol (Dekker pair 2, see `shared.rs`) and what
//! "drained" means: no connection left in the pool (`total` is 0: none idle,
//! in use, being opened or being checked). `close` also waits, within the
//! same timeout, for the closes already handed to the closer lane. It may
//! not close a connection still in use.

use std::time::Duration;

use super::shared::Shared;
use crate::backend::Backend;
use crate::clock::nanos;
use crate::error::CloseTimedOut;
use crate::pool::CloseReason;
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    /// Starts closing the pool: refuse new gets, wake waiters, close idle
    /// connections now (on the closer lane) and in-use ones when they come
    /// back, stop connecting. Idempotent; never waits.
    pub(crate) fn close(&self) {
        if !self.waiters.close() {
            return;
        }
        log!(info, pool = %self.name, "pool closing");
        self.background.shutdown();
        // Dekker pair 2: the closed bit is set (SeqCst) before this scan.
        sync::dekker_fence();
        for index in 0..self.slots.high_water() {
            if let Some(lease) = self.slots.try_reserve(index) {
                self.discard(lease, CloseReason::PoolClosed);
            }
        }
        // Nothing may have been left to drain: wake `wait_drained`.
        self.room_freed();
    }

    /// Whether no connection is left in the pool.
    pub(crate) fn drained(&self) -> bool {
        self.total.load(Ordering::SeqCst) == 0
    }

    /// Waits until the pool has drained or `timeout` passes.
    pub(crate) fn wait_drained(&self, timeout: Duration) -> Result<(), CloseTimedOut> {
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let mut guard = sync::lock(&self.drained.0);
        loop {
            let total = self.total.load(Ordering::SeqCst);
            let closing = self.closing.load(Ordering::SeqCst);
            if total == 0 && closing == 0 {
                return Ok(());
            }
            let now = self.clock.now();
            if now >= deadline {
                log!(warn,
                    pool = %self.name,
                    in_use = total,
                    closing,
                    ?timeout,
                    "close timed out with connections still checked out or closing; \
                     they close when returned"
                );
                return Err(CloseTimedOut {
                    pool: self.name.clone(),
                    waited: Duration::from_nanos(now - start),
                    in_use: u32::try_from(total).unwrap_or(u32::MAX),
                    closing: u32::try_from(closing).unwrap_or(u32::MAX),
                });
            }
            let wait = Duration::from_nanos(deadline - now).min(Duration::from_millis(100));
            guard = sync::wait_timeout(&self.drained.1, guard, wait);
        }
    }
}

//! Closing the pool: refuse new gets, wake waiters, close idle connections
//! now and in-use ones as they come back; and waiting for the drain.
//!
//! Owns: the close protocol (Dekker pair 2, see `shared.rs`). It may not
//! close a connection still in use.

use std::time::Duration;

use super::shared::{PoolError, Shared};
use crate::clock::nanos;
use crate::error::Error;
use crate::manager::Manager;
use crate::pool::CloseReason;
use crate::sync::{self, Ordering};

impl<M: Manager> Shared<M> {
    /// Closes the pool: refuse new gets, wake waiters, close idle connections
    /// now and in-use ones when they come back. Idempotent.
    pub(crate) fn close(&self) {
        if !self.waiters.close() {
            return;
        }
        tracing::info!(pool = %self.name, "pool closing");
        self.worker.shutdown();
        // Dekker pair 2: the closed bit is set (SeqCst) before this scan.
        sync::dekker_fence();
        for index in 0..self.slots.high_water() {
            if let Some(lease) = self.slots.try_reserve(index) {
                self.discard(lease, CloseReason::PoolClosed);
            }
        }
    }

    /// Waits until every connection is closed or `timeout` passes.
    pub(crate) fn wait_drained(&self, timeout: Duration) -> Result<(), PoolError<M>> {
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let mut guard = sync::lock(&self.drained.0);
        loop {
            let total = self.total.load(Ordering::SeqCst);
            if total == 0 {
                return Ok(());
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(Error::CloseTimedOut {
                    pool: self.name.clone(),
                    waited: Duration::from_nanos(now - start),
                    in_use: total as u32,
                });
            }
            let wait = Duration::from_nanos(deadline - now).min(Duration::from_millis(100));
            guard = sync::wait_timeout(&self.drained.1, guard, wait);
        }
    }
}

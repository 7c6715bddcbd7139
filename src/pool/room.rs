//! Room accounting: `total` (slots not `Empty`, plus reservations and
//! connections out for a check) against `max_size`, and when another
//! connection should be opened.
//!
//! Owns: every change of `total` except the decrement of a vacated slot
//! (`vacate.rs`), and the fail-fast rule. It may not touch slots.

use super::shared::Shared;
use crate::backend::Backend;
use crate::slot::SlotState;
use crate::sync::Ordering;

impl<M: Backend> Shared<M> {
    /// Takes one unit of room back if the pool holds more than `max_size`.
    pub(crate) fn try_retire(&self) -> bool {
        let mut total = self.total.load(Ordering::SeqCst);
        loop {
            if total <= self.hot.max_size.load(Ordering::SeqCst) {
                return false;
            }
            match self
                .total
                .compare_exchange(total, total - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => total = actual,
            }
        }
    }

    /// Reserves room for one more connection, if under `max_size`.
    pub(crate) fn reserve_room(&self) -> bool {
        let mut total = self.total.load(Ordering::SeqCst);
        loop {
            if total >= self.hot.max_size.load(Ordering::SeqCst) {
                return false;
            }
            match self
                .total
                .compare_exchange(total, total + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => total = actual,
            }
        }
    }

    /// Asks for a connection when there is room (room pair).
    pub(crate) fn request_connection_if_room(&self) {
        if self.total.load(Ordering::SeqCst) < self.hot.max_size.load(Ordering::SeqCst) {
            self.background.request_connect();
        }
    }

    /// Whether another connection should be opened now: there is room, and
    /// a waiter no connect in flight will serve, a refused `try_get`, a
    /// fail-fast probe, or a `min_idle` deficit asks for one.
    pub(crate) fn wants_connection(&self) -> bool {
        let signal = self.waiters.signal();
        if signal.closed()
            || self.total.load(Ordering::SeqCst) >= self.hot.max_size.load(Ordering::SeqCst)
        {
            return false;
        }
        signal.waiting() > self.connecting.load(Ordering::SeqCst)
            || self.failing_fast()
            || self.demand.load(Ordering::SeqCst) > 0
            || self.count(SlotState::Idle) < self.config.load().min_idle as usize
    }

    /// Asks for one connection on behalf of callers that will not wait (at
    /// most one such request is pending at a time).
    pub(crate) fn request_one(&self) {
        if self.total.load(Ordering::SeqCst) < self.hot.max_size.load(Ordering::SeqCst) {
            self.demand.fetch_max(1, Ordering::SeqCst);
            self.background.request_connect();
        }
    }

    /// Connections open or handed out, not counting connects in flight.
    pub(crate) fn open_connections(&self) -> usize {
        self.total
            .load(Ordering::SeqCst)
            .saturating_sub(self.connecting.load(Ordering::SeqCst))
    }

    /// Whether gets should fail at once: connecting keeps failing (a
    /// permanent error, or `fail_fast_after` failures in a row) and no
    /// connection is open that could come back. A background probe keeps
    /// trying; its first success ends this.
    pub(crate) fn failing_fast(&self) -> bool {
        let failures = self.consecutive_failures.load(Ordering::SeqCst);
        if failures == 0 || self.open_connections() > 0 {
            return false;
        }
        let limit = self.config.load().fail_fast_after as usize;
        self.last_error_permanent.load(Ordering::SeqCst) || (limit != 0 && failures >= limit)
    }
}

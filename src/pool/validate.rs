//! Validating a connection that sat idle past `validation_idle_window`:
//! off the caller's path on the worker, or inline in manual mode.
//!
//! Owns: what a checkout does with a stale connection. It may not wait in
//! the queue (the caller does that in `checkout.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::shared::Shared;
use crate::manager::Manager;
use crate::pool::CloseReason;
use crate::slot::Lease;
use crate::stats::Event;

impl<M: Manager> Shared<M> {
    /// A checkout found this connection idle past the validation window.
    /// With a worker thread, the check runs there (a hanging `is_valid` then
    /// cannot hold the caller past its deadline) and the caller waits in the
    /// queue for whichever connection comes first; in manual mode it runs
    /// inline. `None`: the caller does not get this connection now.
    #[cold]
    pub(crate) fn validate(&self, lease: Lease<M::Connection>) -> Option<Lease<M::Connection>> {
        if self.worker.validates_off_path() {
            return match self.worker.validate_later(lease) {
                Ok(()) => None,
                Err(lease) => self.validate_now(lease),
            };
        }
        self.validate_now(lease)
    }

    pub(crate) fn validate_now(
        &self,
        mut lease: Lease<M::Connection>,
    ) -> Option<Lease<M::Connection>> {
        let valid = catch_unwind(AssertUnwindSafe(|| {
            self.manager.is_valid(self.slots.conn_mut(&mut lease))
        }));
        let ok = matches!(valid, Ok(Ok(())));
        self.stats.record(Event::Validated { ok });
        if ok {
            Some(lease)
        } else {
            self.discard(lease, CloseReason::Invalid);
            None
        }
    }

    /// The worker's half of a delegated validation: check, then hand the
    /// connection to the oldest waiter (or idle), or close it.
    pub(crate) fn validate_and_publish(&self, lease: Lease<M::Connection>) {
        if let Some(mut lease) = self.validate_now(lease) {
            // Handed straight to a waiter, it is not checked twice.
            lease.validated = true;
            self.publish(lease);
        }
    }
}

//! Validating a connection that sat idle past `validation_idle_window`:
//! on the checker lane (`background/check.rs`), so a hanging `is_valid`
//! cannot hold a caller past its deadline; or on the caller's thread for
//! `try_get` and in manual mode.
//!
//! Owns: what a checkout does with a stale connection. It may not wait in
//! the queue (the caller does that in `checkout.rs`).

use super::shared::Shared;
use crate::backend::Backend;
use crate::backend::Call;
use crate::background::CheckPurpose;
use crate::background::panics::guarded;
use crate::pool::CloseReason;
use crate::slot::Lease;
use crate::stats::{Callback, Event};

impl<M: Backend> Shared<M> {
    /// A checkout found this connection idle past the validation window.
    /// The check runs on the checker lane and the caller goes on looking
    /// (or waits in the queue) for whichever connection comes first; with
    /// `INLINE` (`try_get`) or in manual mode it runs here, for a blocking
    /// manager (an async manager's check is always a task, so its `try_get`
    /// reports no idle connection meanwhile). `None`: the caller does not
    /// get this connection now.
    #[cold]
    pub(crate) fn validate<const INLINE: bool>(
        &self,
        lease: Lease<M::Connection>,
    ) -> Option<Lease<M::Connection>> {
        if (INLINE && self.manager.runtime().is_none()) || self.checks_inline() {
            return self.validate_now(lease);
        }
        self.check_later(lease, CheckPurpose::Checkout);
        None
    }

    /// Checks the leased connection on this thread: `Some` if valid;
    /// discarded if not (a panicking check counts as a failed one).
    pub(crate) fn validate_now(
        &self,
        mut lease: Lease<M::Connection>,
    ) -> Option<Lease<M::Connection>> {
        let valid = guarded(&self.name, &self.stats, Callback::IsValid, || {
            matches!(
                self.manager.is_valid(self.slots.conn_mut(&mut lease)),
                Call::Done(Ok(()))
            )
        });
        let ok = matches!(valid, Ok(true));
        self.stats.record(Event::Validated { ok });
        if ok {
            Some(lease)
        } else {
            self.discard(lease, CloseReason::Invalid);
            None
        }
    }
}

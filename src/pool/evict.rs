//! Eviction on demand: `evict_idle`, `retain`'s sweep over idle
//! connections, and the leak flags maintenance sets.
//!
//! Owns: sweeping idle slots through reservations (`Idle → Reserved`), so no
//! borrower sees a connection being looked at. It may not touch connections
//! in use.

use super::shared::{EXTRA_LEAK_REPORTED, Shared};
use crate::clock::Nanos;
use crate::manager::Manager;
use crate::pool::CloseReason;
use crate::slot::Lease;
use crate::sync::Ordering;

impl<M: Manager> Shared<M> {
    /// Reserves each idle connection in turn and lets `decide` keep it
    /// (`None`) or close it for a reason. Kept ones go back without
    /// resetting their idle time.
    pub(crate) fn sweep_idle(
        &self,
        mut decide: impl FnMut(&mut Lease<M::Connection>, &crate::slot::SlotMeta) -> Option<CloseReason>,
    ) {
        for index in 0..self.slots.high_water() {
            if let Some(mut lease) = self.slots.try_reserve(index) {
                let meta = self.slots.meta(&lease);
                match decide(&mut lease, &meta) {
                    Some(reason) => self.discard(lease, reason),
                    None => self.publish_unstamped(lease),
                }
            }
        }
    }

    /// Closes every idle connection now, and every connection in use now
    /// when it comes back.
    pub(crate) fn evict_idle(&self) {
        self.hot
            .evict_before
            .store(self.clock.now().max(1), Ordering::Relaxed);
        self.sweep_idle(|_, _| Some(CloseReason::Evicted));
    }

    /// Maintenance reported a leak: returns check for it from now on. Set
    /// before the report is logged; a return racing the report itself may
    /// miss its "returned" line, nothing else.
    pub(crate) fn note_leak_reported(&self) {
        self.hot
            .extras
            .fetch_or(EXTRA_LEAK_REPORTED, Ordering::Release);
    }

    /// The leak threshold in force (0: off).
    pub(crate) fn leak_threshold(&self) -> Nanos {
        self.hot.leak_threshold.load(Ordering::Relaxed)
    }
}

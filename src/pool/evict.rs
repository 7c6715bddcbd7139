//! Eviction on demand: `evict_idle`, `retain`'s sweep over idle
//! connections, and the leak flags maintenance sets.
//!
//! Owns: sweeping idle slots through reservations (`Idle → Reserved`), so no
//! borrower sees a connection being looked at. It may not touch connections
//! in use.

use std::time::Duration;

use super::shared::{EXTRA_LEAK_REPORTED, Shared};
use crate::backend::Backend;
use crate::background::panics::guarded;
use crate::clock::Nanos;
use crate::pool::CloseReason;
use crate::slot::Lease;
use crate::stats::Callback;
use crate::sync::Ordering;

impl<M: Backend> Shared<M> {
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

    /// `Pool::retain`: closes the idle connections `keep` rejects. The
    /// predicate runs on the caller's thread in a panic boundary: if it
    /// panics, the connection it was looking at goes back to idle, the
    /// panic is logged and counted, and then re-raised to the caller (as
    /// `Vec::retain` would); connections not yet visited are left alone.
    pub(crate) fn retain(
        &self,
        mut keep: impl FnMut(&mut M::Connection, &crate::pool::ConnectionInfo) -> bool,
    ) {
        let now = self.clock.now();
        let mut panic = None;
        self.sweep_idle(|lease, meta| {
            if panic.is_some() {
                return None;
            }
            let info = crate::pool::ConnectionInfo {
                age: Duration::from_nanos(now.saturating_sub(meta.created_at)),
                idle: Duration::from_nanos(now.saturating_sub(meta.returned_at)),
                checkouts: meta.checkouts,
            };
            let conn = self.slots.conn_mut(lease);
            match guarded(&self.name, &self.stats, Callback::Retain, || {
                keep(conn, &info)
            }) {
                Ok(true) => None,
                Ok(false) => Some(CloseReason::Evicted),
                Err(payload) => {
                    panic = Some(payload);
                    None
                }
            }
        });
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
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

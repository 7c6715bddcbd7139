//! A connection leaving its slot for good: discarded (closed off the
//! callers' paths), retired, or detached by its user.
//!
//! Owns: [`CloseReason`], emptying a slot, giving its room back, counting
//! why, and asking for a replacement when someone waits (the room pair). It
//! may not decide whether a connection should go (its callers do), and may
//! not close one itself: the closer lane does (`background/close.rs`).

use super::shared::Shared;
use crate::backend::Backend;
use crate::slot::Lease;
use crate::stats::Event;
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    /// Closes a connection and frees its slot.
    pub(crate) fn discard(&self, lease: Lease<M::Connection>, reason: CloseReason) {
        self.close_leased(lease, reason, true);
    }

    /// Like [`discard`](Self::discard) for a lease whose room `try_retire`
    /// already gave back.
    pub(crate) fn vacate_retired(&self, lease: Lease<M::Connection>, reason: CloseReason) {
        self.close_leased(lease, reason, false);
    }

    /// Takes a connection out of the pool for good (`PooledConnection::detach`).
    pub(crate) fn detach(&self, lease: Lease<M::Connection>) -> M::Connection {
        let conn = self.leave_slot(lease, CloseReason::Detached, true);
        self.room_freed();
        conn
    }

    /// Closes a leased connection off the callers' paths: the `on_close`
    /// hook and the drop run on the closer lane (inline in manual mode).
    pub(crate) fn close_leased(
        &self,
        lease: Lease<M::Connection>,
        reason: CloseReason,
        give_back_room: bool,
    ) {
        let slot = lease.index();
        let conn = self.leave_slot(lease, reason, give_back_room);
        self.bury(conn, slot, reason);
        self.room_freed();
    }

    /// Gives back one unit of room whose connection is not in a slot (a
    /// check that failed or was abandoned), ordered before the caller's
    /// [`room_freed`](Self::room_freed) (the room pair).
    pub(crate) fn give_back_room(&self) {
        self.total.fetch_sub(1, Ordering::SeqCst);
        sync::dekker_fence();
    }

    /// Empties the leased slot (and gives its room back unless `try_retire`
    /// already did) and counts why.
    pub(crate) fn leave_slot(
        &self,
        lease: Lease<M::Connection>,
        reason: CloseReason,
        give_back_room: bool,
    ) -> M::Connection {
        let conn = self.slots.vacate(lease);
        if give_back_room {
            self.total.fetch_sub(1, Ordering::SeqCst);
        }
        // Room pair: room given back (SeqCst) before `room_freed` loads the
        // waiter count.
        sync::dekker_fence();
        log!(debug, pool = %self.name, ?reason, "connection left its slot");
        self.stats.record(Event::Closed(reason));
        conn
    }

    /// After a slot emptied: tell `close_timeout` (pool closed), or ask for a
    /// connection for whoever waits (room pair).
    pub(crate) fn room_freed(&self) {
        let signal = self.waiters.signal();
        if signal.closed() {
            self.notify_drained();
            // The dispatcher exits once the pool has drained.
            if self.drained() {
                self.background.poke();
            }
        } else if signal.waiting() > 0 {
            self.request_connection_if_room();
        }
    }

    /// Wakes `close` waiting for the drain.
    pub(crate) fn notify_drained(&self) {
        let _guard = sync::lock(&self.drained.0);
        self.drained.1.notify_all();
    }
}

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CloseReason {
    /// The user marked it broken, or `has_broken` said so on return.
    Broken,
    /// `is_valid` failed (or panicked) at checkout or in a keepalive check.
    Invalid,
    /// `reset` failed (or panicked) on return.
    ResetFailed,
    /// Idle longer than `idle_timeout` (above `min_idle`).
    IdleTimeout,
    /// Older than its (jittered) `max_lifetime`.
    MaxLifetime,
    /// Returned while the pool held more than `max_size` (after a shrink).
    Shrink,
    /// Evicted by `evict_idle`, `evict` or `retain`.
    Evicted,
    /// A fatal error class was seen on it (e.g. SQLITE_CORRUPT).
    Fatal,
    /// The pool was closed.
    PoolClosed,
    /// Detached from the pool by its user.
    Detached,
}

impl CloseReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 10] = [
        CloseReason::Broken,
        CloseReason::Invalid,
        CloseReason::ResetFailed,
        CloseReason::IdleTimeout,
        CloseReason::MaxLifetime,
        CloseReason::Shrink,
        CloseReason::Evicted,
        CloseReason::Fatal,
        CloseReason::PoolClosed,
        CloseReason::Detached,
    ];

    /// The snake_case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::Invalid => "invalid",
            CloseReason::ResetFailed => "reset_failed",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::MaxLifetime => "max_lifetime",
            CloseReason::Shrink => "shrink",
            CloseReason::Evicted => "evicted",
            CloseReason::Fatal => "fatal",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::Detached => "detached",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

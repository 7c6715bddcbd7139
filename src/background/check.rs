//! Validity checks off the callers' paths, bounded by `validation_timeout`.
//!
//! Owns: [`CheckJob`], its [`Ticket`] and the race between a check finishing
//! and its deadline passing. It may not wait in the queue for a caller (the
//! caller waits for whichever connection comes first) and may not run on the
//! dispatcher.
//!
//! # The protocol
//!
//! A connection that needs a check (a checkout found it idle past
//! `validation_idle_window`, or maintenance found it due for a keepalive)
//! leaves its slot with its metadata; its room stays taken (`total` counts
//! it, as `State::in_use` does), so the pool cannot open a replacement while
//! the check may still give it back. The job goes to the checker lane, and
//! its deadline (`validation_timeout` from now) to the dispatcher. Then
//! exactly one of two things happens, decided by one compare-and-swap on the
//! ticket:
//!
//! * the checker finishes first (`Running → Done`): a valid connection goes
//!   back into a slot (any empty one: the room was kept) and is published
//!   to the oldest waiter or to idle, marked so the next checkout does not
//!   check it again; an invalid one is closed and its room freed;
//! * the deadline passes first (`Running → Abandoned`, on the dispatcher):
//!   the room is freed at once, so a waiter can get a replacement, and the
//!   timeout is counted; the connection is closed whenever the check
//!   returns, whatever it says.
//!
//! A check still queued when it is abandoned is never started.

use std::time::Duration;

use super::panics::guarded;
use crate::clock::nanos;
use crate::manager::Manager;
use crate::pool::{CloseReason, Shared};
use crate::slot::SlotMeta;
use crate::stats::{Callback, Event};
use crate::sync::{Arc, AtomicU8, Ordering};

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Who finished a check: the checker or the deadline.
pub(crate) struct Ticket {
    state: AtomicU8,
}

impl Ticket {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(RUNNING),
        })
    }

    /// The checker's claim: true if the check's outcome is still wanted.
    pub(crate) fn finish(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The dispatcher's claim at the deadline: true if the check had not
    /// finished, and is now abandoned.
    pub(crate) fn abandon(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the deadline passed first (a queued check is then skipped).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.state.load(Ordering::Acquire) == ABANDONED
    }
}

/// Why a connection is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckPurpose {
    /// A checkout found it idle past `validation_idle_window`.
    Checkout,
    /// Maintenance found it idle past `keepalive_interval`.
    Keepalive,
}

/// A connection out of its slot, to be checked.
pub(crate) struct CheckJob<C> {
    pub(crate) conn: C,
    /// The slot it left (for `on_close`, if it is closed).
    pub(crate) slot: usize,
    pub(crate) meta: SlotMeta,
    pub(crate) ticket: Arc<Ticket>,
    pub(crate) purpose: CheckPurpose,
}

impl<M: Manager> Shared<M> {
    /// Sends the leased connection to be checked off this thread; its room
    /// stays taken until the check ends. The caller goes on looking for
    /// another connection (or waits in the queue).
    pub(crate) fn check_later(
        &self,
        lease: crate::slot::Lease<M::Connection>,
        purpose: CheckPurpose,
    ) {
        let meta = self.slots.meta(&lease);
        let slot = lease.index();
        let conn = self.slots.vacate(lease);
        self.validating.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket::new();
        let timeout = self.config().validation_timeout;
        let deadline = self.clock.now().saturating_add(nanos(timeout));
        let job = CheckJob {
            conn,
            slot,
            meta,
            ticket: ticket.clone(),
            purpose,
        };
        match self.background.submit_check(job) {
            Ok(()) => self.background.add_check_deadline(deadline, ticket),
            // The lane is shut down (the pool is closing): check here.
            Err(job) => self.run_check(job),
        }
    }

    /// The checker's half: run `is_valid` (unless the deadline already
    /// passed) and settle the outcome with the ticket.
    pub(crate) fn run_check(&self, job: CheckJob<M::Connection>) {
        let CheckJob {
            mut conn,
            slot,
            meta,
            ticket,
            purpose,
        } = job;
        let valid = if ticket.is_abandoned() {
            false
        } else {
            matches!(
                guarded(&self.name, &self.stats, Callback::IsValid, || {
                    self.manager.is_valid(&mut conn)
                }),
                Ok(Ok(()))
            )
        };
        if !ticket.finish() {
            // Abandoned at its deadline: the room is already free and the
            // close counted; the connection is not trusted whatever the
            // check said.
            self.bury(conn, slot, CloseReason::Invalid);
            return;
        }
        self.validating.fetch_sub(1, Ordering::SeqCst);
        self.stats.record(Event::Validated { ok: valid });
        if !valid {
            self.give_back_room();
            self.stats.record(Event::Closed(CloseReason::Invalid));
            self.bury(conn, slot, CloseReason::Invalid);
            self.room_freed();
            return;
        }
        let now = self.clock.now();
        let mut lease = self.reenter(conn, meta, now);
        match purpose {
            CheckPurpose::Checkout => {
                // Handed straight to a waiter (the one that sent it stays
                // queued while it is checked), or marked for the next
                // checkout: either way it is not checked again for it.
                lease.validated = true;
                self.publish_checked(lease);
            }
            CheckPurpose::Keepalive => {
                self.slots.stamp_kept_alive(&lease, now);
                self.publish_unstamped(lease);
            }
        }
    }

    /// The dispatcher's half, at a check's deadline: abandon it if it has
    /// not finished, freeing its room.
    pub(crate) fn abandon_check(&self, ticket: &Ticket, timeout: Duration) {
        if !ticket.abandon() {
            return;
        }
        self.validating.fetch_sub(1, Ordering::SeqCst);
        self.stats.record(Event::ValidationTimedOut);
        tracing::warn!(
            pool = %self.name,
            ?timeout,
            "a validity check did not answer within validation_timeout; abandoned \
             (the connection is closed when the check returns)"
        );
        self.give_back_room();
        self.stats.record(Event::Closed(CloseReason::Invalid));
        self.room_freed();
    }
}

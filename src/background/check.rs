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

use super::panics::{guarded, guarded_future};
use crate::backend::Backend;
use crate::backend::Call;
use crate::clock::nanos;
use crate::pool::{CloseReason, Shared};
use crate::slot::SlotMeta;
use crate::stats::{Callback, Event};
use crate::sync::{Arc, AtomicU8, Ordering};
use crate::telemetry::log;

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Who finished a check: the checker or the deadline.
pub(crate) struct Ticket {
    state: AtomicU8,
    /// Why the connection closes if the deadline wins.
    failure: CloseReason,
}

impl Ticket {
    pub(crate) fn new(failure: CloseReason) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(RUNNING),
            failure,
        })
    }

    /// Why the connection closes if the deadline wins.
    pub(crate) fn failure(&self) -> CloseReason {
        self.failure
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

/// Why a connection is out of its slot for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckPurpose {
    /// A checkout found it idle past `validation_idle_window`: `is_valid`.
    Checkout,
    /// Maintenance found it idle past `keepalive_interval`: `is_valid`.
    Keepalive,
    /// An async manager's connection came back needing `reset`.
    Reset,
}

impl CheckPurpose {
    /// The user callback the call runs.
    fn callback(self) -> Callback {
        match self {
            CheckPurpose::Reset => Callback::Reset,
            CheckPurpose::Checkout | CheckPurpose::Keepalive => Callback::IsValid,
        }
    }

    /// Why the connection is closed if the call fails or is abandoned.
    fn failure(self) -> CloseReason {
        match self {
            CheckPurpose::Reset => CloseReason::ResetFailed,
            CheckPurpose::Checkout | CheckPurpose::Keepalive => CloseReason::Invalid,
        }
    }
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

impl<M: Backend> Shared<M> {
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
        let ticket = Ticket::new(purpose.failure());
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

    /// The checker's half (a blocking manager, on a checker thread): run
    /// the call (unless the deadline already passed) and settle the outcome
    /// with the ticket.
    pub(crate) fn run_check(&self, job: CheckJob<M::Connection>) {
        let CheckJob {
            mut conn,
            slot,
            meta,
            ticket,
            purpose,
        } = job;
        let passed = !ticket.is_abandoned() && {
            let callback = purpose.callback();
            let outcome = guarded(&self.name, &self.stats, callback, || {
                let call = match purpose {
                    CheckPurpose::Reset => self.manager.reset(&mut conn),
                    CheckPurpose::Checkout | CheckPurpose::Keepalive => {
                        self.manager.is_valid(&mut conn)
                    }
                };
                // A blocking manager's calls are done when they return.
                matches!(call, Call::Done(Ok(())))
            });
            outcome.unwrap_or(false)
        };
        self.settle_check(conn, slot, meta, &ticket, purpose, passed);
    }

    /// The checker's half for an async manager (a task on its runtime).
    pub(crate) async fn run_check_async(&self, job: CheckJob<M::Connection>) {
        let CheckJob {
            mut conn,
            slot,
            meta,
            ticket,
            purpose,
        } = job;
        let passed = !ticket.is_abandoned() && {
            let call = match purpose {
                CheckPurpose::Reset => self.manager.reset(&mut conn),
                CheckPurpose::Checkout | CheckPurpose::Keepalive => {
                    self.manager.is_valid(&mut conn)
                }
            };
            let outcome = match call {
                Call::Done(result) => Ok(result),
                Call::Pending(future) => {
                    guarded_future(&self.name, &self.stats, purpose.callback(), future).await
                }
            };
            matches!(outcome, Ok(Ok(())))
        };
        self.settle_check(conn, slot, meta, &ticket, purpose, passed);
    }

    /// Settles a check's outcome with its ticket: a passed check puts the
    /// connection back into a slot and publishes it; a failed one closes it
    /// and frees its room; one the deadline abandoned only closes it.
    fn settle_check(
        &self,
        conn: M::Connection,
        slot: usize,
        meta: SlotMeta,
        ticket: &Ticket,
        purpose: CheckPurpose,
        passed: bool,
    ) {
        let failure = purpose.failure();
        if !ticket.finish() {
            // Abandoned at its deadline: the room is already free and the
            // close counted; the connection is not trusted whatever the
            // call said.
            self.bury(conn, slot, failure);
            return;
        }
        self.validating.fetch_sub(1, Ordering::SeqCst);
        if purpose != CheckPurpose::Reset {
            self.stats.record(Event::Validated { ok: passed });
        }
        if !passed {
            self.give_back_room();
            self.stats.record(Event::Closed(failure));
            self.bury(conn, slot, failure);
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
            // A returned connection, clean again: returned now.
            CheckPurpose::Reset => self.publish(lease),
        }
    }

    /// The dispatcher's half, at a check's deadline: abandon it if it has
    /// not finished, freeing its room.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
    pub(crate) fn abandon_check(&self, ticket: &Ticket, timeout: Duration) {
        if !ticket.abandon() {
            return;
        }
        self.validating.fetch_sub(1, Ordering::SeqCst);
        self.stats.record(Event::ValidationTimedOut);
        log!(warn,
            pool = %self.name,
            ?timeout,
            "a validity check (or an async reset) did not answer within validation_timeout; \
             abandoned (the connection is closed when the call returns)"
        );
        self.give_back_room();
        self.stats.record(Event::Closed(ticket.failure()));
        self.room_freed();
    }
}

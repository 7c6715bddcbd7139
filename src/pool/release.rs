//! A connection coming back: the manager's return checks, then hand-off to
//! the oldest waiter, a check-in to `Idle`, or retirement.
//!
//! Owns: the return path and publishing a ready connection (used by returns,
//! creators and validation alike), with its Dekker pairs (see `shared.rs`).
//! It may not close a connection itself: a discard goes through `vacate.rs`.

#[cfg(feature = "tracing")]
use std::time::Duration;

use super::shared::Shared;
use crate::backend::Backend;
use crate::backend::Call;
use crate::background::CheckPurpose;
use crate::background::panics::guarded;
use crate::clock::Nanos;
use crate::pool::CloseReason;
use crate::slot::Lease;
use crate::stats::{Callback, Event};
use crate::sync::{self, Ordering};
use crate::telemetry::log;

impl<M: Backend> Shared<M> {
    /// A guard came back: check it, then publish, retire or discard it.
    ///
    /// The fast path (nothing to record, nobody waiting, nothing due) is the
    /// manager's `has_broken` and `reset`, one branch over the retirement
    /// conditions, and [`SlotArray::check_in`]; everything else is out of
    /// line in [`release_slow`](Self::release_slow).
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    pub(crate) fn release(&self, mut lease: Lease<M::Connection>) {
        // Acquire: a return that sees `EXTRA_LEAK_REPORTED` also sees the
        // slot's `leak_reported` stored before it (a plain load on x86).
        if lease.discard.is_some() | lease.sampled | (self.hot.extras.load(Ordering::Acquire) != 0)
        {
            self.release_slow(lease);
            return;
        }
        match self.return_checks(&mut lease) {
            ReturnCheck::Keep => {}
            ReturnCheck::Discard(reason) => {
                self.discard(lease, reason);
                return;
            }
            ReturnCheck::ResetLater => {
                self.check_later(lease, CheckPurpose::Reset);
                return;
            }
        }
        let now = self.clock.recent();
        let (expired, evicted) = self.lifetime_over(&lease, now);
        let excess = self.total.load(Ordering::Relaxed) > self.hot.max_size.load(Ordering::Relaxed);
        if expired | evicted | excess {
            self.retire_or_publish(lease);
            return;
        }
        if !self.waiters.signal().is_quiet() {
            self.publish_contended(lease);
            return;
        }
        let index = self.slots.check_in_at(lease, now);
        // Dekker pairs 1 and 2: swapped to Idle (SeqCst) before this load.
        sync::dekker_fence();
        if !self.waiters.signal().is_quiet() {
            self.serve_after_check_in(index);
        }
    }

    /// The manager's checks of a returning connection, on the returning
    /// caller's thread: `has_broken`, then `reset` if `needs_reset` says so
    /// (always, for a blocking manager). A panic in either discards the
    /// connection (as broken, or as a failed reset). An async manager's
    /// reset is a future: the connection then leaves for a task that runs
    /// it ([`ReturnCheck::ResetLater`]).
    #[inline(always)]
    pub(crate) fn return_checks(&self, lease: &mut Lease<M::Connection>) -> ReturnCheck {
        let conn = self.slots.conn_mut(lease);
        match guarded(&self.name, &self.stats, Callback::HasBroken, || {
            self.manager.has_broken(conn)
        }) {
            Ok(false) => {}
            Ok(true) | Err(_) => return ReturnCheck::Discard(CloseReason::Broken),
        }
        let needs_reset = guarded(&self.name, &self.stats, Callback::Reset, || {
            self.manager.needs_reset(conn)
        });
        match needs_reset {
            Ok(false) => return ReturnCheck::Keep,
            Ok(true) => {}
            Err(_) => return ReturnCheck::Discard(CloseReason::ResetFailed),
        }
        if self.manager.runtime().is_some() {
            return ReturnCheck::ResetLater;
        }
        match guarded(&self.name, &self.stats, Callback::Reset, || {
            matches!(self.manager.reset(conn), Call::Done(Ok(())))
        }) {
            Ok(true) => ReturnCheck::Keep,
            Ok(false) | Err(_) => ReturnCheck::Discard(CloseReason::ResetFailed),
        }
    }

    /// A return with something to record or decide: events, a sampled hold
    /// time, a reported leak, a discard, expiry, eviction, a shrink.
    #[cold]
    #[inline(never)]
    pub(crate) fn release_slow(&self, mut lease: Lease<M::Connection>) {
        if let Some(events) = &self.events {
            let _ = guarded(&self.name, &self.stats, Callback::OnRelease, || {
                events.on_release(lease.index());
            });
        }
        if lease.sampled {
            self.record_hold(&lease);
        }
        if self.slots.leak_was_reported(&lease) {
            self.report_leak_returned(&lease);
        }
        if let Some(reason) = lease.discard {
            self.discard(lease, reason);
            return;
        }
        match self.return_checks(&mut lease) {
            ReturnCheck::Keep => {}
            ReturnCheck::Discard(reason) => {
                self.discard(lease, reason);
                return;
            }
            ReturnCheck::ResetLater => {
                self.check_later(lease, CheckPurpose::Reset);
                return;
            }
        }
        self.retire_or_publish(lease);
    }

    /// Retires a returning connection that expired, was evicted or is in
    /// excess of `max_size`; publishes it otherwise.
    #[cold]
    #[inline(never)]
    pub(crate) fn retire_or_publish(&self, lease: Lease<M::Connection>) {
        if let Some(reason) = self.retirement_due(&lease) {
            self.discard(lease, reason);
            return;
        }
        if self.total.load(Ordering::Relaxed) > self.hot.max_size.load(Ordering::Relaxed)
            && self.try_retire()
        {
            self.vacate_retired(lease, CloseReason::Shrink);
            return;
        }
        self.publish_returned(lease);
    }

    /// Whether a returning connection has outlived its lifetime (or carries
    /// a stamp from before a lifetime change, to be judged afresh), and
    /// whether `evict_idle` ran after it was opened, at `now`. Branch-free,
    /// so the fast path folds both into one test with the shrink check.
    #[inline(always)]
    pub(crate) fn lifetime_over(&self, lease: &Lease<M::Connection>, now: Nanos) -> (bool, bool) {
        let (expires_at, created_at, epoch) = self.slots.lifetime(lease);
        // `expires_at` 0 means never: 0 - 1 wraps to the largest time.
        let expired = now > expires_at.wrapping_sub(1);
        let stale = epoch != self.hot.lifetime_epoch.load(Ordering::Relaxed);
        // Creation times are at least 1 and `evict_before` 0 means none.
        let evicted = created_at <= self.hot.evict_before.load(Ordering::Relaxed);
        (expired | stale, evicted)
    }

    /// Why a returning connection must retire for its age, if it must.
    pub(crate) fn retirement_due(&self, lease: &Lease<M::Connection>) -> Option<CloseReason> {
        // A stale stamp is re-stamped first, so `lifetime_over` then says
        // only whether the connection expired.
        self.current_expiry(lease);
        match self.lifetime_over(lease, self.clock.recent()) {
            (true, _) => Some(CloseReason::MaxLifetime),
            (false, true) => Some(CloseReason::Evicted),
            (false, false) => None,
        }
    }

    #[cold]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // only logged
    pub(crate) fn report_leak_returned(&self, lease: &Lease<M::Connection>) {
        log!(
            warn,
            pool = %self.name,
            slot = lease.index(),
            checkout = self.slots.meta(lease).checkouts,
            held = ?Duration::from_nanos(
                self.clock
                    .now()
                    .saturating_sub(self.slots.checkout_at(lease.index())),
            ),
            "previously reported leaked connection was returned"
        );
    }

    #[cold]
    pub(crate) fn record_hold(&self, lease: &Lease<M::Connection>) {
        let held = self
            .clock
            .precise()
            .saturating_sub(self.slots.sample_start(lease));
        self.stats.record(Event::Held(held));
    }

    /// Gives a ready connection to the oldest waiter, or marks its slot idle.
    /// Used by the creator of a new connection and the checker: threads
    /// that will not use it themselves, so a waiter gets it directly.
    #[inline]
    pub(crate) fn publish(&self, lease: Lease<M::Connection>) {
        self.slots.stamp_returned(&lease, self.clock.recent());
        self.publish_unstamped(lease);
    }

    /// [`publish`](Self::publish) for a connection a caller returns: while
    /// the oldest waiter has waited less than `hand_off_after` it goes
    /// back idle and a waiter is roused (see [`Publisher::Caller`]).
    #[inline]
    pub(crate) fn publish_returned(&self, lease: Lease<M::Connection>) {
        self.slots.stamp_returned(&lease, self.clock.recent());
        self.publish_marked(lease, false, Publisher::Caller);
    }

    /// [`publish`](Self::publish) without marking the connection as just
    /// returned (maintenance puts back a connection it only looked at, and
    /// must not reset its idle time).
    #[inline(always)]
    pub(crate) fn publish_unstamped(&self, lease: Lease<M::Connection>) {
        self.publish_marked(lease, false, Publisher::Background);
    }

    /// [`publish`](Self::publish) for a connection the checker just found
    /// valid: if it goes idle, the next checkout soon after reuses the
    /// check (the caller that sent it may find it idle before it has queued
    /// up: it must not send it to be checked again).
    pub(crate) fn publish_checked(&self, lease: Lease<M::Connection>) {
        self.slots.stamp_returned(&lease, self.clock.recent());
        self.publish_marked(lease, true, Publisher::Background);
    }

    /// The publish loop; `fresh` marks a connection that goes idle as just
    /// checked; `publisher` says who may keep it idle while others wait.
    #[inline(always)]
    fn publish_marked(&self, lease: Lease<M::Connection>, fresh: bool, publisher: Publisher) {
        if publisher == Publisher::Background && self.retired_as_excess(&lease) {
            self.vacate_retired(lease, CloseReason::Shrink);
            return;
        }
        let mut lease = lease;
        let mut signal = self.waiters.signal();
        loop {
            if signal.closed() {
                self.discard(lease, CloseReason::PoolClosed);
                return;
            }
            if signal.waiting() > 0
                && (publisher == Publisher::Background || self.oldest_waited_enough())
            {
                match self.waiters.hand_off(lease) {
                    Ok(()) => return,
                    Err(back) => lease = back,
                }
            }
            if fresh {
                // Just checked: its next checkout, if it comes within the
                // grace, reuses the check.
                self.slots.mark_fresh(&lease, self.clock.recent());
            }
            let index = self.slots.check_in(lease);
            // Dekker pairs 1 and 2: swapped to Idle (SeqCst) before this load.
            sync::dekker_fence();
            signal = self.waiters.signal();
            if signal.is_quiet() || (publisher == Publisher::Caller && self.rouse_for_idle(signal))
            {
                return;
            }
            // Closed, or the oldest waiter has waited long enough to be
            // handed a connection: take the slot back and serve it, unless
            // a scanner already took it.
            match self.slots.try_checkout(index) {
                Some(back) => lease = back,
                None => return,
            }
        }
    }

    /// Whether a connection coming back from the background (a connect, a
    /// check, a reset) is in excess of a `max_size` lowered while it was
    /// away; `true`: its room was taken back and it must be retired (a
    /// caller's return checks the same in `retire_or_publish`).
    fn retired_as_excess(&self, _lease: &Lease<M::Connection>) -> bool {
        self.total.load(Ordering::SeqCst) > self.hot.max_size.load(Ordering::SeqCst)
            && self.try_retire()
    }

    /// Whether the oldest waiter has waited `hand_off_after` or longer: a
    /// returned connection is then handed to it rather than put back idle.
    fn oldest_waited_enough(&self) -> bool {
        let bound = self.hot.hand_off_after.load(Ordering::Relaxed);
        self.waiters
            .oldest_since()
            .is_some_and(|since| bound == 0 || self.clock.now().saturating_sub(since) >= bound)
    }

    /// A connection went `Idle` while somebody waits (`signal` not quiet):
    /// rouse a waiter to take it, unless the pool closed or the oldest
    /// waiter is due a hand-off. `false`: the caller must take the slot
    /// back and serve it.
    fn rouse_for_idle(&self, signal: crate::waiters::Signal) -> bool {
        if signal.closed() || self.oldest_waited_enough() {
            return false;
        }
        // If a waiter is roused already, its rescan (after this check-in)
        // sees the connection: nothing is lost.
        self.waiters.rouse();
        true
    }

    /// [`publish_returned`](Self::publish_returned) out of line, for a
    /// return that finds somebody waiting (or the pool closed).
    #[cold]
    #[inline(never)]
    pub(crate) fn publish_contended(&self, lease: Lease<M::Connection>) {
        self.publish_returned(lease);
    }

    /// After a check-in saw a waiter (or close) appear: rouse a waiter, or
    /// take the slot back and serve it, unless a scanner already took it
    /// (Dekker pair 1 or 2).
    #[cold]
    #[inline(never)]
    pub(crate) fn serve_after_check_in(&self, index: usize) {
        if self.rouse_for_idle(self.waiters.signal()) {
            return;
        }
        if let Some(lease) = self.slots.try_checkout(index) {
            self.publish_unstamped(lease);
        }
    }
}

/// Who publishes a ready connection, which decides how waiters get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publisher {
    /// A caller returning its connection, on its own thread, which is
    /// running and may well ask for a connection again at once. Until the
    /// oldest waiter has waited `hand_off_after` the connection goes back
    /// `Idle` and a waiter is roused to look for it: whoever scans first
    /// takes it, and a running caller usually wins without a context switch
    /// (a hand-off would leave it unusable until the waiter is scheduled,
    /// while the returning caller parks: a convoy). Past that wait, it is
    /// handed to the oldest waiter, which bounds every wait's tail.
    Caller,
    /// The creator of a new connection, the checker or maintenance: nobody
    /// on this thread will use it, so the oldest waiter gets it directly.
    Background,
}

/// What the manager's checks made of a returning connection.
pub(crate) enum ReturnCheck {
    /// Ready for the next borrower.
    Keep,
    /// Close it, for this reason.
    Discard(CloseReason),
    /// An async manager's `reset` must run first, as a task.
    ResetLater,
}

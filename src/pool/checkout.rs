//! Checking a connection out: the lock-free fast path (a scan from the
//! thread's hint), the stamps a checkout makes, and the slow path that joins
//! the waiter queue and parks until a hand-off, close or the deadline.
//!
//! Owns: the order of a checkout (scan, stamp, validate if stale, count,
//! sample) and the sync wait loop. It may not free room or close
//! connections (see `vacate.rs`); the async wait is `get_async.rs`, which
//! shares [`Shared::join_queue`] and [`Shared::checkout_after_wait`].

use std::panic::Location;
use std::time::Duration;

use super::shared::{EXTRA_EVENTS, PoolError, Shared};
use crate::backend::Backend;
use crate::background::CheckPurpose;
use crate::background::panics::guarded;
use crate::clock::{Nanos, nanos};
use crate::error::{Error, TryGetError};
use crate::slot::{Lease, SlotState};
use crate::stats::{Callback, Event};
use crate::sync::{self, Ordering};
use crate::telemetry::AcquireSpan;
use crate::waiters::{Notifier, Outcome, Refused};

/// How long after a connection was checked (and found no waiter) the next
/// checkout may reuse that check, even with a zero `validation_idle_window`:
/// 250 ms, half HikariCP's default alive-bypass window and one coarse-clock
/// tick at most. It only covers the race of a caller that sent a connection
/// to be checked and finds it idle again before it has queued up.
const FRESH_GRACE: Nanos = 250_000_000;

impl<M: Backend> Shared<M> {
    /// The fast path: no lock, no allocation; one scan from this thread's hint.
    /// `None` means nothing idle, or the pool is closed: the slow path then
    /// waits, or reports the closed pool.
    ///
    /// `INLINE_CHECKS`: a connection due for validation is checked on this
    /// thread (`try_get`, which never waits for another thread) rather than
    /// sent to the checker lane while the caller looks further or waits.
    ///
    /// The closed check stays, although `close()` empties every idle slot: a
    /// connection being returned concurrently is briefly `Idle` before its
    /// returner sees the closed bit, and a get made after `close()` returned
    /// must not take it (invariant 6). loom's `close_races_get_and_return`
    /// caught exactly that when this check was removed.
    // Forced inline only in real builds: under loom (a debug build on
    // 32 KiB coroutine stacks) the inlined frames overflow the stack.
    #[cfg_attr(not(feature = "loom"), inline(always))]
    #[cfg_attr(feature = "loom", inline)]
    pub(crate) fn try_acquire_fast<const INLINE_CHECKS: bool>(
        &self,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        if self.waiters.signal().closed() {
            return None;
        }
        loop {
            let lease = self.scan_idle()?;
            if let Some(lease) = self.prepare_checkout::<INLINE_CHECKS>(lease, site) {
                if self.hot.extras.load(Ordering::Relaxed) & EXTRA_EVENTS != 0 {
                    self.notify_acquire(&lease, Duration::ZERO, site);
                }
                return Some(lease);
            }
        }
    }

    #[cold]
    pub(crate) fn notify_acquire(
        &self,
        lease: &Lease<M::Connection>,
        waited: Duration,
        site: &'static Location<'static>,
    ) {
        if let Some(events) = &self.events {
            let _ = guarded(&self.name, &self.stats, Callback::OnAcquire, || {
                events.on_acquire(lease.index(), waited, site);
            });
        }
    }

    /// The error a get gets when nothing was idle and it may not wait.
    pub(crate) fn closed_or_no_idle(&self) -> TryGetError {
        if self.waiters.signal().closed() {
            self.stats.record(Event::RejectedClosed);
            TryGetError::Closed {
                pool: self.name.clone(),
            }
        } else {
            self.request_one();
            self.no_idle_error()
        }
    }

    /// Scans from the thread's hint for an idle slot and checks it out.
    #[inline(always)]
    pub(crate) fn scan_idle(&self) -> Option<Lease<M::Connection>> {
        let high_water = self.slots.high_water();
        let mut index = sync::slot_hint();
        if index >= high_water {
            index = 0;
        }
        for _ in 0..high_water {
            if let Some(lease) = self.slots.try_checkout(index) {
                sync::set_slot_hint(index);
                return Some(lease);
            }
            index += 1;
            if index == high_water {
                index = 0;
            }
        }
        None
    }

    /// Stamps the checkout and validates a connection that sat idle longer
    /// than the window. `None`: the caller does not get it now (sent to be
    /// checked, or invalid and discarded).
    #[inline(always)]
    pub(crate) fn prepare_checkout<const INLINE_CHECKS: bool>(
        &self,
        mut lease: Lease<M::Connection>,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        let now = self.clock.recent();
        let (returned_at, count) = self.slots.stamp_checkout(&lease, now);
        let stale =
            now.saturating_sub(returned_at) >= self.hot.validation_window.load(Ordering::Relaxed);
        let needs_validation = stale & !lease.validated;
        let leaks = self.hot.leak_threshold.load(Ordering::Relaxed) != 0;
        // One branch for everything a checkout rarely does.
        if needs_validation | self.is_sampled(count) | leaks {
            return self.prepare_checkout_slow::<INLINE_CHECKS>(
                lease,
                needs_validation,
                count,
                site,
            );
        }
        self.slots.count_checkout(&lease, count);
        lease.validated = false;
        lease.sampled = false;
        Some(lease)
    }

    /// The rare parts of a checkout: validating a connection that sat idle
    /// past the window, starting a hold-time sample, leak tracking.
    #[cold]
    #[inline(never)]
    pub(crate) fn prepare_checkout_slow<const INLINE_CHECKS: bool>(
        &self,
        lease: Lease<M::Connection>,
        needs_validation: bool,
        count: u64,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        // A connection opened or validated just before it went idle is not
        // checked again by the checkout that follows within the grace (with
        // a zero window every checkout is stale, and a connection must not
        // bounce between the checker and idle while one caller waits for
        // it: the checker can finish before that caller has queued up).
        let mut lease = if needs_validation && !self.is_fresh(&lease) {
            self.validate::<INLINE_CHECKS>(lease)?
        } else {
            lease
        };
        lease.validated = false;
        lease.sampled = false;
        // Counted only now: a validation that sent the connection to the
        // worker, or found it dead, is not a checkout. One that passed
        // inline leaves `count` right: nobody else writes an owned slot.
        self.slots.count_checkout(&lease, count);
        if self.is_sampled(count) {
            self.slots.start_sample(&mut lease, self.clock.precise());
        }
        if self.hot.leak_threshold.load(Ordering::Relaxed) != 0 {
            self.track_for_leaks(&lease, site);
        }
        Some(lease)
    }

    /// Whether the leased connection's checkout may reuse the check it
    /// passed just before it went idle: the first checkout since, within
    /// `max(validation_idle_window, FRESH_GRACE)`.
    fn is_fresh(&self, lease: &Lease<M::Connection>) -> bool {
        let grace = self
            .hot
            .validation_window
            .load(Ordering::Relaxed)
            .max(FRESH_GRACE);
        self.slots.is_fresh(lease, self.clock.recent(), grace)
    }

    /// Whether validity checks run on the checking thread: in manual mode,
    /// for a blocking manager (an async manager's checks are always tasks).
    pub(crate) fn checks_inline(&self) -> bool {
        self.background.validates_inline() && self.manager.runtime().is_none()
    }

    /// Whether a waiter that obtained this connection must send it to the
    /// checker (and so stay queued while it is checked): it sat idle past
    /// the window, was not just opened or checked, and checks do not run
    /// inline here.
    pub(crate) fn needs_off_thread_check(&self, lease: &Lease<M::Connection>) -> bool {
        let window = self.hot.validation_window.load(Ordering::Relaxed);
        !(lease.validated || self.checks_inline())
            && self
                .clock
                .recent()
                .saturating_sub(self.slots.returned_at(lease))
                >= window
            && !self.is_fresh(lease)
    }

    /// Whether checkout number `count` of a slot has its hold time measured.
    /// A mask, not `%`: a 64-bit division would cost more than the rest of
    /// the checkout.
    #[inline(always)]
    pub(crate) fn is_sampled(&self, count: u64) -> bool {
        let mask = self.hot.usage_sampling_mask;
        count & mask == 1 & mask
    }

    /// With leak detection on, keeps the checkout's site, and a backtrace of
    /// the checkout for the log line when `RUST_BACKTRACE` asks for them
    /// (HikariCP captures one per checkout; without `tracing` none is taken).
    #[cold]
    pub(crate) fn track_for_leaks(
        &self,
        lease: &Lease<M::Connection>,
        site: &'static Location<'static>,
    ) {
        self.slots.stamp_site(lease, site);
        // The backtrace only goes into the leak's log line.
        #[cfg(feature = "tracing")]
        {
            let trace = std::backtrace::Backtrace::capture();
            if trace.status() == std::backtrace::BacktraceStatus::Captured {
                self.slots.set_trace(lease, Some(trace));
            }
        }
    }

    /// The slow path: queue up, re-scan, ask for a connection, park until a
    /// hand-off, close, or the deadline.
    #[cold]
    pub(crate) fn acquire_slow(
        &self,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> Result<Lease<M::Connection>, PoolError<M>> {
        self.refuse_if_failing_fast()?;
        // One span per get that waits: a subscriber sees the wait's length
        // and its outcome (the error's event is recorded inside it).
        let span = AcquireSpan::new(&self.name, timeout);
        let _entered = span.enter();
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let max_waiters = self.config.load().max_waiters as usize;
        loop {
            let lease = self
                .wait_once(start, deadline, max_waiters)
                .inspect_err(|error| self.record_failure(error))?;
            if let Some(lease) = self.checkout_after_wait(lease, start, site) {
                return Ok(lease);
            }
            // It was invalid and is gone; wait again within the same deadline.
        }
    }

    /// Fails at once, with the typed connect error, while connecting is
    /// failing for good (see [`failing_fast`](Self::failing_fast)); a
    /// background probe keeps trying.
    pub(crate) fn refuse_if_failing_fast(&self) -> Result<(), PoolError<M>> {
        if self.failing_fast() {
            self.stats.record(Event::FailedFast);
            self.request_connection_if_room();
            return Err(self.connect_error());
        }
        Ok(())
    }

    /// Counts a get that ended in `error`.
    pub(crate) fn record_failure(&self, error: &PoolError<M>) {
        self.stats.record(match error {
            Error::TimedOut { .. } => Event::TimedOut,
            Error::TooManyWaiters { .. } => Event::RejectedWaiterCap,
            Error::Connect { .. } => Event::FailedFast,
            _ => Event::RejectedClosed,
        });
    }

    /// Joins the back of the waiter queue, then re-scans the slots (Dekker
    /// pair 1) and asks for a connection if there is room. One step for sync
    /// and async callers; only the notifier differs.
    pub(crate) fn join_queue(
        &self,
        notifier: Notifier,
        max_waiters: usize,
    ) -> Result<Joined<M::Connection>, PoolError<M>> {
        let node = match self
            .waiters
            .enqueue(notifier, max_waiters, self.clock.now())
        {
            Ok(node) => node,
            Err(Refused::Closed) => return Err(self.closed_error()),
            Err(Refused::TooManyWaiters) => return Err(self.too_many_waiters_error(max_waiters)),
        };
        // Dekker pair 1 (and the room pair): enqueued (SeqCst) before this
        // re-scan and the room check below.
        sync::dekker_fence();
        if let Some(lease) = self.scan_idle() {
            if let Some(lease) = self.take_while_queued(&node, lease)? {
                return Ok(Joined::Served(lease));
            }
        }
        self.request_connection_if_room();
        Ok(Joined::Queued(node))
    }

    /// A queued waiter found `lease` by scanning (on joining, or roused):
    /// it leaves the queue with it. `Ok(None)`: the connection must be
    /// checked first and was sent to the checker while the waiter stays
    /// queued (the check's end serves a waiter, never checking twice for
    /// one checkout).
    pub(crate) fn take_while_queued(
        &self,
        node: &crate::sync::Arc<crate::waiters::WaitNode<M::Connection>>,
        lease: Lease<M::Connection>,
    ) -> Result<Option<Lease<M::Connection>>, PoolError<M>> {
        if self.needs_off_thread_check(&lease) {
            self.check_later(lease, CheckPurpose::Checkout);
            self.request_connection_if_room();
            return Ok(None);
        }
        match self.waiters.cancel(node) {
            Outcome::Handed(handed) => {
                // Handed one at the same instant: keep it, pass the other on.
                self.publish(lease);
                Ok(Some(handed))
            }
            Outcome::Closed => {
                self.publish(lease);
                Err(self.closed_error())
            }
            Outcome::Rejected => {
                self.publish(lease);
                Err(self.connect_error())
            }
            Outcome::Cancelled | Outcome::Waiting | Outcome::Roused => Ok(Some(lease)),
        }
    }

    /// A roused waiter's one look at the slots (a connection was put back
    /// idle for whoever scans first): leaves the queue with what it finds
    /// (see [`take_while_queued`](Self::take_while_queued)). Having taken
    /// one, it passes the rousal on if another connection is idle: it may
    /// have been put back while this waiter was roused, waking nobody.
    pub(crate) fn rescan_roused(
        &self,
        node: &crate::sync::Arc<crate::waiters::WaitNode<M::Connection>>,
    ) -> Result<Option<Lease<M::Connection>>, PoolError<M>> {
        // The waiter half of the rousal's Dekker pair: the roused bit was
        // cleared (SeqCst) before this scan.
        sync::dekker_fence();
        let Some(lease) = self.scan_idle() else {
            return Ok(None);
        };
        let taken = self.take_while_queued(node, lease)?;
        if self.waiters.signal().waiting() > 0 && self.any_idle() {
            self.waiters.rouse();
        }
        Ok(taken)
    }

    /// Whether any slot is idle now.
    fn any_idle(&self) -> bool {
        (0..self.slots.high_water()).any(|index| self.slots.state(index) == SlotState::Idle)
    }

    /// A waiter was handed a connection that must be checked first: it joins
    /// the queue again (ahead of any `max_waiters` limit: it was already
    /// counted) and only then sends the connection to the checker, so the
    /// check's end finds it queued.
    /// It keeps the age of its first wait (`since`) for the hand-off rule.
    pub(crate) fn requeue_while_checked(
        &self,
        lease: Lease<M::Connection>,
        notifier: Notifier,
        since: Nanos,
    ) -> Result<crate::sync::Arc<crate::waiters::WaitNode<M::Connection>>, PoolError<M>> {
        match self.waiters.enqueue(notifier, 0, since) {
            Ok(node) => {
                self.check_later(lease, CheckPurpose::Checkout);
                Ok(node)
            }
            Err(_) => {
                // Closed meanwhile: the connection goes back (and is closed).
                self.publish_unstamped(lease);
                Err(self.closed_error())
            }
        }
    }

    /// Prepares a connection a waiter obtained (handed or re-scanned) and
    /// records the wait. `None`: it was invalid and has been discarded.
    pub(crate) fn checkout_after_wait(
        &self,
        lease: Lease<M::Connection>,
        start: Nanos,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        let lease = self.prepare_checkout::<false>(lease, site)?;
        let waited = self.clock.now().saturating_sub(start);
        self.stats.record(Event::Waited(waited));
        self.notify_acquire(&lease, Duration::from_nanos(waited), site);
        Some(lease)
    }

    pub(crate) fn wait_once(
        &self,
        start: Nanos,
        deadline: Nanos,
        max_waiters: usize,
    ) -> Result<Lease<M::Connection>, PoolError<M>> {
        let notifier = || Notifier::Thread(sync::thread::current());
        let mut node = match self.join_queue(notifier(), max_waiters)? {
            Joined::Served(lease) => return Ok(lease),
            Joined::Queued(node) => node,
        };
        loop {
            match self.waiters.poll(&node) {
                Outcome::Handed(lease) => {
                    sync::set_slot_hint(lease.index());
                    if !self.needs_off_thread_check(&lease) {
                        return Ok(lease);
                    }
                    node = self.requeue_while_checked(lease, notifier(), start)?;
                    continue;
                }
                Outcome::Roused => {
                    if let Some(lease) = self.rescan_roused(&node)? {
                        return Ok(lease);
                    }
                }
                Outcome::Closed => return Err(self.closed_error()),
                Outcome::Rejected => return Err(self.connect_error()),
                Outcome::Waiting | Outcome::Cancelled => {}
            }
            let now = self.clock.now();
            if now >= deadline {
                return match self.waiters.cancel(&node) {
                    Outcome::Handed(lease) if self.needs_off_thread_check(&lease) => {
                        // Out of time to wait for its check: pass it on.
                        self.check_later(lease, CheckPurpose::Checkout);
                        Err(self.timeout_error(now - start))
                    }
                    Outcome::Handed(lease) => Ok(lease),
                    Outcome::Closed => Err(self.closed_error()),
                    Outcome::Rejected => Err(self.connect_error()),
                    Outcome::Cancelled | Outcome::Waiting | Outcome::Roused => {
                        Err(self.timeout_error(now - start))
                    }
                };
            }
            self.clock.park_until(deadline);
        }
    }
}

/// What joining the waiter queue came to.
pub(crate) enum Joined<C> {
    /// A connection was found by the re-scan, or handed over at that instant.
    Served(Lease<C>),
    /// Queued: wait on this node.
    Queued(crate::sync::Arc<crate::waiters::WaitNode<C>>),
}

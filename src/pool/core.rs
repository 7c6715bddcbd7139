//! The shared state of one pool and the protocols over it: acquire (fast scan,
//! then wait), publish (hand off or mark idle), discard, retire, close.
//!
//! Owns: [`Shared`], the room counter (`total`), the hot-path copies of the
//! configuration, and the last connect error. It may not contain `unsafe`;
//! ownership of a slot is always carried by a [`Lease`].
//!
//! # The two Dekker pairs
//!
//! The release fast path is a `SeqCst` swap of the slot tag to `Idle` followed
//! by one `SeqCst` load of the signal word (waiter count | closed bit).
//!
//! 1. **Return vs. waiter.** A waiter increments the count (`SeqCst`, under the
//!    queue lock) and then re-scans the slots. A releaser swaps its slot to
//!    `Idle` and then loads the count. Sequential consistency means at least
//!    one sees the other: the waiter finds the idle slot, or the releaser sees
//!    the waiter, takes its slot back and hands it off. No lost wake-up
//!    (invariant 3) with no lock on the fast path.
//! 2. **Return vs. close.** `close` sets the closed bit and then scans for idle
//!    slots; a releaser swaps to `Idle` and then loads the bit. Either close
//!    finds the connection or the releaser sees the bit and closes it
//!    (invariant 6).
//!
//! A third pair guards *room*: a waiter increments the count and then loads
//! `total` to ask for a new connection; a discard decrements `total` and then
//! loads the count to ask on the waiter's behalf.
//!
//! # Room accounting
//!
//! `total` counts slots that are not `Empty` plus reservations about to claim
//! one. It only grows by a compare-and-swap that refuses to pass `max_size`,
//! so `idle + in_use + connecting <= max_size` (invariant 2) holds at every
//! instant; after a shrink, excess connections are retired as they come back.

use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::{Clock, Nanos, nanos};
use crate::config::{ConfigError, PoolConfig};
use crate::error::{Error, State};
use crate::manager::{ErrorClass, Manager};
use crate::slot::{Lease, SlotArray, SlotState};
pub use crate::stats::CloseReason;
use crate::stats::{Event, Gauges, Recorder, Stats};
use crate::sync::{
    self, AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Condvar, ConfigCell, Mutex, Ordering,
};
use crate::waiters::{Notifier, Outcome, Refused, Waiters};
use crate::worker::WorkerControl;

/// The settings the hot path reads, as plain atomics on one cache line: an
/// `ArcSwap` load costs a few nanoseconds more than a relaxed load, which the
/// budget cannot spare. `reconfigure` writes these after swapping the full
/// configuration.
struct HotConfig {
    max_size: AtomicUsize,
    validation_window: AtomicU64,
    /// `leak_detection_threshold` in nanoseconds; 0 when off.
    leak_threshold: AtomicU64,
    /// Optional per-operation work ([`EXTRA_EVENTS`], [`EXTRA_LEAK_REPORTED`]):
    /// one load tells both fast paths to skip all of it. Each bit is set
    /// once and never cleared, so concurrent writers cannot leave it wrong.
    /// (Leak detection, which `reconfigure` switches, is tested on
    /// `leak_threshold` itself, so no second word can disagree with it.)
    extras: AtomicU8,
    /// Connections created at or before this time retire when they come
    /// back (`evict_idle`); 0: none. Creation times are at least 1, so the
    /// return path compares without testing for 0.
    evict_before: AtomicU64,
    /// One checkout in `usage_sampling_mask + 1` (a power of two) per slot
    /// has its hold time measured.
    usage_sampling_mask: u64,
}

/// [`HotConfig::extras`]: event hooks are installed (fixed at build).
const EXTRA_EVENTS: u8 = 1;
/// [`HotConfig::extras`]: a leak has been reported. From then on every
/// return takes the slow path, which logs the return of a reported
/// checkout, even after leak detection is switched off.
const EXTRA_LEAK_REPORTED: u8 = 2;

/// Everything one pool shares between its handles, guards and worker.
pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) slots: SlotArray<M::Connection>,
    pub(crate) waiters: Waiters<M::Connection>,
    /// Slots not `Empty`, plus reservations in flight (see module docs).
    total: CachePadded<AtomicUsize>,
    hot: CachePadded<HotConfig>,
    config: ConfigCell<PoolConfig>,
    pub(crate) clock: Clock,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) worker: WorkerControl<M::Connection>,
    last_connect_error: Mutex<Option<std::sync::Arc<M::Error>>>,
    /// Connections asked for by callers that do not wait (`try_get`).
    demand: AtomicUsize,
    /// Live `Pool` handles; the last one to go closes the pool.
    pub(crate) handles: AtomicUsize,
    drained: (Mutex<()>, Condvar),
    /// The user's event hooks, if any.
    pub(crate) events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    /// Notified after every connect attempt (start-up waits on it).
    progress: (Mutex<()>, Condvar),
    /// Counters and histograms.
    pub(crate) stats: Recorder,
    /// Connect attempts that failed in a row (reset by a success).
    consecutive_failures: AtomicUsize,
    /// The last connect error was classified permanent.
    last_error_permanent: AtomicBool,
    /// Connects in flight.
    connecting: AtomicUsize,
}

type PoolError<M> = Error<<M as Manager>::Error>;

impl<M: Manager> Shared<M> {
    pub(crate) fn new(
        manager: M,
        config: PoolConfig,
        clock: Clock,
        capacity: usize,
        manual_background: bool,
        usage_sampling: u64,
        events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    ) -> Self {
        let leak_threshold = config.leak_detection_threshold.map_or(0, nanos);
        Self {
            manager,
            slots: SlotArray::new(capacity),
            waiters: Waiters::new(),
            total: CachePadded::new(AtomicUsize::new(0)),
            hot: CachePadded::new(HotConfig {
                max_size: AtomicUsize::new(config.max_size as usize),
                validation_window: AtomicU64::new(nanos(config.validation_idle_window)),
                leak_threshold: AtomicU64::new(leak_threshold),
                extras: AtomicU8::new(if events.is_some() { EXTRA_EVENTS } else { 0 }),
                evict_before: AtomicU64::new(0),
                usage_sampling_mask: usage_sampling.max(1).next_power_of_two() - 1,
            }),
            name: std::sync::Arc::from(config.pool_name.as_str()),
            config: ConfigCell::new(config),
            clock,
            worker: WorkerControl::new(manual_background),
            last_connect_error: Mutex::new(None),
            demand: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            drained: (Mutex::new(()), Condvar::new()),
            progress: (Mutex::new(()), Condvar::new()),
            events,
            stats: Recorder::default(),
            consecutive_failures: AtomicUsize::new(0),
            last_error_permanent: AtomicBool::new(false),
            connecting: AtomicUsize::new(0),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> std::sync::Arc<PoolConfig> {
        self.config.load()
    }

    // ----------------------------------------------------------------- acquire

    /// The fast path: no lock, no allocation; one scan from this thread's hint.
    /// `None` means nothing idle, or the pool is closed: the slow path then
    /// waits, or reports the closed pool.
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
    pub(crate) fn try_acquire_fast(
        &self,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        if self.waiters.signal().closed() {
            return None;
        }
        loop {
            let lease = self.scan_idle()?;
            if let Some(lease) = self.prepare_checkout(lease, site) {
                if self.hot.extras.load(Ordering::Relaxed) & EXTRA_EVENTS != 0 {
                    self.notify_acquire(&lease, Duration::ZERO, site);
                }
                return Some(lease);
            }
        }
    }

    #[cold]
    fn notify_acquire(
        &self,
        lease: &Lease<M::Connection>,
        waited: Duration,
        site: &'static Location<'static>,
    ) {
        if let Some(events) = &self.events {
            events.on_acquire(lease.index(), waited, site);
        }
    }

    /// The error a get gets when nothing was idle and it may not wait.
    pub(crate) fn closed_or_no_idle(&self) -> PoolError<M> {
        if self.waiters.signal().closed() {
            self.stats.record(Event::RejectedClosed);
            self.closed_error()
        } else {
            self.request_one();
            self.no_idle_error()
        }
    }

    /// Scans from the thread's hint for an idle slot and checks it out.
    #[inline(always)]
    fn scan_idle(&self) -> Option<Lease<M::Connection>> {
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
    /// than the window. `None`: it was invalid and has been discarded.
    #[inline(always)]
    fn prepare_checkout(
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
            return self.prepare_checkout_slow(lease, needs_validation, count, site);
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
    fn prepare_checkout_slow(
        &self,
        lease: Lease<M::Connection>,
        needs_validation: bool,
        count: u64,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        let mut lease = if needs_validation {
            self.validate(lease)?
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

    /// Whether checkout number `count` of a slot has its hold time measured.
    /// A mask, not `%`: a 64-bit division would cost more than the rest of
    /// the checkout.
    #[inline(always)]
    fn is_sampled(&self, count: u64) -> bool {
        let mask = self.hot.usage_sampling_mask;
        count & mask == 1 & mask
    }

    /// With leak detection on, keeps a backtrace of the checkout when
    /// `RUST_BACKTRACE` asks for them (HikariCP captures one per checkout).
    #[cold]
    fn track_for_leaks(&self, lease: &Lease<M::Connection>, site: &'static Location<'static>) {
        self.slots.stamp_site(lease, site);
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            self.slots.set_trace(lease, Some(trace));
        }
    }

    /// A checkout found this connection idle past the validation window.
    /// With a worker thread, the check runs there (a hanging `is_valid` then
    /// cannot hold the caller past its deadline) and the caller waits in the
    /// queue for whichever connection comes first; in manual mode it runs
    /// inline. `None`: the caller does not get this connection now.
    #[cold]
    fn validate(&self, lease: Lease<M::Connection>) -> Option<Lease<M::Connection>> {
        if self.worker.validates_off_path() {
            return match self.worker.validate_later(lease) {
                Ok(()) => None,
                Err(lease) => self.validate_now(lease),
            };
        }
        self.validate_now(lease)
    }

    fn validate_now(&self, mut lease: Lease<M::Connection>) -> Option<Lease<M::Connection>> {
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

    /// The slow path: queue up, re-scan, ask for a connection, park until a
    /// hand-off, close, or the deadline.
    #[cold]
    pub(crate) fn acquire_slow(
        &self,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> Result<Lease<M::Connection>, PoolError<M>> {
        self.refuse_if_failing_fast()?;
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
        let node = match self.waiters.enqueue(notifier, max_waiters) {
            Ok(node) => node,
            Err(Refused::Closed) => return Err(self.closed_error()),
            Err(Refused::TooManyWaiters) => return Err(self.too_many_waiters_error(max_waiters)),
        };
        // Dekker pair 1 (and the room pair): enqueued (SeqCst) before this
        // re-scan and the room check below.
        sync::dekker_fence();
        if let Some(lease) = self.scan_idle() {
            return match self.waiters.cancel(&node) {
                Outcome::Handed(handed) => {
                    // Handed one at the same instant: keep it, pass the other on.
                    self.publish(lease);
                    Ok(Joined::Served(handed))
                }
                Outcome::Closed => {
                    self.publish(lease);
                    Err(self.closed_error())
                }
                Outcome::Rejected => {
                    self.publish(lease);
                    Err(self.connect_error())
                }
                Outcome::Cancelled | Outcome::Waiting => Ok(Joined::Served(lease)),
            };
        }
        self.request_connection_if_room();
        Ok(Joined::Queued(node))
    }

    /// Prepares a connection a waiter obtained (handed or re-scanned) and
    /// records the wait. `None`: it was invalid and has been discarded.
    pub(crate) fn checkout_after_wait(
        &self,
        lease: Lease<M::Connection>,
        start: Nanos,
        site: &'static Location<'static>,
    ) -> Option<Lease<M::Connection>> {
        let lease = self.prepare_checkout(lease, site)?;
        let waited = self.clock.now().saturating_sub(start);
        self.stats.record(Event::Waited(waited));
        self.notify_acquire(&lease, Duration::from_nanos(waited), site);
        Some(lease)
    }

    fn wait_once(
        &self,
        start: Nanos,
        deadline: Nanos,
        max_waiters: usize,
    ) -> Result<Lease<M::Connection>, PoolError<M>> {
        let node = match self.join_queue(Notifier::Thread(sync::thread::current()), max_waiters)? {
            Joined::Served(lease) => return Ok(lease),
            Joined::Queued(node) => node,
        };
        loop {
            match self.waiters.poll(&node) {
                Outcome::Handed(lease) => {
                    sync::set_slot_hint(lease.index());
                    return Ok(lease);
                }
                Outcome::Closed => return Err(self.closed_error()),
                Outcome::Rejected => return Err(self.connect_error()),
                Outcome::Waiting | Outcome::Cancelled => {}
            }
            let now = self.clock.now();
            if now >= deadline {
                return match self.waiters.cancel(&node) {
                    Outcome::Handed(lease) => Ok(lease),
                    Outcome::Closed => Err(self.closed_error()),
                    Outcome::Rejected => Err(self.connect_error()),
                    Outcome::Cancelled | Outcome::Waiting => Err(self.timeout_error(now - start)),
                };
            }
            self.clock.park_until(deadline);
        }
    }

    // ----------------------------------------------------------------- return

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
        if let Some(reason) = self.return_checks(&mut lease) {
            self.discard(lease, reason);
            return;
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

    /// The manager's checks of a returning connection: `has_broken`, then
    /// `reset`. A panic in either counts as a failed reset.
    #[inline(always)]
    fn return_checks(&self, lease: &mut Lease<M::Connection>) -> Option<CloseReason> {
        let conn = self.slots.conn_mut(lease);
        catch_unwind(AssertUnwindSafe(|| {
            if self.manager.has_broken(conn) {
                Some(CloseReason::Broken)
            } else if self.manager.reset(conn).is_err() {
                Some(CloseReason::ResetFailed)
            } else {
                None
            }
        }))
        .unwrap_or(Some(CloseReason::ResetFailed))
    }

    /// A return with something to record or decide: events, a sampled hold
    /// time, a reported leak, a discard, expiry, eviction, a shrink.
    #[cold]
    #[inline(never)]
    fn release_slow(&self, mut lease: Lease<M::Connection>) {
        if let Some(events) = &self.events {
            events.on_release(lease.index());
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
        if let Some(reason) = self.return_checks(&mut lease) {
            self.discard(lease, reason);
            return;
        }
        self.retire_or_publish(lease);
    }

    /// Retires a returning connection that expired, was evicted or is in
    /// excess of `max_size`; publishes it otherwise.
    #[cold]
    #[inline(never)]
    fn retire_or_publish(&self, lease: Lease<M::Connection>) {
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
        self.publish(lease);
    }

    /// Whether a returning connection has outlived its lifetime, and whether
    /// `evict_idle` ran after it was opened, at `now`. Branch-free, so the
    /// fast path folds both into one test with the shrink check.
    #[inline(always)]
    fn lifetime_over(&self, lease: &Lease<M::Connection>, now: Nanos) -> (bool, bool) {
        let (expires_at, created_at) = self.slots.lifetime(lease);
        // `expires_at` 0 means never: 0 - 1 wraps to the largest time.
        let expired = now > expires_at.wrapping_sub(1);
        // Creation times are at least 1 and `evict_before` 0 means none.
        let evicted = created_at <= self.hot.evict_before.load(Ordering::Relaxed);
        (expired, evicted)
    }

    /// Why a returning connection must retire for its age, if it must.
    fn retirement_due(&self, lease: &Lease<M::Connection>) -> Option<CloseReason> {
        match self.lifetime_over(lease, self.clock.recent()) {
            (true, _) => Some(CloseReason::MaxLifetime),
            (false, true) => Some(CloseReason::Evicted),
            (false, false) => None,
        }
    }

    #[cold]
    fn report_leak_returned(&self, lease: &Lease<M::Connection>) {
        let meta = self.slots.meta(lease);
        let held = Duration::from_nanos(
            self.clock
                .now()
                .saturating_sub(self.slots.checkout_at(lease.index())),
        );
        tracing::warn!(
            pool = %self.name,
            slot = lease.index(),
            checkout = meta.checkouts,
            ?held,
            "previously reported leaked connection was returned"
        );
    }

    #[cold]
    fn record_hold(&self, lease: &Lease<M::Connection>) {
        let held = self
            .clock
            .precise()
            .saturating_sub(self.slots.sample_start(lease));
        self.stats.record(Event::Held(held));
    }

    /// Gives a ready connection to the oldest waiter, or marks its slot idle.
    /// Used by returns and by the creator of a new connection.
    #[inline]
    pub(crate) fn publish(&self, lease: Lease<M::Connection>) {
        self.slots.stamp_returned(&lease, self.clock.recent());
        self.publish_unstamped(lease);
    }

    /// [`publish`](Self::publish) without marking the connection as just
    /// returned (maintenance puts back a connection it only looked at, and
    /// must not reset its idle time).
    #[inline(always)]
    pub(crate) fn publish_unstamped(&self, lease: Lease<M::Connection>) {
        let mut lease = lease;
        let mut signal = self.waiters.signal();
        loop {
            if signal.closed() {
                self.discard(lease, CloseReason::PoolClosed);
                return;
            }
            if signal.waiting() > 0 {
                match self.waiters.hand_off(lease) {
                    Ok(()) => return,
                    Err(back) => lease = back,
                }
            }
            let index = self.slots.check_in(lease);
            // Dekker pairs 1 and 2: swapped to Idle (SeqCst) before this load.
            sync::dekker_fence();
            signal = self.waiters.signal();
            if signal.is_quiet() {
                return;
            }
            // A waiter enqueued (or close began) after our first look and may
            // have re-scanned before our swap: take the slot back and serve
            // it, unless a scanner already took it.
            match self.slots.try_checkout(index) {
                Some(back) => lease = back,
                None => return,
            }
        }
    }

    /// [`publish`](Self::publish) out of line, for a return that finds
    /// somebody waiting (or the pool closed).
    #[cold]
    #[inline(never)]
    fn publish_contended(&self, lease: Lease<M::Connection>) {
        self.publish(lease);
    }

    /// After a check-in saw a waiter (or close) appear: take the slot back
    /// and serve it, unless a scanner already took it (Dekker pair 1 or 2).
    #[cold]
    #[inline(never)]
    fn serve_after_check_in(&self, index: usize) {
        if let Some(lease) = self.slots.try_checkout(index) {
            self.publish_unstamped(lease);
        }
    }

    /// Closes a connection and frees its slot.
    pub(crate) fn discard(&self, lease: Lease<M::Connection>, reason: CloseReason) {
        self.close_leased(lease, reason, true);
    }

    /// Like [`discard`](Self::discard) for a lease whose room `try_retire`
    /// already gave back.
    fn vacate_retired(&self, lease: Lease<M::Connection>, reason: CloseReason) {
        self.close_leased(lease, reason, false);
    }

    /// Takes a connection out of the pool for good (`PooledConnection::detach`).
    pub(crate) fn detach(&self, lease: Lease<M::Connection>) -> M::Connection {
        let conn = self.leave_slot(lease, CloseReason::Detached, true);
        self.room_freed();
        conn
    }

    /// Closes a leased connection: off the callers' paths while the pool is
    /// open, at once once it is closed (`close()` closes idle ones inline).
    fn close_leased(&self, lease: Lease<M::Connection>, reason: CloseReason, give_back_room: bool) {
        if let Some(events) = &self.events {
            events.on_close(lease.index(), reason);
        }
        let conn = self.leave_slot(lease, reason, give_back_room);
        if self.waiters.signal().closed() {
            drop(conn);
        } else {
            self.worker.bury(conn);
        }
        self.room_freed();
    }

    /// Empties the leased slot (and gives its room back unless `try_retire`
    /// already did) and counts why.
    fn leave_slot(
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
        tracing::debug!(pool = %self.name, ?reason, "connection left its slot");
        self.stats.record(Event::Closed(reason));
        conn
    }

    /// After a slot emptied: tell `close_timeout` (pool closed), or ask for a
    /// connection for whoever waits (room pair).
    fn room_freed(&self) {
        let signal = self.waiters.signal();
        if signal.closed() {
            let _guard = sync::lock(&self.drained.0);
            self.drained.1.notify_all();
        } else if signal.waiting() > 0 {
            self.request_connection_if_room();
        }
    }

    /// Takes one unit of room back if the pool holds more than `max_size`.
    fn try_retire(&self) -> bool {
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

    // ----------------------------------------------------------------- create

    /// Reserves room for one more connection, if under `max_size`.
    fn reserve_room(&self) -> bool {
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

    /// Asks the worker for a connection when there is room (room pair).
    pub(crate) fn request_connection_if_room(&self) {
        if self.total.load(Ordering::SeqCst) < self.hot.max_size.load(Ordering::SeqCst) {
            self.worker.request();
        }
    }

    /// Whether the worker should open another connection now.
    pub(crate) fn wants_connection(&self) -> bool {
        let signal = self.waiters.signal();
        if signal.closed()
            || self.total.load(Ordering::SeqCst) >= self.hot.max_size.load(Ordering::SeqCst)
        {
            return false;
        }
        signal.waiting() > 0
            || self.failing_fast()
            || self.demand.load(Ordering::SeqCst) > 0
            || self.count(SlotState::Idle) < self.config.load().min_idle as usize
    }

    /// Asks for one connection on behalf of callers that will not wait (at
    /// most one such request is pending at a time).
    pub(crate) fn request_one(&self) {
        if self.total.load(Ordering::SeqCst) < self.hot.max_size.load(Ordering::SeqCst) {
            self.demand.fetch_max(1, Ordering::SeqCst);
            self.worker.request();
        }
    }

    /// Opens one connection (on the worker) and publishes it.
    pub(crate) fn create_one(&self) -> CreateOutcome<M::Error> {
        if !self.reserve_room() {
            return CreateOutcome::NoRoom;
        }
        let claim = loop {
            // A reservation guarantees an empty slot once in-flight retires
            // (which give back room before vacating) finish: a few instructions.
            match self.slots.claim_empty() {
                Some(claim) => break claim,
                None => sync::thread::yield_now(),
            }
        };
        self.connecting.fetch_add(1, Ordering::SeqCst);
        let started = self.clock.now();
        let connected = catch_unwind(AssertUnwindSafe(|| self.manager.connect()));
        let now = self.clock.now();
        let took = now.saturating_sub(started);
        self.connecting.fetch_sub(1, Ordering::SeqCst);
        match connected {
            Ok(Ok(conn)) => {
                self.stats.record(Event::Created(took));
                self.consecutive_failures.store(0, Ordering::SeqCst);
                self.last_error_permanent.store(false, Ordering::SeqCst);
                *sync::lock(&self.last_connect_error) = None;
                let _ = self
                    .demand
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                let lease = self.slots.fill(claim, conn, now, self.expiry_for(now));
                if let Some(events) = &self.events {
                    events.on_create(lease.index(), Duration::from_nanos(took));
                }
                tracing::debug!(pool = %self.name, slot = lease.index(), "connection opened");
                self.publish(lease);
                self.notify_progress();
                CreateOutcome::Created
            }
            Ok(Err(error)) => {
                self.stats.record(Event::ConnectFailed);
                self.slots.abandon(claim);
                self.total.fetch_sub(1, Ordering::SeqCst);
                let error = std::sync::Arc::new(error);
                tracing::warn!(pool = %self.name, error = %error, "connect failed");
                let permanent = self.manager.classify(&error) == ErrorClass::Permanent;
                *sync::lock(&self.last_connect_error) = Some(error.clone());
                self.last_error_permanent.store(permanent, Ordering::SeqCst);
                self.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                if self.failing_fast() {
                    // Nothing open, nothing coming: end current waits now
                    // with the typed cause instead of letting them time out.
                    self.waiters.reject_all();
                }
                self.notify_progress();
                CreateOutcome::Failed(error)
            }
            Err(_panic) => {
                self.stats.record(Event::ConnectFailed);
                self.consecutive_failures.fetch_add(1, Ordering::SeqCst);
                self.slots.abandon(claim);
                self.total.fetch_sub(1, Ordering::SeqCst);
                tracing::error!(pool = %self.name, "connect panicked");
                CreateOutcome::Panicked
            }
        }
    }

    /// When a connection opened at `now` must retire: `max_lifetime` scaled
    /// by a random factor in [1 - jitter, 1], so connections opened together
    /// do not expire together. 0: never.
    fn expiry_for(&self, now: Nanos) -> Nanos {
        let config = self.config.load();
        match config.max_lifetime {
            Some(lifetime) => {
                let factor = 1.0 - config.max_lifetime_jitter * fastrand::f64();
                now.saturating_add(nanos(lifetime.mul_f64(factor)).max(1))
            }
            None => 0,
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

    pub(crate) fn too_many_waiters_error(&self, limit: usize) -> PoolError<M> {
        Error::TooManyWaiters {
            pool: self.name.clone(),
            limit: limit as u32,
            state: self.state(),
        }
    }

    pub(crate) fn connect_error(&self) -> PoolError<M> {
        // Bind first: a guard in the match scrutinee would live through the
        // arms, and `timeout_error` below locks the same mutex (a deadlock
        // a teammate caught under the PostgreSQL recovery test).
        let last = sync::lock(&self.last_connect_error).clone();
        match last {
            Some(source) => Error::Connect {
                pool: self.name.clone(),
                state: self.state(),
                source,
            },
            // A success cleared the error in between: the caller may retry.
            None => self.timeout_error(0),
        }
    }

    // ------------------------------------------------------------ eviction

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

    fn notify_progress(&self) {
        let _guard = sync::lock(&self.progress.0);
        self.progress.1.notify_all();
    }

    /// Waits until `min_idle` connections are idle, or fails within
    /// `timeout` with the typed cause (start-up mode `WaitForMinIdle`).
    pub(crate) fn wait_for_idle(
        &self,
        min_idle: usize,
        timeout: Duration,
    ) -> Result<(), PoolError<M>> {
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let mut guard = sync::lock(&self.progress.0);
        loop {
            if self.count(SlotState::Idle) >= min_idle {
                return Ok(());
            }
            if self.failing_fast() {
                return Err(self.connect_error());
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(self.timeout_error(now - start));
            }
            let wait = Duration::from_nanos(deadline - now).min(Duration::from_millis(100));
            guard = sync::wait_timeout(&self.progress.1, guard, wait);
        }
    }

    // ----------------------------------------------------------------- close

    /// Closes the pool: refuse new gets, wake waiters, close idle connections
    /// now and in-use ones when they come back. Idempotent.
    pub(crate) fn close(&self) {
        if !self.waiters.close() {
            return;
        }
        tracing::info!(pool = %self.name, "pool closing");
        self.worker.shutdown();
        // Dekker pair 2: the closed bit is set (SeqCst) before this scan.
        sync::dekker_fence();
        for index in 0..self.slots.high_water() {
            if let Some(lease) = self.slots.try_reserve(index) {
                self.discard(lease, CloseReason::PoolClosed);
            }
        }
    }

    /// Waits until every connection is closed or `timeout` passes.
    pub(crate) fn wait_drained(&self, timeout: Duration) -> Result<(), PoolError<M>> {
        let start = self.clock.now();
        let deadline = start.saturating_add(nanos(timeout));
        let mut guard = sync::lock(&self.drained.0);
        loop {
            let total = self.total.load(Ordering::SeqCst);
            if total == 0 {
                return Ok(());
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(Error::CloseTimedOut {
                    pool: self.name.clone(),
                    waited: Duration::from_nanos(now - start),
                    in_use: total as u32,
                });
            }
            let wait = Duration::from_nanos(deadline - now).min(Duration::from_millis(100));
            guard = sync::wait_timeout(&self.drained.1, guard, wait);
        }
    }

    // ----------------------------------------------------------------- config

    /// Swaps in a new configuration (validated) and applies size changes.
    pub(crate) fn reconfigure(&self, config: PoolConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let capacity = self.slots.capacity();
        if config.max_size as usize > capacity {
            return Err(ConfigError::Invalid {
                setting: "max_size",
                value: config.max_size.to_string(),
                rule: format!("must be <= the slot array's capacity ({capacity}), fixed at build"),
            });
        }
        if *config.pool_name != *self.name {
            return Err(ConfigError::Invalid {
                setting: "pool_name",
                value: config.pool_name.clone(),
                rule: format!("cannot change while the pool runs (it is '{}')", self.name),
            });
        }
        let max_size = config.max_size as usize;
        let window = nanos(config.validation_idle_window);
        let leak_threshold = config.leak_detection_threshold.map_or(0, nanos);
        self.manager.on_reconfigure(&config);
        self.config.store(config);
        self.hot.validation_window.store(window, Ordering::Relaxed);
        self.hot
            .leak_threshold
            .store(leak_threshold, Ordering::Relaxed);

        self.hot.max_size.store(max_size, Ordering::SeqCst);
        sync::dekker_fence();
        tracing::info!(pool = %self.name, max_size, "pool reconfigured");
        // Shrink: retire idle excess now; in-use excess retires on return.
        for index in 0..self.slots.high_water() {
            if self.total.load(Ordering::SeqCst) <= max_size {
                break;
            }
            if let Some(lease) = self.slots.try_reserve(index) {
                if self.try_retire() {
                    self.vacate_retired(lease, CloseReason::Shrink);
                } else {
                    self.publish(lease);
                }
            }
        }
        // Grow: serve current waiters; min_idle changes: refill.
        self.worker.request();
        Ok(())
    }

    // ----------------------------------------------------------------- report

    fn count(&self, wanted: SlotState) -> usize {
        (0..self.slots.high_water())
            .filter(|&index| self.slots.state(index) == wanted)
            .count()
    }

    /// A snapshot of the counts (not atomic as a whole).
    pub(crate) fn state(&self) -> State {
        let mut state = State {
            waiting: self.waiters.signal().waiting() as u32,
            max_size: self.hot.max_size.load(Ordering::Relaxed) as u32,
            ..State::default()
        };
        for index in 0..self.slots.high_water() {
            match self.slots.state(index) {
                SlotState::Empty => {}
                SlotState::Connecting => state.connecting += 1,
                SlotState::Idle => state.idle_connections += 1,
                SlotState::InUse | SlotState::Reserved => state.in_use += 1,
            }
        }
        state.connections = state.idle_connections + state.in_use + state.connecting;
        state
    }

    /// How often the worker refreshes the coarse clock while connections
    /// exist: a quarter of the validation window, within [10 ms, 250 ms].
    pub(crate) fn tick_interval(&self) -> Option<Duration> {
        if self.clock.is_manual() || self.total.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let window = Duration::from_nanos(self.hot.validation_window.load(Ordering::Relaxed));
        Some((window / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)))
    }

    pub(crate) fn closed_error(&self) -> PoolError<M> {
        Error::Closed {
            pool: self.name.clone(),
        }
    }

    pub(crate) fn timeout_error(&self, waited: Nanos) -> PoolError<M> {
        if let Some(events) = &self.events {
            events.on_timeout(Duration::from_nanos(waited));
        }
        tracing::debug!(pool = %self.name, waited = ?Duration::from_nanos(waited), "get timed out");
        Error::TimedOut {
            pool: self.name.clone(),
            waited: Duration::from_nanos(waited),
            state: self.state(),
            last_connect_error: sync::lock(&self.last_connect_error).clone(),
        }
    }

    /// A statistics snapshot.
    pub(crate) fn stats(&self) -> Stats {
        let state = self.state();
        let gauges = Gauges {
            total: state.connections,
            idle: state.idle_connections,
            in_use: state.in_use,
            connecting: state.connecting,
            waiting: state.waiting,
            max: state.max_size,
            min_idle: self.config.load().min_idle,
        };
        let counters = self.stats.counters(self.slots.total_checkouts());
        Stats::assemble(&self.name, gauges, counters, &self.stats)
    }

    pub(crate) fn no_idle_error(&self) -> PoolError<M> {
        self.stats.record(Event::NoIdle);
        Error::NoIdle {
            pool: self.name.clone(),
            state: self.state(),
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

/// What one connect attempt on the worker came to.
pub(crate) enum CreateOutcome<E> {
    Created,
    NoRoom,
    Failed(std::sync::Arc<E>),
    Panicked,
}

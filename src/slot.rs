//! The slot array: a fixed number of cache-padded slots, each a state tag and
//! a connection cell. This is the only module with `unsafe`.
//!
//! Owns: slot states, the connection cells, per-slot metadata, and the
//! [`Lease`] / [`Claim`] tokens that prove ownership of a slot. It may not
//! know about waiters, configuration or managers.
//!
//! # State machine
//!
//! | from         | to           | who                                   | how        |
//! |--------------|--------------|---------------------------------------|------------|
//! | `Empty`      | `Connecting` | a creator, after reserving room       | CAS        |
//! | `Connecting` | `InUse`      | the creator, connect succeeded        | store      |
//! | `Connecting` | `Empty`      | the creator, connect failed           | store      |
//! | `Idle`       | `InUse`      | a borrower                            | CAS        |
//! | `Idle`       | `Reserved`   | maintenance or `close()`              | CAS        |
//! | `InUse`      | `Idle`       | the lease holder, returning           | swap       |
//! | `InUse`      | `Empty`      | the lease holder, discarding          | store      |
//! | `Reserved`   | `Idle`       | maintenance, connection kept          | swap       |
//! | `Reserved`   | `Empty`      | maintenance, connection retired       | store      |
//!
//! Every transition out of `Idle` or `Empty` is a compare-and-swap, so exactly
//! one thread wins it; every other transition is made by the one thread that
//! holds the slot's [`Lease`] or [`Claim`]. The connection stays in its slot
//! for its whole life: a checkout moves only the tag, and the lease holder
//! reaches the connection in place ([`SlotArray::conn`]). So:
//!
//! **Invariant C.** The cell of a slot is `Some` exactly while the slot is
//! `Idle`, `InUse` or `Reserved` (the creator fills it before leaving
//! `Connecting`; a vacater empties it before storing `Empty`), and it is
//! accessed only by the thread that owns the slot: the holder of its
//! [`Lease`] or [`Claim`]. Nobody owns an `Idle` slot, so nobody touches its
//! cell until a CAS out of `Idle` makes a new owner.
//!
//! Keeping the connection in place (as HikariCP's bag entries do) means a
//! checkout and a return copy no connection: a `rusqlite::Connection` or a
//! `postgres::Client` is a hundred bytes or more, which would otherwise move
//! twice per cycle.
//!
//! There is no `Closing` tag: a connection leaves its slot before it is closed,
//! so closing (which may block) never pins a slot. The pool frees the room at
//! once, as HikariCP does, and closes the connection off the caller's path.
//!
//! # Memory ordering
//!
//! Entering `Idle` is a `SeqCst` swap and leaving it an `Acquire`/`SeqCst`
//! CAS: the swap publishes the owner's writes to the connection to the next
//! owner, and `SeqCst` also orders it before the releaser's load of the
//! waiter count (the Dekker pair with a waiter that enqueues and then
//! re-scans the slots; see `pool/core.rs`).

// The crate denies `unsafe_code` everywhere else (the workspace `[lints]`
// table); this is the one module allowed it, and clippy's
// `undocumented_unsafe_blocks` makes every block carry its `// SAFETY:` line.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use crossbeam_utils::CachePadded;

use crate::clock::Nanos;
use crate::pool::CloseReason;
use std::backtrace::Backtrace;
use std::panic::Location;

// Slot *metadata* (timestamps, counters, the checkout site, the trace) uses
// plain std atomics on purpose: no decision about who owns a slot or its
// connection depends on it, so modelling it in loom would only multiply the
// schedules explored. The tag, the cell and the high-water mark go through
// the facade.
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64};

use crate::sync::{AtomicU8, AtomicUsize, Ordering, UnsafeCell};
use crate::telemetry::log;

/// The tag of a slot. Stored as a `u8` in an atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotState {
    /// No connection; may be claimed to create one.
    Empty = 0,
    /// Claimed by whoever is creating its connection.
    Connecting = 1,
    /// Holds a connection nobody uses.
    Idle = 2,
    /// Handed to exactly one lease (a guard, a waiter, or a hand-off in flight).
    InUse = 3,
    /// Taken by maintenance so it never races a borrower.
    Reserved = 4,
}

impl SlotState {
    fn from_u8(tag: u8) -> Self {
        match tag {
            0 => SlotState::Empty,
            1 => SlotState::Connecting,
            2 => SlotState::Idle,
            3 => SlotState::InUse,
            _ => SlotState::Reserved,
        }
    }
}

/// One slot: tag, connection cell, metadata. Padded to its own cache line(s)
/// so neighbours never false-share.
pub(crate) struct Slot<C> {
    state: AtomicU8,
    /// Invariant C: `Some` while `Idle`, `InUse` or `Reserved`; touched only
    /// by the slot's owner.
    conn: UnsafeCell<Option<C>>,
    /// When the current connection was opened (set by its creator).
    created_at: AtomicU64,
    /// When the slot was last checked out (relaxed; read by leak detection).
    checkout_at: AtomicU64,
    /// When the connection was last returned (relaxed; idle time).
    returned_at: AtomicU64,
    /// Checkouts served from this slot; written only by the slot's owner
    /// (release store: a leak check reads it before and after the others).
    checkouts: AtomicU64,
    /// When the current connection must retire (jittered lifetime); 0: never.
    expires_at: AtomicU64,
    /// The random draw that placed `expires_at` within the jitter band, kept
    /// so a new `max_lifetime` re-stamps the connection at the same place.
    lifetime_draw: AtomicU64,
    /// The lifetime epoch `expires_at` was computed under: when it differs
    /// from the pool's, the stamp predates a lifetime change.
    expiry_epoch: AtomicU64,
    /// Where the current checkout was made (a `&'static Location`), or null.
    checkout_site: AtomicPtr<Location<'static>>,
    /// The checkout number a leak was reported for (0: none).
    leak_reported: AtomicU64,
    /// When maintenance last validated the idle connection (keepalive).
    kept_alive_at: AtomicU64,
    /// When a sampled checkout began (precise clock).
    sampled_at: AtomicU64,
    /// The checkout number that may skip validation because the connection
    /// was validated just before it went idle (0: none). Compared
    /// with the number a checkout will get, so any checkout in between
    /// (which counts) ends the exemption without a store on the hot path.
    fresh_for: AtomicU64,
    /// When `fresh_for` was set; the exemption also ends with a grace period.
    fresh_at: AtomicU64,
    /// A backtrace of the current checkout, captured only while leak
    /// detection is on and `RUST_BACKTRACE` asks for backtraces.
    checkout_trace: Mutex<Option<Backtrace>>,
}

/// Proof that the holder owns slot `index` in state `InUse` or `Reserved`,
/// and so may use the connection in it ([`SlotArray::conn`]).
///
/// A lease is created only by a successful transition in this module, at most
/// one per slot at a time, and must be given back through
/// [`SlotArray::check_in`] or [`SlotArray::vacate`]; dropping it would leave
/// the slot owned forever. It holds no connection, so it is a word wide and
/// moves between threads (a hand-off) without copying one.
#[must_use = "a lease must be checked in or vacated, or its slot leaks"]
pub(crate) struct Lease<C> {
    index: u32,
    /// This checkout's hold time is being measured (`Slot::sampled_at`).
    pub(crate) sampled: bool,
    /// Just opened or just validated: the checkout need not validate it.
    pub(crate) validated: bool,
    /// Set by the guard: close the connection on return, for this reason.
    pub(crate) discard: Option<CloseReason>,
    /// The connection the lease gives access to. The lease holds none, but
    /// it is `Send` and `Sync` exactly as if it held one: a `&Lease` lets its
    /// holder reach `&C` through [`SlotArray::conn`], so sharing a lease
    /// between threads must need `C: Sync` (a `rusqlite::Connection` is
    /// `Send` but not `Sync`), and so must sharing a guard that holds one.
    _conn: PhantomData<C>,
}

impl<C> Lease<C> {
    #[inline(always)]
    fn new(index: u32, validated: bool) -> Self {
        Self {
            index,
            sampled: false,
            validated,
            discard: None,
            _conn: PhantomData,
        }
    }

    /// The slot this lease owns.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index as usize
    }

    /// Ends the lease without its drop check: the slot has just been given
    /// up by [`SlotArray::check_in`] or [`SlotArray::vacate`].
    #[inline(always)]
    fn end(self) -> u32 {
        let index = self.index;
        std::mem::forget(self);
        index
    }
}

impl<C> Drop for Lease<C> {
    /// A lease must be checked in or vacated; one dropped instead leaves its
    /// slot owned forever. That is a bug in the pool (every user call that
    /// could unwind through a lease runs in a panic boundary), and never
    /// silent: it is logged at `error` and fails debug builds (outside
    /// unwinding).
    fn drop(&mut self) {
        log!(
            error,
            slot = self.index,
            "a pool lease was dropped without being given back; its slot stays taken"
        );
        if !std::thread::panicking() {
            debug_assert!(false, "lease of slot {} dropped", self.index);
        }
    }
}

/// Proof that the holder owns slot `index` in state `Connecting`.
#[must_use = "a claim must be filled or abandoned, or its slot leaks"]
pub(crate) struct Claim {
    index: u32,
}

/// What a leak check found.
pub(crate) struct LeakReport {
    pub(crate) index: usize,
    pub(crate) held: Nanos,
    pub(crate) site: Option<&'static Location<'static>>,
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // only logged
    pub(crate) trace: Option<String>,
}

/// Times and counts of one slot's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotMeta {
    pub(crate) created_at: Nanos,
    pub(crate) returned_at: Nanos,
    pub(crate) expiry: Expiry,
    pub(crate) kept_alive_at: Nanos,
    pub(crate) checkouts: u64,
}

/// A connection's retirement stamp: when it must retire (0: never), the
/// random draw that placed that time within the jitter band, and the
/// pool's lifetime epoch it was computed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    pub(crate) at: Nanos,
    pub(crate) draw: u64,
    pub(crate) epoch: u64,
}

/// A fixed-capacity array of slots.
pub(crate) struct SlotArray<C> {
    slots: Box<[CachePadded<Slot<C>>]>,
    /// One past the highest slot ever claimed: scans stop here.
    high_water: AtomicUsize,
}

// SAFETY: the array hands each connection to one thread at a time (Invariant
// C); a connection only ever moves between threads, never is shared, so
// `C: Send` suffices for the array to be `Sync`.
unsafe impl<C: Send> Sync for SlotArray<C> {}
// SAFETY: as above; the array owns its connections.
unsafe impl<C: Send> Send for SlotArray<C> {}

impl<C> Slot<C> {
    /// Stores a retirement stamp; called only by the slot's owner.
    fn store_expiry(&self, expiry: Expiry) {
        self.expires_at.store(expiry.at, Ordering::Relaxed);
        self.lifetime_draw.store(expiry.draw, Ordering::Relaxed);
        self.expiry_epoch.store(expiry.epoch, Ordering::Relaxed);
    }
}

impl<C> SlotArray<C> {
    /// An array of `capacity` empty slots (`capacity` <= `u32::MAX`).
    pub(crate) fn new(capacity: usize) -> Self {
        let slots = (0..capacity)
            .map(|_| {
                CachePadded::new(Slot {
                    state: AtomicU8::new(SlotState::Empty as u8),
                    conn: UnsafeCell::new(None),
                    created_at: AtomicU64::new(0),
                    checkout_at: AtomicU64::new(0),
                    returned_at: AtomicU64::new(0),
                    checkouts: AtomicU64::new(0),
                    expires_at: AtomicU64::new(0),
                    lifetime_draw: AtomicU64::new(0),
                    expiry_epoch: AtomicU64::new(0),
                    checkout_site: AtomicPtr::new(std::ptr::null_mut()),
                    leak_reported: AtomicU64::new(0),
                    kept_alive_at: AtomicU64::new(0),
                    sampled_at: AtomicU64::new(0),
                    fresh_for: AtomicU64::new(0),
                    fresh_at: AtomicU64::new(0),
                    checkout_trace: Mutex::new(None),
                })
            })
            .collect();
        Self {
            slots,
            high_water: AtomicUsize::new(0),
        }
    }

    /// The slot a lease owns, without a bounds check: a lease is only ever
    /// made for an index below the capacity (`try_take`, `fill`).
    #[inline(always)]
    fn leased(&self, lease: &Lease<C>) -> &Slot<C> {
        debug_assert!(lease.index() < self.slots.len());
        // SAFETY: leases are created only by `try_take` (index checked by
        // `self.slots[index]` there) and `fill` (index from `claim_empty`,
        // which enumerates the slice), so `lease.index() < self.slots.len()`.
        unsafe { self.slots.get_unchecked(lease.index()) }
    }

    /// The number of slots.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// One past the highest slot that ever held a connection.
    #[inline(always)]
    pub(crate) fn high_water(&self) -> usize {
        self.high_water.load(Ordering::Acquire)
    }

    /// The current tag of slot `index` (a snapshot).
    #[inline]
    pub(crate) fn state(&self, index: usize) -> SlotState {
        SlotState::from_u8(self.slots[index].state.load(Ordering::SeqCst))
    }

    /// The leased connection, in its slot.
    #[inline(always)]
    pub(crate) fn conn<'a>(&'a self, lease: &'a Lease<C>) -> &'a C {
        let slot = self.leased(lease);
        // SAFETY: the lease proves we own the slot (`InUse` or `Reserved`),
        // so by Invariant C its cell is `Some` (hence `unwrap_unchecked`) and
        // nobody else touches it while the lease lives; the shared borrow of
        // the lease keeps `conn_mut` and `check_in`/`vacate` (which need the
        // lease itself) from running while this reference lives.
        slot.conn.with_mut(|cell| unsafe {
            debug_assert!((*cell).is_some(), "Invariant C");
            (*cell).as_ref().unwrap_unchecked()
        })
    }

    /// The leased connection, in its slot, mutably.
    #[inline(always)]
    pub(crate) fn conn_mut<'a>(&'a self, lease: &'a mut Lease<C>) -> &'a mut C {
        let slot = self.leased(lease);
        // SAFETY: as for `conn`; the exclusive borrow of the one lease of
        // this slot makes this the only reference to the connection.
        slot.conn.with_mut(|cell| unsafe {
            debug_assert!((*cell).is_some(), "Invariant C");
            (*cell).as_mut().unwrap_unchecked()
        })
    }

    /// Tries `Idle → InUse` on slot `index`: a lease on its connection.
    #[inline(always)]
    pub(crate) fn try_checkout(&self, index: usize) -> Option<Lease<C>> {
        self.try_take(index, SlotState::InUse)
    }

    /// Tries `Idle → Reserved` on slot `index` (maintenance, close).
    pub(crate) fn try_reserve(&self, index: usize) -> Option<Lease<C>> {
        self.try_take(index, SlotState::Reserved)
    }

    #[inline(always)]
    fn try_take(&self, index: usize, to: SlotState) -> Option<Lease<C>> {
        let slot = &self.slots[index];
        // A load first, so a busy slot costs no cache-line ownership. It must
        // be `SeqCst`: it is the "read" half of both Dekker pairs (a waiter's
        // re-scan, close's scan). loom found that a `Relaxed` load here may
        // miss a connection swapped to `Idle` before the releaser saw the
        // waiter, losing the wake-up. On x86 both compile to a plain `mov`.
        if slot.state.load(Ordering::SeqCst) != SlotState::Idle as u8 {
            return None;
        }
        slot.state
            .compare_exchange(
                SlotState::Idle as u8,
                to as u8,
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .ok()?;
        // Our CAS moved the slot out of `Idle`: we are its only owner, and
        // the `SeqCst` success ordering acquired the previous owner's writes
        // to the connection (its swap into `Idle`).
        Some(Lease::new(index as u32, false))
    }

    /// Ends the lease and marks the slot `Idle`, its connection in place (a
    /// `SeqCst` swap: it publishes the holder's writes to the connection and
    /// orders before the caller's next load of the waiter count). Returns the
    /// slot index.
    #[inline(always)]
    pub(crate) fn check_in(&self, lease: Lease<C>) -> usize {
        self.leased(&lease)
            .state
            .swap(SlotState::Idle as u8, Ordering::SeqCst);
        lease.end() as usize
    }

    /// Ends a lease without returning its connection: the connection is
    /// taken out and given to the caller (to close it), then the slot becomes
    /// `Empty`.
    pub(crate) fn vacate(&self, lease: Lease<C>) -> C {
        let slot = self.leased(&lease);
        // SAFETY: the lease proves we own the slot, so by Invariant C nobody
        // else touches the cell; it is emptied before the `Empty` store below
        // lets a creator claim the slot and fill it.
        let conn = slot.conn.with_mut(|cell| unsafe { (*cell).take() });
        slot.state.store(SlotState::Empty as u8, Ordering::SeqCst);
        lease.end();
        match conn {
            Some(conn) => conn,
            None => unreachable!("Invariant C: an owned slot holds a connection"),
        }
    }

    /// Claims an `Empty` slot (`Empty → Connecting`), lowest index first so
    /// connections stay packed below the high-water mark.
    pub(crate) fn claim_empty(&self) -> Option<Claim> {
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.state.load(Ordering::Relaxed) == SlotState::Empty as u8
                && slot
                    .state
                    .compare_exchange(
                        SlotState::Empty as u8,
                        SlotState::Connecting as u8,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                self.high_water.fetch_max(index + 1, Ordering::AcqRel);
                return Some(Claim {
                    index: index as u32,
                });
            }
        }
        None
    }

    /// Gives up a claim: `Connecting → Empty`.
    pub(crate) fn abandon(&self, claim: Claim) {
        self.slots[claim.index as usize]
            .state
            .store(SlotState::Empty as u8, Ordering::SeqCst);
    }

    /// Turns a claim into a lease on its new connection: `Connecting → InUse`.
    pub(crate) fn fill(&self, claim: Claim, conn: C, now: Nanos, expiry: Expiry) -> Lease<C> {
        let slot = &self.slots[claim.index as usize];
        // SAFETY: the claim proves we own the slot (`Connecting`), so nobody
        // else touches the cell; the `InUse` store below publishes it.
        slot.conn.with_mut(|cell| unsafe { *cell = Some(conn) });
        // At least 1: the return path's eviction test compares against an
        // `evict_before` of 0 ("none") without testing for it.
        slot.created_at.store(now.max(1), Ordering::Relaxed);
        slot.store_expiry(expiry);
        slot.kept_alive_at.store(now, Ordering::Relaxed);
        slot.checkout_at.store(now, Ordering::Relaxed);
        slot.returned_at.store(now, Ordering::Relaxed);
        slot.state.store(SlotState::InUse as u8, Ordering::SeqCst);
        Lease::new(claim.index, true)
    }

    /// Puts a connection that left its slot for a check back into a slot
    /// (`Connecting → InUse`), with the times it had: `meta` from
    /// [`meta`](Self::meta) before it left.
    pub(crate) fn refill(&self, claim: Claim, conn: C, meta: &SlotMeta, now: Nanos) -> Lease<C> {
        let slot = &self.slots[claim.index as usize];
        // SAFETY: the claim proves we own the slot (`Connecting`), so nobody
        // else touches the cell (Invariant C); the `InUse` store below
        // publishes it.
        slot.conn.with_mut(|cell| unsafe { *cell = Some(conn) });
        slot.created_at
            .store(meta.created_at.max(1), Ordering::Relaxed);
        slot.store_expiry(meta.expiry);
        slot.kept_alive_at
            .store(meta.kept_alive_at, Ordering::Relaxed);
        slot.checkout_at.store(now, Ordering::Relaxed);
        slot.returned_at.store(meta.returned_at, Ordering::Relaxed);
        slot.state.store(SlotState::InUse as u8, Ordering::SeqCst);
        Lease::new(claim.index, false)
    }

    /// Marks the leased connection as just validated at `now`:
    /// the next checkout (whoever makes it) need not validate it again if it
    /// comes soon enough. Called before the lease is checked in.
    pub(crate) fn mark_fresh(&self, lease: &Lease<C>, now: Nanos) {
        let slot = self.leased(lease);
        let next = slot.checkouts.load(Ordering::Relaxed) + 1;
        slot.fresh_at.store(now, Ordering::Relaxed);
        slot.fresh_for.store(next, Ordering::Relaxed);
    }

    /// Whether the leased connection's coming checkout, at `now`, may skip
    /// validation: it is the first checkout since
    /// [`mark_fresh`](Self::mark_fresh), within `grace` of it.
    pub(crate) fn is_fresh(&self, lease: &Lease<C>, now: Nanos, grace: Nanos) -> bool {
        let slot = self.leased(lease);
        slot.fresh_for.load(Ordering::Relaxed) == slot.checkouts.load(Ordering::Relaxed) + 1
            && now.saturating_sub(slot.fresh_at.load(Ordering::Relaxed)) < grace
    }

    /// When the leased connection was last returned (or opened): how long
    /// it has sat idle, without stamping a checkout.
    pub(crate) fn returned_at(&self, lease: &Lease<C>) -> Nanos {
        self.leased(lease).returned_at.load(Ordering::Relaxed)
    }

    /// Records a checkout attempt at `now`. Returns when the connection was
    /// last returned (or created), so the caller can tell how long it sat
    /// idle, and the number this checkout will have once it is final (see
    /// [`count_checkout`](Self::count_checkout)).
    #[inline(always)]
    pub(crate) fn stamp_checkout(&self, lease: &Lease<C>, now: Nanos) -> (Nanos, u64) {
        let slot = self.leased(lease);
        slot.checkout_at.store(now, Ordering::Relaxed);
        (
            slot.returned_at.load(Ordering::Relaxed),
            slot.checkouts.load(Ordering::Relaxed) + 1,
        )
    }

    /// Counts a final checkout as number `count` (from `stamp_checkout`; a
    /// validation that sent the connection away is not a checkout). Only the
    /// lease holder writes the counter, so counting is a store on a line it
    /// already owns, not a read-modify-write.
    #[inline(always)]
    pub(crate) fn count_checkout(&self, lease: &Lease<C>, count: u64) {
        self.leased(lease).checkouts.store(count, Ordering::Release);
    }

    /// When the leased connection must retire (0: never), when it was
    /// opened and the lifetime epoch of its stamp: what a return checks, in
    /// one slot lookup.
    #[inline(always)]
    pub(crate) fn lifetime(&self, lease: &Lease<C>) -> (Nanos, Nanos, u64) {
        let slot = self.leased(lease);
        (
            slot.expires_at.load(Ordering::Relaxed),
            slot.created_at.load(Ordering::Relaxed),
            slot.expiry_epoch.load(Ordering::Relaxed),
        )
    }

    /// Re-stamps the leased connection's retirement (after a lifetime
    /// change). Only the lease holder writes the stamp.
    pub(crate) fn stamp_expiry(&self, lease: &Lease<C>, expiry: Expiry) {
        self.leased(lease).store_expiry(expiry);
    }

    /// [`check_in`](Self::check_in), first recording that the connection
    /// came back at `now`.
    #[inline(always)]
    pub(crate) fn check_in_at(&self, lease: Lease<C>, now: Nanos) -> usize {
        self.leased(&lease)
            .returned_at
            .store(now, Ordering::Relaxed);
        self.check_in(lease)
    }

    /// Records that the leased connection came back (or was created) at `now`.
    #[inline(always)]
    pub(crate) fn stamp_returned(&self, lease: &Lease<C>, now: Nanos) {
        self.leased(lease).returned_at.store(now, Ordering::Relaxed);
    }

    /// Starts measuring the hold time of the leased checkout.
    pub(crate) fn start_sample(&self, lease: &mut Lease<C>, now: Nanos) {
        self.leased(lease).sampled_at.store(now, Ordering::Relaxed);
        lease.sampled = true;
    }

    /// When the leased checkout's measured hold began.
    pub(crate) fn sample_start(&self, lease: &Lease<C>) -> Nanos {
        self.leased(lease).sampled_at.load(Ordering::Relaxed)
    }

    /// Records where the current checkout was made.
    #[inline(always)]
    pub(crate) fn stamp_site(&self, lease: &Lease<C>, site: &'static Location<'static>) {
        self.leased(lease)
            .checkout_site
            .store(std::ptr::from_ref(site).cast_mut(), Ordering::Relaxed);
    }

    /// Stores (or clears) the backtrace of the current checkout.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // only logged
    pub(crate) fn set_trace(&self, lease: &Lease<C>, trace: Option<Backtrace>) {
        *self
            .leased(lease)
            .checkout_trace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = trace;
    }

    /// A leak check of slot `index` at `now`: if it has been checked out
    /// longer than `threshold` and this checkout was not reported yet, marks
    /// it reported and returns what to report.
    pub(crate) fn check_leak(
        &self,
        index: usize,
        now: Nanos,
        threshold: Nanos,
    ) -> Option<LeakReport> {
        let slot = &self.slots[index];
        let before = slot.checkouts.load(Ordering::Acquire);
        if self.state(index) != SlotState::InUse || before == 0 {
            return None;
        }
        let checkout_at = slot.checkout_at.load(Ordering::Relaxed);
        let site = slot.checkout_site.load(Ordering::Relaxed);
        let trace = slot
            .checkout_trace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|trace| trace.to_string());
        // The same checkout throughout (seqlock-style re-read)?
        if slot.checkouts.load(Ordering::Acquire) != before || self.state(index) != SlotState::InUse
        {
            return None;
        }
        let held = now.saturating_sub(checkout_at);
        if held < threshold || slot.leak_reported.load(Ordering::Relaxed) == before {
            return None;
        }
        slot.leak_reported.store(before, Ordering::Relaxed);
        // SAFETY: `checkout_site` is only ever stored from a
        // `&'static Location<'static>` (`stamp_site`) or null, so a non-null
        // pointer is valid for the whole program and never mutated.
        let site = unsafe { site.as_ref() };
        Some(LeakReport {
            index,
            held,
            site,
            trace,
        })
    }

    /// Whether a leak was reported for the lease's checkout.
    #[inline(always)]
    pub(crate) fn leak_was_reported(&self, lease: &Lease<C>) -> bool {
        let slot = &self.leased(lease);
        // The slot is owned, so its checkout count is this checkout's number.
        let reported = slot.leak_reported.load(Ordering::Relaxed);
        reported != 0 && reported == slot.checkouts.load(Ordering::Relaxed)
    }

    /// Metadata of the leased connection, for `retain` and maintenance.
    pub(crate) fn meta(&self, lease: &Lease<C>) -> SlotMeta {
        let slot = &self.leased(lease);
        SlotMeta {
            created_at: slot.created_at.load(Ordering::Relaxed),
            returned_at: slot.returned_at.load(Ordering::Relaxed),
            expiry: Expiry {
                at: slot.expires_at.load(Ordering::Relaxed),
                draw: slot.lifetime_draw.load(Ordering::Relaxed),
                epoch: slot.expiry_epoch.load(Ordering::Relaxed),
            },
            kept_alive_at: slot.kept_alive_at.load(Ordering::Relaxed),
            checkouts: slot.checkouts.load(Ordering::Relaxed),
        }
    }

    /// Records a successful keepalive check of the leased connection.
    pub(crate) fn stamp_kept_alive(&self, lease: &Lease<C>, now: Nanos) {
        self.leased(lease)
            .kept_alive_at
            .store(now, Ordering::Relaxed);
    }

    /// Checkouts served from every slot (for statistics).
    pub(crate) fn total_checkouts(&self) -> u64 {
        self.slots
            .iter()
            .map(|slot| slot.checkouts.load(Ordering::Relaxed))
            .sum()
    }

    /// When slot `index` was last checked out (for leak detection).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // only logged
    pub(crate) fn checkout_at(&self, index: usize) -> Nanos {
        self.slots[index].checkout_at.load(Ordering::Relaxed)
    }
}

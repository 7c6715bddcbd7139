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
//! holds the slot's [`Lease`] or [`Claim`]. The connection cell is written only
//! on entering `Idle` and read only on leaving it, each time by the thread that
//! owns the slot, so:
//!
//! **Invariant C.** The cell of a slot is `Some` exactly while the slot is
//! `Idle` (or while its owner moves the connection in or out), and it is
//! accessed only by the thread that owns the slot: the winner of the CAS out of
//! `Idle`, or the lease holder on the way into `Idle`.
//!
//! There is no `Closing` tag: a connection leaves its slot before it is closed,
//! so closing (which may block) never pins a slot. The pool frees the room at
//! once, as HikariCP does, and closes the connection off the caller's path.
//!
//! # Memory ordering
//!
//! Entering `Idle` is a `SeqCst` swap and leaving it an `Acquire`/`SeqCst`
//! CAS: the swap publishes the cell write to the next owner, and `SeqCst` also
//! orders it before the releaser's load of the waiter count (the Dekker pair
//! with a waiter that enqueues and then re-scans the slots; see `pool.rs`).

use crossbeam::utils::CachePadded;

use crate::clock::Nanos;
use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering, UnsafeCell};

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
    /// Invariant C: `Some` only while `Idle`; touched only by the owner.
    conn: UnsafeCell<Option<C>>,
    /// When the current connection was opened (set by its creator).
    created_at: AtomicU64,
    /// When the slot was last checked out (relaxed; read by leak detection).
    checkout_at: AtomicU64,
    /// When the connection was last returned (relaxed; idle time).
    returned_at: AtomicU64,
    /// Bumped each time a new connection enters the slot.
    generation: AtomicU64,
}

/// Proof that the holder owns slot `index` in state `InUse` or `Reserved`,
/// together with the connection taken out of it.
///
/// A lease is created only by a successful transition in this module and must
/// be given back through [`SlotArray::check_in`] or [`SlotArray::vacate`];
/// dropping it would leave the slot owned forever.
#[must_use = "a lease must be checked in or vacated, or its slot leaks"]
pub(crate) struct Lease<C> {
    index: u32,
    pub(crate) conn: C,
}

impl<C> Lease<C> {
    /// The slot this lease owns.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index as usize
    }
}

/// Proof that the holder owns slot `index` in state `Connecting`.
#[must_use = "a claim must be filled or abandoned, or its slot leaks"]
pub(crate) struct Claim {
    index: u32,
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
                    generation: AtomicU64::new(0),
                })
            })
            .collect();
        Self {
            slots,
            high_water: AtomicUsize::new(0),
        }
    }

    /// The number of slots.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// One past the highest slot that ever held a connection.
    #[inline]
    pub(crate) fn high_water(&self) -> usize {
        self.high_water.load(Ordering::Acquire)
    }

    /// The current tag of slot `index` (a snapshot).
    #[inline]
    pub(crate) fn state(&self, index: usize) -> SlotState {
        SlotState::from_u8(self.slots[index].state.load(Ordering::SeqCst))
    }

    /// Tries `Idle → InUse` on slot `index` and takes its connection.
    #[inline]
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
        // SAFETY: our CAS moved the slot out of `Idle`, so by Invariant C we
        // are its only owner; the `SeqCst` success ordering acquires the
        // previous owner's write of the cell (its swap into `Idle`).
        let conn = slot.conn.with_mut(|cell| unsafe { (*cell).take() });
        let Some(conn) = conn else {
            unreachable!("Invariant C: an Idle slot always holds a connection")
        };
        Some(Lease {
            index: index as u32,
            conn,
        })
    }

    /// Puts the lease's connection back and marks the slot `Idle` (a `SeqCst`
    /// swap: it publishes the cell and orders before the caller's next load of
    /// the waiter count). Returns the slot index.
    #[inline(always)]
    pub(crate) fn check_in(&self, lease: Lease<C>) -> usize {
        let Lease { index, conn } = lease;
        let slot = &self.slots[index as usize];
        // SAFETY: the lease proves we own the slot (`InUse` or `Reserved`), so
        // by Invariant C nobody else touches the cell until our swap below.
        slot.conn.with_mut(|cell| unsafe { *cell = Some(conn) });
        slot.state.swap(SlotState::Idle as u8, Ordering::SeqCst);
        index as usize
    }

    /// Ends a lease without returning its connection: the slot becomes
    /// `Empty` and the connection is given to the caller (to close it).
    pub(crate) fn vacate(&self, lease: Lease<C>) -> C {
        let Lease { index, conn } = lease;
        self.slots[index as usize]
            .state
            .store(SlotState::Empty as u8, Ordering::SeqCst);
        conn
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
    pub(crate) fn fill(&self, claim: Claim, conn: C, now: Nanos) -> Lease<C> {
        let slot = &self.slots[claim.index as usize];
        slot.created_at.store(now, Ordering::Relaxed);
        slot.checkout_at.store(now, Ordering::Relaxed);
        slot.returned_at.store(now, Ordering::Relaxed);
        slot.generation.fetch_add(1, Ordering::Relaxed);
        slot.state.store(SlotState::InUse as u8, Ordering::SeqCst);
        Lease {
            index: claim.index,
            conn,
        }
    }

    /// Records a checkout at `now`; returns when the connection was last
    /// returned (or created), so the caller can tell how long it sat idle.
    #[inline(always)]
    pub(crate) fn stamp_checkout(&self, lease: &Lease<C>, now: Nanos) -> Nanos {
        let slot = &self.slots[lease.index()];
        slot.checkout_at.store(now, Ordering::Relaxed);
        slot.returned_at.load(Ordering::Relaxed)
    }

    /// Records that the leased connection came back (or was created) at `now`.
    #[inline(always)]
    pub(crate) fn stamp_returned(&self, lease: &Lease<C>, now: Nanos) {
        self.slots[lease.index()]
            .returned_at
            .store(now, Ordering::Relaxed);
    }

    /// When slot `index` was last checked out (for leak detection).
    #[allow(dead_code)]
    pub(crate) fn checkout_at(&self, index: usize) -> Nanos {
        self.slots[index].checkout_at.load(Ordering::Relaxed)
    }

    /// When the leased connection was last returned.
    #[allow(dead_code)]
    pub(crate) fn returned_at(&self, lease: &Lease<C>) -> Nanos {
        self.slots[lease.index()].returned_at.load(Ordering::Relaxed)
    }

    /// The generation of the connection in slot `index`.
    #[allow(dead_code)]
    pub(crate) fn generation(&self, index: usize) -> u64 {
        self.slots[index].generation.load(Ordering::Relaxed)
    }
}

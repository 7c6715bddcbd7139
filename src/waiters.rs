//! The FIFO queue of callers waiting for a connection: direct hand-off, and
//! rousing a waiter to look for itself.
//!
//! Owns: the waiter queue, each waiter's node, the *signal word* (waiter
//! count and the closed bit) that the release path loads, and the age of the
//! oldest waiter. It may not touch slots directly: it moves [`Lease`]s, which
//! the slot array created, and decides nothing about policy (when to hand
//! off and when to let a returned connection go idle is `pool/release.rs`).
//!
//! # Two ways to serve a waiter
//!
//! * [`hand_off`](Waiters::hand_off) gives a connection to the oldest waiter
//!   and wakes it: strictly first come, first served, at the price of one
//!   wake-up and one scheduling delay during which the connection is idle
//!   but nobody else may take it.
//! * [`rouse`](Waiters::rouse) wakes the oldest waiter without giving it
//!   anything: the connection was put back `Idle`, and whoever scans first
//!   (a running caller, or the roused waiter) takes it. The roused waiter
//!   rescans once; if a running caller was faster it waits on, still at its
//!   place in the queue.
//!
//! At most one waiter is roused at a time (Go's `sync.Mutex` keeps the same
//! "woken" bit): while it has not rescanned, further put-backs wake nobody,
//! since its rescan will see them. That keeps a burst of returns from waking
//! a crowd of waiters that mostly find nothing. The rules that keep a
//! wake-up from being lost:
//!
//! * A put-back that finds the roused bit set relies on the roused waiter's
//!   rescan, which starts by clearing the bit (Dekker: the put-back stores
//!   `Idle` then loads the bit; the waiter clears the bit then scans).
//! * A roused waiter whose rescan took a connection passes the rousal on if
//!   another connection is idle ([`Waiters::rouse`] again, by the caller).
//! * A roused waiter that leaves without rescanning (handed a connection,
//!   cancelled) passes the rousal to the next waiter here.
//!
//! # Why a mutex here
//!
//! The hot path never takes this lock: a release loads the signal word and
//! finds no waiters. The queue is touched only when somebody waits, and then a
//! park/unpark (a few microseconds) dwarfs an uncontended lock (about 20 ns).
//! A lock-free intrusive queue would save that 20 ns at the price of unsafe
//! node lifetimes shared with async cancellation; we judged the trade not
//! worth it. Each node's state sits behind its own small mutex so that a
//! hand-off and a timeout or cancellation are one linearisable step: the node
//! is either `Handed` (the waiter must take the lease) or `Cancelled` (the
//! hander keeps it), never both and never neither.
//!
//! Lock order: queue, then node. [`Waiters::cancel`] releases the node lock
//! before taking the queue lock.

use std::collections::VecDeque;
use std::task::Waker;

use crate::slot::Lease;
use crate::sync::{self, Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, thread::Thread};

/// Low bit of the signal word: the pool is closed.
const CLOSED: usize = 1;
/// The waiter count is stored above the closed bit.
const ONE_WAITER: usize = 2;

/// A snapshot of the signal word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signal(usize);

impl Signal {
    /// Nobody waits and the pool is open: the release fast path.
    #[inline(always)]
    pub(crate) fn is_quiet(self) -> bool {
        self.0 == 0
    }

    #[inline(always)]
    pub(crate) fn closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    #[inline(always)]
    pub(crate) fn waiting(self) -> usize {
        self.0 / ONE_WAITER
    }
}

/// How a waiter is woken: a parked thread, or an async task's waker.
/// Sync and async callers share one queue and one hand-off.
pub(crate) enum Notifier {
    Thread(Thread),
    Waker(Waker),
}

impl Notifier {
    fn notify(self) {
        match self {
            Notifier::Thread(thread) => thread.unpark(),
            Notifier::Waker(waker) => waker.wake(),
        }
    }
}

impl Notifier {
    /// Wakes the waiter and keeps the notifier (a rousal leaves the node
    /// waiting).
    fn notify_ref(&self) {
        match self {
            Notifier::Thread(thread) => thread.unpark(),
            Notifier::Waker(waker) => waker.wake_by_ref(),
        }
    }
}

enum NodeState<C> {
    /// Waiting; `roused`: woken to rescan the slots, not yet done so.
    Waiting {
        notifier: Notifier,
        roused: bool,
    },
    Handed(Lease<C>),
    Cancelled,
    Closed,
    /// Connecting failed for good (a permanent error, or fail-fast).
    Rejected,
}

/// One waiting caller.
pub(crate) struct WaitNode<C> {
    state: Mutex<NodeState<C>>,
    /// When it joined the queue (the pool's clock).
    since: u64,
}

/// What a waiter learns when it looks at its node.
pub(crate) enum Outcome<C> {
    /// A connection was handed to it.
    Handed(Lease<C>),
    /// The pool closed while it waited.
    Closed,
    /// Still waiting (only from [`Waiters::poll`]).
    Waiting,
    /// Still waiting, and roused: it must rescan the slots once (only from
    /// [`Waiters::poll`], which clears the rousal).
    Roused,
    /// It withdrew before anything was handed to it (only from `cancel`).
    Cancelled,
    /// Connecting is failing for good: end with the connect error.
    Rejected,
}

/// Why an enqueue was refused.
pub(crate) enum Refused {
    Closed,
    TooManyWaiters,
}

/// The waiter queue and the signal word.
pub(crate) struct Waiters<C> {
    signal: crossbeam_utils::CachePadded<AtomicUsize>,
    /// When the oldest waiter joined (0: nobody waits). Written under the
    /// queue lock, read without it: a release uses it to choose between
    /// hand-off and rousing, a policy that a stale value only delays.
    oldest_since: AtomicU64,
    /// A waiter is roused and has not yet begun its rescan. Set under the
    /// queue lock; cleared by the roused waiter before it rescans, or under
    /// the queue lock when it leaves without rescanning.
    ///
    /// Every write is a `swap`, even a plain clear: as a read-modify-write it
    /// lands after every earlier write in the flag's modification order.
    /// (A `SeqCst` store would too, but loom models modification order as
    /// partial: a clear by the roused waiter stayed unordered with a
    /// concurrent set, and its own next load could read the set, a
    /// deadlock that only loom sees. `two_returns_race_one_roused_waiter`.)
    roused: AtomicBool,
    queue: Mutex<VecDeque<Arc<WaitNode<C>>>>,
}

impl<C> Waiters<C> {
    pub(crate) fn new() -> Self {
        Self {
            signal: crossbeam_utils::CachePadded::new(AtomicUsize::new(0)),
            oldest_since: AtomicU64::new(0),
            roused: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Loads the signal word (`SeqCst`: the second half of the Dekker pair
    /// with a waiter's enqueue-then-rescan; see `pool.rs`).
    #[inline(always)]
    pub(crate) fn signal(&self) -> Signal {
        Signal(self.signal.load(Ordering::SeqCst))
    }

    /// When the oldest waiter joined the queue, if anybody waits (may be
    /// momentarily stale: see `oldest_since`).
    pub(crate) fn oldest_since(&self) -> Option<u64> {
        match self.oldest_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(since),
        }
    }

    /// Records the new front's age; called with the queue locked.
    fn update_oldest(&self, queue: &VecDeque<Arc<WaitNode<C>>>) {
        let since = queue.front().map_or(0, |node| node.since.max(1));
        self.oldest_since.store(since, Ordering::Relaxed);
    }

    /// Joins the back of the queue at time `now`. `max_waiters == 0` means
    /// no limit.
    pub(crate) fn enqueue(
        &self,
        notifier: Notifier,
        max_waiters: usize,
        now: u64,
    ) -> Result<Arc<WaitNode<C>>, Refused> {
        let mut queue = sync::lock(&self.queue);
        // Checked under the queue lock: `close` sets the bit and then drains
        // under this lock, so no node can slip in after the drain.
        let signal = self.signal();
        if signal.closed() {
            return Err(Refused::Closed);
        }
        if max_waiters != 0 && signal.waiting() >= max_waiters {
            return Err(Refused::TooManyWaiters);
        }
        let node = Arc::new(WaitNode {
            state: Mutex::new(NodeState::Waiting {
                notifier,
                roused: false,
            }),
            since: now,
        });
        queue.push_back(node.clone());
        if queue.len() == 1 {
            self.update_oldest(&queue);
        }
        self.signal.fetch_add(ONE_WAITER, Ordering::SeqCst);
        Ok(node)
    }

    /// Hands `lease` to the oldest waiter still waiting and wakes it. Gives
    /// the lease back when nobody waits (cancelled nodes are skipped).
    pub(crate) fn hand_off(&self, lease: Lease<C>) -> Result<(), Lease<C>> {
        let mut queue = sync::lock(&self.queue);
        while let Some(node) = queue.pop_front() {
            self.signal.fetch_sub(ONE_WAITER, Ordering::SeqCst);
            let mut state = sync::lock(&node.state);
            if !matches!(*state, NodeState::Waiting { .. }) {
                // Cancelled at the same instant: its owner no longer wants one.
                continue;
            }
            let previous = std::mem::replace(&mut *state, NodeState::Handed(lease));
            drop(state);
            if let NodeState::Waiting { notifier, roused } = previous {
                if roused {
                    // It will take this lease and not rescan: its rousal
                    // (for a connection put back idle) passes on.
                    self.pass_rousal_locked(&queue);
                }
                self.update_oldest(&queue);
                drop(queue);
                notifier.notify();
            }
            return Ok(());
        }
        self.update_oldest(&queue);
        Err(lease)
    }

    /// Rouses the oldest waiter, unless one is roused already (its rescan
    /// will see what the caller put back): it rescans the slots once. Called
    /// after a connection was put back `Idle` while somebody waited, and
    /// `SeqCst` after that store (the caller's Dekker fence).
    pub(crate) fn rouse(&self) {
        if self.roused.load(Ordering::SeqCst) {
            return;
        }
        let queue = sync::lock(&self.queue);
        self.rouse_locked(&queue);
    }

    /// [`rouse`](Self::rouse) with the queue locked.
    fn rouse_locked(&self, queue: &VecDeque<Arc<WaitNode<C>>>) {
        if self.roused.swap(true, Ordering::SeqCst) {
            return;
        }
        for node in queue {
            let mut state = sync::lock(&node.state);
            if let NodeState::Waiting { notifier, roused } = &mut *state {
                *roused = true;
                notifier.notify_ref();
                return;
            }
        }
        // Nobody left to rouse.
        self.roused.swap(false, Ordering::SeqCst);
    }

    /// A roused waiter leaves without rescanning: the rousal passes to the
    /// next waiter. Called with the queue locked.
    fn pass_rousal_locked(&self, queue: &VecDeque<Arc<WaitNode<C>>>) {
        self.roused.swap(false, Ordering::SeqCst);
        self.rouse_locked(queue);
    }

    /// Looks at the node: takes a handed lease, or reports closed/waiting.
    /// [`Outcome::Roused`]: the rousal is over (the roused bit cleared); the
    /// caller must rescan the slots now, after a `SeqCst` fence.
    pub(crate) fn poll(&self, node: &WaitNode<C>) -> Outcome<C> {
        let outcome = self.poll_locked(node);
        if let Outcome::Roused = outcome {
            self.roused.swap(false, Ordering::SeqCst);
        }
        outcome
    }

    fn poll_locked(&self, node: &WaitNode<C>) -> Outcome<C> {
        let mut state = sync::lock(&node.state);
        match std::mem::replace(&mut *state, NodeState::Cancelled) {
            NodeState::Handed(lease) => Outcome::Handed(lease),
            NodeState::Closed => {
                *state = NodeState::Closed;
                Outcome::Closed
            }
            NodeState::Cancelled => Outcome::Cancelled,
            NodeState::Rejected => {
                *state = NodeState::Rejected;
                Outcome::Rejected
            }
            NodeState::Waiting { notifier, roused } => {
                // A rousal is answered by the rescan the caller makes now.
                *state = NodeState::Waiting {
                    notifier,
                    roused: false,
                };
                if roused {
                    Outcome::Roused
                } else {
                    Outcome::Waiting
                }
            }
        }
    }

    /// Gives a still-waiting node a new waker (an async task re-polled with
    /// a different one).
    pub(crate) fn renotify(&self, node: &WaitNode<C>, waker: &Waker) {
        let mut state = sync::lock(&node.state);
        if let NodeState::Waiting {
            notifier: Notifier::Waker(current),
            ..
        } = &mut *state
        {
            if !current.will_wake(waker) {
                current.clone_from(waker);
            }
        }
    }

    /// Whether the node still waits (nothing handed, not closed or rejected).
    pub(crate) fn is_waiting(&self, node: &WaitNode<C>) -> bool {
        matches!(*sync::lock(&node.state), NodeState::Waiting { .. })
    }

    /// Withdraws a waiter (timeout or cancellation). If a lease was handed to
    /// it at the same instant, the lease is returned so the caller can use it
    /// or pass it on: it is never swallowed.
    pub(crate) fn cancel(&self, node: &Arc<WaitNode<C>>) -> Outcome<C> {
        let previous = {
            let mut state = sync::lock(&node.state);
            std::mem::replace(&mut *state, NodeState::Cancelled)
        };
        match previous {
            NodeState::Waiting { roused, .. } => {
                let mut queue = sync::lock(&self.queue);
                if let Some(position) = queue.iter().position(|queued| Arc::ptr_eq(queued, node)) {
                    queue.remove(position);
                    self.signal.fetch_sub(ONE_WAITER, Ordering::SeqCst);
                    if position == 0 {
                        self.update_oldest(&queue);
                    }
                }
                if roused {
                    // Roused but gone before rescanning: the next waiter
                    // rescans in its place.
                    self.pass_rousal_locked(&queue);
                }
                Outcome::Cancelled
            }
            NodeState::Handed(lease) => Outcome::Handed(lease),
            NodeState::Closed => Outcome::Closed,
            NodeState::Rejected => Outcome::Rejected,
            NodeState::Cancelled => Outcome::Cancelled,
        }
    }

    /// Ends every current wait with [`Outcome::Rejected`] (connecting is
    /// failing for good); later callers may still wait.
    pub(crate) fn reject_all(&self) {
        self.drain_with(true);
    }

    /// Sets the closed bit and wakes every waiter with `Closed`. Returns
    /// whether this call closed the queue (false if it was already closed).
    pub(crate) fn close(&self) -> bool {
        let previous = {
            let _queue = sync::lock(&self.queue);
            self.signal.fetch_or(CLOSED, Ordering::SeqCst)
        };
        self.drain_with(false);
        previous & CLOSED == 0
    }

    /// Removes every node and ends its wait as rejected or closed.
    fn drain_with(&self, rejected: bool) -> usize {
        let mut queue = sync::lock(&self.queue);
        let drained: Vec<_> = queue.drain(..).collect();
        self.signal
            .fetch_sub(drained.len() * ONE_WAITER, Ordering::SeqCst);
        self.update_oldest(&queue);
        self.roused.swap(false, Ordering::SeqCst);
        drop(queue);
        let count = drained.len();
        for node in drained {
            let notifier = {
                let mut state = sync::lock(&node.state);
                let end = if rejected {
                    NodeState::Rejected
                } else {
                    NodeState::Closed
                };
                match std::mem::replace(&mut *state, end) {
                    NodeState::Waiting { notifier, .. } => Some(notifier),
                    other => {
                        *state = other;
                        None
                    }
                }
            };
            if let Some(notifier) = notifier {
                notifier.notify();
            }
        }
        count
    }
}

//! The FIFO queue of callers waiting for a connection, and direct hand-off.
//!
//! Owns: the waiter queue, each waiter's node, and the *signal word* (waiter
//! count and the closed bit) that the release path loads. It may not touch
//! slots directly: it moves [`Lease`]s, which the slot array created.
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
use crate::sync::{self, Arc, AtomicUsize, Mutex, Ordering, thread::Thread};

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

enum NodeState<C> {
    Waiting(Notifier),
    Handed(Lease<C>),
    Cancelled,
    Closed,
    /// Connecting failed for good (a permanent error, or fail-fast).
    Rejected,
}

/// One waiting caller.
pub(crate) struct WaitNode<C> {
    state: Mutex<NodeState<C>>,
}

/// What a waiter learns when it looks at its node.
pub(crate) enum Outcome<C> {
    /// A connection was handed to it.
    Handed(Lease<C>),
    /// The pool closed while it waited.
    Closed,
    /// Still waiting (only from [`Waiters::poll`]).
    Waiting,
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
    queue: Mutex<VecDeque<Arc<WaitNode<C>>>>,
}

impl<C> Waiters<C> {
    pub(crate) fn new() -> Self {
        Self {
            signal: crossbeam_utils::CachePadded::new(AtomicUsize::new(0)),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Loads the signal word (`SeqCst`: the second half of the Dekker pair
    /// with a waiter's enqueue-then-rescan; see `pool.rs`).
    #[inline(always)]
    pub(crate) fn signal(&self) -> Signal {
        Signal(self.signal.load(Ordering::SeqCst))
    }

    /// Joins the back of the queue. `max_waiters == 0` means no limit.
    pub(crate) fn enqueue(
        &self,
        notifier: Notifier,
        max_waiters: usize,
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
            state: Mutex::new(NodeState::Waiting(notifier)),
        });
        queue.push_back(node.clone());
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
            if !matches!(*state, NodeState::Waiting(_)) {
                // Cancelled at the same instant: its owner no longer wants one.
                continue;
            }
            let previous = std::mem::replace(&mut *state, NodeState::Handed(lease));
            drop(state);
            drop(queue);
            if let NodeState::Waiting(notifier) = previous {
                notifier.notify();
            }
            return Ok(());
        }
        Err(lease)
    }

    /// Looks at the node: takes a handed lease, or reports closed/waiting.
    pub(crate) fn poll(&self, node: &WaitNode<C>) -> Outcome<C> {
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
            waiting @ NodeState::Waiting(_) => {
                *state = waiting;
                Outcome::Waiting
            }
        }
    }

    /// Gives a still-waiting node a new waker (an async task re-polled with
    /// a different one).
    pub(crate) fn renotify(&self, node: &WaitNode<C>, waker: &Waker) {
        let mut state = sync::lock(&node.state);
        if let NodeState::Waiting(Notifier::Waker(current)) = &mut *state {
            if !current.will_wake(waker) {
                current.clone_from(waker);
            }
        }
    }

    /// Whether the node still waits (nothing handed, not closed or rejected).
    pub(crate) fn is_waiting(&self, node: &WaitNode<C>) -> bool {
        matches!(*sync::lock(&node.state), NodeState::Waiting(_))
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
            NodeState::Waiting(_) => {
                let mut queue = sync::lock(&self.queue);
                if let Some(position) = queue.iter().position(|queued| Arc::ptr_eq(queued, node)) {
                    queue.remove(position);
                    self.signal.fetch_sub(ONE_WAITER, Ordering::SeqCst);
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
                    NodeState::Waiting(notifier) => Some(notifier),
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

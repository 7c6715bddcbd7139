//! Time for the pool: a cheap coarse reading for the hot path, a precise one
//! for deadlines, and an injectable manual clock for deterministic tests.
//!
//! Owns: [`Clock`], [`ManualClock`] and the pool's notion of "now" in
//! nanoseconds since the clock's base. It may not touch slots or waiters.
//!
//! # Why a ticked coarse clock
//!
//! The hot-path budget for an uncontended get + drop is about 15 ns on the
//! reference machine. Measured there: `Instant::now()` costs 25 ns,
//! `CLOCK_MONOTONIC_COARSE` 5.9 ns, and a load of an atomic "recent time"
//! 1.4 ns. So a checkout reads [`Clock::recent`], a word the pool's background
//! worker refreshes every tick (and every slow path refreshes when it reads the
//! precise clock anyway). The cost is staleness of at most one tick, which only
//! widens the validation window and the leak threshold by that much.
//! Deadlines always use the precise clock.

use std::time::{Duration, Instant};

use std::task::Waker;

use crossbeam_utils::CachePadded;

use crate::sync::{self, AtomicU64, Mutex, Ordering, thread::Thread};

/// Nanoseconds since the clock's base: the pool's unit of time.
pub(crate) type Nanos = u64;

/// Converts a duration to [`Nanos`], saturating.
#[inline]
pub(crate) fn nanos(duration: Duration) -> Nanos {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The pool's clock: the system clock, or a [`ManualClock`] in tests.
///
/// [`recent`](Self::recent) is one relaxed load through a pointer, with no
/// branch on the kind of clock: it reads the pool's own ticked word for the
/// system clock and the manual clock's time word for a manual one.
pub(crate) struct Clock {
    /// The word `recent()` reads (shared with a manual clock), on a cache
    /// line of its own: every checkout and return reads it, and a neighbour
    /// written often would make those reads miss.
    recent: std::sync::Arc<CachePadded<AtomicU64>>,
    kind: ClockKind,
}

enum ClockKind {
    System { base: Instant },
    Manual(std::sync::Arc<ManualClock>),
}

impl Clock {
    pub(crate) fn system() -> Self {
        Clock {
            recent: std::sync::Arc::new(CachePadded::new(AtomicU64::new(0))),
            kind: ClockKind::System {
                base: Instant::now(),
            },
        }
    }

    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn manual(manual: std::sync::Arc<ManualClock>) -> Self {
        Clock {
            recent: manual.now.clone(),
            kind: ClockKind::Manual(manual),
        }
    }

    /// A reading at most one worker tick old (exact for a manual clock): one
    /// relaxed load.
    #[inline(always)]
    pub(crate) fn recent(&self) -> Nanos {
        self.recent.load(Ordering::Relaxed)
    }

    /// A precise reading that leaves [`recent`](Self::recent) alone: for
    /// hold-time samples, which run on the fast paths of every thread and
    /// must not write the shared clock line that all of them read.
    pub(crate) fn precise(&self) -> Nanos {
        match &self.kind {
            ClockKind::System { base } => nanos(base.elapsed()),
            ClockKind::Manual(manual) => manual.now(),
        }
    }

    /// A precise reading; also refreshes [`recent`](Self::recent).
    pub(crate) fn now(&self) -> Nanos {
        let now = self.precise();
        // A manual clock's word is `recent` itself: nothing to refresh.
        if let ClockKind::System { .. } = self.kind {
            self.recent.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    /// Parks the calling thread until `deadline`, a wake-up, or spuriously.
    /// Callers re-check their condition and the time in a loop.
    pub(crate) fn park_until(&self, deadline: Nanos) {
        match &self.kind {
            ClockKind::System { .. } => {
                let now = self.now();
                if deadline > now {
                    sync::park_timeout(Duration::from_nanos(deadline - now));
                }
            }
            ClockKind::Manual(manual) => manual.park_until(deadline),
        }
    }

    /// The manual clock driving this pool, if any.
    pub(crate) fn as_manual(&self) -> Option<&std::sync::Arc<ManualClock>> {
        match &self.kind {
            ClockKind::Manual(manual) => Some(manual),
            ClockKind::System { .. } => None,
        }
    }

    /// Whether this is a manual (test) clock.
    pub(crate) fn is_manual(&self) -> bool {
        self.as_manual().is_some()
    }
}

/// A clock that moves only when told to: tests and loom models use it so that
/// lifetimes, idle timeouts and deadlines pass in microseconds and
/// deterministically. Exported with the `test-util` feature (as tokio's
/// paused clock is); without it no pool can be given one.
///
/// [`advance`](Self::advance) wakes every thread parked on a deadline of this
/// clock, so a waiter re-checks its deadline exactly when time moves.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use std::time::Duration;
let clock = slotpool::ManualClock::new();
clock.advance(Duration::from_millis(1500));
assert_eq!(clock.elapsed(), Duration::from_millis(1500));
```
"#
)]
#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
pub struct ManualClock {
    /// Shared with every pool driven by this clock (their `Clock::recent`).
    now: std::sync::Arc<CachePadded<AtomicU64>>,
    sleepers: Mutex<Vec<Thread>>,
    /// Async waiters' timers: woken on every `advance`.
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
impl ManualClock {
    /// A clock at time zero (shared: pass clones of the `Arc` to the builder).
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            now: std::sync::Arc::new(CachePadded::new(AtomicU64::new(0))),
            sleepers: Mutex::new(Vec::new()),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now())
    }

    /// Moves time forward by `by` and wakes every thread parked on this clock.
    pub fn advance(&self, by: Duration) {
        let sleepers = {
            let mut sleepers = sync::lock(&self.sleepers);
            self.now.fetch_add(nanos(by), Ordering::SeqCst);
            std::mem::take(&mut *sleepers)
        };
        for thread in sleepers {
            thread.unpark();
        }
        let wakers = std::mem::take(&mut *sync::lock(&self.wakers));
        for waker in wakers {
            waker.wake();
        }
    }

    /// Wakes `waker` once time reaches `deadline` (on a later `advance`).
    pub(crate) fn wake_at(&self, deadline: Nanos, waker: &Waker) {
        let mut wakers = sync::lock(&self.wakers);
        if self.now() >= deadline {
            waker.wake_by_ref();
        } else {
            wakers.push(waker.clone());
        }
    }

    pub(crate) fn now(&self) -> Nanos {
        self.now.load(Ordering::SeqCst)
    }

    fn park_until(&self, deadline: Nanos) {
        {
            // Register before re-reading the time, under the same lock as
            // `advance`: either we see the new time or `advance` sees us.
            let mut sleepers = sync::lock(&self.sleepers);
            if self.now() >= deadline {
                return;
            }
            sleepers.push(sync::thread::current());
        }
        #[cfg(not(feature = "loom"))]
        {
            // A real thread may also be woken by a hand-off; a long safety
            // timeout keeps a forgotten sleeper from hanging a test forever.
            sync::park_timeout(Duration::from_secs(1));
        }
        #[cfg(feature = "loom")]
        sync::park_timeout(Duration::ZERO);
    }
}

//! The one place that chooses between `std` and loom primitives.
//!
//! Every atomic, lock, condition variable, `Arc`, thread, thread-local and
//! parking call used by the pool's lock-free core goes through this module, so
//! `cargo test --features loom` model-checks the real code rather than a copy
//! (the pattern of tokio's `loom` facade).
//!
//! Owns: the type aliases and the few adapters loom needs ([`UnsafeCell`],
//! [`ConfigCell`], [`park_timeout`], [`lock`]). It may not hold pool logic.
//!
//! Two primitives are not modelled faithfully by loom and are adapted here:
//!
//! * **Timed parking.** loom cannot time out, so under loom [`park_timeout`] is
//!   a plain `park()`. Models drive time with a [`ManualClock`](crate::clock::ManualClock)
//!   whose `advance()` unparks every timed sleeper, which is how the pool's
//!   waiters are told to re-check their deadline.
//! * **arc-swap.** loom cannot see inside `arc_swap`, so under loom
//!   [`ConfigCell`] is a loom `Mutex<Arc<T>>`: the swap is still a single
//!   linearisable step, which is all the pool relies on.

#[cfg(not(feature = "loom"))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) mod thread {
        pub(crate) use std::thread::{Builder, Thread, current, yield_now};
    }

    /// Parks the current thread for at most `timeout`; may wake spuriously.
    #[inline]
    pub(crate) fn park_timeout(timeout: std::time::Duration) {
        std::thread::park_timeout(timeout);
    }

    /// `std`'s `UnsafeCell` behind loom's closure-based API.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// A lock-free cell holding the current configuration (`arc_swap::ArcSwap`).
    pub(crate) struct ConfigCell<T>(arc_swap::ArcSwap<T>);

    impl<T> ConfigCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(arc_swap::ArcSwap::from_pointee(value))
        }

        /// The current value; a few nanoseconds, never blocks a writer.
        pub(crate) fn load(&self) -> std::sync::Arc<T> {
            self.0.load_full()
        }

        /// Replaces the value in one atomic step.
        pub(crate) fn store(&self, value: T) {
            self.0.store(std::sync::Arc::new(value));
        }
    }

    std::thread_local! {
        static SLOT_HINT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// The slot index this thread used last (HikariCP's thread-local list, in
    /// one word): scans start here so two threads do not fight over slot 0.
    #[inline(always)]
    pub(crate) fn slot_hint() -> usize {
        SLOT_HINT.with(|hint| hint.get())
    }

    /// Remembers the slot this thread just acquired.
    #[inline(always)]
    pub(crate) fn set_slot_hint(index: usize) {
        SLOT_HINT.with(|hint| hint.set(index));
    }
}

#[cfg(feature = "loom")]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

    /// Park/unpark for loom, built on a loom mutex and condition variable
    /// (as tokio's loom tests do). loom's own `Thread::unpark` also wakes a
    /// thread blocked on a *mutex*, which real `unpark` never does and which
    /// trips loom's lock bookkeeping; a condvar-based parker has exactly the
    /// semantics of `std`'s token: an unpark before the park is remembered.
    pub(crate) mod thread {
        pub(crate) use loom::thread::{Builder, yield_now};

        pub(crate) struct Parker {
            notified: loom::sync::Mutex<bool>,
            wake: loom::sync::Condvar,
        }

        loom::thread_local! {
            static PARKER: std::sync::Arc<Parker> = std::sync::Arc::new(Parker {
                notified: loom::sync::Mutex::new(false),
                wake: loom::sync::Condvar::new(),
            });
        }

        /// A handle that unparks one thread.
        #[derive(Clone)]
        pub(crate) struct Thread(std::sync::Arc<Parker>);

        impl Thread {
            pub(crate) fn unpark(&self) {
                let mut notified = self.0.notified.lock().unwrap();
                *notified = true;
                self.0.wake.notify_one();
            }
        }

        pub(crate) fn current() -> Thread {
            Thread(PARKER.with(|parker| parker.clone()))
        }

        pub(crate) fn park() {
            PARKER.with(|parker| {
                let mut notified = parker.notified.lock().unwrap();
                while !*notified {
                    notified = parker.wake.wait(notified).unwrap();
                }
                *notified = false;
            });
        }
    }

    /// loom cannot time out: a timed park is a plain park. Deadlines are
    /// driven by a `ManualClock`, whose `advance()` unparks timed sleepers.
    #[inline]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        thread::park();
    }

    /// loom's `UnsafeCell`, which checks that accesses never race.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::cell::UnsafeCell::new(value))
        }

        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            self.0.with_mut(f)
        }
    }

    /// loom-visible substitute for `ArcSwap`: a loom mutex around an `Arc`.
    pub(crate) struct ConfigCell<T>(loom::sync::Mutex<std::sync::Arc<T>>);

    impl<T> ConfigCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(std::sync::Arc::new(value)))
        }

        pub(crate) fn load(&self) -> std::sync::Arc<T> {
            self.0.lock().unwrap().clone()
        }

        pub(crate) fn store(&self, value: T) {
            *self.0.lock().unwrap() = std::sync::Arc::new(value);
        }
    }

    loom::thread_local! {
        static SLOT_HINT: std::cell::Cell<usize> = std::cell::Cell::new(0);
    }

    pub(crate) fn slot_hint() -> usize {
        SLOT_HINT.with(|hint| hint.get())
    }

    pub(crate) fn set_slot_hint(index: usize) {
        SLOT_HINT.with(|hint| hint.set(index));
    }
}

pub(crate) use imp::*;

/// The store-load barrier of a Dekker pair: orders this thread's preceding
/// `SeqCst` write before its following `SeqCst` load of another location.
///
/// Under `std` the `SeqCst` operations on both sides already guarantee that
/// (they share one total order), so this compiles to nothing and the hot path
/// pays only for its `SeqCst` swap. loom treats `SeqCst` loads and stores as
/// acquire/release (loom issue #180) and models only `fence(SeqCst)`
/// faithfully, so under loom this is a real fence. Every Dekker pair in the
/// pool calls it at the exact point where the ordering is relied on.
#[inline(always)]
pub(crate) fn dekker_fence() {
    #[cfg(feature = "loom")]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Locks `mutex`, ignoring poisoning: no critical section in this crate can
/// leave its data half-updated, so a panic elsewhere must not wedge the pool.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning like [`lock`].
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

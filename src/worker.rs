//! The pool's one background thread: it opens connections off the callers'
//! paths, validates connections for callers (so a hanging check never holds
//! a caller past its deadline), runs maintenance, serves async deadlines and
//! ticks the coarse clock. Discarded connections are closed by the shared
//! closer thread (`closer.rs`), never here, so a blocking close cannot delay
//! a connect.
//!
//! Owns: [`WorkerControl`] (the request flag, the graveyard of connections to
//! close, shutdown) and the worker loop [`run`]. It may not touch slots
//! directly; it calls the pool core.
//!
//! Connects are sequential, as in HikariCP's single-threaded add-connection
//! executor: a burst of waiters grows the pool one connection at a time, and
//! each finished connect re-checks whether anyone still waits. That is what
//! keeps a spike (50 callers, 150 ms connects) from opening 45 connections
//! when the existing ones free up within milliseconds.
//!
//! In manual mode (tests and loom models) no thread is spawned; the test calls
//! `Pool::run_background_step` to run one pass of the same code.

use std::task::Waker;
use std::time::Duration;

use crate::clock::Nanos;
use crate::slot::Lease;

use crate::manager::{ErrorClass, Manager};
use crate::pool::Shared;
use crate::pool::create::CreateOutcome;
use crate::sync::{self, Arc, Condvar, Mutex};

/// Deadlines of async waiters, served by the worker (the runtime-agnostic
/// timer): key (deadline, id), so a finished waiter removes its own entry.
type Timers = std::collections::BTreeMap<(Nanos, u64), Waker>;

struct Flags<C> {
    /// Somebody asked for a connection since the worker last looked.
    requested: bool,
    /// The pool is closing: finish up and exit.
    shutdown: bool,
    /// Connections a checkout found idle past the validation window, to
    /// validate here and then publish (or discard).
    to_validate: Vec<Lease<C>>,
    /// Async waiters' deadlines.
    timers: Timers,
    next_timer_id: u64,
}

/// The handle the pool core uses to talk to its worker.
pub(crate) struct WorkerControl<C> {
    flags: Mutex<Flags<C>>,
    wake: Condvar,
    manual: bool,
}

impl<C> WorkerControl<C> {
    pub(crate) fn new(manual: bool) -> Self {
        Self {
            flags: Mutex::new(Flags {
                requested: false,
                shutdown: false,
                to_validate: Vec::new(),
                timers: Timers::new(),
                next_timer_id: 0,
            }),
            wake: Condvar::new(),
            manual,
        }
    }

    /// Asks the worker to look at whether a connection is wanted.
    pub(crate) fn request(&self) {
        let mut flags = sync::lock(&self.flags);
        if !flags.requested {
            flags.requested = true;
            self.wake.notify_one();
        }
    }

    /// Closes a discarded connection off the callers' paths: on the shared
    /// closer thread, or inline in manual mode (tests and loom models).
    pub(crate) fn bury(&self, conn: C)
    where
        C: Send + 'static,
    {
        if self.manual {
            drop(conn);
        } else {
            crate::closer::close(conn);
        }
    }

    /// Whether validation is delegated to a worker thread.
    pub(crate) fn validates_off_path(&self) -> bool {
        !self.manual
    }

    /// Hands a connection to the worker to validate; gives it back if the
    /// worker is shutting down.
    pub(crate) fn validate_later(&self, lease: Lease<C>) -> Result<(), Lease<C>> {
        let mut flags = sync::lock(&self.flags);
        if flags.shutdown {
            return Err(lease);
        }
        flags.to_validate.push(lease);
        self.wake.notify_one();
        Ok(())
    }

    /// Wakes `waker` at `deadline`; returns the timer's key for `cancel_timer`.
    pub(crate) fn add_timer(&self, deadline: Nanos, waker: &Waker) -> (Nanos, u64) {
        let mut flags = sync::lock(&self.flags);
        flags.next_timer_id += 1;
        let key = (deadline, flags.next_timer_id);
        let earliest = flags.timers.keys().next().is_none_or(|first| key < *first);
        flags.timers.insert(key, waker.clone());
        if earliest {
            // The worker may be asleep past this deadline: let it re-plan.
            self.wake.notify_one();
        }
        key
    }

    /// Forgets a timer whose waiter finished first.
    pub(crate) fn cancel_timer(&self, key: (Nanos, u64)) {
        sync::lock(&self.flags).timers.remove(&key);
    }

    /// Tells the worker to exit after its current step.
    pub(crate) fn shutdown(&self) {
        let mut flags = sync::lock(&self.flags);
        flags.shutdown = true;
        self.wake.notify_one();
    }

    /// Sleeps up to `timeout`, waking early on shutdown. Returns false on shutdown.
    fn sleep(&self, timeout: Duration) -> bool {
        let flags = sync::lock(&self.flags);
        if flags.shutdown {
            return false;
        }
        let flags = sync::wait_timeout(&self.wake, flags, timeout);
        !flags.shutdown
    }
}

/// The worker thread's body: wait for work, do it, repeat until shutdown.
pub(crate) fn run<M: Manager>(shared: Arc<Shared<M>>) {
    let control = &shared.worker;
    let mut next_pass = shared.clock.now();
    loop {
        let (to_validate, shutdown, due) = {
            let mut flags = sync::lock(&control.flags);
            if !flags.requested && !flags.shutdown && flags.to_validate.is_empty() {
                // Sleep until the next tick or maintenance pass, whichever
                // is first; with neither due (no connections, nothing
                // enabled), until somebody asks.
                let until_pass = crate::maintenance::period(&shared)
                    .map(|_| Duration::from_nanos(next_pass.saturating_sub(shared.clock.now())));
                let until_timer = flags.timers.keys().next().map(|(deadline, _)| {
                    Duration::from_nanos(deadline.saturating_sub(shared.clock.now()))
                });
                let wait = [shared.tick_interval(), until_pass, until_timer]
                    .into_iter()
                    .flatten()
                    .min();
                flags = match wait {
                    Some(wait) => sync::wait_timeout(&control.wake, flags, wait),
                    None => match control.wake.wait(flags) {
                        Ok(flags) => flags,
                        Err(poisoned) => poisoned.into_inner(),
                    },
                };
            }
            flags.requested = false;
            let now = shared.clock.now();
            let due = fire_due_timers(&mut flags.timers, now);
            (std::mem::take(&mut flags.to_validate), flags.shutdown, due)
        };
        for waker in due {
            waker.wake();
        }
        let now = shared.clock.now(); // the tick: refreshes the coarse clock
        for lease in to_validate {
            shared.validate_and_publish(lease);
        }
        if shutdown {
            break;
        }
        if let Some(period) = crate::maintenance::period(&shared) {
            if now >= next_pass {
                crate::maintenance::run_pass(&shared);
                next_pass = now.saturating_add(crate::clock::nanos(period));
            }
        }
        step(&shared, false);
    }
    // Connections queued for validation at shutdown go back (and, the pool
    // being closed, are closed); async waiters were woken by close.
    let (to_validate, timers) = {
        let mut flags = sync::lock(&control.flags);
        (
            std::mem::take(&mut flags.to_validate),
            std::mem::take(&mut flags.timers),
        )
    };
    for lease in to_validate {
        shared.publish(lease);
    }
    drop(timers);
    tracing::debug!(pool = %shared.name, "worker exited");
}

/// Removes and returns the wakers whose deadline has come.
fn fire_due_timers(timers: &mut Timers, now: Nanos) -> Vec<Waker> {
    let later = timers.split_off(&(now.saturating_add(1), 0));
    std::mem::replace(timers, later).into_values().collect()
}

/// One pass of background work: open connections while they are wanted,
/// backing off exponentially (with jitter) between failed connects. In manual
/// mode a failure ends the pass instead of sleeping.
pub(crate) fn step<M: Manager>(shared: &Shared<M>, manual: bool) {
    if manual {
        crate::maintenance::run_pass(shared);
    }
    let config = shared.config();
    let mut backoff = config.connect_backoff_initial;
    let mut attempt: u32 = 0;
    while shared.wants_connection() {
        match shared.create_one() {
            CreateOutcome::Created => {
                attempt = 0;
                backoff = config.connect_backoff_initial;
            }
            CreateOutcome::NoRoom => break,
            CreateOutcome::Failed(error)
                if shared.manager.classify(&error) == ErrorClass::Permanent =>
            {
                // Retrying cannot help; waiters end with this error as their
                // cause. The next request (a new waiter) tries again.
                tracing::error!(pool = %shared.name, %error, "permanent connect error");
                break;
            }
            CreateOutcome::Failed(_) | CreateOutcome::Panicked => {
                if manual {
                    break;
                }
                attempt = attempt.saturating_add(1);
                let pause = jittered(backoff, attempt);
                if !shared.worker.sleep(pause) {
                    break;
                }
                backoff = (backoff * 2).min(config.connect_backoff_max);
            }
        }
    }
}

/// `base` scaled by a pseudo-random factor in [0.5, 1.0) ("equal jitter"), so
/// pools that failed together do not retry in lock-step.
fn jittered(base: Duration, attempt: u32) -> Duration {
    // A cheap per-call hash of the time and attempt; no RNG dependency needed.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0)
        ^ attempt.wrapping_mul(0x9E37_79B9);
    let fraction = 0.5 + f64::from(seed % 1000) / 2000.0;
    base.mul_f64(fraction)
}

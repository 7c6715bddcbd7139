//! The pool's one background thread: it opens connections off the callers'
//! paths, closes discarded ones, and ticks the coarse clock.
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

use std::time::Duration;

use crate::manager::{ErrorClass, Manager};
use crate::pool::core::{CreateOutcome, Shared};
use crate::sync::{self, Arc, Condvar, Mutex};

struct Flags<C> {
    /// Somebody asked for a connection since the worker last looked.
    requested: bool,
    /// The pool is closing: finish up and exit.
    shutdown: bool,
    /// Connections to close off the callers' paths.
    graveyard: Vec<C>,
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
                graveyard: Vec::new(),
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

    /// Hands a connection to the worker to close (inline when no thread runs
    /// or the pool is shutting down).
    pub(crate) fn bury(&self, conn: C) {
        let mut flags = sync::lock(&self.flags);
        if self.manual || flags.shutdown {
            drop(flags);
            drop(conn);
            return;
        }
        flags.graveyard.push(conn);
        self.wake.notify_one();
    }

    /// Tells the worker to exit after its current step.
    pub(crate) fn shutdown(&self) {
        let mut flags = sync::lock(&self.flags);
        flags.shutdown = true;
        self.wake.notify_one();
    }

    fn is_shut_down(&self) -> bool {
        sync::lock(&self.flags).shutdown
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
        let (graveyard, shutdown) = {
            let mut flags = sync::lock(&control.flags);
            if !flags.requested && !flags.shutdown && flags.graveyard.is_empty() {
                // Sleep until the next tick or maintenance pass, whichever
                // is first; with neither due (no connections, nothing
                // enabled), until somebody asks.
                let until_pass = crate::maintenance::period(&shared).map(|_| {
                    Duration::from_nanos(next_pass.saturating_sub(shared.clock.now()))
                });
                let wait = match (shared.tick_interval(), until_pass) {
                    (Some(tick), Some(pass)) => Some(tick.min(pass)),
                    (tick, pass) => tick.or(pass),
                };
                flags = match wait {
                    Some(wait) => sync::wait_timeout(&control.wake, flags, wait),
                    None => match control.wake.wait(flags) {
                        Ok(flags) => flags,
                        Err(poisoned) => poisoned.into_inner(),
                    },
                };
            }
            flags.requested = false;
            (std::mem::take(&mut flags.graveyard), flags.shutdown)
        };
        let now = shared.clock.now(); // the tick: refreshes the coarse clock
        drop(graveyard); // closes them, off every caller's path
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
    // Anything buried after the last look is closed by `bury` itself now.
    let graveyard = std::mem::take(&mut sync::lock(&control.flags).graveyard);
    drop(graveyard);
    tracing::debug!(pool = %shared.name, "worker exited");
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
                if !shared.worker.sleep(pause) || shared.worker.is_shut_down() {
                    break;
                }
                backoff = (backoff * 2).min(config.connect_backoff_max);
            }
        }
    }
    if manual {
        let graveyard = std::mem::take(&mut sync::lock(&shared.worker.flags).graveyard);
        drop(graveyard);
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

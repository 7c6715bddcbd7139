//! Everything a pool does off its callers' paths, and the threads it does it
//! on.
//!
//! Owns: [`Background`] (the dispatcher's control block and the three
//! lanes), the job types, and the rule of which thread runs what. It may not
//! hand out connections except through the pool core (`publish`), and the
//! dispatcher may not run user code.
//!
//! # The threads, and why each exists
//!
//! | thread | runs | user code | how many |
//! |---|---|---|---|
//! | dispatcher (`slotpool-<name>`) | async deadlines, validation deadlines, the coarse-clock tick, maintenance decisions (which idle connection retires, which needs a keepalive check, which checkout leaked), starting lane threads | **none** | one per pool, from build until the pool is closed and drained |
//! | connector (`slotpool-<name>-connector`) | `connect()` with capped exponential backoff; `on_create` | yes | up to `max_concurrent_connects` (default 1, HikariCP's single adder thread) |
//! | checker (`slotpool-<name>-checker`) | `is_valid()` for a stale checkout or a keepalive | yes | up to `max_concurrent_validations` (default 4) |
//! | closer (`slotpool-<name>-closer`) | dropping connections; `on_close`, `on_leak` | yes | one |
//!
//! The dispatcher is the thread that must never be late: it fires the
//! deadlines of async callers and abandons validations that outlive
//! `validation_timeout`. So it runs no manager method and no hook, and
//! every user call goes to a lane whose bound makes that call's concurrency
//! explicit. A lane's threads are started by the dispatcher when jobs wait
//! and no thread is idle, and exit after [`LINGER`] with nothing to do, so an
//! idle pool has one parked thread (r2d2 #43 was a thread pool per pool).
//! A connect that hangs holds its connector thread but no deadline and no
//! maintenance (the measured fault at `70c7a19`: one blocked `connect()` on
//! a shared worker delayed async deadlines by seconds and stopped
//! maintenance). A validation that hangs is abandoned at `validation_timeout`:
//! its room is freed for a replacement at once and the connection is closed
//! whenever the call returns.
//!
//! Calls that belong to a caller run on that caller's thread: `has_broken`
//! and `reset` when a connection comes back, `on_acquire`/`on_release`/
//! `on_timeout`, `retain`'s predicate, and the validity check of a
//! `try_get()` (which never waits for another thread). Every user call, on
//! any thread, runs inside a panic boundary (`panics.rs`).
//!
//! In manual mode (feature `test-util`: tests and loom models) no thread is
//! started: `Pool::run_background_step` runs one pass of the same code on
//! the caller's thread, validations run inline (or are queued for the step,
//! with `Builder::queued_checks`), and closes run inline.

mod check;
mod close;
mod connect;
mod dispatcher;
mod lane;
pub(crate) mod maintenance;
pub(crate) mod panics;

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Duration;

pub(crate) use self::check::{CheckJob, CheckPurpose, Ticket};
pub(crate) use self::close::CloseJob;
pub(crate) use self::dispatcher::run as run_dispatcher;
#[cfg(feature = "test-util")]
pub(crate) use self::dispatcher::step;
use self::lane::{Lane, Submitted};
use crate::clock::Nanos;
use crate::sync::{self, Arc, AtomicUsize, Condvar, Mutex, Ordering};

/// How long a lane thread waits for another job before it exits
/// (HikariCP's executors keep idle threads 5 s).
pub(crate) const LINGER: Duration = Duration::from_secs(5);

/// A request to run the connect loop (the connector lane's job).
pub(crate) struct ConnectJob;

/// Async waiters' deadlines: key (deadline, id), so a finished waiter
/// removes its own entry.
type Timers = BTreeMap<(Nanos, u64), Waker>;
/// Validation deadlines: key (deadline, id).
type CheckDeadlines = BTreeMap<(Nanos, u64), Arc<Ticket>>;

struct Control {
    /// Somebody asked the dispatcher to look (threads wanted, a connect,
    /// a deadline earlier than the one it sleeps to).
    requested: bool,
    /// The pool is closed: finish the drain and exit.
    shutdown: bool,
    timers: Timers,
    checks: CheckDeadlines,
    next_id: u64,
    /// When the sleeping dispatcher will wake by itself (`Nanos::MAX`: not
    /// before it is woken); 0 while it is awake, when it re-plans from the
    /// deadlines anyway. A new deadline wakes it only if earlier: most
    /// waits (a 30 s `connection_timeout` against a tick of at most
    /// 250 ms) cost no wake-up of the dispatcher.
    wakes_at: Nanos,
}

/// The background machinery of one pool.
pub(crate) struct Background<C> {
    manual: bool,
    /// Manual mode only: validations wait for the step instead of running
    /// inline (loom models of the validation protocol).
    queued_checks: bool,
    control: Mutex<Control>,
    /// Wakes the dispatcher.
    wake: Condvar,
    /// Wakes connect-loop backoff sleeps on shutdown.
    stop: Condvar,
    pub(crate) connector: Lane<ConnectJob>,
    pub(crate) checker: Lane<CheckJob<C>>,
    pub(crate) closer: Lane<CloseJob<C>>,
    /// Connect loops running or queued.
    connect_loops: AtomicUsize,
    max_connect_loops: AtomicUsize,
}

impl<C> Background<C> {
    pub(crate) fn new(
        manual: bool,
        queued_checks: bool,
        max_connects: usize,
        max_validations: usize,
    ) -> Self {
        Self {
            manual,
            queued_checks: manual && queued_checks,
            control: Mutex::new(Control {
                requested: false,
                shutdown: false,
                timers: Timers::new(),
                checks: CheckDeadlines::new(),
                next_id: 0,
                wakes_at: 0,
            }),
            wake: Condvar::new(),
            stop: Condvar::new(),
            connector: Lane::new("connector", max_connects),
            checker: Lane::new("checker", max_validations),
            closer: Lane::new("closer", 1),
            connect_loops: AtomicUsize::new(0),
            max_connect_loops: AtomicUsize::new(max_connects.max(1)),
        }
    }

    /// Whether validations wait for the manual step (`queued_checks`).
    #[cfg(feature = "test-util")]
    pub(crate) fn queues_checks(&self) -> bool {
        self.queued_checks
    }

    /// Whether a stale checkout is validated on the caller's thread: manual
    /// mode, unless its validations are queued for the step.
    pub(crate) fn validates_inline(&self) -> bool {
        self.manual && !self.queued_checks
    }

    /// New concurrency bounds (reconfiguration).
    pub(crate) fn set_bounds(&self, max_connects: usize, max_validations: usize) {
        self.connector.set_max_threads(max_connects);
        self.max_connect_loops
            .store(max_connects.max(1), Ordering::SeqCst);
        self.checker.set_max_threads(max_validations);
    }

    /// Wakes the dispatcher to look at its work (there is none in manual
    /// mode).
    pub(crate) fn poke(&self) {
        if self.manual {
            return;
        }
        let mut control = sync::lock(&self.control);
        if !control.requested {
            control.requested = true;
            self.wake.notify_one();
        }
    }

    /// Asks for the connect loop to run: starts one unless
    /// `max_concurrent_connects` already run. In manual mode the next step
    /// runs it.
    pub(crate) fn request_connect(&self) {
        if self.manual {
            // The next step connects while wanted.
            return;
        }
        if !self.claim_connect_loop() {
            return;
        }
        match self.connector.submit(ConnectJob) {
            Ok(Submitted::Queued) => {}
            Ok(Submitted::WantsThread) => self.poke(),
            Err(ConnectJob) => self.release_connect_loop(),
        }
    }

    /// Counts one more connect loop, if under the bound.
    pub(crate) fn claim_connect_loop(&self) -> bool {
        let max = self.max_connect_loops.load(Ordering::SeqCst);
        let mut loops = self.connect_loops.load(Ordering::SeqCst);
        loop {
            if loops >= max {
                return false;
            }
            match self.connect_loops.compare_exchange(
                loops,
                loops + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => loops = actual,
            }
        }
    }

    /// A connect loop ended.
    pub(crate) fn release_connect_loop(&self) {
        self.connect_loops.fetch_sub(1, Ordering::SeqCst);
    }

    /// Queues a validation; `Err` hands it back when the lane no longer
    /// takes jobs (the pool is shutting down).
    pub(crate) fn submit_check(&self, job: CheckJob<C>) -> Result<(), CheckJob<C>> {
        match self.checker.submit(job)? {
            Submitted::Queued => {}
            Submitted::WantsThread => self.poke(),
        }
        Ok(())
    }

    /// Queues a close; `Err` hands it back when it must run on the caller's
    /// thread: in manual mode, and once the dispatcher has exited (the pool
    /// closed and drained; only a late background call gets here).
    pub(crate) fn submit_close(&self, job: CloseJob<C>) -> Result<(), CloseJob<C>> {
        if self.manual {
            return Err(job);
        }
        if self.closer.submit(job)? == Submitted::WantsThread {
            self.poke();
        }
        Ok(())
    }

    /// Wakes the dispatcher to re-plan if it sleeps past `deadline`.
    fn wake_for(&self, control: &mut Control, deadline: Nanos) {
        if deadline < control.wakes_at && !control.requested {
            control.requested = true;
            self.wake.notify_one();
        }
    }

    /// Registers the deadline of a validation.
    pub(crate) fn add_check_deadline(&self, deadline: Nanos, ticket: Arc<Ticket>) {
        let mut control = sync::lock(&self.control);
        control.next_id += 1;
        let key = (deadline, control.next_id);
        control.checks.insert(key, ticket);
        self.wake_for(&mut control, deadline);
    }

    /// Wakes `waker` at `deadline`; returns the timer's key for
    /// [`cancel_timer`](Self::cancel_timer).
    pub(crate) fn add_timer(&self, deadline: Nanos, waker: &Waker) -> (Nanos, u64) {
        let mut control = sync::lock(&self.control);
        control.next_id += 1;
        let key = (deadline, control.next_id);
        control.timers.insert(key, waker.clone());
        self.wake_for(&mut control, deadline);
        key
    }

    /// Forgets a timer whose waiter finished first.
    pub(crate) fn cancel_timer(&self, key: (Nanos, u64)) {
        sync::lock(&self.control).timers.remove(&key);
    }

    /// The pool is closing: the dispatcher drains and exits; backoff sleeps
    /// end.
    pub(crate) fn shutdown(&self) {
        let mut control = sync::lock(&self.control);
        control.shutdown = true;
        control.requested = true;
        self.wake.notify_one();
        self.stop.notify_all();
    }

    /// Sleeps up to `pause` (a connect backoff), waking early on shutdown.
    /// Returns false on shutdown.
    pub(crate) fn sleep(&self, pause: Duration) -> bool {
        let control = sync::lock(&self.control);
        if control.shutdown {
            return false;
        }
        let control = sync::wait_timeout(&self.stop, control, pause);
        !control.shutdown
    }
}

//! The pool as a state machine: a list of operations applied to a real pool
//! (manual clock, manual background work, a fault-injecting manager and
//! event hooks) and to a reference model, with the invariants of
//! docs/DESIGN.md checked after every step.
//!
//! Shared by the cargo-fuzz target `pool_ops` (bytes decoded by [`decode`]),
//! by `tests/fuzz_replay.rs` (the seeds and saved crashes) and by
//! `tests/state_machine.rs` (proptest generates [`Op`]s directly, so
//! shrinking works on operations rather than bytes). It depends only on
//! `slotpool`'s public API and std.
//!
//! # What the model knows
//!
//! On one thread with manual background work, the pool is deterministic up
//! to *which* idle connection a checkout picks (the scan starts at the
//! thread's slot hint). The model predicts everything else and learns the
//! picked connection's id from the guard. The manager records which ids are
//! alive, so every close the pool performs is observed and checked against
//! the model's prediction: which connections, how many, and why (the pool's
//! `closed` counters by reason).
//!
//! Two kinds of op go beyond the single-threaded happy path:
//!
//! * [`Op::PanicNext`] makes the next call of one user callback panic: a
//!   manager method, the connection's `Drop`, or a `PoolEvents` hook. The
//!   model predicts what the pool does instead (a panicking `connect` is a
//!   failed attempt, `is_valid` a failed check, `has_broken` a broken
//!   connection, `reset` a failed reset, `classify` a transient error, a
//!   panicking `Drop` still closed the connection, a hook is ignored), and
//!   every panic must be counted in `callback_panics` and none may unwind
//!   out of a pool call.
//! * [`Op::HangConnect`] runs `run_background_step()` on a second thread
//!   whose first connect blocks on a gate the harness holds, and runs the
//!   following non-blocking ops on this thread while it hangs (gets,
//!   returns, reconfigures, the clock, fault injection, close); the hanging
//!   connect must be counted as `connecting` and hold its room. A shrink
//!   while it hangs counts that room: idle excess is retired at once, in-use
//!   excess on return, and the connection the connect brings is retired on
//!   arrival (as `Shrink`) if the pool is still over `max_size`, else
//!   published idle; a grow or a raised `min_idle` makes the step go on
//!   connecting once the hung connect ends.
//!
//! # Invariants checked after every step
//!
//! * 1: a connection handed out is one the model holds as idle, never one a
//!   guard already holds.
//! * 2: `connections <= max(max_size, in_use + connecting)` at every step
//!   (a shrink retires idle excess at once, but in-use excess only on return
//!   and a connect's only when it arrives, so `in_use` alone may exceed
//!   `max_size` for a while); the excess is never idle (`connections >
//!   max_size` implies no idle connection); `connections <= max_size` once
//!   nothing is held (a connect in flight included: its room is one).
//! * 6: after `Close`, every get fails with `Error::Closed`, idle connections
//!   are closed at once, held ones on return, and the manager's live count is
//!   0 once everything is back; dropping the pool closes everything.
//! * `state()` agrees with the model: `in_use`, `idle_connections`,
//!   `connecting` (1 while a connect hangs, else 0), `waiting == 0`,
//!   `connections == ` the manager's live count plus `connecting`,
//!   `max_size`; `is_closed()`.
//! * The manager's and the hooks' call counts, the injected panics fired and
//!   still armed, and `stats().counters`: `callback_panics` for every
//!   callback, `closed` for every reason, `created`, `connect_failures`,
//!   `validations`, `validation_failures`.
#![allow(dead_code)]

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use slotpool::stats::Callback;
use slotpool::{
    CloseReason, Error, Manager, ManualClock, Pool, PoolConfig, PoolEvents, PooledConnection,
    TryGetError,
};

/// Slot-array capacity of every pool the harness builds: the ceiling for
/// `Reconfigure`.
pub const CAPACITY: u8 = 6;
/// Operations decoded from one fuzz input at most (keeps executions fast).
pub const MAX_OPS: usize = 512;
/// Ops that run while one connect hangs, at most.
pub const HANG_MAX: u8 = 7;
const MS: u64 = 1_000_000;
/// How long the harness waits for the second thread to enter `connect`
/// (a bound against a pool that never calls it; yields, never sleeps).
const ENTER_LIMIT: Duration = Duration::from_secs(30);

/// The user callbacks [`Op::PanicNext`] can make panic, in opcode order:
/// the manager's methods, the connection's `Drop` ([`Callback::Close`]),
/// then the `PoolEvents` hooks.
pub const PANICKY: [Callback; 12] = [
    Callback::Connect,
    Callback::IsValid,
    Callback::HasBroken,
    Callback::Reset,
    Callback::Classify,
    Callback::OnReconfigure,
    Callback::Close,
    Callback::OnAcquire,
    Callback::OnRelease,
    Callback::OnCreate,
    Callback::OnClose,
    Callback::OnTimeout,
];
const CALLBACKS: usize = PANICKY.len();

/// The index of `callback` in [`PANICKY`].
fn panicky(callback: Callback) -> Option<usize> {
    PANICKY.iter().position(|&c| c == callback)
}

/// Whether `callback` is a `PoolEvents` hook (called only when the setup
/// installs them).
fn is_hook(callback: Callback) -> bool {
    matches!(
        callback,
        Callback::OnAcquire
            | Callback::OnRelease
            | Callback::OnCreate
            | Callback::OnClose
            | Callback::OnTimeout
    )
}

/// Per-callback counts, indexed like [`PANICKY`].
type PerCallback = [usize; CALLBACKS];

/// How the pool is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Initial `max_size`, 1..=[`CAPACITY`].
    pub max_size: u8,
    /// Initial `min_idle`, clamped to `max_size`.
    pub min_idle: u8,
    /// `validation_idle_window` in milliseconds (0 validates every checkout).
    pub window_ms: u16,
    /// Whether the pool has `PoolEvents` hooks (every return then takes the
    /// slow path).
    pub events: bool,
}

/// One step. Indexes pick a held guard modulo the number held; with none
/// held, `Return`-like ops do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `try_get()`: never waits; on no idle connection, asks for one.
    TryGet,
    /// `get_timeout(Duration::ZERO)`: the waiting path with a deadline
    /// already due (enqueue, re-scan, cancel).
    GetZero,
    /// Drop the i-th held guard.
    Return(u8),
    /// `mark_broken()` then drop the i-th held guard.
    MarkBrokenAndReturn(u8),
    /// Make the manager's `has_broken` report the i-th held connection
    /// broken, then drop its guard.
    BreakAndReturn(u8),
    /// `reconfigure()` to this `max_size` (clamped to 1..=CAPACITY) and
    /// `min_idle` (clamped to `max_size`).
    Reconfigure {
        /// New `max_size`.
        max_size: u8,
        /// New `min_idle`.
        min_idle: u8,
    },
    /// Advance the manual clock by this many milliseconds.
    AdvanceClock(u16),
    /// The manager's next `connect()` fails (cumulative).
    FailNextConnect,
    /// The manager's next `is_valid()` fails (cumulative).
    FailNextValidation,
    /// `run_background_step()`: connects while wanted (a failure ends it).
    StepBackground,
    /// `close()`.
    Close,
    /// The next call of this callback (one of [`PANICKY`]) panics
    /// (cumulative per callback). A hook is never called without
    /// `Setup::events`, so its panic stays armed.
    PanicNext(Callback),
    /// `run_background_step()` on a second thread, its first connect
    /// blocked on a gate; the next `n` ops (at most [`HANG_MAX`]) run on
    /// this thread while it hangs, up to the first one that may not (see
    /// [`Op::runs_during_hang`]); then the gate opens and the step
    /// finishes. With no connect wanted the step finishes at once and the
    /// ops follow it.
    HangConnect(u8),
}

impl Op {
    /// Whether the op may run while a connect hangs: it never blocks and
    /// never waits for the background (`StepBackground` and `HangConnect`
    /// would). A `Reconfigure` shrinking below `in_use + connecting` is the
    /// case the connect's arrival must handle: its connection is retired if
    /// the pool is still over `max_size` (see [`Model::end_connect`]).
    fn runs_during_hang(self) -> bool {
        matches!(
            self,
            Op::TryGet
                | Op::GetZero
                | Op::Return(_)
                | Op::MarkBrokenAndReturn(_)
                | Op::BreakAndReturn(_)
                | Op::Reconfigure { .. }
                | Op::AdvanceClock(_)
                | Op::FailNextConnect
                | Op::FailNextValidation
                | Op::PanicNext(_)
                | Op::Close
        )
    }
}

// ------------------------------------------------------------------ bytes

/// Opcodes are read modulo this.
const OPCODES: u8 = 48;
const PANIC_OPCODE: u8 = 32;
const HANG_OPCODE: u8 = 44;

/// Decodes a fuzz input: two setup bytes, then one opcode byte per op
/// (followed by an argument byte for ops that take one). Missing bytes read
/// as 0, so every input decodes.
pub fn decode(data: &[u8]) -> (Setup, Vec<Op>) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let first = next().unwrap_or(0);
    let second = next().unwrap_or(0);
    let max_size = 1 + (first & 0x7f) % CAPACITY;
    let setup = Setup {
        max_size,
        min_idle: (second & 0x7f) % (max_size + 1),
        window_ms: if second & 0x80 != 0 { 0 } else { 1000 },
        events: first & 0x80 != 0,
    };
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(code) = next() else { break };
        let mut arg = || next().unwrap_or(0);
        let op = match code % OPCODES {
            0..=6 => Op::TryGet,
            7..=8 => Op::GetZero,
            9..=14 => Op::Return(arg()),
            15..=16 => Op::MarkBrokenAndReturn(arg()),
            17 => Op::BreakAndReturn(arg()),
            18..=19 => {
                let arg = arg();
                Op::Reconfigure {
                    max_size: 1 + (arg & 0x0f) % CAPACITY,
                    min_idle: (arg >> 4) % (CAPACITY + 1),
                }
            }
            20..=22 => Op::AdvanceClock(u16::from(arg()) * 20),
            23 => Op::FailNextConnect,
            24 => Op::FailNextValidation,
            25..=30 => Op::StepBackground,
            31 => Op::Close,
            32..=43 => Op::PanicNext(PANICKY[usize::from(code % OPCODES - PANIC_OPCODE)]),
            44..=45 => Op::HangConnect(arg() % (HANG_MAX + 1)),
            _ => Op::StepBackground,
        };
        ops.push(op);
    }
    (setup, ops)
}

/// The inverse of [`decode`] for ops that [`decode`] can produce (used to
/// write seeds and to test the decoder).
pub fn encode(setup: Setup, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![
        setup.max_size.wrapping_sub(1) | if setup.events { 0x80 } else { 0 },
        (setup.min_idle & 0x7f) | if setup.window_ms == 0 { 0x80 } else { 0 },
    ];
    for op in ops {
        match *op {
            Op::TryGet => out.push(0),
            Op::GetZero => out.push(7),
            Op::Return(i) => out.extend([9, i]),
            Op::MarkBrokenAndReturn(i) => out.extend([15, i]),
            Op::BreakAndReturn(i) => out.extend([17, i]),
            Op::Reconfigure { max_size, min_idle } => {
                out.extend([
                    18,
                    (max_size.wrapping_sub(1) & 0x0f) | ((min_idle & 0x0f) << 4),
                ]);
            }
            Op::AdvanceClock(ms) => out.extend([20, u8::try_from(ms / 20).unwrap_or(u8::MAX)]),
            Op::FailNextConnect => out.push(23),
            Op::FailNextValidation => out.push(24),
            Op::StepBackground => out.push(25),
            Op::Close => out.push(31),
            Op::PanicNext(callback) => {
                let index = panicky(callback).unwrap_or(0) as u8;
                out.push(PANIC_OPCODE + index);
            }
            Op::HangConnect(n) => out.extend([HANG_OPCODE, n]),
        }
    }
    out
}

/// The fuzz body: decode, run, panic with the failing sequence on a
/// violated invariant.
pub fn pool_ops(data: &[u8]) {
    let (setup, ops) = decode(data);
    if let Err(failure) = run(setup, &ops) {
        panic!("{failure}");
    }
}

// ----------------------------------------------------------------- panics

/// The payload of every panic the harness injects into a callback.
#[derive(Debug)]
pub struct InjectedPanic(pub Callback);

fn inject(callback: Callback) -> ! {
    std::panic::panic_any(InjectedPanic(callback))
}

/// Keeps injected panics quiet: the pool catches them, and under
/// cargo-fuzz the panic hook libfuzzer-sys installs would abort the process
/// on any panic, caught or not. Every other panic goes to the hook that was
/// there before (libfuzzer's abort, or the default message).
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<InjectedPanic>().is_none() {
                previous(info);
            }
        }));
    });
}

/// What a panic that reached the harness carried.
fn describe(payload: &(dyn Any + Send)) -> String {
    if let Some(InjectedPanic(callback)) = payload.downcast_ref::<InjectedPanic>() {
        format!("the panic injected into {}", callback.as_str())
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-string payload".to_owned()
    }
}

// ---------------------------------------------------------------- manager

/// What the manager and the hooks have seen; shared with the harness.
#[derive(Debug, Default)]
struct Record {
    /// Ids of connections opened and not yet dropped.
    live: BTreeSet<usize>,
    /// Connections opened so far (ids are 1, 2, ...).
    opened: usize,
    /// Calls of each callback of [`PANICKY`] (`connect` and `is_valid`
    /// counted whether they succeed or not; `Close` is a connection drop).
    calls: PerCallback,
    /// Injected panics not yet fired.
    armed: PerCallback,
    /// Injected panics fired.
    fired: PerCallback,
    /// The next N connects fail.
    fail_connects: usize,
    /// The next N validity checks fail.
    fail_validations: usize,
    /// Things that must never happen (a connection dropped twice).
    anomalies: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Record>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic elsewhere must not hide the record behind poisoning.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call of `callback`.
    fn count(&self, callback: Callback) {
        if let Some(index) = panicky(callback) {
            self.lock().calls[index] += 1;
        }
    }

    /// Panics (outside the lock) if a panic is armed for `callback`.
    fn maybe_panic(&self, callback: Callback) {
        let Some(index) = panicky(callback) else {
            return;
        };
        let fire = {
            let mut record = self.lock();
            if record.armed[index] > 0 {
                record.armed[index] -= 1;
                record.fired[index] += 1;
                true
            } else {
                false
            }
        };
        if fire {
            inject(callback);
        }
    }

    /// A call of `callback`: counted, then it panics if armed to.
    fn call(&self, callback: Callback) {
        self.count(callback);
        self.maybe_panic(callback);
    }

    /// No armed panic fires any more (a failed run cleans up quietly).
    fn disarm(&self) {
        self.lock().armed = [0; CALLBACKS];
    }
}

/// The harness's connect failure.
#[derive(Debug)]
pub struct OpsError;

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected failure")
    }
}

impl std::error::Error for OpsError {}

/// A pooled connection: an id, and a flag `has_broken` reports.
#[derive(Debug)]
pub struct OpsConn {
    id: usize,
    broken: bool,
    record: Recorder,
}

impl Drop for OpsConn {
    fn drop(&mut self) {
        {
            let mut record = self.record.lock();
            if !record.live.remove(&self.id) {
                let message = format!("connection {} dropped twice", self.id);
                record.anomalies.push(message);
            }
        }
        // After the bookkeeping: a panicking close still closed the
        // connection (as tests/support does).
        self.record.call(Callback::Close);
    }
}

/// The gate the connect of a [`Op::HangConnect`] blocks on.
#[derive(Debug, Default)]
struct HangGate {
    /// The next `connect` blocks.
    armed: AtomicBool,
    /// Set by that connect right before it blocks.
    entered: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
}

impl HangGate {
    fn arm(&self) {
        *self.lock() = false;
        self.entered.store(false, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) {
        *self.lock() = true;
        self.opened.notify_all();
    }

    /// Called by `connect`: blocks until the gate opens if it was armed.
    fn pass(&self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        self.entered.store(true, Ordering::SeqCst);
        let mut open = self.lock();
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Opens the gate when dropped, so that no path out of a hang (an early
/// error included) leaves the second thread blocked.
struct OpenOnDrop<'a>(&'a HangGate);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

struct OpsManager {
    record: Recorder,
    gate: Arc<HangGate>,
}

impl Manager for OpsManager {
    type Connection = OpsConn;
    type Error = OpsError;

    fn connect(&self) -> Result<OpsConn, OpsError> {
        self.record.count(Callback::Connect);
        // A hang comes first, so what was armed meanwhile decides the outcome.
        self.gate.pass();
        self.record.maybe_panic(Callback::Connect);
        let mut record = self.record.lock();
        if record.fail_connects > 0 {
            record.fail_connects -= 1;
            return Err(OpsError);
        }
        record.opened += 1;
        let id = record.opened;
        record.live.insert(id);
        Ok(OpsConn {
            id,
            broken: false,
            record: self.record.clone(),
        })
    }

    fn is_valid(&self, _conn: &mut OpsConn) -> Result<(), OpsError> {
        self.record.call(Callback::IsValid);
        let mut record = self.record.lock();
        if record.fail_validations > 0 {
            record.fail_validations -= 1;
            return Err(OpsError);
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut OpsConn) -> bool {
        self.record.call(Callback::HasBroken);
        conn.broken
    }

    fn reset(&self, _conn: &mut OpsConn) -> Result<(), OpsError> {
        self.record.call(Callback::Reset);
        Ok(())
    }

    fn classify(&self, _error: &OpsError) -> slotpool::ErrorClass {
        self.record.call(Callback::Classify);
        slotpool::ErrorClass::Transient
    }

    fn on_reconfigure(&self, _config: &PoolConfig) {
        self.record.call(Callback::OnReconfigure);
    }
}

/// Hooks that only count their calls (and panic when armed to).
struct OpsEvents {
    record: Recorder,
}

impl PoolEvents for OpsEvents {
    fn on_acquire(
        &self,
        _slot: usize,
        _waited: Duration,
        _site: &'static std::panic::Location<'static>,
    ) {
        self.record.call(Callback::OnAcquire);
    }

    fn on_release(&self, _slot: usize) {
        self.record.call(Callback::OnRelease);
    }

    fn on_create(&self, _slot: usize, _took: Duration) {
        self.record.call(Callback::OnCreate);
    }

    fn on_close(&self, _slot: usize, _reason: CloseReason) {
        self.record.call(Callback::OnClose);
    }

    fn on_timeout(&self, _waited: Duration) {
        self.record.call(Callback::OnTimeout);
    }
}

// ------------------------------------------------------------------ model

fn reason_index(reason: CloseReason) -> usize {
    CloseReason::ALL
        .iter()
        .position(|&r| r == reason)
        .unwrap_or(0)
}

/// The reference model.
#[derive(Debug, Default)]
struct Model {
    /// Ids held by guards, in the order of `held` guards.
    held: Vec<usize>,
    /// Idle ids and when each was last returned (ns on the manual clock).
    idle: BTreeMap<usize, u64>,
    /// Connects in flight (1 while one hangs).
    connecting: usize,
    max_size: usize,
    min_idle: usize,
    window: u64,
    now: u64,
    closed: bool,
    /// The pool has `PoolEvents` hooks.
    events: bool,
    /// A `try_get` asked for a connection that has not been opened yet.
    demand: bool,
    opened: usize,
    /// Expected calls, panics fired and panics armed, per callback.
    calls: PerCallback,
    fired: PerCallback,
    armed: PerCallback,
    fail_connects: usize,
    fail_validations: usize,
    /// Expected `stats().counters`.
    closed_for: [u64; CloseReason::ALL.len()],
    created: u64,
    connect_failures: u64,
    validation_failures: u64,
}

impl Model {
    /// Room taken: held, idle and connecting.
    fn total(&self) -> usize {
        self.held.len() + self.idle.len() + self.connecting
    }

    fn stale(&self, returned_at: u64) -> bool {
        self.now.saturating_sub(returned_at) >= self.window
    }

    /// Whether the background wants another connection now.
    fn wants_connection(&self) -> bool {
        !self.closed
            && self.total() < self.max_size
            && (self.demand || self.idle.len() < self.min_idle)
    }

    /// Whether `callback` is called at all in this pool (hooks only with
    /// `events`).
    fn calls_made(&self, callback: Callback) -> bool {
        !is_hook(callback) || self.events
    }

    /// The pool calls `callback`: counts it; true if an armed panic fires.
    fn call(&mut self, callback: Callback) -> bool {
        let Some(index) = panicky(callback) else {
            return false;
        };
        if !self.calls_made(callback) {
            return false;
        }
        self.calls[index] += 1;
        self.fire(index)
    }

    /// An armed panic of callback `index` fires, if there is one.
    fn fire(&mut self, index: usize) -> bool {
        if self.armed[index] > 0 {
            self.armed[index] -= 1;
            self.fired[index] += 1;
            true
        } else {
            false
        }
    }

    /// The pool closes one connection: the `on_close` hook, then its drop.
    fn close(&mut self, reason: CloseReason) {
        self.closed_for[reason_index(reason)] += 1;
        self.call(Callback::OnClose);
        self.call(Callback::Close);
    }

    /// The end of a connect whose call was already counted (and whose
    /// `connecting` is already 0): a panic (armed when it got there), an
    /// injected failure (classified), or a new connection. True if it
    /// opened one.
    ///
    /// A new connection is published by the background (`on_create` first):
    /// if the pool holds more than `max_size` (its own room counted; only
    /// after a shrink while it was connecting) its room is taken back and
    /// it is closed as `Shrink`, before the closed pool is looked at, as a
    /// return is; else closed as `PoolClosed` if the pool closed meanwhile;
    /// else idle (nobody waits on this single-threaded harness).
    fn end_connect(&mut self) -> bool {
        if self.fire(0) {
            // Connect is PANICKY[0]: a failed attempt, no classification.
            self.connect_failures += 1;
            return false;
        }
        if self.fail_connects > 0 {
            self.fail_connects -= 1;
            self.connect_failures += 1;
            self.call(Callback::Classify);
            return false;
        }
        self.opened += 1;
        self.created += 1;
        self.demand = false;
        self.call(Callback::OnCreate);
        if self.total() + 1 > self.max_size {
            self.close(CloseReason::Shrink);
        } else if self.closed {
            self.close(CloseReason::PoolClosed);
        } else {
            self.idle.insert(self.opened, self.now);
        }
        true
    }

    /// One background step's connects: while wanted, a failure ending the
    /// pass (manual mode).
    fn connect_while_wanted(&mut self) {
        while self.wants_connection() {
            self.calls[0] += 1;
            if !self.end_connect() {
                break;
            }
        }
    }

    /// Idle ids the manager no longer has alive: the ones the pool closed
    /// during the last step. Removes them from the model.
    fn take_closed_idle(&mut self, live: &BTreeSet<usize>) -> Vec<(usize, u64)> {
        let gone: Vec<(usize, u64)> = self
            .idle
            .iter()
            .filter(|(id, _)| !live.contains(id))
            .map(|(&id, &at)| (id, at))
            .collect();
        for (id, _) in &gone {
            self.idle.remove(id);
        }
        gone
    }
}

/// A violated invariant: where, and the sequence that led there.
#[derive(Debug)]
pub struct Failure {
    /// The setup the pool was built with.
    pub setup: Setup,
    /// The ops up to and including the failing one.
    pub ops: Vec<Op>,
    /// What broke.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pool_ops invariant violated: {}", self.message)?;
        writeln!(f, "setup: {:?}", self.setup)?;
        writeln!(f, "ops ({}), last one failed:", self.ops.len())?;
        for (step, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {step:3}: {op:?}")?;
        }
        write!(f, "input bytes: {:?}", encode(self.setup, &self.ops))
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn config_for(setup: Setup) -> PoolConfig {
    let max_size = setup.max_size.clamp(1, CAPACITY);
    PoolConfig {
        pool_name: "pool_ops".to_owned(),
        max_size: u32::from(max_size),
        min_idle: u32::from(setup.min_idle.min(max_size)),
        capacity: Some(u32::from(CAPACITY)),
        validation_idle_window: Duration::from_millis(u64::from(setup.window_ms)),
        // Maintenance that would act on the clock alone is off: the model
        // covers checkout, return, connect, resize and close.
        idle_timeout: None,
        max_lifetime: None,
        keepalive_interval: None,
        leak_detection_threshold: None,
        max_waiters: 0,
        fail_fast_after: 0,
        ..PoolConfig::default()
    }
}

/// What every op works on.
struct Harness<'p> {
    pool: &'p Pool<OpsManager>,
    clock: Arc<ManualClock>,
    record: Recorder,
    gate: Arc<HangGate>,
}

/// Disarms every injected panic when dropped: declared after the pool and
/// the guards, it runs before they drop on an early return.
struct DisarmOnDrop(Recorder);

impl Drop for DisarmOnDrop {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

/// Builds the pool, applies `ops` one at a time to it and to the model, and
/// checks the invariants after every step and at the end.
pub fn run(setup: Setup, ops: &[Op]) -> Result<(), Failure> {
    quiet_injected_panics();
    let fail = |step: usize, message: String| Failure {
        setup,
        ops: ops[..(step + 1).min(ops.len())].to_vec(),
        message,
    };
    let record = Recorder::default();
    let gate = Arc::new(HangGate::default());
    let clock = ManualClock::new();
    let config = config_for(setup);
    let mut model = Model {
        max_size: config.max_size as usize,
        min_idle: config.min_idle as usize,
        window: u64::try_from(config.validation_idle_window.as_nanos()).unwrap_or(u64::MAX),
        events: setup.events,
        ..Model::default()
    };
    let mut builder = Pool::builder()
        .config(config)
        .clock(clock.clone())
        .manual_background();
    if setup.events {
        builder = builder.event_handler(OpsEvents {
            record: record.clone(),
        });
    }
    let pool = builder
        .build(OpsManager {
            record: record.clone(),
            gate: gate.clone(),
        })
        .map_err(|error| fail(0, format!("build failed: {error}")))?;
    let harness = Harness {
        pool: &pool,
        clock,
        record: record.clone(),
        gate,
    };
    let mut guards: Vec<PooledConnection<'_, OpsManager>> = Vec::new();
    let disarm = DisarmOnDrop(record.clone());
    check(&harness, &model).map_err(|message| fail(0, format!("after build: {message}")))?;
    let mut step = 0;
    while step < ops.len() {
        if let Op::HangConnect(n) = ops[step] {
            let window = ops[step + 1..]
                .iter()
                .take(usize::from(n.min(HANG_MAX)))
                .take_while(|op| op.runs_during_hang())
                .count();
            let during = &ops[step + 1..step + 1 + window];
            hang(&harness, &mut model, &mut guards, step, during)
                .map_err(|(at, message)| fail(at, message))?;
            step += 1 + window;
        } else {
            apply_and_check(&harness, &mut model, &mut guards, ops[step])
                .map_err(|message| fail(step, message))?;
            step += 1;
        }
    }
    let last = ops.len().saturating_sub(1);
    let at_end = |message| fail(last, format!("at the end: {message}"));
    finish(&harness, &mut model, guards).map_err(at_end)?;
    // Invariant 6 for handles: the pool closes when its last handle goes.
    drop(harness);
    let clone = pool.clone();
    drop(pool);
    if clone.is_closed() != model.closed {
        return Err(at_end(
            "dropping one of two handles changed is_closed()".to_owned(),
        ));
    }
    if !model.closed {
        for _ in 0..model.idle.len() {
            model.close(CloseReason::PoolClosed);
        }
        model.idle.clear();
    }
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(clone)));
    if let Err(payload) = dropped {
        return Err(at_end(format!(
            "dropping the last handle let a panic escape: {}",
            describe(payload.as_ref())
        )));
    }
    let record = record.lock();
    if !record.live.is_empty() || !record.anomalies.is_empty() {
        let message = format!(
            "after the last handle dropped: live {:?}, anomalies {:?}",
            record.live, record.anomalies
        );
        return Err(at_end(message));
    }
    if record.calls != model.calls || record.fired != model.fired || record.armed != model.armed {
        let message = format!(
            "after the last handle dropped: calls {:?}, panics fired {:?}, armed {:?}; \
             model: calls {:?}, fired {:?}, armed {:?} (order: {PANICKY:?})",
            record.calls, record.fired, record.armed, model.calls, model.fired, model.armed
        );
        return Err(at_end(message));
    }
    drop(record);
    drop(disarm);
    Ok(())
}

/// How a get or `try_get` failed, for the checks.
#[derive(Debug, PartialEq, Eq)]
enum GetFailure {
    Closed,
    NoIdle,
    TimedOut,
    Other(String),
}

/// [`apply`] inside a panic boundary (a panic that escapes the pool is a
/// failure), then [`check`].
fn apply_and_check<'p>(
    harness: &Harness<'p>,
    model: &mut Model,
    guards: &mut Vec<PooledConnection<'p, OpsManager>>,
    op: Op,
) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| apply(harness, model, guards, op))) {
        Ok(result) => result?,
        Err(payload) => {
            return Err(format!(
                "{op:?}: a panic escaped the pool: {}",
                describe(payload.as_ref())
            ));
        }
    }
    check(harness, model)
}

/// Applies one op to the pool and the model, checking what the op itself
/// returned and closed.
fn apply<'p>(
    harness: &Harness<'p>,
    model: &mut Model,
    guards: &mut Vec<PooledConnection<'p, OpsManager>>,
    op: Op,
) -> Result<(), String> {
    let pool = harness.pool;
    let record = &harness.record;
    let is_valid = panicky(Callback::IsValid).unwrap_or(0);
    match op {
        Op::TryGet | Op::GetZero => {
            let validations_before = record.lock().calls[is_valid];
            // Both calls' failures, as one enum the checks below compare.
            let result = if op == Op::TryGet {
                pool.try_get().map_err(|error| match error {
                    TryGetError::Closed { .. } => GetFailure::Closed,
                    TryGetError::NoIdle { .. } => GetFailure::NoIdle,
                    other => GetFailure::Other(format!("{other:?}")),
                })
            } else {
                pool.get_timeout(Duration::ZERO)
                    .map_err(|error| match error {
                        Error::Closed { .. } => GetFailure::Closed,
                        Error::TimedOut { .. } => GetFailure::TimedOut,
                        other => GetFailure::Other(format!("{other:?}")),
                    })
            };
            if model.closed {
                return match result {
                    Err(GetFailure::Closed) => Ok(()),
                    Err(other) => Err(format!("get after close failed with {other:?}, not Closed")),
                    Ok(conn) => Err(format!("get after close returned connection {}", conn.id)),
                };
            }
            let (live, validations) = {
                let record = record.lock();
                (record.live.clone(), record.calls[is_valid])
            };
            let checks = validations - validations_before;
            // Each check fires an armed panic first, then an injected
            // failure; either way the connection is closed.
            let mut invalid = 0;
            for _ in 0..checks {
                model.calls[is_valid] += 1;
                if model.fire(is_valid) {
                    invalid += 1;
                } else if model.fail_validations > 0 {
                    model.fail_validations -= 1;
                    invalid += 1;
                }
            }
            model.validation_failures += invalid as u64;
            // Connections that failed validation are closed at checkout.
            let closed = model.take_closed_idle(&live);
            for &(id, returned_at) in &closed {
                ensure!(
                    model.stale(returned_at),
                    "checkout closed idle connection {id}, idle only {} ms (window {} ms)",
                    (model.now - returned_at) / MS,
                    model.window / MS
                );
                model.close(CloseReason::Invalid);
            }
            ensure!(
                closed.len() == invalid,
                "checkout ran {checks} validity checks, {invalid} of them failing or panicking, but closed {} connections",
                closed.len()
            );
            let passed = checks - closed.len();
            match result {
                Ok(conn) => {
                    let id = conn.id;
                    ensure!(
                        !model.held.contains(&id),
                        "invariant 1: connection {id} handed out while a guard holds it"
                    );
                    let Some(returned_at) = model.idle.remove(&id) else {
                        return Err(format!("handed out connection {id}, which was not idle"));
                    };
                    let expected = usize::from(model.stale(returned_at));
                    ensure!(
                        passed == expected,
                        "connection {id} (idle {} ms, window {} ms) passed {passed} validity checks, expected {expected}",
                        (model.now - returned_at) / MS,
                        model.window / MS
                    );
                    // The hook observes; a panic in it changes nothing.
                    model.call(Callback::OnAcquire);
                    model.held.push(id);
                    guards.push(conn);
                }
                Err(error) => {
                    let expected_kind = if op == Op::TryGet {
                        error == GetFailure::NoIdle
                    } else {
                        error == GetFailure::TimedOut
                    };
                    ensure!(
                        expected_kind,
                        "{op:?} failed with an unexpected error: {error:?}"
                    );
                    ensure!(
                        model.idle.is_empty(),
                        "{op:?} failed ({error:?}) with idle connections {:?}",
                        model.idle.keys().collect::<Vec<_>>()
                    );
                    ensure!(
                        passed == 0,
                        "{passed} connections passed validation, yet {op:?} failed"
                    );
                    if op == Op::TryGet {
                        if model.total() < model.max_size {
                            model.demand = true;
                        }
                    } else {
                        model.call(Callback::OnTimeout);
                    }
                }
            }
        }
        Op::Return(i) | Op::MarkBrokenAndReturn(i) | Op::BreakAndReturn(i) => {
            if guards.is_empty() {
                return Ok(());
            }
            let index = usize::from(i) % guards.len();
            let mut guard = guards.remove(index);
            let id = model.held.remove(index);
            ensure!(
                guard.id == id,
                "model out of step: guard {index} holds {}, model says {id}",
                guard.id
            );
            let total = model.total() + 1;
            match op {
                Op::MarkBrokenAndReturn(_) => guard.mark_broken(),
                Op::BreakAndReturn(_) => guard.broken = true,
                _ => {}
            }
            drop(guard);
            // The order of the return: the hook, a discard marked by the
            // user, `has_broken`, `reset`, the shrink, the closed pool. A
            // panicking check discards the connection like a failed one.
            model.call(Callback::OnRelease);
            let (close, why) = if let Op::MarkBrokenAndReturn(_) = op {
                (Some(CloseReason::Broken), "it was marked broken")
            } else if model.call(Callback::HasBroken) {
                (Some(CloseReason::Broken), "has_broken panicked")
            } else if let Op::BreakAndReturn(_) = op {
                (Some(CloseReason::Broken), "has_broken said so")
            } else if model.call(Callback::Reset) {
                (Some(CloseReason::ResetFailed), "reset panicked")
            } else if total > model.max_size {
                (
                    Some(CloseReason::Shrink),
                    "the pool is over max_size (invariant 2)",
                )
            } else if model.closed {
                (
                    Some(CloseReason::PoolClosed),
                    "the pool is closed (invariant 6)",
                )
            } else {
                (None, "it is healthy and there is room")
            };
            let alive = record.lock().live.contains(&id);
            ensure!(
                alive == close.is_none(),
                "returned connection {id} was {} but should have been {} because {why}",
                if alive { "kept" } else { "closed" },
                if close.is_none() { "kept" } else { "closed" }
            );
            match close {
                Some(reason) => model.close(reason),
                None => {
                    model.idle.insert(id, model.now);
                }
            }
        }
        Op::Reconfigure { max_size, min_idle } => {
            let max_size = max_size.clamp(1, CAPACITY);
            let min_idle = min_idle.min(max_size);
            let mut config = (*pool.config()).clone();
            config.max_size = u32::from(max_size);
            config.min_idle = u32::from(min_idle);
            pool.reconfigure(config).map_err(|error| {
                format!("reconfigure to max {max_size}, min_idle {min_idle} refused: {error}")
            })?;
            model.call(Callback::OnReconfigure);
            // A shrink retires idle excess at once; the room of a hanging
            // connect counts (its connection is retired on arrival only if
            // the pool is still over `max_size` then), in-use excess retires
            // on return. A grow or a `min_idle` change opens nothing here:
            // the background's next look (a step, or the hanging one's
            // loop once its connect ends) sees the new bounds.
            let excess = model.total().saturating_sub(usize::from(max_size));
            let expected = excess.min(model.idle.len());
            let live = record.lock().live.clone();
            let closed = model.take_closed_idle(&live);
            ensure!(
                closed.len() == expected,
                "shrink to {max_size} with {} held, {} idle and {} connecting closed {} idle connections, expected {expected}",
                model.held.len(),
                model.idle.len() + closed.len(),
                model.connecting,
                closed.len()
            );
            for _ in &closed {
                model.close(CloseReason::Shrink);
            }
            model.max_size = usize::from(max_size);
            model.min_idle = usize::from(min_idle);
        }
        Op::AdvanceClock(ms) => {
            harness.clock.advance(Duration::from_millis(u64::from(ms)));
            model.now += u64::from(ms) * MS;
        }
        Op::FailNextConnect => {
            record.lock().fail_connects += 1;
            model.fail_connects += 1;
        }
        Op::FailNextValidation => {
            record.lock().fail_validations += 1;
            model.fail_validations += 1;
        }
        Op::PanicNext(callback) => {
            if let Some(index) = panicky(callback) {
                record.lock().armed[index] += 1;
                model.armed[index] += 1;
            }
        }
        Op::StepBackground => {
            pool.run_background_step();
            model.connect_while_wanted();
        }
        Op::Close => {
            // Held guards may be out: close without waiting for them.
            let _ = pool.close_timeout(Duration::ZERO);
            if !model.closed {
                for _ in 0..model.idle.len() {
                    model.close(CloseReason::PoolClosed);
                }
            }
            // Fails at once: the closed check precedes any wait.
            if let Ok(conn) = pool.get() {
                return Err(format!(
                    "get() right after close returned connection {}",
                    conn.id
                ));
            }
            model.closed = true;
            model.demand = false;
            model.idle.clear();
        }
        Op::HangConnect(_) => {
            return Err("HangConnect is run by `hang`, not `apply`".to_owned());
        }
    }
    Ok(())
}

/// How the wait for the second thread's connect ended.
#[derive(Debug, PartialEq, Eq)]
enum Entered {
    /// It is blocked on the gate.
    Blocked,
    /// The step finished without calling `connect`.
    Finished,
    /// Neither within [`ENTER_LIMIT`].
    Stuck,
}

/// [`Op::HangConnect`] at index `at`, with `during` (the ops after it) run
/// while the connect hangs. Errors carry the index of the failing op.
fn hang<'p>(
    harness: &Harness<'p>,
    model: &mut Model,
    guards: &mut Vec<PooledConnection<'p, OpsManager>>,
    at: usize,
    during: &[Op],
) -> Result<(), (usize, String)> {
    let pool = harness.pool;
    let gate = &*harness.gate;
    let expect_connect = model.wants_connection();
    let last = at + during.len();
    gate.arm();
    let outcome = thread::scope(|scope| {
        // Dropped before the scope joins the thread, on every way out.
        let opener = OpenOnDrop(gate);
        let stepper = scope.spawn(|| catch_unwind(AssertUnwindSafe(|| pool.run_background_step())));
        let started = Instant::now();
        let entered = loop {
            if gate.entered.load(Ordering::SeqCst) {
                break Entered::Blocked;
            }
            if stepper.is_finished() {
                break if gate.entered.load(Ordering::SeqCst) {
                    Entered::Blocked
                } else {
                    Entered::Finished
                };
            }
            if started.elapsed() > ENTER_LIMIT {
                break Entered::Stuck;
            }
            thread::yield_now();
        };
        match (expect_connect, entered) {
            (_, Entered::Stuck) => {
                return Err((
                    at,
                    format!(
                        "the background step neither connected nor finished within {ENTER_LIMIT:?}"
                    ),
                ));
            }
            (true, Entered::Finished) => {
                return Err((
                    at,
                    "the model wants a connection, but the background step finished without \
                     connecting"
                        .to_owned(),
                ));
            }
            (false, Entered::Blocked) => {
                return Err((
                    at,
                    "the background step connected although the model wants no connection"
                        .to_owned(),
                ));
            }
            (false, Entered::Finished) => {
                // Nothing wanted: the step is over; the ops simply follow it.
                step_ended(at, stepper.join())?;
                check(harness, model).map_err(|message| (at, message))?;
                drop(opener);
                for (offset, &op) in during.iter().enumerate() {
                    apply_and_check(harness, model, guards, op)
                        .map_err(|message| (at + 1 + offset, message))?;
                }
                return Ok(());
            }
            (true, Entered::Blocked) => {}
        }
        // The connect holds its room while it hangs.
        model.calls[0] += 1;
        model.connecting = 1;
        check(harness, model)
            .map_err(|message| (at, format!("while a connect hangs: {message}")))?;
        for (offset, &op) in during.iter().enumerate() {
            apply_and_check(harness, model, guards, op).map_err(|message| {
                (at + 1 + offset, format!("while a connect hangs: {message}"))
            })?;
        }
        drop(opener);
        step_ended(last, stepper.join())?;
        // The hung connect ends as armed now (a panic or failure armed while
        // it hung applies to it), then the step goes on while connections
        // are wanted (a grow or a raised `min_idle` meanwhile counts).
        let total = model.total();
        model.connecting = 0;
        let arriving = model.opened + 1;
        if model.end_connect() {
            let kept = model.idle.contains_key(&arriving);
            let alive = harness.record.lock().live.contains(&arriving);
            if alive != kept {
                let why = if total > model.max_size {
                    "the pool was over max_size: its room is taken back (invariant 2)"
                } else if model.closed {
                    "the pool is closed (invariant 6)"
                } else {
                    "there was room for it"
                };
                return Err((
                    last,
                    format!(
                        "the connect that hung arrived with {total} connections (its own \
                         counted) for max_size {}; its connection {arriving} was {} but should \
                         have been {} because {why}",
                        model.max_size,
                        if alive { "kept" } else { "closed" },
                        if kept { "kept" } else { "closed" },
                    ),
                ));
            }
            model.connect_while_wanted();
        }
        check(harness, model).map_err(|message| (last, format!("after a connect hung: {message}")))
    });
    gate.armed.store(false, Ordering::SeqCst);
    outcome
}

/// The second thread's `run_background_step()` returned, or a panic escaped
/// it.
fn step_ended(
    at: usize,
    joined: thread::Result<thread::Result<()>>,
) -> Result<(), (usize, String)> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(payload)) | Err(payload) => Err((
            at,
            format!(
                "a panic escaped run_background_step: {}",
                describe(payload.as_ref())
            ),
        )),
    }
}

/// The invariants that hold after every step.
fn check(harness: &Harness<'_>, model: &Model) -> Result<(), String> {
    let pool = harness.pool;
    let record = harness.record.lock();
    ensure!(
        record.anomalies.is_empty(),
        "manager saw: {:?}",
        record.anomalies
    );
    let mut expected: BTreeSet<usize> = model.idle.keys().copied().collect();
    for &id in &model.held {
        ensure!(
            expected.insert(id),
            "invariant 1: connection {id} held twice (or held and idle)"
        );
    }
    ensure!(
        record.live == expected,
        "live connections {:?}, model expects {:?} (held {:?}, idle {:?})",
        record.live,
        expected,
        model.held,
        model.idle.keys().collect::<Vec<_>>()
    );
    ensure!(
        record.opened == model.opened,
        "manager opened {}, model expects {}",
        record.opened,
        model.opened
    );
    ensure!(
        record.calls == model.calls && record.fired == model.fired && record.armed == model.armed,
        "callbacks {PANICKY:?}: called {:?}, panicked {:?}, armed {:?}; model: called {:?}, panicked {:?}, armed {:?}",
        record.calls,
        record.fired,
        record.armed,
        model.calls,
        model.fired,
        model.armed
    );
    ensure!(
        record.fail_validations == model.fail_validations
            && record.fail_connects == model.fail_connects,
        "injected failures out of step: manager has {} connects and {} checks to fail, model {} and {}",
        record.fail_connects,
        record.fail_validations,
        model.fail_connects,
        model.fail_validations
    );
    let live = record.live.len() as u32;
    drop(record);
    let state = pool.state();
    let held = model.held.len() as u32;
    let connecting = model.connecting as u32;
    ensure!(
        state.in_use == held
            && state.idle_connections == model.idle.len() as u32
            && state.connecting == connecting
            && state.waiting == 0
            && state.connections == live + connecting
            && state.max_size == model.max_size as u32,
        "state() = {state:?}; model: {} held, {} idle, {} connecting, max_size {}, manager: {} live",
        held,
        model.idle.len(),
        connecting,
        model.max_size,
        live
    );
    // Invariant 2. Room for a connect is reserved under max_size and held
    // until it ends; a shrink retires idle excess at once, in-use excess on
    // return and a connect's on arrival, so until then the pool may hold
    // more than max_size, but never more than is in use or on its way.
    ensure!(
        state.connections <= state.max_size.max(state.in_use + state.connecting),
        "invariant 2: {state:?} exceeds max(max_size, in_use + connecting)"
    );
    ensure!(
        state.connections <= state.max_size || state.idle_connections == 0,
        "invariant 2: {state:?} keeps connections idle above max_size"
    );
    if held == 0 {
        ensure!(
            state.connections <= state.max_size,
            "invariant 2: nothing held ({connecting} connecting), yet {state:?} exceeds max_size"
        );
    }
    ensure!(
        pool.is_closed() == model.closed,
        "is_closed() = {}, model says {}",
        pool.is_closed(),
        model.closed
    );
    if model.closed && held == 0 {
        ensure!(
            live == 0,
            "invariant 6: closed and nothing held, yet {live} live"
        );
    }
    let counters = pool.stats().counters;
    for callback in Callback::ALL {
        let expected = panicky(callback).map_or(0, |index| model.fired[index]) as u64;
        let counted = counters.callback_panics(callback);
        ensure!(
            counted == expected,
            "callback_panics({}) = {counted}, but {expected} panics were injected into it",
            callback.as_str()
        );
    }
    for reason in CloseReason::ALL {
        let expected = model.closed_for[reason_index(reason)];
        let counted = counters.closed(reason);
        ensure!(
            counted == expected,
            "closed({}) = {counted}, model expects {expected}",
            reason.as_str()
        );
    }
    let is_valid = panicky(Callback::IsValid).unwrap_or(0);
    ensure!(
        counters.created == model.created
            && counters.connect_failures == model.connect_failures
            && counters.validations == model.calls[is_valid] as u64
            && counters.validation_failures == model.validation_failures,
        "counters: created {}, connect_failures {}, validations {}, validation_failures {}; model: {}, {}, {}, {}",
        counters.created,
        counters.connect_failures,
        counters.validations,
        counters.validation_failures,
        model.created,
        model.connect_failures,
        model.calls[is_valid],
        model.validation_failures
    );
    Ok(())
}

/// Returns every guard (in order, as `Return(0)` would) and checks the pool
/// at rest.
fn finish<'p>(
    harness: &Harness<'p>,
    model: &mut Model,
    mut guards: Vec<PooledConnection<'p, OpsManager>>,
) -> Result<(), String> {
    while !guards.is_empty() {
        apply_and_check(harness, model, &mut guards, Op::Return(0))?;
    }
    check(harness, model)
}

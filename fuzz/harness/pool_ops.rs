//! The pool as a state machine: a list of operations applied on one thread
//! to a real pool (manual clock, manual background work, a fault-injecting
//! manager) and to a reference model, with the invariants of docs/DESIGN.md
//! checked after every step.
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
//! the model's prediction: which connections, how many, and why.
//!
//! # Invariants checked after every step
//!
//! * 1: a connection handed out is one the model holds as idle, never one a
//!   guard already holds.
//! * 2: `connections <= max(max_size, in_use)` at every step (a shrink
//!   retires in-use excess only on return), and `<= max_size` once nothing
//!   is held.
//! * 6: after `Close`, every get fails with `Error::Closed`, idle connections
//!   are closed at once, held ones on return, and the manager's live count is
//!   0 once everything is back; dropping the pool closes everything.
//! * `state()` agrees with the model: `in_use`, `idle_connections`,
//!   `connecting == 0`, `waiting == 0`, `connections == ` the manager's live
//!   count, `max_size`; `is_closed()`; the manager's connect and validation
//!   counters.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use slotpool::{Error, Manager, ManualClock, Pool, PoolConfig, PooledConnection, TryGetError};

/// Slot-array capacity of every pool the harness builds: the ceiling for
/// `Reconfigure`.
pub const CAPACITY: u8 = 6;
/// Operations decoded from one fuzz input at most (keeps executions fast).
pub const MAX_OPS: usize = 512;
const MS: u64 = 1_000_000;

/// How the pool is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Initial `max_size`, 1..=[`CAPACITY`].
    pub max_size: u8,
    /// Initial `min_idle`, clamped to `max_size`.
    pub min_idle: u8,
    /// `validation_idle_window` in milliseconds (0 validates every checkout).
    pub window_ms: u16,
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
}

// ------------------------------------------------------------------ bytes

/// Decodes a fuzz input: two setup bytes, then one opcode byte per op
/// (followed by an argument byte for ops that take one). Missing bytes read
/// as 0, so every input decodes.
pub fn decode(data: &[u8]) -> (Setup, Vec<Op>) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let first = next().unwrap_or(0);
    let second = next().unwrap_or(0);
    let max_size = 1 + first % CAPACITY;
    let setup = Setup {
        max_size,
        min_idle: (second & 0x7f) % (max_size + 1),
        window_ms: if second & 0x80 != 0 { 0 } else { 1000 },
    };
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(code) = next() else { break };
        let mut arg = || next().unwrap_or(0);
        let op = match code % 32 {
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
            _ => Op::Close,
        };
        ops.push(op);
    }
    (setup, ops)
}

/// The inverse of [`decode`] for ops that [`decode`] can produce (used to
/// write seeds and to test the decoder).
pub fn encode(setup: Setup, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![
        setup.max_size.wrapping_sub(1),
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

// ---------------------------------------------------------------- manager

/// What the manager has seen; shared with the harness.
#[derive(Debug, Default)]
struct Record {
    /// Ids of connections opened and not yet dropped.
    live: BTreeSet<usize>,
    /// Connections opened so far (ids are 1, 2, ...).
    opened: usize,
    /// `connect()` calls, successful or not.
    connects: usize,
    /// `is_valid()` calls.
    validations: usize,
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
        let mut record = self.record.lock();
        if !record.live.remove(&self.id) {
            let message = format!("connection {} dropped twice", self.id);
            record.anomalies.push(message);
        }
    }
}

struct OpsManager {
    record: Recorder,
}

impl Manager for OpsManager {
    type Connection = OpsConn;
    type Error = OpsError;

    fn connect(&self) -> Result<OpsConn, OpsError> {
        let mut record = self.record.lock();
        record.connects += 1;
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
        let mut record = self.record.lock();
        record.validations += 1;
        if record.fail_validations > 0 {
            record.fail_validations -= 1;
            return Err(OpsError);
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut OpsConn) -> bool {
        conn.broken
    }
}

// ------------------------------------------------------------------ model

/// The reference model.
#[derive(Debug, Default)]
struct Model {
    /// Ids held by guards, in the order of `held` guards.
    held: Vec<usize>,
    /// Idle ids and when each was last returned (ns on the manual clock).
    idle: BTreeMap<usize, u64>,
    max_size: usize,
    min_idle: usize,
    window: u64,
    now: u64,
    closed: bool,
    /// A `try_get` asked for a connection that has not been opened yet.
    demand: bool,
    opened: usize,
    connects: usize,
    validations: usize,
    fail_connects: usize,
    fail_validations: usize,
}

impl Model {
    fn total(&self) -> usize {
        self.held.len() + self.idle.len()
    }

    fn stale(&self, returned_at: u64) -> bool {
        self.now.saturating_sub(returned_at) >= self.window
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

/// Builds the pool, applies `ops` one at a time to it and to the model, and
/// checks the invariants after every step and at the end.
pub fn run(setup: Setup, ops: &[Op]) -> Result<(), Failure> {
    let fail = |step: usize, message: String| Failure {
        setup,
        ops: ops[..(step + 1).min(ops.len())].to_vec(),
        message,
    };
    let record = Recorder::default();
    let clock = ManualClock::new();
    let config = config_for(setup);
    let mut model = Model {
        max_size: config.max_size as usize,
        min_idle: config.min_idle as usize,
        window: u64::try_from(config.validation_idle_window.as_nanos()).unwrap_or(u64::MAX),
        ..Model::default()
    };
    let pool = Pool::builder()
        .config(config)
        .clock(clock.clone())
        .manual_background()
        .build(OpsManager {
            record: record.clone(),
        })
        .map_err(|error| fail(0, format!("build failed: {error}")))?;
    let mut guards: Vec<PooledConnection<'_, OpsManager>> = Vec::new();
    check(&pool, &record, &model).map_err(|message| fail(0, format!("after build: {message}")))?;
    for (step, &op) in ops.iter().enumerate() {
        apply(&pool, &clock, &record, &mut model, &mut guards, op)
            .and_then(|()| check(&pool, &record, &model))
            .map_err(|message| fail(step, message))?;
    }
    let last = ops.len().saturating_sub(1);
    let at_end = |message| fail(last, format!("at the end: {message}"));
    finish(&pool, &record, &mut model, guards).map_err(at_end)?;
    // Invariant 6 for handles: the pool closes when its last handle goes.
    let clone = pool.clone();
    drop(pool);
    if clone.is_closed() != model.closed {
        return Err(at_end(
            "dropping one of two handles changed is_closed()".to_owned(),
        ));
    }
    drop(clone);
    let record = record.lock();
    if !record.live.is_empty() || !record.anomalies.is_empty() {
        let message = format!(
            "after the last handle dropped: live {:?}, anomalies {:?}",
            record.live, record.anomalies
        );
        return Err(at_end(message));
    }
    Ok(())
}

/// Applies one op to the pool and the model, checking what the op itself
/// returned and closed.
/// How a get or `try_get` failed, for the checks.
#[derive(Debug, PartialEq, Eq)]
enum GetFailure {
    Closed,
    NoIdle,
    TimedOut,
    Other(String),
}

fn apply<'p>(
    pool: &'p Pool<OpsManager>,
    clock: &ManualClock,
    record: &Recorder,
    model: &mut Model,
    guards: &mut Vec<PooledConnection<'p, OpsManager>>,
    op: Op,
) -> Result<(), String> {
    match op {
        Op::TryGet | Op::GetZero => {
            let validations_before = record.lock().validations;
            let budget = model.fail_validations;
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
                (record.live.clone(), record.validations)
            };
            let checks = validations - validations_before;
            model.validations += checks;
            // Connections that failed validation are closed at checkout.
            let closed = model.take_closed_idle(&live);
            for &(id, returned_at) in &closed {
                ensure!(
                    model.stale(returned_at),
                    "checkout closed idle connection {id}, idle only {} ms (window {} ms)",
                    (model.now - returned_at) / MS,
                    model.window / MS
                );
            }
            ensure!(
                closed.len() == budget.min(checks),
                "checkout ran {checks} validity checks with {budget} set to fail, but closed {} connections",
                closed.len()
            );
            model.fail_validations -= closed.len();
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
                    if op == Op::TryGet && model.total() < model.max_size {
                        model.demand = true;
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
            let alive = record.lock().live.contains(&id);
            let (keep, why) = if model.closed {
                (false, "the pool is closed (invariant 6)")
            } else if op != Op::Return(i) {
                (false, "it is broken")
            } else if total > model.max_size {
                (false, "the pool is over max_size (invariant 2)")
            } else {
                (true, "it is healthy and there is room")
            };
            ensure!(
                alive == keep,
                "returned connection {id} was {} but should have been {} because {why}",
                if alive { "kept" } else { "closed" },
                if keep { "kept" } else { "closed" }
            );
            if keep {
                model.idle.insert(id, model.now);
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
            let excess = model.total().saturating_sub(usize::from(max_size));
            let expected = excess.min(model.idle.len());
            let live = record.lock().live.clone();
            let closed = model.take_closed_idle(&live);
            ensure!(
                closed.len() == expected,
                "shrink to {max_size} with {} held and {} idle closed {} idle connections, expected {expected}",
                model.held.len(),
                model.idle.len() + closed.len(),
                closed.len()
            );
            model.max_size = usize::from(max_size);
            model.min_idle = usize::from(min_idle);
        }
        Op::AdvanceClock(ms) => {
            clock.advance(Duration::from_millis(u64::from(ms)));
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
        Op::StepBackground => {
            pool.run_background_step();
            while !model.closed
                && model.total() < model.max_size
                && (model.demand || model.idle.len() < model.min_idle)
            {
                model.connects += 1;
                if model.fail_connects > 0 {
                    model.fail_connects -= 1;
                    break; // manual mode: a failure ends the pass
                }
                model.opened += 1;
                model.idle.insert(model.opened, model.now);
                model.demand = false;
            }
        }
        Op::Close => {
            // Held guards may be out: close without waiting for them.
            let _ = pool.close_timeout(Duration::ZERO);
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
    }
    Ok(())
}

/// The invariants that hold after every step.
fn check(pool: &Pool<OpsManager>, record: &Recorder, model: &Model) -> Result<(), String> {
    let record = record.lock();
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
        record.opened == model.opened && record.connects == model.connects,
        "manager opened {} in {} connect calls, model expects {} in {}",
        record.opened,
        record.connects,
        model.opened,
        model.connects
    );
    ensure!(
        record.validations == model.validations
            && record.fail_validations == model.fail_validations
            && record.fail_connects == model.fail_connects,
        "manager counters out of step with the model: {record:?} vs {model:?}"
    );
    let state = pool.state();
    let held = model.held.len() as u32;
    ensure!(
        state.in_use == held
            && state.idle_connections == model.idle.len() as u32
            && state.connecting == 0
            && state.waiting == 0
            && state.connections == record.live.len() as u32
            && state.max_size == model.max_size as u32,
        "state() = {state:?}; model: {} held, {} idle, max_size {}, manager: {} live",
        held,
        model.idle.len(),
        model.max_size,
        record.live.len()
    );
    ensure!(
        state.connections <= state.max_size.max(state.in_use),
        "invariant 2: {state:?} exceeds max(max_size, in_use)"
    );
    if held == 0 {
        ensure!(
            state.connections <= state.max_size,
            "invariant 2: at rest, {state:?} exceeds max_size"
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
            record.live.is_empty(),
            "invariant 6: closed and nothing held, yet {:?} live",
            record.live
        );
    }
    Ok(())
}

/// Returns every guard and checks the pool at rest.
fn finish(
    pool: &Pool<OpsManager>,
    record: &Recorder,
    model: &mut Model,
    guards: Vec<PooledConnection<'_, OpsManager>>,
) -> Result<(), String> {
    for guard in guards {
        let id = guard.id;
        let total = model.total();
        drop(guard);
        model.held.retain(|&held| held != id);
        if !model.closed && total <= model.max_size {
            model.idle.insert(id, model.now);
        }
        check(pool, record, model)?;
    }
    check(pool, record, model)
}

//! A fault-injecting test manager shared by the integration tests.
//!
//! Every connection carries an "in use" flag that a test sets on checkout and
//! clears before return: seeing it already set means one connection reached
//! two users (invariant 1). Connects can fail, hang on a gate, or be slow;
//! validity checks can fail; connections can break in use; close can block.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// An error the test manager reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test connect failure #{0}")]
pub struct TestError(pub usize);

/// A gate threads can block on until it opens.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn closed() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

/// Counters and fault switches shared between a test and its manager.
#[derive(Debug, Default)]
pub struct Faults {
    /// Connections opened successfully.
    pub opened: AtomicUsize,
    /// Connections dropped (closed).
    pub closed: AtomicUsize,
    /// Connect attempts, successful or not.
    pub attempts: AtomicUsize,
    /// The next N connects fail.
    pub fail_next: AtomicUsize,
    /// Every connect fails while set.
    pub down: AtomicBool,
    /// Connect sleeps this long (microseconds) before succeeding.
    pub connect_delay_us: AtomicU64,
    /// Connect blocks on this gate while set.
    pub connect_gate: Mutex<Option<Arc<Gate>>>,
    /// Connection close blocks on this gate while set.
    pub close_gate: Mutex<Option<Arc<Gate>>>,
    /// is_valid fails while set.
    pub invalid: AtomicBool,
    /// is_valid calls.
    pub validations: AtomicUsize,
    /// reset calls.
    pub resets: AtomicUsize,
    /// Connections currently alive (opened and not yet closed).
    pub live: AtomicUsize,
    /// Connections with an id up to this are dead: invalid and broken
    /// ("every connection killed at once").
    pub killed_up_to: AtomicUsize,
    /// is_valid blocks on this gate while set ("validation hangs").
    pub validate_gate: Mutex<Option<Arc<Gate>>>,
    /// Connect errors are classified permanent while set.
    pub permanent: AtomicBool,
    /// When non-zero, only the connection with this id blocks on
    /// `validate_gate` (others are checked at once).
    pub validate_gate_id: AtomicUsize,
    /// Manager callbacks that panic on their next call, by name: `connect`,
    /// `is_valid`, `has_broken`, `reset`, `classify`, `on_reconfigure`,
    /// `drop` (closing a connection).
    pub panic_once: Mutex<Vec<&'static str>>,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
    /// Makes the next call of `callback` panic.
    pub fn panic_next(&self, callback: &'static str) {
        self.panic_once.lock().unwrap().push(callback);
    }
    /// Panics if `callback` was set to panic (once).
    fn maybe_panic(&self, callback: &'static str) {
        let armed = {
            let mut armed = self.panic_once.lock().unwrap();
            match armed.iter().position(|name| *name == callback) {
                Some(index) => {
                    armed.remove(index);
                    true
                }
                None => false,
            }
        };
        if armed {
            panic!("injected panic in {callback}");
        }
    }
}

/// A pooled test connection.
#[derive(Debug)]
pub struct TestConn {
    pub id: usize,
    pub in_use: Arc<AtomicBool>,
    pub broken: bool,
    pub dirty: bool,
    faults: Arc<Faults>,
}

impl TestConn {
    /// Claims the connection for one user; panics if another user holds it.
    pub fn claim(&self) {
        assert!(
            !self.in_use.swap(true, Ordering::SeqCst),
            "connection {} handed to two users at once",
            self.id
        );
    }
    /// Ends the claim before the guard is returned.
    pub fn unclaim(&self) {
        self.in_use.store(false, Ordering::SeqCst);
    }
}

impl Drop for TestConn {
    fn drop(&mut self) {
        let gate = self.faults.close_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.wait();
        }
        self.faults.live.fetch_sub(1, Ordering::SeqCst);
        self.faults.closed.fetch_add(1, Ordering::SeqCst);
        // After the counts: a panicking close still closed the connection.
        self.faults.maybe_panic("drop");
    }
}

/// The fault-injecting manager.
pub struct TestManager {
    pub faults: Arc<Faults>,
}

impl TestManager {
    pub fn new() -> (Self, Arc<Faults>) {
        let faults = Faults::new();
        (
            Self {
                faults: faults.clone(),
            },
            faults,
        )
    }
}

impl slotpool::Manager for TestManager {
    type Connection = TestConn;
    type Error = TestError;

    fn connect(&self) -> Result<TestConn, TestError> {
        let attempt = self.faults.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        self.faults.maybe_panic("connect");
        let gate = self.faults.connect_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.wait();
        }
        let delay = self.faults.connect_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            // Simulated network latency, not synchronisation.
            std::thread::sleep(Duration::from_micros(delay));
        }
        if self.faults.down.load(Ordering::SeqCst) {
            return Err(TestError(attempt));
        }
        if self
            .faults
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(TestError(attempt));
        }
        let id = self.faults.opened.fetch_add(1, Ordering::SeqCst) + 1;
        self.faults.live.fetch_add(1, Ordering::SeqCst);
        Ok(TestConn {
            id,
            in_use: Arc::new(AtomicBool::new(false)),
            broken: false,
            dirty: false,
            faults: self.faults.clone(),
        })
    }

    fn is_valid(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.faults.validations.fetch_add(1, Ordering::SeqCst);
        self.faults.maybe_panic("is_valid");
        let gate = self.faults.validate_gate.lock().unwrap().clone();
        let only = self.faults.validate_gate_id.load(Ordering::SeqCst);
        if let Some(gate) = gate.filter(|_| only == 0 || only == conn.id) {
            gate.wait();
        }
        if self.faults.invalid.load(Ordering::SeqCst)
            || conn.id <= self.faults.killed_up_to.load(Ordering::SeqCst)
        {
            Err(TestError(0))
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, conn: &mut TestConn) -> bool {
        self.faults.maybe_panic("has_broken");
        conn.broken || conn.id <= self.faults.killed_up_to.load(Ordering::SeqCst)
    }

    fn classify(&self, _error: &TestError) -> slotpool::ErrorClass {
        self.faults.maybe_panic("classify");
        if self.faults.permanent.load(Ordering::SeqCst) {
            slotpool::ErrorClass::Permanent
        } else {
            slotpool::ErrorClass::Transient
        }
    }

    fn reset(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.faults.resets.fetch_add(1, Ordering::SeqCst);
        self.faults.maybe_panic("reset");
        conn.dirty = false;
        Ok(())
    }

    fn on_reconfigure(&self, _config: &slotpool::PoolConfig) {
        self.faults.maybe_panic("on_reconfigure");
    }
}

/// Waits (yielding, bounded by `limit`) until `condition` holds; panics with
/// `what` otherwise. Used to observe a state another thread reaches, never
/// as a sleep standing in for synchronisation.
pub fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::yield_now();
    }
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`
/// (Linux; clock ticks of 1/100 s, USER_HZ on every mainstream config).
pub fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// A pool driven entirely by the test: a manual clock and no background
/// thread (`run_background_step` is one pass). Maintenance (idle timeout,
/// keepalive, lifetime) is off and the validation window an hour unless
/// `configure` says otherwise.
pub fn manual_pool(
    configure: impl FnOnce(slotpool::Builder<TestManager>) -> slotpool::Builder<TestManager>,
) -> (
    slotpool::Pool<TestManager>,
    Arc<slotpool::ManualClock>,
    Arc<Faults>,
) {
    let (manager, faults) = TestManager::new();
    let clock = slotpool::ManualClock::new();
    let builder = slotpool::Pool::builder()
        .clock(clock.clone())
        .manual_background()
        .idle_timeout(None)
        .keepalive_interval(None)
        .max_lifetime(None)
        .validation_idle_window(Duration::from_secs(3600));
    let pool = configure(builder).build(manager).expect("pool");
    (pool, clock, faults)
}

/// Checks out `n` connections of a manual pool, opening them with
/// background steps as needed (at the clock's current time), and holds
/// them.
pub fn open(
    pool: &slotpool::Pool<TestManager>,
    n: usize,
) -> Vec<slotpool::PooledConnection<'_, TestManager>> {
    (0..n)
        .map(|_| {
            if let Ok(conn) = pool.try_get() {
                return conn;
            }
            pool.run_background_step();
            pool.try_get().expect("opened by the step")
        })
        .collect()
}

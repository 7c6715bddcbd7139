#![cfg(not(feature = "loom"))]
//! Every setting of `PoolConfig`, changed on a running pool with
//! `Pool::reconfigure`. Each test builds a pool, shows the old value in
//! force (so the test means something), reconfigures, and shows the new
//! value act: it fails if the pool ignored the change. The settings fixed by
//! design (`pool_name`, `capacity`, `startup`) get a test of the rule
//! instead.
//!
//! Time: settings acted on by maintenance or measured on the pool's clock
//! run on a `ManualClock` with `manual_background()` (one
//! `run_background_step` is one pass of background work), so their
//! assertions are exact. Settings that bound the background threads run on
//! real threads with gates and bounded waits (`eventually`, 10 s). The only
//! wall-clock assertions are deadline contracts (`>= d`, `< d + 300 ms`),
//! backoff pauses against their jitter floor and cap (with wide margins),
//! and, for "at most N at once", a 200 ms window in which nothing more may
//! start (`holds_for`: a negative can only be observed over a window).
//!
//! `reconfigure` fills in derived defaults for settings equal to their
//! built-in default (`src/config/derive.rs`); the tests set the values they
//! rely on explicitly, and say so where a derived value moves
//! (`connection_timeout` below 10 s lowers a default `validation_timeout`).
//!
//! | setting | test | what it shows |
//! |---|---|---|
//! | `pool_name` | `pool_name_is_fixed_at_build` | fixed: another name is rejected with `Invalid { setting: "pool_name" }`; name, config and metrics label keep the old one, and nothing else of the rejected config is applied |
//! | `max_size` | `max_size_grows_and_shrinks_the_room` | 2 → 4: two more connections open where none could; 4 → 1: the excess retires as it comes back (`Shrink`), never under its user |
//! | `min_idle` | `min_idle_fills_and_protects_idle_connections` | 0 → 3: a background pass opens 3; 3 kept past `idle_timeout`; 3 → 1: the pass retires 2 |
//! | `capacity` | `capacity_is_fixed_at_build_and_auto_keeps_the_slot_array` | fixed: another explicit capacity is rejected naming `capacity`; the same one and `None` ("auto") are accepted and keep the array (`max_size` still capped by it) |
//! | `connection_timeout` | `connection_timeout_applies_to_the_next_get` | 30 s → 200 ms: a get times out at exactly 30 s, then exactly 200 ms (manual clock); on real threads sync and async gets time out in [200, 500) ms |
//! | `validation_timeout` | `validation_timeout_bounds_the_next_check` | 20 s → 100 ms: a hanging check is not abandoned (the caller times out), then is abandoned at 100 ms and a replacement serves the caller |
//! | `validation_idle_window` | `validation_idle_window_decides_which_checkouts_are_checked` | 10 s → 1 s → 0: idle 5 s unchecked; idle 2 s checked; every checkout checked |
//! | `idle_timeout` | `idle_timeout_retires_idle_connections_at_the_new_timeout` | 60 s → 10 s → off: idle 30 s kept, then retired (`IdleTimeout`); off keeps them an hour |
//! | `max_lifetime` | `max_lifetime_applies_to_connections_opened_after_the_change` | 1 h → 10 min: a connection opened after the change retires at exactly 10 min |
//! | `max_lifetime` | `max_lifetime_lowered_reaches_connections_already_open`, `max_lifetime_off_reaches_connections_already_open` | acts on connections already open: each is re-stamped (same place in the jitter band) when next returned or visited by a maintenance pass |
//! | `max_lifetime_jitter` | `max_lifetime_jitter_spreads_the_expiry_of_connections_opened_after_the_change` | 0: 8 connections opened together retire together at 100 s; 0.5: the next 8 retire spread over (50 s, 100 s]; 0 again: together |
//! | `keepalive_interval` | `keepalive_interval_checks_idle_connections_at_the_new_interval` | 60 s → 10 s → off: idle 30 s unchecked, then checked, then every 10 s; off checks nothing in an hour |
//! | `leak_detection_threshold` | `leak_detection_threshold_reports_checkouts_held_past_the_new_threshold` | off → 10 s → off: held an hour unreported; then reported (even a checkout made before the change), a new one at exactly 10 s; off reports nothing |
//! | maintenance settings on a running pool | `a_shorter_maintenance_interval_acts_without_waiting_out_the_old_one` | acts at once: the dispatcher plans the next pass from the last one and the period read each turn |
//! | `max_waiters` | `max_waiters_caps_the_queue_at_the_new_limit` | 2 → 3 → 0: the third caller refused at once, then queued, the fourth refused, then queued (unlimited) |
//! | `hand_off_after` | `hand_off_after_decides_who_may_take_a_return` | 1 s → 0: a return while a young wait is queued goes idle and a running caller takes it; then it is handed to the waiter and the caller finds nothing (see also `tests/hand_off.rs`) |
//! | `connect_backoff_initial` | `connect_backoff_initial_sets_the_next_pause` | 20 ms → 1 s: pauses between failed connects under 400 ms, then one of at least 500 ms (the jitter floor of 1 s) |
//! | `connect_backoff_max` | `connect_backoff_max_caps_the_pauses` | 50 ms → 4 s → 50 ms: pauses capped under 400 ms, then growing past 400 ms, then capped again |
//! | `fail_fast_after` | `fail_fast_after_decides_when_gets_fail_at_once` | 5 → 3 → 0 → 4: after 3 failed connects a get times out, then fails at once (`Error::Connect`), then times out, then fails at once after the 4th |
//! | `close_timeout` | `close_timeout_bounds_the_next_close` | 30 s → 200 ms: a first `close()` still waits; after the change a second returns `CloseTimedOut` in [200, 500) ms (see also `tests/promises.rs`) |
//! | `startup` | `startup_is_read_when_the_pool_is_built` | read at build only: `WaitForMinIdle` builds with `min_idle` idle (or fails within `connection_timeout`), `Background` does not wait; a reconfigured value is kept in `config()` and waits for nothing |
//! | `max_concurrent_connects` | `max_concurrent_connects_bounds_connects_in_flight` | 1 → 2: one connect blocked on a gate with three callers waiting, then two, never three |
//! | `max_concurrent_validations` | `max_concurrent_validations_bounds_checks_in_flight` | 1 → 3: one check blocked on a gate with four stale connections queued for checks, then three, never four |

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use slotpool::config::StartupMode;
use slotpool::{
    BuildError, Builder, CloseReason, ConfigError, Error, Manager, ManualClock, Pool, PoolConfig,
    TryGetError,
};
use support::{Faults, Gate, TestConn, TestError, TestManager, eventually, manual_pool, open};

/// Bound on anything a test waits for.
const LIMIT: Duration = Duration::from_secs(10);
/// How late past its deadline a call may return (scheduling on a busy
/// 2-core machine).
const MARGIN: Duration = Duration::from_millis(300);
/// How long "no more than N at once" is watched (see [`holds_for`]).
const WINDOW: Duration = Duration::from_millis(200);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The running configuration with `change` applied: what every test passes
/// to `reconfigure` (`let mut config = (*pool.config()).clone(); change;`).
fn with(running: Arc<PoolConfig>, change: impl FnOnce(&mut PoolConfig)) -> PoolConfig {
    let mut config = (*running).clone();
    change(&mut config);
    config
}

/// A pool on the test manager with its real background threads.
fn live_pool(
    configure: impl FnOnce(Builder<TestManager>) -> Builder<TestManager>,
) -> (Pool<TestManager>, Arc<Faults>) {
    let (manager, faults) = TestManager::new();
    let pool = configure(Pool::builder()).build(manager).expect("pool");
    (pool, faults)
}

/// Opens `n` connections of a live pool and returns them to idle.
fn fill(pool: &Pool<TestManager>, n: usize) {
    let held: Vec<_> = (0..n)
        .map(|_| pool.get_timeout(LIMIT).expect("fill"))
        .collect();
    drop(held);
    assert_eq!(pool.state().idle_connections as usize, n);
}

/// The ids of the idle connections (looked at through `retain`, which
/// changes nothing).
fn idle_ids(pool: &Pool<TestManager>) -> Vec<usize> {
    let mut ids = Vec::new();
    pool.retain(|conn, _| {
        ids.push(conn.id);
        true
    });
    ids.sort_unstable();
    ids
}

/// `try_get` must miss: the (open, max_size) it reports.
fn no_idle(pool: &Pool<TestManager>) -> (u32, u32) {
    match pool.try_get() {
        Err(TryGetError::NoIdle { open, max_size, .. }) => (open, max_size),
        Err(other) => panic!("expected NoIdle, got {other}"),
        Ok(conn) => panic!("expected NoIdle, got connection {}", conn.id),
    }
}

/// Asserts `condition` holds throughout `window`. Only for "no more than N
/// at once": the pool would start the extra work at once if it ignored its
/// bound, and a negative can only be observed over some window. Nothing
/// waits on it for synchronisation.
fn holds_for(what: &str, window: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(condition(), "no longer holds: {what}");
        thread::yield_now();
    }
}

/// Opens a gate when dropped, so a failing test does not leave threads
/// blocked on it.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// On a panic, moves a manual clock a day on, so callers waiting on it time
/// out and a thread scope can join them.
struct AdvanceOnPanic<'a>(&'a ManualClock);

impl Drop for AdvanceOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.advance(Duration::from_secs(24 * 3600));
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed by design.
// ---------------------------------------------------------------------------

#[test]
fn pool_name_is_fixed_at_build() {
    let (pool, _faults) = live_pool(|b| b.pool_name("orders").max_size(2));
    assert_eq!(pool.name(), "orders");
    // A reconfigure carries the whole configuration: the same name passes.
    pool.reconfigure(with(pool.config(), |c| c.max_size = 3))
        .unwrap();
    assert_eq!(pool.config().max_size, 3);

    let error = pool
        .reconfigure(with(pool.config(), |c| {
            c.pool_name = "billing".to_owned();
            c.max_size = 5;
        }))
        .unwrap_err();
    match &error {
        ConfigError::Invalid {
            setting: "pool_name",
            value,
            ..
        } => assert_eq!(value, "billing"),
        other => panic!("expected pool_name to be rejected, got: {other}"),
    }
    // The name is in thread names, logs and metrics labels: it stays.
    assert_eq!(pool.name(), "orders");
    assert_eq!(pool.config().pool_name, "orders");
    assert_eq!(pool.stats().pool, "orders");
    assert_eq!(
        pool.config().max_size,
        3,
        "nothing of a rejected configuration is applied"
    );
}

#[test]
fn capacity_is_fixed_at_build_and_auto_keeps_the_slot_array() {
    // Built "auto": max(max_size, 64) slots.
    let (pool, _faults) = live_pool(|b| b.max_size(4));
    assert_eq!(pool.capacity(), 64);

    let error = pool
        .reconfigure(with(pool.config(), |c| c.capacity = Some(128)))
        .unwrap_err();
    match &error {
        ConfigError::Invalid {
            setting: "capacity",
            value,
            ..
        } => assert_eq!(value, "128"),
        other => panic!("expected capacity to be rejected, got: {other}"),
    }
    // The capacity it has, written out, is accepted.
    pool.reconfigure(with(pool.config(), |c| c.capacity = Some(64)))
        .unwrap();
    // "auto" is accepted and keeps the array: max_size may use all of it,
    // and no more.
    pool.reconfigure(with(pool.config(), |c| {
        c.capacity = None;
        c.max_size = 64;
    }))
    .unwrap();
    assert_eq!((pool.capacity(), pool.state().max_size), (64, 64));
    let error = pool
        .reconfigure(with(pool.config(), |c| c.max_size = 65))
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                setting: "max_size",
                ..
            }
        ),
        "{error}"
    );

    // Built with an explicit capacity of 8: "auto" later does not re-derive
    // it (auto for max_size 8 would be 64), it keeps the 8 slots.
    let (pool, _faults) = live_pool(|b| b.max_size(4).capacity(Some(8)));
    assert_eq!(pool.capacity(), 8);
    pool.reconfigure(with(pool.config(), |c| {
        c.capacity = None;
        c.max_size = 8;
    }))
    .unwrap();
    assert_eq!((pool.capacity(), pool.state().max_size), (8, 8));
    let error = pool
        .reconfigure(with(pool.config(), |c| c.max_size = 9))
        .unwrap_err();
    match &error {
        ConfigError::Invalid {
            setting: "max_size",
            rule,
            ..
        } => assert!(rule.contains("capacity (8)"), "{error}"),
        other => panic!("expected max_size to be rejected, got: {other}"),
    }
    assert_eq!(pool.capacity(), 8);
}

#[test]
fn startup_is_read_when_the_pool_is_built() {
    // `startup` decides what `build` waits for, so its effect is in the
    // build: WaitForMinIdle returns with min_idle connections idle...
    let (manager, faults) = TestManager::new();
    faults.connect_delay_us.store(20_000, Ordering::SeqCst); // 20 ms connects
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(2)
        .startup(StartupMode::WaitForMinIdle)
        .build(manager)
        .expect("min_idle opened during the build");
    assert_eq!(pool.state().idle_connections, 2);
    drop(pool);

    // ... or fails within connection_timeout, with the cause ...
    let (manager, faults) = TestManager::new();
    let gate = Gate::closed();
    let _open = OpenOnDrop(gate.clone());
    *faults.connect_gate.lock().unwrap() = Some(gate.clone());
    let started = Instant::now();
    let error = Pool::builder()
        .min_idle(1)
        .startup(StartupMode::WaitForMinIdle)
        .connection_timeout(ms(200))
        .build(manager)
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, BuildError::Startup(_)), "{error}");
    assert!(took >= ms(200) && took < ms(200) + MARGIN, "{took:?}");

    // ... while Background returns at once and fills behind the caller.
    let (manager, faults) = TestManager::new();
    let gate = Gate::closed();
    let _open = OpenOnDrop(gate.clone());
    *faults.connect_gate.lock().unwrap() = Some(gate.clone());
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(2)
        .build(manager)
        .expect("built without waiting");
    assert_eq!(pool.config().startup, StartupMode::Background);
    assert_eq!(pool.state().idle_connections, 0, "build did not wait");

    // Reconfigured on the running pool, the value is kept in `config()`,
    // but nothing reads it again: the reconfigure (with a larger min_idle)
    // returns with nothing opened, as Background's build did.
    pool.reconfigure(with(pool.config(), |c| {
        c.startup = StartupMode::WaitForMinIdle;
        c.min_idle = 3;
    }))
    .unwrap();
    assert_eq!(pool.config().startup, StartupMode::WaitForMinIdle);
    assert_eq!(
        pool.state().idle_connections,
        0,
        "reconfigure waits for nothing"
    );
    gate.open();
    eventually("min_idle filled in the background", LIMIT, || {
        pool.state().idle_connections == 3
    });
}

// ---------------------------------------------------------------------------
// Sizing.
// ---------------------------------------------------------------------------

#[test]
fn max_size_grows_and_shrinks_the_room() {
    let (pool, _clock, faults) = manual_pool(|b| b.max_size(2));
    let held = open(&pool, 2);
    // Old (2): no room for a third; a pass opens nothing.
    assert_eq!(no_idle(&pool), (2, 2));
    pool.run_background_step();
    assert_eq!(faults.opened(), 2);

    pool.reconfigure(with(pool.config(), |c| c.max_size = 4))
        .unwrap();
    assert_eq!(pool.state().max_size, 4);
    let more = open(&pool, 2);
    assert_eq!(faults.opened(), 4, "two more opened in the new room");
    assert_eq!(no_idle(&pool), (4, 4));
    pool.run_background_step();
    assert_eq!(faults.opened(), 4, "and no more than that");

    // Shrink to 1: nothing closes under its user; the excess retires as it
    // comes back.
    pool.reconfigure(with(pool.config(), |c| c.max_size = 1))
        .unwrap();
    assert_eq!(pool.state().connections, 4);
    assert_eq!(faults.closed(), 0);
    drop(more);
    drop(held);
    let state = pool.state();
    assert_eq!((state.connections, state.max_size), (1, 1), "{state}");
    assert_eq!(pool.stats().counters.closed(CloseReason::Shrink), 3);
    assert_eq!(faults.live.load(Ordering::SeqCst), 1);
}

#[test]
fn min_idle_fills_and_protects_idle_connections() {
    let (pool, clock, faults) = manual_pool(|b| b.max_size(4).idle_timeout(Some(secs(60))));
    // Old (0): a background pass opens nothing.
    pool.run_background_step();
    assert_eq!(faults.opened(), 0);

    pool.reconfigure(with(pool.config(), |c| c.min_idle = 3))
        .unwrap();
    pool.run_background_step();
    assert_eq!(
        pool.state().idle_connections,
        3,
        "filled to the new min_idle"
    );
    // min_idle also keeps them past idle_timeout.
    clock.advance(secs(61));
    pool.run_background_step();
    assert_eq!(pool.state().idle_connections, 3);
    assert_eq!(pool.stats().counters.closed(CloseReason::IdleTimeout), 0);

    // Lowered to 1: the next pass retires the idle excess.
    pool.reconfigure(with(pool.config(), |c| c.min_idle = 1))
        .unwrap();
    pool.run_background_step();
    assert_eq!(pool.state().idle_connections, 1);
    assert_eq!(pool.stats().counters.closed(CloseReason::IdleTimeout), 2);
    assert_eq!(faults.opened(), 3, "and does not refill above it");
}

// ---------------------------------------------------------------------------
// Timeouts.
// ---------------------------------------------------------------------------

/// Runs a `get()` on another thread of a manual pool with nothing idle, and
/// checks it times out exactly when the clock has moved `expected`: still
/// waiting 1 ms before.
fn get_times_out_after(pool: &Pool<TestManager>, clock: &ManualClock, expected: Duration) {
    thread::scope(|scope| {
        let _unstick = AdvanceOnPanic(clock);
        let waiter = scope.spawn(|| pool.get().map(|conn| conn.id));
        // It reads its start time before it queues.
        eventually("the get waits", LIMIT, || pool.state().waiting == 1);
        clock.advance(expected - ms(1));
        assert!(!waiter.is_finished(), "timed out early");
        clock.advance(ms(1));
        eventually("the get timed out", LIMIT, || waiter.is_finished());
        match waiter.join().unwrap() {
            Err(Error::TimedOut { waited, .. }) => assert_eq!(waited, expected),
            other => panic!("expected a timeout, got {other:?}"),
        }
    });
}

#[test]
fn connection_timeout_applies_to_the_next_get() {
    // Exact, on the pool's clock.
    let (pool, clock, _faults) = manual_pool(|b| b.max_size(1));
    let held = open(&pool, 1);
    get_times_out_after(&pool, &clock, secs(30));
    pool.reconfigure(with(pool.config(), |c| c.connection_timeout = ms(200)))
        .unwrap();
    // The default validation_timeout (5 s) follows it down (derived).
    assert_eq!(pool.config().validation_timeout, ms(100));
    get_times_out_after(&pool, &clock, ms(200));
    drop(held);

    // On real threads: the deadline contract, sync and async.
    let (pool, _faults) = live_pool(|b| b.max_size(1));
    assert_eq!(pool.config().connection_timeout, secs(30));
    let _held = pool.get().unwrap();
    pool.reconfigure(with(pool.config(), |c| c.connection_timeout = ms(200)))
        .unwrap();
    let started = Instant::now();
    let error = pool.get().map(|conn| conn.id).unwrap_err();
    let took = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(took >= ms(200) && took < ms(200) + MARGIN, "sync: {took:?}");
    let started = Instant::now();
    let error = futures::executor::block_on(pool.get_async())
        .map(|conn| conn.id)
        .unwrap_err();
    let took = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(
        took >= ms(200) && took < ms(200) + MARGIN,
        "async: {took:?}"
    );
}

#[test]
fn validation_timeout_bounds_the_next_check() {
    // See also tests/promises.rs (`a_hanging_check_is_abandoned_at_validation_timeout`),
    // which sets it at build.
    let (pool, faults) = live_pool(|b| {
        b.max_size(1)
            .validation_idle_window(Duration::ZERO)
            .validation_timeout(secs(20))
    });
    fill(&pool, 1);
    // Old (20 s): connection 1's check hangs and is not abandoned, so with
    // one connection the caller gets nothing.
    let first = Gate::closed();
    let _open_first = OpenOnDrop(first.clone());
    *faults.validate_gate.lock().unwrap() = Some(first.clone());
    let error = pool.get_timeout(ms(300)).map(|conn| conn.id).unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(pool.stats().counters.validation_timeouts, 0);

    pool.reconfigure(with(pool.config(), |c| c.validation_timeout = ms(100)))
        .unwrap();
    // The check in flight keeps the deadline it started with: let it pass.
    *faults.validate_gate.lock().unwrap() = None;
    first.open();
    eventually("the first check passed", LIMIT, || {
        pool.state().idle_connections == 1
    });
    // A passed check covers the next checkout (the grace in checkout.rs):
    // use it up, so the checkout after it is checked again.
    drop(pool.get_timeout(LIMIT).expect("the checked connection"));

    // New (100 ms): connection 1's next check hangs, is abandoned at 100 ms,
    // its room freed, and a replacement (connection 2) serves the caller.
    let second = Gate::closed();
    let _open_second = OpenOnDrop(second.clone());
    *faults.validate_gate.lock().unwrap() = Some(second.clone());
    faults.validate_gate_id.store(1, Ordering::SeqCst);
    let started = Instant::now();
    let conn = pool.get_timeout(LIMIT).expect("a replacement");
    let took = started.elapsed();
    assert_eq!(conn.id, 2, "served by the replacement");
    // 100 ms, then a connect: far below the old 20 s.
    assert!(took >= ms(100) && took < ms(100) + secs(1), "{took:?}");
    assert_eq!(pool.stats().counters.validation_timeouts, 1);
    drop(conn);
    second.open();
    eventually("the abandoned connection closed", LIMIT, || {
        faults.closed() == 1
    });
}

#[test]
fn validation_idle_window_decides_which_checkouts_are_checked() {
    let (pool, clock, faults) = manual_pool(|b| b.max_size(1).validation_idle_window(secs(10)));
    let checks = || faults.validations.load(Ordering::SeqCst);
    drop(open(&pool, 1));
    // Old (10 s): idle 5 s, handed out unchecked.
    clock.advance(secs(5));
    drop(pool.get().unwrap());
    assert_eq!(checks(), 0);

    pool.reconfigure(with(pool.config(), |c| c.validation_idle_window = secs(1)))
        .unwrap();
    // New (1 s): idle 2 s (under the old window) is checked.
    clock.advance(secs(2));
    drop(pool.get().unwrap());
    assert_eq!(checks(), 1);
    // Idle 0.5 s is not.
    clock.advance(ms(500));
    drop(pool.get().unwrap());
    assert_eq!(checks(), 1);

    // Zero: every checkout is checked.
    pool.reconfigure(with(pool.config(), |c| {
        c.validation_idle_window = Duration::ZERO;
    }))
    .unwrap();
    drop(pool.get().unwrap());
    drop(pool.get().unwrap());
    assert_eq!(checks(), 3);
}

#[test]
fn idle_timeout_retires_idle_connections_at_the_new_timeout() {
    let (pool, clock, _faults) = manual_pool(|b| b.max_size(3).idle_timeout(Some(secs(60))));
    let retired = || pool.stats().counters.closed(CloseReason::IdleTimeout);
    drop(open(&pool, 2));
    // Old (60 s): idle 30 s, kept.
    clock.advance(secs(30));
    pool.run_background_step();
    assert_eq!((pool.state().idle_connections, retired()), (2, 0));

    pool.reconfigure(with(pool.config(), |c| c.idle_timeout = Some(secs(10))))
        .unwrap();
    // New (10 s): the next pass retires both.
    pool.run_background_step();
    assert_eq!((pool.state().idle_connections, retired()), (0, 2));

    // Off: kept an hour.
    pool.reconfigure(with(pool.config(), |c| c.idle_timeout = None))
        .unwrap();
    drop(open(&pool, 1));
    clock.advance(secs(3600));
    pool.run_background_step();
    assert_eq!((pool.state().idle_connections, retired()), (1, 2));
}

#[test]
fn close_timeout_bounds_the_next_close() {
    // `close()` reads close_timeout when called, and closing is one-way: the
    // old value is shown by a first close still waiting, the new one by a
    // second close after the change. tests/promises.rs
    // (`close_waits_close_timeout_then_reports`) has the build-time value.
    let (pool, _faults) = live_pool(|b| b.max_size(2).close_timeout(secs(30)));
    let first_conn = pool.get().unwrap();
    let second_conn = pool.get().unwrap();
    thread::scope(|scope| {
        let first = scope.spawn(|| pool.close());
        eventually("the first close began", LIMIT, || pool.is_closed());

        pool.reconfigure(with(pool.config(), |c| c.close_timeout = ms(200)))
            .unwrap();
        let started = Instant::now();
        let report = pool.close().unwrap_err();
        let took = started.elapsed();
        assert!(took >= ms(200) && took < ms(200) + MARGIN, "{took:?}");
        assert_eq!(report.in_use, 2, "{report}");
        // Old (30 s): the first close, older than the second, still waits.
        assert!(!first.is_finished(), "the first close gave up early");
        drop(first_conn);
        drop(second_conn);
        first
            .join()
            .unwrap()
            .expect("the first close saw the pool drain");
    });
}

// ---------------------------------------------------------------------------
// Lifetimes and maintenance.
// ---------------------------------------------------------------------------

#[test]
fn max_lifetime_applies_to_connections_opened_after_the_change() {
    let (pool, clock, _faults) = manual_pool(|b| {
        b.max_size(2)
            .max_lifetime(Some(mins(60)))
            .max_lifetime_jitter(0.0)
    });
    drop(open(&pool, 1)); // connection 1, at 0
    // Old (1 h): at 20 minutes it is kept.
    clock.advance(mins(20));
    pool.run_background_step();
    assert_eq!(idle_ids(&pool), [1]);
    assert_eq!(pool.stats().counters.closed(CloseReason::MaxLifetime), 0);

    pool.reconfigure(with(pool.config(), |c| c.max_lifetime = Some(mins(10))))
        .unwrap();
    // New (10 min): a connection opened now (connection 2) lives exactly
    // 10 minutes. (What happens to connection 1 is the subject of
    // `max_lifetime_lowered_reaches_connections_already_open`.)
    let held = open(&pool, 2);
    assert!(held.iter().any(|conn| conn.id == 2));
    drop(held);
    clock.advance(mins(10) - secs(1));
    pool.run_background_step();
    assert!(idle_ids(&pool).contains(&2), "retired early");
    clock.advance(secs(1));
    pool.run_background_step();
    assert!(!idle_ids(&pool).contains(&2), "not retired at 10 min");
    assert!(pool.stats().counters.closed(CloseReason::MaxLifetime) >= 1);
}

#[test]

fn max_lifetime_lowered_reaches_connections_already_open() {
    let (pool, clock, _faults) = manual_pool(|b| {
        b.max_size(1)
            .max_lifetime(Some(mins(60)))
            .max_lifetime_jitter(0.0)
    });
    drop(open(&pool, 1)); // connection 1, at 0: expires at 60 min
    clock.advance(mins(20));
    pool.run_background_step();
    assert_eq!(idle_ids(&pool), [1], "old (1 h): kept at 20 min");

    pool.reconfigure(with(pool.config(), |c| c.max_lifetime = Some(mins(10))))
        .unwrap();
    // Connection 1 is 20 minutes old, twice the new lifetime: "connections
    // are retired after this long, when next idle".
    pool.run_background_step();
    assert_eq!(
        idle_ids(&pool),
        Vec::<usize>::new(),
        "a 20 min old connection outlives a 10 min max_lifetime (it retires at 60 min)"
    );
}

#[test]

fn max_lifetime_off_reaches_connections_already_open() {
    let (pool, clock, _faults) = manual_pool(|b| {
        b.max_size(1)
            .max_lifetime(Some(mins(60)))
            .max_lifetime_jitter(0.0)
    });
    drop(open(&pool, 1)); // connection 1, at 0: expires at 60 min

    pool.reconfigure(with(pool.config(), |c| c.max_lifetime = None))
        .unwrap();
    // Off: "keeps them forever". Two hours on, a checkout and return (the
    // return path retires expired connections) must keep connection 1.
    clock.advance(mins(120));
    pool.run_background_step();
    drop(pool.get().unwrap());
    assert_eq!(
        pool.stats().counters.closed(CloseReason::MaxLifetime),
        0,
        "retired by a max_lifetime that is off"
    );
    assert_eq!(idle_ids(&pool), [1]);
}

/// Opens `n` connections together (at the clock's current time), returns
/// them to idle, then runs a pass every second for `span` seconds; returns
/// the second (after opening) at which each was retired for its lifetime.
fn retirements(pool: &Pool<TestManager>, clock: &ManualClock, n: usize, span: u64) -> Vec<u64> {
    assert_eq!(pool.state().connections, 0, "starts from an empty pool");
    drop(open(pool, n));
    let retired = || pool.stats().counters.closed(CloseReason::MaxLifetime);
    let mut seen = retired();
    let mut at = Vec::new();
    for second in 1..=span {
        clock.advance(secs(1));
        pool.run_background_step();
        let now = retired();
        at.extend((seen..now).map(|_| second));
        seen = now;
    }
    assert_eq!(at.len(), n, "every connection retired within {span} s");
    at
}

#[test]
fn max_lifetime_jitter_spreads_the_expiry_of_connections_opened_after_the_change() {
    const N: usize = 8;
    let (pool, clock, _faults) = manual_pool(|b| {
        b.max_size(N as u32)
            .max_lifetime(Some(secs(100)))
            .max_lifetime_jitter(0.0)
    });
    // Old (0): opened together, they all retire together, at 100 s.
    assert_eq!(retirements(&pool, &clock, N, 110), [100; N]);

    pool.reconfigure(with(pool.config(), |c| c.max_lifetime_jitter = 0.5))
        .unwrap();
    // New (0.5): connections opened after the change expire at random
    // points of (50 s, 100 s]. All eight in one second of that range would
    // happen about once in 10^12 runs.
    let spread = retirements(&pool, &clock, N, 110);
    assert!(
        spread.iter().all(|second| (51..=100).contains(second)),
        "outside (50 s, 100 s]: {spread:?}"
    );
    let mut distinct = spread.clone();
    distinct.dedup();
    assert!(distinct.len() > 1, "all retired together: {spread:?}");

    // Back to 0: together again.
    pool.reconfigure(with(pool.config(), |c| c.max_lifetime_jitter = 0.0))
        .unwrap();
    assert_eq!(retirements(&pool, &clock, N, 110), [100; N]);
}

#[test]
fn keepalive_interval_checks_idle_connections_at_the_new_interval() {
    let (pool, clock, faults) = manual_pool(|b| b.max_size(1).keepalive_interval(Some(secs(60))));
    let checks = || faults.validations.load(Ordering::SeqCst);
    drop(open(&pool, 1));
    // Old (60 s): idle 30 s, not checked.
    clock.advance(secs(30));
    pool.run_background_step();
    assert_eq!(checks(), 0);

    pool.reconfigure(with(pool.config(), |c| {
        c.keepalive_interval = Some(secs(10));
    }))
    .unwrap();
    // New (10 s): the next pass checks it, then every 10 s.
    pool.run_background_step();
    assert_eq!(checks(), 1);
    clock.advance(secs(5));
    pool.run_background_step();
    assert_eq!(checks(), 1);
    clock.advance(secs(5));
    pool.run_background_step();
    assert_eq!(checks(), 2);

    // Off: nothing checked in an hour.
    pool.reconfigure(with(pool.config(), |c| c.keepalive_interval = None))
        .unwrap();
    clock.advance(secs(3600));
    pool.run_background_step();
    assert_eq!(checks(), 2);
    assert_eq!(pool.state().idle_connections, 1);
}

#[test]
fn leak_detection_threshold_reports_checkouts_held_past_the_new_threshold() {
    let (pool, clock, _faults) = manual_pool(|b| b.max_size(1));
    let leaks = || pool.stats().counters.leaks;
    drop(open(&pool, 1));
    // Old (off): a connection held an hour is not reported.
    let held = pool.get().unwrap();
    clock.advance(secs(3600));
    pool.run_background_step();
    assert_eq!(leaks(), 0);

    pool.reconfigure(with(pool.config(), |c| {
        c.leak_detection_threshold = Some(secs(10));
    }))
    .unwrap();
    // New (10 s): the next pass reports the checkout made before the
    // change...
    pool.run_background_step();
    assert_eq!(leaks(), 1);
    drop(held);
    // ... and a new one once it is held 10 s.
    let held = pool.get().unwrap();
    clock.advance(secs(9));
    pool.run_background_step();
    assert_eq!(leaks(), 1);
    clock.advance(secs(1));
    pool.run_background_step();
    assert_eq!(leaks(), 2);
    drop(held);

    // Off again: nothing reported.
    pool.reconfigure(with(pool.config(), |c| c.leak_detection_threshold = None))
        .unwrap();
    let held = pool.get().unwrap();
    clock.advance(secs(3600));
    pool.run_background_step();
    assert_eq!(leaks(), 2);
    drop(held);
}

#[test]
fn a_shorter_maintenance_interval_acts_without_waiting_out_the_old_one() {
    // The defaults plan a maintenance pass every 11.25 s (a quarter of the
    // 45 s lifetime spread); the dispatcher ran one when it started.
    let (pool, _faults) = live_pool(|b| b.max_size(1));
    let held = pool.get().unwrap();
    pool.reconfigure(with(pool.config(), |c| {
        c.leak_detection_threshold = Some(ms(100));
    }))
    .unwrap();
    // With a 100 ms threshold passes are due every 25 ms: the checkout is
    // reported about 100 ms after it was made, well within 2 s.
    eventually("the leak reported within 2 s", secs(2), || {
        pool.stats().counters.leaks == 1
    });
    drop(held);
}

// ---------------------------------------------------------------------------
// Waiting and failing.
// ---------------------------------------------------------------------------

#[test]
fn hand_off_after_decides_who_may_take_a_return() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let (pool, _clock, _faults) =
        manual_pool(|b| b.max_size(1).hand_off_after(Duration::from_secs(1)));
    // A waiter that queued just now, and a return: who gets the connection?
    let contest = |pool: &Pool<TestManager>| {
        let held = open(pool, 1);
        let mut waiter = Box::pin(pool.get_async());
        let mut context = Context::from_waker(Waker::noop());
        assert!(waiter.as_mut().poll(&mut context).is_pending());
        drop(held);
        let caller_took_it = match pool.try_get() {
            Ok(conn) => {
                drop(conn);
                true
            }
            Err(_) => false,
        };
        match waiter.as_mut().poll(&mut context) {
            Poll::Ready(Ok(conn)) => drop(conn),
            other => panic!(
                "the waiter was not served: {:?}",
                other.map(|r| r.map(|_| ()))
            ),
        }
        caller_took_it
    };
    // Old (1 s): the wait is young; the return goes idle for whoever asks.
    assert!(
        contest(&pool),
        "a running caller may take a return while waits are young"
    );
    pool.reconfigure(with(pool.config(), |c| c.hand_off_after = Duration::ZERO))
        .unwrap();
    // New (0): every return is handed to the oldest waiter.
    assert!(!contest(&pool), "a caller took a return owed to a waiter");
}

#[test]
fn max_waiters_caps_the_queue_at_the_new_limit() {
    let (pool, _faults) = live_pool(|b| b.max_size(1).max_waiters(2));
    let held = pool.get().unwrap();
    let refused = |limit: u32| match pool.get_timeout(LIMIT).map(|conn| conn.id) {
        Err(Error::TooManyWaiters { limit: got, .. }) => assert_eq!(got, limit),
        other => panic!("expected TooManyWaiters({limit}) at once, got {other:?}"),
    };
    thread::scope(|scope| {
        let waiter = || scope.spawn(|| pool.get_timeout(LIMIT).map(|conn| conn.id));
        let mut waiters = vec![waiter(), waiter()];
        eventually("two callers queued", LIMIT, || pool.state().waiting == 2);
        // Old (2): a third is refused at once.
        refused(2);

        pool.reconfigure(with(pool.config(), |c| c.max_waiters = 3))
            .unwrap();
        // New (3): a third queues, a fourth is refused.
        waiters.push(waiter());
        eventually("three callers queued", LIMIT, || pool.state().waiting == 3);
        refused(3);

        // 0: unlimited.
        pool.reconfigure(with(pool.config(), |c| c.max_waiters = 0))
            .unwrap();
        waiters.push(waiter());
        eventually("four callers queued", LIMIT, || pool.state().waiting == 4);

        drop(held);
        for waiter in waiters {
            waiter.join().unwrap().expect("served in turn");
        }
    });
}

#[test]
fn fail_fast_after_decides_when_gets_fail_at_once() {
    let (pool, _clock, faults) = manual_pool(|b| b.max_size(1).fail_fast_after(5));
    faults.down.store(true, Ordering::SeqCst);
    // A refused try_get asks for a connection; each pass makes one attempt.
    assert_eq!(no_idle(&pool), (0, 1));
    for _ in 0..3 {
        pool.run_background_step();
    }
    assert_eq!(faults.attempts.load(Ordering::SeqCst), 3);
    // A zero timeout tells the two apart: a caller that may wait times out,
    // one refused fails at once with the connect error.
    let get = || pool.get_timeout(Duration::ZERO).map(|conn| conn.id);
    // Old (5): three failures in a row, so a get still waits.
    assert!(matches!(get(), Err(Error::TimedOut { .. })), "{:?}", get());

    pool.reconfigure(with(pool.config(), |c| c.fail_fast_after = 3))
        .unwrap();
    // New (3): it fails at once, with the typed cause.
    match get() {
        Err(Error::Connect { source, .. }) => assert_eq!(*source, TestError(3)),
        other => panic!("expected to fail fast, got {other:?}"),
    }

    // 0: never fails fast.
    pool.reconfigure(with(pool.config(), |c| c.fail_fast_after = 0))
        .unwrap();
    assert!(matches!(get(), Err(Error::TimedOut { .. })), "{:?}", get());
    // 4: waits at 3 failures, fails fast at the 4th.
    pool.reconfigure(with(pool.config(), |c| c.fail_fast_after = 4))
        .unwrap();
    assert!(matches!(get(), Err(Error::TimedOut { .. })), "{:?}", get());
    pool.run_background_step();
    assert_eq!(faults.attempts.load(Ordering::SeqCst), 4);
    assert!(matches!(get(), Err(Error::Connect { .. })), "{:?}", get());
}

// ---------------------------------------------------------------------------
// Connect backoff: real pauses between failed connects.
// ---------------------------------------------------------------------------

/// The test manager, noting when each connect attempt began.
struct Stamped {
    inner: TestManager,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Manager for Stamped {
    type Connection = TestConn;
    type Error = TestError;

    fn connect(&self) -> Result<TestConn, TestError> {
        self.attempts.lock().unwrap().push(Instant::now());
        Manager::connect(&self.inner)
    }
    fn is_valid(&self, conn: &mut TestConn) -> Result<(), TestError> {
        Manager::is_valid(&self.inner, conn)
    }
    fn has_broken(&self, conn: &mut TestConn) -> bool {
        Manager::has_broken(&self.inner, conn)
    }
    fn reset(&self, conn: &mut TestConn) -> Result<(), TestError> {
        Manager::reset(&self.inner, conn)
    }
}

/// A live pool whose connects always fail and are stamped, with the connect
/// loop running: a refused `try_get` asks for one connection, and the loop
/// retries, pausing between attempts, until one opens or the pool closes.
fn failing_pool(
    configure: impl FnOnce(Builder<Stamped>) -> Builder<Stamped>,
) -> (Pool<Stamped>, Arc<Mutex<Vec<Instant>>>) {
    let (inner, faults) = TestManager::new();
    faults.down.store(true, Ordering::SeqCst);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let manager = Stamped {
        inner,
        attempts: attempts.clone(),
    };
    let pool = configure(Pool::builder().max_size(1))
        .build(manager)
        .expect("pool");
    assert!(pool.try_get().is_err());
    (pool, attempts)
}

/// Waits for connect attempt number `to` (0-based, exclusive), and returns
/// the pauses between attempts `from..to`.
fn pauses(attempts: &Mutex<Vec<Instant>>, from: usize, to: usize) -> Vec<Duration> {
    eventually(&format!("{to} connect attempts"), LIMIT, || {
        attempts.lock().unwrap().len() >= to
    });
    let attempts = attempts.lock().unwrap();
    attempts[from..to]
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .collect()
}

/// Attempts made so far.
fn attempts_so_far(attempts: &Mutex<Vec<Instant>>) -> usize {
    attempts.lock().unwrap().len()
}

#[test]
fn connect_backoff_initial_sets_the_next_pause() {
    let (pool, attempts) = failing_pool(|b| {
        b.connect_backoff_initial(ms(20))
            .connect_backoff_max(ms(20))
    });
    // Old (20 ms): pauses of 10-20 ms (equal jitter), well under 400 ms.
    let old = pauses(&attempts, 0, 5);
    assert!(old.iter().all(|pause| *pause < ms(400)), "{old:?}");

    pool.reconfigure(with(pool.config(), |c| {
        c.connect_backoff_initial = secs(1);
        c.connect_backoff_max = secs(2);
    }))
    .unwrap();
    // The pause in flight, and the one after the next attempt, may have been
    // planned before the change; the one after that is planned with it: at
    // least 1 s jittered, so at least 500 ms.
    let mark = attempts_so_far(&attempts);
    let new = pauses(&attempts, mark, mark + 3);
    assert!(new[1] >= ms(500), "{new:?}");
}

#[test]
fn connect_backoff_max_caps_the_pauses() {
    let (pool, attempts) = failing_pool(|b| {
        b.connect_backoff_initial(ms(50))
            .connect_backoff_max(ms(50))
    });
    // Old (50 ms): every pause capped (25-50 ms), well under 400 ms.
    let old = pauses(&attempts, 0, 5);
    assert!(old.iter().all(|pause| *pause < ms(400)), "{old:?}");

    pool.reconfigure(with(pool.config(), |c| c.connect_backoff_max = secs(4)))
        .unwrap();
    // New (4 s): the pauses double (100, 200, 400, 800 ms, jittered) until
    // one passes 400 ms, eight times the old cap.
    let mark = attempts_so_far(&attempts);
    eventually("a pause past 400 ms", LIMIT, || {
        let attempts = attempts.lock().unwrap();
        attempts[mark..]
            .windows(2)
            .any(|pair| pair[1] - pair[0] >= ms(400))
    });

    // Back to 50 ms: capped again from the pause planned after the change.
    pool.reconfigure(with(pool.config(), |c| c.connect_backoff_max = ms(50)))
        .unwrap();
    let mark = attempts_so_far(&attempts);
    let new = pauses(&attempts, mark, mark + 3);
    assert!(new[1] < ms(400), "{new:?}");
}

// ---------------------------------------------------------------------------
// Background concurrency.
// ---------------------------------------------------------------------------

#[test]
fn max_concurrent_connects_bounds_connects_in_flight() {
    let (pool, faults) = live_pool(|b| b.max_size(4).max_concurrent_connects(1));
    let gate = Gate::closed();
    let _open = OpenOnDrop(gate.clone());
    *faults.connect_gate.lock().unwrap() = Some(gate.clone());
    // Connects entered (each blocks on the gate).
    let entered = || faults.attempts.load(Ordering::SeqCst);
    thread::scope(|scope| {
        let _open = OpenOnDrop(gate.clone());
        let waiters: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| pool.get_timeout(LIMIT).map(|conn| conn.id)))
            .collect();
        eventually("three callers queued", LIMIT, || pool.state().waiting == 3);
        eventually("a connect entered", LIMIT, || entered() >= 1);
        // Old (1): three callers want connections; one connect at a time.
        holds_for("one connect in flight", WINDOW, || entered() == 1);

        pool.reconfigure(with(pool.config(), |c| c.max_concurrent_connects = 2))
            .unwrap();
        // New (2): a second connect starts beside the blocked one; not a third.
        eventually("a second connect entered", LIMIT, || entered() == 2);
        holds_for("two connects in flight", WINDOW, || entered() == 2);

        gate.open();
        for waiter in waiters {
            waiter.join().unwrap().expect("served once connects finish");
        }
    });
    assert!(pool.state().connections <= 4);
}

#[test]
fn max_concurrent_validations_bounds_checks_in_flight() {
    let (pool, faults) = live_pool(|b| {
        b.max_size(4)
            .validation_idle_window(Duration::ZERO)
            .validation_timeout(secs(20))
            .max_concurrent_validations(1)
    });
    fill(&pool, 4);
    let gate = Gate::closed();
    let _open = OpenOnDrop(gate.clone());
    *faults.validate_gate.lock().unwrap() = Some(gate.clone());
    // Checks entered (each blocks on the gate).
    let entered = || faults.validations.load(Ordering::SeqCst);
    assert_eq!(entered(), 0);
    thread::scope(|scope| {
        let _open = OpenOnDrop(gate.clone());
        // Every idle connection is stale (zero window): the callers send all
        // four to be checked, then wait.
        let callers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| pool.get_timeout(LIMIT).map(|conn| conn.id)))
            .collect();
        eventually("four connections out for checks", LIMIT, || {
            pool.state().idle_connections == 0 && pool.state().waiting == 3
        });
        eventually("a check entered", LIMIT, || entered() >= 1);
        // Old (1): four checks queued; one runs at a time.
        holds_for("one check in flight", WINDOW, || entered() == 1);

        pool.reconfigure(with(pool.config(), |c| c.max_concurrent_validations = 3))
            .unwrap();
        // New (3): two more checks start beside the blocked one; not a fourth.
        eventually("three checks entered", LIMIT, || entered() == 3);
        holds_for("three checks in flight", WINDOW, || entered() == 3);

        gate.open();
        for caller in callers {
            caller.join().unwrap().expect("served once checks pass");
        }
    });
    assert_eq!(pool.stats().counters.validation_timeouts, 0);
}

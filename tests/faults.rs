#![cfg(not(feature = "loom"))]
//! The fault suite (HikariCP's "Bad Behavior" and its tests): one test per
//! scenario, each bounded to a few seconds, with short configured durations
//! or a manual clock, and no sleep standing in for synchronisation.
//!
//! Deadline assertions allow a generous margin (1 s) above the configured
//! timeout: they check the contract, not the speed, on a shared 2-core box.

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use slotpool::{CloseReason, Error, Pool, PoolConfig};
use support::{Gate, TestManager, eventually, manual_pool, open};

const LIMIT: Duration = Duration::from_secs(10);
const MARGIN: Duration = Duration::from_secs(1);

/// Asserts a get ended within `timeout` plus the margin.
fn assert_within(started: Instant, timeout: Duration) {
    let waited = started.elapsed();
    assert!(
        waited < timeout + MARGIN,
        "took {waited:?} for a {timeout:?} deadline"
    );
}

#[test]
fn s01_database_unreachable_under_steady_load() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(2)
        .validation_idle_window(Duration::ZERO)
        .fail_fast_after(3)
        .connect_backoff_initial(Duration::from_millis(5))
        .connect_backoff_max(Duration::from_millis(50))
        .build(manager)
        .unwrap();
    eventually("min_idle filled", LIMIT, || {
        pool.state().idle_connections >= 2
    });
    // The database goes away and takes every connection with it.
    faults.down.store(true, Ordering::SeqCst);
    faults.killed_up_to.store(faults.opened(), Ordering::SeqCst);
    let killed = faults.opened();
    let timeout = Duration::from_millis(200);
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    let started = Instant::now();
                    match pool.get_timeout(timeout) {
                        Ok(conn) => assert!(conn.id > killed, "a dead connection was handed out"),
                        Err(Error::TimedOut { .. } | Error::Connect { .. }) => {}
                        Err(other) => panic!("untyped failure: {other}"),
                    }
                    assert_within(started, timeout);
                }
            });
        }
    });
    // The last error is the typed connect failure.
    let error = pool.get_timeout(timeout).unwrap_err();
    assert!(error.connect_error().is_some(), "{error}");
    // The database comes back: the pool refills to min_idle without help.
    faults.down.store(false, Ordering::SeqCst);
    eventually("refilled after recovery", LIMIT, || {
        pool.state().idle_connections >= 2
    });
    let conn = pool.get_timeout(LIMIT).unwrap();
    assert!(conn.id > killed);
}

#[test]
fn s02_validation_hangs_but_the_deadline_holds() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(1)
        .validation_idle_window(Duration::ZERO)
        .build(manager)
        .unwrap();
    drop(pool.get().unwrap());
    let gate = Gate::closed();
    *faults.validate_gate.lock().unwrap() = Some(gate.clone());
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let error = pool.get_timeout(timeout).unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_within(started, timeout);
    // The check finally answers "invalid": the connection is evicted.
    faults.invalid.store(true, Ordering::SeqCst);
    *faults.validate_gate.lock().unwrap() = None;
    gate.open();
    eventually("evicted as invalid", LIMIT, || {
        pool.stats().counters.closed(CloseReason::Invalid) == 1
    });
}

#[test]
fn s03_a_blocking_close_delays_no_get() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder().max_size(1).build(manager).unwrap();
    let gate = Gate::closed();
    *faults.close_gate.lock().unwrap() = Some(gate.clone());
    let mut conn = pool.get().unwrap();
    conn.mark_broken();
    let returned = Instant::now();
    drop(conn); // its close blocks until the gate opens
    assert!(
        returned.elapsed() < MARGIN,
        "the returning thread waited for the close"
    );
    let started = Instant::now();
    let fresh = pool.get_timeout(Duration::from_secs(2)).unwrap();
    assert_within(started, Duration::ZERO);
    assert_eq!(fresh.id, 2);
    *faults.close_gate.lock().unwrap() = None;
    gate.open();
    eventually("closed once unblocked", LIMIT, || faults.closed() == 1);
}

#[test]
fn s05_saturation_then_recovery() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder().max_size(2).build(manager).unwrap();
    thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..5 {
                    if let Ok(_conn) = pool.get_timeout(Duration::from_millis(20)) {
                        thread::sleep(Duration::from_millis(30)); // the work
                    }
                }
            });
        }
    });
    let during = pool.stats().counters.timeouts;
    assert!(during > 0, "the saturation phase should time out");
    for _ in 0..50 {
        drop(pool.get_timeout(LIMIT).unwrap());
    }
    assert_eq!(
        pool.stats().counters.timeouts,
        during,
        "timeouts stop once load drops"
    );
    assert_eq!(pool.state().in_use, 0);
}

#[test]
fn s06_every_connection_killed_at_once() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(3)
        .validation_idle_window(Duration::ZERO)
        .keepalive_interval(Some(Duration::from_millis(100)))
        .build(manager)
        .unwrap();
    eventually("min_idle filled", LIMIT, || {
        pool.state().idle_connections >= 3
    });
    let killed = faults.opened();
    faults.killed_up_to.store(killed, Ordering::SeqCst);
    // Keepalive and checkout validation find the dead; the pool refills.
    eventually("refilled with live connections", LIMIT, || {
        let state = pool.state();
        state.idle_connections >= 3
            && faults.live.load(Ordering::SeqCst) == state.connections as usize
            && faults.opened() >= killed + 3
    });
    let all: Vec<_> = (0..3).map(|_| pool.get_timeout(LIMIT).unwrap()).collect();
    assert!(
        all.iter().all(|conn| conn.id > killed),
        "a dead connection was handed out"
    );
}

#[test]
fn s07_first_connects_fail_then_a_retry_succeeds() {
    let (manager, faults) = TestManager::new();
    faults.fail_next.store(3, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(1)
        .fail_fast_after(0)
        .connect_backoff_initial(Duration::from_millis(2))
        .connect_backoff_max(Duration::from_millis(10))
        .build(manager)
        .unwrap();
    let conn = pool.get_timeout(LIMIT).expect("a retry succeeds in time");
    assert_eq!(conn.id, 1);
    assert_eq!(faults.attempts.load(Ordering::SeqCst), 4);
    assert_eq!(pool.stats().counters.connect_failures, 3);
}

#[test]
fn s08_lifetime_expiry_is_spread_and_never_under_a_user() {
    let (pool, clock, faults) = manual_pool(|builder| {
        builder
            .max_size(11)
            .max_lifetime(Some(Duration::from_secs(100)))
            .max_lifetime_jitter(0.5)
    });
    drop(open(&pool, 11));
    let held = pool.try_get().unwrap();
    let held_id = held.id;
    // Expiry of each connection lies in [50 s, 100 s]: walk through it.
    clock.advance(Duration::from_secs(45));
    pool.run_background_step();
    assert_eq!(
        faults.closed(),
        0,
        "nothing expires before (1 - jitter) x lifetime"
    );
    let mut closes_per_step = Vec::new();
    for _ in 0..11 {
        let before = faults.closed();
        clock.advance(Duration::from_secs(5));
        pool.run_background_step();
        closes_per_step.push(faults.closed() - before);
    }
    assert_eq!(
        faults.closed(),
        10,
        "every idle connection expired by the lifetime"
    );
    let steps_with_closes = closes_per_step.iter().filter(|&&n| n > 0).count();
    assert!(
        steps_with_closes >= 3,
        "expiries bunched together: {closes_per_step:?}"
    );
    // The held one expired long ago but is still in its user's hands.
    assert_eq!(faults.live.load(Ordering::SeqCst), 1);
    held.claim();
    held.unclaim();
    assert_eq!(held.id, held_id);
    drop(held);
    assert_eq!(faults.live.load(Ordering::SeqCst), 0, "retired on return");
    assert_eq!(pool.stats().counters.closed(CloseReason::MaxLifetime), 11);
}

#[test]
fn s09_idle_retirement_stops_at_min_idle_and_keepalive_replaces_the_dead() {
    let (pool, clock, faults) = manual_pool(|builder| {
        builder
            .max_size(5)
            .min_idle(2)
            .idle_timeout(Some(Duration::from_secs(10)))
    });
    drop(open(&pool, 5));
    clock.advance(Duration::from_secs(11));
    pool.run_background_step();
    assert_eq!(pool.state().idle_connections, 2, "{}", pool.state());
    assert_eq!(pool.stats().counters.closed(CloseReason::IdleTimeout), 3);
    // Keepalive: a dead idle connection is found, closed and replaced.
    pool.reconfigure(PoolConfig {
        keepalive_interval: Some(Duration::from_secs(1)),
        idle_timeout: Some(Duration::from_secs(600)),
        ..(*pool.config()).clone()
    })
    .unwrap();
    let survivors: Vec<usize> = {
        let all: Vec<_> = (0..2).map(|_| pool.try_get().unwrap()).collect();
        all.iter().map(|conn| conn.id).collect()
    };
    // Kill the older of the two idle connections.
    faults
        .killed_up_to
        .store(*survivors.iter().min().unwrap(), Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    pool.run_background_step();
    assert_eq!(pool.stats().counters.closed(CloseReason::Invalid), 1);
    assert_eq!(
        pool.state().idle_connections,
        2,
        "refilled to min_idle in the same pass"
    );
    let ids: Vec<_> = {
        let all: Vec<_> = (0..2).map(|_| pool.try_get().unwrap()).collect();
        all.iter().map(|conn| conn.id).collect()
    };
    assert!(!ids.contains(survivors.iter().min().unwrap()), "{ids:?}");
}

#[test]
fn s10_a_permanent_error_fails_at_once() {
    let (manager, faults) = TestManager::new();
    faults.down.store(true, Ordering::SeqCst);
    faults.permanent.store(true, Ordering::SeqCst);
    let pool = Pool::builder().max_size(2).build(manager).unwrap();
    let started = Instant::now();
    let error = pool.get_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(
        started.elapsed() < MARGIN,
        "waited {:?} for a permanent error",
        started.elapsed()
    );
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("connecting failed"), "{error}");
    // Later gets fail fast too, until a probe succeeds.
    let started = Instant::now();
    assert!(matches!(
        pool.get_timeout(Duration::from_secs(30)),
        Err(Error::Connect { .. })
    ));
    assert!(started.elapsed() < MARGIN);
    assert!(pool.stats().counters.failed_fast >= 1);
    faults.down.store(false, Ordering::SeqCst);
    eventually("probe recovers", LIMIT, || {
        pool.get_timeout(Duration::from_millis(50)).is_ok()
    });
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `body` with this thread's log lines captured in the `Captured` it
/// is given.
fn with_captured_logs(body: impl FnOnce(&Captured)) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || body(&captured));
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn s11_a_leak_is_reported_once_counted_and_its_return_logged() {
    with_captured_logs(|captured| {
        let (pool, clock, _faults) = manual_pool(|builder| {
            builder
                .max_size(2)
                .leak_detection_threshold(Some(Duration::from_secs(5)))
        });
        drop(open(&pool, 1));
        let leaked = pool.try_get().unwrap(); // the checkout site below is reported
        let line = line!() - 1;
        clock.advance(Duration::from_secs(3));
        pool.run_background_step();
        assert_eq!(pool.stats().counters.leaks, 0, "not yet past the threshold");
        clock.advance(Duration::from_secs(3));
        pool.run_background_step();
        pool.run_background_step();
        assert_eq!(pool.stats().counters.leaks, 1, "reported exactly once");
        let log = captured.text();
        assert_eq!(log.matches("connection leak detected").count(), 1, "{log}");
        assert!(
            log.contains(&format!("tests/faults.rs:{line}")),
            "no checkout site: {log}"
        );
        drop(leaked);
        assert!(
            captured
                .text()
                .contains("previously reported leaked connection was returned")
        );
    });
}

#[test]
fn a_leak_reported_before_detection_is_switched_off_is_still_logged_on_return() {
    with_captured_logs(|captured| {
        let (pool, clock, _faults) = manual_pool(|builder| {
            builder
                .max_size(1)
                .leak_detection_threshold(Some(Duration::from_secs(5)))
        });
        drop(open(&pool, 1));
        // One checkout first, so the leaked one is not the slot's sampled
        // first checkout (which takes the slow return path anyway).
        drop(pool.try_get().unwrap());
        let leaked = pool.try_get().unwrap();
        clock.advance(Duration::from_secs(6));
        pool.run_background_step();
        assert_eq!(pool.stats().counters.leaks, 1);
        pool.reconfigure(slotpool::PoolConfig {
            leak_detection_threshold: None,
            ..(*pool.config()).clone()
        })
        .unwrap();
        drop(leaked);
        let log = captured.text();
        assert!(
            log.contains("previously reported leaked connection was returned"),
            "{log}"
        );
    });
}

#[test]
fn s12_close_during_start_up_and_from_several_threads() {
    let (manager, faults) = TestManager::new();
    faults.connect_delay_us.store(30_000, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(5)
        .min_idle(5)
        .build(manager)
        .unwrap();
    thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| pool.close_timeout(Duration::ZERO));
        }
    });
    let started = Instant::now();
    assert!(pool.get().unwrap_err().is_closed());
    assert!(started.elapsed() < MARGIN);
    // A connect in flight at close completes and is closed, not leaked.
    eventually("nothing left open", LIMIT, || {
        faults.live.load(Ordering::SeqCst) == 0 && pool.state().connections == 0
    });
}

#[test]
fn s13_start_up_waits_for_min_idle_or_reports_why() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(3)
        .startup(slotpool::config::StartupMode::WaitForMinIdle)
        .build(manager)
        .unwrap();
    assert_eq!(pool.state().idle_connections, 3);
    assert_eq!(faults.opened(), 3);

    let (manager, faults) = TestManager::new();
    faults.down.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let error = Pool::builder()
        .max_size(2)
        .min_idle(1)
        .validation_timeout(Duration::from_millis(500))
        .connection_timeout(Duration::from_secs(1))
        .fail_fast_after(0)
        .startup(slotpool::config::StartupMode::WaitForMinIdle)
        .build(manager)
        .unwrap_err();
    assert!(error.connect_error().is_some(), "{error}");
    assert_within(started, Duration::from_secs(1));
}

#[test]
fn evict_idle_evict_and_retain() {
    let (pool, clock, faults) = manual_pool(|builder| builder.max_size(4));
    drop(open(&pool, 4));
    // retain: close connections that served fewer than two checkouts.
    drop(pool.try_get().unwrap());
    pool.retain(|_conn, info| info.checkouts >= 2);
    assert_eq!(pool.state().connections, 1);
    assert_eq!(pool.stats().counters.closed(CloseReason::Evicted), 3);
    // evict one guard.
    let conn = pool.try_get().unwrap();
    pool.evict(conn);
    assert_eq!(pool.state().connections, 0);
    // evict_idle: idle now, in use on return.
    drop(open(&pool, 2));
    let held = pool.try_get().unwrap();
    clock.advance(Duration::from_millis(1));
    pool.evict_idle();
    assert_eq!(pool.state().idle_connections, 0);
    assert_eq!(faults.live.load(Ordering::SeqCst), 1);
    drop(held);
    assert_eq!(faults.live.load(Ordering::SeqCst), 0);
    // New connections are not affected by an earlier eviction.
    clock.advance(Duration::from_millis(1));
    drop(open(&pool, 1));
    drop(pool.try_get().unwrap());
    assert_eq!(pool.state().idle_connections, 1);
}

#[test]
fn a_get_that_waits_runs_in_an_acquire_span() {
    with_captured_logs_and_spans(|captured| {
        let (pool, _clock, _faults) = manual_pool(|builder| builder.max_size(1));
        drop(open(&pool, 1));
        let held = pool.try_get().unwrap();
        // Served at once: no span (the fast path records nothing).
        assert!(!captured.text().contains("slotpool.acquire"));
        // A get that waits (and times out) runs inside one span, closed when
        // it returns.
        assert!(pool.get_timeout(Duration::ZERO).unwrap_err().is_timeout());
        let text = captured.text();
        assert!(text.contains("slotpool.acquire"), "{text}");
        assert!(text.contains("close"), "the span closed: {text}");
        drop(held);
    });
}

fn with_captured_logs_and_spans(body: impl FnOnce(&Captured)) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::with_default(subscriber, || body(&captured));
}

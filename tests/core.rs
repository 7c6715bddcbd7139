#![cfg(not(feature = "loom"))]
//! The core pool's contract: the seven invariants of docs/DESIGN.md, the deadline
//! contract with a hanging connect, the spike test, close, and the API.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use slotpool::{Builder, Error, Pool, TryGetError};
use support::{Gate, TestManager, eventually};

const LIMIT: Duration = Duration::from_secs(10);

fn pool(max_size: u32) -> (Pool<TestManager>, Arc<support::Faults>) {
    pool_with(max_size, |builder| builder)
}

/// [`pool`] with more settings from `configure`.
fn pool_with(
    max_size: u32,
    configure: impl FnOnce(Builder<TestManager>) -> Builder<TestManager>,
) -> (Pool<TestManager>, Arc<support::Faults>) {
    let (manager, faults) = TestManager::new();
    let builder = Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10));
    (configure(builder).build(manager).unwrap(), faults)
}

/// Checks the pool is at rest: nothing in use or waiting, counts consistent.
fn assert_at_rest(pool: &Pool<TestManager>, max_size: u32) {
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state}");
    assert_eq!(state.waiting, 0, "{state}");
    assert_eq!(state.connecting, 0, "{state}");
    assert_eq!(state.connections, state.idle_connections, "{state}");
    assert!(state.connections <= max_size, "{state}");
}

#[test]
fn get_returns_on_drop_and_reuses() {
    let (pool, faults) = pool(2);
    {
        let conn = pool.get().unwrap();
        conn.claim();
        assert_eq!(pool.state().in_use, 1);
        conn.unclaim();
    }
    assert_eq!(pool.state().idle_connections, 1);
    let first = pool.get().unwrap().id;
    let second = pool.get().unwrap().id;
    assert_eq!(first, second, "an idle connection is reused");
    assert_eq!(faults.opened(), 1);
    assert_at_rest(&pool, 2);
}

#[test]
fn a_connection_stays_in_its_slot_across_checkouts() {
    // The design keeps each connection in place: a checkout moves the slot's
    // tag, never the connection, so its address is the same every time.
    let (pool, _faults) = pool(2);
    let first = {
        let conn = pool.get().unwrap();
        std::ptr::from_ref(&*conn)
    };
    for _ in 0..3 {
        let conn = pool.get().unwrap();
        assert_eq!(std::ptr::from_ref(&*conn), first, "the connection moved");
    }
    assert_at_rest(&pool, 2);
}

#[test]
fn a_validation_is_not_counted_as_a_checkout() {
    // After the first, every checkout finds the connection stale and sends
    // it to the worker to be checked: each get is counted once, as a hit or
    // a wait, never as both, and each stale checkout is checked once. Which
    // of the two a get counts as is a race the test leaves open: a check (or
    // the first get's connect) that ends before the caller has queued up
    // leaves the connection idle and just checked, and the caller's scan
    // takes it (a hit); otherwise it is handed to the queued caller (a wait).
    let (pool, _faults) = pool_with(1, |builder| builder.validation_idle_window(Duration::ZERO));
    for _ in 0..3 {
        drop(pool.get().unwrap());
    }
    let counters = pool.stats().counters;
    assert_eq!(counters.gets, 3, "{counters:?}");
    assert_eq!(counters.hits + counters.waited, 3, "{counters:?}");
    assert_eq!(counters.validations, 2, "{counters:?}");
}

#[test]
fn a_sampled_hold_is_recorded_once_even_when_handed_to_a_waiter() {
    // One checkout in 1024 per slot is sampled: the slot's first. Its
    // return hands the connection to a waiter, whose checkout (the second)
    // is not sampled and must not inherit the first one's sample.
    let (pool, _faults) = pool_with(1, |builder| builder.usage_sampling(1024));
    let first = pool.get().unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| drop(pool.get().unwrap()));
        eventually("one waiter queued", LIMIT, || pool.state().waiting == 1);
        drop(first);
        waiter.join().unwrap();
    });
    assert_eq!(pool.stats().usage.count, 1, "{:?}", pool.stats().usage);
}

#[test]
fn stress_one_connection_one_user() {
    // Invariants 1 and 2: 8 threads x 20 000 gets on max_size 4.
    const THREADS: usize = 8;
    const GETS: usize = 20_000;
    let (pool, faults) = pool(4);
    let in_use_now = AtomicUsize::new(0);
    let most_in_use = AtomicUsize::new(0);
    let served = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..GETS {
                    let conn = pool.get().expect("no timeout with 10 s");
                    conn.claim();
                    let now = in_use_now.fetch_add(1, Ordering::SeqCst) + 1;
                    most_in_use.fetch_max(now, Ordering::SeqCst);
                    served.fetch_add(1, Ordering::Relaxed);
                    in_use_now.fetch_sub(1, Ordering::SeqCst);
                    conn.unclaim();
                }
            });
        }
    });
    assert_eq!(served.load(Ordering::SeqCst), THREADS * GETS);
    assert!(most_in_use.load(Ordering::SeqCst) <= 4);
    assert!(faults.opened() <= 4, "opened {}", faults.opened());
    assert_eq!(faults.closed(), 0, "nothing was broken, nothing closed");
    assert_at_rest(&pool, 4);
    assert_eq!(pool.state().connections as usize, faults.opened());
}

#[test]
fn waiter_timeouts_racing_returns_lose_nothing() {
    // Invariant 4: waiters with tiny deadlines race hand-offs; afterwards every
    // connection is accounted for and usable.
    let (pool, faults) = pool(2);
    let timeouts = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for i in 0..3_000u64 {
                    match pool.get_timeout(Duration::from_micros(i % 50)) {
                        Ok(conn) => {
                            conn.claim();
                            conn.unclaim();
                        }
                        Err(error) => {
                            assert!(error.is_timeout(), "{error}");
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    assert_at_rest(&pool, 2);
    let open = pool.state().connections as usize;
    assert_eq!(open, faults.opened() - faults.closed());
    // Every idle connection can really be checked out.
    let all: Vec<_> = (0..open).map(|_| pool.try_get().unwrap()).collect();
    assert_eq!(all.len(), open);
}

#[test]
fn panic_while_holding_does_not_leak() {
    // Invariant 7.
    let (pool, _faults) = pool(1);
    let result = thread::scope(|scope| {
        scope
            .spawn(|| {
                let _conn = pool.get().unwrap();
                panic!("user code panics while holding a connection");
            })
            .join()
    });
    assert!(result.is_err());
    assert_at_rest(&pool, 1);
    assert_eq!(pool.state().idle_connections, 1);
    pool.try_get().expect("the slot came back");
}

#[test]
fn deadline_holds_when_connect_hangs_forever() {
    // Invariant 5: connect runs off the caller's path.
    let (manager, faults) = TestManager::new();
    let gate = Gate::closed();
    *faults.connect_gate.lock().unwrap() = Some(gate.clone());
    let pool = Pool::builder().max_size(2).build(manager).unwrap();
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let error = pool.get_timeout(timeout).unwrap_err();
    let waited = start.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(waited >= timeout, "returned early: {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(2),
        "deadline missed: {waited:?}"
    );
    let message = error.to_string();
    assert!(message.contains("timed out after"), "{message}");
    assert!(message.contains("connecting=1"), "{message}");
    gate.open();
}

#[test]
fn timeout_carries_the_last_connect_error() {
    let (manager, faults) = TestManager::new();
    faults.down.store(true, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(1)
        .fail_fast_after(0) // keep waiting: this test is about the timeout's cause
        .connect_backoff_initial(Duration::from_millis(1))
        .connect_backoff_max(Duration::from_millis(5))
        .build(manager)
        .unwrap();
    let error = pool.get_timeout(Duration::from_millis(150)).unwrap_err();
    match &error {
        Error::TimedOut {
            last_connect_error: Some(cause),
            ..
        } => assert!(cause.0 >= 1),
        other => panic!("expected a timeout with a cause, got {other:?}"),
    }
    assert!(error.connect_error().is_some());
    // The cause appears once in the chain: as the source, not in Display.
    let message = error.to_string();
    assert!(
        message.contains("while connecting was failing"),
        "{message}"
    );
    assert!(!message.contains("test connect failure"), "{message}");
    let source = std::error::Error::source(&error).expect("the cause is the source");
    assert!(
        source.to_string().contains("test connect failure"),
        "{source}"
    );
    // The database comes back: the pool recovers without a restart.
    faults.down.store(false, Ordering::SeqCst);
    pool.get_timeout(LIMIT)
        .expect("recovers once connects succeed");
}

#[test]
fn spike_with_slow_connects_grows_by_a_few() {
    // HikariCP's spike: 150 ms connects, 2 ms work, min 5, max 50, 50 callers.
    let (manager, faults) = TestManager::new();
    faults.connect_delay_us.store(150_000, Ordering::SeqCst);
    let pool = Pool::builder()
        .max_size(50)
        .min_idle(5)
        .build(manager)
        .unwrap();
    // Warm up to min_idle: five holders at once force five connections.
    let warm = Barrier::new(5);
    thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                let _conn = pool.get().unwrap();
                warm.wait();
            });
        }
    });
    assert_eq!(faults.opened(), 5);
    let start = Barrier::new(50);
    thread::scope(|scope| {
        for _ in 0..50 {
            scope.spawn(|| {
                start.wait();
                let conn = pool.get().unwrap();
                conn.claim();
                thread::sleep(Duration::from_millis(2)); // the work
                conn.unclaim();
            });
        }
    });
    let opened = faults.opened();
    assert!(
        opened <= 5 + 5,
        "spike opened {} connections beyond min_idle",
        opened - 5
    );
}

#[test]
fn waiters_are_served_in_fifo_order() {
    let (pool, _faults) = pool(1);
    let holder = pool.get().unwrap();
    let order = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for waiter in 0..3 {
            let (pool, order) = (&pool, &order);
            scope.spawn(move || {
                let conn = pool.get().unwrap();
                order.lock().unwrap().push(waiter);
                drop(conn);
            });
            eventually("waiter queued", LIMIT, || {
                pool.state().waiting == waiter + 1
            });
        }
        drop(holder);
    });
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
}

#[test]
fn try_get_never_waits() {
    let (pool, _faults) = pool(1);
    match pool.try_get() {
        Err(TryGetError::NoIdle { .. }) => {}
        other => panic!("expected NoIdle, got {other:?}"),
    }
    // try_get asked for a connection in the background.
    eventually("background connect", LIMIT, || {
        pool.state().idle_connections == 1
    });
    let conn = pool.try_get().unwrap();
    assert!(matches!(pool.try_get(), Err(TryGetError::NoIdle { .. })));
    drop(conn);
}

#[test]
fn broken_connections_are_discarded() {
    let (pool, faults) = pool(1);
    let mut conn = pool.get().unwrap();
    let first = conn.id;
    conn.mark_broken();
    drop(conn);
    let conn = pool.get().unwrap();
    assert_ne!(conn.id, first);
    drop(conn);
    let mut conn = pool.get().unwrap();
    conn.broken = true; // has_broken says so on return
    drop(conn);
    eventually("closed off-path", LIMIT, || faults.closed() == 2);
    assert_eq!(pool.state().connections, 0);
}

#[test]
fn validation_runs_only_after_the_idle_window() {
    let (manager, faults) = TestManager::new();
    let clock = slotpool::ManualClock::new();
    let pool = Pool::builder()
        .max_size(1)
        .validation_idle_window(Duration::from_millis(500))
        .clock(clock.clone())
        .build(manager)
        .unwrap();
    drop(pool.get().unwrap());
    drop(pool.get().unwrap());
    assert_eq!(
        faults.validations.load(Ordering::SeqCst),
        0,
        "fresh: no validation"
    );
    clock.advance(Duration::from_millis(600));
    drop(pool.get().unwrap());
    assert_eq!(faults.validations.load(Ordering::SeqCst), 1);
    // An invalid connection is discarded and replaced within the same get;
    // the replacement is fresh, so it is not validated again.
    faults.invalid.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(600));
    let conn = pool.get().unwrap();
    assert_eq!(faults.validations.load(Ordering::SeqCst), 2);
    assert_eq!(conn.id, 2);
    assert_eq!(faults.opened(), 2);
}

#[test]
fn reset_runs_on_every_return() {
    let (pool, faults) = pool(1);
    for _ in 0..5 {
        let mut conn = pool.get().unwrap();
        conn.dirty = true;
    }
    assert_eq!(faults.resets.load(Ordering::SeqCst), 5);
    assert!(!pool.get().unwrap().dirty);
}

#[test]
fn close_fails_new_gets_wakes_waiters_and_closes_everything() {
    // Invariant 6.
    let (pool, faults) = pool(2);
    let held = pool.get().unwrap();
    let idle = pool.get().unwrap();
    drop(idle);
    pool.reconfigure(slotpool::PoolConfig {
        max_size: 2,
        ..(*pool.config()).clone()
    })
    .unwrap();
    let second = pool.get().unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| pool.get().map(|_| ()));
        eventually("waiter queued", LIMIT, || pool.state().waiting == 1);
        let start = Instant::now();
        // A zero timeout closes without waiting for the two still out.
        let report = pool.close_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(report.in_use, 2);
        let result = waiter.join().unwrap();
        assert!(matches!(result, Err(Error::Closed { .. })), "{result:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
    });
    assert!(pool.is_closed());
    assert!(matches!(pool.get(), Err(Error::Closed { .. })));
    assert!(matches!(pool.try_get(), Err(TryGetError::Closed { .. })));
    assert_eq!(faults.closed(), 0, "both connections are still in use");
    drop(second);
    // Closed when returned, on the closer thread.
    eventually("closed when returned", LIMIT, || faults.closed() == 1);
    // close_timeout waits for the last one to come back.
    thread::scope(|scope| {
        scope.spawn(move || {
            thread::sleep(Duration::from_millis(20)); // the holder's work
            drop(held);
        });
        pool.close_timeout(LIMIT).unwrap();
    });
    assert_eq!(faults.closed(), 2);
    assert_eq!(faults.live.load(Ordering::SeqCst), 0, "nothing leaks");
    pool.close().unwrap(); // idempotent, and drained: nothing to wait for
}

#[test]
fn close_timeout_reports_connections_still_out() {
    let (pool, _faults) = pool(1);
    let _held = pool.get().unwrap();
    let error = pool.close_timeout(Duration::from_millis(50)).unwrap_err();
    assert_eq!(error.in_use, 1, "{error}");
}

#[test]
fn close_from_many_threads_at_once() {
    let (pool, faults) = pool(4);
    let conns: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(conns);
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| pool.close().expect("nothing is checked out"));
        }
    });
    assert_eq!(faults.closed(), faults.opened());
    assert!(pool.get().unwrap_err().is_closed());
}

#[test]
fn dropping_the_last_handle_releases_everything() {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder().max_size(2).build(manager).unwrap();
    let clone = pool.clone();
    let owned = pool.get_owned().unwrap();
    drop(pool.get().unwrap());
    drop(pool);
    assert!(!clone.is_closed(), "one handle is left");
    drop(clone);
    // The owned guard outlives every handle; it is closed when returned.
    eventually("the idle one closed", LIMIT, || {
        faults.live.load(Ordering::SeqCst) == 1
    });
    drop(owned);
    eventually("closed when returned", LIMIT, || {
        faults.live.load(Ordering::SeqCst) == 0
    });
    // The background threads exit and release the manager (and so
    // `faults`' other owner).
    eventually("background exit", LIMIT, || Arc::strong_count(&faults) == 1);
}

#[test]
fn max_waiters_rejects_at_once() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(1)
        .max_waiters(1)
        .build(manager)
        .unwrap();
    let held = pool.get().unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| pool.get().map(|conn| conn.id));
        eventually("waiter queued", LIMIT, || pool.state().waiting == 1);
        let start = Instant::now();
        let error = pool.get().unwrap_err();
        assert!(
            matches!(error, Error::TooManyWaiters { limit: 1, .. }),
            "{error}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        drop(held);
        assert!(waiter.join().unwrap().is_ok());
    });
}

#[test]
fn detach_frees_the_slot() {
    let (pool, faults) = pool(1);
    let conn = pool.get().unwrap().detach();
    assert_eq!(pool.state().connections, 0);
    let other = pool.get().unwrap();
    assert_ne!(other.id, conn.id);
    assert_eq!(faults.opened(), 2);
}

#[test]
fn error_display_names_pool_and_state() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(1)
        .pool_name("orders")
        .build(manager)
        .unwrap();
    let _held = pool.get().unwrap();
    let error = pool.get_timeout(Duration::from_millis(10)).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("pool 'orders': no connection available"),
        "{text}"
    );
    assert!(
        text.contains("total=1, idle=0, in use=1, connecting=0, waiting=0, max=1"),
        "{text}"
    );
}

#[test]
fn event_hooks_are_called() {
    #[derive(Default)]
    struct Recorded {
        acquires: AtomicUsize,
        releases: AtomicUsize,
        creates: AtomicUsize,
        closes: Mutex<Vec<slotpool::CloseReason>>,
        timeouts: AtomicUsize,
    }
    struct Hooks(Arc<Recorded>);
    impl slotpool::PoolEvents for Hooks {
        fn on_acquire(&self, _: usize, _: Duration, site: &'static std::panic::Location<'static>) {
            assert!(site.file().ends_with("core.rs"), "{site}");
            self.0.acquires.fetch_add(1, Ordering::SeqCst);
        }
        fn on_release(&self, _: usize) {
            self.0.releases.fetch_add(1, Ordering::SeqCst);
        }
        fn on_create(&self, _: usize, _: Duration) {
            self.0.creates.fetch_add(1, Ordering::SeqCst);
        }
        fn on_close(&self, _: usize, reason: slotpool::CloseReason) {
            self.0.closes.lock().unwrap().push(reason);
        }
        fn on_timeout(&self, _: Duration) {
            self.0.timeouts.fetch_add(1, Ordering::SeqCst);
        }
    }
    let recorded = Arc::new(Recorded::default());
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(1)
        .event_handler(Hooks(recorded.clone()))
        .build(manager)
        .unwrap();
    let mut conn = pool.get().unwrap();
    assert!(pool.get_timeout(Duration::from_millis(10)).is_err());
    conn.mark_broken();
    drop(conn);
    drop(pool.get().unwrap());
    assert_eq!(recorded.acquires.load(Ordering::SeqCst), 2);
    assert_eq!(recorded.releases.load(Ordering::SeqCst), 2);
    assert_eq!(recorded.creates.load(Ordering::SeqCst), 2);
    assert_eq!(recorded.timeouts.load(Ordering::SeqCst), 1);
    // `on_close` runs with the close, on the pool's closer thread.
    eventually("on_close", LIMIT, || {
        *recorded.closes.lock().unwrap() == vec![slotpool::CloseReason::Broken]
    });
}

//! loom models of the pool's lock-free protocols, run on the real code
//! through the `sync` facade (`cargo test --features loom --test loom`).
//!
//! Time is a `ManualClock`: loom's timed waits never time out, so a "timer"
//! thread advances the clock, which wakes every waiter parked on a deadline.
//! Background work runs in manual mode (`run_background_step`) on a model
//! thread, so connects are explored like any other step.
//!
//! Every model ends by checking the invariants of docs/DESIGN.md: a connection
//! was never held by two users (the `claim` flag), nothing is in use or
//! waiting at rest, the counts add up, and no connection leaked (`live`).
//!
//! Default preemption bound: 3 (`LOOM_MAX_PREEMPTIONS` overrides; unset it
//! and set `LOOM_MAX_PREEMPTIONS=` to a large number for an exhaustive run).
#![cfg(feature = "loom")]

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use loom::thread;
use slotpool::{Manager, ManualClock, Pool, PoolConfig};

#[derive(Debug, thiserror::Error)]
#[error("model connect failure")]
struct ModelError;

#[derive(Debug, Default)]
struct Counts {
    opened: AtomicUsize,
    live: AtomicUsize,
}

#[derive(Debug)]
struct ModelConn {
    in_use: AtomicBool,
    counts: StdArc<Counts>,
}

impl ModelConn {
    /// Invariant 1: panics if a second user holds it.
    fn claim(&self) {
        assert!(
            !self.in_use.swap(true, Ordering::SeqCst),
            "one connection handed to two users"
        );
    }
    fn unclaim(&self) {
        self.in_use.store(false, Ordering::SeqCst);
    }
}

impl Drop for ModelConn {
    fn drop(&mut self) {
        self.counts.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ModelManager {
    counts: StdArc<Counts>,
}

impl Manager for ModelManager {
    type Connection = ModelConn;
    type Error = ModelError;
    fn connect(&self) -> Result<ModelConn, ModelError> {
        self.counts.opened.fetch_add(1, Ordering::SeqCst);
        self.counts.live.fetch_add(1, Ordering::SeqCst);
        Ok(ModelConn {
            in_use: AtomicBool::new(false),
            counts: self.counts.clone(),
        })
    }
    fn is_valid(&self, _: &mut ModelConn) -> Result<(), ModelError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut ModelConn) -> bool {
        false
    }
}

/// Runs `body` on a new model thread with its own handle to the pool.
fn spawn_with<T: 'static>(
    pool: &std::sync::Arc<Pool<ModelManager>>,
    body: impl FnOnce(&Pool<ModelManager>) -> T + 'static,
) -> thread::JoinHandle<T> {
    let pool = pool.clone();
    thread::spawn(move || body(&pool))
}

/// Stack for the thread that runs each model's body. loom runs threads as
/// coroutines on 32 KiB stacks by default, which a debug build of the
/// pool's error paths (large `Error` values) can overflow:
/// `close_races_get_and_return` did, on the model's main thread, once
/// `get()` was inlined more aggressively. (`spawn_with` keeps loom's plain
/// `spawn`: its bodies need not be `Send`, which the sized builder demands.)
const MODEL_STACK: usize = 256 << 10;

/// Runs `f` under loom, on a model thread with [`MODEL_STACK`] of stack
/// (the model's own main thread cannot be given more).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let f = std::sync::Arc::new(f);
    builder.check(move || {
        let f = f.clone();
        thread::Builder::new()
            .stack_size(MODEL_STACK)
            .spawn(move || f())
            .expect("spawn the model's body")
            .join()
            .expect("the model's body panicked");
    });
}

/// A pool of `max_size` with `idle` connections already open, manual clock
/// and manual background work.
fn model_pool(
    max_size: u32,
    idle: usize,
) -> (
    Pool<ModelManager>,
    std::sync::Arc<ManualClock>,
    StdArc<Counts>,
) {
    model_pool_with(max_size, idle, |builder| builder)
}

/// [`model_pool`] with extra builder settings (maintenance is off unless
/// `configure` turns some on).
fn model_pool_with(
    max_size: u32,
    idle: usize,
    configure: impl FnOnce(slotpool::Builder<ModelManager>) -> slotpool::Builder<ModelManager>,
) -> (
    Pool<ModelManager>,
    std::sync::Arc<ManualClock>,
    StdArc<Counts>,
) {
    let counts = StdArc::new(Counts::default());
    let clock = ManualClock::new();
    let builder = Pool::builder()
        .max_size(max_size)
        // Strict hand-off unless a model asks for barging: the manual clock
        // stands still, so every wait would stay young (see the "rousal"
        // models, which set `hand_off_after` themselves).
        .hand_off_after(Duration::ZERO)
        .validation_idle_window(Duration::from_secs(3600))
        // Maintenance off: these models are about get/return/close races.
        .idle_timeout(None)
        .max_lifetime(None)
        .keepalive_interval(None);
    let pool = configure(builder)
        .clock(clock.clone())
        .manual_background()
        .build(ModelManager {
            counts: counts.clone(),
        })
        .unwrap();
    let held: Vec<_> = (0..idle)
        .map(|_| {
            // try_get asks for one connection; the step opens it.
            assert!(pool.try_get().is_err());
            pool.run_background_step();
            pool.try_get().expect("opened by the step")
        })
        .collect();
    drop(held);
    assert_eq!(pool.state().idle_connections as usize, idle);
    (pool, clock, counts)
}

/// The end-of-execution check of the invariants.
fn assert_at_rest(pool: &Pool<ModelManager>, counts: &Counts) {
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state}");
    assert_eq!(state.waiting, 0, "{state}");
    assert_eq!(state.connecting, 0, "{state}");
    assert!(state.connections <= state.max_size, "{state}");
    assert_eq!(
        state.connections as usize,
        counts.live.load(Ordering::SeqCst),
        "a connection leaked or was lost: {state}"
    );
}

/// Use a connection briefly, checking nobody else holds it.
fn use_conn(conn: &ModelConn) {
    conn.claim();
    conn.unclaim();
}

/// Two getters race for one idle slot.
///
/// Catches: a checkout that is not a single CAS (a load-then-store would let
/// both win and trip the `claim` assertion), or a lost connection when the
/// loser's scan gives up mid-way.
#[test]
fn two_getters_race_for_one_idle_slot() {
    model(|| {
        let (pool, _clock, counts) = model_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let wins = StdArc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (pool, wins) = (pool.clone(), wins.clone());
                thread::spawn(move || {
                    if let Ok(conn) = pool.try_get() {
                        use_conn(&conn);
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert!(wins.load(Ordering::SeqCst) >= 1);
        assert_at_rest(&pool, &counts);
        assert_eq!(pool.state().idle_connections, 1);
    });
}

/// A return races a waiter's enqueue.
///
/// Catches the classic lost wake-up (bb8 #122, sqlx #83): the releaser checks
/// the waiter count before the waiter is counted and marks the slot idle,
/// while the waiter scanned before the slot became idle and parks forever.
/// Dropping the waiter's re-scan after enqueueing, or weakening the
/// release's swap to `Release`, makes loom report a deadlock here.
#[test]
fn return_races_waiter_enqueue() {
    model(|| {
        let (pool, _clock, counts) = model_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.try_get().unwrap();
        let waiter = spawn_with(&pool, move |pool| {
            // No deadline passes on the manual clock: only a hand-off or
            // the re-scan can end this wait.
            let conn = pool.get().expect("the returned connection");
            use_conn(&conn);
        });
        drop(held);
        waiter.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

/// A waiter's timeout races a hand-off.
///
/// Catches a waiter that times out while a connection is being handed to it
/// and drops it on the floor (invariant 4): the lease must go to the waiter
/// or back to idle. Turning `Waiters::cancel` into "mark cancelled, ignore
/// what was handed" leaks the connection and fails `assert_at_rest`.
#[test]
fn waiter_timeout_races_hand_off() {
    model(|| {
        let (pool, clock, counts) = model_pool(1, 1);
        a_timeout_races_a_return(pool, &clock, &counts);
    });
}

/// The race of the two timeout models: one connection held, a caller
/// waiting for it with a 10 ms deadline, the clock passing the deadline on
/// another thread while the holder returns it. The waiter is served or
/// times out; either way the connection ends idle. Returns the pool.
fn a_timeout_races_a_return(
    pool: Pool<ModelManager>,
    clock: &std::sync::Arc<ManualClock>,
    counts: &Counts,
) -> std::sync::Arc<Pool<ModelManager>> {
    let pool = std::sync::Arc::new(pool);
    let held = pool.try_get().unwrap();
    let waiter = spawn_with(&pool, move |pool| {
        match pool.get_timeout(Duration::from_millis(10)) {
            Ok(conn) => use_conn(&conn),
            Err(error) => assert!(error.is_timeout(), "{error}"),
        }
    });
    let timer = {
        let clock = clock.clone();
        thread::spawn(move || clock.advance(Duration::from_millis(20)))
    };
    drop(held);
    waiter.join().unwrap();
    timer.join().unwrap();
    assert_at_rest(&pool, counts);
    assert_eq!(pool.state().idle_connections, 1);
    pool
}

/// A connection is created while its waiter times out.
///
/// Catches a creator that publishes into a waiter node that already gave
/// up (the new connection would vanish) and a waiter that never asks for a
/// connection (it would wait forever with room in the pool).
#[test]
fn create_completes_while_waiter_times_out() {
    model(|| {
        let (pool, clock, counts) = model_pool(1, 0);
        let pool = std::sync::Arc::new(pool);
        let done = StdArc::new(AtomicBool::new(false));
        let waiter = {
            let (pool, done) = (pool.clone(), done.clone());
            thread::spawn(move || {
                match pool.get_timeout(Duration::from_millis(10)) {
                    Ok(conn) => use_conn(&conn),
                    Err(error) => assert!(error.is_timeout(), "{error}"),
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let creator = spawn_with(&pool, move |pool| pool.run_background_step());
        // The timer fires once the waiter has started its wait (a deadline
        // set after the clock moved would never pass in this model).
        while pool.state().waiting == 0 && !done.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        clock.advance(Duration::from_millis(20));
        waiter.join().unwrap();
        creator.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

/// `close()` races a waiting `get()` and a return.
///
/// Catches a connection returned as close scans (left idle in a closed
/// pool: `live` stays 1), a waiter that enqueues after close drained the
/// queue (waits forever), and a get that succeeds after close returned.
#[test]
fn close_races_get_and_return() {
    model(|| {
        let (pool, _clock, counts) = model_pool(1, 1);
        close_races_a_waiter_and_a_return(pool, &counts);
    });
}

/// The race of the two close models: one connection held, a caller
/// waiting for it, `close()` on another thread while the holder returns
/// it. The waiter is served or told the pool closed; afterwards a get is
/// refused and no connection is left open.
fn close_races_a_waiter_and_a_return(pool: Pool<ModelManager>, counts: &Counts) {
    let pool = std::sync::Arc::new(pool);
    let held = pool.try_get().unwrap();
    let waiter = spawn_with(&pool, move |pool| match pool.get() {
        Ok(conn) => use_conn(&conn),
        Err(error) => assert!(error.is_closed(), "{error}"),
    });
    let closer = spawn_with(&pool, move |pool| {
        let _ = pool.close_timeout(Duration::ZERO);
    });
    drop(held);
    closer.join().unwrap();
    assert!(pool.get().unwrap_err().is_closed());
    waiter.join().unwrap();
    assert_eq!(
        counts.live.load(Ordering::SeqCst),
        0,
        "closed pool kept a connection"
    );
    assert_at_rest(&pool, counts);
}

/// `reconfigure()` shrinks the pool while a borrower gets and returns.
///
/// Catches a shrink that closes a connection under its user, or retires
/// too many or too few: afterwards at most the new `max_size` stay open.
#[test]
fn reconfigure_shrink_races_get_and_return() {
    model(|| {
        let (pool, _clock, counts) = model_pool(2, 2);
        let pool = std::sync::Arc::new(pool);
        let borrower = spawn_with(&pool, move |pool| {
            if let Ok(conn) = pool.try_get() {
                use_conn(&conn);
            }
        });
        let config = PoolConfig {
            max_size: 1,
            ..(*pool.config()).clone()
        };
        pool.reconfigure(config).unwrap();
        borrower.join().unwrap();
        assert_at_rest(&pool, &counts);
        assert!(pool.state().connections <= 1, "{}", pool.state());
    });
}

/// `reconfigure()` grows the pool while a caller waits.
///
/// Catches a grow that does not wake the worker for existing waiters: the
/// waiter would wait although the pool now has room.
#[test]
fn reconfigure_grow_serves_a_waiter() {
    model(|| {
        let (pool, _clock, counts) = model_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.try_get().unwrap();
        let waiter = spawn_with(&pool, move |pool| {
            let conn = pool.get().expect("served after the grow");
            use_conn(&conn);
        });
        let config = PoolConfig {
            max_size: 2,
            ..(*pool.config()).clone()
        };
        pool.reconfigure(config).unwrap();
        // The worker's pass, after the grow: opens a connection if one waits.
        pool.run_background_step();
        // If the waiter had not queued yet, it either found room and asked,
        // or will get the held connection back.
        drop(held);
        waiter.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

/// An async waiter is cancelled (its future dropped) while a connection is
/// handed to it.
///
/// Catches the cancellation bugs of sqlx #1149 and qp: a dropped future that
/// had just been handed a connection takes it to the grave (the slot stays
/// in use forever) or a cancelled waiter absorbs the wake-up meant for the
/// next one. `Acquire::drop` must pass the connection on.
#[test]
fn async_cancellation_races_hand_off() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    model(|| {
        let (pool, _clock, counts) = model_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.get_owned().unwrap(); // 'static: it moves to a thread
        let returner = thread::spawn(move || drop(held));
        {
            let mut acquire = pool.get_async();
            let mut context = Context::from_waker(Waker::noop());
            match std::pin::Pin::new(&mut acquire).poll(&mut context) {
                Poll::Ready(Ok(conn)) => use_conn(&conn),
                Poll::Ready(Err(error)) => panic!("{error}"),
                Poll::Pending => {} // queued; dropped below, racing the hand-off
            }
        }
        returner.join().unwrap();
        assert_at_rest(&pool, &counts);
        assert_eq!(
            pool.state().idle_connections,
            1,
            "the connection went back to idle"
        );
    });
}

/// Maintenance reserves an idle connection (a keepalive check) while a
/// borrower scans for it.
///
/// Catches a maintenance pass that looks at a connection without reserving
/// it (the borrower and the check would use it at once: the `claim`
/// assertion), and a reservation that forgets to give the connection back
/// (it would leak: `assert_at_rest`).
#[test]
fn maintenance_reserve_races_a_borrower() {
    model(|| {
        let (pool, clock, counts) = model_pool_with(1, 1, |builder| {
            builder.keepalive_interval(Some(Duration::from_secs(1)))
        });
        clock.advance(Duration::from_secs(2)); // the keepalive is due
        let pool = std::sync::Arc::new(pool);
        let borrower = spawn_with(&pool, move |pool| {
            if let Ok(conn) = pool.try_get() {
                use_conn(&conn);
            }
        });
        pool.run_background_step();
        borrower.join().unwrap();
        assert_at_rest(&pool, &counts);
        assert_eq!(pool.state().idle_connections, 1);
    });
}

/// A leak check runs while the leaked connection is being returned.
///
/// Catches a leak check that takes ownership of an in-use slot (it must
/// only read), and a report that survives into the next checkout: at most
/// one leak is counted and the pool ends at rest.
#[test]
fn leak_check_races_a_return() {
    model(|| {
        let (pool, clock, counts) = model_pool_with(1, 1, |builder| {
            builder.leak_detection_threshold(Some(Duration::from_secs(1)))
        });
        let pool = std::sync::Arc::new(pool);
        let held = pool.try_get().unwrap();
        clock.advance(Duration::from_secs(2)); // held past the threshold
        let checker = spawn_with(&pool, move |pool| pool.run_background_step());
        drop(held);
        checker.join().unwrap();
        assert!(pool.stats().counters.leaks <= 1);
        assert_at_rest(&pool, &counts);
        assert_eq!(pool.state().idle_connections, 1);
    });
}

/// A validity check finishing races its deadline (`validation_timeout`)
/// while its caller waits: the checker settles the check on one thread, the
/// deadline (the dispatcher's job, here a step after the clock moved) on
/// another.
///
/// Catches: both sides settling the check (the room given back twice, so
/// the step's connect over-opens: `connections > max_size`, or the ticket's
/// loser publishing a connection the winner closed: the claim assertion or
/// a leak), neither settling it (the room never freed and the caller never
/// served: the model deadlocks), and an abandoned connection left open
/// (`live` above the pool's connections at rest). Removing the ticket's
/// compare-and-swap (a plain store of the outcome) makes it fail.
#[test]
fn a_check_finishing_races_its_deadline() {
    model(|| {
        let (pool, clock, counts) = model_pool_with(1, 1, |builder| {
            builder
                .validation_idle_window(Duration::ZERO)
                .validation_timeout(Duration::from_millis(10))
                .connection_timeout(Duration::from_secs(60))
                .queued_checks()
        });
        let pool = std::sync::Arc::new(pool);
        let getter = spawn_with(&pool, |pool| {
            let conn = pool.get().expect("served: checked, or replaced");
            use_conn(&conn);
        });
        // The stale connection went to its check and the caller queued up.
        while pool.state().waiting == 0 {
            thread::yield_now();
        }
        let checker = spawn_with(&pool, |pool| pool.run_background_step());
        clock.advance(Duration::from_millis(20));
        // The deadline: abandons the check unless it finished, then opens a
        // replacement for the waiter if the room came back.
        pool.run_background_step();
        checker.join().unwrap();
        getter.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

// ---------------------------------------------------------------------------
// Rousal: a return while the oldest wait is young puts the connection back
// idle and rouses one waiter, so a running caller may take it first (issue
// 16). `hand_off_after` is 1 s and the clock stands still: every return
// barges unless a model moves the clock.
// ---------------------------------------------------------------------------

/// A model pool that lets returns barge (`hand_off_after` 1 s).
fn barging_pool(
    max_size: u32,
    idle: usize,
) -> (
    Pool<ModelManager>,
    std::sync::Arc<ManualClock>,
    StdArc<Counts>,
) {
    model_pool_with(max_size, idle, |builder| {
        builder.hand_off_after(Duration::from_secs(1))
    })
}

/// A barging return and a running caller race a roused waiter.
///
/// Catches a lost rousal: the return stores `Idle` and then reads the
/// roused bit; the roused waiter clears the bit and then rescans. Clearing
/// the bit after the rescan (or the return reading it before its check-in)
/// lets the return skip the wake-up while the waiter's rescan misses the
/// connection: the waiter parks forever and loom reports a deadlock. The
/// barger may take the connection first; the waiter must still be served.
#[test]
fn barging_return_races_a_roused_waiter() {
    model(|| {
        let (pool, _clock, counts) = barging_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.try_get().unwrap();
        let waiter = spawn_with(&pool, move |pool| {
            let conn = pool.get().expect("no deadline passes: served");
            use_conn(&conn);
        });
        drop(held);
        // A running caller asks again at once (the barger).
        if let Ok(conn) = pool.try_get() {
            use_conn(&conn);
        }
        waiter.join().unwrap();
        assert_at_rest(&pool, &counts);
        assert_eq!(pool.state().idle_connections, 1);
    });
}

/// Two returns race while one waiter is roused and another sleeps.
///
/// Catches the lost second wake-up: the second return finds the first
/// waiter roused and wakes nobody, relying on its rescan; that rescan takes
/// one connection, and without passing the rousal on (another is idle) the
/// second waiter sleeps beside an idle connection for as long as the first
/// holds its own (here: until both are served, so the model never ends).
#[test]
fn two_returns_race_one_roused_waiter() {
    model(|| {
        let (pool, _clock, counts) = barging_pool(2, 2);
        let pool = std::sync::Arc::new(pool);
        let first = pool.try_get().unwrap();
        let second = pool.try_get().unwrap();
        // Each waiter keeps its connection until both are served: the one
        // served first must not be what wakes the other (by returning).
        let served = StdArc::new(loom::sync::atomic::AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let served = served.clone();
                spawn_with(&pool, move |pool| {
                    let conn = pool.get().expect("no deadline passes: served");
                    conn.claim();
                    served.fetch_add(1, Ordering::SeqCst);
                    while served.load(Ordering::SeqCst) < 2 {
                        thread::yield_now();
                    }
                    conn.unclaim();
                })
            })
            .collect();
        // Two returns in a row, racing the waiters' queueing and rescans.
        drop(first);
        drop(second);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_at_rest(&pool, &counts);
        assert_eq!(pool.state().idle_connections, 2);
    });
}

/// A roused waiter's timeout races a barging return.
///
/// Catches a waiter that, at its deadline, gives up while roused for a
/// connection put back idle and leaves it unserved or drops it: the
/// connection must be taken by the waiter or stay idle for the next caller
/// (`assert_at_rest`, and a get afterwards served at once). (A roused async
/// waiter cancelled before it looks is `async_cancellation_races_a_rousal`.)
#[test]
fn roused_waiter_timeout_races_a_barging_return() {
    model(|| {
        let (pool, clock, counts) = barging_pool(1, 1);
        let pool = a_timeout_races_a_return(pool, &clock, &counts);
        use_conn(
            &pool
                .try_get()
                .expect("the connection is idle for the next caller"),
        );
    });
}

/// An async waiter is cancelled (its future dropped) while a barging return
/// rouses it.
///
/// Catches a cancelled future that takes its rousal to the grave: the
/// sleeping waiter behind it is never woken for the idle connection
/// (deadlock). `Waiters::cancel` must pass the rousal on.
#[test]
fn async_cancellation_races_a_rousal() {
    use std::future::Future;
    use std::task::{Context, Waker};
    model(|| {
        let (pool, _clock, counts) = barging_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.get_owned().unwrap();
        let mut acquire = Box::pin(pool.get_async());
        let mut context = Context::from_waker(Waker::noop());
        assert!(acquire.as_mut().poll(&mut context).is_pending());
        let sleeper = spawn_with(&pool, move |pool| {
            let conn = pool.get().expect("no deadline passes: served");
            use_conn(&conn);
        });
        let returner = thread::spawn(move || drop(held));
        drop(acquire); // cancelled, racing the rousal
        returner.join().unwrap();
        sleeper.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

/// `close()` races a barging return and a roused waiter.
///
/// Catches a connection put back idle by the return after close emptied the
/// idle slots (left open in a closed pool: `live` stays 1), and a roused
/// waiter that takes a connection from a closed pool or sleeps through the
/// close.
#[test]
fn close_races_a_barging_return() {
    model(|| {
        let (pool, _clock, counts) = barging_pool(1, 1);
        close_races_a_waiter_and_a_return(pool, &counts);
    });
}

/// A return decides between rousal and hand-off while the oldest wait
/// crosses `hand_off_after`.
///
/// Catches a return whose two looks at the wait's age disagree (young when
/// it chose to check in, old when it decided whom to serve) and serves
/// nobody: the waiter sleeps beside an idle connection (deadlock), or the
/// connection is handed and also left idle (the claim assertion).
#[test]
fn a_return_races_the_hand_off_bound() {
    model(|| {
        let (pool, clock, counts) = barging_pool(1, 1);
        let pool = std::sync::Arc::new(pool);
        let held = pool.try_get().unwrap();
        let waiter = spawn_with(&pool, move |pool| {
            let conn = pool.get().expect("no deadline passes: served");
            use_conn(&conn);
        });
        while pool.state().waiting == 0 {
            thread::yield_now();
        }
        let timer = {
            let clock = clock.clone();
            thread::spawn(move || clock.advance(Duration::from_secs(2)))
        };
        drop(held);
        if let Ok(conn) = pool.try_get() {
            use_conn(&conn);
        }
        waiter.join().unwrap();
        timer.join().unwrap();
        assert_at_rest(&pool, &counts);
    });
}

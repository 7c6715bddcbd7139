#![cfg(not(feature = "loom"))]
//! The waiting protocol under contention (issue 16): while the oldest waiter
//! has waited less than `hand_off_after`, a connection a caller returns goes
//! back idle and one waiter is roused to look for it, so a running caller
//! may take it first; past that, returns hand connections to waiters in
//! arrival order. And the rules that keep a wake-up from being lost: one
//! waiter roused at a time, roused in arrival order, the rousal passed on
//! when the roused waiter leaves without looking or takes one while another
//! is idle.
//!
//! Waiters here are `get_async` futures polled by hand with counting
//! wakers, on a manual clock and manual background: every step is
//! deterministic (who was woken, who may take what), with no thread racing
//! the assertions. The loom models cover the same races under every
//! interleaving (`loom-tests/main.rs`, "rousal" models).

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use slotpool::{Builder, Error, ManualClock, Pool, PooledConnection};
use support::{TestManager, manual_pool, open, process_cpu_time};

const LIMIT: Duration = Duration::from_secs(20);

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type Acquired<'a> = Result<PooledConnection<'a, TestManager>, Error<support::TestError>>;

/// A `get_async` future polled by hand.
struct Waiter<'a> {
    future: Pin<Box<dyn Future<Output = Acquired<'a>> + 'a>>,
    wakes: Arc<CountingWaker>,
}

impl<'a> Waiter<'a> {
    /// Starts a get and polls it once: it must queue.
    fn queued(pool: &'a Pool<TestManager>) -> Self {
        let mut waiter = Self {
            future: Box::pin(pool.get_async()),
            wakes: Arc::default(),
        };
        assert!(
            waiter.poll().is_pending(),
            "served at once: nothing to wait for"
        );
        waiter
    }

    fn poll(&mut self) -> Poll<Acquired<'a>> {
        let waker = Waker::from(self.wakes.clone());
        self.future.as_mut().poll(&mut Context::from_waker(&waker))
    }

    /// Polls once; it must be served.
    fn served(mut self) -> PooledConnection<'a, TestManager> {
        match self.poll() {
            Poll::Ready(Ok(conn)) => conn,
            Poll::Ready(Err(error)) => panic!("the waiter failed: {error}"),
            Poll::Pending => panic!("the waiter is still waiting"),
        }
    }

    fn woken(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// A manual pool (clock and background, no maintenance) of `open`
/// connections at most, with a 30 s connection timeout.
fn pool_holding(
    open: usize,
    configure: impl FnOnce(Builder<TestManager>) -> Builder<TestManager>,
) -> (Pool<TestManager>, Arc<ManualClock>) {
    let (pool, clock, _faults) = manual_pool(|builder| {
        configure(
            builder
                .max_size(open as u32)
                .connection_timeout(Duration::from_secs(30)),
        )
    });
    (pool, clock)
}

#[test]
fn a_young_wait_lets_a_running_caller_take_a_returned_connection() {
    let (pool, _clock) = pool_holding(1, |b| b.hand_off_after(Duration::from_secs(1)));
    let held = open(&pool, 1);
    let waiter = Waiter::queued(&pool);
    drop(held);
    assert_eq!(waiter.woken(), 1, "the waiter is roused to look");
    assert_eq!(
        pool.state().idle_connections,
        1,
        "the return went back idle"
    );
    // A running caller takes it before the roused waiter looks (barging).
    let barged = pool.try_get().expect("a running caller may take it first");
    drop(barged);
    assert_eq!(
        waiter.woken(),
        1,
        "one rousal at a time: its look will see this return"
    );
    let conn = waiter.served();
    drop(conn);
    assert_eq!(pool.state().waiting, 0);
}

#[test]
fn past_hand_off_after_a_return_goes_to_the_oldest_waiter() {
    let (pool, clock) = pool_holding(1, |b| b.hand_off_after(Duration::from_millis(1)));
    let held = open(&pool, 1);
    let waiter = Waiter::queued(&pool);
    clock.advance(Duration::from_millis(2)); // wakes it too (its timer)
    let woken = waiter.woken();
    drop(held);
    assert_eq!(
        waiter.woken(),
        woken + 1,
        "the waiter is woken with its connection"
    );
    assert!(
        pool.try_get().is_err(),
        "a caller took the connection owed to a waiter that waited past hand_off_after"
    );
    drop(waiter.served());
}

#[test]
fn hand_off_after_zero_hands_every_return_to_the_oldest_waiter() {
    let (pool, _clock) = pool_holding(1, |b| b.hand_off_after(Duration::ZERO));
    let held = open(&pool, 1);
    let waiter = Waiter::queued(&pool);
    drop(held);
    assert!(
        pool.try_get().is_err(),
        "strict order: the return belongs to the waiter"
    );
    drop(waiter.served());
}

#[test]
fn waiters_are_roused_in_arrival_order_and_keep_their_place() {
    let (pool, _clock) = pool_holding(1, |b| b.hand_off_after(Duration::from_secs(1)));
    let held = open(&pool, 1);
    let first = Waiter::queued(&pool);
    let mut second = Waiter::queued(&pool);
    drop(held);
    assert_eq!(
        (first.woken(), second.woken()),
        (1, 0),
        "the oldest is roused"
    );
    // Woken by mistake, the second finds nothing meant for it: it looks only
    // when roused, and keeps its place.
    assert!(second.poll().is_pending());
    let conn = first.served();
    assert_eq!(pool.state().waiting, 1);
    drop(conn);
    assert_eq!(
        second.woken(),
        1,
        "next in line is roused by the next return"
    );
    drop(second.served());
}

#[test]
fn a_roused_waiter_that_is_cancelled_passes_the_rousal_on() {
    let (pool, _clock) = pool_holding(1, |b| b.hand_off_after(Duration::from_secs(1)));
    let held = open(&pool, 1);
    let first = Waiter::queued(&pool);
    let second = Waiter::queued(&pool);
    drop(held);
    assert_eq!((first.woken(), second.woken()), (1, 0));
    drop(first); // cancelled before it looked
    assert_eq!(
        second.woken(),
        1,
        "the idle connection would wait for nobody"
    );
    drop(second.served());
}

#[test]
fn a_roused_waiter_that_takes_one_passes_the_rousal_on_if_another_is_idle() {
    let (pool, _clock) = pool_holding(2, |b| b.hand_off_after(Duration::from_secs(1)));
    let mut held = open(&pool, 2);
    let first = Waiter::queued(&pool);
    let second = Waiter::queued(&pool);
    drop(held.pop());
    drop(held.pop());
    // The second return found the first waiter roused: it woke nobody.
    assert_eq!((first.woken(), second.woken()), (1, 0));
    let conn = first.served();
    assert_eq!(second.woken(), 1, "one connection idle and a waiter asleep");
    let other = second.served();
    drop((conn, other));
}

#[test]
fn a_roused_waiter_handed_a_connection_passes_the_rousal_on() {
    let (pool, _clock) = pool_holding(2, |b| b.hand_off_after(Duration::from_secs(1)));
    let held = open(&pool, 1); // one of two open: room for another
    let first = Waiter::queued(&pool);
    let second = Waiter::queued(&pool);
    drop(held);
    assert_eq!((first.woken(), second.woken()), (1, 0));
    // The connector's new connection is handed to the oldest waiter (the
    // background always hands off): the first is served without looking,
    // so the rousal for the idle one passes to the second.
    pool.run_background_step();
    assert_eq!(second.woken(), 1);
    let (a, b) = (first.served(), second.served());
    drop((a, b));
}

#[test]
fn sixty_four_waiting_threads_burn_no_cpu() {
    let (manager, _faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(2)
        .connection_timeout(LIMIT)
        .build(manager)
        .unwrap();
    let held = (0..2).map(|_| pool.get().unwrap()).collect::<Vec<_>>();
    thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| drop(pool.get().expect("served when the holders return")));
        }
        support::eventually("64 threads queued", LIMIT, || pool.state().waiting == 64);
        let (cpu_before, wall) = (process_cpu_time(), Instant::now());
        thread::sleep(Duration::from_millis(300));
        let (cpu, elapsed) = (process_cpu_time() - cpu_before, wall.elapsed());
        assert!(
            cpu < elapsed / 4,
            "64 waiting threads used {cpu:?} of CPU in {elapsed:?}: spinning?"
        );
        drop(held);
    });
    assert_eq!(pool.state().waiting, 0);
}

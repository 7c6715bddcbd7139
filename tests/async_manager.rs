#![cfg(not(feature = "loom"))]
//! Pools of an [`AsyncManager`] on tokio: the same core as a blocking
//! manager's, with `connect`, `is_valid` and `reset` as tasks on the
//! application's runtime. Each promise of `tests/promises.rs` that concerns
//! a manager call is checked here for futures that hang, fail or panic, and
//! the async-only parts (`needs_reset`, where the futures run) on their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::stats::Callback;
use slotpool::{Async, AsyncManager, CloseReason, Pool, TryGetError};
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_millis(200);
const MARGIN: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("async test failure {0}")]
struct AsyncError(usize);

/// Switches and counters shared by a test and its manager.
#[derive(Debug, Default)]
struct Knobs {
    opened: AtomicUsize,
    closed: AtomicUsize,
    attempts: AtomicUsize,
    /// Connects in flight now, and the most ever at once.
    connecting: AtomicUsize,
    most_connecting: AtomicUsize,
    down: AtomicBool,
    /// Futures that never complete while set.
    hang_connect: AtomicBool,
    hang_valid: AtomicBool,
    hang_reset: AtomicBool,
    /// Wakes hung futures (they re-check their switch).
    release: Notify,
    invalid: AtomicBool,
    validations: AtomicUsize,
    resets: AtomicUsize,
    fail_reset: AtomicBool,
    /// The next call of each panics: `connect`, `is_valid`, `reset`.
    panic_next: std::sync::Mutex<Vec<&'static str>>,
    /// Names of the threads the futures were polled on.
    threads: std::sync::Mutex<Vec<String>>,
}

impl Knobs {
    fn maybe_panic(&self, call: &'static str) {
        let armed = {
            let mut armed = self.panic_next.lock().unwrap();
            armed
                .iter()
                .position(|name| *name == call)
                .map(|index| armed.remove(index))
        };
        if armed.is_some() {
            panic!("injected panic in async {call}");
        }
    }

    fn note_thread(&self) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        self.threads.lock().unwrap().push(name);
    }

    /// Waits while `switch` is set.
    async fn hold(&self, switch: &AtomicBool) {
        while switch.load(Ordering::SeqCst) {
            let released = self.release.notified();
            if !switch.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
    }
}

/// A connection: an id and the "dirty" state a borrower may leave.
#[derive(Debug)]
struct Conn {
    id: usize,
    dirty: bool,
    in_use: Arc<AtomicBool>,
    knobs: Arc<Knobs>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.knobs.closed.fetch_add(1, Ordering::SeqCst);
    }
}

struct Manager(Arc<Knobs>);

impl AsyncManager for Manager {
    type Connection = Conn;
    type Error = AsyncError;

    async fn connect(&self) -> Result<Conn, AsyncError> {
        let knobs = &self.0;
        knobs.note_thread();
        let attempt = knobs.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let now = knobs.connecting.fetch_add(1, Ordering::SeqCst) + 1;
        knobs.most_connecting.fetch_max(now, Ordering::SeqCst);
        knobs.maybe_panic("connect");
        knobs.hold(&knobs.hang_connect).await;
        tokio::task::yield_now().await;
        knobs.connecting.fetch_sub(1, Ordering::SeqCst);
        if knobs.down.load(Ordering::SeqCst) {
            return Err(AsyncError(attempt));
        }
        let id = knobs.opened.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Conn {
            id,
            dirty: false,
            in_use: Arc::new(AtomicBool::new(false)),
            knobs: knobs.clone(),
        })
    }

    async fn is_valid(&self, _conn: &mut Conn) -> Result<(), AsyncError> {
        let knobs = &self.0;
        knobs.note_thread();
        knobs.validations.fetch_add(1, Ordering::SeqCst);
        knobs.maybe_panic("is_valid");
        knobs.hold(&knobs.hang_valid).await;
        if knobs.invalid.load(Ordering::SeqCst) {
            Err(AsyncError(0))
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, _conn: &mut Conn) -> bool {
        false
    }

    fn needs_reset(&self, conn: &mut Conn) -> bool {
        conn.dirty
    }

    async fn reset(&self, conn: &mut Conn) -> Result<(), AsyncError> {
        let knobs = &self.0;
        knobs.note_thread();
        knobs.resets.fetch_add(1, Ordering::SeqCst);
        knobs.maybe_panic("reset");
        knobs.hold(&knobs.hang_reset).await;
        if knobs.fail_reset.load(Ordering::SeqCst) {
            return Err(AsyncError(0));
        }
        conn.dirty = false;
        Ok(())
    }
}

type AsyncPool = Pool<Async<Manager>>;

fn pool_with(
    configure: impl FnOnce(slotpool::Builder<Async<Manager>>) -> slotpool::Builder<Async<Manager>>,
) -> (AsyncPool, Arc<Knobs>) {
    let knobs = Arc::new(Knobs::default());
    let pool = configure(Pool::builder().max_size(2))
        .build(Async::new(Manager(knobs.clone()), Tokio::current()))
        .expect("pool");
    (pool, knobs)
}

/// Polls `condition` on the runtime (yielding) until it holds, within LIMIT.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn within_deadline<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let value = future.await;
    let took = started.elapsed();
    assert!(took <= DEADLINE + MARGIN, "{what}: {took:?}");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_opened_checked_out_and_reused() {
    let (pool, knobs) = pool_with(|b| b);
    let first = pool.get_async().await.expect("a connection");
    assert_eq!(first.id, 1);
    drop(first);
    let again = pool.get_async().await.unwrap();
    assert_eq!(again.id, 1, "reused");
    assert_eq!(knobs.opened.load(Ordering::SeqCst), 1);
    // A blocking get works on the same pool (from a blocking context).
    drop(again);
    let sync = tokio::task::block_in_place(|| pool.get().map(|conn| conn.id));
    assert_eq!(sync.unwrap(), 1);
    // The futures ran on the runtime's threads, never on the pool's.
    let threads = knobs.threads.lock().unwrap().clone();
    assert!(!threads.is_empty());
    assert!(
        threads.iter().all(|name| !name.starts_with("slotpool")),
        "{threads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_hold_while_the_connect_future_hangs() {
    let (pool, knobs) = pool_with(|b| b.max_size(1));
    knobs.hang_connect.store(true, Ordering::SeqCst);
    let result = within_deadline("get_timeout_async", pool.get_timeout_async(DEADLINE)).await;
    assert!(result.unwrap_err().is_timeout());
    let sync = within_deadline("get_timeout", async {
        tokio::task::block_in_place(|| pool.get_timeout(DEADLINE).map(|_| ()))
    })
    .await;
    assert!(sync.unwrap_err().is_timeout());
    knobs.hang_connect.store(false, Ordering::SeqCst);
    knobs.release.notify_waiters();
    assert!(pool.get_timeout_async(LIMIT).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_connects_back_off_and_keep_the_deadline() {
    let (pool, knobs) = pool_with(|b| {
        b.max_size(1)
            .fail_fast_after(0)
            .connect_backoff_initial(Duration::from_millis(20))
            .connect_backoff_max(Duration::from_millis(100))
    });
    knobs.down.store(true, Ordering::SeqCst);
    let error = within_deadline("down", pool.get_timeout_async(DEADLINE))
        .await
        .unwrap_err();
    assert!(error.connect_error().is_some(), "typed cause: {error}");
    let attempts = knobs.attempts.load(Ordering::SeqCst);
    assert!(attempts >= 2, "retried with backoff: {attempts}");
    knobs.down.store(false, Ordering::SeqCst);
    assert!(pool.get_timeout_async(LIMIT).await.is_ok(), "recovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_check_is_abandoned_and_replaced() {
    let (pool, knobs) = pool_with(|b| {
        b.max_size(1)
            .validation_idle_window(Duration::ZERO)
            .validation_timeout(Duration::from_millis(100))
            .connection_timeout(Duration::from_secs(5))
    });
    drop(pool.get_async().await.unwrap());
    knobs.hang_valid.store(true, Ordering::SeqCst);
    let conn = pool.get_timeout_async(LIMIT).await.expect("a replacement");
    assert_eq!(conn.id, 2);
    assert_eq!(pool.stats().counters.validation_timeouts, 1);
    drop(conn);
    knobs.hang_valid.store(false, Ordering::SeqCst);
    knobs.release.notify_waiters();
    eventually("the abandoned one closed", || {
        knobs.closed.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_async_checkout_is_checked_once_and_try_get_does_not_block() {
    let (pool, knobs) = pool_with(|b| b.max_size(1).validation_idle_window(Duration::ZERO));
    drop(pool.get_async().await.unwrap());
    for round in 0..100 {
        let before = knobs.validations.load(Ordering::SeqCst);
        drop(pool.get_async().await.unwrap());
        let checks = knobs.validations.load(Ordering::SeqCst) - before;
        assert_eq!(checks, 1, "round {round}");
    }
    // try_get never waits, and an async check cannot run on its thread: a
    // stale connection goes to its check and try_get reports no idle one.
    // The check hangs here: a quick one could pass on another worker while
    // try_get still scans, and try_get would then rightly take the
    // connection it put back.
    knobs.hang_valid.store(true, Ordering::SeqCst);
    let before = knobs.validations.load(Ordering::SeqCst);
    assert!(matches!(pool.try_get(), Err(TryGetError::NoIdle { .. })));
    eventually("the check runs, as a task", || {
        knobs.validations.load(Ordering::SeqCst) == before + 1
    })
    .await;
    knobs.hang_valid.store(false, Ordering::SeqCst);
    knobs.release.notify_waiters();
    let conn = pool
        .get_timeout_async(LIMIT)
        .await
        .expect("checked, then served");
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_connection_is_reset_by_a_task_before_the_next_borrower() {
    let (pool, knobs) = pool_with(|b| b.max_size(1));
    let mut conn = pool.get_async().await.unwrap();
    conn.dirty = true;
    drop(conn);
    let next = pool.get_timeout_async(LIMIT).await.unwrap();
    assert!(!next.dirty, "reset before it was handed out");
    assert_eq!(knobs.resets.load(Ordering::SeqCst), 1);
    drop(next);
    // A clean connection is not reset.
    drop(pool.get_async().await.unwrap());
    assert_eq!(
        knobs.resets.load(Ordering::SeqCst),
        1,
        "needs_reset said no"
    );
    // A failed reset discards it; the next borrower gets a new one.
    knobs.fail_reset.store(true, Ordering::SeqCst);
    let mut conn = pool.get_async().await.unwrap();
    let id = conn.id;
    conn.dirty = true;
    drop(conn);
    let next = pool.get_timeout_async(LIMIT).await.unwrap();
    assert_ne!(next.id, id);
    assert_eq!(pool.stats().counters.closed(CloseReason::ResetFailed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_reset_is_abandoned_at_validation_timeout() {
    let (pool, knobs) = pool_with(|b| {
        b.max_size(1)
            .validation_timeout(Duration::from_millis(100))
            .connection_timeout(Duration::from_secs(5))
    });
    knobs.hang_reset.store(true, Ordering::SeqCst);
    let mut conn = pool.get_async().await.unwrap();
    conn.dirty = true;
    drop(conn);
    let next = pool.get_timeout_async(LIMIT).await.expect("a replacement");
    assert_eq!(next.id, 2);
    assert_eq!(pool.stats().counters.closed(CloseReason::ResetFailed), 1);
    knobs.hang_reset.store(false, Ordering::SeqCst);
    knobs.release.notify_waiters();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_futures_are_contained() {
    for (call, callback) in [
        ("connect", Callback::Connect),
        ("is_valid", Callback::IsValid),
        ("reset", Callback::Reset),
    ] {
        let (pool, knobs) = pool_with(|b| b.max_size(2).validation_idle_window(Duration::ZERO));
        drop(pool.get_async().await.unwrap());
        knobs.panic_next.lock().unwrap().push(call);
        match call {
            "connect" => {
                pool.evict_idle();
                drop(
                    pool.get_timeout_async(LIMIT)
                        .await
                        .expect("connect retried"),
                );
            }
            "is_valid" => drop(pool.get_timeout_async(LIMIT).await.expect("served")),
            _ => {
                let mut conn = pool.get_async().await.unwrap();
                conn.dirty = true;
                drop(conn);
            }
        }
        eventually(&format!("{call}'s panic counted"), || {
            pool.stats().counters.callback_panics(callback) == 1
        })
        .await;
        // Every slot still serves.
        let a = pool.get_timeout_async(LIMIT).await.expect(call);
        let b = pool.get_timeout_async(LIMIT).await.expect(call);
        assert_ne!(a.id, b.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_connects_bounds_connect_futures() {
    for bound in [1_u32, 3] {
        let (pool, knobs) = pool_with(|b| b.max_size(4).max_concurrent_connects(bound));
        knobs.hang_connect.store(true, Ordering::SeqCst);
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get_timeout_async(LIMIT).await.map(|c| c.id) })
            })
            .collect();
        eventually("connects in flight", || {
            knobs.connecting.load(Ordering::SeqCst) == bound as usize
        })
        .await;
        // Give any extra connect the chance to start: it must not.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(knobs.most_connecting.load(Ordering::SeqCst), bound as usize);
        knobs.hang_connect.store(false, Ordering::SeqCst);
        knobs.release.notify_waiters();
        for waiter in waiters {
            waiter.await.unwrap().expect("served");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_eight_connections_never_share_one() {
    let (pool, knobs) = pool_with(|b| b.max_size(8));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let conn = pool.get_timeout_async(LIMIT).await.expect("served");
                    assert!(
                        !conn.in_use.swap(true, Ordering::SeqCst),
                        "connection {} handed to two tasks",
                        conn.id
                    );
                    tokio::task::yield_now().await;
                    conn.in_use.store(false, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(knobs.opened.load(Ordering::SeqCst) <= 8);
    // Cancelled waits leak nothing either.
    let held: Vec<_> = futures::future::join_all((0..8).map(|_| pool.get_async()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for _ in 0..100 {
        let cancelled = tokio::time::timeout(Duration::from_millis(1), pool.get_async()).await;
        assert!(cancelled.is_err(), "timed out, future dropped");
    }
    drop(held);
    assert_eq!(pool.state().idle_connections, 8);
    assert_eq!(pool.state().waiting, 0);
}

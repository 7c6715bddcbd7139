#![cfg(not(feature = "loom"))]
//! Small get/return/hand-off/close scenarios over the slot array's `unsafe`
//! cells and the waiter queue, sized to run under Miri (and fast enough
//! for plain `cargo test` too):
//!
//! ```sh
//! cargo +nightly miri test --test miri
//! ```
//!
//! The connection is a heap value (`Box<u64>` with a drop counter), so Miri
//! sees every move in and out of a slot's cell: a use after a take, a
//! double drop or a leak is reported. Background work is manual
//! (`manual_background()` + `run_background_step()`), so no worker thread
//! outlives a test; two-thread scenarios use the system clock with long
//! deadlines that a hand-off or a close always beats.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use slotpool::{Manager, Pool, TryGetError};

#[derive(Debug)]
struct FakeError;

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fake connect failure")
    }
}

impl std::error::Error for FakeError {}

#[derive(Debug, Default)]
struct Counts {
    opened: AtomicUsize,
    live: AtomicUsize,
}

/// A heap-allocated fake connection that counts itself.
#[derive(Debug)]
struct FakeConn {
    /// The connection's id.
    value: Box<u64>,
    /// Dirtied by users, cleaned by `reset`.
    scratch: Box<u64>,
    counts: Arc<Counts>,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.counts.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct FakeManager {
    counts: Arc<Counts>,
}

impl Manager for FakeManager {
    type Connection = FakeConn;
    type Error = FakeError;
    fn connect(&self) -> Result<FakeConn, FakeError> {
        let id = self.counts.opened.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.live.fetch_add(1, Ordering::SeqCst);
        Ok(FakeConn {
            value: Box::new(id as u64),
            scratch: Box::new(0),
            counts: self.counts.clone(),
        })
    }
    fn is_valid(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        // Touch the heap value so Miri checks the cell's contents are live.
        if *conn.scratch == 0 && *conn.value > 0 {
            Ok(())
        } else {
            Err(FakeError)
        }
    }
    fn has_broken(&self, _conn: &mut FakeConn) -> bool {
        false
    }
    fn reset(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        *conn.scratch = 0;
        Ok(())
    }
}

/// A manual-background pool of `max_size` with `idle` connections open.
fn pool(max_size: u32, idle: usize) -> (Pool<FakeManager>, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let pool = Pool::builder()
        .max_size(max_size)
        .capacity(Some(max_size.max(4)))
        .connection_timeout(Duration::from_secs(30))
        .validation_idle_window(Duration::ZERO) // validate every checkout
        .manual_background()
        .build(FakeManager {
            counts: counts.clone(),
        })
        .unwrap();
    let held: Vec<_> = (0..idle)
        .map(|_| {
            assert!(pool.try_get().is_err());
            pool.run_background_step();
            pool.try_get().expect("opened by the step")
        })
        .collect();
    drop(held);
    assert_eq!(pool.state().idle_connections as usize, idle);
    (pool, counts)
}

/// Yields until a caller is queued in the pool.
fn wait_for_a_waiter(pool: &Pool<FakeManager>) {
    while pool.state().waiting == 0 {
        thread::yield_now();
    }
}

fn live(counts: &Counts) -> usize {
    counts.live.load(Ordering::SeqCst)
}

#[test]
fn single_thread_get_return_reuse_close() {
    let (pool, counts) = pool(2, 0);
    assert!(matches!(pool.try_get(), Err(TryGetError::NoIdle { .. })));
    pool.run_background_step();
    {
        let mut conn = pool.try_get().unwrap();
        *conn.scratch += 7; // dirty; reset cleans it
    }
    let first = pool.try_get().unwrap();
    assert_eq!(*first.scratch, 0, "reset ran");
    assert!(pool.try_get().is_err()); // asks for a second
    pool.run_background_step();
    let second = pool.try_get().unwrap();
    assert_ne!(*first.value, *second.value);
    assert_eq!(pool.state().in_use, 2);
    drop(first);
    let _ = pool.close_timeout(Duration::ZERO); // the second is still out
    assert_eq!(live(&counts), 1, "the idle one closed at once");
    assert!(pool.try_get().unwrap_err().is_closed());
    drop(second);
    assert_eq!(live(&counts), 0, "the held one closed on return");
}

#[test]
fn broken_detached_and_shrunk_connections_leave_cleanly() {
    let (pool, counts) = pool(3, 3);
    let mut a = pool.try_get().unwrap();
    let b = pool.try_get().unwrap();
    let c = pool.try_get().unwrap();
    a.mark_broken();
    drop(a); // closed
    assert_eq!(live(&counts), 2);
    let detached = b.detach();
    assert_eq!(pool.state().connections, 1);
    drop(detached);
    let mut config = (*pool.config()).clone();
    config.max_size = 1;
    pool.reconfigure(config).unwrap();
    drop(c); // within the new max: kept
    assert_eq!(pool.state().idle_connections, 1);
    drop(pool); // the last handle closes everything
    assert_eq!(live(&counts), 0);
}

#[test]
fn hand_off_to_a_waiting_thread() {
    let (pool, counts) = pool(1, 1);
    let held = pool.try_get().unwrap();
    let before = *held.value;
    thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let conn = pool
                .get_timeout(Duration::from_secs(60))
                .expect("handed off");
            *conn.value
        });
        // Return once the waiter is queued, so the hand-off path runs. It
        // cannot finish before: the only connection is held, the deadline far.
        wait_for_a_waiter(&pool);
        drop(held);
        assert_eq!(waiter.join().unwrap(), before);
    });
    assert_eq!(pool.state().idle_connections, 1);
    drop(pool);
    assert_eq!(live(&counts), 0);
}

#[test]
fn close_wakes_a_waiter_and_closes_on_return() {
    let (pool, counts) = pool(1, 1);
    let held = pool.try_get().unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| pool.get_timeout(Duration::from_secs(60)).map(|_| ()));
        wait_for_a_waiter(&pool);
        let _ = pool.close_timeout(Duration::ZERO); // one is still out
        assert!(waiter.join().unwrap().unwrap_err().is_closed());
    });
    assert_eq!(live(&counts), 1);
    drop(held);
    assert_eq!(live(&counts), 0);
}

#[test]
fn two_threads_share_one_connection() {
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 2000 };
    let (pool, counts) = pool(1, 1);
    let in_use = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..ROUNDS {
                    let mut conn = pool
                        .get_timeout(Duration::from_secs(60))
                        .expect("no timeout");
                    assert_eq!(in_use.fetch_add(1, Ordering::SeqCst), 0, "invariant 1");
                    *conn.scratch += 1;
                    in_use.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(counts.opened.load(Ordering::SeqCst), 1);
    assert_eq!(pool.state().idle_connections, 1);
    drop(pool);
    assert_eq!(live(&counts), 0);
}

#[test]
fn owned_guard_returns_from_another_thread() {
    let (pool, counts) = pool(2, 2);
    let owned = pool.get_owned().unwrap();
    let other = pool.try_get().unwrap();
    let back = thread::spawn(move || {
        let value = *owned.value;
        drop(owned);
        value
    })
    .join()
    .unwrap();
    assert_ne!(back, *other.value);
    drop(other);
    assert_eq!(pool.state().idle_connections, 2);
    drop(pool);
    assert_eq!(live(&counts), 0);
}

#![cfg(not(feature = "loom"))]
//! `get_async`: one FIFO queue with sync callers, no runtime dependency,
//! deadlines without a runtime timer, and safe cancellation.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use slotpool::{Error, Pool};
use support::{TestManager, eventually, process_cpu_time};

const LIMIT: Duration = Duration::from_secs(20);

fn pool(max_size: u32) -> (Arc<Pool<TestManager>>, Arc<support::Faults>) {
    let (manager, faults) = TestManager::new();
    let pool = Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(15))
        .build(manager)
        .unwrap();
    (Arc::new(pool), faults)
}

fn assert_at_rest(pool: &Pool<TestManager>, faults: &support::Faults) {
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state}");
    assert_eq!(state.waiting, 0, "{state}");
    assert_eq!(state.connections, state.idle_connections, "{state}");
    assert_eq!(
        state.connections as usize,
        faults.live.load(Ordering::SeqCst),
        "every connection accounted for: {state}"
    );
}

/// A tokio runtime with 2 workers, like a service on this 2-core machine.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn works_under_a_plain_executor() {
    let (pool, faults) = pool(2);
    futures::executor::block_on(async {
        let first = pool.get_async().await.unwrap();
        first.claim();
        let second = pool.get_timeout_async(LIMIT).await.unwrap();
        second.claim();
        assert_ne!(first.id, second.id);
        first.unclaim();
        second.unclaim();
    });
    assert_at_rest(&pool, &faults);
}

#[test]
fn async_timeout_keeps_its_deadline_without_a_runtime_timer() {
    let (pool, _faults) = pool(1);
    let held = pool.get().unwrap();
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let error = futures::executor::block_on(pool.get_timeout_async(timeout)).unwrap_err();
    let waited = start.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(waited >= timeout, "returned early: {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(2),
        "deadline missed: {waited:?}"
    );
    drop(held);
    assert_eq!(pool.stats().counters.timeouts, 1);
}

#[test]
fn sync_and_async_callers_share_one_fifo_queue() {
    let (pool, _faults) = pool(1);
    let held = pool.get().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        let (sync_pool, sync_order) = (pool.clone(), order.clone());
        scope.spawn(move || {
            let _conn = sync_pool.get().unwrap();
            sync_order.lock().unwrap().push("sync");
        });
        eventually("sync waiter queued", LIMIT, || pool.state().waiting == 1);
        let (async_pool, async_order) = (pool.clone(), order.clone());
        scope.spawn(move || {
            futures::executor::block_on(async {
                let _conn = async_pool.get_async().await.unwrap();
                async_order.lock().unwrap().push("async");
            });
        });
        eventually("async waiter queued", LIMIT, || pool.state().waiting == 2);
        drop(held);
    });
    assert_eq!(*order.lock().unwrap(), vec!["sync", "async"]);
}

#[test]
fn ten_thousand_tasks_on_fifty_connections_without_spinning() {
    const TASKS: usize = 10_000;
    let (pool, faults) = pool(50);
    let runtime = runtime();
    runtime.block_on(async {
        // Hold every connection so all tasks must wait.
        let mut held = Vec::new();
        for _ in 0..50 {
            held.push(pool.get_owned().unwrap());
        }
        let served = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (pool, served) = (pool.clone(), served.clone());
                tokio::spawn(async move {
                    let conn = pool.get_async().await.expect("no timeout");
                    conn.claim();
                    tokio::task::yield_now().await;
                    conn.unclaim();
                    served.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        let deadline = Instant::now() + LIMIT;
        while pool.state().waiting < TASKS as u32 {
            assert!(
                Instant::now() < deadline,
                "tasks did not queue: {}",
                pool.state()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every task waits now: the process must be (nearly) idle.
        let cpu_before = process_cpu_time();
        let wall = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu = process_cpu_time() - cpu_before;
        let elapsed = wall.elapsed();
        assert!(
            cpu < elapsed / 4,
            "waiting tasks used {cpu:?} of CPU in {elapsed:?}: spinning?"
        );
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(served.load(Ordering::SeqCst), TASKS);
    });
    assert_at_rest(&pool, &faults);
    let stats = pool.stats();
    assert_eq!(stats.counters.timeouts, 0);
    assert!(faults.opened() <= 50);
}

#[test]
fn cancellation_storms_lose_nothing() {
    let (pool, faults) = pool(4);
    let runtime = runtime();
    runtime.block_on(async {
        let cancelled = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..2_000u64)
            .map(|i| {
                let (pool, cancelled) = (pool.clone(), cancelled.clone());
                tokio::spawn(async move {
                    // Futures dropped mid-wait by tokio::time::timeout.
                    let limit = Duration::from_micros(50 + (i % 7) * 100);
                    match tokio::time::timeout(limit, pool.get_async()).await {
                        Ok(Ok(conn)) => {
                            conn.claim();
                            tokio::task::yield_now().await;
                            conn.unclaim();
                        }
                        Ok(Err(error)) => panic!("unexpected error: {error}"),
                        Err(_elapsed) => {
                            cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            cancelled.load(Ordering::SeqCst) > 0,
            "the storm cancelled nothing"
        );
    });
    assert_at_rest(&pool, &faults);
    // Every connection can still be checked out.
    let open = pool.state().connections as usize;
    let all: Vec<_> = (0..open).map(|_| pool.try_get().unwrap()).collect();
    assert_eq!(all.len(), open);
}

#[test]
fn close_wakes_async_waiters() {
    let (pool, _faults) = pool(1);
    let held = pool.get().unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| futures::executor::block_on(pool.get_async()).map(|_| ()));
        eventually("async waiter queued", LIMIT, || pool.state().waiting == 1);
        let _ = pool.close_timeout(Duration::ZERO); // one is still out
        assert!(matches!(waiter.join().unwrap(), Err(Error::Closed { .. })));
    });
    drop(held);
}

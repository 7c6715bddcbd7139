//! Workload 6, HikariCP's spike test as a benchmark: connects take 150 ms,
//! the pool keeps min 5 idle and may open max 50; 50 requests arrive at the
//! same instant, each holding its connection for 2 ms (a sleep: the work is
//! waiting on the database, and 50 spinning threads on 2 cores would measure
//! the scheduler instead). Reports the time until the last request is done,
//! the slowest single request, the connects started during the spike
//! ("opened by done") and 300 ms later, when any connect in flight at the end
//! has finished ("opened settled").
//!
//! HikariCP's point: five connections serve fifty 2 ms requests in ~20 ms,
//! far less than one 150 ms connect, so a pool that opens 45 connections for
//! the spike pays for them afterwards and gains nothing.
//!
//! slotpool and r2d2 serve 50 threads (`get()`); bb8, deadpool and slotpool's
//! `get_async` serve 50 tasks on a tokio runtime with 2 workers.
//! Each pool starts with its 5 connections open (not counted).
//!
//! `cargo bench --bench spike` (`-- --quick`: 1 round; default 3 rounds,
//! the medians reported; `SLOTPOOL_BENCH_LONG=1`: 9 rounds).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Mode, Stub};
use serde_json::json;

const CONNECT: Duration = Duration::from_millis(150);
const WORK: Duration = Duration::from_millis(2);
const MIN_IDLE: u32 = 5;
const MAX: u32 = 50;
const REQUESTS: usize = 50;
const SETTLE: Duration = Duration::from_millis(300);

struct Round {
    total: Duration,
    slowest: Duration,
    opened_by_done: u64,
    opened_settled: u64,
}

/// Fires `REQUESTS` threads at once, each running `request`.
fn spike_threads(stub: &Stub, request: Arc<dyn Fn() + Send + Sync>) -> Round {
    let before = stub.opened();
    let start_line = Arc::new(Barrier::new(REQUESTS + 1));
    let handles: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (request, start_line) = (request.clone(), start_line.clone());
            thread::spawn(move || {
                start_line.wait();
                let start = Instant::now();
                request();
                start.elapsed()
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let slowest = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    let total = start.elapsed();
    let opened_by_done = stub.opened() - before;
    thread::sleep(SETTLE);
    Round {
        total,
        slowest,
        opened_by_done,
        opened_settled: stub.opened() - before,
    }
}

/// Fires `REQUESTS` tasks at once, each running `request`.
async fn spike_tasks<F, Fut>(stub: &Stub, request: F) -> Round
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let before = stub.opened();
    let start = Instant::now();
    let handles: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let fut = request();
            tokio::spawn(async move {
                let start = Instant::now();
                fut.await;
                start.elapsed()
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for handle in handles {
        slowest = slowest.max(handle.await.unwrap());
    }
    let total = start.elapsed();
    let opened_by_done = stub.opened() - before;
    tokio::time::sleep(SETTLE).await;
    Round {
        total,
        slowest,
        opened_by_done,
        opened_settled: stub.opened() - before,
    }
}

fn slotpool_pool(stub: &Stub) -> slotpool::Pool<Stub> {
    slotpool::Pool::builder()
        .max_size(MAX)
        .min_idle(MIN_IDLE)
        .connection_timeout(Duration::from_secs(30))
        .startup(slotpool::config::StartupMode::WaitForMinIdle)
        .build(stub.clone())
        .unwrap()
}

fn round_slotpool() -> Round {
    let stub = Stub::slow(CONNECT);
    let pool = Arc::new(slotpool_pool(&stub));
    spike_threads(
        &stub,
        Arc::new(move || {
            let conn = pool.get().unwrap();
            thread::sleep(WORK);
            drop(conn);
        }),
    )
}

fn round_r2d2() -> Round {
    let stub = Stub::slow(CONNECT);
    // `build` waits for `min_idle` connections.
    let pool = r2d2::Pool::builder()
        .max_size(MAX)
        .min_idle(Some(MIN_IDLE))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(30))
        .build(stub.clone())
        .unwrap();
    spike_threads(
        &stub,
        Arc::new(move || {
            let conn = pool.get().unwrap();
            thread::sleep(WORK);
            drop(conn);
        }),
    )
}

async fn round_slotpool_async() -> Round {
    let stub = Stub::slow(CONNECT);
    let pool = Arc::new(tokio::task::block_in_place(|| slotpool_pool(&stub)));
    spike_tasks(&stub, || {
        let pool = pool.clone();
        async move {
            let conn = pool.get_async().await.unwrap();
            tokio::time::sleep(WORK).await;
            drop(conn);
        }
    })
    .await
}

async fn round_bb8() -> Round {
    let stub = Stub::slow(CONNECT);
    // `build` waits for `min_idle` connections.
    let pool = bb8::Pool::builder()
        .max_size(MAX)
        .min_idle(MIN_IDLE)
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(30))
        .build(stub.clone())
        .await
        .unwrap();
    spike_tasks(&stub, || {
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap();
            tokio::time::sleep(WORK).await;
            drop(conn);
        }
    })
    .await
}

async fn round_deadpool() -> Round {
    let stub = Stub::slow(CONNECT);
    // deadpool has no min_idle: open 5 at once and return them.
    let pool: deadpool::managed::Pool<Stub> = deadpool::managed::Pool::builder(stub.clone())
        .max_size(MAX as usize)
        .build()
        .unwrap();
    let warm: Vec<_> = (0..MIN_IDLE)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.unwrap_or_else(|_| unreachable!()) })
        })
        .collect();
    let mut objects = Vec::new();
    for handle in warm {
        objects.push(handle.await.unwrap());
    }
    drop(objects);
    spike_tasks(&stub, || {
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap_or_else(|_| unreachable!());
            tokio::time::sleep(WORK).await;
            drop(conn);
        }
    })
    .await
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let rounds = match common::mode() {
        Mode::Quick => 1,
        Mode::Default => 3,
        Mode::Long => 9,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\n== spike: connect {CONNECT:?}, work {WORK:?}, min {MIN_IDLE}, max {MAX}, \
         {REQUESTS} requests, median of {rounds} rounds, load {:.2}",
        common::load_average()
    );
    println!(
        "{:<16} {:>10} {:>12} {:>15} {:>15} {:>6}",
        "pool", "total ms", "slowest ms", "opened by done", "opened settled", "load"
    );
    let peers: [(&str, &dyn Fn() -> Round); 5] = [
        ("slotpool", &round_slotpool),
        ("slotpool-async", &|| {
            runtime.block_on(round_slotpool_async())
        }),
        ("r2d2", &round_r2d2),
        ("bb8", &|| runtime.block_on(round_bb8())),
        ("deadpool", &|| runtime.block_on(round_deadpool())),
    ];
    let mut rows = Vec::new();
    for (name, round) in peers {
        if !common::selected(name) {
            continue;
        }
        let load = common::load_average();
        let results: Vec<Round> = (0..rounds).map(|_| round()).collect();
        let total = median(results.iter().map(|r| r.total).collect());
        let slowest = median(results.iter().map(|r| r.slowest).collect());
        let by_done = median(results.iter().map(|r| r.opened_by_done).collect());
        let settled = median(results.iter().map(|r| r.opened_settled).collect());
        println!(
            "{:<16} {:>10.1} {:>12.1} {:>15} {:>15} {:>6.2}",
            name,
            total.as_secs_f64() * 1e3,
            slowest.as_secs_f64() * 1e3,
            by_done,
            settled,
            load
        );
        rows.push(json!({
            "pool": name,
            "total_ms": total.as_secs_f64() * 1e3,
            "slowest_ms": slowest.as_secs_f64() * 1e3,
            "opened_by_done": by_done,
            "opened_settled": settled,
            "rounds": rounds,
            "totals_ms": results.iter().map(|r| r.total.as_secs_f64() * 1e3).collect::<Vec<_>>(),
            "load_average": load,
        }));
    }
    common::write_results(
        "spike",
        json!({
            "connect_ms": CONNECT.as_millis() as u64,
            "work_ms": WORK.as_millis() as u64,
            "min_idle": MIN_IDLE,
            "max_size": MAX,
            "requests": REQUESTS,
            "rows": rows,
        }),
    );
}

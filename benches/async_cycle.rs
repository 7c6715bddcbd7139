//! Workload 5, async checkouts on a tokio multi-thread runtime with 2
//! workers, 4 connections, the stub manager:
//!
//! * `1-task`: one task cycling get + drop (the async connection cycle);
//! * `16-tasks`: 16 tasks cycling get + drop (nobody holds across an await,
//!   so on 2 workers at most 2 checkouts overlap);
//! * `16-tasks-hold`: 16 tasks, each holding its connection across one
//!   `yield_now().await`, so tasks really wait for each other.
//!
//! Every task also yields to the scheduler every 32 cycles, so that all 16
//! tasks get to run whichever pool never makes them wait.
//!
//! Peers: bb8 (checkout tests off, as r2d2's elsewhere), deadpool (managed)
//! and slotpool's `get_async`.
//!
//! `cargo bench --bench async_cycle` (`-- --quick` for a smoke run,
//! `SLOTPOOL_BENCH_LONG=1` for 10 s per measurement).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Stub;
use serde_json::json;

const CONNECTIONS: u32 = 4;

#[derive(Clone)]
enum Peer {
    Bb8(bb8::Pool<Stub>),
    Deadpool(deadpool::managed::Pool<Stub>),
    Slotpool(Arc<slotpool::Pool<Stub>>),
}

impl Peer {
    fn name(&self) -> &'static str {
        match self {
            Peer::Bb8(_) => "bb8",
            Peer::Deadpool(_) => "deadpool",
            Peer::Slotpool(_) => "slotpool",
        }
    }

    async fn cycle(&self, hold: bool) {
        match self {
            Peer::Bb8(pool) => {
                let conn = pool.get().await.unwrap();
                if hold {
                    tokio::task::yield_now().await;
                }
                std::hint::black_box(&*conn);
            }
            Peer::Deadpool(pool) => {
                let conn = pool.get().await.unwrap_or_else(|_| unreachable!());
                if hold {
                    tokio::task::yield_now().await;
                }
                std::hint::black_box(&*conn);
            }
            Peer::Slotpool(pool) => {
                let conn = pool.get_async().await.unwrap();
                if hold {
                    tokio::task::yield_now().await;
                }
                std::hint::black_box(&*conn);
            }
        }
    }
}

async fn peers() -> Vec<Peer> {
    let bb8 = bb8::Pool::builder()
        .max_size(CONNECTIONS)
        .min_idle(CONNECTIONS)
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(30))
        .build(Stub::new())
        .await
        .unwrap();
    let dead: deadpool::managed::Pool<Stub> = deadpool::managed::Pool::builder(Stub::new())
        .max_size(CONNECTIONS as usize)
        .build()
        .unwrap();
    let mut all = Vec::new();
    for _ in 0..CONNECTIONS {
        all.push(dead.get().await.unwrap_or_else(|_| unreachable!()));
    }
    drop(all);
    let slot = common::slotpool_pool(Stub::new(), CONNECTIONS);
    vec![
        Peer::Bb8(bb8),
        Peer::Deadpool(dead),
        Peer::Slotpool(Arc::new(slot)),
    ]
}

/// Every task yields to the scheduler after this many cycles (all peers).
const YIELD_EVERY: u64 = 32;

const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Ops per second of `tasks` tasks cycling `peer` over the measured window.
async fn run(peer: &Peer, tasks: usize, hold: bool) -> f64 {
    let phase = Arc::new(AtomicU8::new(WARM));
    let ops = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (peer, phase, ops) = (peer.clone(), phase.clone(), ops.clone());
            tokio::spawn(async move {
                let (mut mine, mut round) = (0u64, 0u64);
                loop {
                    let now = phase.load(Ordering::Relaxed);
                    if now == STOP {
                        break;
                    }
                    peer.cycle(hold).await;
                    if now == MEASURE {
                        mine += 1;
                    }
                    // A checkout that is ready at once never yields, so
                    // without this the first 2 tasks would keep both
                    // workers and the other 14 would never run.
                    round += 1;
                    if round.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                ops.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();
    // Timed on the thread that runs `block_on`, not a worker: the workers
    // may be busy with tasks that do not yield to the timer.
    std::thread::sleep(common::warm_up_time());
    let start = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    std::thread::sleep(common::measure_time());
    phase.store(STOP, Ordering::Relaxed);
    let wall = start.elapsed();
    for handle in handles {
        handle.await.unwrap();
    }
    ops.load(Ordering::Relaxed) as f64 / wall.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scenarios = [
        ("1-task", 1usize, false),
        ("16-tasks", 16, false),
        ("16-tasks-hold", 16, true),
    ];
    let mut rows = Vec::new();
    runtime.block_on(async {
        let peers = peers().await;
        println!(
            "\n== async: tokio, 2 workers, {CONNECTIONS} connections, load {:.2}",
            common::load_average()
        );
        println!(
            "{:<14} {:<10} {:>12} {:>10} {:>6}",
            "scenario", "pool", "ops/s", "ns/op", "load"
        );
        for (scenario, tasks, hold) in scenarios {
            if !common::selected(scenario) {
                continue;
            }
            for peer in &peers {
                let load = common::load_average();
                let rate = run(peer, tasks, hold).await;
                println!(
                    "{:<14} {:<10} {:>12.0} {:>10.1} {:>6.2}",
                    scenario,
                    peer.name(),
                    rate,
                    1e9 / rate,
                    load
                );
                rows.push(json!({
                    "scenario": scenario,
                    "tasks": tasks,
                    "hold_across_yield": hold,
                    "pool": peer.name(),
                    "ops_per_s": rate,
                    "ns_per_op": 1e9 / rate,
                    "load_average": load,
                }));
            }
        }
    });
    common::write_results(
        "async_cycle",
        json!({
            "workers": 2,
            "connections": CONNECTIONS,
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

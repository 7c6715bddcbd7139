//! Workload 1, connection cycle (HikariCP's JMH "Connection Cycle" with a
//! stub driver): get + drop with a no-op manager, on 1 thread, and on 2
//! threads with 4 connections so nobody waits. Peers: slotpool, r2d2,
//! deadpool (managed), and a bare `ArrayQueue` pop + push as the floor.
//!
//! deadpool is async; it runs here through `common::block_on`, which polls
//! `get()` once on the calling thread (it is ready at once when an object is
//! idle, so the adapter costs one poll and no allocation). That is the
//! fairest sync use of its managed pool, which runs the same manager as the
//! others; `deadpool::unmanaged` has no manager at all. bb8 is async-only
//! and is measured in `async_cycle`.
//!
//! `cargo bench --bench cycle` (add `-- --quick` for a smoke run).
//! Reported as time per operation per thread.

mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Stub, block_on};
use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam::queue::ArrayQueue;

/// Runs `cycle` `iters` times on each of `threads` threads at once and
/// returns the mean of the threads' elapsed times: time per operation per
/// thread is then `elapsed / iters`.
fn run_threads(threads: usize, iters: u64, cycle: Arc<dyn Fn() + Send + Sync>) -> Duration {
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cycle, start_line) = (cycle.clone(), start_line.clone());
            thread::spawn(move || {
                start_line.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    cycle();
                }
                start.elapsed()
            })
        })
        .collect();
    start_line.wait();
    let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total / threads as u32
}

fn floor_queue() -> ArrayQueue<u64> {
    let queue = ArrayQueue::new(4);
    for i in 0..4u64 {
        queue.push(i).unwrap();
    }
    queue
}

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle/1-thread");
    let queue = floor_queue();
    group.bench_function("arrayqueue-floor", |b| {
        b.iter(|| {
            let conn = queue.pop().unwrap();
            queue.push(black_box(conn)).unwrap();
        })
    });
    let pool = common::slotpool_pool(Stub::new(), 4);
    group.bench_function("slotpool", |b| {
        b.iter(|| {
            let conn = pool.get().unwrap();
            black_box(&*conn);
        })
    });
    let pool = common::r2d2_pool(Stub::new(), 4);
    group.bench_function("r2d2", |b| {
        b.iter(|| {
            let conn = pool.get().unwrap();
            black_box(&*conn);
        })
    });
    let pool = common::deadpool_pool(Stub::new(), 4);
    group.bench_function("deadpool", |b| {
        b.iter(|| {
            let conn = block_on(pool.get()).unwrap_or_else(|_| unreachable!());
            black_box(&*conn);
        })
    });
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle/2-threads");
    let queue = Arc::new(floor_queue());
    group.bench_function("arrayqueue-floor", |b| {
        b.iter_custom(|iters| {
            let queue = queue.clone();
            run_threads(
                2,
                iters,
                Arc::new(move || {
                    let conn = queue.pop().unwrap();
                    queue.push(black_box(conn)).unwrap();
                }),
            )
        })
    });
    let pool = Arc::new(common::slotpool_pool(Stub::new(), 4));
    group.bench_function("slotpool", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                Arc::new(move || {
                    let conn = pool.get().unwrap();
                    black_box(&*conn);
                }),
            )
        })
    });
    let pool = Arc::new(common::r2d2_pool(Stub::new(), 4));
    group.bench_function("r2d2", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                Arc::new(move || {
                    let conn = pool.get().unwrap();
                    black_box(&*conn);
                }),
            )
        })
    });
    let pool = common::deadpool_pool(Stub::new(), 4);
    group.bench_function("deadpool", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(
                2,
                iters,
                Arc::new(move || {
                    let conn = block_on(pool.get()).unwrap_or_else(|_| unreachable!());
                    black_box(&*conn);
                }),
            )
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = one_thread, two_threads }
criterion_main!(benches);

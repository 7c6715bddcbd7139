//! Connection cycle: uncontended get + drop with a no-op manager, and the
//! same with 2 threads each on their own connection (nobody waits), against
//! r2d2 and a bare `crossbeam::queue::ArrayQueue` pop + push (the floor).
//!
//! `cargo bench --bench cycle` (add `-- --quick` for a fast pass).
//! Reported per operation per thread.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam::queue::ArrayQueue;

struct Noop;

impl slotpool::Manager for Noop {
    type Connection = u64;
    type Error = std::io::Error;
    fn connect(&self) -> Result<u64, std::io::Error> {
        Ok(0)
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[derive(Debug)]
struct NoopError;
impl std::fmt::Display for NoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("noop")
    }
}
impl std::error::Error for NoopError {}

impl r2d2::ManageConnection for Noop {
    type Connection = u64;
    type Error = NoopError;
    fn connect(&self) -> Result<u64, NoopError> {
        Ok(0)
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), NoopError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

fn slotpool_pool(max_size: u32) -> slotpool::Pool<Noop> {
    let pool = slotpool::Pool::builder()
        .max_size(max_size)
        .min_idle(max_size)
        .build(Noop)
        .unwrap();
    // Open every connection up front, so the bench measures only cycles.
    let all: Vec<_> = (0..max_size).map(|_| pool.get().unwrap()).collect();
    drop(all);
    pool
}

fn r2d2_pool(max_size: u32) -> r2d2::Pool<Noop> {
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(max_size))
        .test_on_check_out(false)
        .build(Noop)
        .unwrap()
}

/// Runs `cycle` `iters` times on each of `threads` threads at once and
/// returns the wall time divided by the thread count's share: time per
/// operation per thread is then `elapsed / iters`.
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

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle/1-thread");
    let queue = ArrayQueue::new(4);
    for i in 0..4u64 {
        queue.push(i).unwrap();
    }
    group.bench_function("arrayqueue-floor", |b| {
        b.iter(|| {
            let conn = queue.pop().unwrap();
            queue.push(black_box(conn)).unwrap();
        })
    });
    let pool = slotpool_pool(4);
    group.bench_function("slotpool", |b| {
        b.iter(|| {
            let conn = pool.get().unwrap();
            black_box(&*conn);
        })
    });
    let pool = r2d2_pool(4);
    group.bench_function("r2d2", |b| {
        b.iter(|| {
            let conn = pool.get().unwrap();
            black_box(&*conn);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cycle/2-threads");
    let queue = Arc::new(ArrayQueue::new(4));
    for i in 0..4u64 {
        queue.push(i).unwrap();
    }
    group.bench_function("arrayqueue-floor", |b| {
        let queue = queue.clone();
        b.iter_custom(|iters| {
            let queue = queue.clone();
            run_threads(2, iters, Arc::new(move || {
                let conn = queue.pop().unwrap();
                queue.push(black_box(conn)).unwrap();
            }))
        })
    });
    let pool = Arc::new(slotpool_pool(4));
    group.bench_function("slotpool", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(2, iters, Arc::new(move || {
                let conn = pool.get().unwrap();
                black_box(&*conn);
            }))
        })
    });
    let pool = Arc::new(r2d2_pool(4));
    group.bench_function("r2d2", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            run_threads(2, iters, Arc::new(move || {
                let conn = pool.get().unwrap();
                black_box(&*conn);
            }))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = cycle }
criterion_main!(benches);

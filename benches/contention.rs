//! Workloads 2 and 3: pools under contention, as throughput loops (not
//! criterion: what matters here is ops/s, wait percentiles and fairness
//! across threads, which criterion does not report).
//!
//! * **contended**: 2 connections; 2 threads (nobody waits) then 4 threads
//!   (threads = 2 x connections), each holding its connection for ~1 us of
//!   CPU work. Reports each pool's contended / uncontended throughput
//!   (HikariCP keeps 98%).
//! * **oversubscribed**: 16 threads on 4 connections, each holding ~20 us of
//!   CPU work, `connection_timeout` 1 s. Reports throughput against the ideal
//!   (every core busy with the work: cores / work cost, 100k ops/s for 2
//!   cores and 20 us), acquire-wait p50/p99/p99.9/max (hdrhistogram),
//!   fairness (min / max operations per thread) and timeouts.
//!
//! The busy work is a calibrated loop (`common::Work`), so a holder that is
//! preempted does not get its work done for free.
//!
//! Peers: slotpool, r2d2, deadpool (managed, through `common::block_on`,
//! which parks the thread while `get()` is pending), and a bare `ArrayQueue`
//! whose callers spin and `yield_now()` when it is empty (no queueing, no
//! fairness, no timeouts: a reference, not a pool).
//!
//! `cargo bench --bench contention` (`-- --quick` for a smoke run,
//! `SLOTPOOL_BENCH_LONG=1` for 10 s per measurement; a filter argument such
//! as `oversubscribed` runs one workload).

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Stub, Work, block_on};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use serde_json::json;

/// A pool under test: one checkout, `acquired()` (which records the wait
/// when timing), `work` while holding, one return. Returns `Err(())` when
/// the checkout failed (timed out).
trait Peer: Send + Sync {
    fn name(&self) -> &'static str;
    fn hold(&self, acquired: &mut dyn FnMut(), work: &Work) -> Result<(), ()>;
    /// Whether the peer can report a timeout at all.
    fn has_timeout(&self) -> bool {
        true
    }
}

impl Peer for slotpool::Pool<Stub> {
    fn name(&self) -> &'static str {
        "slotpool"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), work: &Work) -> Result<(), ()> {
        let conn = self.get().map_err(|_| ())?;
        acquired();
        work.run();
        drop(conn);
        Ok(())
    }
}

impl Peer for r2d2::Pool<Stub> {
    fn name(&self) -> &'static str {
        "r2d2"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), work: &Work) -> Result<(), ()> {
        let conn = self.get().map_err(|_| ())?;
        acquired();
        work.run();
        drop(conn);
        Ok(())
    }
}

impl Peer for deadpool::managed::Pool<Stub> {
    fn name(&self) -> &'static str {
        "deadpool"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), work: &Work) -> Result<(), ()> {
        let conn = block_on(self.get()).map_err(|_| ())?;
        acquired();
        work.run();
        drop(conn);
        Ok(())
    }
    fn has_timeout(&self) -> bool {
        false // a wait timeout needs a runtime; these waits are unbounded
    }
}

struct Floor(ArrayQueue<u64>);

impl Peer for Floor {
    fn name(&self) -> &'static str {
        "arrayqueue-spin"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), work: &Work) -> Result<(), ()> {
        let conn = loop {
            match self.0.pop() {
                Some(conn) => break conn,
                None => thread::yield_now(),
            }
        };
        acquired();
        work.run();
        self.0.push(conn).unwrap();
        Ok(())
    }
    fn has_timeout(&self) -> bool {
        false
    }
}

fn peers(connections: u32, timeout: Duration) -> Vec<Arc<dyn Peer>> {
    let slot = slotpool::Pool::builder()
        .max_size(connections)
        .min_idle(connections)
        .connection_timeout(timeout)
        .validation_timeout(timeout / 2)
        .build(Stub::new())
        .unwrap();
    let all: Vec<_> = (0..connections).map(|_| slot.get().unwrap()).collect();
    drop(all);
    let r2d2 = r2d2::Pool::builder()
        .max_size(connections)
        .min_idle(Some(connections))
        .test_on_check_out(false)
        .connection_timeout(timeout)
        .build(Stub::new())
        .unwrap();
    let dead = common::deadpool_pool(Stub::new(), connections as usize);
    let floor = ArrayQueue::new(connections as usize);
    for i in 0..connections as u64 {
        floor.push(i).unwrap();
    }
    vec![
        Arc::new(slot),
        Arc::new(r2d2),
        Arc::new(dead),
        Arc::new(Floor(floor)),
    ]
}

struct Outcome {
    ops_per_thread: Vec<u64>,
    waits: Histogram<u64>,
    timeouts: u64,
    wall: Duration,
    cpu: Duration,
    switches: u64,
}

impl Outcome {
    fn ops(&self) -> u64 {
        self.ops_per_thread.iter().sum()
    }
    fn throughput(&self) -> f64 {
        self.ops() as f64 / self.wall.as_secs_f64()
    }
    fn fairness(&self) -> f64 {
        let min = *self.ops_per_thread.iter().min().unwrap() as f64;
        let max = *self.ops_per_thread.iter().max().unwrap() as f64;
        if max == 0.0 { 0.0 } else { min / max }
    }
    /// Cores the process kept busy on average.
    fn cores_used(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
    /// Context switches (whole process) per completed operation.
    fn switches_per_op(&self) -> f64 {
        self.switches as f64 / self.ops().max(1) as f64
    }
    /// Share of the CPU the process got that went into the work itself:
    /// what is left after the pool's and the scheduler's overhead,
    /// independent of how much CPU other processes took.
    fn work_share(&self, work: &Work) -> f64 {
        self.ops() as f64 * work.cost.as_secs_f64() / self.cpu.as_secs_f64()
    }
}

const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Runs `threads` threads cycling `peer` through a warm-up and a measured
/// window. With `timed`, each checkout's wait is recorded (two clock reads,
/// ~50 ns, per operation).
fn run(peer: &Arc<dyn Peer>, threads: usize, work: Work, timed: bool) -> Outcome {
    let phase = Arc::new(AtomicU8::new(WARM));
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (peer, phase, start_line) = (peer.clone(), phase.clone(), start_line.clone());
            thread::spawn(move || {
                let mut waits = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
                let (mut ops, mut timeouts) = (0u64, 0u64);
                start_line.wait();
                loop {
                    let now = phase.load(Ordering::Relaxed);
                    if now == STOP {
                        break;
                    }
                    let measuring = now == MEASURE;
                    let ok = if timed && measuring {
                        let start = Instant::now();
                        let mut acquired = || {
                            let wait = start.elapsed().as_nanos() as u64;
                            waits.saturating_record(wait.max(1));
                        };
                        peer.hold(&mut acquired, &work).is_ok()
                    } else {
                        peer.hold(&mut || {}, &work).is_ok()
                    };
                    if measuring {
                        if ok {
                            ops += 1;
                        } else {
                            timeouts += 1;
                        }
                    }
                }
                (ops, timeouts, waits)
            })
        })
        .collect();
    start_line.wait();
    thread::sleep(common::warm_up_time());
    let (wall_start, cpu_start, switches_start) = (
        Instant::now(),
        common::process_cpu_time(),
        common::context_switches(),
    );
    phase.store(MEASURE, Ordering::Relaxed);
    thread::sleep(common::measure_time());
    phase.store(STOP, Ordering::Relaxed);
    let (wall, cpu, switches) = (
        wall_start.elapsed(),
        common::process_cpu_time() - cpu_start,
        common::context_switches() - switches_start,
    );
    let mut outcome = Outcome {
        ops_per_thread: Vec::new(),
        waits: Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
        timeouts: 0,
        wall,
        cpu,
        switches,
    };
    for handle in handles {
        let (ops, timeouts, waits) = handle.join().unwrap();
        outcome.ops_per_thread.push(ops);
        outcome.timeouts += timeouts;
        outcome.waits.add(waits).unwrap();
    }
    outcome
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn contended(results: &mut serde_json::Map<String, serde_json::Value>) {
    let connections = 2u32;
    let work = Work::calibrate(Duration::from_micros(1));
    println!(
        "\n== contended: {connections} connections, 2 then 4 threads, hold {:.2} us CPU ({} iters), load {:.2}",
        work.cost.as_secs_f64() * 1e6,
        work.iters,
        common::load_average()
    );
    println!(
        "{:<16} {:>14} {:>14} {:>8} {:>10} {:>10} {:>6}",
        "pool", "2 thr ops/s", "4 thr ops/s", "ratio", "cores used", "csw/op", "load"
    );
    let mut rows = Vec::new();
    for peer in peers(connections, Duration::from_secs(30)) {
        let load = common::load_average();
        let alone = run(&peer, connections as usize, work, false);
        let crowded = run(&peer, 2 * connections as usize, work, false);
        let ratio = crowded.throughput() / alone.throughput();
        println!(
            "{:<16} {:>14.0} {:>14.0} {:>7.1}% {:>10.2} {:>10.3} {:>6.2}",
            peer.name(),
            alone.throughput(),
            crowded.throughput(),
            ratio * 100.0,
            crowded.cores_used(),
            crowded.switches_per_op(),
            load
        );
        rows.push(json!({
            "pool": peer.name(),
            "uncontended_ops_per_s": alone.throughput(),
            "contended_ops_per_s": crowded.throughput(),
            "ratio": ratio,
            "contended_cores_used": crowded.cores_used(),
            "uncontended_cores_used": alone.cores_used(),
            "contended_switches_per_op": crowded.switches_per_op(),
            "contended_work_share": crowded.work_share(&work),
            "uncontended_work_share": alone.work_share(&work),
            "contended_timeouts": crowded.timeouts,
            "load_average": load,
        }));
    }
    results.insert(
        "contended".into(),
        json!({
            "connections": connections,
            "threads_uncontended": connections,
            "threads_contended": 2 * connections,
            "hold_ns": work.cost.as_nanos() as u64,
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

fn oversubscribed(results: &mut serde_json::Map<String, serde_json::Value>) {
    let (threads, connections) = (16usize, 4u32);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let work = Work::calibrate(Duration::from_micros(20));
    let ideal = cores as f64 / work.cost.as_secs_f64();
    println!(
        "\n== oversubscribed: {threads} threads, {connections} connections, hold {:.2} us CPU, \
         timeout 1 s, ideal {ideal:.0} ops/s ({cores} cores), load {:.2}",
        work.cost.as_secs_f64() * 1e6,
        common::load_average()
    );
    println!(
        "{:<16} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>7} {:>6}",
        "pool",
        "ops/s",
        "ideal",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "fair",
        "timeouts",
        "cores",
        "csw/op",
        "load"
    );
    let mut rows = Vec::new();
    for peer in peers(connections, Duration::from_secs(1)) {
        let load = common::load_average();
        let o = run(&peer, threads, work, true);
        let w = &o.waits;
        let timeouts = if peer.has_timeout() {
            o.timeouts.to_string()
        } else {
            "n/a".into()
        };
        println!(
            "{:<16} {:>10.0} {:>6.1}% {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.3} {:>8} {:>6.2} {:>7.2} {:>6.2}",
            peer.name(),
            o.throughput(),
            o.throughput() / ideal * 100.0,
            us(w.value_at_quantile(0.5)),
            us(w.value_at_quantile(0.99)),
            us(w.value_at_quantile(0.999)),
            us(w.max()),
            o.fairness(),
            timeouts,
            o.cores_used(),
            o.switches_per_op(),
            load
        );
        rows.push(json!({
            "pool": peer.name(),
            "ops_per_s": o.throughput(),
            "ratio_to_ideal": o.throughput() / ideal,
            "wait_p50_ns": w.value_at_quantile(0.5),
            "wait_p99_ns": w.value_at_quantile(0.99),
            "wait_p999_ns": w.value_at_quantile(0.999),
            "wait_max_ns": w.max(),
            "fairness": o.fairness(),
            "ops_min": o.ops_per_thread.iter().min(),
            "ops_max": o.ops_per_thread.iter().max(),
            "timeouts": if peer.has_timeout() { json!(o.timeouts) } else { json!(null) },
            "cores_used": o.cores_used(),
            "switches_per_op": o.switches_per_op(),
            "work_share": o.work_share(&work),
            "load_average": load,
        }));
    }
    results.insert(
        "oversubscribed".into(),
        json!({
            "threads": threads,
            "connections": connections,
            "cores": cores,
            "hold_ns": work.cost.as_nanos() as u64,
            "ideal_ops_per_s": ideal,
            "connection_timeout_s": 1,
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

fn main() {
    let mut results = serde_json::Map::new();
    if common::selected("contended") {
        contended(&mut results);
    }
    if common::selected("oversubscribed") {
        oversubscribed(&mut results);
    }
    common::write_results("contention", serde_json::Value::Object(results));
}

//! Workloads 2 and 3: pools under contention, as throughput loops (not
//! criterion: what matters here is ops/s, wait percentiles and fairness
//! across threads, which criterion does not report).
//!
//! * **contended**: 2 connections; 2 threads (nobody waits) then 4 threads
//!   (threads = 2 x connections), each holding its connection for ~1 us of
//!   CPU work. Reports each pool's contended / uncontended throughput
//!   (HikariCP keeps 98%).
//! * **oversubscribed**: 16 threads on 4 connections, each holding ~20 us of
//!   CPU work, `connection_timeout` 1 s. Reports throughput against two
//!   ideals: measured (the same 16 threads doing the same work with no pool,
//!   the "no pool (ideal)" row, in the same run) and calculated (every core
//!   busy with the work: cores / work cost, 100k ops/s for 2 cores and
//!   20 us); acquire-wait p50/p99/p99.9/max (hdrhistogram), fairness (min /
//!   max operations per thread) and timeouts.
//! * **oversubscribed_async**: the same on tokio, 16 tasks on a 2-worker
//!   multi-thread runtime, 4 connections, ~20 us of CPU work. Two variants:
//!   `spin` (the holder runs the work without yielding, so at most 2
//!   connections are out and nobody waits: the checkout's own cost) and
//!   `yield` (the holder yields once in the middle of the work, so tasks
//!   queue for connections). Each variant has its measured no-pool row.
//! * **oversubscribed_blocking**: 16 threads on 4 connections, each holder
//!   blocking (`thread::sleep(50 us)`) instead of spinning. The bound is the
//!   pool: connections / the real sleep time (measured once before the runs,
//!   on 4 threads sleeping at once, as a 50 us sleep oversleeps by the timer
//!   slack and the wake-up latency).
//!
//! The busy work is a calibrated loop (`common::Work`), so a holder that is
//! preempted does not get its work done for free. Only the acquire is timed
//! (two clock reads around it, in every row including the no-pool ones).
//!
//! Peers: slotpool, r2d2, deadpool (managed, through `common::block_on`,
//! which parks the thread while `get()` is pending), bb8 (not in
//! `contended`, which keeps its earlier peers), and a bare
//! `ArrayQueue` whose callers spin and `yield_now()` when it is empty (no
//! queueing, no fairness, no timeouts: a reference, not a pool; not in the
//! blocking variant). bb8 is async-only: the threads drive its `get()` with
//! the same `common::block_on` as deadpool's, inside the context of a shared
//! 1-worker tokio runtime (`Handle::enter`), whose worker drives bb8's
//! timers (its 1 s wait timeout) and background tasks. Not
//! `Handle::block_on`: that takes a runtime-wide mutex (the RNG seed
//! generator) on every call, which 16 threads would contend on.
//! In the async section, slotpool is `get_async`, deadpool and bb8 their
//! `get().await`.
//!
//! `cargo bench --bench contention` (`-- --quick` for a smoke run,
//! `SLOTPOOL_BENCH_LONG=1` for 10 s per measurement; a filter argument runs
//! the workloads whose id contains it: `contended`, `oversubscribed_sync`,
//! `oversubscribed_async`, `oversubscribed_blocking`, or `oversubscribed`
//! for all three).

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Stub, Work, block_on};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

type Results = serde_json::Map<String, Value>;

/// What a holder does while it holds its connection.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// Calibrated CPU work.
    Spin(Work),
    /// A blocking call: the holder is off the CPU.
    Sleep(Duration),
}

impl Held {
    #[inline]
    fn run(&self) {
        match self {
            Held::Spin(work) => work.run(),
            Held::Sleep(nap) => thread::sleep(*nap),
        }
    }
}

/// A pool under test: one checkout, `acquired()` (which records the wait
/// when timing), `held` while holding, one return. Returns `Err(())` when
/// the checkout failed (timed out).
trait Peer: Send + Sync {
    fn name(&self) -> &'static str;
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()>;
    /// Whether the peer can report a timeout at all.
    fn has_timeout(&self) -> bool {
        true
    }
}

/// No pool: the work alone, as many at once as there are threads. The
/// measured ideal.
struct NoPool;

const NO_POOL: &str = "no pool (ideal)";

impl Peer for NoPool {
    fn name(&self) -> &'static str {
        NO_POOL
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        acquired();
        held.run();
        Ok(())
    }
    fn has_timeout(&self) -> bool {
        false
    }
}

impl Peer for slotpool::Pool<Stub> {
    fn name(&self) -> &'static str {
        "slotpool"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        let conn = self.get().map_err(|_| ())?;
        acquired();
        held.run();
        drop(conn);
        Ok(())
    }
}

impl Peer for r2d2::Pool<Stub> {
    fn name(&self) -> &'static str {
        "r2d2"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        let conn = self.get().map_err(|_| ())?;
        acquired();
        held.run();
        drop(conn);
        Ok(())
    }
}

impl Peer for deadpool::managed::Pool<Stub> {
    fn name(&self) -> &'static str {
        "deadpool"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        let conn = block_on(self.get()).map_err(|_| ())?;
        acquired();
        held.run();
        drop(conn);
        Ok(())
    }
    fn has_timeout(&self) -> bool {
        false // a wait timeout needs a runtime; these waits are unbounded
    }
}

/// bb8 from plain threads: `get()` driven by `common::block_on` inside the
/// context of a tokio runtime whose worker serves bb8's timers.
struct Bb8Sync {
    pool: bb8::Pool<Stub>,
    runtime: tokio::runtime::Handle,
}

impl Peer for Bb8Sync {
    fn name(&self) -> &'static str {
        "bb8"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        let conn = {
            let _context = self.runtime.enter();
            block_on(self.pool.get()).map_err(|_| ())?
        };
        acquired();
        held.run();
        drop(conn);
        Ok(())
    }
}

struct Floor(ArrayQueue<u64>);

impl Peer for Floor {
    fn name(&self) -> &'static str {
        "arrayqueue-spin"
    }
    fn hold(&self, acquired: &mut dyn FnMut(), held: &Held) -> Result<(), ()> {
        let conn = loop {
            match self.0.pop() {
                Some(conn) => break conn,
                None => thread::yield_now(),
            }
        };
        acquired();
        held.run();
        self.0.push(conn).unwrap();
        Ok(())
    }
    fn has_timeout(&self) -> bool {
        false
    }
}

/// The runtime that serves the sync bb8 peer: one worker, which drives the
/// timers and bb8's background tasks and otherwise sleeps.
fn bb8_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bb8-timers")
        .enable_all()
        .build()
        .unwrap()
}

fn slotpool_pool(connections: u32, timeout: Duration) -> slotpool::Pool<Stub> {
    let slot = slotpool::Pool::builder()
        .max_size(connections)
        .min_idle(connections)
        .connection_timeout(timeout)
        .validation_timeout(timeout / 2)
        .build(Stub::new())
        .unwrap();
    let all: Vec<_> = (0..connections).map(|_| slot.get().unwrap()).collect();
    drop(all);
    slot
}

/// The pools, in table order. bb8 only with a runtime to serve it; the bare
/// queue only with `floor`.
fn peers(
    connections: u32,
    timeout: Duration,
    bb8: Option<&tokio::runtime::Handle>,
    floor: bool,
) -> Vec<Arc<dyn Peer>> {
    let slot = slotpool_pool(connections, timeout);
    let r2d2 = r2d2::Pool::builder()
        .max_size(connections)
        .min_idle(Some(connections))
        .test_on_check_out(false)
        .connection_timeout(timeout)
        .build(Stub::new())
        .unwrap();
    let dead = common::deadpool_pool(Stub::new(), connections as usize);
    let mut peers: Vec<Arc<dyn Peer>> = vec![Arc::new(slot), Arc::new(r2d2), Arc::new(dead)];
    if let Some(runtime) = bb8 {
        let pool = runtime.block_on(common::bb8_pool(Stub::new(), connections, timeout));
        peers.push(Arc::new(Bb8Sync {
            pool,
            runtime: runtime.clone(),
        }));
    }
    if floor {
        let queue = ArrayQueue::new(connections as usize);
        for i in 0..connections as u64 {
            queue.push(i).unwrap();
        }
        peers.push(Arc::new(Floor(queue)));
    }
    peers
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
    fn new(wall: Duration, cpu: Duration, switches: u64) -> Self {
        Self {
            ops_per_thread: Vec::new(),
            waits: histogram(),
            timeouts: 0,
            wall,
            cpu,
            switches,
        }
    }
    /// Adds one thread's (or task's) share.
    fn add(&mut self, (ops, timeouts, waits): (u64, u64, Histogram<u64>)) {
        self.ops_per_thread.push(ops);
        self.timeouts += timeouts;
        self.waits.add(waits).unwrap();
    }
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

    /// Prints the row of a CPU-bound oversubscribed table and returns its
    /// JSON: throughput as a share of the table's first (no-pool) row,
    /// which `baseline` keeps, and of the calculated `ideal`, and the
    /// share of the CPU that went into the `work`.
    fn oversubscribed_row(
        &self,
        pool: &str,
        has_timeout: bool,
        baseline: &mut Option<f64>,
        ideal: f64,
        work: &Work,
        load: f64,
    ) -> Results {
        let baseline = *baseline.get_or_insert(self.throughput());
        let (vs_measured, vs_ideal) = (self.throughput() / baseline, self.throughput() / ideal);
        print_row(pool, self, &[vs_measured, vs_ideal], has_timeout, load);
        let mut row = self.row(pool, has_timeout, load);
        row.insert("ratio_to_ideal".into(), json!(vs_ideal));
        row.insert("ratio_to_measured".into(), json!(vs_measured));
        row.insert("work_share".into(), json!(self.work_share(work)));
        row
    }

    /// The keys every oversubscribed table's rows share.
    fn row(&self, pool: &str, has_timeout: bool, load: f64) -> Results {
        let w = &self.waits;
        let row = json!({
            "pool": pool,
            "ops_per_s": self.throughput(),
            "wait_p50_ns": w.value_at_quantile(0.5),
            "wait_p99_ns": w.value_at_quantile(0.99),
            "wait_p999_ns": w.value_at_quantile(0.999),
            "wait_max_ns": w.max(),
            "fairness": self.fairness(),
            "ops_min": self.ops_per_thread.iter().min(),
            "ops_max": self.ops_per_thread.iter().max(),
            "timeouts": if has_timeout { json!(self.timeouts) } else { json!(null) },
            "cores_used": self.cores_used(),
            "switches_per_op": self.switches_per_op(),
            "load_average": load,
        });
        match row {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
}

const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// The measured window, once the workers are running: a warm-up, then
/// `measure_time()` between `MEASURE` and `STOP`. Returns the wall time, the
/// process's CPU time and its context switches over the window.
fn window(phase: &AtomicU8) -> (Duration, Duration, u64) {
    thread::sleep(common::warm_up_time());
    let (wall_start, cpu_start, switches_start) = (
        Instant::now(),
        common::process_cpu_time(),
        common::context_switches(),
    );
    phase.store(MEASURE, Ordering::Relaxed);
    thread::sleep(common::measure_time());
    phase.store(STOP, Ordering::Relaxed);
    (
        wall_start.elapsed(),
        common::process_cpu_time() - cpu_start,
        common::context_switches() - switches_start,
    )
}

/// Runs `threads` threads cycling `peer` through a warm-up and a measured
/// window. With `timed`, each checkout's wait is recorded (two clock reads,
/// ~50 ns, per operation).
fn run(peer: &Arc<dyn Peer>, threads: usize, held: Held, timed: bool) -> Outcome {
    let phase = Arc::new(AtomicU8::new(WARM));
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (peer, phase, start_line) = (peer.clone(), phase.clone(), start_line.clone());
            thread::spawn(move || {
                let mut waits = histogram();
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
                        peer.hold(&mut acquired, &held).is_ok()
                    } else {
                        peer.hold(&mut || {}, &held).is_ok()
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
    let (wall, cpu, switches) = window(&phase);
    let mut outcome = Outcome::new(wall, cpu, switches);
    for handle in handles {
        outcome.add(handle.join().unwrap());
    }
    outcome
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Header of an oversubscribed table: `ratios` name the "of ideal" columns.
fn print_header(ratios: &[&str]) {
    print!("{:<16} {:>10}", "pool", "ops/s");
    for ratio in ratios {
        print!(" {ratio:>8}");
    }
    println!(
        " {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>7} {:>6}",
        "p50 us", "p99 us", "p99.9 us", "max us", "fair", "timeouts", "cores", "csw/op", "load"
    );
}

fn print_row(pool: &str, o: &Outcome, ratios: &[f64], has_timeout: bool, load: f64) {
    let w = &o.waits;
    let timeouts = if has_timeout {
        o.timeouts.to_string()
    } else {
        "n/a".into()
    };
    print!("{:<16} {:>10.0}", pool, o.throughput());
    for ratio in ratios {
        print!(" {:>7.1}%", ratio * 100.0);
    }
    println!(
        " {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.3} {:>8} {:>6.2} {:>7.2} {:>6.2}",
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
}

fn contended(results: &mut Results) {
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
    for peer in peers(connections, Duration::from_secs(30), None, true) {
        let load = common::load_average();
        let alone = run(&peer, connections as usize, Held::Spin(work), false);
        let crowded = run(&peer, 2 * connections as usize, Held::Spin(work), false);
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

const THREADS: usize = 16;
const CONNECTIONS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(1);
const HOLD: Duration = Duration::from_micros(20);

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn oversubscribed(results: &mut Results) {
    let cores = cores();
    let work = Work::calibrate(HOLD);
    let ideal = cores as f64 / work.cost.as_secs_f64();
    println!(
        "\n== oversubscribed: {THREADS} threads, {CONNECTIONS} connections, hold {:.2} us CPU, \
         timeout {} s, load {:.2}\n   vs none = of the measured no-pool row; \
         vs calc = of {cores} cores / hold = {ideal:.0} ops/s",
        work.cost.as_secs_f64() * 1e6,
        TIMEOUT.as_secs(),
        common::load_average()
    );
    print_header(&["vs none", "vs calc"]);
    let runtime = bb8_runtime();
    let mut all: Vec<Arc<dyn Peer>> = vec![Arc::new(NoPool)];
    all.extend(peers(CONNECTIONS, TIMEOUT, Some(runtime.handle()), true));
    let mut measured = None;
    let mut rows = Vec::new();
    for peer in all {
        let load = common::load_average();
        let o = run(&peer, THREADS, Held::Spin(work), true);
        // The no-pool row runs first: every later row is a share of it.
        let row = o.oversubscribed_row(
            peer.name(),
            peer.has_timeout(),
            &mut measured,
            ideal,
            &work,
            load,
        );
        rows.push(Value::Object(row));
    }
    results.insert(
        "oversubscribed".into(),
        json!({
            "threads": THREADS,
            "connections": CONNECTIONS,
            "cores": cores,
            "hold_ns": work.cost.as_nanos() as u64,
            "ideal_ops_per_s": ideal,
            "measured_ideal_ops_per_s": measured,
            "connection_timeout_s": TIMEOUT.as_secs(),
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

// ---------------------------------------------------------------------------
// oversubscribed_async
// ---------------------------------------------------------------------------

const WORKERS: usize = 2;

/// Every task also yields to the scheduler after this many cycles, outside
/// the hold, so that all 16 tasks run (a checkout that is ready at once
/// never yields), as in benches/async_cycle.rs.
const YIELD_EVERY: u64 = 32;

#[derive(Clone)]
enum AsyncPeer {
    NoPool,
    Slotpool(Arc<slotpool::Pool<Stub>>),
    Deadpool(deadpool::managed::Pool<Stub>),
    Bb8(bb8::Pool<Stub>),
}

impl AsyncPeer {
    fn name(&self) -> &'static str {
        match self {
            AsyncPeer::NoPool => NO_POOL,
            AsyncPeer::Slotpool(_) => "slotpool",
            AsyncPeer::Deadpool(_) => "deadpool",
            AsyncPeer::Bb8(_) => "bb8",
        }
    }

    fn has_timeout(&self) -> bool {
        matches!(self, AsyncPeer::Slotpool(_) | AsyncPeer::Bb8(_))
    }

    /// One checkout, holding for `work` (split in two halves, with a
    /// `yield_now()` between them when `yield_mid`). With `timed`, the wait
    /// is recorded into `waits`.
    async fn hold(
        &self,
        work: Work,
        yield_mid: bool,
        timed: bool,
        waits: &mut Histogram<u64>,
    ) -> Result<(), ()> {
        let start = timed.then(Instant::now);
        let first = work.iters / 2;
        macro_rules! held {
            ($acquire:expr) => {{
                let _conn = $acquire;
                if let Some(start) = start {
                    waits.saturating_record((start.elapsed().as_nanos() as u64).max(1));
                }
                common::spin(first);
                if yield_mid {
                    tokio::task::yield_now().await;
                }
                common::spin(work.iters - first);
            }};
        }
        match self {
            AsyncPeer::NoPool => held!(()),
            AsyncPeer::Slotpool(pool) => held!(pool.get_async().await.map_err(|_| ())?),
            AsyncPeer::Deadpool(pool) => held!(pool.get().await.map_err(|_| ())?),
            AsyncPeer::Bb8(pool) => held!(pool.get().await.map_err(|_| ())?),
        }
        Ok(())
    }
}

/// `tasks` tasks on `runtime` cycling `peer`, over a warm-up and a measured
/// window (timed from this thread, not a worker).
fn run_async(
    runtime: &tokio::runtime::Runtime,
    peer: &AsyncPeer,
    tasks: usize,
    work: Work,
    yield_mid: bool,
) -> Outcome {
    let phase = Arc::new(AtomicU8::new(WARM));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (peer, phase) = (peer.clone(), phase.clone());
            runtime.spawn(async move {
                let mut waits = histogram();
                let (mut ops, mut timeouts, mut round) = (0u64, 0u64, 0u64);
                loop {
                    let now = phase.load(Ordering::Relaxed);
                    if now == STOP {
                        break;
                    }
                    let measuring = now == MEASURE;
                    let ok = peer
                        .hold(work, yield_mid, measuring, &mut waits)
                        .await
                        .is_ok();
                    if measuring {
                        if ok {
                            ops += 1;
                        } else {
                            timeouts += 1;
                        }
                    }
                    round += 1;
                    if round.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                (ops, timeouts, waits)
            })
        })
        .collect();
    let (wall, cpu, switches) = window(&phase);
    let mut outcome = Outcome::new(wall, cpu, switches);
    runtime.block_on(async {
        for handle in handles {
            outcome.add(handle.await.unwrap());
        }
    });
    outcome
}

fn oversubscribed_async(results: &mut Results) {
    let cores = cores();
    let work = Work::calibrate(HOLD);
    let ideal = WORKERS.min(cores) as f64 / work.cost.as_secs_f64();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let slot = slotpool_pool(CONNECTIONS, TIMEOUT);
    let dead = common::deadpool_pool(Stub::new(), CONNECTIONS as usize);
    let bb8 = runtime.block_on(common::bb8_pool(Stub::new(), CONNECTIONS, TIMEOUT));
    let peers = [
        AsyncPeer::NoPool,
        AsyncPeer::Slotpool(Arc::new(slot)),
        AsyncPeer::Deadpool(dead),
        AsyncPeer::Bb8(bb8),
    ];
    let variants = [
        ("spin", false, "holders spin through the work"),
        ("yield", true, "holders yield_now() mid-work"),
    ];
    let mut measured_ideals = serde_json::Map::new();
    let mut rows = Vec::new();
    for (variant, yield_mid, what) in variants {
        println!(
            "\n== oversubscribed_async/{variant}: {THREADS} tasks, {WORKERS} workers, \
             {CONNECTIONS} connections, hold {:.2} us CPU, {what}, timeout {} s, load {:.2}\n   \
             vs none = of the measured no-pool row; vs calc = of {} workers / hold = {ideal:.0} ops/s",
            work.cost.as_secs_f64() * 1e6,
            TIMEOUT.as_secs(),
            common::load_average(),
            WORKERS.min(cores),
        );
        print_header(&["vs none", "vs calc"]);
        let mut measured = None;
        for peer in &peers {
            let load = common::load_average();
            let o = run_async(&runtime, peer, THREADS, work, yield_mid);
            let mut row = o.oversubscribed_row(
                peer.name(),
                peer.has_timeout(),
                &mut measured,
                ideal,
                &work,
                load,
            );
            row.insert("variant".into(), json!(variant));
            row.insert("yield_mid_hold".into(), json!(yield_mid));
            rows.push(Value::Object(row));
        }
        measured_ideals.insert(variant.into(), json!(measured));
    }
    results.insert(
        "oversubscribed_async".into(),
        json!({
            "tasks": THREADS,
            "workers": WORKERS,
            "connections": CONNECTIONS,
            "cores": cores,
            "hold_ns": work.cost.as_nanos() as u64,
            "ideal_ops_per_s": ideal,
            "measured_ideal_ops_per_s": measured_ideals,
            "yield_every": YIELD_EVERY,
            "connection_timeout_s": TIMEOUT.as_secs(),
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

// ---------------------------------------------------------------------------
// oversubscribed_blocking
// ---------------------------------------------------------------------------

const NAP: Duration = Duration::from_micros(50);
const NAP_SAMPLES: u32 = 1000;

/// What `thread::sleep(nap)` really takes: the mean over `samples` sleeps
/// on each of `threads` threads sleeping at once (as the holders do).
fn real_sleep(nap: Duration, threads: u32, samples: u32) -> Duration {
    let sleepers: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let start = Instant::now();
                for _ in 0..samples {
                    thread::sleep(nap);
                }
                start.elapsed()
            })
        })
        .collect();
    let total: Duration = sleepers.into_iter().map(|s| s.join().unwrap()).sum();
    total / (threads * samples)
}

fn oversubscribed_blocking(results: &mut Results) {
    let slept = real_sleep(NAP, CONNECTIONS, NAP_SAMPLES);
    let ideal = CONNECTIONS as f64 / slept.as_secs_f64();
    println!(
        "\n== oversubscribed_blocking: {THREADS} threads, {CONNECTIONS} connections, hold = \
         sleep({} us), {:.1} us measured, timeout {} s, load {:.2}\n   \
         vs bound = of {CONNECTIONS} connections / measured sleep = {ideal:.0} ops/s",
        NAP.as_micros(),
        slept.as_secs_f64() * 1e6,
        TIMEOUT.as_secs(),
        common::load_average()
    );
    print_header(&["vs bound"]);
    let runtime = bb8_runtime();
    let mut rows = Vec::new();
    for peer in peers(CONNECTIONS, TIMEOUT, Some(runtime.handle()), false) {
        let load = common::load_average();
        let o = run(&peer, THREADS, Held::Sleep(NAP), true);
        let vs_ideal = o.throughput() / ideal;
        print_row(peer.name(), &o, &[vs_ideal], peer.has_timeout(), load);
        let mut row = o.row(peer.name(), peer.has_timeout(), load);
        row.insert("ratio_to_ideal".into(), json!(vs_ideal));
        rows.push(Value::Object(row));
    }
    results.insert(
        "oversubscribed_blocking".into(),
        json!({
            "threads": THREADS,
            "connections": CONNECTIONS,
            "sleep_requested_ns": NAP.as_nanos() as u64,
            "sleep_measured_ns": slept.as_nanos() as u64,
            "sleep_samples": NAP_SAMPLES,
            "sleep_threads": CONNECTIONS,
            "ideal_ops_per_s": ideal,
            "connection_timeout_s": TIMEOUT.as_secs(),
            "measure_s": common::measure_time().as_secs_f64(),
            "rows": rows,
        }),
    );
}

fn main() {
    let mut results = Results::new();
    if common::selected("contended") {
        contended(&mut results);
    }
    if common::selected("oversubscribed_sync") {
        oversubscribed(&mut results);
    }
    if common::selected("oversubscribed_async") {
        oversubscribed_async(&mut results);
    }
    if common::selected("oversubscribed_blocking") {
        oversubscribed_blocking(&mut results);
    }
    common::write_results("contention", Value::Object(results));
}

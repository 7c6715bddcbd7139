//! What every bench shares: one stub manager implemented for every pool under
//! test (so only the pool machinery differs), pool constructors, a park-based
//! `block_on` for driving deadpool from plain threads, calibrated busy work,
//! run settings, and the JSON result files that `scripts/bench-report.sh`
//! turns into BENCHMARKS.md.
//!
//! Settings: `SLOTPOOL_BENCH_LONG=1` lengthens every measurement (about 5x);
//! `-- --quick` shortens it to a smoke run.
#![allow(dead_code)]
// The thread and process CPU clocks and the context-switch count are read
// through libc (`clock_gettime`, `getrusage`); each call carries its
// `// SAFETY:` line. The library's own `unsafe` stays in `src/slot.rs`.
#![allow(unsafe_code)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use criterion::Criterion;

// ---------------------------------------------------------------------------
// The stub manager ("stub driver"): a connection is a u64; connecting may
// take a fixed time (the spike test) and is counted.
// ---------------------------------------------------------------------------

/// A manager whose connections cost nothing to use. `connect_delay` is slept
/// (a thread sleep for the sync pools, a tokio sleep for the async ones).
#[derive(Clone, Default)]
pub struct Stub {
    pub connect_delay: Duration,
    /// Connects started (counted before the delay, so in-flight ones count).
    pub opened: Arc<AtomicU64>,
}

impl Stub {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn slow(connect_delay: Duration) -> Self {
        Self {
            connect_delay,
            ..Self::default()
        }
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn connect_sync(&self) -> u64 {
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        if !self.connect_delay.is_zero() {
            thread::sleep(self.connect_delay);
        }
        n
    }

    async fn connect_async(&self) -> u64 {
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        if !self.connect_delay.is_zero() {
            tokio::time::sleep(self.connect_delay).await;
        }
        n
    }
}

#[derive(Debug)]
pub struct StubError;

impl std::fmt::Display for StubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}

impl std::error::Error for StubError {}

impl slotpool::Manager for Stub {
    type Connection = u64;
    type Error = StubError;
    fn connect(&self) -> Result<u64, StubError> {
        Ok(self.connect_sync())
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), StubError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

impl r2d2::ManageConnection for Stub {
    type Connection = u64;
    type Error = StubError;
    fn connect(&self) -> Result<u64, StubError> {
        Ok(self.connect_sync())
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), StubError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

impl deadpool::managed::Manager for Stub {
    type Type = u64;
    type Error = StubError;
    async fn create(&self) -> Result<u64, StubError> {
        Ok(self.connect_async().await)
    }
    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<StubError> {
        Ok(())
    }
}

impl bb8::ManageConnection for Stub {
    type Connection = u64;
    type Error = StubError;
    async fn connect(&self) -> Result<u64, StubError> {
        Ok(self.connect_async().await)
    }
    async fn is_valid(&self, _: &mut u64) -> Result<(), StubError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------
// Pools, each with `size` connections open before measuring.
// ---------------------------------------------------------------------------

pub fn slotpool_pool<M: slotpool::Manager>(manager: M, size: u32) -> slotpool::Pool<M> {
    let pool = slotpool::Pool::builder()
        .max_size(size)
        .min_idle(size)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .unwrap();
    // Open every connection up front, so the bench measures only cycles.
    let all: Vec<_> = (0..size).map(|_| pool.get().unwrap()).collect();
    drop(all);
    pool
}

/// r2d2 with checkout tests off: the other pools do not test on checkout
/// either (slotpool validates only after `validation_idle_window` idle).
pub fn r2d2_pool<M: r2d2::ManageConnection>(manager: M, size: u32) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(size))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .unwrap()
}

/// deadpool's managed pool (the variant that wraps a manager, like the
/// others), with every object created up front. No wait timeout, so no
/// runtime is needed and [`block_on`] can drive it from plain threads.
pub fn deadpool_pool<M: deadpool::managed::Manager>(
    manager: M,
    size: usize,
) -> deadpool::managed::Pool<M> {
    let pool = deadpool::managed::Pool::builder(manager)
        .max_size(size)
        .build()
        .unwrap();
    let all: Vec<_> = (0..size)
        .map(|_| block_on(pool.get()).unwrap_or_else(|_| panic!("deadpool get")))
        .collect();
    drop(all);
    pool
}

/// bb8 with checkout tests off (as r2d2's), `size` connections kept and
/// opened before it returns, and waits bounded by `timeout`. Must run inside
/// a tokio runtime: bb8 spawns its reaper and times its waits there.
pub async fn bb8_pool<M: bb8::ManageConnection>(
    manager: M,
    size: u32,
    timeout: Duration,
) -> bb8::Pool<M> {
    let pool = bb8::Pool::builder()
        .max_size(size)
        .min_idle(size)
        .test_on_check_out(false)
        .connection_timeout(timeout)
        .build(manager)
        .await
        .unwrap_or_else(|_| panic!("bb8 build"));
    let mut all = Vec::new();
    for _ in 0..size {
        all.push(pool.get().await.unwrap_or_else(|_| panic!("bb8 get")));
    }
    drop(all);
    pool
}

// ---------------------------------------------------------------------------
// block_on: drive a future on the calling thread, parking while it is
// pending. deadpool's `get()` is ready on its first poll whenever an object
// is idle, so on the uncontended path this adds one poll and no allocation
// (the waker is made once per thread); under contention a waiting thread
// parks and is unparked by the semaphore, as r2d2's and slotpool's do.
// ---------------------------------------------------------------------------

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    })
}

// ---------------------------------------------------------------------------
// Busy work: a fixed amount of CPU, not wall time. A wall-clock spin would
// let a preempted holder "work" while descheduled, and four holders on two
// cores would then exceed the two-core ideal; a calibrated loop costs the
// same CPU whoever runs it. Calibrated against the thread's CPU clock, so
// other load on the machine does not skew it.
// ---------------------------------------------------------------------------

/// Runs `iters` rounds of a dependent multiply-add chain.
#[inline(never)]
pub fn spin(iters: u64) {
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15u64);
    for i in 0..iters {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(x);
}

/// This thread's CPU time.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The whole process's CPU time (all threads).
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are constants.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Context switches of the whole process so far (voluntary + involuntary).
pub fn context_switches() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

/// Busy work of a calibrated CPU cost.
#[derive(Clone, Copy, Debug)]
pub struct Work {
    pub iters: u64,
    /// What `iters` rounds cost on this thread's CPU clock, as calibrated.
    pub cost: Duration,
}

impl Work {
    /// Calibrates `spin` to cost `target` of CPU: the best of several
    /// rounds, each measured on the thread's CPU clock.
    pub fn calibrate(target: Duration) -> Self {
        let probe = 2_000_000u64;
        let mut best = Duration::MAX;
        for _ in 0..7 {
            let start = thread_cpu_time();
            spin(probe);
            best = best.min(thread_cpu_time() - start);
        }
        let per_iter = best.as_secs_f64() / probe as f64;
        let iters = (target.as_secs_f64() / per_iter).round().max(1.0) as u64;
        Self {
            iters,
            cost: Duration::from_secs_f64(iters as f64 * per_iter),
        }
    }

    #[inline]
    pub fn run(&self) {
        spin(self.iters);
    }
}

// ---------------------------------------------------------------------------
// Settings and output.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Quick,
    Default,
    Long,
}

pub fn mode() -> Mode {
    if std::env::args().any(|a| a == "--quick") {
        Mode::Quick
    } else if std::env::var("SLOTPOOL_BENCH_LONG").is_ok_and(|v| !v.is_empty() && v != "0") {
        Mode::Long
    } else {
        Mode::Default
    }
}

/// Measurement window for the custom (throughput) loops.
pub fn measure_time() -> Duration {
    match mode() {
        Mode::Quick => Duration::from_millis(300),
        Mode::Default => Duration::from_secs(2),
        Mode::Long => Duration::from_secs(10),
    }
}

/// Warm-up before each custom measurement.
pub fn warm_up_time() -> Duration {
    match mode() {
        Mode::Quick => Duration::from_millis(100),
        Mode::Default => Duration::from_millis(500),
        Mode::Long => Duration::from_secs(2),
    }
}

/// Criterion's settings: 0.5 s warm-up, 2 s measurement, 20 samples by
/// default; 3 s, 10 s, 100 samples with `SLOTPOOL_BENCH_LONG=1`.
/// (`--quick` is criterion's own flag and still applies.)
pub fn criterion() -> Criterion {
    let c = Criterion::default();
    let c = match mode() {
        Mode::Long => c
            .warm_up_time(Duration::from_secs(3))
            .measurement_time(Duration::from_secs(10))
            .sample_size(100),
        _ => c
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20),
    };
    c.configure_from_args()
}

/// Whether a benchmark id passes the command line's filter (the first
/// argument that is not a flag), as criterion's would.
pub fn selected(id: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| id.contains(&f))
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else three levels up
/// from this executable (`<target>/release/deps/<bench>`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The 1-minute load average, recorded next to every figure.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Writes `<target>/bench-results/<name>.json` (not in `--quick` mode, so a
/// smoke run never overwrites real figures).
pub fn write_results(name: &str, value: serde_json::Value) {
    if mode() == Mode::Quick {
        return;
    }
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.json"));
    let doc = serde_json::json!({
        "bench": name,
        "mode": format!("{:?}", mode()).to_lowercase(),
        "load_average_end": load_average(),
        "results": value,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("wrote {}", path.display());
}

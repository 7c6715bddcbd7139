//! The shared state of one pool: [`Shared`], what every handle, guard and
//! background thread of the pool holds. The protocols over it live one per
//! file beside this one, in the order of the data path: `checkout.rs` →
//! (`slot.rs`, `waiters.rs`) → `guard.rs` → `release.rs`, then `vacate.rs`,
//! `room.rs`, `create.rs`, `validate.rs`, `evict.rs`, `close.rs`,
//! `reconfigure.rs` and `report.rs`.
//!
//! Owns: the fields of [`Shared`], the room counter (`total`), the hot-path
//! copies of the configuration, and the memory-ordering argument below. It
//! may not contain `unsafe`; ownership of a slot is always carried by a
//! [`Lease`](crate::slot::Lease).
//!
//! # The two Dekker pairs
//!
//! The release fast path is a `SeqCst` swap of the slot tag to `Idle` followed
//! by one `SeqCst` load of the signal word (waiter count | closed bit).
//!
//! 1. **Return vs. waiter.** A waiter increments the count (`SeqCst`, under the
//!    queue lock) and then re-scans the slots. A releaser swaps its slot to
//!    `Idle` and then loads the count. Sequential consistency means at least
//!    one sees the other: the waiter finds the idle slot, or the releaser sees
//!    the waiter, takes its slot back and hands it off. No lost wake-up
//!    (invariant 3) with no lock on the fast path.
//! 2. **Return vs. close.** `close` sets the closed bit and then scans for idle
//!    slots; a releaser swaps to `Idle` and then loads the bit. Either close
//!    finds the connection or the releaser sees the bit and closes it
//!    (invariant 6).
//!
//! A third pair guards *room*: a waiter increments the count and then loads
//! `total` to ask for a new connection; a discard decrements `total` and then
//! loads the count to ask on the waiter's behalf.
//!
//! # Room accounting
//!
//! `total` counts slots that are not `Empty` plus reservations about to claim
//! one. It only grows by a compare-and-swap that refuses to pass `max_size`,
//! so `idle + in_use + connecting <= max_size` (invariant 2) holds at every
//! instant; after a shrink, excess connections are retired as they come back.

use crossbeam_utils::CachePadded;

use crate::backend::Backend;
use crate::background::Background;
use crate::clock::{Clock, nanos};
use crate::config::PoolConfig;
use crate::error::Error;
use crate::slot::SlotArray;
use crate::stats::Recorder;
use crate::sync::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Condvar, ConfigCell, Mutex};
use crate::waiters::Waiters;

/// The settings the hot path reads, as plain atomics on one cache line: an
/// `ArcSwap` load costs a few nanoseconds more than a relaxed load, which the
/// budget cannot spare. `reconfigure` writes these after swapping the full
/// configuration.
pub(crate) struct HotConfig {
    pub(crate) max_size: AtomicUsize,
    pub(crate) validation_window: AtomicU64,
    /// `leak_detection_threshold` in nanoseconds; 0 when off.
    pub(crate) leak_threshold: AtomicU64,
    /// `hand_off_after` in nanoseconds.
    pub(crate) hand_off_after: AtomicU64,
    /// Optional per-operation work ([`EXTRA_EVENTS`], [`EXTRA_LEAK_REPORTED`]):
    /// one load tells both fast paths to skip all of it. Each bit is set
    /// once and never cleared, so concurrent writers cannot leave it wrong.
    /// (Leak detection, which `reconfigure` switches, is tested on
    /// `leak_threshold` itself, so no second word can disagree with it.)
    pub(crate) extras: AtomicU8,
    /// Connections created at or before this time retire when they come
    /// back (`evict_idle`); 0: none. Creation times are at least 1, so the
    /// return path compares without testing for 0.
    pub(crate) evict_before: AtomicU64,
    /// Bumped when `max_lifetime` or its jitter changes: a connection whose
    /// stamp carries an older epoch is re-stamped by its next owner (a
    /// return or a maintenance pass) before its lifetime is judged.
    pub(crate) lifetime_epoch: AtomicU64,
    /// One checkout in `usage_sampling_mask + 1` (a power of two) per slot
    /// has its hold time measured.
    pub(crate) usage_sampling_mask: u64,
}

/// [`HotConfig::extras`]: event hooks are installed (fixed at build).
pub(crate) const EXTRA_EVENTS: u8 = 1;
/// [`HotConfig::extras`]: a leak has been reported. From then on every
/// return takes the slow path, which logs the return of a reported
/// checkout, even after leak detection is switched off.
pub(crate) const EXTRA_LEAK_REPORTED: u8 = 2;

/// Everything one pool shares between its handles, guards and background
/// threads.
pub(crate) struct Shared<M: Backend> {
    pub(crate) manager: M,
    pub(crate) slots: SlotArray<M::Connection>,
    pub(crate) waiters: Waiters<M::Connection>,
    /// Slots not `Empty`, plus reservations in flight (see module docs).
    pub(crate) total: CachePadded<AtomicUsize>,
    pub(crate) hot: CachePadded<HotConfig>,
    pub(crate) config: ConfigCell<PoolConfig>,
    pub(crate) clock: Clock,
    pub(crate) name: std::sync::Arc<str>,
    /// The dispatcher's control block and the lanes (`background/`).
    pub(crate) background: Background<M::Connection>,
    pub(crate) last_connect_error: Mutex<Option<std::sync::Arc<M::Error>>>,
    /// Connections asked for by callers that do not wait (`try_get`).
    pub(crate) demand: AtomicUsize,
    /// Live `Pool` handles; the last one to go closes the pool.
    pub(crate) handles: AtomicUsize,
    pub(crate) drained: (Mutex<()>, Condvar),
    /// The user's event hooks, if any.
    pub(crate) events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    /// Notified after every connect attempt (start-up waits on it).
    pub(crate) progress: (Mutex<()>, Condvar),
    /// Counters and histograms.
    pub(crate) stats: Recorder,
    /// Connect attempts that failed in a row (reset by a success).
    pub(crate) consecutive_failures: AtomicUsize,
    /// The last connect error was classified permanent.
    pub(crate) last_error_permanent: AtomicBool,
    /// Connects in flight.
    pub(crate) connecting: AtomicUsize,
    /// Connections out of their slots for a check (their room stays taken;
    /// `background/check.rs`). A count for reports, outside the loom facade
    /// like the statistics: no ownership decision reads it.
    pub(crate) validating: std::sync::atomic::AtomicUsize,
    /// Connections out of the pool and not yet closed (queued for or in the
    /// closer); `close` waits for them too. Outside the loom facade, as
    /// `validating`.
    pub(crate) closing: std::sync::atomic::AtomicUsize,
}

/// How a pool is built, beyond its configuration (the builder's options).
pub(crate) struct Options {
    /// No background thread: tests drive `run_background_step`.
    pub(crate) manual_background: bool,
    /// Manual mode only: validations wait for the step.
    pub(crate) queued_checks: bool,
    /// One checkout in this many per slot has its hold time measured.
    pub(crate) usage_sampling: u64,
    pub(crate) events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    /// The bucket bounds of the latency histograms (fixed at build).
    pub(crate) buckets: crate::stats::LatencyBuckets,
}

pub(crate) type PoolError<M> = Error<<M as Backend>::Error>;

impl<M: Backend> Shared<M> {
    pub(crate) fn new(
        manager: M,
        config: PoolConfig,
        clock: Clock,
        capacity: usize,
        options: Options,
    ) -> Self {
        let Options {
            manual_background,
            queued_checks,
            usage_sampling,
            events,
            buckets,
        } = options;
        let leak_threshold = config.leak_detection_threshold.map_or(0, nanos);
        let background = Background::new(
            manual_background,
            queued_checks,
            config.max_concurrent_connects as usize,
            config.max_concurrent_validations as usize,
        );
        Self {
            manager,
            slots: SlotArray::new(capacity),
            waiters: Waiters::new(),
            total: CachePadded::new(AtomicUsize::new(0)),
            hot: CachePadded::new(HotConfig {
                max_size: AtomicUsize::new(config.max_size as usize),
                validation_window: AtomicU64::new(nanos(config.validation_idle_window)),
                leak_threshold: AtomicU64::new(leak_threshold),
                hand_off_after: AtomicU64::new(nanos(config.hand_off_after)),
                extras: AtomicU8::new(if events.is_some() { EXTRA_EVENTS } else { 0 }),
                evict_before: AtomicU64::new(0),
                lifetime_epoch: AtomicU64::new(0),
                usage_sampling_mask: usage_sampling.max(1).next_power_of_two() - 1,
            }),
            name: std::sync::Arc::from(config.pool_name.as_str()),
            config: ConfigCell::new(config),
            clock,
            background,
            last_connect_error: Mutex::new(None),
            demand: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            drained: (Mutex::new(()), Condvar::new()),
            progress: (Mutex::new(()), Condvar::new()),
            events,
            stats: Recorder::with_buckets(&buckets),
            consecutive_failures: AtomicUsize::new(0),
            last_error_permanent: AtomicBool::new(false),
            connecting: AtomicUsize::new(0),
            validating: std::sync::atomic::AtomicUsize::new(0),
            closing: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> std::sync::Arc<PoolConfig> {
        self.config.load()
    }
}

//! [`Builder`]: assembles a pool from a configuration and explicit settings.
//!
//! Owns: precedence between a [`PoolConfig`] and explicit builder calls, and
//! starting the worker. It may not hold pool protocols.

use std::marker::PhantomData;
use std::time::Duration;

use super::Pool;
use super::Shared;
use super::shared::Options;
use crate::backend::Backend;
use crate::clock::{Clock, ManualClock};
use crate::config::PoolConfig;
use crate::error::BuildError;
use crate::sync::{Arc, thread};
use crate::telemetry::log;

type Override = Box<dyn FnOnce(&mut PoolConfig) + Send>;

/// Builds a [`Pool`]. Precedence, lowest first: the defaults, a
/// [`PoolConfig`] given to [`config`](Self::config) (which may come from
/// `config.toml` and `SLOTPOOL_*` variables), then each explicit call here.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
# use slotpool::{Manager, Pool, PoolConfig};
# struct Noop;
# impl Manager for Noop {
#     type Connection = ();
#     type Error = std::io::Error;
#     fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
#     fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> { Ok(()) }
#     fn has_broken(&self, _: &mut ()) -> bool { false }
# }
use std::time::Duration;
let base = PoolConfig { max_size: 8, ..PoolConfig::default() };
let pool = Pool::builder()
    .config(base)
    .max_size(16) // wins over the config's 8
    .connection_timeout(Duration::from_secs(10))
    .build(Noop)
    .unwrap();
assert_eq!(pool.config().max_size, 16);
```
"#
)]
pub struct Builder<M: Backend> {
    config: PoolConfig,
    /// Explicit calls, by setting name, in order.
    overrides: Vec<(&'static str, Override)>,
    clock: Option<std::sync::Arc<ManualClock>>,
    manual_background: bool,
    queued_checks: bool,
    usage_sampling: u64,
    buckets: crate::stats::LatencyBuckets,
    events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    _manager: PhantomData<fn() -> M>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.overrides
                    .push((stringify!($name), Box::new(move |config| config.$name = value)));
                self
            }
        )*
    };
}

impl<M: Backend> Builder<M> {
    pub(crate) fn new() -> Self {
        Self {
            config: PoolConfig::default(),
            overrides: Vec::new(),
            clock: None,
            manual_background: false,
            queued_checks: false,
            usage_sampling: 64,
            buckets: crate::stats::LatencyBuckets::default(),
            events: None,
            _manager: PhantomData,
        }
    }

    /// Starts from `config` instead of the defaults; explicit calls still win.
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    setters! {
        /// Most connections open at once (in use + idle + connecting).
        max_size: u32,
        /// Idle connections the pool keeps open.
        min_idle: u32,
        /// Slot-array capacity, fixed at build: the ceiling for `max_size`.
        capacity: Option<u32>,
        /// How long `get()` waits.
        connection_timeout: Duration,
        /// Longest a validity check may take; must stay below `connection_timeout`.
        validation_timeout: Duration,
        /// A connection idle at least this long is validated on checkout.
        validation_idle_window: Duration,
        /// Waiters beyond this many are refused at once (0 = unlimited).
        max_waiters: u32,
        /// How long the oldest waiter may be passed over before returns are
        /// handed to it (0 = strict first come, first served).
        hand_off_after: Duration,
        /// Initial pause after a failed connect.
        connect_backoff_initial: Duration,
        /// Longest pause between connect attempts.
        connect_backoff_max: Duration,
        /// Consecutive connect failures (with nothing open) before gets fail
        /// fast with the connect error; 0 = never.
        fail_fast_after: u32,
        /// Idle connections above `min_idle` close after this long.
        idle_timeout: Option<Duration>,
        /// Connections retire after this long (jittered), never in use.
        max_lifetime: Option<Duration>,
        /// Fraction of `max_lifetime` the expiry is spread over.
        max_lifetime_jitter: f64,
        /// Idle connections are validated this often.
        keepalive_interval: Option<Duration>,
        /// Connections held longer are reported as leaks.
        leak_detection_threshold: Option<Duration>,
        /// Whether `build` waits for `min_idle` connections.
        startup: crate::config::StartupMode,
        /// How long `Pool::close` waits for checked-out connections.
        close_timeout: Duration,
        /// Most connects in flight at once (connector threads).
        max_concurrent_connects: u32,
        /// Most validity checks in flight at once (checker threads).
        max_concurrent_validations: u32,
    }

    /// The pool's name (thread name, log field, metrics label).
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.overrides
            .push(("pool_name", Box::new(move |config| config.pool_name = name)));
        self
    }

    /// Drives time from `clock` instead of the system clock (tests; feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    pub fn clock(mut self, clock: std::sync::Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Runs no background thread; the caller drives background work with
    /// `Pool::run_background_step` (deterministic tests and loom models;
    /// feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn manual_background(mut self) -> Self {
        self.manual_background = true;
        self
    }

    /// With [`manual_background`](Self::manual_background): a stale checkout
    /// sends its connection to be checked by the next
    /// `Pool::run_background_step` (as the checker lane would) instead of
    /// checking it inline; validation deadlines are served by the step too.
    /// For models of the validation protocol (feature `test-util`).
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn queued_checks(mut self) -> Self {
        self.queued_checks = true;
        self
    }

    /// Measures the hold time of one checkout in `every` per slot, rounded
    /// up to a power of two (default 64; 1 measures every checkout at the
    /// cost of a precise clock read on each get and return).
    pub fn usage_sampling(mut self, every: u32) -> Self {
        self.usage_sampling = u64::from(every.max(1));
        self
    }

    /// The bucket bounds of the acquire-wait, usage and connect-time
    /// histograms (default: [`LatencyBuckets::DEFAULT_BOUNDS`](crate::stats::LatencyBuckets::DEFAULT_BOUNDS),
    /// 100 µs to 10 s). Fixed for the pool's life: a histogram whose buckets
    /// changed between scrapes would break `rate()` and `histogram_quantile()`.
    pub fn latency_buckets(mut self, buckets: crate::stats::LatencyBuckets) -> Self {
        self.buckets = buckets;
        self
    }

    /// Calls `events` on acquire, release, create, close, timeout and leak.
    pub fn event_handler(mut self, events: impl crate::events::PoolEvents) -> Self {
        self.events = Some(std::sync::Arc::new(events));
        self
    }

    /// The configuration this builder would build with: the base
    /// configuration, the explicit calls, then the derived defaults of
    /// whatever neither set (a base value that differs from the built-in
    /// default counts as set); validated.
    pub fn resolved_config(self) -> Result<PoolConfig, crate::ConfigError> {
        let mut config = self.config;
        let mut set = crate::config::differs_from_default(&config);
        for (name, apply) in self.overrides {
            apply(&mut config);
            set.push(name.to_owned());
        }
        config.derive_defaults(&|name| set.iter().any(|set| set == name));
        config.validate()?;
        Ok(config)
    }

    /// Validates the configuration, starts the dispatcher and returns the
    /// pool. With `min_idle > 0`, the pool starts filling at once.
    pub fn build(mut self, manager: M) -> Result<Pool<M>, BuildError<M::Error>> {
        let clock = match &self.clock {
            Some(manual) => Clock::manual(manual.clone()),
            None => Clock::system(),
        };
        // An async manager's calls are tasks the dispatcher starts: such a
        // pool always has one, even when asked for manual background.
        let manual = self.manual_background && manager.runtime().is_none();
        let options = Options {
            manual_background: manual,
            queued_checks: self.queued_checks,
            usage_sampling: self.usage_sampling,
            events: self.events.take(),
            buckets: std::mem::take(&mut self.buckets),
        };
        let config = self.resolved_config()?;
        let capacity = config.effective_capacity() as usize;
        let name = config.pool_name.clone();
        let min_idle = config.min_idle;
        let wait_for_min_idle = config.startup == crate::config::StartupMode::WaitForMinIdle;
        let connection_timeout = config.connection_timeout;
        let shared = Arc::new(Shared::new(manager, config, clock, capacity, options));
        if !manual {
            let dispatcher_shared = shared.clone();
            thread::Builder::new()
                .name(format!("slotpool-{name}"))
                .spawn(move || crate::background::run_dispatcher(dispatcher_shared))
                .map_err(BuildError::Spawn)?;
        }
        log!(info, pool = %name, capacity, "pool built");
        if min_idle > 0 {
            shared.background.request_connect();
        }
        let pool = Pool::from_shared(shared);
        if wait_for_min_idle && min_idle > 0 && !manual {
            // The pool starts with min_idle idle connections, or reports why
            // not within one connection_timeout (dropping it closes it).
            pool.shared()
                .wait_for_idle(min_idle as usize, connection_timeout)
                .map_err(BuildError::Startup)?;
        }
        Ok(pool)
    }
}

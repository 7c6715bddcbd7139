//! [`Builder`]: assembles a pool from a configuration and explicit settings.
//!
//! Owns: precedence between a [`PoolConfig`] and explicit builder calls, and
//! starting the worker. It may not hold pool protocols.

use std::marker::PhantomData;
use std::time::Duration;

use super::Pool;
use super::Shared;
use crate::clock::{Clock, ManualClock};
use crate::config::PoolConfig;
use crate::error::Error;
use crate::manager::Manager;
use crate::sync::{Arc, thread};

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
pub struct Builder<M: Manager> {
    config: PoolConfig,
    overrides: Vec<Override>,
    clock: Option<std::sync::Arc<ManualClock>>,
    manual_background: bool,
    usage_sampling: u64,
    events: Option<std::sync::Arc<dyn crate::events::PoolEvents>>,
    _manager: PhantomData<fn() -> M>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.overrides.push(Box::new(move |config| config.$name = value));
                self
            }
        )*
    };
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new() -> Self {
        Self {
            config: PoolConfig::default(),
            overrides: Vec::new(),
            clock: None,
            manual_background: false,
            usage_sampling: 64,
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
        /// How long `close_timeout`-style waits take by default.
        close_timeout: Duration,
    }

    /// The pool's name (thread name, log field, metrics label).
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.overrides
            .push(Box::new(move |config| config.pool_name = name));
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

    /// Measures the hold time of one checkout in `every` per slot, rounded
    /// up to a power of two (default 64; 1 measures every checkout at the
    /// cost of a precise clock read on each get and return).
    pub fn usage_sampling(mut self, every: u32) -> Self {
        self.usage_sampling = u64::from(every.max(1));
        self
    }

    /// Calls `events` on acquire, release, create, close, timeout and leak.
    pub fn event_handler(mut self, events: impl crate::events::PoolEvents) -> Self {
        self.events = Some(std::sync::Arc::new(events));
        self
    }

    /// The configuration this builder would build with, validated.
    pub fn resolved_config(self) -> Result<PoolConfig, crate::ConfigError> {
        let mut config = self.config;
        for apply in self.overrides {
            apply(&mut config);
        }
        config.validate()?;
        Ok(config)
    }

    /// Validates the configuration, starts the worker and returns the pool.
    /// With `min_idle > 0`, the worker starts filling at once.
    pub fn build(mut self, manager: M) -> Result<Pool<M>, Error<M::Error>> {
        let clock = match &self.clock {
            Some(manual) => Clock::manual(manual.clone()),
            None => Clock::system(),
        };
        let manual = self.manual_background;
        let usage_sampling = self.usage_sampling;
        let events = self.events.take();
        let config = self.resolved_config()?;
        let capacity = config.effective_capacity() as usize;
        let name = config.pool_name.clone();
        let min_idle = config.min_idle;
        let wait_for_min_idle = config.startup == crate::config::StartupMode::WaitForMinIdle;
        let connection_timeout = config.connection_timeout;
        let shared = Shared::new(
            manager,
            config,
            clock,
            capacity,
            manual,
            usage_sampling,
            events,
        );
        let shared = Arc::new(shared);
        if !manual {
            let worker_shared = shared.clone();
            thread::Builder::new()
                .name(format!("slotpool-{name}"))
                .spawn(move || crate::worker::run(worker_shared))
                .map_err(Error::WorkerSpawn)?;
        }
        tracing::info!(pool = %name, capacity, "pool built");
        if min_idle > 0 {
            shared.worker.request();
        }
        let pool = Pool::from_shared(shared);
        if wait_for_min_idle && min_idle > 0 && !manual {
            // The pool starts with min_idle idle connections, or reports why
            // not within one connection_timeout (dropping it closes it).
            pool.shared()
                .wait_for_idle(min_idle as usize, connection_timeout)?;
        }
        Ok(pool)
    }
}

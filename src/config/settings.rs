//! The configuration data model, [`PoolConfig`], with every default and
//! where it comes from, and its settings table.
//!
//! Owns: the pool's settings and their defaults. Backend settings (SQLite
//! pragmas, PostgreSQL options) belong to the backend crates, which nest
//! `PoolConfig` in their own configuration (see [`schema`](super::schema)).
//! It may not load or validate (see `load.rs` and `validate.rs`).

use std::time::Duration;

use super::enums::StartupMode;
use super::error::ConfigError;
use super::schema::{Setting, Settings};

/// Largest slot-array capacity a pool can be built with.
pub const MAX_CAPACITY: u32 = 65_536;

/// Smallest capacity chosen when `capacity` is unset (`"auto"`).
pub const AUTO_MIN_CAPACITY: u32 = 64;

/// All settings of one pool.
///
/// Build one with [`PoolConfig::default`] and field updates, or load one with
/// [`PoolConfig::load`] (defaults < file profile < `SLOTPOOL_*` variables).
/// Durations are written as humantime strings (`"30s"`, `"1h 30m"`); optional
/// durations also accept `"off"`, `"none"` or `"disabled"`. The serde impls
/// (feature `serde`) use the same spellings as the loader, and missing fields
/// take their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Name of the pool, used as a Prometheus label value and in background
    /// thread names: 1 to 64 characters from `[A-Za-z0-9_.-]`.
    /// Default: `"slotpool"`.
    pub pool_name: String,

    /// Most connections the pool holds, idle plus in use.
    /// Default: 10, as HikariCP's `maximumPoolSize` and r2d2's `max_size`;
    /// when not set, raised to `min_idle` and lowered to an explicit
    /// `capacity` (a derived default).
    pub max_size: u32,

    /// Idle connections the pool keeps open in the background, at most
    /// `max_size`. Default: 0, so the pool does no background connecting
    /// unless asked. HikariCP (whose `minimumIdle` defaults to
    /// `maximumPoolSize`) recommends a fixed-size pool, `min_idle = max_size`,
    /// for the best response to demand spikes.
    pub min_idle: u32,

    /// Size of the slot array, fixed when the pool is built; it bounds how far
    /// `max_size` can later be raised at run time. `None` (written `"auto"`)
    /// means `max(max_size, 64)`; when set it must be `>= max_size` and
    /// `<= 65_536`. Default: `None`.
    pub capacity: Option<u32>,

    /// How long `get()` waits for a connection before failing.
    /// Default: 30s, as HikariCP's `connectionTimeout` and r2d2's
    /// `connection_timeout`; twice an explicit `validation_timeout` of 15s or
    /// more when not set (a derived default).
    pub connection_timeout: Duration,

    /// How long a validity check may take before it is abandoned (its room
    /// freed for a replacement, the connection closed whenever the check
    /// returns); must be shorter than `connection_timeout`. Default: 5s, as
    /// HikariCP's `validationTimeout`, or half of `connection_timeout` when
    /// that is shorter than 10s and this is not set (a derived default).
    pub validation_timeout: Duration,

    /// A connection used this recently is handed out without a health check;
    /// 0 checks on every checkout. Default: 500ms, as HikariCP's
    /// `aliveBypassWindowMs`.
    pub validation_idle_window: Duration,

    /// Idle connections beyond `min_idle` are closed after this long; `None`
    /// (`"off"`) keeps them. Default: 10 minutes, as HikariCP's `idleTimeout`
    /// and r2d2's `idle_timeout`; off when not set and `max_lifetime` is not
    /// longer (a derived default, as HikariCP disables it).
    pub idle_timeout: Option<Duration>,

    /// Connections are retired after this long, when next idle; `None`
    /// (`"off"`) keeps them forever. Default: 30 minutes, as HikariCP's
    /// `maxLifetime` and r2d2's `max_lifetime`; when not set and an explicit
    /// `idle_timeout`, `keepalive_interval` or `leak_detection_threshold` is
    /// 30 minutes or more, twice the longest of them (a derived default).
    pub max_lifetime: Option<Duration>,

    /// Spread of connection expiry, as a fraction `j` of `max_lifetime`: each
    /// connection expires at a random point in `[L*(1-j), L]` so that
    /// connections opened together are not all replaced together. Must be in
    /// `[0, 0.5]`. Default: 0.025, HikariCP's up-to-2.5% lifetime variance.
    pub max_lifetime_jitter: f64,

    /// Idle connections are health-checked this often to keep them (and any
    /// firewall state) alive; `None` (`"off"`) disables it. Default: 2
    /// minutes, as HikariCP 5's `keepaliveTime`; off when not set and
    /// `max_lifetime` is not longer (a derived default, as in HikariCP).
    pub keepalive_interval: Option<Duration>,

    /// A connection held longer than this is reported as a possible leak;
    /// `None` (`"off"`) disables detection. Default: `None`, as HikariCP's
    /// `leakDetectionThreshold = 0`.
    pub leak_detection_threshold: Option<Duration>,

    /// Most callers that may wait in `get()` at once; beyond it `get()` fails
    /// at once. 0 means unlimited. Default: 0.
    pub max_waiters: u32,

    /// How long the oldest waiter may wait before returned connections are
    /// handed to it directly. Until then a connection a caller returns goes
    /// back idle and one waiter is woken to look for it, so a caller that is
    /// already running (often the one returning it) may take it first: no
    /// context switch per checkout when callers outnumber connections, at
    /// the price of order. Past it, returns hand connections to waiters in
    /// arrival order, which bounds every wait's tail. 0: always hand off
    /// (strict first come, first served). At most 1s. Default: 500us.
    pub hand_off_after: Duration,

    /// First delay between failed connection attempts; it doubles up to
    /// `connect_backoff_max`. Default: 100ms.
    pub connect_backoff_initial: Duration,

    /// Longest delay between failed connection attempts. Default: 10s, or
    /// `connect_backoff_initial` when that is longer and this is not set (a
    /// derived default).
    pub connect_backoff_max: Duration,

    /// After this many consecutive connection failures `get()` fails at once
    /// instead of waiting out `connection_timeout`, until a connection
    /// succeeds again; 0 never fails fast. Default: 5.
    pub fail_fast_after: u32,

    /// How long `Pool::close` waits for checked-out connections to come back
    /// before it reports how many are still out (they are closed when they
    /// return). Dropping the last handle waits for nothing. Default: 10s.
    pub close_timeout: Duration,

    /// What building the pool waits for. Default: [`StartupMode::Background`].
    /// Read when the pool is built; a later `reconfigure` keeps the value
    /// but nothing reads it again.
    pub startup: StartupMode,

    /// Most connects in flight at once: the connector threads. Default: 1,
    /// as HikariCP's single adder thread, so a burst grows the pool one
    /// connection at a time and each finished connect re-checks whether
    /// anyone still waits (HikariCP's spike test). Raise it when connects
    /// are slow and a cold pool must fill fast; a connect that hangs holds
    /// one of them.
    pub max_concurrent_connects: u32,

    /// Most validity checks in flight at once: the checker threads that run
    /// `is_valid` for stale checkouts and keepalives, so a hanging check
    /// delays no caller. Default: 4. A check that outlives
    /// `validation_timeout` is abandoned (its room freed) but holds its
    /// thread until it returns.
    pub max_concurrent_validations: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pool_name: "slotpool".to_owned(),
            max_size: 10,
            min_idle: 0,
            capacity: None,
            connection_timeout: Duration::from_secs(30),
            validation_timeout: Duration::from_secs(5),
            validation_idle_window: Duration::from_millis(500),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            max_lifetime_jitter: 0.025,
            keepalive_interval: Some(Duration::from_secs(2 * 60)),
            leak_detection_threshold: None,
            max_waiters: 0,
            hand_off_after: Duration::from_micros(500),
            connect_backoff_initial: Duration::from_millis(100),
            connect_backoff_max: Duration::from_secs(10),
            fail_fast_after: 5,
            close_timeout: Duration::from_secs(10),
            startup: StartupMode::Background,
            max_concurrent_connects: 1,
            max_concurrent_validations: 4,
        }
    }
}

impl PoolConfig {
    /// The slot-array capacity the pool is built with: `capacity`, or
    /// `max(max_size, 64)` when it is unset.
    #[must_use]
    pub fn effective_capacity(&self) -> u32 {
        self.capacity
            .unwrap_or_else(|| self.max_size.max(AUTO_MIN_CAPACITY))
    }
}

impl Settings for PoolConfig {
    fn settings() -> Vec<Setting<Self>> {
        crate::settings![PoolConfig;
            pool_name,
            max_size,
            min_idle,
            capacity,
            connection_timeout,
            validation_timeout,
            validation_idle_window,
            idle_timeout,
            max_lifetime,
            max_lifetime_jitter,
            keepalive_interval,
            leak_detection_threshold,
            max_waiters,
            hand_off_after,
            connect_backoff_initial,
            connect_backoff_max,
            fail_fast_after,
            close_timeout,
            startup,
            max_concurrent_connects,
            max_concurrent_validations,
        ]
    }

    fn problems(&self) -> Vec<ConfigError> {
        PoolConfig::problems(self)
    }

    fn derive_defaults(&mut self, is_set: &dyn Fn(&str) -> bool) -> Vec<super::Derived> {
        PoolConfig::derive_defaults(self, is_set)
    }
}

//! The configuration data model, [`PoolConfig`] and [`SqliteConfig`], with
//! every default and where it comes from.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::serde_via;
use super::enums::{JournalMode, Locking, StartupMode, Synchronous, TempStore};

/// Largest slot-array capacity a pool can be built with.
pub const MAX_CAPACITY: u32 = 65_536;

/// Smallest capacity chosen when `capacity` is unset (`"auto"`).
pub const AUTO_MIN_CAPACITY: u32 = 64;

/// All settings of one pool.
///
/// Build one with [`PoolConfig::default`] and field updates, or load one with
/// [`PoolConfig::load`] (defaults < file profile < `SLOTPOOL_*` variables).
/// Durations are written as humantime strings (`"30s"`, `"1h 30m"`); optional
/// durations also accept `"off"`, `"none"` or `"disabled"`. The serde impls use
/// the same spellings as the loader, and missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Name of the pool, used as a Prometheus label value and in background
    /// thread names: 1 to 64 characters from `[A-Za-z0-9_.-]`.
    /// Default: `"slotpool"`.
    pub pool_name: String,

    /// Most connections the pool holds, idle plus in use.
    /// Default: 10, as HikariCP's `maximumPoolSize` and r2d2's `max_size`.
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
    #[serde(with = "serde_via")]
    pub capacity: Option<u32>,

    /// How long `get()` waits for a connection before failing.
    /// Default: 30s, as HikariCP's `connectionTimeout` and r2d2's
    /// `connection_timeout`.
    #[serde(with = "serde_via")]
    pub connection_timeout: Duration,

    /// How long a connection health check may take; must be shorter than
    /// `connection_timeout`. Default: 5s, as HikariCP's `validationTimeout`.
    #[serde(with = "serde_via")]
    pub validation_timeout: Duration,

    /// A connection used this recently is handed out without a health check;
    /// 0 checks on every checkout. Default: 500ms, as HikariCP's
    /// `aliveBypassWindowMs`.
    #[serde(with = "serde_via")]
    pub validation_idle_window: Duration,

    /// Idle connections beyond `min_idle` are closed after this long; `None`
    /// (`"off"`) keeps them. Default: 10 minutes, as HikariCP's `idleTimeout`
    /// and r2d2's `idle_timeout`.
    #[serde(with = "serde_via")]
    pub idle_timeout: Option<Duration>,

    /// Connections are retired after this long, when next idle; `None`
    /// (`"off"`) keeps them forever. Default: 30 minutes, as HikariCP's
    /// `maxLifetime` and r2d2's `max_lifetime`.
    #[serde(with = "serde_via")]
    pub max_lifetime: Option<Duration>,

    /// Spread of connection expiry, as a fraction `j` of `max_lifetime`: each
    /// connection expires at a random point in `[L*(1-j), L]` so that
    /// connections opened together are not all replaced together. Must be in
    /// `[0, 0.5]`. Default: 0.025, HikariCP's up-to-2.5% lifetime variance.
    pub max_lifetime_jitter: f64,

    /// Idle connections are health-checked this often to keep them (and any
    /// firewall state) alive; `None` (`"off"`) disables it. Default: 2
    /// minutes, as HikariCP 5's `keepaliveTime`.
    #[serde(with = "serde_via")]
    pub keepalive_interval: Option<Duration>,

    /// A connection held longer than this is reported as a possible leak;
    /// `None` (`"off"`) disables detection. Default: `None`, as HikariCP's
    /// `leakDetectionThreshold = 0`.
    #[serde(with = "serde_via")]
    pub leak_detection_threshold: Option<Duration>,

    /// Most callers that may wait in `get()` at once; beyond it `get()` fails
    /// at once. 0 means unlimited. Default: 0.
    pub max_waiters: u32,

    /// First delay between failed connection attempts; it doubles up to
    /// `connect_backoff_max`. Default: 100ms.
    #[serde(with = "serde_via")]
    pub connect_backoff_initial: Duration,

    /// Longest delay between failed connection attempts. Default: 10s.
    #[serde(with = "serde_via")]
    pub connect_backoff_max: Duration,

    /// After this many consecutive connection failures `get()` fails at once
    /// instead of waiting out `connection_timeout`, until a connection
    /// succeeds again; 0 never fails fast. Default: 5.
    pub fail_fast_after: u32,

    /// How long closing the pool waits for checked-out connections to come
    /// back before closing the rest. Default: 10s.
    #[serde(with = "serde_via")]
    pub close_timeout: Duration,

    /// What building the pool waits for. Default: [`StartupMode::Background`].
    pub startup: StartupMode,

    /// SQLite connection settings (the `[sqlite]` table).
    pub sqlite: SqliteConfig,
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
            connect_backoff_initial: Duration::from_millis(100),
            connect_backoff_max: Duration::from_secs(10),
            fail_fast_after: 5,
            close_timeout: Duration::from_secs(10),
            startup: StartupMode::Background,
            sqlite: SqliteConfig::default(),
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

/// Settings of each SQLite connection the pool opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database to open: a file path, `":memory:"` (private to each
    /// connection, so rarely what a pool wants) or a URI such as
    /// `"file:name?mode=memory&cache=shared"` (one in-memory database shared
    /// by the pool's connections). Default: `"slotpool.db"`.
    pub path: String,

    /// `PRAGMA journal_mode`. Default: `wal`, so readers do not block the
    /// writer (SQLite's own default is `delete`).
    pub journal_mode: JournalMode,

    /// `PRAGMA synchronous`. Default: `normal`, corruption-safe in WAL mode and
    /// much faster than SQLite's default `full`.
    pub synchronous: Synchronous,

    /// `PRAGMA mmap_size` in bytes; 0 disables memory-mapped I/O. Default: 0,
    /// SQLite's own default (with mmap an I/O error becomes a signal instead of
    /// an error code); profiles may raise it, e.g. to 256 MiB.
    pub mmap_size: u64,

    /// `PRAGMA cache_size`: positive is pages, negative is KiB. Default: -2000
    /// (about 2 MB), SQLite's own default.
    pub cache_size: i64,

    /// `PRAGMA busy_timeout`: how long a statement waits for a lock held by
    /// another connection (millisecond precision). Default: 5s, as rusqlite.
    #[serde(with = "serde_via")]
    pub busy_timeout: Duration,

    /// `PRAGMA foreign_keys`. Default: true (SQLite's own default is off, for
    /// backward compatibility only).
    pub foreign_keys: bool,

    /// `PRAGMA temp_store`. Default: `memory`.
    pub temp_store: TempStore,

    /// Open connections read-only. Default: false.
    pub read_only: bool,

    /// How the database file is locked against other processes (the SQLite
    /// VFS it is opened with). Default: `shared`.
    ///
    /// * `shared`: SQLite's normal `unix` VFS. Other processes (the `sqlite3`
    ///   shell, backup tools, a second instance) may open the file at the
    ///   same time. In WAL mode each read transaction locks the `-shm` file
    ///   with `fcntl()` under a mutex that all of the process's connections
    ///   to the file share, so parallel readers wait for each other.
    /// * `process`: SQLite's `unix-excl` VFS. The connections of this
    ///   process share the file freely; once one of its read-write
    ///   connections has touched the database, every other process is
    ///   locked out (`SQLITE_BUSY`, "database is locked") until the last of
    ///   this process's connections to it closes. The WAL index lives in
    ///   heap memory: no `-shm` file, no `fcntl()` per read, and parallel
    ///   readers scale. The lock is an ordinary POSIX lock and goes away with
    ///   the process. Read-only connections share the lock of a read-write
    ///   connection open in the same process (as `SqlitePool`'s writer is);
    ///   on their own they lock as `shared` does. Only for a database file
    ///   no other process needs while this one runs. Unix only: validation
    ///   rejects it elsewhere.
    ///
    /// Ignored for in-memory databases (`":memory:"`,
    /// `file:NAME?mode=memory`), which have no file to lock. A `vfs=`
    /// parameter in a `file:` URI path takes precedence over it. Like `path`
    /// and `read_only`, it cannot change while a pool runs.
    pub locking: Locking,

    /// Prepared statements cached per connection; at most 10 000. Default: 64
    /// (rusqlite's default is 16; pooled connections live long and run the
    /// same statements, so a larger cache pays off).
    pub statement_cache_capacity: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: "slotpool.db".to_owned(),
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            mmap_size: 0,
            cache_size: -2000,
            busy_timeout: Duration::from_secs(5),
            foreign_keys: true,
            temp_store: TempStore::Memory,
            read_only: false,
            locking: Locking::Shared,
            statement_cache_capacity: 64,
        }
    }
}

impl SqliteConfig {
    /// The `PRAGMA` statements to run on each new connection, in order
    /// (`busy_timeout` first, so that switching the journal mode waits for
    /// locks). `read_only`, `locking` and `statement_cache_capacity` are not
    /// pragmas and are left to the connection opener.
    #[must_use]
    pub fn pragmas(&self) -> Vec<String> {
        let busy_ms = i64::try_from(self.busy_timeout.as_millis()).unwrap_or(i64::MAX);
        vec![
            format!("PRAGMA busy_timeout = {busy_ms}"),
            format!("PRAGMA journal_mode = {}", self.journal_mode.as_pragma()),
            format!("PRAGMA synchronous = {}", self.synchronous.as_pragma()),
            format!(
                "PRAGMA foreign_keys = {}",
                if self.foreign_keys { "ON" } else { "OFF" }
            ),
            format!("PRAGMA temp_store = {}", self.temp_store.as_pragma()),
            format!("PRAGMA mmap_size = {}", self.mmap_size),
            format!("PRAGMA cache_size = {}", self.cache_size),
        ]
    }
}

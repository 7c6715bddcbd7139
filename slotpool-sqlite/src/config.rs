//! SQLite settings: [`SqliteConfig`] (the `[sqlite]` section), its keyword
//! types, its validation rules, and [`Config`], which pairs it with the
//! pool's [`PoolConfig`] as deadpool-sqlite pairs `path` with `pool`.
//!
//! Owns: every SQLite-specific setting and rule. The pool core knows none of
//! them; `Config` joins the two tables so `config.toml` profiles keep one
//! `[profiles.<name>.sqlite]` section per profile, and `SLOTPOOL_SQLITE_*`
//! variables override it. It may not open connections.

use std::time::Duration;

use slotpool::config::schema::{Problems, SectionRules, Setting, Settings};
use slotpool::{ConfigError, PoolConfig};

/// Largest allowed `sqlite.statement_cache_capacity`.
pub const MAX_STATEMENT_CACHE_CAPACITY: u32 = 10_000;

/// A SQLite pool's whole configuration: the pool's settings (top level in
/// a profile) and the `[sqlite]` section.
///
/// ```
/// use slotpool_sqlite::Config;
///
/// let mut config = Config::default();
/// config.sqlite.path = "app.db".into();
/// config.pool.max_size = 4;
/// assert!(config.problems().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The pool's settings (`max_size`, timeouts, lifetimes, ...).
    pub pool: PoolConfig,
    /// How each SQLite connection is opened.
    pub sqlite: SqliteConfig,
}

slotpool::pool_and_section!(Config {
    pool,
    sqlite: SqliteConfig
});

/// No rule spans the pool's settings and the `[sqlite]` section.
impl SectionRules for SqliteConfig {}

impl Settings for SqliteConfig {
    fn settings() -> Vec<Setting<Self>> {
        slotpool::settings![SqliteConfig;
            path,
            journal_mode,
            synchronous,
            mmap_size,
            cache_size,
            busy_timeout,
            foreign_keys,
            temp_store,
            read_only,
            locking,
            statement_cache_capacity,
        ]
    }

    fn problems(&self) -> Vec<ConfigError> {
        let mut p = Problems::default();
        self.check(&mut p);
        p.into_vec()
    }
}

impl SqliteConfig {
    /// Every broken rule (empty when valid), each naming the setting
    /// (`sqlite.path`), its value and the rule.
    #[must_use]
    pub fn problems(&self) -> Vec<ConfigError> {
        <Self as Settings>::problems(self)
    }

    fn check(&self, p: &mut Problems) {
        p.require(!self.path.is_empty(), "sqlite.path", &self.path, || {
            "must not be empty".to_owned()
        });
        p.require(!self.path.contains('\0'), "sqlite.path", &self.path, || {
            "must not contain NUL characters".to_owned()
        });
        p.require(
            self.statement_cache_capacity <= MAX_STATEMENT_CACHE_CAPACITY,
            "sqlite.statement_cache_capacity",
            &self.statement_cache_capacity,
            || format!("must be <= {MAX_STATEMENT_CACHE_CAPACITY}"),
        );
        // SQLite takes these as signed integers.
        p.require(
            i64::try_from(self.mmap_size).is_ok(),
            "sqlite.mmap_size",
            &self.mmap_size,
            || format!("must be <= {}", i64::MAX),
        );
        p.require(
            self.busy_timeout.as_millis() <= i32::MAX as u128,
            "sqlite.busy_timeout",
            &self.busy_timeout,
            || format!("must be at most {} ms, SQLite's limit", i32::MAX),
        );
        p.require(
            cfg!(unix) || self.locking == Locking::Shared,
            "sqlite.locking",
            &self.locking,
            || {
                "\"process\" needs SQLite's unix-excl VFS, which exists only on unix; \
                 use \"shared\""
                    .to_owned()
            },
        );
    }
}

/// Settings of each SQLite connection the pool opens (the `[sqlite]`
/// section).
#[derive(Debug, Clone, PartialEq)]
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

slotpool::keyword_enum! {
    /// SQLite `PRAGMA journal_mode`. Default: [`JournalMode::Wal`].
    pub enum JournalMode {
        /// Delete the rollback journal after each transaction (SQLite's default).
        Delete = "delete",
        /// Truncate the rollback journal instead of deleting it.
        Truncate = "truncate",
        /// Keep the rollback journal and zero its header.
        Persist = "persist",
        /// Keep the rollback journal in memory (what in-memory databases use).
        Memory = "memory",
        /// Write-ahead log: readers do not block the writer. Default.
        #[default]
        Wal = "wal",
        /// No journal: a crash mid-transaction can corrupt the database.
        Off = "off",
    }
}

slotpool::keyword_enum! {
    /// SQLite `PRAGMA synchronous`. Default: [`Synchronous::Normal`].
    pub enum Synchronous {
        /// Never fsync: fastest, not durable across OS crashes or power loss.
        Off = "off",
        /// Fsync at checkpoints: safe from corruption in WAL mode, may lose the
        /// last transactions on power loss. Default.
        #[default]
        Normal = "normal",
        /// Fsync at every commit (SQLite's default).
        Full = "full",
        /// Like `full`, and also fsync the directory after unlinking a journal.
        Extra = "extra",
    }
}

slotpool::keyword_enum! {
    /// SQLite `PRAGMA temp_store`. Default: [`TempStore::Memory`].
    pub enum TempStore {
        /// Use the compile-time default (SQLite's default, usually file).
        Default = "default",
        /// Temporary tables and indices live in files.
        File = "file",
        /// Temporary tables and indices live in memory. Default.
        #[default]
        Memory = "memory",
    }
}

slotpool::keyword_enum! {
    /// How SQLite locks a database file against other processes (the VFS it
    /// is opened with). Default: [`Locking::Shared`].
    pub enum Locking {
        /// SQLite's normal `unix` VFS: other processes may open the file at
        /// the same time. In WAL mode every read transaction takes a lock on
        /// the `-shm` file with `fcntl()`. Default.
        #[default]
        Shared = "shared",
        /// SQLite's `unix-excl` VFS: the connections of this process share
        /// the file freely, and while one of its read-write connections is
        /// open every other process is locked out (`SQLITE_BUSY`). The WAL
        /// index lives in heap memory (no `-shm` file, no `fcntl()` per
        /// read). The lock goes away with the process. Unix only.
        Process = "process",
    }
}

impl Locking {
    /// The SQLite VFS a file database is opened with: `None` for SQLite's
    /// default VFS (`unix` on unix), `Some("unix-excl")` for
    /// [`Locking::Process`].
    #[must_use]
    pub const fn vfs(self) -> Option<&'static str> {
        match self {
            Self::Shared => None,
            Self::Process => Some("unix-excl"),
        }
    }
}

impl JournalMode {
    /// The value for `PRAGMA journal_mode = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::Persist => "PERSIST",
            Self::Memory => "MEMORY",
            Self::Wal => "WAL",
            Self::Off => "OFF",
        }
    }
}

impl Synchronous {
    /// The value for `PRAGMA synchronous = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

impl TempStore {
    /// The value for `PRAGMA temp_store = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::File => "FILE",
            Self::Memory => "MEMORY",
        }
    }
}

#[cfg(feature = "serde")]
slotpool::serde_via_settings!(Config, SqliteConfig);

#[cfg(feature = "serde")]
slotpool::serde_via_keyword!(JournalMode, Synchronous, TempStore, Locking);

#[cfg(feature = "config")]
slotpool::config_loaders!(Config {
    /// Loads defaults < file profile < `SLOTPOOL_*` overrides (pool settings
    /// at the top of each profile, SQLite's in its `sqlite` table), and
    /// validates. See `slotpool::config::load_with_sources` for how the file
    /// and profile are chosen.
    fn load;
    /// Loads `profile` from TOML text over the defaults, and validates.
    fn from_toml_str;
    /// The whole configuration as TOML: the pool's settings, then `[sqlite]`.
    fn to_toml_string;
});

//! [`SqlitePool`]: one writer connection and a pool of read-only readers
//! over one SQLite database.
//!
//! Owns: how a [`Config`] is split into a writer pool and a reader pool,
//! and the order they open in. It may not open connections itself.

use std::sync::Arc;
use std::time::Duration;

use slotpool::config::MAX_POOL_NAME_LEN;
use slotpool::{
    BuildError, CloseTimedOut, ConfigError, Error, Manager, Pool, PoolConfig, PooledConnection,
    State,
};

use crate::config::{Config, SqliteConfig};
use crate::error::SqliteError;
use crate::manager::SqliteManager;

/// A connection checked out of a [`SqlitePool`] (or any
/// `Pool<SqliteManager>`); derefs to [`rusqlite::Connection`].
pub type SqliteConnection<'a> = PooledConnection<'a, SqliteManager>;

/// A SQLite database behind two pools: exactly one read-write **writer**
/// connection and up to `max_size` read-only **readers**.
///
/// Why split them:
///
/// - SQLite allows one writer at a time per database. Several pooled
///   connections writing at once do not write in parallel; they collide on
///   the database lock and retry inside `busy_timeout` (a "`SQLITE_BUSY`
///   storm": sleeps, unfair wake-ups, and errors once the timeout passes).
///   With one writer connection, writers instead queue in the pool in FIFO
///   order and each finds the lock free.
/// - In WAL mode (the default `journal_mode`) readers do not block the writer
///   and the writer does not block readers, so a reader pool scales reads
///   across threads while a write is in progress.
/// - Read-only reader connections cannot write by accident.
///
/// The writer opens first (creating the file and switching it to WAL), so
/// readers never meet a missing file. `sqlite.read_only = true` opens the
/// writer read-only too (its writes then fail with `SQLITE_READONLY`).
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_sqlite::{Config, SqlitePool};

let dir = tempfile::tempdir().unwrap();
let mut config = Config::default();
config.sqlite.path = dir.path().join("app.db").display().to_string();
config.pool.max_size = 4; // readers
let pool = SqlitePool::new(config).unwrap();

pool.writer().unwrap().execute_batch(
    "CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);
     INSERT INTO kv VALUES ('hello', 'world');",
).unwrap();
let reader = pool.reader().unwrap();
let v: String = reader.query_row("SELECT v FROM kv WHERE k = 'hello'", [], |r| r.get(0)).unwrap();
assert_eq!(v, "world");
assert!(reader.execute_batch("DELETE FROM kv").is_err()); // read-only
```
"#
)]
#[derive(Debug, Clone)]
pub struct SqlitePool {
    writer: Pool<SqliteManager>,
    readers: Pool<SqliteManager>,
}

impl SqlitePool {
    /// Builds both pools from `config`: its `sqlite` section says which
    /// database and how to open it, `max_size` is the number of readers and
    /// `min_idle` (capped at `max_size`) how many readers stay open; the
    /// writer pool always holds its one connection open. The pools are named
    /// `<pool_name>-writer` and `<pool_name>-readers`.
    ///
    /// Opens the database once on the calling thread first, so a database
    /// that cannot be opened (missing directory, not a database, no
    /// permission) fails here at once with [`BuildError::Startup`] carrying
    /// [`Error::Connect`]; then waits up to `connection_timeout` for the
    /// writer pool's connection.
    pub fn new(config: Config) -> Result<Self, BuildError<SqliteError>> {
        config.validate()?;
        let Config { pool, sqlite } = config;
        let writer_config = writer_config(&pool);
        let name = writer_config.pool_name.clone();
        let manager = manager(&name, sqlite.clone())?;
        // Open the database once on this thread before any pool: a bad path
        // fails here at once with SQLite's own error, and the file exists in
        // WAL mode before a read-only reader (which can do neither) opens it.
        drop(
            manager
                .connect()
                .map_err(|source| connect_error(&name, source))?,
        );
        let writer = Pool::builder().config(writer_config).build(manager)?;
        // Keep the writer's connection open from the start.
        drop(writer.get().map_err(BuildError::Startup)?);

        let reader_config = reader_config(&pool);
        let manager = self::manager(&reader_config.pool_name, reader_settings(&sqlite))?;
        let readers = Pool::builder().config(reader_config).build(manager)?;
        Ok(Self { writer, readers })
    }

    /// A pool over the database file at `path` with the default
    /// configuration (10 readers).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, BuildError<SqliteError>> {
        let mut config = Config::default();
        config.sqlite.path = path.as_ref().to_string_lossy().into_owned();
        Self::new(config)
    }

    /// Applies a new configuration to both pools while they serve: the
    /// pool settings through [`Pool::reconfigure`] (the writer keeps its one
    /// connection), the `[sqlite]` settings through
    /// [`SqliteManager::reconfigure`] to connections opened from now on.
    /// Nothing changes when the configuration is invalid.
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        let Config { pool, sqlite } = config;
        // Pool names are fixed; keep the running ones.
        let mut writer_config = writer_config(&pool);
        writer_config.pool_name = self.writer.name().to_owned();
        let mut reader_config = reader_config(&pool);
        reader_config.pool_name = self.readers.name().to_owned();
        self.writer.manager().reconfigure(&sqlite);
        self.readers
            .manager()
            .reconfigure(&reader_settings(&sqlite));
        self.writer.reconfigure(writer_config)?;
        self.readers.reconfigure(reader_config)
    }

    /// The writer connection, waiting up to `connection_timeout` while
    /// another caller holds it (callers are served in FIFO order).
    pub fn writer(&self) -> Result<SqliteConnection<'_>, Error<SqliteError>> {
        self.writer.get()
    }

    /// The writer connection, waiting up to `timeout`.
    pub fn writer_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SqliteConnection<'_>, Error<SqliteError>> {
        self.writer.get_timeout(timeout)
    }

    /// A read-only connection, waiting up to `connection_timeout`.
    pub fn reader(&self) -> Result<SqliteConnection<'_>, Error<SqliteError>> {
        self.readers.get()
    }

    /// A read-only connection, waiting up to `timeout`.
    pub fn reader_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SqliteConnection<'_>, Error<SqliteError>> {
        self.readers.get_timeout(timeout)
    }

    /// The writer pool (`max_size` 1).
    #[must_use]
    pub fn writer_pool(&self) -> &Pool<SqliteManager> {
        &self.writer
    }

    /// The reader pool.
    #[must_use]
    pub fn reader_pool(&self) -> &Pool<SqliteManager> {
        &self.readers
    }

    /// Both pools' counts: `(writer, readers)`.
    #[must_use]
    pub fn state(&self) -> (State, State) {
        (self.writer.state(), self.readers.state())
    }

    /// Closes both pools (see [`Pool::close`]): both stop at once, then
    /// the drain of both shares one `close_timeout`.
    pub fn close(&self) -> Result<(), CloseTimedOut> {
        let timeout = self.readers.config().close_timeout;
        let started = std::time::Instant::now();
        let _ = self.readers.close_timeout(Duration::ZERO);
        let _ = self.writer.close_timeout(Duration::ZERO);
        self.readers.close_timeout(timeout)?;
        self.writer
            .close_timeout(timeout.saturating_sub(started.elapsed()))
    }
}

/// `base` + `suffix`, with `base` shortened so the result stays a valid
/// pool name.
fn pool_name(base: &str, suffix: &str) -> String {
    let keep = MAX_POOL_NAME_LEN.saturating_sub(suffix.len());
    let mut name: String = base.chars().take(keep).collect();
    name.push_str(suffix);
    name
}

/// The writer pool's settings: one connection, always open.
fn writer_config(pool: &PoolConfig) -> PoolConfig {
    PoolConfig {
        pool_name: pool_name(&pool.pool_name, "-writer"),
        max_size: 1,
        min_idle: 1,
        capacity: Some(1),
        ..pool.clone()
    }
}

/// The reader pool's settings: `max_size` readers, `min_idle` of them open.
fn reader_config(pool: &PoolConfig) -> PoolConfig {
    PoolConfig {
        pool_name: pool_name(&pool.pool_name, "-readers"),
        min_idle: pool.min_idle.min(pool.max_size),
        ..pool.clone()
    }
}

/// Readers open the database read-only.
fn reader_settings(sqlite: &SqliteConfig) -> SqliteConfig {
    SqliteConfig {
        read_only: true,
        ..sqlite.clone()
    }
}

fn manager(pool: &str, config: SqliteConfig) -> Result<SqliteManager, BuildError<SqliteError>> {
    SqliteManager::new(config).map_err(|source| connect_error(pool, source))
}

fn connect_error(pool: &str, source: SqliteError) -> BuildError<SqliteError> {
    BuildError::Startup(Error::Connect {
        pool: pool.into(),
        state: State::default(),
        source: Arc::new(source),
    })
}

//! [`SqliteManager`]: opens rusqlite connections as a [`SqliteConfig`] says,
//! and implements [`Manager`] for them.
//!
//! Owns: where a configured path points (file, shared in-memory database,
//! private in-memory database), the open flags and VFS, the per-connection
//! pragmas, and the checks the pool runs on checkout and return. It may not
//! know about pools.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::error::SqliteError;
use crate::config::{JournalMode, Locking, SqliteConfig};
use slotpool::{ErrorClass, Manager};

/// How [`SqliteConfig::pragmas`] spells the journal-mode statement.
const JOURNAL_MODE_PRAGMA: &str = "PRAGMA journal_mode";

/// What a configured `path` points at.
#[derive(Debug, Clone)]
enum Target {
    /// A database file.
    File(PathBuf),
    /// A `file:` URI naming a shared in-memory database
    /// (`file:NAME?mode=memory&cache=shared`).
    SharedMemory(String),
    /// Any other `file:` URI.
    Uri(String),
    /// `":memory:"`: a private database per connection.
    PrivateMemory,
}

impl Target {
    fn parse(path: &str) -> Self {
        if path == ":memory:" {
            Target::PrivateMemory
        } else if path.starts_with("file:") {
            let query = path.split_once('?').map_or("", |(_, query)| query);
            if query.split('&').any(|pair| pair == "mode=memory") {
                Target::SharedMemory(path.to_owned())
            } else {
                Target::Uri(path.to_owned())
            }
        } else {
            Target::File(PathBuf::from(path))
        }
    }

    fn is_memory(&self) -> bool {
        matches!(self, Target::SharedMemory(_) | Target::PrivateMemory)
    }

    /// The VFS to open this target with: `locking`'s for a file (or a
    /// `file:` URI naming one, whose own `vfs=` parameter SQLite lets win),
    /// SQLite's default for an in-memory database, which has no file to lock.
    fn vfs(&self, locking: Locking) -> Option<&'static str> {
        match self {
            Target::File(_) | Target::Uri(_) => locking.vfs(),
            Target::SharedMemory(_) | Target::PrivateMemory => None,
        }
    }
}

/// Opens SQLite connections (rusqlite, bundled SQLite) for a
/// [`Pool`](slotpool::Pool): a database file, or a named in-memory database
/// shared by all of the pool's connections.
///
/// Each new connection gets the [`SqliteConfig::pragmas`] (WAL, `synchronous
/// = NORMAL`, `busy_timeout`, ...; `journal_mode` is skipped on read-only and
/// in-memory connections, where it cannot apply), the read-only flag when
/// `read_only` is set, SQLite's `unix-excl` VFS for a file when `locking` is
/// `process`, and a prepared-statement cache of `statement_cache_capacity`.
/// On return to the pool, a transaction the borrower left open is rolled
/// back.
///
/// The pooled connection is a plain [`rusqlite::Connection`]. Because a
/// pool cannot see the errors a borrower met, [`Manager::has_broken`] always
/// reports `false`; after an error such as `SQLITE_CORRUPT`, call
/// [`PooledConnection::mark_broken`](slotpool::PooledConnection::mark_broken).
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::Pool;
use slotpool_sqlite::SqliteManager;

let dir = tempfile::tempdir().unwrap();
let manager = SqliteManager::file(dir.path().join("app.db"));
let pool = Pool::builder().max_size(4).build(manager).unwrap();

let conn = pool.get().unwrap();
conn.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
assert_eq!(mode, "wal");
```
"#
)]
pub struct SqliteManager {
    /// The settings the manager was built with. `path`, `read_only` and
    /// `locking` fix which database this is and how it is opened, and never
    /// change; the rest can be replaced by `Pool::reconfigure` (see
    /// `tuning`).
    config: SqliteConfig,
    target: Target,
    flags: OpenFlags,
    /// The VFS every connection is opened with; `None` is SQLite's default.
    vfs: Option<&'static str>,
    /// What each new connection is opened with: the per-connection settings
    /// of the configuration in force and the pragmas they produce. Swapped
    /// by `on_reconfigure`, so new settings apply to connections opened
    /// afterwards (open ones keep theirs until they retire).
    tuning: arc_swap::ArcSwap<Tuning>,
    /// Keeps a shared in-memory database alive while the pool holds no
    /// connection (SQLite frees it when its last connection closes). Never
    /// used; the mutex only makes the manager `Sync`.
    _anchor: Option<Mutex<Connection>>,
}

impl SqliteManager {
    /// A manager for `config`. For a shared in-memory database
    /// (`file:NAME?mode=memory&cache=shared`) this opens the anchor
    /// connection that keeps the database alive as long as the manager, so
    /// it can fail; for files nothing is opened until the pool connects.
    pub fn new(config: SqliteConfig) -> Result<Self, SqliteError> {
        let target = Target::parse(&config.path);
        let anchor = match &target {
            Target::SharedMemory(uri) => {
                // Read-write even for a read-only pool: the database must
                // exist before a read-only connection can attach to it.
                let anchor =
                    Connection::open_with_flags(uri, OpenFlags::default()).map_err(|source| {
                        SqliteError::Open {
                            path: config.path.clone(),
                            source,
                        }
                    })?;
                Some(Mutex::new(anchor))
            }
            _ => None,
        };
        Ok(Self::with_target(config, target, anchor))
    }

    /// A manager for the database file at `path` (created if missing), with
    /// the default [`SqliteConfig`] otherwise: WAL, `synchronous = NORMAL`, a
    /// 5 s `busy_timeout`, foreign keys on. Opens nothing until the pool
    /// connects, so it cannot fail.
    pub fn file(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let config = SqliteConfig {
            path: path.to_string_lossy().into_owned(),
            ..SqliteConfig::default()
        };
        // The path itself, not its lossy text, so non-UTF-8 paths open.
        Self::with_target(config, Target::File(path.to_path_buf()), None)
    }

    fn with_target(
        config: SqliteConfig,
        target: Target,
        anchor: Option<Mutex<Connection>>,
    ) -> Self {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        flags |= if config.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
        let tuning = Tuning::new(&config, &target);
        let vfs = target.vfs(config.locking);
        Self {
            config,
            target,
            flags,
            vfs,
            tuning: arc_swap::ArcSwap::from_pointee(tuning),
            _anchor: anchor,
        }
    }

    /// A manager for the in-memory database `name`, shared by every
    /// connection this manager opens (`file:NAME?mode=memory&cache=shared`)
    /// and kept alive as long as the manager. The journal lives in memory.
    ///
    /// Shared-cache connections lock per table rather than through
    /// `busy_timeout`: a reader meeting an uncommitted write fails at once
    /// with `SQLITE_LOCKED`. Use a file database for concurrent writers.
    ///
    #[cfg_attr(
        not(feature = "loom"),
        doc = r#"
```
use slotpool::Pool;
use slotpool_sqlite::SqliteManager;

let pool = Pool::builder()
    .max_size(2)
    .build(SqliteManager::memory("doc_example").unwrap())
    .unwrap();
let a = pool.get().unwrap();
let b = pool.get().unwrap(); // a second connection, same database
a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42)").unwrap();
let x: i64 = b.query_row("SELECT x FROM t", [], |row| row.get(0)).unwrap();
assert_eq!(x, 42);
```
"#
    )]
    pub fn memory(name: &str) -> Result<Self, SqliteError> {
        Self::new(SqliteConfig {
            path: format!("file:{name}?mode=memory&cache=shared"),
            journal_mode: JournalMode::Memory,
            ..SqliteConfig::default()
        })
    }

    /// The configuration connections are opened with.
    #[must_use]
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    /// The statements run on each new connection, in order.
    #[must_use]
    pub fn pragmas(&self) -> Vec<String> {
        self.tuning.load().pragmas.clone()
    }

    /// Opens and configures one connection, outside any pool (what the pool
    /// runs on its worker for every new connection).
    fn open(&self) -> Result<Connection, SqliteError> {
        let path = &self.config.path;
        let open_error = |source| SqliteError::Open {
            path: path.clone(),
            source,
        };
        let conn = match &self.target {
            Target::File(file) => {
                check_directory(path, file)?;
                self.open_file(file).map_err(open_error)?
            }
            Target::Uri(uri) => self.open_file(uri).map_err(open_error)?,
            Target::SharedMemory(uri) => {
                Connection::open_with_flags(uri, self.flags).map_err(open_error)?
            }
            Target::PrivateMemory => {
                Connection::open_in_memory_with_flags(self.flags).map_err(open_error)?
            }
        };
        let tuning = self.tuning.load();
        for statement in &tuning.pragmas {
            conn.execute_batch(statement)
                .map_err(|source| SqliteError::Setup {
                    path: path.clone(),
                    statement: statement.clone(),
                    source,
                })?;
        }
        if tuning
            .pragmas
            .iter()
            .any(|p| p.starts_with(JOURNAL_MODE_PRAGMA))
        {
            self.check_journal_mode(&conn, &tuning.settings)?;
        }
        conn.set_prepared_statement_cache_capacity(
            tuning.settings.statement_cache_capacity as usize,
        );
        Ok(conn)
    }

    /// Opens a file (or a `file:` URI) with the flags and the VFS.
    fn open_file(&self, file: impl AsRef<Path>) -> rusqlite::Result<Connection> {
        match self.vfs {
            Some(vfs) => Connection::open_with_flags_and_vfs(file, self.flags, vfs),
            None => Connection::open_with_flags(file, self.flags),
        }
    }

    /// SQLite answers a journal-mode change it cannot make (WAL on some
    /// network file systems) with the mode it kept, not an error: say so.
    fn check_journal_mode(
        &self,
        conn: &Connection,
        settings: &SqliteConfig,
    ) -> Result<(), SqliteError> {
        let statement = "PRAGMA journal_mode";
        let mode: String = conn
            .query_row(statement, [], |row| row.get(0))
            .map_err(|source| SqliteError::Setup {
                path: self.config.path.clone(),
                statement: statement.to_owned(),
                source,
            })?;
        let wanted = settings.journal_mode.as_str();
        if !mode.eq_ignore_ascii_case(wanted) {
            tracing::warn!(
                path = %self.config.path,
                wanted,
                actual = %mode,
                "SQLite kept a different journal mode than configured"
            );
        }
        Ok(())
    }
}

/// The per-connection settings in force and the pragmas they produce.
struct Tuning {
    settings: SqliteConfig,
    pragmas: Vec<String>,
}

impl Tuning {
    fn new(settings: &SqliteConfig, target: &Target) -> Self {
        let skip_journal_mode = settings.read_only || target.is_memory();
        let pragmas = settings
            .pragmas()
            .into_iter()
            .filter(|pragma| !(skip_journal_mode && pragma.starts_with(JOURNAL_MODE_PRAGMA)))
            .collect();
        Self {
            settings: settings.clone(),
            pragmas,
        }
    }
}

/// SQLite reports a missing directory as a bare "unable to open database
/// file"; name the directory instead.
fn check_directory(path: &str, file: &Path) -> Result<(), SqliteError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(SqliteError::MissingDirectory {
                path: path.to_owned(),
                directory: dir.display().to_string(),
            })
        }
        _ => Ok(()),
    }
}

impl std::fmt::Debug for SqliteManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteManager")
            .field("path", &self.config.path)
            .field("read_only", &self.config.read_only)
            .field("locking", &self.config.locking)
            .finish_non_exhaustive()
    }
}

impl Manager for SqliteManager {
    type Connection = Connection;
    type Error = SqliteError;

    /// Opens the database and applies the pragmas, the statement-cache size
    /// and the read-only flag.
    fn connect(&self) -> Result<Connection, SqliteError> {
        self.open()
    }

    /// `SELECT 1` through the statement cache: a few microseconds.
    fn is_valid(&self, conn: &mut Connection) -> Result<(), SqliteError> {
        conn.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?;
        Ok(())
    }

    /// Always `false`: the pool cannot see a borrower's errors; borrowers
    /// call `mark_broken` after a fatal one.
    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }

    /// Rolls back a transaction the borrower left open, so the next borrower
    /// never sees (or commits) its uncommitted writes.
    fn reset(&self, conn: &mut Connection) -> Result<(), SqliteError> {
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    fn classify(&self, error: &SqliteError) -> ErrorClass {
        error.class()
    }
}

impl SqliteManager {
    /// New `[sqlite]` settings apply to connections opened from now on
    /// (open ones keep theirs until they retire). `path`, `read_only` and
    /// `locking` name the database itself and how it is opened, and cannot
    /// change under a running pool: a different value is ignored, with a
    /// warning. [`SqlitePool::reconfigure`](crate::SqlitePool::reconfigure)
    /// calls this for both of its pools.
    pub fn reconfigure(&self, settings: &SqliteConfig) {
        let mut settings = settings.clone();
        if settings.path != self.config.path
            || settings.read_only != self.config.read_only
            || settings.locking != self.config.locking
        {
            tracing::warn!(
                path = %self.config.path,
                "sqlite.path, sqlite.read_only and sqlite.locking cannot change while the pool runs; kept"
            );
            settings.path.clone_from(&self.config.path);
            settings.read_only = self.config.read_only;
            settings.locking = self.config.locking;
        }
        self.tuning
            .store(std::sync::Arc::new(Tuning::new(&settings, &self.target)));
    }
}

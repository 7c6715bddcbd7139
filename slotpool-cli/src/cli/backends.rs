//! The benchmark's variants: how each gets a connection for one operation,
//! and the operations themselves (the same SQL for every variant).
//!
//! Owns: the schema and statements of `bench`, and the variants `unpooled`,
//! `slotpool` and `r2d2`. It may not time or report anything.

use rusqlite::Connection;
use slotpool::Manager;
use slotpool_sqlite::{Config, SqliteConfig};
use slotpool_sqlite::{SqliteError, SqliteManager, SqlitePool};

use super::error::CliError;

/// The table reads pick rows from; spelled out in the statements below so
/// they are constants (no formatting per operation).
const ITEMS: &str = "slotpool_bench_items";
const READ_SQL: &str = "SELECT id, name, value FROM slotpool_bench_items WHERE id = ?1";
const WRITE_SQL: &str = "INSERT INTO slotpool_bench_log (item, at) VALUES (?1, ?2)";

/// Creates the tables and fills the items table up to `rows` rows.
pub fn seed(conn: &Connection, rows: u32) -> Result<(), SqliteError> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {ITEMS} (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             value INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS slotpool_bench_log (
             id INTEGER PRIMARY KEY,
             item INTEGER NOT NULL,
             at INTEGER NOT NULL
         );"
    ))?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut insert = conn.prepare(&format!(
            "INSERT OR IGNORE INTO {ITEMS} (id, name, value) VALUES (?1, ?2, ?3)"
        ))?;
        for id in 1..=i64::from(rows) {
            insert.execute(rusqlite::params![id, format!("item-{id}"), id * 7])?;
        }
        Ok::<_, rusqlite::Error>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
    }
    Ok(())
}

/// One read: the row with primary key `id`, through the statement cache.
pub fn read(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(READ_SQL)?;
    stmt.query_row([id], |row| {
        let _value: i64 = row.get(2)?;
        Ok(())
    })
}

/// One write: an `INSERT` in its own (autocommit) transaction.
pub fn write(conn: &Connection, item: i64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(WRITE_SQL)?;
    stmt.execute([item, item.wrapping_mul(31)])?;
    Ok(())
}

/// How a variant gets the connection for one operation.
pub trait Backend: Sync {
    /// Runs `op` on a reading connection.
    fn with_reader(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError>;
    /// Runs `op` on a writing connection.
    fn with_writer(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError>;
}

/// Why one operation failed.
#[derive(Debug)]
pub enum OpError {
    /// The database was busy or locked past `busy_timeout`: counted, not fatal.
    Busy,
    /// Anything else: ends the run.
    Fatal(CliError),
}

impl From<rusqlite::Error> for OpError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                OpError::Busy
            }
            _ => OpError::Fatal(CliError::Database(error.into())),
        }
    }
}

impl From<SqliteError> for OpError {
    fn from(error: SqliteError) -> Self {
        match error {
            SqliteError::Sqlite(error) => error.into(),
            other => OpError::Fatal(other.into()),
        }
    }
}

/// A connection opened (and configured with the pragmas) for every
/// operation, by the same code the pool runs on connect.
pub struct Unpooled {
    reader: SqliteManager,
    writer: SqliteManager,
}

impl Unpooled {
    /// Openers for `sqlite`'s database: read-only for reads, as the pool's
    /// readers are.
    pub fn new(sqlite: &SqliteConfig) -> Result<Self, CliError> {
        let reader = SqliteManager::new(SqliteConfig {
            read_only: true,
            ..sqlite.clone()
        })?;
        Ok(Self {
            reader,
            writer: SqliteManager::new(sqlite.clone())?,
        })
    }
}

impl Backend for Unpooled {
    fn with_reader(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.reader.connect()?;
        Ok(op(&conn)?)
    }

    fn with_writer(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.writer.connect()?;
        Ok(op(&conn)?)
    }
}

/// slotpool's [`SqlitePool`]: one writer, `max_size` readers.
pub struct Slotpool(pub SqlitePool);

impl Slotpool {
    /// Builds the pool (opening the writer).
    pub fn new(config: Config) -> Result<Self, CliError> {
        Ok(Self(SqlitePool::new(config)?))
    }
}

fn pool_error(error: slotpool::Error<SqliteError>) -> OpError {
    OpError::Fatal(error.into())
}

impl Backend for Slotpool {
    fn with_reader(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.0.reader().map_err(pool_error)?;
        Ok(op(&conn)?)
    }

    fn with_writer(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.0.writer().map_err(pool_error)?;
        Ok(op(&conn)?)
    }
}

/// [`SqliteManager`] as an r2d2 manager: connections are opened exactly as
/// slotpool opens them (flags, `sqlite.locking`'s VFS, pragmas), so only the
/// pools differ.
struct R2d2Manager(SqliteManager);

impl r2d2::ManageConnection for R2d2Manager {
    type Connection = Connection;
    type Error = SqliteError;

    fn connect(&self) -> Result<Connection, SqliteError> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), SqliteError> {
        self.0.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.0.has_broken(conn)
    }
}

/// r2d2 pools shaped like [`SqlitePool`]: a writer pool of one connection
/// and a read-only reader pool of `max_size`, with r2d2's other defaults.
pub struct R2d2 {
    writer: r2d2::Pool<R2d2Manager>,
    readers: r2d2::Pool<R2d2Manager>,
}

impl R2d2 {
    /// Builds both pools (r2d2 opens `min_idle = max_size` connections at
    /// once by default).
    pub fn new(config: &Config) -> Result<Self, CliError> {
        let writer = r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(config.pool.connection_timeout)
            .build(R2d2Manager(SqliteManager::new(config.sqlite.clone())?))?;
        let readers = r2d2::Pool::builder()
            .max_size(config.pool.max_size)
            .connection_timeout(config.pool.connection_timeout)
            .build(R2d2Manager(SqliteManager::new(SqliteConfig {
                read_only: true,
                ..config.sqlite.clone()
            })?))?;
        Ok(Self { writer, readers })
    }
}

impl Backend for R2d2 {
    fn with_reader(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.readers.get().map_err(|e| OpError::Fatal(e.into()))?;
        Ok(op(&conn)?)
    }

    fn with_writer(
        &self,
        op: &mut dyn FnMut(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), OpError> {
        let conn = self.writer.get().map_err(|e| OpError::Fatal(e.into()))?;
        Ok(op(&conn)?)
    }
}

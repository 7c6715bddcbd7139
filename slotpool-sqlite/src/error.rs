//! [`SqliteError`]: what opening, configuring and checking a SQLite
//! connection fails with, and how the pool should treat each failure.
//!
//! Owns: error messages that name the database file, and the
//! transient/permanent classification. It may not open connections.

use rusqlite::ErrorCode;

use slotpool::ErrorClass;

/// An error from [`SqliteManager`](super::SqliteManager). Every variant that
/// comes from opening or configuring a connection names the database, so the
/// message alone tells a user which file is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The database's directory does not exist (or is not a directory), so
    /// SQLite cannot create the file (SQLite itself would only say "unable to
    /// open database file").
    #[error("cannot open SQLite database `{path}`: `{directory}` is not an existing directory")]
    MissingDirectory {
        /// The database path as configured.
        path: String,
        /// The directory that is missing.
        directory: String,
    },
    /// SQLite could not open the database.
    #[error("cannot open SQLite database `{path}`: {source}")]
    Open {
        /// The database path as configured.
        path: String,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// The database opened, but a setup statement failed. A file that is not
    /// an SQLite database fails here (SQLite reads the file lazily), with
    /// `SQLITE_NOTADB`.
    #[error("cannot set up SQLite database `{path}` ({statement}): {source}")]
    Setup {
        /// The database path as configured.
        path: String,
        /// The statement that failed, e.g. `PRAGMA journal_mode = WAL`.
        statement: String,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A check or reset on an open connection failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl SqliteError {
    /// The underlying rusqlite error, if any.
    #[must_use]
    pub fn sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            SqliteError::MissingDirectory { .. } => None,
            SqliteError::Open { source, .. } | SqliteError::Setup { source, .. } => Some(source),
            SqliteError::Sqlite(source) => Some(source),
        }
    }

    /// SQLite's primary result code behind this error, if any (e.g.
    /// [`ErrorCode::NotADatabase`]).
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SqliteError::MissingDirectory { .. } => Some(ErrorCode::CannotOpen),
            _ => self.sqlite().and_then(rusqlite::Error::sqlite_error_code),
        }
    }

    /// Whether retrying the connect can help. Permanent: the file cannot be
    /// opened or created (`SQLITE_CANTOPEN`, a missing directory), is not a
    /// database (`SQLITE_NOTADB`) or is corrupt (`SQLITE_CORRUPT`), access is
    /// denied (`SQLITE_PERM`, `SQLITE_AUTH`, `SQLITE_READONLY` while
    /// opening), or the path itself is unusable. Everything else (a lock held
    /// too long, an I/O hiccup, out of memory) is transient.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        let connecting = matches!(
            self,
            SqliteError::MissingDirectory { .. }
                | SqliteError::Open { .. }
                | SqliteError::Setup { .. }
        );
        if let Some(
            rusqlite::Error::InvalidPath(_)
            | rusqlite::Error::NulError(_)
            | rusqlite::Error::SqliteSingleThreadedMode,
        ) = self.sqlite()
        {
            return ErrorClass::Permanent;
        }
        match self.code() {
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::PermissionDenied
                | ErrorCode::AuthorizationForStatementDenied,
            ) => ErrorClass::Permanent,
            Some(ErrorCode::ReadOnly) if connecting => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        }
    }
}

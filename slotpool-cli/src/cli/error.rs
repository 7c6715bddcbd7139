//! [`CliError`]: every way a command can fail, rendered as one line.
//!
//! Owns: the user-facing wording of failures and the exit code. It may not
//! run commands.

use std::path::PathBuf;
use std::process::ExitCode;

use slotpool::ConfigError;
use slotpool_postgres::PgError;
use slotpool_postgres::tokio_postgres;
use slotpool_sqlite::SqliteError;

/// A command failed; `main` prints it as `slotpool: <message>` and exits 1
/// (2 for a [`Usage`](CliError::Usage) error).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration could not be loaded.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The database could not be opened, set up or used.
    #[error("{0}")]
    Database(#[from] SqliteError),
    /// A pool operation failed (timeout, closed, connect failure).
    /// (No `#[source]`: the message already includes the cause.)
    #[error("{}", pool_message(.0))]
    Pool(slotpool::Error<SqliteError>),
    /// A pool could not be built (configuration, thread, first connection).
    /// (No `#[source]`: the message already includes the cause.)
    #[error("{}", build_message(.0))]
    Build(slotpool::BuildError<SqliteError>),
    /// PostgreSQL could not be reached, set up or used (`bench --backend
    /// postgres`). Names the server and user, never a password.
    #[error("{0}")]
    Postgres(#[from] PgError),
    /// A PostgreSQL pool operation failed.
    #[error("{}", pool_message(.0))]
    PgPool(slotpool::Error<PgError>),
    /// A PostgreSQL pool could not be built.
    #[error("{}", build_message(.0))]
    PgBuild(slotpool::BuildError<PgError>),
    /// The tokio runtime for `bench --backend postgres` could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Arguments that parse but do not go together (exit code 2, as
    /// clap's usage errors).
    #[error("{0} (see --help)")]
    Usage(String),
    /// An r2d2 pool failed (`bench --compare r2d2`).
    #[error("r2d2: {0}")]
    R2d2(#[from] r2d2::Error),
    /// A file could not be written or created.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A temporary directory could not be created.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// JSON output could not be produced.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The plot could not be drawn.
    #[error("cannot draw `{}`: {message}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
    /// A benchmark worker thread panicked.
    #[error("a benchmark worker panicked")]
    WorkerPanicked,
    /// `config check` found problems (already printed, one per line).
    #[error("{problems} problem(s) in `{}`", path.display())]
    CheckFailed {
        /// The file checked.
        path: PathBuf,
        /// How many problems were printed.
        problems: usize,
    },
}

impl CliError {
    /// The message and its causes on one line.
    pub fn one_line(&self) -> String {
        one_line(self)
    }

    /// The process exit code for this error: 2 for a usage error, else 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// A connect failure is reported as the database's error alone; the pool's
/// counts at that moment only distract. A timeout while connecting failed
/// names that error after the timeout.
fn pool_message<E: std::error::Error + 'static>(error: &slotpool::Error<E>) -> String {
    match error {
        slotpool::Error::Connect { source, .. } => source.to_string(),
        slotpool::Error::TimedOut {
            last_connect_error: Some(cause),
            ..
        } => format!("{error}: {cause}"),
        other => other.to_string(),
    }
}

/// A build failure: the configuration's, the thread's or the first
/// connection's error.
fn build_message<E: std::error::Error + 'static>(error: &slotpool::BuildError<E>) -> String {
    match error {
        slotpool::BuildError::Config(error) => format!("configuration: {error}"),
        slotpool::BuildError::Startup(error) => pool_message(error),
        other => match std::error::Error::source(other) {
            Some(cause) => format!("{other}: {cause}"),
            None => other.to_string(),
        },
    }
}

/// `error` and its cause chain on one line, without repeating a cause that
/// a message already includes.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // rusqlite's own causes repeat its message as "Error code N: ...";
        // PgError's messages already describe tokio-postgres's causes
        // (SQLSTATE, server message, I/O error), which would repeat them
        // as "db error: FATAL: ...".
        if cause.is::<rusqlite::Error>() || cause.is::<tokio_postgres::Error>() {
            break;
        }
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    flatten(&line)
}

/// A multi-line message (TOML errors quote the offending line with a
/// gutter and caret) as one line: the text lines joined, the quote dropped.
fn flatten(message: &str) -> String {
    let is_quote = |line: &str| {
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        line.starts_with('|')
    };
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_quote(line))
        .collect::<Vec<_>>()
        .join(": ")
}

impl From<slotpool::Error<SqliteError>> for CliError {
    fn from(error: slotpool::Error<SqliteError>) -> Self {
        CliError::Pool(error)
    }
}

impl From<slotpool::BuildError<SqliteError>> for CliError {
    fn from(error: slotpool::BuildError<SqliteError>) -> Self {
        CliError::Build(error)
    }
}

impl From<slotpool::Error<PgError>> for CliError {
    fn from(error: slotpool::Error<PgError>) -> Self {
        CliError::PgPool(error)
    }
}

impl From<slotpool::BuildError<PgError>> for CliError {
    fn from(error: slotpool::BuildError<PgError>) -> Self {
        CliError::PgBuild(error)
    }
}

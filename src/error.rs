//! The pool's error type.
//!
//! Owns: [`Error`]. It may not hold pool logic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigError;
use crate::pool::State;

/// Everything a pool operation can fail with. `E` is the manager's error,
/// kept typed (behind an `Arc`, because one connect failure may be reported
/// to many waiters).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection within the deadline. Carries the last connect error when
    /// connecting has been failing, so a database outage is not disguised as
    /// a bare timeout.
    TimedOut {
        /// The pool's name.
        pool: Arc<str>,
        /// How long the caller waited.
        waited: Duration,
        /// The pool's state when the wait ended.
        state: State,
        /// The latest connect failure, if connecting failed since the last success.
        last_connect_error: Option<Arc<E>>,
    },
    /// Connecting failed and the pool will not keep trying for this caller
    /// (a permanent error, or fail-fast after repeated failures).
    Connect {
        /// The pool's name.
        pool: Arc<str>,
        /// The pool's state at the failure.
        state: State,
        /// What the manager reported.
        source: Arc<E>,
    },
    /// The pool was closed (or every handle dropped).
    Closed {
        /// The pool's name.
        pool: Arc<str>,
    },
    /// `try_get` found no idle connection.
    NoIdle {
        /// The pool's name.
        pool: Arc<str>,
        /// The pool's state.
        state: State,
    },
    /// `max_waiters` callers already wait; this one was turned away at once.
    TooManyWaiters {
        /// The pool's name.
        pool: Arc<str>,
        /// The `max_waiters` setting.
        limit: u32,
        /// The pool's state.
        state: State,
    },
    /// `close_timeout` passed with connections still checked out.
    CloseTimedOut {
        /// The pool's name.
        pool: Arc<str>,
        /// How long `close_timeout` waited.
        waited: Duration,
        /// Connections not yet returned.
        in_use: u32,
    },
    /// The pool's background thread could not be started.
    WorkerSpawn(std::io::Error),
    /// The configuration was rejected.
    Config(ConfigError),
}

impl<E: std::error::Error + 'static> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TimedOut {
                pool,
                waited,
                state,
                last_connect_error,
            } => write!(
                f,
                "pool '{pool}': no connection available, request timed out after {waited:?} ({state}){}",
                cause_suffix(last_connect_error.as_deref())
            ),
            Error::Connect {
                pool,
                state,
                source,
            } => write!(f, "pool '{pool}': connecting failed ({state}): {source}"),
            Error::Closed { pool } => write!(f, "pool '{pool}' is closed"),
            Error::NoIdle { pool, state } => {
                write!(f, "pool '{pool}': no idle connection ({state})")
            }
            Error::TooManyWaiters { pool, limit, state } => write!(
                f,
                "pool '{pool}': {limit} callers already waiting, the max_waiters limit ({state})"
            ),
            Error::CloseTimedOut {
                pool,
                waited,
                in_use,
            } => write!(
                f,
                "pool '{pool}': closed, but {in_use} connections were still in use after {waited:?}"
            ),
            Error::WorkerSpawn(error) => {
                write!(f, "could not start the pool's worker thread: {error}")
            }
            Error::Config(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::TimedOut {
                last_connect_error, ..
            } => last_connect_error
                .as_deref()
                .map(|error| error as &(dyn std::error::Error + 'static)),
            Error::Connect { source, .. } => Some(&**source),
            Error::WorkerSpawn(error) => Some(error),
            // `transparent`: the configuration error stands for itself.
            Error::Config(error) => error.source(),
            _ => None,
        }
    }
}

impl<E: std::error::Error + 'static> From<ConfigError> for Error<E> {
    fn from(error: ConfigError) -> Self {
        Error::Config(error)
    }
}

fn cause_suffix<E: fmt::Display>(cause: Option<&E>) -> String {
    match cause {
        Some(cause) => format!("; last connect error: {cause}"),
        None => String::new(),
    }
}

impl<E: std::error::Error + 'static> Error<E> {
    /// The manager's error behind this one, if any.
    pub fn connect_error(&self) -> Option<&E> {
        match self {
            Error::TimedOut {
                last_connect_error, ..
            } => last_connect_error.as_deref(),
            Error::Connect { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether this is [`Error::TimedOut`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    /// Whether this is [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }
}

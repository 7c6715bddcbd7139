//! The pool's error types, one per kind of call, so a `match` on an error
//! lists only what that call can return.
//!
//! Owns: [`Error`] (a get that waits), [`TryGetError`] (`try_get`),
//! [`BuildError`] (`Builder::build`) and [`CloseTimedOut`] (`close`). It
//! may not hold pool logic.
//!
//! Each error names its pool. A cause (the manager's connect error) is
//! given once, by [`std::error::Error::source`], and never repeated in
//! `Display`, so an error chain printed by `anyhow`, `eyre` or a logger
//! shows it once; [`Error::connect_error`] returns it typed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigError;
use crate::pool::State;

/// Why a get that may wait (`get`, `get_timeout`, `get_owned`,
/// `get_async`) failed. `E` is the manager's error, kept typed (behind an
/// `Arc`, because one connect failure may be reported to many waiters).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection within the deadline. When connecting had been failing,
    /// the last connect error is the [`source`](std::error::Error::source),
    /// so a database outage is not disguised as a bare timeout.
    TimedOut {
        /// The pool's name.
        pool: Arc<str>,
        /// How long the caller waited.
        waited: Duration,
        /// The pool's state when the wait ended.
        state: State,
        /// The latest connect failure, if connecting failed since the last
        /// success.
        last_connect_error: Option<Arc<E>>,
    },
    /// Connecting failed and the pool will not keep this caller waiting: a
    /// permanent error, or `fail_fast_after` failures in a row with nothing
    /// open. The manager's error is the source.
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
    /// `max_waiters` callers already wait; this one was turned away at once.
    TooManyWaiters {
        /// The pool's name.
        pool: Arc<str>,
        /// The `max_waiters` setting.
        limit: u32,
        /// The pool's state.
        state: State,
    },
}

impl<E: std::error::Error + 'static> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TimedOut {
                pool,
                waited,
                state,
                last_connect_error,
            } => {
                write!(
                    f,
                    "pool '{pool}': no connection available, request timed out after {waited:?} ({state})"
                )?;
                if last_connect_error.is_some() {
                    f.write_str(" while connecting was failing")?;
                }
                Ok(())
            }
            Error::Connect { pool, state, .. } => {
                write!(f, "pool '{pool}': connecting failed ({state})")
            }
            Error::Closed { pool } => write!(f, "pool '{pool}' is closed"),
            Error::TooManyWaiters { pool, limit, state } => write!(
                f,
                "pool '{pool}': {limit} callers already waiting, the max_waiters limit ({state})"
            ),
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
            Error::Closed { .. } | Error::TooManyWaiters { .. } => None,
        }
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

/// Why `try_get` returned no connection. It never waits, so it never times
/// out and never reports a connect error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryGetError {
    /// Nothing was idle (the pool then opens one in the background if it
    /// has room). Built from two counters: no slot is scanned to report it.
    NoIdle {
        /// The pool's name.
        pool: Arc<str>,
        /// Connections open, being opened or being checked.
        open: u32,
        /// The `max_size` in force.
        max_size: u32,
    },
    /// The pool was closed.
    Closed {
        /// The pool's name.
        pool: Arc<str>,
    },
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::NoIdle {
                pool,
                open,
                max_size,
            } => write!(
                f,
                "pool '{pool}': no idle connection ({open} of {max_size} open)"
            ),
            TryGetError::Closed { pool } => write!(f, "pool '{pool}' is closed"),
        }
    }
}

impl std::error::Error for TryGetError {}

impl TryGetError {
    /// Whether this is [`TryGetError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, TryGetError::Closed { .. })
    }
}

/// Why `Builder::build` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError<E: std::error::Error + 'static> {
    /// The configuration was rejected.
    Config(ConfigError),
    /// A background thread could not be started.
    Spawn(std::io::Error),
    /// `startup = "wait_for_min_idle"`: `min_idle` connections could not be
    /// opened within `connection_timeout`.
    Startup(Error<E>),
}

impl<E: std::error::Error + 'static> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(error) => fmt::Display::fmt(error, f),
            BuildError::Spawn(_) => f.write_str("could not start the pool's dispatcher thread"),
            BuildError::Startup(_) => f.write_str("the pool could not open min_idle connections"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BuildError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The configuration error stands for itself.
            BuildError::Config(error) => error.source(),
            BuildError::Spawn(error) => Some(error),
            BuildError::Startup(error) => Some(error),
        }
    }
}

impl<E: std::error::Error + 'static> From<ConfigError> for BuildError<E> {
    fn from(error: ConfigError) -> Self {
        BuildError::Config(error)
    }
}

impl<E: std::error::Error + 'static> BuildError<E> {
    /// The manager's error behind this one, if any.
    pub fn connect_error(&self) -> Option<&E> {
        match self {
            BuildError::Startup(error) => error.connect_error(),
            _ => None,
        }
    }
}

/// `close` waited its whole timeout and connections were still checked out
/// (or their closes still running). The pool is closed all the same: they
/// are closed when they come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseTimedOut {
    /// The pool's name.
    pub pool: Arc<str>,
    /// How long `close` waited.
    pub waited: Duration,
    /// Connections still checked out (or being checked) when it gave up.
    pub in_use: u32,
    /// Connections out of the pool whose close had not finished (a close
    /// that blocks).
    pub closing: u32,
}

impl fmt::Display for CloseTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool '{}': closed, but after {:?} {} connections were still in use and {} still closing",
            self.pool, self.waited, self.in_use, self.closing
        )
    }
}

impl std::error::Error for CloseTimedOut {}

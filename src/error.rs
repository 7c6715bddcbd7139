//! The pool's error type and the state snapshot it reports.
//!
//! Owns: [`Error`] and [`State`]. It may not hold pool logic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigError;

/// A snapshot of the pool's counts (r2d2's names where they exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct State {
    /// Connections open or being opened (`idle + in_use + connecting`).
    pub connections: u32,
    /// Connections nobody uses.
    pub idle_connections: u32,
    /// Connections handed to a caller (or reserved by maintenance).
    pub in_use: u32,
    /// Connections being opened.
    pub connecting: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// The `max_size` in force.
    pub max_size: u32,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total={}, idle={}, in use={}, connecting={}, waiting={}, max={}",
            self.connections,
            self.idle_connections,
            self.in_use,
            self.connecting,
            self.waiting,
            self.max_size
        )
    }
}

/// Everything a pool operation can fail with. `E` is the manager's error,
/// kept typed (behind an `Arc`, because one connect failure may be reported
/// to many waiters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection within the deadline. Carries the last connect error when
    /// connecting has been failing, so a database outage is not disguised as
    /// a bare timeout.
    #[error(
        "pool '{pool}': no connection available, request timed out after {waited:?} ({state}){}",
        cause_suffix(.last_connect_error.as_deref())
    )]
    TimedOut {
        /// The pool's name.
        pool: Arc<str>,
        /// How long the caller waited.
        waited: Duration,
        /// The pool's state when the wait ended.
        state: State,
        /// The latest connect failure, if connecting failed since the last success.
        #[source]
        last_connect_error: Option<Arc<E>>,
    },
    /// Connecting failed and the pool will not keep trying for this caller
    /// (a permanent error, or fail-fast after repeated failures).
    #[error("pool '{pool}': connecting failed ({state}): {source}")]
    Connect {
        /// The pool's name.
        pool: Arc<str>,
        /// The pool's state at the failure.
        state: State,
        /// What the manager reported.
        #[source]
        source: Arc<E>,
    },
    /// The pool was closed (or every handle dropped).
    #[error("pool '{pool}' is closed")]
    Closed {
        /// The pool's name.
        pool: Arc<str>,
    },
    /// `try_get` found no idle connection.
    #[error("pool '{pool}': no idle connection ({state})")]
    NoIdle {
        /// The pool's name.
        pool: Arc<str>,
        /// The pool's state.
        state: State,
    },
    /// `max_waiters` callers already wait; this one was turned away at once.
    #[error("pool '{pool}': {limit} callers already waiting, the max_waiters limit ({state})")]
    TooManyWaiters {
        /// The pool's name.
        pool: Arc<str>,
        /// The `max_waiters` setting.
        limit: u32,
        /// The pool's state.
        state: State,
    },
    /// `close_timeout` passed with connections still checked out.
    #[error("pool '{pool}': closed, but {in_use} connections were still in use after {waited:?}")]
    CloseTimedOut {
        /// The pool's name.
        pool: Arc<str>,
        /// How long `close_timeout` waited.
        waited: Duration,
        /// Connections not yet returned.
        in_use: u32,
    },
    /// The pool's background thread could not be started.
    #[error("could not start the pool's worker thread: {0}")]
    WorkerSpawn(#[source] std::io::Error),
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
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

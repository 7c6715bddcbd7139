//! [`ListenerError`]: what a [`Listener`](super::Listener) fails with, and
//! the two gaps it reports (a reconnect, a full buffer).
//!
//! Owns: the error type and its messages (the server as `host:port/dbname`,
//! never a password). It may not decide when to reconnect.

use std::time::Duration;

use crate::error::{PgError, describe};

/// An error from a [`Listener`](super::Listener).
///
/// Two variants are not failures but **gaps**, reported so that a caller
/// never misses notifications silently: [`Reconnected`](Self::Reconnected)
/// and [`Lagged`](Self::Lagged). After either, the listener goes on
/// working; call `recv` again. [`is_gap`](Self::is_gap) tells them apart
/// from the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// The settings say `pooler = "transaction"`: PgBouncer in transaction
    /// mode hands each transaction to any server connection, so a `LISTEN`
    /// would stay on a server connection other clients get, and
    /// notifications would reach whichever client holds it. Build the
    /// listener from settings that name the server itself (`pooler =
    /// "none"`, its own host and port).
    #[error(
        "a Listener cannot work through {target} with postgres.pooler = \"transaction\": LISTEN \
         is session state, and a transaction-mode pooler gives each transaction any server \
         connection; connect the listener to the PostgreSQL server directly (pooler = \"none\", \
         the server's own host and port)"
    )]
    Pooler {
        /// `host:port/dbname` of the pooler.
        target: String,
    },

    /// The channel name cannot be listened to (nothing was sent).
    #[error("channel name {channel:?}: {reason}")]
    InvalidChannel {
        /// The name given.
        channel: String,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// Connecting failed: invalid settings, TLS set-up, the credentials
    /// provider, the connect itself or `connect_timeout`. From
    /// [`ListenerBuilder::connect`](super::ListenerBuilder::connect), or
    /// from `recv` when reconnecting met an error retrying cannot fix (a
    /// refused login, a missing database); `recv` tries again when called
    /// again.
    #[error(transparent)]
    Connect(#[from] PgError),

    /// `LISTEN`, `UNLISTEN` or `UNLISTEN *` was refused by the server; the
    /// set of channels is unchanged.
    #[error("{command} failed on {target}: {}", describe(.source))]
    Command {
        /// The statement, with its quoted channel name.
        command: String,
        /// `host:port/dbname`.
        target: String,
        /// tokio-postgres's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// **A gap.** The connection was lost and has been re-established, and
    /// every channel listened to again: notifications sent between the
    /// loss and the new `LISTEN`s were not received (the server keeps none
    /// for a session that is gone). Re-read whatever state they were
    /// about, then go on calling `recv`.
    #[error(
        "the listener's connection to {target} was lost ({cause}) and re-established after \
         {down_for:?} ({attempts} attempts), listening on {channels} channels again: \
         notifications sent meanwhile may have been lost"
    )]
    Reconnected {
        /// `host:port/dbname`.
        target: String,
        /// Why the old connection ended.
        cause: String,
        /// From noticing the loss to listening again.
        down_for: Duration,
        /// Connects tried, the successful one included.
        attempts: u32,
        /// Channels listened to again.
        channels: usize,
    },

    /// **A gap.** The caller read too slowly: the buffer held `capacity`
    /// notifications, and `missed` more arrived at this point and were
    /// dropped. The notifications before and after it are delivered.
    #[error(
        "{missed} notifications were dropped because the listener's buffer ({capacity}) was \
         full: call recv more often or raise ListenerBuilder::capacity"
    )]
    Lagged {
        /// Notifications dropped at this point.
        missed: u64,
        /// The buffer's capacity.
        capacity: usize,
    },

    /// From [`try_recv`](super::Listener::try_recv): the connection is
    /// lost and nothing is buffered. `try_recv` cannot wait, so it does not
    /// reconnect: `recv` does (and then reports
    /// [`Reconnected`](Self::Reconnected)).
    #[error("the listener's connection to {target} is lost ({cause}); recv reconnects")]
    Disconnected {
        /// `host:port/dbname`.
        target: String,
        /// Why the connection ended.
        cause: String,
    },
}

impl ListenerError {
    /// Whether this reports notifications possibly missed
    /// ([`Reconnected`](Self::Reconnected), [`Lagged`](Self::Lagged)) and
    /// the listener goes on working, rather than a failure.
    #[must_use]
    pub fn is_gap(&self) -> bool {
        matches!(self, Self::Reconnected { .. } | Self::Lagged { .. })
    }
}

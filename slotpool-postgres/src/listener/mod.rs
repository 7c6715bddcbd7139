//! [`Listener`]: PostgreSQL `LISTEN`/`NOTIFY` on a dedicated connection
//! that reconnects by itself and says when notifications may have been
//! missed.
//!
//! Owns: the listener's session (its connection, the set of channels, the
//! reconnect loop and the gap it reports). It may not touch the pool or
//! its connections, and it changes nothing in how the manager connects: it
//! reuses the crate's settings-to-target, TLS and credentials code.
//!
//! | file | what it owns |
//! |------|--------------|
//! | `mod.rs` | [`Listener`]: `listen`, `unlisten`, `recv`, `try_recv`, the reconnect loop |
//! | `session.rs` | [`ListenerBuilder`], the pooler refusal, one connect |
//! | `queue.rs` | the task reading the connection, the bounded buffer |
//! | `channel.rs` | channel-name rules and quoting |
//! | `error.rs` | [`ListenerError`] |
//!
//! # Design
//!
//! * **A dedicated connection, not a pooled one.** `LISTEN` is session
//!   state: a pooled connection is reset on return (`UNLISTEN *` is in the
//!   clean-up batch) and shared between borrowers, and the pool drives its
//!   connections as plain futures, which drop notifications. The listener
//!   opens its own connection from the same settings as the pool
//!   (`PgConfig`, the crate's `Config`'s `postgres`, a connection string,
//!   or a `tokio_postgres::Config`), with the same TLS, credentials
//!   provider and `connect_timeout`, and drives it itself with
//!   `Connection::poll_message`, which is what hands out notifications.
//! * **Behind PgBouncer in transaction mode it refuses**
//!   ([`ListenerError::Pooler`]), rather than taking a second, direct url:
//!   the caller gives it a `PgConfig` naming the server itself (with
//!   `pooler = "none"`). One rule, no setting that is silently ignored in
//!   one mode.
//! * **Channel names** are any text up to 63 bytes, sent as quoted
//!   identifiers (`"` doubled), never formatted raw: case, spaces, quotes
//!   and unicode are kept, and they match `pg_notify('name', ..)`.
//! * **Reconnects.** When the connection ends (a server restart,
//!   `pg_terminate_backend`, a network failure), `recv` first hands out
//!   what was already buffered, then reconnects (the first attempt at
//!   once, then with doubling waits capped by
//!   [`ListenerBuilder::reconnect_backoff`]), issues `LISTEN` for every
//!   channel in the set, and only then returns
//!   [`ListenerError::Reconnected`]: **a gap**. Notifications sent while
//!   no session was listening are lost for good (PostgreSQL keeps them for
//!   live listeners only), so the caller must re-read whatever state they
//!   describe. A notification sent after that `Err` was returned is
//!   received. A reconnect that meets an error retrying cannot fix (a
//!   refused login, a missing database, bad settings) is returned as
//!   [`ListenerError::Connect`]; other failures (refused TCP, a server
//!   still starting up) are retried and logged.
//! * **Cancel safety.** A task reads the connection and moves
//!   notifications into the listener's buffer as they arrive; `recv` only
//!   takes from that buffer, synchronously, once it has one to return. A
//!   `recv` dropped mid-wait (`tokio::time::timeout`, `select!`) therefore
//!   loses nothing, and one dropped mid-reconnect leaves the gap pending:
//!   the next `recv` finishes the reconnect and reports it.
//! * **Backpressure: a bounded buffer that drops and reports.** The task
//!   keeps reading the socket whether or not the caller calls `recv`: a
//!   session that stops reading blocks its server process, which holds back
//!   the server's shared notification queue for *every* session (once it
//!   is full, all `NOTIFY`s fail), and would also stall this listener's own
//!   `LISTEN` replies. So the buffer holds at most
//!   [`ListenerBuilder::capacity`] notifications (default 10 000); beyond
//!   that new ones are dropped and counted, and `recv` reports
//!   [`ListenerError::Lagged`] at the point where they were dropped, after
//!   the ones buffered before them. Memory stays bounded; a caller that
//!   never reads loses notifications, but is told.
//! * After `unlisten`, `recv` skips anything still buffered for that
//!   channel, so the set of channels is the truth.
//!
//! # Example
//!
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```no_run
use slotpool_postgres::{Listener, ListenerError};

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), ListenerError> {
let mut listener = Listener::from_connection_string("postgresql://app@db.internal/app").await?;
listener.listen("orders").await?;
listener.listen("Order Events ✓").await?; // any text: sent quoted
loop {
    match listener.recv().await {
        Ok(n) => println!("{} from pid {}: {}", n.channel(), n.process_id(), n.payload()),
        // Reconnected or Lagged: some notifications may be gone. Re-read
        // the state they were about, then go on.
        Err(gap) if gap.is_gap() => eprintln!("{gap}; resynchronising"),
        Err(error) => return Err(error),
    }
}
# }
```
"#
)]

mod channel;
mod error;
mod queue;
mod session;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Notification};

pub use channel::MAX_CHANNEL_LEN;
pub use error::ListenerError;
use queue::{Item, Next, Queue};
use session::Connector;
pub use session::{DEFAULT_LISTENER_CAPACITY, ListenerBuilder};

use crate::error::PgError;
use crate::pg_config::PgConfig;

/// A `LISTEN`/`NOTIFY` session on its own connection (the design, with
/// its trade-offs, is in the README's "LISTEN/NOTIFY" section and
/// `src/listener/mod.rs`): listen to channels, then `recv`
/// notifications ([`tokio_postgres::Notification`]: channel, payload, the
/// sender's process id). It reconnects by itself and reports each gap.
///
/// Build one with [`Listener::connect`] (a [`PgConfig`], e.g. the crate's
/// `Config::postgres`), [`Listener::from_connection_string`], or
/// [`ListenerBuilder`] for credentials providers, buffer size and backoff.
pub struct Listener {
    connector: Connector,
    channels: BTreeSet<String>,
    /// `None` once the connection was found lost, until `recv` reconnects.
    live: Option<Live>,
    /// The loss `recv` has yet to report.
    gap: Option<Gap>,
    /// Notifications dropped by earlier connections' full buffers.
    dropped_before: u64,
}

/// One open connection.
pub(crate) struct Live {
    client: Client,
    queue: Arc<Queue>,
    process_id: i32,
}

struct Gap {
    cause: String,
    since: Instant,
    attempts: u32,
}

impl Listener {
    fn new(connector: Connector, live: Live) -> Self {
        Self {
            connector,
            channels: BTreeSet::new(),
            live: Some(live),
            gap: None,
            dropped_before: 0,
        }
    }

    /// Connects to the server `config` names, with its TLS, credentials and
    /// `connect_timeout` ([`ListenerBuilder::new`] with the defaults). With
    /// `pooler = "transaction"` it refuses ([`ListenerError::Pooler`]).
    pub async fn connect(config: PgConfig) -> Result<Self, ListenerError> {
        ListenerBuilder::new(config).connect().await
    }

    /// Connects as a libpq connection string says (either form, as
    /// [`PgConfig::from_connection_string`] reads it).
    pub async fn from_connection_string(text: &str) -> Result<Self, ListenerError> {
        let config = PgConfig::from_connection_string(text).map_err(PgError::from)?;
        Self::connect(config).await
    }

    /// Starts listening to `channel` (any text up to
    /// [`MAX_CHANNEL_LEN`] bytes; sent as a quoted identifier). Listening
    /// to a channel already in the set sends nothing. If the connection is
    /// found lost, the channel joins the set and `recv`'s reconnect listens
    /// to it (after which `recv` reports the gap).
    pub async fn listen(&mut self, channel: &str) -> Result<(), ListenerError> {
        channel::check(channel)?;
        if self.channels.contains(channel) {
            return Ok(());
        }
        self.run(format!("LISTEN {}", channel::quoted(channel)))
            .await?;
        self.channels.insert(channel.to_owned());
        Ok(())
    }

    /// [`listen`](Self::listen) to each of `channels`, in order; stops at
    /// the first error.
    pub async fn listen_all<'a>(
        &mut self,
        channels: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ListenerError> {
        for channel in channels {
            self.listen(channel).await?;
        }
        Ok(())
    }

    /// Stops listening to `channel`; from now on `recv` returns nothing from
    /// it, even what was already buffered. Not listening to it is no error.
    pub async fn unlisten(&mut self, channel: &str) -> Result<(), ListenerError> {
        if !self.channels.contains(channel) {
            return Ok(());
        }
        self.run(format!("UNLISTEN {}", channel::quoted(channel)))
            .await?;
        self.channels.remove(channel);
        Ok(())
    }

    /// Stops listening to every channel (`UNLISTEN *`).
    pub async fn unlisten_all(&mut self) -> Result<(), ListenerError> {
        self.run("UNLISTEN *".to_owned()).await?;
        self.channels.clear();
        Ok(())
    }

    /// The channels listened to, in byte order.
    pub fn channels(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.channels.iter().map(String::as_str)
    }

    /// Whether `channel` is in the set.
    #[must_use]
    pub fn is_listening(&self, channel: &str) -> bool {
        self.channels.contains(channel)
    }

    /// The server process of the current connection (`pg_backend_pid()`),
    /// or `None` while it is found lost and not yet replaced. It changes on
    /// every reconnect.
    #[must_use]
    pub fn process_id(&self) -> Option<i32> {
        self.live.as_ref().map(|live| live.process_id)
    }

    /// Notifications buffered, waiting for `recv`.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.live.as_ref().map_or(0, |live| live.queue.len())
    }

    /// Notifications dropped because the buffer was full, in total since
    /// the listener was built (each drop is also reported in order by
    /// `recv` as [`ListenerError::Lagged`]); for monitoring.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_before + self.live.as_ref().map_or(0, |live| live.queue.dropped())
    }

    /// The server as `host:port/dbname`.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.connector.target.name
    }

    /// The next notification on a channel in the set, waiting for one.
    ///
    /// Reconnects when the connection was lost, and then returns
    /// [`ListenerError::Reconnected`]; returns [`ListenerError::Lagged`]
    /// where the buffer overflowed. Both are gaps
    /// ([`ListenerError::is_gap`]): call `recv` again. Cancel-safe (see the
    /// module docs): bound it with `tokio::time::timeout` freely.
    pub async fn recv(&mut self) -> Result<Notification, ListenerError> {
        loop {
            let Some(live) = &self.live else {
                return Err(self.reconnect().await);
            };
            let queue = live.queue.clone();
            match self.take(&queue) {
                Some(result) => return result,
                None if self.live.is_some() => queue.wait().await,
                None => {}
            }
        }
    }

    /// The next buffered notification, without waiting: `Ok(None)` when
    /// none is buffered. Never reconnects: with the connection lost and the
    /// buffer drained it returns [`ListenerError::Disconnected`] until a
    /// `recv` reconnects.
    pub fn try_recv(&mut self) -> Result<Option<Notification>, ListenerError> {
        let Some(live) = &self.live else {
            return Err(self.disconnected());
        };
        let queue = live.queue.clone();
        match self.take(&queue) {
            Some(result) => result.map(Some),
            None if self.live.is_some() => Ok(None),
            None => Err(self.disconnected()),
        }
    }

    /// Takes from `queue` until something is for the caller: a
    /// notification on a listened channel or a lagged marker. `None` when
    /// the queue is empty, after recording the loss (`live = None`) if the
    /// connection has ended.
    fn take(&mut self, queue: &Queue) -> Option<Result<Notification, ListenerError>> {
        loop {
            match queue.pop() {
                Next::Item(Item::Notification(n)) if self.channels.contains(n.channel()) => {
                    return Some(Ok(n));
                }
                Next::Item(Item::Notification(_)) => {}
                Next::Item(Item::Lagged(missed)) => {
                    return Some(Err(ListenerError::Lagged {
                        missed,
                        capacity: queue.capacity(),
                    }));
                }
                Next::Empty => return None,
                Next::Closed(cause) => {
                    tracing::warn!(
                        server = %self.connector.target.name,
                        cause = %cause,
                        channels = self.channels.len(),
                        "the PostgreSQL listener's connection was lost; reconnecting"
                    );
                    self.dropped_before += queue.dropped();
                    self.live = None;
                    self.gap = Some(Gap {
                        cause,
                        since: Instant::now(),
                        attempts: 0,
                    });
                    return None;
                }
            }
        }
    }

    fn disconnected(&self) -> ListenerError {
        ListenerError::Disconnected {
            target: self.connector.target.name.clone(),
            cause: self
                .gap
                .as_ref()
                .map_or_else(String::new, |gap| gap.cause.clone()),
        }
    }

    /// Reconnects until it works or meets an error retrying cannot fix;
    /// the gap to report, or that error. Progress is kept in `self.gap`,
    /// so a dropped call is resumed by the next.
    async fn reconnect(&mut self) -> ListenerError {
        loop {
            let attempt = {
                let gap = self.gap.get_or_insert_with(|| Gap {
                    cause: "unknown".to_owned(),
                    since: Instant::now(),
                    attempts: 0,
                });
                gap.attempts += 1;
                gap.attempts
            };
            let wait = self.connector.backoff(attempt);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            match self.connector.open(&self.channels).await {
                Ok(live) => {
                    self.live = Some(live);
                    let gap = self.gap.take().expect("set above");
                    let error = ListenerError::Reconnected {
                        target: self.connector.target.name.clone(),
                        cause: gap.cause,
                        down_for: gap.since.elapsed(),
                        attempts: gap.attempts,
                        channels: self.channels.len(),
                    };
                    tracing::info!(
                        server = %self.connector.target.name,
                        error = %error,
                        "the PostgreSQL listener reconnected"
                    );
                    return error;
                }
                Err(error) if gives_up(&error) => {
                    tracing::warn!(
                        server = %self.connector.target.name,
                        error = %error,
                        attempt,
                        "the PostgreSQL listener cannot reconnect; recv returns the error"
                    );
                    return ListenerError::Connect(error);
                }
                Err(error) => {
                    tracing::warn!(
                        server = %self.connector.target.name,
                        error = %error,
                        attempt,
                        "the PostgreSQL listener failed to reconnect; retrying"
                    );
                }
            }
        }
    }

    /// Runs `sql` on the live connection. A connection found closed is no
    /// error: the caller updates the set, and the reconnect applies it.
    async fn run(&mut self, sql: String) -> Result<(), ListenerError> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        match live.client.batch_execute(&sql).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_closed() || live.client.is_closed() => Ok(()),
            Err(source) => Err(ListenerError::Command {
                command: sql,
                target: self.connector.target.name.clone(),
                source,
            }),
        }
    }
}

/// Whether a reconnect error will not go away by retrying: the settings,
/// TLS set-up, no runtime, or the server refusing the login or database.
/// Everything else (refused TCP, a server still starting, a timeout, a
/// failing credentials provider) is retried.
fn gives_up(error: &PgError) -> bool {
    match error {
        PgError::Config(_) | PgError::Tls { .. } | PgError::NoTokioRuntime => true,
        _ => error.code().is_some_and(|code| {
            code.code().starts_with("28") || *code == SqlState::INVALID_CATALOG_NAME
        }),
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("target", &self.connector.target.name)
            .field("channels", &self.channels)
            .field("process_id", &self.process_id())
            .field("buffered", &self.buffered())
            .field("connected", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

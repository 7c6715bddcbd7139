//! [`ListenerBuilder`], and opening one listener connection: what the
//! builder resolves once (server, TLS, credentials provider, bounds) and
//! each connect, first or reconnect.
//!
//! Owns: turning the pool's settings into a listener's, the pooler-mode
//! refusal, and one connect (credentials, TLS, `connect_timeout` around
//! the whole thing, the connection's task, `LISTEN` for every channel). It
//! may not decide when to reconnect (`mod.rs` does).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::channel::quoted;
use super::error::ListenerError;
use super::queue::{self, Queue};
use super::{Listener, Live};
use crate::credentials::{Credentials, CredentialsProvider, StaticCredentials};
use crate::error::PgError;
use crate::login::{self, Login};
use crate::manager::PgManager;
use crate::pg_config::PgConfig;
use crate::target::{self, Target};
use crate::{pooler, tls};

/// Notifications a listener buffers by default (see
/// [`ListenerBuilder::capacity`]).
pub const DEFAULT_LISTENER_CAPACITY: usize = 10_000;

/// Builds a [`Listener`]: the server from the same settings a pool uses,
/// and the listener's own options.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```no_run
use std::time::Duration;
use slotpool_postgres::{Config, ListenerBuilder};

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
let config: Config = Config::default(); // e.g. Config::load(..) in a service
let mut listener = ListenerBuilder::new(config.postgres.clone())
    .capacity(1_000)
    .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(5))
    .connect()
    .await?;
listener.listen("jobs").await?;
# Ok(())
# }
```
"#
)]
pub struct ListenerBuilder {
    source: Source,
    provider: Option<Arc<dyn CredentialsProvider>>,
    capacity: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
}

enum Source {
    Settings(PgConfig),
    TokioPostgres(Box<tokio_postgres::Config>, PgConfig),
    /// A manager's server, TLS connector and settings, resolved already.
    Manager(Box<(Target, MakeRustlsConnect)>, PgConfig),
}

impl Source {
    fn settings(&self) -> &PgConfig {
        match self {
            Self::Settings(settings)
            | Self::TokioPostgres(_, settings)
            | Self::Manager(_, settings) => settings,
        }
    }
}

impl ListenerBuilder {
    /// A listener on the server `config` names, with its credentials,
    /// `sslmode`/`sslrootcert`, `application_name` and `connect_timeout`
    /// (which bounds each connect, including a reconnect's `LISTEN`s). The
    /// pool-only settings (statement cache, recycling) do not apply. With
    /// `pooler = "transaction"`, [`connect`](Self::connect) refuses.
    #[must_use]
    pub fn new(config: PgConfig) -> Self {
        Self {
            source: Source::Settings(config),
            provider: None,
            capacity: DEFAULT_LISTENER_CAPACITY,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// As [`PgManager::from_tokio_postgres`](crate::PgManager::from_tokio_postgres):
    /// the server and credentials of a `tokio_postgres::Config`, the rest
    /// from `settings`.
    #[must_use]
    pub fn from_tokio_postgres(config: tokio_postgres::Config, settings: PgConfig) -> Self {
        Self {
            source: Source::TokioPostgres(Box::new(config), settings),
            ..Self::new(PgConfig::default())
        }
    }

    /// A listener on the server of `manager` (the manager of a pool), with
    /// its settings, its TLS connector (roots and client certificate as it
    /// loaded them) and its credentials: each connect and reconnect asks
    /// whichever provider the manager holds then, so a rotation with
    /// [`PgManager::set_credentials`] reaches the listener's next
    /// reconnect too. [`credentials_provider`](Self::credentials_provider)
    /// still overrides it.
    #[must_use]
    pub fn for_manager(manager: &PgManager) -> Self {
        let (target, tls, provider) = manager.session_parts();
        Self {
            source: Source::Manager(Box::new((target, tls)), manager.config().clone()),
            provider: Some(provider),
            ..Self::new(PgConfig::default())
        }
    }

    /// Asks `provider` for the credentials of every connect (first and
    /// reconnects), as the pool's manager does; give it the same provider
    /// so a rotation reaches the listener's next reconnect too (or build
    /// the listener with [`for_manager`](Self::for_manager)).
    #[must_use]
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// Logs in with `credentials` rather than the settings'.
    #[must_use]
    pub fn credentials(self, credentials: Credentials) -> Self {
        self.credentials_provider(StaticCredentials::new(credentials))
    }

    /// At most `capacity` notifications wait in the buffer for `recv`
    /// (at least 1; default [`DEFAULT_LISTENER_CAPACITY`]). Beyond it, new
    /// ones are dropped and counted, and `recv` reports
    /// [`ListenerError::Lagged`] where they would have been.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The wait between failed reconnects: `initial`, doubling, at most
    /// `max` (default 100 ms to 10 s). The first reconnect is immediate.
    #[must_use]
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Checks the settings, sets up TLS and connects once (no retry: a
    /// first connect that fails is the caller's to retry). Refuses
    /// `pooler = "transaction"` with [`ListenerError::Pooler`] before
    /// anything is sent.
    pub async fn connect(self) -> Result<Listener, ListenerError> {
        let settings = self.source.settings();
        let pooler = pooler::transaction_mode(settings.pooler);
        let (target, loaded_tls) = match &self.source {
            Source::Settings(settings) => (
                target::from_settings(settings).map_err(PgError::from)?,
                None,
            ),
            Source::TokioPostgres(config, settings) => (
                target::from_tokio_postgres((**config).clone(), settings).map_err(PgError::from)?,
                None,
            ),
            Source::Manager(parts, _) => (parts.0.clone(), Some(parts.1.clone())),
        };
        if pooler {
            return Err(ListenerError::Pooler {
                target: target.name,
            });
        }
        // Roots and any client certificate are read here, once (a
        // manager's were read when it was built).
        let tls = match loaded_tls {
            Some(tls) => tls,
            None => tls::connector(settings)?,
        };
        let provider = self
            .provider
            .unwrap_or_else(|| Arc::new(StaticCredentials::new(target.credentials.clone())));
        let connector = Connector {
            connect_timeout: settings.connect_timeout,
            target,
            tls,
            provider,
            capacity: self.capacity,
            backoff_initial: self.backoff_initial,
            backoff_max: self.backoff_max,
        };
        let live = connector.open(&BTreeSet::new()).await?;
        Ok(Listener::new(connector, live))
    }
}

impl std::fmt::Debug for ListenerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field("settings", self.source.settings())
            .field("capacity", &self.capacity)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

/// Everything a connect needs, resolved once.
pub(super) struct Connector {
    pub(super) target: Target,
    tls: MakeRustlsConnect,
    provider: Arc<dyn CredentialsProvider>,
    connect_timeout: Option<Duration>,
    capacity: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl Connector {
    /// The wait before reconnect attempt `attempt` (1-based; the first is
    /// immediate).
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let doublings = (attempt - 2).min(20);
        self.backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }

    /// One connect: credentials, TCP and TLS, startup, the connection's
    /// task, then the backend's pid and `LISTEN` for each of `channels` in
    /// one round trip; all within `connect_timeout`.
    pub(super) async fn open(&self, channels: &BTreeSet<String>) -> Result<Live, PgError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| PgError::NoTokioRuntime)?;
        let attempt = async {
            let Login {
                client, connection, ..
            } = login::login(&self.target, &self.tls, &*self.provider).await?;
            let queue = Arc::new(Queue::new(self.capacity));
            // Detached: the task ends when the connection does, at the
            // latest when the client is dropped.
            drop(runtime.spawn(queue::drive(
                connection,
                queue.clone(),
                self.target.name.clone(),
            )));
            let process_id = start_listening(&client, channels).await?;
            Ok::<_, PgError>(Live {
                client,
                queue,
                process_id,
            })
        };
        login::within(self.connect_timeout, &self.target, attempt).await
    }
}

/// `SELECT pg_backend_pid()` and a `LISTEN` per channel, as one simple
/// query; the pid.
async fn start_listening(client: &Client, channels: &BTreeSet<String>) -> Result<i32, PgError> {
    let mut sql = String::from("SELECT pg_backend_pid()");
    for channel in channels {
        sql.push_str("; LISTEN ");
        sql.push_str(&quoted(channel));
    }
    let messages = client.simple_query(&sql).await?;
    let pid = messages.iter().find_map(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse().ok()),
        _ => None,
    });
    // The server always answers the SELECT; 0 only if it did not.
    Ok(pid.unwrap_or(0))
}

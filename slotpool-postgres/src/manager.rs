//! [`PgManager`]: opens, checks and resets PostgreSQL connections for a
//! slotpool pool, as an [`AsyncManager`].
//!
//! Owns: the connect (credentials from the provider, TLS, the whole thing
//! bounded by `connect_timeout`, the connection task), and the answers to
//! the pool's questions (`has_broken`, `needs_reset`) from what the
//! connection tracked. It may not know about slots or waiters: it is a
//! backend like any other, through the public `AsyncManager` trait.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use slotpool::{AsyncManager, ErrorClass};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::classify::classify;
use crate::connection::{Canceller, PgConnection};
use crate::credentials::{Credentials, CredentialsProvider, StaticCredentials};
use crate::error::{PgError, describe};
use crate::keywords::Recycling;
use crate::login::{self, Login};
use crate::pg_config::PgConfig;
use crate::statement_cache::{SharedCounters, StatementCache, StatementCacheStats};
use crate::target::{self, Target};
use crate::{reset, tls};

/// Opens [`PgConnection`]s as a [`PgConfig`] says; an [`AsyncManager`], so
/// a pool of it is `slotpool::Pool<slotpool::Async<PgManager>>` on a tokio
/// runtime.
///
/// * `connect`: asks the credentials provider, connects with TLS per
///   `sslmode`, sends `application_name`, `statement_timeout` and
///   `idle_in_transaction_session_timeout` as startup parameters (with
///   `pooler = "transaction"` only `application_name`, which PgBouncer
///   passes on; the two timeouts are then rejected at validation), all within
///   `connect_timeout`, and spawns the connection's task on the current
///   tokio runtime.
/// * `is_valid` (stale checkouts, keepalives): per `recycling`.
/// * `has_broken` (every return, no I/O): the client is closed, or a
///   borrower dropped every prepared statement (`DISCARD ALL`).
/// * `needs_reset` (every return, no I/O): the connection saw something
///   left dirty, or `recycling = "clean"`; with `pooler = "transaction"`
///   only a transaction left open counts.
/// * `reset`: see [`Recycling`] and the `reset` module.
/// * `classify`: [`classify`](crate::classify()).
///
/// Credentials rotate with [`set_credentials`](Self::set_credentials) or
/// [`set_credentials_provider`](Self::set_credentials_provider) followed
/// by `pool.evict_idle()`. The TLS client certificate does not: `sslcert`
/// and `sslkey` are read once, when the manager is built (a renewed
/// certificate needs a new manager).
pub struct PgManager {
    settings: PgConfig,
    target: Target,
    tls: MakeRustlsConnect,
    /// Shared with the listeners built from this manager
    /// ([`ListenerBuilder::for_manager`](crate::ListenerBuilder::for_manager)),
    /// so a rotation reaches them too.
    provider: Arc<RwLock<Arc<dyn CredentialsProvider>>>,
    counters: Arc<SharedCounters>,
}

impl PgManager {
    /// A manager for `config`, validated. Trusted roots for the verifying
    /// TLS modes and the client certificate (`sslcert`, `sslkey`) are
    /// loaded now, so a missing `sslrootcert` fails here ([`PgError::Tls`]),
    /// as does an unusable certificate or key ([`PgError::ClientCert`]);
    /// the files are not read again. Nothing is connected.
    pub fn new(config: PgConfig) -> Result<Self, PgError> {
        let target = target::from_settings(&config)?;
        Self::build(config, target)
    }

    /// A manager for a libpq connection string (either form, all five
    /// `sslmode`s), with the other settings at their defaults.
    pub fn from_connection_string(text: &str) -> Result<Self, PgError> {
        Self::new(PgConfig::from_connection_string(text)?)
    }

    /// A manager for the server, user, password and other parameters of a
    /// `tokio_postgres::Config`, with `settings` for the rest (`sslmode`,
    /// which replaces the config's since tokio-postgres cannot express
    /// `verify-ca`/`verify-full`; `application_name`, `connect_timeout`
    /// and the server-side timeouts when set; cache and recycling).
    /// `settings` must not name a server or credentials itself. If a
    /// credentials provider set later returns no password, this config's
    /// password is used.
    pub fn from_tokio_postgres(
        config: tokio_postgres::Config,
        settings: PgConfig,
    ) -> Result<Self, PgError> {
        let target = target::from_tokio_postgres(config, &settings)?;
        Self::build(settings, target)
    }

    fn build(settings: PgConfig, target: Target) -> Result<Self, PgError> {
        // Roots and the client certificate are read here, once.
        let tls = tls::connector(&settings)?;
        let provider: Arc<dyn CredentialsProvider> =
            Arc::new(StaticCredentials::new(target.credentials.clone()));
        Ok(Self {
            settings,
            target,
            tls,
            provider: Arc::new(RwLock::new(provider)),
            counters: Arc::default(),
        })
    }

    /// The settings it was built with.
    #[must_use]
    pub fn config(&self) -> &PgConfig {
        &self.settings
    }

    /// The server as `host:port/dbname` (no credentials).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target.name
    }

    /// Uses `credentials` for every connection opened from now on.
    pub fn set_credentials(&self, credentials: Credentials) {
        self.set_credentials_provider(StaticCredentials::new(credentials));
    }

    /// Asks `provider` for the credentials of every connection opened from
    /// now on.
    pub fn set_credentials_provider(&self, provider: impl CredentialsProvider) {
        *self
            .provider
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(provider);
    }

    /// Statement-cache counts summed over every connection this manager
    /// opened (`len` is 0: see each connection's own).
    #[must_use]
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.counters
            .stats(self.settings.statement_cache_capacity as usize)
    }

    fn provider(&self) -> Arc<dyn CredentialsProvider> {
        current(&self.provider)
    }

    /// What a listener built from this manager shares with it: the server,
    /// the TLS connector (roots and client certificate already loaded) and
    /// a credentials provider that follows every later
    /// [`set_credentials`](Self::set_credentials) /
    /// [`set_credentials_provider`](Self::set_credentials_provider).
    pub(crate) fn session_parts(
        &self,
    ) -> (Target, MakeRustlsConnect, Arc<dyn CredentialsProvider>) {
        let following = Following(self.provider.clone());
        (self.target.clone(), self.tls.clone(), Arc::new(following))
    }

    async fn open(&self) -> Result<PgConnection, PgError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| PgError::NoTokioRuntime)?;
        let started = Instant::now();
        let provider = self.provider();
        let Login {
            client,
            connection,
            user,
        } = login::within(
            self.settings.connect_timeout,
            &self.target,
            login::login(&self.target, &self.tls, &*provider),
        )
        .await?;
        let server = self.target.name.clone();
        let task = runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(
                    server = %server,
                    error = %describe(&error),
                    "a PostgreSQL connection ended with an error"
                );
            }
        });
        tracing::debug!(
            server = %self.target.name,
            user = %user,
            elapsed = ?started.elapsed(),
            "opened a PostgreSQL connection"
        );
        let cache = StatementCache::new(
            self.settings.statement_cache_capacity as usize,
            self.counters.clone(),
            self.settings.pooler,
        );
        let canceller = Canceller {
            runtime,
            tls: self.tls.clone(),
        };
        Ok(PgConnection::new(client, task, cache, canceller))
    }
}

impl AsyncManager for PgManager {
    type Connection = PgConnection;
    type Error = PgError;

    async fn connect(&self) -> Result<PgConnection, PgError> {
        self.open().await
    }

    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        reset::validate(conn, self.settings.recycling).await
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client().is_closed() || conn.tracker().must_close()
    }

    fn needs_reset(&self, conn: &mut PgConnection) -> bool {
        if crate::pooler::transaction_mode(self.settings.pooler) {
            // Behind a transaction-mode pooler only an open transaction is
            // this connection's own to undo (the pooler keeps the server
            // connection pinned to it); anything else the tracking saw
            // (`DO`, `CALL`, `set_config`) ran on whichever server
            // connection the pooler picked, which a reset cannot reach.
            if conn.dirt().transaction {
                return true;
            }
            conn.tracker().reset_done();
            return false;
        }
        self.settings.recycling == Recycling::Clean || conn.tracker().needs_reset()
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        let dirt = conn.dirt();
        let result = reset::reset(
            conn,
            self.settings.recycling,
            self.settings.pooler,
            self.settings.connect_timeout,
        )
        .await;
        tracing::debug!(
            server = %self.target.name,
            ?dirt,
            ok = result.is_ok(),
            "reset a returned PostgreSQL connection"
        );
        result
    }

    fn classify(&self, error: &PgError) -> ErrorClass {
        classify(error)
    }
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("target", &self.target.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The provider `slot` holds now.
fn current(slot: &RwLock<Arc<dyn CredentialsProvider>>) -> Arc<dyn CredentialsProvider> {
    slot.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A credentials provider that asks whichever provider the manager holds
/// at the time of each connect.
struct Following(Arc<RwLock<Arc<dyn CredentialsProvider>>>);

impl CredentialsProvider for Following {
    fn credentials(&self) -> crate::credentials::CredentialsFuture<'_> {
        let provider = current(&self.0);
        Box::pin(async move { provider.credentials().await })
    }
}

//! [`PgConnection`]: the pooled connection, a `tokio_postgres::Client` with
//! its statement cache and the record of what a borrower left dirty.
//!
//! Owns: the client, the task driving its socket, the per-connection
//! statement cache (which survives check-in), the dirt tracker, and
//! transactions begun through it. It may not decide when to reset or
//! validate (the manager does).

use std::fmt;
use std::ops::Deref;

use tokio::task::JoinHandle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, Row, SimpleQueryMessage, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::statement_cache::{StatementCache, StatementCacheStats};
use crate::tracked::tracked_methods;
use crate::tracker::{Dirt, Tracker};
use crate::transaction::{PgTransaction, PgTransactionBuilder};

/// A pooled PostgreSQL connection: derefs to [`tokio_postgres::Client`], and
/// puts tracked versions in front of its query methods (same names and
/// signatures), so that what a borrower leaves behind (an open transaction,
/// a query cancelled by dropping its future, changed session state) is known
/// when it comes back and `needs_reset` answers without I/O.
///
/// `prepare_cached` keeps prepared statements across borrows, per
/// connection. Transactions go through [`transaction`](Self::transaction)
/// (tokio-postgres's needs `&mut Client`, which `Deref` does not give).
///
/// The connection's task drives the socket as a plain future, so `NOTIFY`
/// notifications are not delivered to a pooled connection: `LISTEN` on a
/// dedicated, unpooled connection.
pub struct PgConnection {
    client: Client,
    tracker: Tracker,
    cache: StatementCache,
    task: JoinHandle<()>,
    /// Where and how to send a cancel request when the connection is closed
    /// with a statement possibly still running (see `Drop`).
    canceller: Canceller,
}

/// What closing an interrupted connection needs to cancel its statement:
/// the runtime it was opened on (a close may run on a pool thread) and the
/// TLS connector for the cancel request's own connection.
pub(crate) struct Canceller {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) tls: MakeRustlsConnect,
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        task: JoinHandle<()>,
        cache: StatementCache,
        canceller: Canceller,
    ) -> Self {
        Self {
            client,
            tracker: Tracker::default(),
            cache,
            task,
            canceller,
        }
    }

    fn raw(&self) -> &Client {
        &self.client
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    fn cache(&self) -> &StatementCache {
        &self.cache
    }

    tracked_methods!();

    /// Begins a transaction (tracked: until it is committed, rolled back or
    /// dropped, the connection counts as in a transaction). Dropping it
    /// rolls it back, as tokio-postgres does.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let Self {
            client,
            tracker,
            cache,
            ..
        } = self;
        PgTransaction::begin(client.transaction(), tracker, cache, 0).await
    }

    /// A transaction with an isolation level, read-only or deferrable mode.
    pub fn build_transaction(&mut self) -> PgTransactionBuilder<'_> {
        let Self {
            client,
            tracker,
            cache,
            ..
        } = self;
        PgTransactionBuilder::new(client.build_transaction(), tracker, cache)
    }

    /// The client itself (as `Deref` gives it).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What this connection saw a borrower leave dirty.
    #[must_use]
    pub fn dirt(&self) -> Dirt {
        self.tracker.dirt()
    }

    /// This connection's statement-cache counts.
    #[must_use]
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.cache.stats()
    }

    /// Drops every cached statement (e.g. after DDL changed a table a
    /// cached statement reads: "cached plan must not change result type").
    pub fn clear_statement_cache(&self) {
        self.cache.clear();
    }

    /// Drops the cached statement for `query` with `parameter_types`;
    /// whether it was cached.
    pub fn remove_cached_statement(&self, query: &str, parameter_types: &[Type]) -> bool {
        self.cache.remove(query, parameter_types)
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for PgConnection {
    /// Normally the client's drop ends the connection task gracefully (a
    /// Terminate message, then the socket closes). If a statement may still
    /// be running, the task is aborted instead, closing the socket at once
    /// rather than waiting for the statement's results, and a cancel request
    /// is sent for it, so the server does not run it to the end for nobody
    /// (a backend notices a closed client only when it next writes). The
    /// cancel can arrive late without harm: it names this backend, which no
    /// other borrower will ever use.
    fn drop(&mut self) {
        if self.tracker.dirt().interrupted {
            self.task.abort();
            let cancel = self.client.cancel_token();
            let tls = self.canceller.tls.clone();
            drop(self.canceller.runtime.spawn(async move {
                if let Err(error) = cancel.cancel_query(tls).await {
                    tracing::debug!(%error, "cancel request for an interrupted statement failed");
                }
            }));
        }
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("dirt", &self.tracker.dirt())
            .field("statement_cache", &self.cache.stats())
            .finish_non_exhaustive()
    }
}

//! [`PgTransaction`]: a transaction begun through a
//! [`PgConnection`](crate::PgConnection), tracked so the connection knows
//! whether it is still in one, with the same tracked query methods.
//!
//! Owns: the transaction's end (commit, rollback, drop) and its savepoints.
//! It may not outlive its connection's borrow.

use std::ops::Deref;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{
    Error, IsolationLevel, Row, SimpleQueryMessage, Statement, Transaction, TransactionBuilder,
};

use crate::statement_cache::StatementCache;
use crate::tracked::tracked_methods;
use crate::tracker::Tracker;

/// A transaction on a pooled connection; derefs to
/// [`tokio_postgres::Transaction`]. Dropping it rolls it back (tokio-postgres
/// queues the `ROLLBACK` ahead of anything sent later), so the connection
/// no longer counts as in a transaction; if a statement was interrupted,
/// the reset still cancels it.
pub struct PgTransaction<'a> {
    inner: Option<Transaction<'a>>,
    tracker: &'a Tracker,
    cache: &'a StatementCache,
    /// 0 for the transaction, 1 and more for savepoints.
    depth: u32,
}

impl<'a> PgTransaction<'a> {
    pub(crate) fn new(
        inner: Transaction<'a>,
        tracker: &'a Tracker,
        cache: &'a StatementCache,
        depth: u32,
    ) -> Self {
        Self {
            inner: Some(inner),
            tracker,
            cache,
            depth,
        }
    }

    fn raw(&self) -> &Transaction<'a> {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("the transaction is taken only by commit and rollback"),
        }
    }

    fn raw_mut(&mut self) -> &mut Transaction<'a> {
        match &mut self.inner {
            Some(inner) => inner,
            None => unreachable!("the transaction is taken only by commit and rollback"),
        }
    }

    fn tracker(&self) -> &Tracker {
        self.tracker
    }

    fn cache(&self) -> &StatementCache {
        self.cache
    }

    tracked_methods!();

    /// Commits (or releases the savepoint).
    pub async fn commit(mut self) -> Result<(), Error> {
        let inner = self.inner.take();
        self.finish(async move {
            match inner {
                Some(inner) => inner.commit().await,
                None => Ok(()),
            }
        })
        .await
    }

    /// Rolls back (to the savepoint).
    pub async fn rollback(mut self) -> Result<(), Error> {
        let inner = self.inner.take();
        self.finish(async move {
            match inner {
                Some(inner) => inner.rollback().await,
                None => Ok(()),
            }
        })
        .await
    }

    /// Once a `COMMIT` or `ROLLBACK` has been answered, no transaction is
    /// open, whatever the answer (a failed `COMMIT` rolls back).
    async fn finish(&self, end: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
        let in_flight = self.tracker.enter();
        let result = end.await;
        in_flight.finish();
        if self.depth == 0 {
            self.tracker.transaction_closed();
        }
        result
    }

    /// A savepoint named `name` inside this transaction.
    pub async fn savepoint(&mut self, name: impl Into<String>) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache, depth) = (self.tracker, self.cache, self.depth);
        let in_flight = tracker.enter();
        let result = self.raw_mut().savepoint(name).await;
        in_flight.finish();
        Ok(PgTransaction::new(result?, tracker, cache, depth + 1))
    }

    /// A nested transaction (an automatically named savepoint).
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache, depth) = (self.tracker, self.cache, self.depth);
        let in_flight = tracker.enter();
        let result = self.raw_mut().transaction().await;
        in_flight.finish();
        Ok(PgTransaction::new(result?, tracker, cache, depth + 1))
    }
}

impl<'a> Deref for PgTransaction<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        self.raw()
    }
}

impl Drop for PgTransaction<'_> {
    fn drop(&mut self) {
        // Still open: tokio-postgres's drop (right after this) queues the
        // ROLLBACK before anything the connection sends later.
        if self.inner.is_some() && self.depth == 0 {
            self.tracker.transaction_closed();
        }
    }
}

/// Builds a transaction with options; see
/// [`PgConnection::build_transaction`](crate::PgConnection::build_transaction).
pub struct PgTransactionBuilder<'a> {
    inner: TransactionBuilder<'a>,
    tracker: &'a Tracker,
    cache: &'a StatementCache,
}

impl<'a> PgTransactionBuilder<'a> {
    pub(crate) fn new(
        inner: TransactionBuilder<'a>,
        tracker: &'a Tracker,
        cache: &'a StatementCache,
    ) -> Self {
        Self {
            inner,
            tracker,
            cache,
        }
    }

    /// Sets the isolation level.
    #[must_use]
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.inner = self.inner.isolation_level(level);
        self
    }

    /// Sets read-only mode.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.inner = self.inner.read_only(read_only);
        self
    }

    /// Sets deferrable mode.
    #[must_use]
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.inner = self.inner.deferrable(deferrable);
        self
    }

    /// Begins the transaction (tracked, as
    /// [`PgConnection::transaction`](crate::PgConnection::transaction)).
    pub async fn start(self) -> Result<PgTransaction<'a>, Error> {
        let Self {
            inner,
            tracker,
            cache,
        } = self;
        tracker.transaction_opened();
        let in_flight = tracker.enter();
        let result = inner.start().await;
        in_flight.finish();
        Ok(PgTransaction::new(result?, tracker, cache, 0))
    }
}

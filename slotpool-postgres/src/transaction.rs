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
/// the connection is closed on return.
pub struct PgTransaction<'a> {
    inner: Option<Transaction<'a>>,
    tracker: &'a Tracker,
    cache: &'a StatementCache,
    /// 0 for the transaction, 1 and more for savepoints.
    depth: u32,
}

impl<'a> PgTransaction<'a> {
    /// Awaits `begin` (a `BEGIN` or a `SAVEPOINT`) holding the in-flight
    /// guard, and wraps what it gives. A transaction (`depth` 0) counts as
    /// open from before its `BEGIN` is sent.
    pub(crate) async fn begin(
        begin: impl Future<Output = Result<Transaction<'a>, Error>>,
        tracker: &'a Tracker,
        cache: &'a StatementCache,
        depth: u32,
    ) -> Result<Self, Error> {
        if depth == 0 {
            tracker.transaction_opened();
        }
        let inner = tracker.in_flight(begin).await?;
        Ok(Self {
            inner: Some(inner),
            tracker,
            cache,
            depth,
        })
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
    pub async fn commit(self) -> Result<(), Error> {
        self.end(Transaction::commit).await
    }

    /// Rolls back (to the savepoint).
    pub async fn rollback(self) -> Result<(), Error> {
        self.end(Transaction::rollback).await
    }

    /// Once a `COMMIT` or `ROLLBACK` has been answered, no transaction is
    /// open, whatever the answer (a failed `COMMIT` rolls back).
    async fn end<F>(mut self, end: impl FnOnce(Transaction<'a>) -> F) -> Result<(), Error>
    where
        F: Future<Output = Result<(), Error>>,
    {
        let result = match self.inner.take() {
            Some(inner) => self.tracker.in_flight(end(inner)).await,
            None => Ok(()),
        };
        if self.depth == 0 {
            self.tracker.transaction_closed();
        }
        result
    }

    /// A savepoint named `name` inside this transaction.
    pub async fn savepoint(&mut self, name: impl Into<String>) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache, depth) = (self.tracker, self.cache, self.depth + 1);
        PgTransaction::begin(self.raw_mut().savepoint(name), tracker, cache, depth).await
    }

    /// A nested transaction (an automatically named savepoint).
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let (tracker, cache, depth) = (self.tracker, self.cache, self.depth + 1);
        PgTransaction::begin(self.raw_mut().transaction(), tracker, cache, depth).await
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
        PgTransaction::begin(self.inner.start(), self.tracker, self.cache, 0).await
    }
}

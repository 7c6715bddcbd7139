//! Tracked calls: the query methods [`PgConnection`](crate::PgConnection)
//! and [`PgTransaction`](crate::PgTransaction) put in front of
//! tokio-postgres's, so that what a borrower leaves behind is known when the
//! connection comes back.
//!
//! Owns: [`SqlStatement`] (what a statement argument may be), [`run`] (scan
//! the SQL, record what it may leave, hold the in-flight guard, record the
//! outcome) and the macro that writes the methods once for both types. It
//! may not reset anything.
//!
//! The methods keep tokio-postgres's names and signatures, so
//! `conn.query(..)` on a pooled connection calls the tracked one (inherent
//! methods win over `Deref`). Methods reached only through `Deref` to the
//! client (`query_raw`, `copy_in`, `bind`, ...) are not tracked: after
//! using them to change session state, call
//! [`mark_session_changed`](crate::PgConnection::mark_session_changed), or
//! run the pool with `recycling = "clean"`.

use std::future::Future;

use tokio_postgres::{Error, Statement, ToStatement};

use crate::sql_scan::{self, Effects};
use crate::statement_cache::StatementCache;
use crate::tracker::Tracker;

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for tokio_postgres::Statement {}
}

/// A statement argument of the tracked methods: SQL text (`&str`,
/// `&String`) or a prepared [`Statement`], as tokio-postgres takes. Sealed.
pub trait SqlStatement: ToStatement + sealed::Sealed {
    /// The SQL text, if this is text (a prepared statement's text was
    /// scanned when it was prepared).
    fn sql_text(&self) -> Option<&str>;
}

impl SqlStatement for str {
    fn sql_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl SqlStatement for String {
    fn sql_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl SqlStatement for Statement {
    fn sql_text(&self) -> Option<&str> {
        None
    }
}

/// Whether a call's error finishes the connection (closed, an I/O error,
/// a FATAL: see [`classify`](crate::classify)), so that the pool closes it
/// on return without waiting for `is_closed()` to notice.
fn finishes_the_connection(error: &Error) -> bool {
    crate::classify::open_class(error) == slotpool::ErrorClass::Permanent
}

/// What a tracked call does with its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Runs it: a success settles the transaction state it leaves.
    Execute,
    /// Prepares it: it may run later through a `Statement`, unseen, so what
    /// it could do is recorded now and never cleared by the outcome.
    Prepare,
}

/// Runs one tracked call.
pub(crate) async fn run<R>(
    tracker: &Tracker,
    cache: &StatementCache,
    sql: Option<&str>,
    kind: Kind,
    call: impl Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    let effects: Effects = sql.map(sql_scan::scan).unwrap_or_default();
    tracker.before(&effects);
    let result = tracker.in_flight(call).await;
    match &result {
        Ok(_) if kind == Kind::Execute => tracker.succeeded(&effects),
        Ok(_) => {}
        Err(error) if finishes_the_connection(error) => tracker.finished(),
        Err(_) => {}
    }
    if effects.discards_statements {
        // The server forgot them; the cache must not hand them out.
        cache.clear();
    }
    result
}

/// With `postgres.pooler = "transaction"`, refuses `sql` that would leave
/// session state on whichever server connection the pooler picked (nothing
/// is sent).
pub(crate) async fn refuse_in_pooler_mode(
    raw: &impl crate::pooler::Raw,
    cache: &StatementCache,
    sql: &str,
) -> Result<(), Error> {
    if cache.pooler() != crate::keywords::PoolerMode::Transaction {
        return Ok(());
    }
    match crate::pooler::violation(&sql_scan::scan(sql)) {
        Some(violation) => Err(crate::pooler::refuse(raw, violation).await),
        None => Ok(()),
    }
}

/// The tracked methods, for a type with `raw()` (the tokio-postgres client
/// or transaction), `tracker()` and `cache()`.
///
/// The methods that run SQL are listed once, each with the shape of its
/// arguments (`statement`: a [`SqlStatement`] and parameters; `typed`: SQL
/// text and typed parameters; `text`: SQL text alone), in the order they
/// appear in the documentation; one arm per shape writes them.
macro_rules! tracked_methods {
    () => {
        /// `prepare`, tracked (the text is scanned now, since the statement
        /// may run later unseen). With `postgres.pooler = "transaction"` it
        /// is refused (a [`PoolerViolation`](crate::PoolerViolation) as the
        /// error's source, nothing sent).
        pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
            self.prepare_typed(query, &[]).await
        }

        /// `prepare_typed`, tracked.
        pub async fn prepare_typed(
            &self,
            query: &str,
            parameter_types: &[Type],
        ) -> Result<Statement, Error> {
            if self.cache().pooler() == $crate::keywords::PoolerMode::Transaction {
                return Err($crate::pooler::refuse(
                    self.raw(),
                    $crate::pooler::PoolerViolation::NamedStatement,
                )
                .await);
            }
            $crate::tracked::run(
                self.tracker(),
                self.cache(),
                Some(query),
                $crate::tracked::Kind::Prepare,
                self.raw().prepare_typed(query, parameter_types),
            )
            .await
        }

        /// A prepared statement for `query` from the connection's cache, or
        /// prepared (tracked) and cached: the cache survives the
        /// connection's return to the pool, bounded by
        /// `statement_cache_capacity` with least-recently-used eviction.
        /// With `postgres.pooler = "transaction"` it is refused, as
        /// `prepare`: pass the SQL text to `query`/`execute`, which then
        /// send it unnamed and cache its parameter types instead.
        pub async fn prepare_cached(&self, query: &str) -> Result<Statement, Error> {
            self.prepare_typed_cached(query, &[]).await
        }

        /// [`prepare_cached`](Self::prepare_cached) with parameter types
        /// (part of the cache key).
        pub async fn prepare_typed_cached(
            &self,
            query: &str,
            parameter_types: &[Type],
        ) -> Result<Statement, Error> {
            if let Some(statement) = self.cache().get(query, parameter_types) {
                return Ok(statement);
            }
            let statement = self.prepare_typed(query, parameter_types).await?;
            self.cache()
                .insert(query, parameter_types, statement.clone());
            Ok(statement)
        }

        $crate::tracked::tracked_methods! {
            /// `query`, tracked. With `postgres.pooler = "transaction"`
            /// SQL text is sent as an unnamed statement (see
            /// [`PoolerMode`](crate::PoolerMode)).
            statement query / query_typed -> Vec<Row>;
            /// `query_one`, tracked (unnamed behind a transaction-mode
            /// pooler, as `query`).
            statement query_one / query_typed_one -> Row;
            /// `query_opt`, tracked (unnamed behind a transaction-mode
            /// pooler, as `query`).
            statement query_opt / query_typed_opt -> Option<Row>;
            /// `query_typed` (one round trip, no named statement: PgBouncer
            /// friendly), tracked.
            typed query_typed -> Vec<Row>;
            /// `query_typed_one`, tracked.
            typed query_typed_one -> Row;
            /// `query_typed_opt`, tracked.
            typed query_typed_opt -> Option<Row>;
            /// `execute`, tracked (unnamed behind a transaction-mode
            /// pooler, as `query`).
            statement execute / execute_typed -> u64;
            /// `execute_typed`, tracked.
            typed execute_typed -> u64;
            /// `simple_query`, tracked.
            text simple_query -> Vec<SimpleQueryMessage>;
            /// `batch_execute`, tracked.
            text batch_execute -> ();
        }

        /// Marks the session as changed in a way the tracking cannot see
        /// (a function that calls `set_config`, a statement sent through
        /// the client's untracked methods), so the connection is reset
        /// with the clean-up batch when it comes back.
        pub fn mark_session_changed(&self) {
            self.tracker().session_changed();
        }
    };
    ($($(#[$doc:meta])* $shape:ident $name:ident $(/ $typed:ident)? -> $output:ty;)+) => {
        $($crate::tracked::tracked_methods!(@$shape $(#[$doc])* $name $(/ $typed)? -> $output);)+
    };
    (@statement $(#[$doc:meta])* $name:ident / $typed:ident -> $output:ty) => {
        $(#[$doc])*
        pub async fn $name<T>(
            &self,
            statement: &T,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<$output, Error>
        where
            T: ?Sized + $crate::tracked::SqlStatement,
        {
            let pooled = self.cache().pooler() == $crate::keywords::PoolerMode::Transaction;
            if let (true, Some(sql)) = (pooled, statement.sql_text()) {
                $crate::tracked::refuse_in_pooler_mode(self.raw(), self.cache(), sql).await?;
                let types = if params.is_empty() {
                    ::std::sync::Arc::from(::std::vec::Vec::new())
                } else {
                    $crate::pooler::parameter_types(self.raw(), self.tracker(), self.cache(), sql)
                        .await?
                };
                let typed: ::std::vec::Vec<(&(dyn ToSql + Sync), Type)> = params
                    .iter()
                    .enumerate()
                    .map(|(i, param)| (*param, types.get(i).cloned().unwrap_or(Type::UNKNOWN)))
                    .collect();
                return $crate::tracked::run(
                    self.tracker(),
                    self.cache(),
                    Some(sql),
                    $crate::tracked::Kind::Execute,
                    self.raw().$typed(sql, &typed),
                )
                .await;
            }
            $crate::tracked::run(
                self.tracker(),
                self.cache(),
                statement.sql_text(),
                $crate::tracked::Kind::Execute,
                self.raw().$name(statement, params),
            )
            .await
        }
    };
    (@typed $(#[$doc:meta])* $name:ident -> $output:ty) => {
        $(#[$doc])*
        pub async fn $name(
            &self,
            query: &str,
            params: &[(&(dyn ToSql + Sync), Type)],
        ) -> Result<$output, Error> {
            $crate::tracked::refuse_in_pooler_mode(self.raw(), self.cache(), query).await?;
            $crate::tracked::run(
                self.tracker(),
                self.cache(),
                Some(query),
                $crate::tracked::Kind::Execute,
                self.raw().$name(query, params),
            )
            .await
        }
    };
    (@text $(#[$doc:meta])* $name:ident -> $output:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, query: &str) -> Result<$output, Error> {
            $crate::tracked::refuse_in_pooler_mode(self.raw(), self.cache(), query).await?;
            $crate::tracked::run(
                self.tracker(),
                self.cache(),
                Some(query),
                $crate::tracked::Kind::Execute,
                self.raw().$name(query),
            )
            .await
        }
    };
}

pub(crate) use tracked_methods;

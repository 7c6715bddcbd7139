//! `postgres.pooler = "transaction"`: running behind PgBouncer (or pgcat,
//! PgDog, Supavisor) in transaction mode, where each transaction, and each
//! statement outside one, may run on a different server connection.
//!
//! Owns: [`PoolerViolation`] (what is refused, and why, before anything is
//! sent), the unnamed-statement path of the tracked methods (parameter types
//! learnt once per SQL text inside a pinned transaction), and the rules and
//! derived defaults that nest the pool's lifetimes inside the pooler's
//! timeouts. It may not reset connections (`reset.rs` skips the clean-up
//! batch in this mode).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use slotpool::config::Derived;
use slotpool::config::schema::Problems;
use slotpool::{ConfigError, PoolConfig};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Error, Statement, Transaction};

use crate::keywords::PoolerMode;
use crate::pg_config::PgConfig;
use crate::sql_scan::Effects;
use crate::statement_cache::StatementCache;
use crate::tracker::Tracker;

/// What `postgres.pooler = "transaction"` refused, before anything was sent
/// to the server. It reaches the caller as the source of the
/// `tokio_postgres::Error` the method returns (the tracked methods keep
/// tokio-postgres's signatures): find it with
/// `error.source().and_then(|e| e.downcast_ref::<PoolerViolation>())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolerViolation {
    /// `prepare`, `prepare_typed`, `prepare_cached` or
    /// `prepare_typed_cached`: a named protocol-level statement lives on one
    /// server connection, and the pooler sends the next statement to any.
    NamedStatement,
    /// `SET` (not `LOCAL`), `LISTEN`, a session advisory lock, a temporary
    /// table, a `WITH HOLD` cursor or `LOAD`: state that would stay on a
    /// server connection other clients get next.
    SessionState,
    /// SQL-level `PREPARE`, or `DISCARD ALL`/`DEALLOCATE ALL`.
    PreparedStatements,
}

impl fmt::Display for PoolerViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::NamedStatement => {
                "named prepared statements (prepare, prepare_cached) are refused: the pooler \
                 runs the next statement on any server connection, where the statement does \
                 not exist. Pass SQL text to query/execute (sent unnamed) or use query_typed"
            }
            Self::SessionState => {
                "session state (SET, LISTEN, session advisory locks, temporary tables, WITH \
                 HOLD cursors, LOAD) is refused: it would stay on a server connection other \
                 clients get next. Use SET LOCAL or pg_advisory_xact_lock inside a \
                 transaction, or a dedicated connection to the server itself"
            }
            Self::PreparedStatements => {
                "SQL-level PREPARE and DISCARD ALL/DEALLOCATE ALL are refused: they act on \
                 whichever server connection the pooler picks"
            }
        };
        write!(f, "postgres.pooler = \"transaction\": {what}")
    }
}

impl StdError for PoolerViolation {}

/// The `ToSql` that carries a violation out as a `tokio_postgres::Error`
/// (its "error serializing parameter" kind, with the violation as source):
/// tokio-postgres encodes parameters before it sends anything, so the
/// refusal costs no round trip and leaves the connection as it was.
#[derive(Debug)]
struct Refusal(PoolerViolation);

impl ToSql for Refusal {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Err(Box::new(self.0))
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Either client a tracked call runs on.
pub(crate) trait Raw: Sync {
    /// `query_typed`.
    fn query_typed<'a>(
        &'a self,
        query: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>, Error>> + Send + 'a;
    /// `prepare`.
    fn prepare<'a>(
        &'a self,
        query: &'a str,
    ) -> impl Future<Output = Result<Statement, Error>> + Send + 'a;
    /// `batch_execute`.
    fn batch_execute<'a>(
        &'a self,
        query: &'a str,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;
}

macro_rules! raw_impl {
    ($ty:ty) => {
        impl Raw for $ty {
            fn query_typed<'a>(
                &'a self,
                query: &'a str,
                params: &'a [(&'a (dyn ToSql + Sync), Type)],
            ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>, Error>> + Send + 'a {
                <$ty>::query_typed(self, query, params)
            }
            fn prepare<'a>(
                &'a self,
                query: &'a str,
            ) -> impl Future<Output = Result<Statement, Error>> + Send + 'a {
                <$ty>::prepare(self, query)
            }
            fn batch_execute<'a>(
                &'a self,
                query: &'a str,
            ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
                <$ty>::batch_execute(self, query)
            }
        }
    };
}

raw_impl!(Client);
raw_impl!(Transaction<'_>);

/// The violation `effects` would commit, if any.
pub(crate) fn violation(effects: &Effects) -> Option<PoolerViolation> {
    if effects.prepared || effects.discards_statements {
        Some(PoolerViolation::PreparedStatements)
    } else if effects.pins_session {
        Some(PoolerViolation::SessionState)
    } else {
        None
    }
}

/// `violation` as the error the tracked methods return (no I/O: the
/// parameter is refused while tokio-postgres encodes the message).
pub(crate) async fn refuse(raw: &impl Raw, violation: PoolerViolation) -> Error {
    let refusal = Refusal(violation);
    match raw.query_typed("", &[(&refusal, Type::BOOL)]).await {
        Err(error) => error,
        Ok(_) => unreachable!("the refusal's parameter never encodes"),
    }
}

/// The parameter types of `sql`: from the connection's cache, or learnt
/// with a named Parse/Describe inside a transaction that pins one server
/// connection (`BEGIN` first unless one is open), closed before it ends,
/// so nothing is left on the server. Held in flight: a caller that gives
/// up half-way leaves the connection interrupted (closed on return), never
/// a `BEGIN` open for the next borrower.
pub(crate) async fn parameter_types(
    raw: &impl Raw,
    tracker: &Tracker,
    cache: &StatementCache,
    sql: &str,
) -> Result<Arc<[Type]>, Error> {
    if let Some(types) = cache.parameter_types(sql) {
        return Ok(types);
    }
    let pinned = tracker.dirt().transaction;
    let learn = async {
        if !pinned {
            raw.batch_execute("BEGIN").await?;
        }
        let described = raw.prepare(sql).await.map(|statement| {
            let types: Arc<[Type]> = statement.params().into();
            // Its Close is queued now, ahead of the COMMIT.
            drop(statement);
            types
        });
        if !pinned {
            let end = if described.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            raw.batch_execute(end).await?;
        }
        described
    };
    let types = tracker.in_flight(learn).await?;
    cache.insert_parameter_types(sql, types.clone());
    Ok(types)
}

/// The smallest pooler timeout given, and its setting's name.
fn pooler_bound(pg: &PgConfig) -> Option<(&'static str, Duration)> {
    [
        (
            "postgres.pooler_client_idle_timeout",
            pg.pooler_client_idle_timeout,
        ),
        (
            "postgres.pooler_server_idle_timeout",
            pg.pooler_server_idle_timeout,
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name, value)))
    .min_by_key(|&(_, value)| value)
}

/// The pool's `idle_timeout` and `max_lifetime` against the pooler's
/// timeouts, when the user gave them: each must be below both, so the pool
/// retires a connection before the pooler drops either side of it.
pub(crate) fn pool_rules(pool: &PoolConfig, pg: &PgConfig) -> Vec<ConfigError> {
    let mut p = Problems::default();
    let Some((bound_name, bound)) = pooler_bound(pg) else {
        return p.into_vec();
    };
    let shown = slotpool::config::schema::SettingValue::shown(&Some(bound));
    for (setting, value) in [
        ("idle_timeout", &pool.idle_timeout),
        ("max_lifetime", &pool.max_lifetime),
    ] {
        p.require(value.is_none_or(|v| v < bound), setting, value, || {
            format!(
                "must be less than {bound_name} ({shown}): the pooler would close the \
                 connection first, and the pool would find out only at a checkout"
            )
        });
    }
    p.require(
        pool.idle_timeout.is_some() || pool.max_lifetime.is_some(),
        "max_lifetime",
        &pool.max_lifetime,
        || {
            format!(
                "must be set (or idle_timeout) below {bound_name} ({shown}): with both \"off\" \
                 an idle connection outlives the pooler's timeout"
            )
        },
    );
    p.into_vec()
}

/// Derived defaults under the pooler's timeouts: `max_lifetime` 3/4 and
/// `idle_timeout` 1/2 of the smallest one given, when the user set neither
/// and the default would not nest (run before the pool's own derived
/// defaults, which then see a short `max_lifetime`).
pub(crate) fn derive_pool_defaults(
    pool: &mut PoolConfig,
    pg: &PgConfig,
    is_set: &dyn Fn(&str) -> bool,
) -> Vec<Derived> {
    let mut derived = Vec::new();
    let Some((bound_name, bound)) = pooler_bound(pg) else {
        return derived;
    };
    let short = bound.as_secs();
    let lifetime = Duration::from_secs((short * 3 / 4).max(1));
    let idle = Duration::from_secs((short / 2).max(1));
    let name = bound_name.trim_start_matches("postgres.");
    if !is_set("max_lifetime") && pool.max_lifetime.is_none_or(|v| v >= bound) {
        pool.max_lifetime = Some(lifetime);
        derived.push(Derived {
            setting: "max_lifetime",
            rule: format!("3/4 × {name}"),
        });
    }
    if !is_set("idle_timeout")
        && pool
            .idle_timeout
            .is_some_and(|v| v >= bound || v >= lifetime)
    {
        pool.idle_timeout = Some(idle).filter(|idle| *idle < lifetime);
        derived.push(Derived {
            setting: "idle_timeout",
            rule: format!("1/2 × {name}"),
        });
    }
    derived
}

/// Whether the connection runs behind a transaction-mode pooler.
pub(crate) fn transaction_mode(mode: PoolerMode) -> bool {
    mode == PoolerMode::Transaction
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn behind(client_idle: u64, server_idle: Option<u64>) -> PgConfig {
        PgConfig {
            pooler: PoolerMode::Transaction,
            pooler_client_idle_timeout: Some(Duration::from_secs(client_idle)),
            pooler_server_idle_timeout: server_idle.map(Duration::from_secs),
            ..PgConfig::default()
        }
    }

    fn names(problems: &[ConfigError]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn nothing_is_checked_without_the_poolers_timeouts() {
        let pg = PgConfig {
            pooler: PoolerMode::Transaction,
            ..PgConfig::default()
        };
        assert!(pool_rules(&PoolConfig::default(), &pg).is_empty());
    }

    #[test]
    fn lifetimes_above_the_poolers_timeouts_are_rejected_naming_both() {
        let pool = PoolConfig {
            idle_timeout: Some(Duration::from_secs(400)),
            max_lifetime: Some(Duration::from_secs(900)),
            ..PoolConfig::default()
        };
        let problems = pool_rules(&pool, &behind(300, Some(600)));
        let text = names(&problems);
        assert_eq!(problems.len(), 2, "{text:?}");
        assert!(text[0].contains("idle_timeout"), "{text:?}");
        assert!(
            text[0].contains("postgres.pooler_client_idle_timeout"),
            "{text:?}"
        );
        assert!(text[0].contains("5m"), "{text:?}");
        assert!(text[1].contains("max_lifetime"), "{text:?}");
        // The smaller of the two timeouts is the bound.
        let problems = pool_rules(&pool, &behind(3000, Some(450)));
        assert_eq!(problems.len(), 1, "{:?}", names(&problems));
        assert!(names(&problems)[0].contains("pooler_server_idle_timeout"));
    }

    #[test]
    fn lifetimes_below_pass_and_both_off_is_rejected() {
        let pool = PoolConfig {
            idle_timeout: Some(Duration::from_secs(60)),
            max_lifetime: Some(Duration::from_secs(240)),
            ..PoolConfig::default()
        };
        assert!(pool_rules(&pool, &behind(300, Some(600))).is_empty());
        let off = PoolConfig {
            idle_timeout: None,
            max_lifetime: None,
            ..PoolConfig::default()
        };
        let problems = names(&pool_rules(&off, &behind(300, None)));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("max_lifetime"), "{problems:?}");
    }

    #[test]
    fn unset_defaults_are_derived_below_and_set_values_are_kept() {
        let mut pool = PoolConfig::default();
        let derived = derive_pool_defaults(&mut pool, &behind(300, Some(600)), &|_| false);
        assert_eq!(pool.max_lifetime, Some(Duration::from_secs(225)));
        assert_eq!(pool.idle_timeout, Some(Duration::from_secs(150)));
        assert_eq!(derived.len(), 2);
        assert!(pool_rules(&pool, &behind(300, Some(600))).is_empty());

        // A value the user set is never derived: it is left to the rule.
        let mut pool = PoolConfig {
            idle_timeout: Some(Duration::from_secs(400)),
            ..PoolConfig::default()
        };
        derive_pool_defaults(&mut pool, &behind(300, None), &|name| {
            name == "idle_timeout"
        });
        assert_eq!(pool.idle_timeout, Some(Duration::from_secs(400)));
        assert_eq!(pool_rules(&pool, &behind(300, None)).len(), 1);
    }

    #[test]
    fn violations_follow_the_scan() {
        let scan = crate::sql_scan::scan;
        assert_eq!(
            violation(&scan("SET search_path TO x")),
            Some(PoolerViolation::SessionState)
        );
        assert_eq!(violation(&scan("SET LOCAL statement_timeout = 5")), None);
        assert_eq!(
            violation(&scan("SELECT pg_advisory_lock(1)")),
            Some(PoolerViolation::SessionState)
        );
        assert_eq!(violation(&scan("SELECT pg_advisory_xact_lock(1)")), None);
        assert_eq!(
            violation(&scan("SELECT set_config('app.user', 'x', true)")),
            None
        );
        assert_eq!(
            violation(&scan("CREATE TEMP TABLE t (x int)")),
            Some(PoolerViolation::SessionState)
        );
        assert_eq!(
            violation(&scan("LISTEN jobs")),
            Some(PoolerViolation::SessionState)
        );
        assert_eq!(
            violation(&scan("DECLARE c CURSOR WITH HOLD FOR SELECT 1")),
            Some(PoolerViolation::SessionState)
        );
        assert_eq!(
            violation(&scan("DISCARD ALL")),
            Some(PoolerViolation::PreparedStatements)
        );
        assert_eq!(
            violation(&scan("PREPARE p AS SELECT 1")),
            Some(PoolerViolation::PreparedStatements)
        );
        assert_eq!(violation(&scan("DO $$ BEGIN NULL; END $$")), None);
        assert_eq!(violation(&scan("SELECT 1; UPDATE t SET x = 1")), None);
    }
}

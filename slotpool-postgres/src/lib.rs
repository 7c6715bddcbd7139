//! slotpool's PostgreSQL backend, through tokio-postgres, with TLS through
//! rustls (ring; no system library).
//!
//! | item | what it is |
//! |------|------------|
//! | [`PgManager`] | an [`AsyncManager`](slotpool::AsyncManager) opening [`PgConnection`]s as a [`PgConfig`] says |
//! | [`PgConnection`] | a `tokio_postgres::Client` (by `Deref`) with a statement cache that survives check-in and tracked query methods, so a reset runs only when needed |
//! | [`PgConfig`], [`Config`] | the `[postgres]` section, and the pool's settings with it |
//! | [`SslMode`], [`Recycling`] | all five libpq TLS modes; deadpool's three recycling modes |
//! | [`PoolerMode`], [`PoolerViolation`] | behind PgBouncer (pgcat, PgDog, Supavisor) in transaction mode: no named statements, no session state (see below) |
//! | [`CredentialsProvider`], [`Credentials`], [`Secret`] | credentials per connection (rotation, IAM tokens), a secret that never prints |
//! | [`PgError`], [`classify()`] | errors that name the server and SQLSTATE and never a password; fatal or transient |
//! | [`Listener`], [`ListenerBuilder`], [`ListenerError`] | `LISTEN`/`NOTIFY` on a dedicated connection from the same settings: reconnects by itself and reports every gap (reconnect, full buffer); refused behind a transaction-mode pooler |
//! | [`ReplicaSet`], [`Session`], [`RoutedConnection`] | writes to the primary, reads to the least-loaded healthy replica within a lag bound and the caller's deadline, read-your-writes, per-member health ([`MemberStatus`]) |
//!
//! Owns: everything PostgreSQL-specific. It may not reach into the pool
//! core's internals: it implements the public `AsyncManager` trait like any
//! backend.
//!
//! Features: `config` (load [`Config`] from `config.toml` profiles and
//! `SLOTPOOL_POSTGRES_*` variables), `serde` (the password is written
//! redacted).
//!
//! # Example
//!
//! A pool of it is `Pool<Async<PgManager>>` on the tokio runtime the
//! service runs on (`slotpool::Async` is the core's adapter for async
//! managers). The manager on its own:
//!
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```no_run
use slotpool::AsyncManager;
use slotpool_postgres::{PgConfig, PgManager, Recycling, SslMode};

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
let mut config: PgConfig = "postgresql://app@db.internal:5432/app".parse()?;
config.sslmode = SslMode::VerifyFull;
config.statement_timeout = Some(std::time::Duration::from_secs(5));
config.recycling = Recycling::Verified;
let manager = PgManager::new(config)?; // validates, loads the trusted roots

let mut conn = manager.connect().await?;
let statement = conn.prepare_cached("SELECT $1::int4 + 1").await?;
let two: i32 = conn.query_one(&statement, &[&1i32]).await?.get(0);
assert_eq!(two, 2);

let tx = conn.transaction().await?;
tx.execute("SELECT 1", &[]).await?;
drop(tx); // rolled back
assert!(!manager.needs_reset(&mut conn)); // nothing left dirty
# Ok(())
# }
```
"#
)]
//!
//! # Behind PgBouncer in transaction mode
//!
//! With `postgres.pooler = "transaction"` ([`PoolerMode::Transaction`])
//! each transaction, and each statement outside one, may run on a
//! different server connection, so the crate keeps nothing in a session:
//!
//! * SQL text given to `query`, `query_one`, `query_opt` and `execute` is
//!   sent as an unnamed statement in one Parse/Bind/Execute/Sync message
//!   (tokio-postgres's `query_typed`); with parameters, their types are
//!   learnt once per SQL text and connection inside a `BEGIN`/`COMMIT`
//!   that pins one server connection (the named statement is closed
//!   before the `COMMIT`), and kept in the statement cache.
//! * `prepare`, `prepare_typed`, `prepare_cached` and
//!   `prepare_typed_cached` are refused: the error's source is
//!   [`PoolerViolation::NamedStatement`] and nothing is sent. Without
//!   pooler mode, a statement prepared through PgBouncer on one server
//!   connection is executed on another (`prepared statement "s3" does not
//!   exist`), and two processes' `s3` collide (`already exists`).
//! * `SET` (but not `SET LOCAL`), `LISTEN`, session advisory locks,
//!   temporary tables, `WITH HOLD` cursors, `LOAD`, SQL `PREPARE` and
//!   `DISCARD ALL` are refused before they are sent
//!   ([`PoolerViolation::SessionState`],
//!   [`PoolerViolation::PreparedStatements`]): each would stay on a server
//!   connection that other clients get next. Use `SET LOCAL`,
//!   `set_config(.., true)` and `pg_advisory_xact_lock` inside a
//!   transaction; `LISTEN` on a dedicated connection to the server itself.
//!   `DO` and `CALL` pass (the tracking cannot see inside them).
//! * No session state is set on connect: `statement_timeout` and
//!   `idle_in_transaction_session_timeout` (startup options, which
//!   PgBouncer 1.18 refuses: `unsupported startup parameter: options`) and
//!   `options` in the url are rejected at validation; set them per role
//!   (`ALTER ROLE app SET statement_timeout = '5s'`). `application_name`
//!   is kept: PgBouncer passes it on to the server connection it assigns.
//! * A returned connection is reset only by a `ROLLBACK` of a transaction
//!   left open; never the clean-up batch or `DISCARD ALL`, which would run
//!   on another client's server connection. `recycling = "clean"` is
//!   rejected at validation.
//! * Given the pooler's `pooler_client_idle_timeout` and
//!   `pooler_server_idle_timeout`, [`Config::validate`] requires the
//!   pool's `idle_timeout` and `max_lifetime` below them, and
//!   [`Config::load`](Config) (or [`Config::derive_unset_defaults`])
//!   derives them below when the user did not set them.
//! * Types that are not built in (enums, composites, domains) need
//!   tokio-postgres's type-lookup statements, which are named: use built-in
//!   types or cast (`$1::text::my_enum`).
#![forbid(unsafe_code)]

mod classify;
mod config;
mod conn_string;
mod connection;
mod credentials;
mod error;
mod keywords;
mod listener;
mod login;
mod manager;
mod pg_config;
mod pooler;
mod replica;
mod reset;
mod rules;
mod secret;
mod sql_scan;
mod statement_cache;
mod target;
mod tls;
mod tracked;
mod tracker;
mod transaction;
mod url;
mod verifiers;

pub use classify::classify;
pub use config::Config;
pub use connection::PgConnection;
pub use credentials::{Credentials, CredentialsFuture, CredentialsProvider, StaticCredentials};
pub use error::{ClientCertProblem, PgError};
pub use keywords::{PoolerMode, Recycling, SslMode};
pub use listener::{
    DEFAULT_LISTENER_CAPACITY, Listener, ListenerBuilder, ListenerError, MAX_CHANNEL_LEN,
};
pub use manager::PgManager;
pub use pg_config::{MAX_STATEMENT_CACHE_CAPACITY, PgConfig};
pub use pooler::PoolerViolation;
pub use replica::{
    Fallback, Lsn, MemberStatus, ParseLsnError, PgPool, ReadYourWrites, ReplicaError, ReplicaSet,
    ReplicaSetBuilder, Role, RoutedConnection, Session,
};
pub use reset::{CLEAN_UP_BATCH, DEALLOCATE_SQL_PREPARED};
pub use rules::MAX_APPLICATION_NAME_LEN;
pub use secret::{REDACTED, Secret};
pub use statement_cache::StatementCacheStats;
pub use target::{DEFAULT_HOST, DEFAULT_USER};
pub use tls::SYSTEM_ROOTS;
pub use tracked::SqlStatement;
pub use tracker::Dirt;
pub use transaction::{PgTransaction, PgTransactionBuilder};
pub use url::ConnectionString;

/// tokio-postgres, re-exported so the types in this crate's API (`Row`,
/// `Statement`, `types::ToSql`) match the version it was built with.
pub use tokio_postgres;

/// The README's examples, compiled as doctests (`rust,ignore` blocks are
/// fragments).
#[cfg(all(doctest, not(feature = "loom")))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

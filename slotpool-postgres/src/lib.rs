//! slotpool's PostgreSQL backend, through tokio-postgres, with TLS through
//! rustls (ring; no system library).
//!
//! | item | what it is |
//! |------|------------|
//! | [`PgManager`] | an [`AsyncManager`](slotpool::AsyncManager) opening [`PgConnection`]s as a [`PgConfig`] says |
//! | [`PgConnection`] | a `tokio_postgres::Client` (by `Deref`) with a statement cache that survives check-in and tracked query methods, so a reset runs only when needed |
//! | [`PgConfig`], [`Config`] | the `[postgres]` section, and the pool's settings with it |
//! | [`SslMode`], [`Recycling`] | all five libpq TLS modes; deadpool's three recycling modes |
//! | [`CredentialsProvider`], [`Credentials`], [`Secret`] | credentials per connection (rotation, IAM tokens), a secret that never prints |
//! | [`PgError`], [`classify()`] | errors that name the server and SQLSTATE and never a password; fatal or transient |
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
#![forbid(unsafe_code)]

mod classify;
mod config;
mod conn_string;
mod connection;
mod credentials;
mod error;
mod keywords;
mod manager;
mod pg_config;
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
pub use error::PgError;
pub use keywords::{Recycling, SslMode};
pub use manager::PgManager;
pub use pg_config::{MAX_STATEMENT_CACHE_CAPACITY, PgConfig};
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

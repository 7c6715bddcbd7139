//! slotpool's SQLite backend, through rusqlite (SQLite compiled in by
//! default: feature `bundled`).
//!
//! | item | what it is |
//! |------|------------|
//! | [`SqliteManager`] | a [`Manager`](slotpool::Manager) opening connections as a [`SqliteConfig`] says |
//! | [`SqlitePool`] | one writer connection plus a pool of read-only readers |
//! | [`Config`] | the pool's settings and the `[sqlite]` section together |
//! | [`SqliteError`] | open/setup/check failures, naming the database, classified transient or permanent |
//!
//! Owns: everything SQLite-specific. The pool core knows nothing of it. It
//! may not reach into the pool core's internals: it uses the public `Manager`
//! and `Pool` API like any backend.
//!
//! Features: `bundled` (default: compile SQLite; off: link the system's
//! `libsqlite3`), `config` (load [`Config`] from `config.toml` profiles and
//! `SLOTPOOL_SQLITE_*` variables), `serde`.
//!
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::Pool;
use slotpool_sqlite::SqliteManager;

let dir = tempfile::tempdir().unwrap();
let pool = Pool::builder()
    .max_size(2)
    .build(SqliteManager::file(dir.path().join("app.db")))
    .unwrap();
let conn = pool.get().unwrap();
let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0)).unwrap();
assert_eq!(one, 1);
```
"#
)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod manager;
mod pool;

pub use config::{
    Config, JournalMode, Locking, MAX_STATEMENT_CACHE_CAPACITY, SqliteConfig, Synchronous,
    TempStore,
};
pub use error::SqliteError;
pub use manager::SqliteManager;
pub use pool::{SqliteConnection, SqlitePool};

/// The README's examples, compiled and run as doctests of this crate (it
/// depends on everything they use).
#[cfg(all(doctest, not(feature = "loom")))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

//! The embedded default backend: SQLite through rusqlite (bundled SQLite).
//!
//! | item | what it is |
//! |------|------------|
//! | [`SqliteManager`] | a [`Manager`](crate::Manager) opening connections as a [`SqliteConfig`](crate::config::SqliteConfig) says |
//! | [`SqlitePool`] | one writer connection plus a pool of read-only readers |
//! | [`SqliteError`] | open/setup/check failures, naming the database, classified transient or permanent |
//!
//! Owns: everything SQLite-specific. The pool core knows nothing of it.
//!
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool::Pool;
use slotpool::sqlite::SqliteManager;

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

mod error;
mod manager;
mod pool;

pub use error::SqliteError;
pub use manager::SqliteManager;
pub use pool::{SqliteConnection, SqlitePool};

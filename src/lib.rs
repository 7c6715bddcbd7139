//! slotpool: a connection pool for latency-sensitive services, built on a
//! lock-free array of slots with atomic state tags.
//!
//! A get and a return on the fast path take no lock, allocate nothing, and
//! cost two atomic read-modify-writes on the slot's tag plus one load of the
//! waiter count. Waiting callers queue in FIFO order and are handed returned
//! or newly opened connections directly; connections are opened on a
//! background worker, so a hanging `connect()` never breaks a caller's
//! deadline.
//!
//! # Layout
//!
//! | module      | owns |
//! |-------------|------|
//! | `sync`      | the std/loom facade: every primitive the core uses |
//! | `slot`      | the slot array, state tags, leases (all `unsafe`) |
//! | `waiters`   | the FIFO waiter queue and hand-off |
//! | `pool`      | `Pool`, `Builder`, `PooledConnection`, the protocols |
//! | `worker`    | the background thread: connects, closes, clock ticks |
//! | `maintenance` | idle retirement, lifetimes, keepalive, leak detection |
//! | `clock`     | coarse and precise time, `ManualClock` for tests |
//! | `config`    | `PoolConfig`, profiles, environment, validation |
//! | `manager`   | the `Manager` trait |
//! | `events`    | `PoolEvents` hooks |
//! | `stats`     | counters, histograms, `Stats`, Prometheus text, health |
//! | `closer`    | the process-wide thread that closes discarded connections |
//! | `sqlite`    | the embedded default backend (rusqlite) |
//! | `compat`    | adapters for other pools' managers (r2d2) |
#![cfg_attr(not(feature = "loom"), doc = include_str!("../README.md"))]
#![warn(missing_docs)]

mod clock;
mod closer;
pub mod compat;
pub mod config;
mod error;
mod events;
mod maintenance;
mod manager;
mod pool;
mod slot;
pub mod sqlite;
pub mod stats;
mod sync;
mod waiters;
mod worker;

pub use clock::ManualClock;
pub use config::{ConfigError, PoolConfig};
pub use error::{Error, State};
pub use events::PoolEvents;
pub use manager::{ErrorClass, Manager};
pub use pool::{Acquire, Builder, CloseReason, ConnectionInfo, Pool, PooledConnection};
pub use stats::Stats;

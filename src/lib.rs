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
//! | `background` | the dispatcher (deadlines, clock tick, maintenance) and the lanes that run user code: connector, checker, closer |
//! | `clock`     | coarse and precise time, `ManualClock` for tests |
//! | `config`    | `PoolConfig`, profiles, environment, validation |
//! | `manager`   | the `Manager` trait |
//! | `events`    | `PoolEvents` hooks |
//! | `telemetry` | log lines and the acquire span (through `tracing`, feature `tracing`) |
//! | `stats`     | counters, histograms, `Stats`, Prometheus text, health |
//! | `compat`    | adapters for other pools' managers (r2d2, feature `r2d2`) |
//!
//! Backends live in their own crates: `slotpool-sqlite` (rusqlite) and the
//! `slotpool` command-line tool (`slotpool-cli`).
//!
//! # Features
//!
//! None is on by default; a service that only wants the pool compiles the
//! pool and a handful of small crates, and no C.
//!
//! | feature | what it adds |
//! |---------|--------------|
//! | `config` | profiles in TOML files and `SLOTPOOL_*` overrides ([`PoolConfig::load`], [`config::load_with_sources`]) |
//! | `serde` | `Serialize` for [`Stats`], [`State`] and the health report; serde for [`PoolConfig`] |
//! | `prometheus` | [`Stats::to_prometheus`] and `Stats::to_openmetrics`: the Prometheus (0.0.4) and OpenMetrics text formats, with HikariCP's or OpenTelemetry's names (`Stats::render_prometheus_with`), fixed histogram buckets ([`stats::LatencyBuckets`]); encoded by prometheus-client |
//! | `metrics` | `Stats::publish_metrics` / `publish_metrics_with`: the `metrics` crate facade, with HikariCP's or OpenTelemetry's names |
//! | `r2d2` | [`compat::r2d2::R2d2Manager`]: any r2d2 manager, unchanged |
//! | `tokio` | [`runtime::Tokio`]: pools of [`AsyncManager`]s on a tokio runtime |
//! | `tracing` | log lines (leaks, panicking callbacks, failed connects) and the `slotpool.acquire` span through `tracing`; without it nothing is logged, and every such event is still counted in [`Stats`] (a leak also reaches [`PoolEvents::on_leak`]) |
//! | `test-util` | `ManualClock`, `Builder::clock`, `Builder::manual_background` for deterministic tests |
//! | `loom` | the loom models (`cargo test --features loom`); never for production |
//!
//! # Example
//!
#![cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use std::time::Duration;
use slotpool::{Manager, Pool};

/// A manager opens and checks connections; here, a stand-in for a database.
struct Database;

impl Manager for Database {
    type Connection = Vec<String>;
    type Error = std::io::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        Ok(Vec::new())
    }
    fn is_valid(&self, _conn: &mut Self::Connection) -> Result<(), Self::Error> {
        Ok(())
    }
    fn has_broken(&self, _conn: &mut Self::Connection) -> bool {
        false
    }
    fn reset(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        conn.clear(); // the next borrower gets a clean connection
        Ok(())
    }
}

let pool = Pool::builder()
    .max_size(8)
    .connection_timeout(Duration::from_secs(10))
    .build(Database)
    .expect("valid configuration");

let mut conn = pool.get().expect("a connection within 10 s");
conn.push("SELECT 1".to_string());
drop(conn); // back to the pool, reset on the way

let state = pool.state();
assert_eq!((state.connections, state.idle_connections, state.in_use), (1, 1, 0));
```
"#
)]
//!
//! The design (state machine, invariants, hot-path budget) is in
//! `docs/DESIGN.md` in the repository.
#![warn(missing_docs)]

mod backend;
mod background;
mod clock;
pub mod compat;
pub mod config;
mod error;
mod events;
mod manager;
mod pool;
pub mod runtime;
mod slot;
pub mod stats;
mod sync;
mod telemetry;
mod waiters;

pub use backend::{Async, Backend};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use config::{ConfigError, PoolConfig};
pub use error::{BuildError, CloseTimedOut, Error, TryGetError};
pub use events::PoolEvents;
pub use manager::{AsyncManager, ErrorClass, Manager};
pub use pool::{Acquire, Builder, CloseReason, ConnectionInfo, Pool, PooledConnection, State};
pub use stats::Stats;

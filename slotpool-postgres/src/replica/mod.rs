//! Read/write routing over one primary and its streaming replicas:
//! [`ReplicaSet`].
//!
//! Owns: the router and everything it decides (which member serves a read,
//! when a replica is skipped, when it rejoins, read-your-writes). Each file
//! holds one idea:
//!
//! | file | owns |
//! |------|------|
//! | `lsn.rs` | [`Lsn`]: a WAL position, parsed from and shown as PostgreSQL's `X/Y` |
//! | `policy.rs` | the choices a user makes: [`Fallback`], [`ReadYourWrites`], [`Role`] |
//! | `error.rs` | [`ReplicaError`], naming the member |
//! | `member.rs` | one member: its pool, health and counters; [`MemberStatus`] |
//! | `choose.rs` | the least-loaded order of the candidate replicas (pure, unit-tested) |
//! | `health.rs` | the health check: the primary's WAL position, each replica's replay position |
//! | `builder.rs` | [`ReplicaSetBuilder`] and its validation |
//! | `set.rs` | [`ReplicaSet`]: writes, reads, the deadline split, fallback |
//! | `routed.rs` | [`RoutedConnection`]: a pooled connection that says who served it |
//! | `session.rs` | [`Session`]: read-your-writes for one caller |
//!
//! It may not reach into the pool core's internals or the manager's: it
//! uses `Pool`'s public API (`get_timeout_async`, `state`) and
//! `PgConnection`'s tracked query methods, like any user of the crate.

mod builder;
mod choose;
mod error;
mod health;
mod lsn;
mod member;
mod policy;
mod routed;
mod session;
mod set;

pub use builder::ReplicaSetBuilder;
pub use error::ReplicaError;
pub use lsn::{Lsn, ParseLsnError};
pub use member::MemberStatus;
pub use policy::{Fallback, ReadYourWrites, Role};
pub use routed::RoutedConnection;
pub use session::Session;
pub use set::{PgPool, ReplicaSet};

//! Adapters that let managers written for other pools work with slotpool.
//!
//! Owns: nothing of the pool; each submodule maps another crate's manager
//! trait onto [`Manager`](crate::Manager). It may not depend on the pool's
//! internals.

#[cfg(feature = "r2d2")]
pub mod r2d2;

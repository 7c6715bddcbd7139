//! [`ReplicaError`]: what routing fails with, always naming the member.
//!
//! Owns: the error type and its messages. It may not decide what to retry
//! (`set.rs` does).

use std::time::Duration;

use crate::PgError;

/// A failed acquisition from one member's pool.
pub type PoolError = slotpool::Error<PgError>;

/// An error from a [`ReplicaSet`](crate::ReplicaSet) or a
/// [`Session`](crate::Session). Every variant about a server names the
/// member (`primary`, or the name given to
/// [`replica`](crate::ReplicaSetBuilder::replica)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The builder's settings break a rule (names the setting).
    #[error("invalid replica set: {0}")]
    Build(String),

    /// A member's pool gave no connection (timed out, could not connect,
    /// closed). The pool's error, with its state, is the source.
    #[error("member '{member}': no connection: {source}")]
    Acquire {
        /// The member.
        member: String,
        /// The pool's error.
        #[source]
        source: PoolError,
    },

    /// The caller's deadline passed before a member could serve.
    #[error("member '{member}': the deadline ({timeout:?}) passed")]
    Timeout {
        /// The member that was being tried when the deadline passed.
        member: String,
        /// The caller's deadline.
        timeout: Duration,
    },

    /// No replica could serve a read and the fallback is
    /// [`Fallback::FailFast`](crate::Fallback::FailFast). Lists each
    /// replica and why it was skipped.
    #[error("no healthy replica ({})", describe(.skipped))]
    NoHealthyReplica {
        /// `(member, reason)` for every replica.
        skipped: Vec<(String, String)>,
    },

    /// A statement on a member's connection failed.
    #[error("member '{member}': {source}")]
    Query {
        /// The member.
        member: String,
        /// The error.
        #[source]
        source: PgError,
    },

    /// A statement returned something that is not what PostgreSQL returns
    /// for it (a WAL position that does not parse).
    #[error("member '{member}': unexpected answer to {what}: {answer:?}")]
    Unexpected {
        /// The member.
        member: String,
        /// The statement's purpose.
        what: &'static str,
        /// What came back.
        answer: Option<String>,
    },
}

impl ReplicaError {
    /// The member the error is about, if it is about one.
    #[must_use]
    pub fn member(&self) -> Option<&str> {
        match self {
            Self::Acquire { member, .. }
            | Self::Timeout { member, .. }
            | Self::Query { member, .. }
            | Self::Unexpected { member, .. } => Some(member),
            Self::Build(_) | Self::NoHealthyReplica { .. } => None,
        }
    }
}

fn describe(skipped: &[(String, String)]) -> String {
    if skipped.is_empty() {
        return "the set has no replica".to_owned();
    }
    skipped
        .iter()
        .map(|(member, why)| format!("'{member}': {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

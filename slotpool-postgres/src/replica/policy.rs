//! The choices a user makes about routing: what happens when no replica
//! can serve a read ([`Fallback`]), how a caller reads its own writes
//! ([`ReadYourWrites`]), and the two roles a member plays ([`Role`]).
//!
//! Owns: these plain types and their documentation. It may not route.

use std::fmt;
use std::time::Duration;

/// What a read does when no replica can serve it (all down, lagging past
/// the bound, or failing within the read's share of the deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// The primary serves it (the default): reads never fail because the
    /// replicas did.
    #[default]
    Primary,
    /// The read fails at once with
    /// [`ReplicaError::NoHealthyReplica`](crate::ReplicaError::NoHealthyReplica),
    /// keeping read load off the primary.
    FailFast,
}

/// How reads through a [`Session`](crate::Session) see the session's own
/// writes. Reads through the [`ReplicaSet`](crate::ReplicaSet) itself never
/// wait for anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadYourWrites {
    /// No guarantee: a session reads like the set.
    Off,
    /// For this long after the session's last write, its reads go to the
    /// primary. Cheap (no query), but a replica lagging longer than this
    /// can still miss the write.
    For(Duration),
    /// The default: the session remembers the WAL position after its last
    /// write (`pg_current_wal_lsn()` on the primary); a read goes to a
    /// replica only if that replica has replayed at least that far
    /// (`pg_last_wal_replay_lsn()`), otherwise to the primary. Exact.
    #[default]
    UntilReplayed,
}

/// What a member of a [`ReplicaSet`](crate::ReplicaSet) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The primary: every write, and reads no replica serves.
    Primary,
    /// A streaming replica: reads.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        })
    }
}

//! One member of a replica set: its pool, what the last health check and
//! the last reads found, and its counters; [`MemberStatus`], the snapshot a
//! user sees.
//!
//! Owns: a member's state and the rules that change it (a failure marks a
//! replica unhealthy; only a passing health check brings it back). It may
//! not choose between members (`choose.rs`) or query a server
//! (`health.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::lsn::Lsn;
use super::policy::Role;
use super::set::PgPool;

/// A member: its pool, health and counters.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) pool: PgPool,
    health: Mutex<Health>,
    pub(crate) counters: Counters,
}

/// What is known about a member's health.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    /// Reachable and (a replica) in recovery, as far as the last check or
    /// read saw. A replica starts healthy, unchecked.
    pub(crate) down: bool,
    /// Replaying further behind than the set's bound at the last check.
    pub(crate) lagging: bool,
    pub(crate) lag_bytes: Option<u64>,
    pub(crate) lag_time: Option<Duration>,
    pub(crate) replay_lsn: Option<Lsn>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_check: Option<Instant>,
}

/// Monotonic counts for one member.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) fallback_reads: AtomicU64,
    pub(crate) session_reads: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) checks: AtomicU64,
    pub(crate) failed_checks: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Member {
    pub(crate) fn new(name: String, role: Role, pool: PgPool) -> Self {
        Self {
            name,
            role,
            pool,
            health: Mutex::new(Health::default()),
            counters: Counters::default(),
        }
    }

    pub(crate) fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut Health)) {
        change(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Why a read may not use this replica now, or `None` if it may.
    pub(crate) fn unroutable(&self) -> Option<String> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if health.down {
            Some(format!(
                "down: {}",
                health.last_error.as_deref().unwrap_or("unknown error")
            ))
        } else if health.lagging {
            Some(match (health.lag_bytes, health.lag_time) {
                (Some(bytes), Some(time)) => format!("lagging {bytes} bytes, {time:?}"),
                (Some(bytes), None) => format!("lagging {bytes} bytes"),
                _ => "lagging".to_owned(),
            })
        } else {
            None
        }
    }

    /// A read or check failed on this member: it is skipped until a health
    /// check passes.
    pub(crate) fn mark_down(&self, error: String) {
        self.update(|health| {
            if health.down {
                tracing::debug!(member = %self.name, %error, "replica set member still unhealthy");
            } else {
                tracing::warn!(
                    member = %self.name,
                    role = %self.role,
                    %error,
                    "replica set member marked unhealthy: reads skip it until a health check passes"
                );
            }
            health.down = true;
            health.last_error = Some(error);
        });
    }

    /// Whether a health check is due after `interval`.
    pub(crate) fn check_due(&self, interval: Duration, now: Instant) -> bool {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_check
            .is_none_or(|last| now.saturating_duration_since(last) >= interval)
    }

    pub(crate) fn status(&self) -> MemberStatus {
        let health = self.health();
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        MemberStatus {
            name: self.name.clone(),
            role: self.role,
            healthy: !health.down,
            lagging: health.lagging,
            lag_bytes: health.lag_bytes,
            lag_time: health.lag_time,
            replay_lsn: health.replay_lsn,
            last_error: health.last_error,
            since_last_check: health.last_check.map(|at| at.elapsed()),
            reads: count(&c.reads),
            writes: count(&c.writes),
            fallback_reads: count(&c.fallback_reads),
            session_reads: count(&c.session_reads),
            skipped: count(&c.skipped),
            failures: count(&c.failures),
            checks: count(&c.checks),
            failed_checks: count(&c.failed_checks),
            pool: self.pool.state(),
        }
    }
}

/// A snapshot of one member's health and counters
/// ([`ReplicaSet::members`](crate::ReplicaSet::members)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MemberStatus {
    /// `primary` (or the name given with
    /// [`primary_name`](crate::ReplicaSetBuilder::primary_name)), or the
    /// replica's name.
    pub name: String,
    /// Primary or replica.
    pub role: Role,
    /// Reachable (and, for a replica, in recovery) as far as the last
    /// health check and the reads since saw. An unhealthy replica serves no
    /// read until a health check passes.
    pub healthy: bool,
    /// A replica that replayed further behind than the set's bound at the
    /// last check; it serves no read until a check finds it within bound.
    pub lagging: bool,
    /// How many bytes of WAL the replica had left to replay at the last
    /// check (the primary's `pg_current_wal_flush_lsn()` minus the
    /// replica's `pg_last_wal_replay_lsn()`); `None` before the first
    /// check or when the primary could not be asked.
    pub lag_bytes: Option<u64>,
    /// Zero when the replica had replayed everything at the last check,
    /// otherwise the age of the last transaction it replayed (`now() -
    /// pg_last_xact_replay_timestamp()`).
    pub lag_time: Option<Duration>,
    /// The replica's replay position at the last check (or the last
    /// read-your-writes check).
    pub replay_lsn: Option<Lsn>,
    /// The last error seen on this member, if any.
    pub last_error: Option<String>,
    /// Time since the last health check finished.
    pub since_last_check: Option<Duration>,
    /// Reads this member served (for the primary: fallbacks and sessions'
    /// reads included).
    pub reads: u64,
    /// Writes (the primary only).
    pub writes: u64,
    /// Reads the primary served because no replica could (the primary
    /// only).
    pub fallback_reads: u64,
    /// Reads the primary served for read-your-writes (the primary only).
    pub session_reads: u64,
    /// Reads that passed this replica over because it was unhealthy or
    /// lagging.
    pub skipped: u64,
    /// Acquisitions and reads that failed on this member.
    pub failures: u64,
    /// Health checks run.
    pub checks: u64,
    /// Health checks that failed (the member was unreachable, not in
    /// recovery, or too slow).
    pub failed_checks: u64,
    /// The member's pool now.
    pub pool: slotpool::State,
}

impl MemberStatus {
    /// Whether reads may go to this member now (healthy and not lagging).
    #[must_use]
    pub fn routable(&self) -> bool {
        self.healthy && !self.lagging
    }
}

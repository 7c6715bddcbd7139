//! [`ReplicaSetBuilder`]: the members and the routing settings of a
//! [`ReplicaSet`], checked at `build`.
//!
//! Owns: the defaults and the rules (unique, non-empty names; a share and
//! durations in range; fail-fast needs a replica). It may not route or
//! connect: pools are built by the caller (or [`ReplicaSet::pool`]).

use std::time::Duration;

use super::error::ReplicaError;
use super::health::LagBounds;
use super::member::Member;
use super::policy::{Fallback, ReadYourWrites, Role};
use super::set::{PgPool, ReplicaSet, Settings};

/// Builds a [`ReplicaSet`] from a primary pool and replica pools.
///
/// | setting | default |
/// |---|---|
/// | [`primary_name`](Self::primary_name) | `"primary"` |
/// | [`max_lag_bytes`](Self::max_lag_bytes), [`max_lag`](Self::max_lag) | none: a reachable replica serves however far behind |
/// | [`fallback`](Self::fallback) | [`Fallback::Primary`] |
/// | [`read_your_writes`](Self::read_your_writes) | [`ReadYourWrites::UntilReplayed`] |
/// | [`health_interval`](Self::health_interval) | 1 s |
/// | [`check_timeout`](Self::check_timeout) | 1 s |
/// | [`replica_share`](Self::replica_share) | 0.5 |
/// | [`timeout`](Self::timeout) | the primary pool's `connection_timeout` |
#[derive(Debug)]
#[must_use = "call build() to get the set"]
pub struct ReplicaSetBuilder {
    primary: PgPool,
    primary_name: String,
    replicas: Vec<(String, PgPool)>,
    bounds: LagBounds,
    fallback: Fallback,
    read_your_writes: ReadYourWrites,
    health_interval: Duration,
    check_timeout: Duration,
    replica_share: f64,
    timeout: Option<Duration>,
}

impl ReplicaSetBuilder {
    pub(crate) fn new(primary: PgPool) -> Self {
        Self {
            primary,
            primary_name: "primary".to_owned(),
            replicas: Vec::new(),
            bounds: LagBounds::default(),
            fallback: Fallback::default(),
            read_your_writes: ReadYourWrites::default(),
            health_interval: Duration::from_secs(1),
            check_timeout: Duration::from_secs(1),
            replica_share: 0.5,
            timeout: None,
        }
    }

    /// The primary's name in statistics and errors.
    pub fn primary_name(mut self, name: impl Into<String>) -> Self {
        self.primary_name = name.into();
        self
    }

    /// Adds a replica, named `name` in statistics and errors.
    pub fn replica(mut self, name: impl Into<String>, pool: PgPool) -> Self {
        self.replicas.push((name.into(), pool));
        self
    }

    /// A replica more than `bytes` of WAL behind the primary at a health
    /// check serves no read until a check finds it within the bound. 0:
    /// only a replica that had replayed everything the primary had flushed.
    pub fn max_lag_bytes(mut self, bytes: u64) -> Self {
        self.bounds.bytes = Some(bytes);
        self
    }

    /// A replica whose time lag (the age of the last transaction it
    /// replayed, when it has not replayed everything) exceeds `lag` at a
    /// health check serves no read until a check finds it within the bound.
    pub fn max_lag(mut self, lag: Duration) -> Self {
        self.bounds.time = Some(lag);
        self
    }

    /// What reads do when no replica can serve.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// How [`Session`](crate::Session)s read their own writes.
    pub fn read_your_writes(mut self, mode: ReadYourWrites) -> Self {
        self.read_your_writes = mode;
        self
    }

    /// How often replicas are checked (a round starts from the first read
    /// after it is due, in a task).
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }

    /// The bound on each health-check step (a connection, the statement).
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// The part of a read's deadline the replicas get (between 0 and 1,
    /// exclusive); the primary has the rest.
    pub fn replica_share(mut self, share: f64) -> Self {
        self.replica_share = share;
        self
    }

    /// The deadline of [`read`](ReplicaSet::read) and
    /// [`write`](ReplicaSet::write).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The set, if the settings are valid.
    pub fn build(self) -> Result<ReplicaSet, ReplicaError> {
        let invalid = |why: String| Err(ReplicaError::Build(why));
        if self.primary_name.is_empty() {
            return invalid("primary_name must not be empty".to_owned());
        }
        let mut names = vec![self.primary_name.as_str()];
        for (name, _) in &self.replicas {
            if name.is_empty() {
                return invalid("a replica's name must not be empty".to_owned());
            }
            if names.contains(&name.as_str()) {
                return invalid(format!("two members are named '{name}'"));
            }
            names.push(name);
        }
        if !(self.replica_share > 0.0 && self.replica_share < 1.0) {
            return invalid(format!(
                "replica_share must be between 0 and 1 (exclusive), not {}",
                self.replica_share
            ));
        }
        if self.health_interval.is_zero() || self.check_timeout.is_zero() {
            return invalid("health_interval and check_timeout must be above zero".to_owned());
        }
        if self.replicas.is_empty() && self.fallback == Fallback::FailFast {
            return invalid("fallback FailFast with no replica would fail every read".to_owned());
        }
        let timeout = self
            .timeout
            .unwrap_or_else(|| self.primary.config().connection_timeout);
        if timeout.is_zero() {
            return invalid("timeout must be above zero".to_owned());
        }
        let settings = Settings {
            bounds: self.bounds,
            fallback: self.fallback,
            read_your_writes: self.read_your_writes,
            health_interval: self.health_interval,
            check_timeout: self.check_timeout,
            replica_share: self.replica_share,
            timeout,
        };
        let primary = Member::new(self.primary_name, Role::Primary, self.primary);
        let replicas = self
            .replicas
            .into_iter()
            .map(|(name, pool)| Member::new(name, Role::Replica, pool))
            .collect();
        Ok(ReplicaSet::from_parts(primary, replicas, settings))
    }
}

//! [`ReplicaSet`]: writes to the primary, reads to the least-loaded
//! healthy replica, within the caller's deadline.
//!
//! A read's deadline is split: replicas get the first
//! [`replica_share`](crate::ReplicaSetBuilder::replica_share) of it (divided
//! among the candidates in the order `choose.rs` gives), the primary the
//! rest. A replica that gives no connection in its part (down, hanging,
//! connects failing) is marked unhealthy and skipped by later reads until a
//! health check passes; a replica whose pool is merely full is skipped for
//! this read only. Health checks run in a tokio task that reads start when
//! one is due (every `health_interval`), or when the user calls
//! [`check_health`](ReplicaSet::check_health).
//!
//! Owns: the routing decision, the deadline split, the fallback and the
//! per-member counting. It may not run a health check's statements itself
//! (`health.rs`) or keep a session's state (`session.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, ErrorClass, Pool, PoolConfig, PooledConnection};

use super::builder::ReplicaSetBuilder;
use super::choose::{self, Candidate};
use super::error::{PoolError, ReplicaError};
use super::health::{self, LagBounds};
use super::lsn::Lsn;
use super::member::{Counters, Member, MemberStatus};
use super::policy::{Fallback, ReadYourWrites, Role};
use super::routed::RoutedConnection;
use super::session::Session;
use crate::{PgConfig, PgConnection, PgError, PgManager};

/// A pool of PostgreSQL connections, as each member of a set has one.
pub type PgPool = Pool<Async<PgManager>>;

/// A router over one primary pool and replica pools: writes go to the
/// primary, reads to the least-loaded healthy replica that replays within
/// the configured lag, or to the primary when none can serve (or fail fast,
/// per [`Fallback`]). Cheap to clone (one `Arc`).
///
/// ```no_run
/// # use std::time::Duration;
/// # use slotpool_postgres::{Fallback, ReadYourWrites, ReplicaSet, PgConfig};
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = slotpool::PoolConfig::default();
/// let primary = ReplicaSet::pool("postgresql://app@db1/app".parse::<PgConfig>()?, pool.clone())?;
/// let replica = ReplicaSet::pool("postgresql://app@db2/app".parse::<PgConfig>()?, pool)?;
/// let set = ReplicaSet::builder(primary)
///     .replica("db2", replica)
///     .max_lag_bytes(16 << 20)
///     .fallback(Fallback::Primary)
///     .read_your_writes(ReadYourWrites::UntilReplayed)
///     .build()?;
///
/// let conn = set.read_timeout(Duration::from_secs(1)).await?;
/// println!("served by {}", conn.member());
///
/// let session = set.session();
/// let writer = session.write().await?;
/// writer.execute("INSERT INTO t VALUES (1)", &[]).await?;
/// session.committed(&writer).await?;
/// drop(writer);
/// let reader = session.read().await?; // a replica that has replayed the insert, or the primary
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ReplicaSet {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) primary: Member,
    pub(crate) replicas: Vec<Member>,
    pub(crate) settings: Settings,
    rotation: AtomicUsize,
    rejected: AtomicU64,
    /// A health-check round started by a read is running.
    checking: AtomicBool,
}

/// The builder's settings, validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) bounds: LagBounds,
    pub(crate) fallback: Fallback,
    pub(crate) read_your_writes: ReadYourWrites,
    pub(crate) health_interval: Duration,
    pub(crate) check_timeout: Duration,
    pub(crate) replica_share: f64,
    pub(crate) timeout: Duration,
}

/// Where a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Any routable replica, else the fallback.
    Any,
    /// A routable replica that has replayed at least this far, else the
    /// primary (read-your-writes).
    Replayed(Lsn),
    /// The primary (read-your-writes).
    Primary,
}

/// Why a replica did not serve a read.
enum Skip {
    /// Healthy, but it has not replayed the session's position.
    Behind(String),
    /// Unhealthy, lagging, busy or out of time.
    Other(String),
}

impl ReplicaSet {
    /// A builder for a set whose primary is `primary`.
    pub fn builder(primary: PgPool) -> ReplicaSetBuilder {
        ReplicaSetBuilder::new(primary)
    }

    pub(crate) fn from_parts(primary: Member, replicas: Vec<Member>, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                primary,
                replicas,
                settings,
                rotation: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
                checking: AtomicBool::new(false),
            }),
        }
    }

    /// A member's pool from settings: `Pool<Async<PgManager>>` on the
    /// calling tokio runtime.
    pub fn pool(config: PgConfig, pool: PoolConfig) -> Result<PgPool, ReplicaError> {
        let manager =
            PgManager::new(config).map_err(|error| ReplicaError::Build(error.to_string()))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ReplicaError::Build(format!(
                "the pool for {} must be built on a tokio runtime",
                manager.target()
            ))
        })?;
        Pool::builder()
            .config(pool)
            .build(Async::new(manager, Tokio(runtime)))
            .map_err(|error| ReplicaError::Build(error.to_string()))
    }

    /// A primary connection, within the set's
    /// [`timeout`](crate::ReplicaSetBuilder::timeout).
    pub async fn write(&self) -> Result<RoutedConnection<'_>, ReplicaError> {
        self.write_timeout(self.inner.settings.timeout).await
    }

    /// A primary connection, within `timeout`.
    pub async fn write_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RoutedConnection<'_>, ReplicaError> {
        let primary = &self.inner.primary;
        let conn = self.primary_conn(Instant::now() + timeout, timeout).await?;
        Counters::bump(&primary.counters.writes);
        Ok(RoutedConnection::new(conn, &primary.name, Role::Primary))
    }

    /// A connection for reading, within the set's
    /// [`timeout`](crate::ReplicaSetBuilder::timeout): from the least-loaded
    /// healthy replica, else per the [`Fallback`].
    pub async fn read(&self) -> Result<RoutedConnection<'_>, ReplicaError> {
        self.read_timeout(self.inner.settings.timeout).await
    }

    /// Like [`read`](Self::read), returning within `timeout` whatever the
    /// replicas do.
    pub async fn read_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RoutedConnection<'_>, ReplicaError> {
        self.route(Instant::now(), timeout, Want::Any).await
    }

    /// Runs the read `f` on a connection [`read_timeout`](Self::read_timeout)
    /// gives, and again on the primary if the replica fails under it: a
    /// connection-level error (the replica shut down, the network dropped:
    /// what [`classify`](crate::classify()) calls permanent) or `f` not
    /// finishing within the replicas' share of `timeout`. The replica is
    /// then marked unhealthy. Ordinary SQL errors are returned as they are.
    /// Everything (acquisition, `f`, the retry) finishes within `timeout`.
    /// `f` must be safe to run twice (a read is).
    pub async fn read_with<T, F>(&self, timeout: Duration, f: F) -> Result<T, ReplicaError>
    where
        F: AsyncFnMut(&mut PgConnection) -> Result<T, PgError>,
    {
        self.run_read(Instant::now(), timeout, Want::Any, f).await
    }

    /// A read-your-writes session for one caller (a request, a user): see
    /// [`Session`].
    #[must_use]
    pub fn session(&self) -> Session<'_> {
        Session::new(self, None)
    }

    /// A session that has written up to `position` already, e.g. a
    /// position an earlier request returned to the client
    /// ([`Session::position`]).
    #[must_use]
    pub fn session_after(&self, position: Lsn) -> Session<'_> {
        Session::new(self, Some(position))
    }

    /// Every member's health and counters, the primary first.
    #[must_use]
    pub fn members(&self) -> Vec<MemberStatus> {
        std::iter::once(&self.inner.primary)
            .chain(&self.inner.replicas)
            .map(Member::status)
            .collect()
    }

    /// One member's status, by name.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<MemberStatus> {
        std::iter::once(&self.inner.primary)
            .chain(&self.inner.replicas)
            .find(|member| member.name == name)
            .map(Member::status)
    }

    /// Reads that failed because no replica could serve them and the
    /// fallback is [`Fallback::FailFast`].
    #[must_use]
    pub fn rejected_reads(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// The primary's pool.
    #[must_use]
    pub fn primary_pool(&self) -> &PgPool {
        &self.inner.primary.pool
    }

    /// A replica's pool, by name.
    #[must_use]
    pub fn replica_pool(&self, name: &str) -> Option<&PgPool> {
        self.inner
            .replicas
            .iter()
            .find(|member| member.name == name)
            .map(|member| &member.pool)
    }

    /// Runs a health check of every member now and waits for it: the
    /// primary's WAL position, then every replica at once (reachable, in
    /// recovery, replay position and lag), each within
    /// [`check_timeout`](crate::ReplicaSetBuilder::check_timeout). Returns
    /// the members' statuses after it.
    pub async fn check_health(&self) -> Vec<MemberStatus> {
        self.check_round().await;
        self.members()
    }

    async fn check_round(&self) {
        let inner = &self.inner;
        let timeout = inner.settings.check_timeout;
        Counters::bump(&inner.primary.counters.checks);
        let primary = match health::primary_flush_lsn(&inner.primary, timeout).await {
            Ok(lsn) => {
                inner.primary.update(|health| {
                    health.down = false;
                    health.replay_lsn = Some(lsn);
                    health.last_check = Some(Instant::now());
                });
                Some(lsn)
            }
            Err(error) => {
                Counters::bump(&inner.primary.counters.failed_checks);
                inner.primary.update(|health| {
                    health.down = true;
                    health.last_error = Some(error.to_string());
                    health.last_check = Some(Instant::now());
                });
                None
            }
        };
        let bounds = inner.settings.bounds;
        let checks: Vec<_> = (0..inner.replicas.len())
            .map(|index| {
                let set = self.clone();
                tokio::spawn(async move {
                    let replica = &set.inner.replicas[index];
                    health::check_replica(replica, primary, bounds, timeout).await;
                })
            })
            .collect();
        for check in checks {
            let _ = check.await;
        }
    }

    /// Starts a health-check round in a task if one is due and none runs.
    fn drive_health_checks(&self) {
        let inner = &self.inner;
        let now = Instant::now();
        if !inner
            .replicas
            .iter()
            .any(|replica| replica.check_due(inner.settings.health_interval, now))
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if inner.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let set = self.clone();
        runtime.spawn(async move {
            struct Done(Arc<Inner>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.checking.store(false, Ordering::Release);
                }
            }
            let _done = Done(set.inner.clone());
            set.check_round().await;
        });
    }

    /// A primary connection by `deadline`; failures are counted on the
    /// primary.
    pub(crate) async fn primary_conn(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<PooledConnection<'_, Async<PgManager>>, ReplicaError> {
        let primary = &self.inner.primary;
        let failed = |error: ReplicaError| {
            Counters::bump(&primary.counters.failures);
            primary.update(|health| health.last_error = Some(error.to_string()));
            error
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(failed(ReplicaError::Timeout {
                member: primary.name.clone(),
                timeout,
            }));
        }
        match tokio::time::timeout_at(deadline.into(), primary.pool.get_timeout_async(budget)).await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(failed(ReplicaError::Acquire {
                member: primary.name.clone(),
                source,
            })),
            Err(_) => Err(failed(ReplicaError::Timeout {
                member: primary.name.clone(),
                timeout,
            })),
        }
    }

    /// A primary connection for a read, counted as a fallback or a
    /// session's read.
    async fn primary_read(
        &self,
        deadline: Instant,
        timeout: Duration,
        for_session: bool,
    ) -> Result<RoutedConnection<'_>, ReplicaError> {
        let primary = &self.inner.primary;
        let conn = self.primary_conn(deadline, timeout).await?;
        Counters::bump(&primary.counters.reads);
        Counters::bump(if for_session {
            &primary.counters.session_reads
        } else {
            &primary.counters.fallback_reads
        });
        Ok(RoutedConnection::new(conn, &primary.name, Role::Primary))
    }

    /// The end of the replicas' share of a read that started at `start`.
    fn replica_deadline(&self, start: Instant, timeout: Duration) -> Instant {
        start + timeout.mul_f64(self.inner.settings.replica_share)
    }

    /// Routes one read.
    pub(crate) async fn route(
        &self,
        start: Instant,
        timeout: Duration,
        want: Want,
    ) -> Result<RoutedConnection<'_>, ReplicaError> {
        let deadline = start + timeout;
        self.drive_health_checks();
        let need = match want {
            Want::Primary => return self.primary_read(deadline, timeout, true).await,
            Want::Replayed(lsn) => Some(lsn),
            Want::Any => None,
        };
        let replicas = &self.inner.replicas;
        let mut skipped = Vec::new();
        let mut candidates = Vec::with_capacity(replicas.len());
        for (index, replica) in replicas.iter().enumerate() {
            match replica.unroutable() {
                Some(why) => {
                    Counters::bump(&replica.counters.skipped);
                    skipped.push((replica.name.clone(), why));
                }
                None => candidates.push(Candidate {
                    index,
                    state: replica.pool.state(),
                }),
            }
        }
        let rotation = self.inner.rotation.fetch_add(1, Ordering::Relaxed);
        choose::order(&mut candidates, rotation, replicas.len());
        let replica_deadline = self.replica_deadline(start, timeout);
        let mut behind = false;
        let mut left = candidates.len() as u32;
        for candidate in candidates {
            let replica = &replicas[candidate.index];
            let share = replica_deadline.saturating_duration_since(Instant::now()) / left.max(1);
            left = left.saturating_sub(1);
            match self.try_replica(replica, share, need).await {
                Ok(conn) => return Ok(conn),
                Err(Skip::Behind(why)) => {
                    behind = true;
                    skipped.push((replica.name.clone(), why));
                }
                Err(Skip::Other(why)) => skipped.push((replica.name.clone(), why)),
            }
        }
        if behind {
            // Read-your-writes: the primary has the session's write.
            return self.primary_read(deadline, timeout, true).await;
        }
        match self.inner.settings.fallback {
            Fallback::Primary => self.primary_read(deadline, timeout, false).await,
            Fallback::FailFast => {
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                Err(ReplicaError::NoHealthyReplica { skipped })
            }
        }
    }

    /// One replica's attempt, within `budget`.
    async fn try_replica<'s>(
        &'s self,
        replica: &'s Member,
        budget: Duration,
        need: Option<Lsn>,
    ) -> Result<RoutedConnection<'s>, Skip> {
        if budget.is_zero() {
            return Err(Skip::Other(
                "no time left in the replicas' share".to_owned(),
            ));
        }
        let end = Instant::now() + budget;
        let failed = |why: String| {
            Counters::bump(&replica.counters.failures);
            replica.mark_down(why.clone());
            Skip::Other(why)
        };
        let conn = match tokio::time::timeout_at(end.into(), replica.pool.get_timeout_async(budget))
            .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) if busy(&error) => {
                return Err(Skip::Other(format!("busy: {error}")));
            }
            Ok(Err(error)) => return Err(failed(error.to_string())),
            Err(_) => return Err(failed(format!("no connection within {budget:?}"))),
        };
        if let Some(need) = need {
            let known = replica.health().replay_lsn;
            if known.is_none_or(|at| at < need) {
                match health::replay_lsn(&replica.name, &conn, end, budget).await {
                    Ok(at) => {
                        replica.update(|health| {
                            health.replay_lsn =
                                Some(health.replay_lsn.map_or(at, |old| old.max(at)));
                        });
                        if at < need {
                            return Err(Skip::Behind(format!(
                                "replayed up to {at}, the session wrote up to {need}"
                            )));
                        }
                    }
                    Err(error) => return Err(failed(error.to_string())),
                }
            }
        }
        Counters::bump(&replica.counters.reads);
        Ok(RoutedConnection::new(conn, &replica.name, Role::Replica))
    }

    /// `read_with` for the set and for sessions.
    pub(crate) async fn run_read<T, F>(
        &self,
        start: Instant,
        timeout: Duration,
        want: Want,
        mut f: F,
    ) -> Result<T, ReplicaError>
    where
        F: AsyncFnMut(&mut PgConnection) -> Result<T, PgError>,
    {
        let deadline = start + timeout;
        let mut conn = self.route(start, timeout, want).await?;
        if !conn.is_primary() {
            let replica_deadline = self.replica_deadline(start, timeout);
            let why = match tokio::time::timeout_at(replica_deadline.into(), f(&mut conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if crate::classify(&error) != ErrorClass::Permanent => {
                    return Err(ReplicaError::Query {
                        member: conn.member().to_owned(),
                        source: error,
                    });
                }
                Ok(Err(error)) => {
                    conn.pooled().note_error(&error);
                    error.to_string()
                }
                Err(_) => {
                    conn.pooled().mark_broken();
                    "a read took longer than the replicas' share of its deadline".to_owned()
                }
            };
            let member = conn.member().to_owned();
            drop(conn);
            let replica = self
                .inner
                .replicas
                .iter()
                .find(|replica| replica.name == member);
            if let Some(replica) = replica {
                Counters::bump(&replica.counters.failures);
                replica.mark_down(why.clone());
            }
            if self.inner.settings.fallback == Fallback::FailFast {
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ReplicaError::NoHealthyReplica {
                    skipped: vec![(member, why)],
                });
            }
            conn = self.primary_read(deadline, timeout, false).await?;
        }
        match tokio::time::timeout_at(deadline.into(), f(&mut conn)).await {
            Ok(result) => result.map_err(|source| ReplicaError::Query {
                member: conn.member().to_owned(),
                source,
            }),
            Err(_) => Err(ReplicaError::Timeout {
                member: conn.member().to_owned(),
                timeout,
            }),
        }
    }
}

/// A get that failed because the pool is full of borrowed connections,
/// not because the server is unwell.
fn busy(error: &PoolError) -> bool {
    match error {
        slotpool::Error::TimedOut {
            state,
            last_connect_error: None,
            ..
        } => state.in_use >= state.max_size,
        slotpool::Error::TooManyWaiters { .. } => true,
        _ => false,
    }
}

impl std::fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaSet")
            .field("primary", &self.inner.primary.name)
            .field(
                "replicas",
                &self
                    .inner
                    .replicas
                    .iter()
                    .map(|replica| &replica.name)
                    .collect::<Vec<_>>(),
            )
            .field("settings", &self.inner.settings)
            .finish()
    }
}

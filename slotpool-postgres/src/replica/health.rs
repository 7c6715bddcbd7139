//! The health check and the WAL-position queries the router runs.
//!
//! Lag is measured in bytes of WAL: the primary's
//! `pg_current_wal_flush_lsn()` (what a replica could have received) read
//! first, then the replica's `pg_last_wal_replay_lsn()`; the difference is
//! what the replica has yet to replay. Time lag is derived: zero when the
//! replica has replayed everything, else the age of the last transaction it
//! replayed (`now() - pg_last_xact_replay_timestamp()`, which alone would
//! grow forever on an idle primary).
//!
//! Owns: those statements, their deadlines (a tracked call dropped at its
//! deadline makes the pool close that connection) and the verdict on one
//! replica. It may not route or count reads.

use std::time::{Duration, Instant};

use tokio_postgres::SimpleQueryMessage;

use super::error::ReplicaError;
use super::lsn::Lsn;
use super::member::{Counters, Member};
use crate::PgConnection;

/// The bounds a replica must stay within to serve reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LagBounds {
    pub(crate) bytes: Option<u64>,
    pub(crate) time: Option<Duration>,
}

/// The first row of `sql`'s result as text, within `deadline`.
pub(crate) async fn first_row(
    member: &str,
    conn: &PgConnection,
    sql: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<Option<String>>, ReplicaError> {
    let messages = tokio::time::timeout_at(deadline.into(), conn.simple_query(sql))
        .await
        .map_err(|_| ReplicaError::Timeout {
            member: member.to_owned(),
            timeout,
        })?
        .map_err(|error| ReplicaError::Query {
            member: member.to_owned(),
            source: error.into(),
        })?;
    messages
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .ok_or_else(|| ReplicaError::Unexpected {
            member: member.to_owned(),
            what: "a query that returns one row",
            answer: None,
        })
}

/// Parses a WAL position column.
pub(crate) fn lsn(
    member: &str,
    what: &'static str,
    text: Option<String>,
) -> Result<Lsn, ReplicaError> {
    text.as_deref()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| ReplicaError::Unexpected {
            member: member.to_owned(),
            what,
            answer: text,
        })
}

/// The primary's WAL position that replicas can have received.
pub(crate) async fn primary_flush_lsn(
    primary: &Member,
    timeout: Duration,
) -> Result<Lsn, ReplicaError> {
    let deadline = Instant::now() + timeout;
    let conn = acquire(primary, timeout).await?;
    position(
        &primary.name,
        &conn,
        "pg_current_wal_flush_lsn()",
        deadline,
        timeout,
    )
    .await
}

/// The WAL position a session's write is durable at: the primary's
/// `pg_current_wal_lsn()` on the connection that wrote, after its commit.
pub(crate) async fn write_lsn(
    member: &str,
    conn: &PgConnection,
    timeout: Duration,
) -> Result<Lsn, ReplicaError> {
    let deadline = Instant::now() + timeout;
    position(member, conn, "pg_current_wal_lsn()", deadline, timeout).await
}

/// A replica's replay position, on one of its connections.
pub(crate) async fn replay_lsn(
    member: &str,
    conn: &PgConnection,
    deadline: Instant,
    timeout: Duration,
) -> Result<Lsn, ReplicaError> {
    position(member, conn, "pg_last_wal_replay_lsn()", deadline, timeout).await
}

/// The WAL position `function` (one of the three above, a fixed name)
/// returns on `conn`.
async fn position(
    member: &str,
    conn: &PgConnection,
    function: &'static str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Lsn, ReplicaError> {
    let sql = format!("SELECT {function}::text");
    let row = first_row(member, conn, &sql, deadline, timeout).await?;
    lsn(member, function, row.into_iter().next().flatten())
}

async fn acquire(
    member: &Member,
    timeout: Duration,
) -> Result<slotpool::PooledConnection<'_, slotpool::Async<crate::PgManager>>, ReplicaError> {
    match tokio::time::timeout(timeout, member.pool.get_timeout_async(timeout)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(ReplicaError::Acquire {
            member: member.name.clone(),
            source,
        }),
        Err(_) => Err(ReplicaError::Timeout {
            member: member.name.clone(),
            timeout,
        }),
    }
}

/// Checks one replica against `primary` (the primary's flush position, if
/// it could be read) and records the verdict on the member.
pub(crate) async fn check_replica(
    replica: &Member,
    primary: Option<Lsn>,
    bounds: LagBounds,
    timeout: Duration,
) {
    Counters::bump(&replica.counters.checks);
    let deadline = Instant::now() + timeout;
    let probe = async {
        let conn = acquire(replica, timeout).await?;
        first_row(
            &replica.name,
            &conn,
            "SELECT pg_is_in_recovery()::text, pg_last_wal_replay_lsn()::text, \
             extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8::text",
            deadline,
            timeout,
        )
        .await
    };
    let row = match probe.await {
        Ok(row) => row,
        Err(error) => {
            Counters::bump(&replica.counters.failed_checks);
            replica.mark_down(error.to_string());
            replica.update(|health| health.last_check = Some(Instant::now()));
            return;
        }
    };
    let mut columns = row.into_iter();
    let in_recovery = columns.next().flatten();
    if in_recovery.as_deref() != Some("true") {
        Counters::bump(&replica.counters.failed_checks);
        replica.mark_down("not in recovery (promoted, or not a replica)".to_owned());
        replica.update(|health| health.last_check = Some(Instant::now()));
        return;
    }
    let replay = columns
        .next()
        .flatten()
        .and_then(|text| text.parse::<Lsn>().ok());
    let age = columns
        .next()
        .flatten()
        .and_then(|text| text.parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds.max(0.0)).ok());
    let lag_bytes = match (primary, replay) {
        (Some(primary), Some(replay)) => Some(replay.bytes_behind(primary)),
        _ => None,
    };
    let lag_time = match lag_bytes {
        Some(0) => Some(Duration::ZERO),
        Some(_) => age,
        None => None,
    };
    let lagging = bounds
        .bytes
        .is_some_and(|max| lag_bytes.is_some_and(|lag| lag > max))
        || bounds
            .time
            .is_some_and(|max| lag_time.is_some_and(|lag| lag > max));
    replica.update(|health| {
        if health.down || lagging != health.lagging {
            tracing::info!(
                member = %replica.name,
                lagging,
                ?lag_bytes,
                ?lag_time,
                "replica set member checked: {}",
                if lagging { "lagging" } else { "serving reads" }
            );
        }
        health.down = false;
        health.lagging = lagging;
        health.lag_bytes = lag_bytes;
        health.lag_time = lag_time;
        health.replay_lsn = replay.or(health.replay_lsn);
        health.last_check = Some(Instant::now());
    });
}

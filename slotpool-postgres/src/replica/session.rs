//! [`Session`]: read-your-writes for one caller.
//!
//! Owns: what a session remembers (its last write's WAL position and time,
//! its write connections still out) and the rule that turns it into where a
//! read may go. It may not route (`set.rs` does, given that rule's answer).

use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::error::ReplicaError;
use super::health;
use super::lsn::Lsn;
use super::policy::ReadYourWrites;
use super::routed::RoutedConnection;
use super::set::{ReplicaSet, Want};
use crate::{PgConnection, PgError};

/// What a session remembers about its writes.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The WAL position its writes are durable at, at least.
    pub(crate) position: Option<Lsn>,
    pub(crate) last_write: Option<Instant>,
    /// Write connections handed out and not yet returned.
    pub(crate) open_writes: u32,
    /// A write connection went back without `committed`: the position is
    /// unknown until the next read asks the primary.
    pub(crate) position_unknown: bool,
}

/// One caller's view of a [`ReplicaSet`] that reads its own writes, per
/// the set's [`ReadYourWrites`]:
///
/// * `UntilReplayed`: after a write, call [`committed`](Self::committed)
///   with the write connection (after the commit) to record the primary's
///   WAL position; a read then goes to a replica that has replayed that far
///   (known from the last health check, else asked with one
///   `pg_last_wal_replay_lsn()` on the replica's connection), or to the
///   primary. If a write connection goes back without `committed`, the
///   next read asks the primary for its position (one more checkout).
/// * `For(d)`: reads within `d` of the last write go to the primary.
/// * `Off`: reads route as the set's.
///
/// While one of the session's write connections is out, its reads go to
/// the primary. A session is meant for one caller at a time (a request, a
/// user's connection), not shared by unrelated tasks.
pub struct Session<'a> {
    set: &'a ReplicaSet,
    state: Mutex<SessionState>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(set: &'a ReplicaSet, position: Option<Lsn>) -> Self {
        Self {
            set,
            state: Mutex::new(SessionState {
                position,
                ..SessionState::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A primary connection within the set's timeout; its writes count as
    /// the session's.
    pub async fn write(&self) -> Result<RoutedConnection<'_>, ReplicaError> {
        self.write_timeout(self.set.inner.settings.timeout).await
    }

    /// A primary connection within `timeout`; its writes count as the
    /// session's.
    pub async fn write_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RoutedConnection<'_>, ReplicaError> {
        let conn = self.set.write_timeout(timeout).await?;
        Ok(conn.for_session(&self.state))
    }

    /// Records that the session's writes on `conn` are committed: under
    /// `UntilReplayed`, asks the primary for its WAL position
    /// (`pg_current_wal_lsn()`, one round trip on `conn`) and returns it;
    /// under the other modes, only notes the time. Call it after the last
    /// commit on the connection.
    ///
    /// With `synchronous_commit = off` a commit can return before its WAL
    /// is written, and the position returned may precede it; the default
    /// (`on`) writes and flushes it first.
    pub async fn committed(
        &self,
        conn: &RoutedConnection<'_>,
    ) -> Result<Option<Lsn>, ReplicaError> {
        let position = if self.set.inner.settings.read_your_writes == ReadYourWrites::UntilReplayed
        {
            let timeout = self.set.inner.settings.check_timeout;
            Some(health::write_lsn(conn.member(), conn, timeout).await?)
        } else {
            None
        };
        conn.recorded.store(true, Ordering::Relaxed);
        let mut state = self.state();
        state.last_write = Some(Instant::now());
        if let Some(position) = position {
            state.position = Some(state.position.map_or(position, |old| old.max(position)));
            state.position_unknown = false;
        }
        Ok(position)
    }

    /// The WAL position this session's reads must see, if it wrote (to
    /// hand to a later request: [`ReplicaSet::session_after`]).
    #[must_use]
    pub fn position(&self) -> Option<Lsn> {
        self.state().position
    }

    /// A connection for reading within the set's timeout, that sees this
    /// session's writes (per the set's [`ReadYourWrites`]).
    pub async fn read(&self) -> Result<RoutedConnection<'a>, ReplicaError> {
        self.read_timeout(self.set.inner.settings.timeout).await
    }

    /// Like [`read`](Self::read), within `timeout`.
    pub async fn read_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RoutedConnection<'a>, ReplicaError> {
        let start = Instant::now();
        let want = self.want(start, timeout).await?;
        self.set.route(start, timeout, want).await
    }

    /// [`ReplicaSet::read_with`] for this session: `f` runs where
    /// [`read_timeout`](Self::read_timeout) would send it, and again on
    /// the primary if that replica fails under it, all within `timeout`.
    pub async fn read_with<T, F>(&self, timeout: Duration, f: F) -> Result<T, ReplicaError>
    where
        F: AsyncFnMut(&mut PgConnection) -> Result<T, PgError>,
    {
        let start = Instant::now();
        let want = self.want(start, timeout).await?;
        self.set.run_read(start, timeout, want, f).await
    }

    /// Where this session's next read may go; learns the position from the
    /// primary first if a write went back without `committed`.
    async fn want(&self, start: Instant, timeout: Duration) -> Result<Want, ReplicaError> {
        let mode = self.set.inner.settings.read_your_writes;
        let (open_writes, last_write, unknown) = {
            let state = self.state();
            (state.open_writes, state.last_write, state.position_unknown)
        };
        match mode {
            ReadYourWrites::Off => return Ok(Want::Any),
            ReadYourWrites::For(window) => {
                let recent = last_write.is_some_and(|at| at.elapsed() < window);
                return Ok(if open_writes > 0 || recent {
                    Want::Primary
                } else {
                    Want::Any
                });
            }
            ReadYourWrites::UntilReplayed => {}
        }
        if open_writes > 0 {
            return Ok(Want::Primary);
        }
        if unknown {
            let deadline = start + timeout;
            let conn = self.set.primary_conn(deadline, timeout).await?;
            let name = &self.set.inner.primary.name;
            let row = health::first_row(
                name,
                &conn,
                "SELECT pg_current_wal_lsn()::text",
                deadline,
                timeout,
            )
            .await?;
            let position = health::lsn(
                name,
                "pg_current_wal_lsn()",
                row.into_iter().next().flatten(),
            )?;
            let mut state = self.state();
            state.position = Some(state.position.map_or(position, |old| old.max(position)));
            state.position_unknown = false;
        }
        Ok(match self.state().position {
            Some(position) => Want::Replayed(position),
            None => Want::Any,
        })
    }
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &*self.state())
            .finish_non_exhaustive()
    }
}

//! [`RoutedConnection`]: a pooled connection that says which member served
//! it.
//!
//! Owns: the guard and what its drop tells a session (a write guard going
//! away means the session wrote). It may not route.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use slotpool::{Async, PooledConnection};

use super::policy::Role;
use super::session::SessionState;
use crate::{PgConnection, PgManager};

/// A connection from one member of a [`ReplicaSet`](crate::ReplicaSet),
/// returned to that member's pool on drop. Derefs to [`PgConnection`].
pub struct RoutedConnection<'a> {
    conn: PooledConnection<'a, Async<PgManager>>,
    member: &'a str,
    role: Role,
    /// A session's write: told when the guard goes away.
    session: Option<&'a Mutex<SessionState>>,
    /// `Session::committed` recorded the position after this guard's
    /// writes.
    pub(crate) recorded: AtomicBool,
}

impl<'a> RoutedConnection<'a> {
    pub(crate) fn new(
        conn: PooledConnection<'a, Async<PgManager>>,
        member: &'a str,
        role: Role,
    ) -> Self {
        Self {
            conn,
            member,
            role,
            session: None,
            recorded: AtomicBool::new(false),
        }
    }

    pub(crate) fn for_session(mut self, session: &'a Mutex<SessionState>) -> Self {
        session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open_writes += 1;
        self.session = Some(session);
        self
    }

    /// The member that served it: `primary` (or the name given to
    /// [`primary_name`](crate::ReplicaSetBuilder::primary_name)) or a
    /// replica's name.
    #[must_use]
    pub fn member(&self) -> &str {
        self.member
    }

    /// Whether the primary served it.
    #[must_use]
    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    /// The serving member's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The pool's guard, for its own methods (`mark_broken`,
    /// `note_error`, `detach`).
    #[must_use]
    pub fn pooled(&mut self) -> &mut PooledConnection<'a, Async<PgManager>> {
        &mut self.conn
    }
}

impl Deref for RoutedConnection<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for RoutedConnection<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for RoutedConnection<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session {
            let mut state = session.lock().unwrap_or_else(PoisonError::into_inner);
            state.open_writes = state.open_writes.saturating_sub(1);
            state.last_write = Some(Instant::now());
            if !self.recorded.load(Ordering::Relaxed) {
                // The session wrote without `committed`: the next read asks
                // the primary for its position.
                state.position_unknown = true;
            }
        }
    }
}

impl fmt::Debug for RoutedConnection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedConnection")
            .field("member", &self.member)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

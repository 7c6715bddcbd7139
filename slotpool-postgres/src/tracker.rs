//! What a borrower may have left dirty on a connection, kept as a few bits
//! so that the pool's synchronous `needs_reset` is one atomic load.
//!
//! Owns: [`Dirt`] (the public view), the bits, and [`InFlight`], the guard
//! every tracked call holds while its future runs: a future dropped before
//! it finished (a cancelled request, a timed-out `select!` branch) leaves
//! its statement possibly still running on the server, and the guard's drop
//! records that. It may not run statements (`reset.rs` does).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::sql_scan::Effects;

const TRANSACTION: u8 = 1;
const INTERRUPTED: u8 = 2;
const SESSION: u8 = 4;
const PREPARED: u8 = 8;
const DISCARDED: u8 = 16;
/// A tracked call failed with an error that finishes the connection
/// (classified permanent: closed, I/O, FATAL). `is_closed()` turns true
/// only once the connection task has noticed, which can be after the
/// borrower returned the connection.
const FINISHED: u8 = 32;

/// What a connection saw a borrower leave behind. All `false` on a clean
/// connection; [`PgManager`](crate::PgManager)'s `needs_reset` is `true`
/// when any field is (or always, with `recycling = "clean"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dirt {
    /// A transaction may be open: begun through
    /// [`PgConnection::transaction`](crate::PgConnection::transaction) and
    /// neither committed, rolled back nor dropped, or a `BEGIN` sent as SQL
    /// without a later `COMMIT`/`ROLLBACK` that succeeded.
    pub transaction: bool,
    /// A tracked call's future was dropped before it finished: its
    /// statement may still be running, so the pool closes the connection on
    /// return (`has_broken`). A cancel request would not do: tokio-postgres
    /// returns before the server acts on it, and a late cancel hits the
    /// next borrower's statement (57014).
    pub interrupted: bool,
    /// Session state changed (`SET`, `LISTEN`, a temporary table, a session
    /// advisory lock, ...), or a borrower said so with
    /// [`PgConnection::mark_session_changed`](crate::PgConnection::mark_session_changed).
    pub session: bool,
    /// A SQL-level `PREPARE` created a named statement.
    pub prepared: bool,
    /// `DISCARD ALL` or `DEALLOCATE ALL` dropped every prepared statement,
    /// tokio-postgres's own type-lookup statements included, which it
    /// cannot re-create: the pool closes such a connection on return
    /// (`has_broken`).
    pub statements_discarded: bool,
    /// A tracked call failed with an error that finishes the connection (it
    /// was terminated, closed, or hit an I/O error): the pool closes it on
    /// return even before tokio-postgres reports it closed.
    pub finished: bool,
}

impl Dirt {
    /// Whether anything is dirty.
    #[must_use]
    pub fn any(self) -> bool {
        self != Self::default()
    }
}

/// The bits behind [`Dirt`].
#[derive(Debug, Default)]
pub(crate) struct Tracker(AtomicU8);

impl Tracker {
    fn set(&self, bits: u8) {
        if bits != 0 {
            self.0.fetch_or(bits, Ordering::Relaxed);
        }
    }

    fn clear(&self, bits: u8) {
        self.0.fetch_and(!bits, Ordering::Relaxed);
    }

    fn bits(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn dirt(&self) -> Dirt {
        let bits = self.bits();
        Dirt {
            transaction: bits & TRANSACTION != 0,
            interrupted: bits & INTERRUPTED != 0,
            session: bits & SESSION != 0,
            prepared: bits & PREPARED != 0,
            statements_discarded: bits & DISCARDED != 0,
            finished: bits & FINISHED != 0,
        }
    }

    /// Whether anything a reset can clean is dirty (a discarded statement
    /// set, an interrupted call and a finished connection are handled by
    /// closing the connection instead).
    pub(crate) fn needs_reset(&self) -> bool {
        self.bits() & !(DISCARDED | INTERRUPTED | FINISHED) != 0
    }

    /// Whether the connection must be closed rather than reset: its
    /// statements were discarded, a call was interrupted (its statement may
    /// still run, and a cancel request would race the next borrower's), or
    /// a call failed in a way that finishes the connection.
    pub(crate) fn must_close(&self) -> bool {
        self.bits() & (DISCARDED | INTERRUPTED | FINISHED) != 0
    }

    /// A tracked call failed with an error that finishes the connection.
    pub(crate) fn finished(&self) {
        self.set(FINISHED);
    }

    /// Before sending `effects`' SQL: record what it may leave behind,
    /// assuming the worst (a transaction it opens or ends counts as open
    /// until it is known to have succeeded).
    pub(crate) fn before(&self, effects: &Effects) {
        let mut bits = 0;
        if effects.touches_txn {
            bits |= TRANSACTION;
        }
        if effects.session {
            bits |= SESSION;
        }
        if effects.prepared {
            bits |= PREPARED;
        }
        if effects.discards_statements {
            bits |= DISCARDED;
        }
        self.set(bits);
    }

    /// After `effects`' SQL succeeded: a batch that ended with `COMMIT` or
    /// `ROLLBACK` leaves no transaction open.
    pub(crate) fn succeeded(&self, effects: &Effects) {
        if effects.txn_after == Some(false) {
            self.clear(TRANSACTION);
        }
    }

    pub(crate) fn transaction_opened(&self) {
        self.set(TRANSACTION);
    }

    pub(crate) fn transaction_closed(&self) {
        self.clear(TRANSACTION);
    }

    pub(crate) fn session_changed(&self) {
        self.set(SESSION);
    }

    /// After a successful reset: clean again (what closes the connection
    /// stays).
    pub(crate) fn reset_done(&self) {
        self.clear(!(DISCARDED | INTERRUPTED | FINISHED));
    }

    /// A guard for one tracked call.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        InFlight {
            tracker: self,
            finished: false,
        }
    }

    /// Awaits `call` holding the in-flight guard: dropped before `call`
    /// finished, the connection counts as interrupted.
    pub(crate) async fn in_flight<R>(&self, call: impl Future<Output = R>) -> R {
        let in_flight = self.enter();
        let result = call.await;
        in_flight.finish();
        result
    }
}

/// Held while a tracked call's future runs; dropped unfinished, it marks
/// the connection interrupted.
pub(crate) struct InFlight<'a> {
    tracker: &'a Tracker,
    finished: bool,
}

impl InFlight<'_> {
    /// The call's future completed (successfully or not).
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.tracker.set(INTERRUPTED);
        }
    }
}

//! The checks and resets each recycling mode runs: `is_valid` for a stale
//! checkout and `reset` for a dirty return.
//!
//! Owns: the statements sent and their order. It may not decide when they
//! run (the pool does, through the manager's `is_valid`, `needs_reset` and
//! `reset`).
//!
//! A reset is one round trip in the usual case. (A connection whose tracked
//! call was interrupted never gets here: its statement may still run, and
//! tokio-postgres's cancel request returns before the server acts on it, so
//! a late cancel would hit the next borrower's statement; the pool closes
//! it instead, through `has_broken`.)
//!
//! 1. If a transaction may be open: `ROLLBACK`, followed in the same
//!    message by the clean-up batch when session state changed (or always,
//!    in `clean` mode).
//! 2. Otherwise (`clean` mode, or only session state changed): the batch,
//!    led by a check that no transaction from before is open
//!    (`transaction_timestamp() = statement_timestamp()` holds only in a
//!    transaction that this message began). If one is, or the session is in
//!    a failed transaction, a second round trip sends `ROLLBACK` and the
//!    batch again. This avoids a `ROLLBACK` outside a transaction, which
//!    the server answers, and logs, as a warning on every return.
//!
//! The batch is deadpool-postgres's `Clean` batch, which leaves
//! protocol-level prepared statements (the statement cache) alone, followed
//! by a block deallocating the SQL-level ones (`PREPARE name AS ...`), which
//! the batch would leave behind.

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::connection::PgConnection;
use crate::error::PgError;
use crate::keywords::{PoolerMode, Recycling};

/// deadpool-postgres's `RecyclingMethod::Clean` statements.
pub const CLEAN_UP_BATCH: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
     UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

/// Deallocates the statements SQL-level `PREPARE` made, and only those.
pub const DEALLOCATE_SQL_PREPARED: &str = "DO $$ DECLARE s record; BEGIN \
     FOR s IN SELECT name FROM pg_prepared_statements WHERE from_sql LOOP \
     EXECUTE format('DEALLOCATE %I', s.name); END LOOP; END $$;";

/// True only inside a transaction the current message began.
const NO_TRANSACTION_FROM_BEFORE: &str = "SELECT transaction_timestamp() = statement_timestamp();";

/// `is_valid`: `fast` looks at `is_closed()` only; `verified` and `clean`
/// also send a protocol Sync and wait for the server's ReadyForQuery (no
/// statement, so it does not show in statement statistics).
pub(crate) async fn validate(conn: &PgConnection, mode: Recycling) -> Result<(), PgError> {
    if conn.client().is_closed() {
        return Err(PgError::Closed);
    }
    match mode {
        Recycling::Fast => Ok(()),
        Recycling::Verified | Recycling::Clean => conn
            .client()
            .check_connection()
            .await
            .map_err(PgError::from),
    }
}

/// `reset`: see the module docs. `bound` limits each round trip.
///
/// Behind a transaction-mode pooler (`pooler`) it is only the `ROLLBACK` of
/// a transaction left open, never the clean-up batch or `DISCARD ALL`: they
/// would run on whichever server connection the pooler picks.
pub(crate) async fn reset(
    conn: &PgConnection,
    mode: Recycling,
    pooler: PoolerMode,
    bound: Option<Duration>,
) -> Result<(), PgError> {
    let dirt = conn.dirt();
    if pooler == PoolerMode::Transaction {
        if dirt.transaction {
            bounded("the reset", bound, send(conn, "ROLLBACK")).await?;
        }
        conn.tracker().reset_done();
        return Ok(());
    }
    let scrub = mode == Recycling::Clean || dirt.session || dirt.prepared;
    let body = if scrub {
        format!("{CLEAN_UP_BATCH} {DEALLOCATE_SQL_PREPARED}")
    } else {
        String::new()
    };
    let rollback = format!("ROLLBACK; {body}");
    if dirt.transaction {
        bounded("the reset", bound, send(conn, &rollback)).await?;
    } else {
        let checked = format!("{NO_TRANSACTION_FROM_BEFORE} {body}");
        let clean = bounded("the reset", bound, async {
            match conn.client().simple_query(&checked).await {
                Ok(messages) => Ok(first_value(&messages) == Some("t")),
                Err(error) if error.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => {
                    Ok(false)
                }
                Err(error) => Err(PgError::from(error)),
            }
        })
        .await?;
        if !clean {
            bounded("the reset", bound, send(conn, &rollback)).await?;
        }
    }
    conn.tracker().reset_done();
    Ok(())
}

/// Sends `batch`.
async fn send(conn: &PgConnection, batch: &str) -> Result<(), PgError> {
    conn.client()
        .batch_execute(batch)
        .await
        .map_err(PgError::from)
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<&str> {
    messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => row.get(0),
        _ => None,
    })
}

async fn bounded<R>(
    what: &'static str,
    bound: Option<Duration>,
    work: impl Future<Output = Result<R, PgError>>,
) -> Result<R, PgError> {
    match bound {
        Some(timeout) => tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| PgError::Timeout { what, timeout })?,
        None => work.await,
    }
}

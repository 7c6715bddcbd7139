//! What both test suites against a real PostgreSQL server know about it,
//! whichever client they use: where it is, whether it is required, how a
//! test skips, and the statements that find and kill one test's backends
//! by their `application_name` tag. One copy serves the root's
//! `tests/postgres.rs` (blocking `postgres` client, `mod pg_support`) and
//! slotpool-postgres's tests (`tokio-postgres`; `tests/support/mod.rs`
//! includes this file by path).
//!
//! Owns: the server's address and role, `SLOTPOOL_REQUIRE_PG`, the skip
//! notice, and the monitor's SQL. It may not connect.
#![allow(dead_code)]

use std::io::Write;

/// Where the server listens.
pub const PG_HOST: &str = "127.0.0.1";
/// Its port.
pub const PG_PORT: u16 = 5432;
/// The superuser the tests connect as (trust auth for local connections;
/// a superuser may terminate other backends).
pub const PG_USER: &str = "postgres";
/// The database the tests use unless they say otherwise.
pub const PG_DB: &str = "postgres";

/// The process ids of the backends tagged `$1`.
pub const PIDS_BY_TAG: &str =
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid";

/// Terminates the backends tagged `$1` (waiting up to 5 s for each to
/// exit) and returns their pids. The `CASE` fixes the evaluation order:
/// with a plain `AND` the planner may call `pg_terminate_backend` before
/// the tag filter, on every backend of the server.
pub const TERMINATE_BY_TAG: &str = "SELECT pid FROM pg_stat_activity WHERE CASE \
     WHEN application_name = $1 AND pid <> pg_backend_pid() \
     THEN pg_terminate_backend(pid, 5000) ELSE false END";

/// Whether CI demands the server (`SLOTPOOL_REQUIRE_PG=1`).
pub fn required() -> bool {
    std::env::var("SLOTPOOL_REQUIRE_PG").is_ok_and(|value| value == "1")
}

/// Prints a skip notice that the harness does not hide, or panics when the
/// server is required.
pub fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "SLOTPOOL_REQUIRE_PG=1 but test `{test}` cannot run: {why}"
    );
    // Written to the stderr handle, not with `eprintln!`, which the test
    // harness captures and hides for passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: test `{test}` did NOT run: {why}. \
         Set SLOTPOOL_REQUIRE_PG=1 to make this a failure. ***\n"
    );
}

/// The skip reason when the monitor cannot connect.
pub fn unreachable(why: &str) -> String {
    format!(
        "PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as `{PG_USER}`, \
         database `{PG_DB}` ({why})"
    )
}

//! The command line: every subcommand, flag and default (clap derive).
//!
//! Owns: argument syntax, help texts and input validation that needs no I/O.
//! It may not run anything.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use slotpool_sqlite::Locking;

/// slotpool: a lock-free connection pool; benchmark it, inspect its
/// configuration and its counts.
#[derive(Debug, Parser)]
#[command(name = "slotpool", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare pooled and unpooled database access, SQLite or PostgreSQL
    /// (ops/s and latency percentiles).
    Bench(BenchArgs),
    /// Show the effective configuration, or check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a short read load against SQLite and print the pools' counts.
    Stats(StatsArgs),
}

/// Where the pool configuration comes from: defaults, then `--config`'s
/// profile (or `SLOTPOOL_CONFIG`/`SLOTPOOL_PROFILE`), then `SLOTPOOL_*`
/// variables.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigSource {
    /// Configuration file (TOML); default: `$SLOTPOOL_CONFIG`, else none
    /// (`config show`: else `./config.toml` when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Profile to load from the file; default: `$SLOTPOOL_PROFILE`, else `dev`.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// The operation mix of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// `SELECT` one row by random primary key.
    Read,
    /// `INSERT` one row (through the single writer when pooled).
    Write,
    /// 90% reads, 10% writes.
    Mixed,
}

/// The database `bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// SQLite through rusqlite: a temporary file, or --db.
    Sqlite,
    /// PostgreSQL through tokio-postgres (slotpool-postgres): the server at
    /// --url.
    Postgres,
}

/// Pools to compare against besides slotpool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Competitor {
    /// r2d2 0.8, shaped like slotpool's SqlitePool: one writer pool of 1,
    /// one read-only reader pool; r2d2's defaults otherwise
    /// (`test_on_check_out = true`).
    R2d2,
}

/// `bench --locking`: the `sqlite.locking` every variant opens the database
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockingArg {
    /// SQLite's `unix` VFS: other processes may open the file; each WAL read
    /// locks the `-shm` file with `fcntl()`.
    Shared,
    /// SQLite's `unix-excl` VFS: other processes are locked out while the
    /// bench runs; the WAL index is in heap memory.
    Process,
}

impl From<LockingArg> for Locking {
    fn from(arg: LockingArg) -> Self {
        match arg {
            LockingArg::Shared => Locking::Shared,
            LockingArg::Process => Locking::Process,
        }
    }
}

/// `slotpool bench`.
#[derive(Debug, Args)]
#[command(
    after_help = "Variants: `unpooled` opens a connection and applies the configured pragmas \
                  for every operation (exactly what the pool does once per connection), \
                  `slotpool` uses a SqlitePool (one writer, `max_size` read-only readers). \
                  The database gets two tables, slotpool_bench_items and slotpool_bench_log. \
                  Without --db the bench's own temporary file is private to this process, so \
                  it is opened with sqlite.locking = process (unix-excl: no -shm file, no \
                  fcntl per read); with --db the configured sqlite.locking applies \
                  (default shared), since the file may be shared. --locking overrides both.\n\n\
                  --backend postgres --url URL: the same workloads against a PostgreSQL \
                  server, each worker a tokio task. `unpooled` opens a new connection \
                  (TCP, TLS per the url's sslmode, authentication, startup) for every \
                  operation, prepares the statement on it and closes it; `slotpool` uses a \
                  Pool<Async<PgManager>> of `max_size` connections (get_async, the cached \
                  statement, return). Both open connections with the same PgManager. The \
                  server's database gets the same two tables (created if missing, kept; \
                  writes add rows to slotpool_bench_log). The pool settings come from \
                  --config/--profile and SLOTPOOL_* as for SQLite; the [sqlite] section is \
                  not used."
)]
pub struct BenchArgs {
    /// The database to benchmark.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::Sqlite)]
    pub backend: BackendKind,
    /// PostgreSQL server (needed by --backend postgres): a libpq connection
    /// string, `postgresql://user@host:5432/db?sslmode=disable` or
    /// `host=... user=... dbname=...`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Operation mix.
    #[arg(long, value_enum, default_value_t = Workload::Read)]
    pub workload: Workload,
    /// Workers issuing operations: threads (SQLite) or tokio tasks
    /// (PostgreSQL).
    #[arg(long, value_name = "N", default_value_t = 2, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// Operations per variant [default: 50000; with --backend postgres,
    /// --duration 3s].
    #[arg(long, value_name = "N", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// Run each variant for this long instead of a fixed count (e.g. `5s`, `500ms`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Rows in the table reads pick from.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rows: u32,
    /// SQLite database file; default: a fresh file in a temporary directory.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub db: Option<PathBuf>,
    /// How every variant locks the database file (`sqlite.locking`)
    /// [default: process for the temporary file, the configured
    /// `sqlite.locking` with --db].
    #[arg(long, value_enum, value_name = "MODE", conflicts_with = "url")]
    pub locking: Option<LockingArg>,
    /// Also measure another pool (SQLite only).
    #[arg(long, value_enum, value_name = "POOL", conflicts_with = "url")]
    pub compare: Vec<Competitor>,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw throughput and latency per variant into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Pool configuration (its `sqlite` settings apply to every variant).
    #[command(flatten)]
    pub source: ConfigSource,
}

/// `slotpool config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, each value with its
    /// source. Reads `--config`, else `$SLOTPOOL_CONFIG`, else
    /// `./config.toml` when it exists.
    Show(ConfigSource),
    /// Validate every profile of a configuration file; exit 1 on any problem.
    Check {
        /// The configuration file [default: ./config.toml].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// `slotpool stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Threads reading.
    #[arg(long, value_name = "N", default_value_t = 2, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// Reads per worker.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: u64,
    /// SQLite database file; default: a fresh file in a temporary directory.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print Prometheus text exposition format instead of a table.
    #[arg(long)]
    pub prometheus: bool,
    /// Pool configuration.
    #[command(flatten)]
    pub source: ConfigSource,
}

/// A humantime duration greater than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be greater than 0".to_owned());
    }
    Ok(duration)
}

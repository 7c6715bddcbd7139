//! The `slotpool` command line.
//!
//! Owns: parsing the command line and mapping each subcommand to its module
//! and each failure to one line and an exit code. It may not implement a
//! command itself.
//!
//! | module       | owns |
//! |--------------|------|
//! | `args`       | the clap definitions: subcommands, flags, defaults |
//! | `error`      | `CliError` and its one-line rendering |
//! | `config_cmd` | `config show`, `config check`, and loading the configuration |
//! | `bench`      | `bench`: the run plan, worker threads, timing, progress |
//! | `backends`   | the bench variants (unpooled, slotpool, r2d2) and their SQL |
//! | `pg_bench`   | `bench --backend postgres`: the run on tokio tasks, timing, progress |
//! | `pg_backends`| its variants (unpooled, slotpool) and their SQL |
//! | `report`     | bench results: data model, table, JSON |
//! | `plot`       | bench results as an SVG chart |
//! | `stats_cmd`  | `stats`: a short load, then pool counts (table, JSON, Prometheus) |

#![forbid(unsafe_code)]

mod args;
mod backends;
mod bench;
mod config_cmd;
mod error;
mod pg_backends;
mod pg_bench;
mod plot;
mod report;
mod stats_cmd;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use self::args::{Cli, Command, ConfigCommand};
use self::error::CliError;

/// Parses the command line, runs the command, and turns any failure into a
/// one-line message on stderr and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("slotpool: {}", error.one_line());
            error.exit_code()
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Bench(args) => bench::run(&args),
        Command::Config(ConfigCommand::Show(source)) => config_cmd::show(&source),
        Command::Config(ConfigCommand::Check { file }) => config_cmd::check(file.as_deref()),
        Command::Stats(args) => stats_cmd::run(&args),
    }
}

/// `--help` and `--version` print as usual; a usage error prints clap's
/// first line (what is wrong) and a pointer to `--help`, and exits 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = error.render().to_string();
            let line = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("invalid arguments");
            let line = line.strip_prefix("error: ").unwrap_or(line);
            eprintln!("slotpool: {line} (see --help)");
            ExitCode::from(2)
        }
    }
}

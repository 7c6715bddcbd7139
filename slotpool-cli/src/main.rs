//! The `slotpool` binary: `bench`, `config show`, `config check`, `stats`.
//! Everything lives in the `cli` module; see `slotpool --help`.
//!
//! Owns: the process entry point. It may not hold logic.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

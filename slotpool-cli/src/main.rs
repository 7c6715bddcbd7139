//! The `slotpool` binary: `bench`, `config show`, `config check`, `stats`.
//! Everything lives in the `cli` module; see `slotpool --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! What every end-to-end test of the `slotpool` binary shares.

use assert_cmd::Command;

/// The binary with no `SLOTPOOL_*` variables from the caller's environment.
pub fn slotpool() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("slotpool");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLOTPOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

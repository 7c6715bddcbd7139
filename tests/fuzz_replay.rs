#![cfg(not(feature = "loom"))]
//! Replays every checked-in fuzz seed and every saved crash through the same
//! harness bodies the cargo-fuzz targets use.

#[path = "../fuzz/harness/mod.rs"]
mod harness;
#[path = "../fuzz/harness/pool_ops.rs"]
mod pool_ops;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for folder in [
        root.join("seeds").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            body(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no seeds for {target}");
}

#[test]
fn config_toml_seeds() {
    replay("config_toml", harness::config_toml);
}

/// At least one seed loads, so replaying them reaches the harness's round
/// trip and not only its error paths (the seeds with `[sqlite]` tables are
/// unknown keys to the core's `PoolConfig`).
#[test]
fn config_toml_seeds_include_a_loadable_config() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/config_toml");
    let loaded = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|text| {
            ["dev", "test", "staging", "prod"]
                .iter()
                .any(|profile| slotpool::PoolConfig::from_toml_str(text, profile).is_ok())
        })
        .count();
    assert!(loaded > 0, "no config_toml seed loads as a PoolConfig");
}

#[test]
fn env_overrides_seeds() {
    replay("env_overrides", harness::env_overrides);
}

#[test]
fn pool_ops_seeds() {
    replay("pool_ops", pool_ops::pool_ops);
}

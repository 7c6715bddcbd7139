//! Fuzz harness bodies, shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/fuzz_replay.rs`, which replays every seed and saved crash
//! under plain `cargo test`. The pool state-machine harness is in
//! `pool_ops.rs` beside this file (also used by `tests/state_machine.rs`).

use slotpool::PoolConfig;

/// Arbitrary text through the config loader and validator: never a panic;
/// whatever validates re-serialises and re-validates to the same config.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for profile in ["dev", "test", "staging", "prod", "fuzz"] {
        if let Ok(config) = PoolConfig::from_toml_str(text, profile) {
            assert!(
                config.problems().is_empty(),
                "loaded but invalid: {config:?}"
            );
            let again = reparse(&config);
            assert_eq!(again, config, "round trip changed the config");
        }
    }
}

/// Arbitrary `SLOTPOOL_*` variable sets: never a panic; what validates
/// round-trips through TOML like any other config.
pub fn env_overrides(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One variable per line, `NAME=value`; names get the SLOTPOOL_ prefix.
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            (
                format!("SLOTPOOL_{}", name.to_uppercase()),
                value.to_owned(),
            )
        })
        .collect();
    if let Ok(config) = PoolConfig::default().apply_env(vars.clone()) {
        if config.problems().is_empty() {
            assert_eq!(reparse(&config), config, "round trip changed the config");
        }
    }
    let _ = PoolConfig::load(None, None, vars);
}

fn reparse(config: &PoolConfig) -> PoolConfig {
    let body: toml::Table = match config.to_toml_string().parse() {
        Ok(body) => body,
        Err(error) => panic!("to_toml_string wrote invalid TOML: {error}"),
    };
    let mut profiles = toml::Table::new();
    profiles.insert("fuzz".to_owned(), toml::Value::Table(body));
    let mut document = toml::Table::new();
    document.insert("profiles".to_owned(), toml::Value::Table(profiles));
    let text = toml::to_string(&document).unwrap_or_default();
    match PoolConfig::from_toml_str(&text, "fuzz") {
        Ok(again) => again,
        Err(error) => panic!("a valid config did not re-validate: {error}\n{text}"),
    }
}

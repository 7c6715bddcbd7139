//! Fuzz harness bodies, shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/fuzz_replay.rs`, which replays every seed and saved crash
//! under plain `cargo test`. The pool state-machine harness is in
//! `pool_ops.rs` beside this file (also used by `tests/state_machine.rs`).
//!
//! `config_toml` and `env_overrides` fuzz the core's loader for the pool's
//! own settings, [`PoolConfig`] (the `config` and `serde` features). A
//! backend's section (`[profiles.X.sqlite]`) or variable
//! (`SLOTPOOL_SQLITE_*`) is an unknown name to it, so inputs that have one
//! exercise the unknown-key and unknown-variable errors.

// Each cargo-fuzz target uses one of these bodies.
#![allow(dead_code)]

use slotpool::PoolConfig;

/// Arbitrary text through the config loader and validator: never a panic;
/// whatever loads is valid, and re-serialises (through `to_toml_string` and
/// a profile, and through serde) to the same config.
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
    // serde reads the same spellings; what it accepts is any config, valid
    // or not, and must not panic.
    let _ = toml::from_str::<PoolConfig>(text);
}

/// Arbitrary `SLOTPOOL_*` variable sets: never a panic; what validates
/// round-trips through TOML like any other config, and what loads is valid.
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
    if let Ok(config) = PoolConfig::default().apply_env(vars.clone())
        && config.problems().is_empty()
    {
        assert_eq!(reparse(&config), config, "round trip changed the config");
    }
    if let Ok(config) = PoolConfig::load(None, None, vars) {
        assert!(
            config.problems().is_empty(),
            "loaded but invalid: {config:?}"
        );
    }
}

/// `config` (valid) written by `to_toml_string`, read back as a profile of a
/// configuration file; checks that serde reads and writes it unchanged too.
fn reparse(config: &PoolConfig) -> PoolConfig {
    let written = config.to_toml_string();
    let body: toml::Table = match written.parse() {
        Ok(body) => body,
        Err(error) => panic!("to_toml_string wrote invalid TOML: {error}"),
    };
    match toml::from_str::<PoolConfig>(&written) {
        Ok(via_serde) => assert_eq!(&via_serde, config, "serde read a different config"),
        Err(error) => panic!("serde rejected to_toml_string's output: {error}\n{written}"),
    }
    match toml::to_string(config).map(|text| toml::from_str::<PoolConfig>(&text)) {
        Ok(Ok(back)) => assert_eq!(&back, config, "serde round trip changed the config"),
        Ok(Err(error)) => panic!("serde rejected its own output: {error}"),
        Err(error) => panic!("serde could not write a valid config: {error}"),
    }
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

//! `slotpool config show` and `slotpool config check`, and the one
//! configuration loader the other commands share.
//!
//! Owns: how a configuration and its sources are printed, and how a file's
//! profiles are checked. Loading and validation rules live in
//! `slotpool::config`.

use std::fmt::Write as _;
use std::path::Path;

use slotpool::config::{Source, Sources};
use slotpool::{ConfigError, PoolConfig};

use super::args::ConfigSource;
use super::error::{CliError, one_line};

/// The effective configuration: defaults < file profile < `SLOTPOOL_*`
/// variables of this process.
pub fn load(source: &ConfigSource) -> Result<PoolConfig, CliError> {
    load_with_sources(source).map(|(config, _)| config)
}

fn load_with_sources(source: &ConfigSource) -> Result<(PoolConfig, Sources), CliError> {
    Ok(PoolConfig::load_with_sources(
        source.config.as_deref(),
        source.profile.as_deref(),
        std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }),
    )?)
}

/// `config show`: prints the configuration as TOML, one `key = value` per
/// setting with a comment saying where the value came from.
pub fn show(source: &ConfigSource) -> Result<(), CliError> {
    let (config, sources) = load_with_sources(source)?;
    print!("{}", render_with_sources(&config, &sources));
    Ok(())
}

/// The configuration as TOML text (top-level settings, then `[sqlite]`),
/// each line annotated with its source. It parses back as a `PoolConfig`.
fn render_with_sources(config: &PoolConfig, sources: &Sources) -> String {
    // (setting, `key = value`, origin)
    let lines: Vec<(&str, String, String)> = PoolConfig::setting_names()
        .map(|name| {
            let value = config.setting_value(name).unwrap_or_default();
            let origin = match sources.get(name) {
                None | Some(Source::Default) => "default".to_owned(),
                Some(source) => format!("from {source}"),
            };
            (name, format!("{} = {value}", short_name(name)), origin)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(_, assignment, _)| assignment.len())
        .max()
        .unwrap_or(0);

    let mut out = String::from("# Effective configuration; each value's source after `#`.\n");
    let mut in_sqlite = false;
    for (name, assignment, origin) in &lines {
        if name.starts_with("sqlite.") && !in_sqlite {
            in_sqlite = true;
            out.push_str("\n[sqlite]\n");
        }
        let _ = writeln!(out, "{assignment:<width$}  # {origin}");
    }
    out
}

/// `sqlite.path` is written `path` under `[sqlite]`.
fn short_name(name: &str) -> &str {
    name.strip_prefix("sqlite.").unwrap_or(name)
}

/// `config check FILE`: loads every profile of `file` (without environment
/// overrides) and prints each problem with the rule it breaks.
pub fn check(file: &Path) -> Result<(), CliError> {
    let profiles = PoolConfig::profiles_in_file(file)?;
    if profiles.is_empty() {
        println!("{}: defines no [profiles.<name>] table", file.display());
        return Err(CliError::CheckFailed {
            path: file.to_path_buf(),
            problems: 1,
        });
    }
    let mut problems = 0;
    for profile in &profiles {
        let found = profile_problems(file, profile);
        if found.is_empty() {
            println!("profile `{profile}`: ok");
        }
        for problem in &found {
            println!("profile `{profile}`: {}", one_line(problem));
        }
        problems += found.len();
    }
    if problems > 0 {
        return Err(CliError::CheckFailed {
            path: file.to_path_buf(),
            problems,
        });
    }
    Ok(())
}

/// Every problem of one profile. The loader stops at the first broken rule;
/// when that happens, the profile is read again without validation to list
/// all of them.
fn profile_problems(file: &Path, profile: &str) -> Vec<ConfigError> {
    match PoolConfig::load(Some(file), Some(profile), std::iter::empty()) {
        Ok(_) => Vec::new(),
        Err(first @ ConfigError::Invalid { .. }) => match unvalidated(file, profile) {
            Some(config) if !config.problems().is_empty() => config.problems(),
            _ => vec![first],
        },
        Err(other) => vec![other],
    }
}

/// `profile` of `file` over its `[defaults]`, read through serde without
/// validation; `None` if that reading fails (the loader's error is then
/// reported instead).
fn unvalidated(file: &Path, profile: &str) -> Option<PoolConfig> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut doc = text.parse::<toml::Table>().ok()?;
    let mut merged = match doc.remove("defaults") {
        Some(toml::Value::Table(defaults)) => defaults,
        _ => toml::Table::new(),
    };
    let profile_table = doc
        .get("profiles")?
        .as_table()?
        .get(profile)?
        .as_table()?
        .clone();
    merge(&mut merged, profile_table);
    toml::Value::Table(merged).try_into().ok()
}

/// Deep-merges `over` into `base`; `over` wins.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

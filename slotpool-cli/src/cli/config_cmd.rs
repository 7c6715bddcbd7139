//! `slotpool config show` and `slotpool config check`, and the one
//! configuration loader the other commands share.
//!
//! Owns: how a configuration and its sources are printed, which file the two
//! `config` commands read when none is named, and how a file's profiles are
//! checked. Loading and validation rules live in `slotpool::config` (the
//! pool's settings) and `slotpool_sqlite` (the `[sqlite]` section). It may
//! not define or validate settings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use slotpool::ConfigError;
use slotpool::config::schema::Settings;
use slotpool::config::{ENV_CONFIG, Source, Sources};
use slotpool_sqlite::Config;

use super::args::ConfigSource;
use super::error::{CliError, one_line};

/// The file `config show` and `config check` read when none is named (and
/// `SLOTPOOL_CONFIG` is unset): the one in the working directory.
pub const DEFAULT_FILE: &str = "config.toml";

/// The effective configuration: defaults < file profile < `SLOTPOOL_*`
/// variables of this process. Reads a file only when one is named
/// (`--config` or `SLOTPOOL_CONFIG`), so `bench` and `stats` measure the
/// defaults unless asked otherwise.
pub fn load(source: &ConfigSource) -> Result<Config, CliError> {
    load_with_sources(source.config.as_deref(), source).map(|(config, _)| config)
}

fn load_with_sources(
    file: Option<&Path>,
    source: &ConfigSource,
) -> Result<(Config, Sources), CliError> {
    Ok(slotpool::config::load_with_sources(
        file,
        source.profile.as_deref(),
        slotpool::config::process_env(),
    )?)
}

/// The file `config show` reads: `--config`, else `SLOTPOOL_CONFIG` (left
/// to the loader), else `./config.toml` when it exists.
fn show_file(source: &ConfigSource) -> Option<PathBuf> {
    if source.config.is_some() {
        return source.config.clone();
    }
    let named_by_env = std::env::var_os(ENV_CONFIG).is_some_and(|value| !value.is_empty());
    let default = Path::new(DEFAULT_FILE);
    (!named_by_env && default.is_file()).then(|| default.to_path_buf())
}

/// `config show`: prints the configuration as TOML, one `key = value` per
/// setting with a comment saying where the value came from.
pub fn show(source: &ConfigSource) -> Result<(), CliError> {
    let file = show_file(source);
    let (config, sources) = load_with_sources(file.as_deref(), source)?;
    print!("{}", render_with_sources(&config, &sources));
    Ok(())
}

/// The configuration as TOML text (top-level settings, then one table per
/// section), each line annotated with its source. It parses back as a
/// `Config`.
fn render_with_sources<T: Settings>(config: &T, sources: &Sources) -> String {
    let table = T::settings();
    // (section, `key = value`, origin)
    let lines: Vec<(Option<&str>, String, String)> = table
        .iter()
        .map(|setting| {
            let value = setting.value(config).literal();
            let origin = match sources.get(setting.name()) {
                None | Some(Source::Default) => "default".to_owned(),
                Some(derived @ Source::Derived { .. }) => derived.to_string(),
                Some(source) => format!("from {source}"),
            };
            (
                setting.section(),
                format!("{} = {value}", setting.leaf()),
                origin,
            )
        })
        .collect();
    let width = lines
        .iter()
        .map(|(_, assignment, _)| assignment.len())
        .max()
        .unwrap_or(0);

    let mut out = String::from("# Effective configuration; each value's source after `#`.\n");
    let mut current: Option<&str> = None;
    for (section, assignment, origin) in &lines {
        if *section != current {
            current = *section;
            if let Some(section) = section {
                let _ = write!(out, "\n[{section}]\n");
            }
        }
        let _ = writeln!(out, "{assignment:<width$}  # {origin}");
    }
    out
}

/// `config check [FILE]`: loads every profile of `file` (default
/// `./config.toml`) without environment overrides and prints each problem
/// with the rule it breaks.
pub fn check(file: Option<&Path>) -> Result<(), CliError> {
    let file = file.unwrap_or(Path::new(DEFAULT_FILE));
    let profiles = slotpool::config::profiles_in_file(file)?;
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

/// Every problem of one profile: the file's own errors (an unknown key, a
/// value of the wrong type) one at a time, else every broken rule.
fn profile_problems(file: &Path, profile: &str) -> Vec<ConfigError> {
    match slotpool::config::load_unvalidated::<Config>(Some(file), Some(profile), []) {
        Ok((config, _)) => config.problems(),
        Err(error) => vec![error],
    }
}

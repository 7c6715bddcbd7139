//! The environment layer: turns `SLOTPOOL_*` variables into assignments.
//! Variables are passed in as `(name, value)` pairs, never read here, so
//! tests need not touch the process environment. Part of the loader
//! (feature `config`).
//!
//! Owns: the `SLOTPOOL_*` naming and the reserved and ignored variables. It
//! may not read files.

use std::path::PathBuf;

use super::error::ConfigError;
use super::names;
use super::schema::{ENV_PREFIX, Raw, Setting};
use super::source::{Assignment, Source};

/// Variable naming the configuration file to load.
pub const ENV_CONFIG: &str = "SLOTPOOL_CONFIG";

/// Variable naming the profile to load from the file.
pub const ENV_PROFILE: &str = "SLOTPOOL_PROFILE";

/// `SLOTPOOL_*` variables that belong to others (the test suite) and are
/// neither settings nor errors.
pub const IGNORED_VARIABLES: &[&str] = &["SLOTPOOL_REQUIRE_PG"];

/// Prefixes of `SLOTPOOL_*` variables that are likewise ignored.
pub const IGNORED_PREFIXES: &[&str] = &["SLOTPOOL_TEST_"];

/// What the environment contributes to a load.
#[derive(Default)]
pub(crate) struct EnvLayer {
    /// `SLOTPOOL_CONFIG`, unless unset or empty.
    pub(crate) config: Option<PathBuf>,
    /// `SLOTPOOL_PROFILE`, unless unset or empty.
    pub(crate) profile: Option<String>,
    /// One assignment per setting variable, in the order given.
    pub(crate) assignments: Vec<Assignment>,
}

/// Reads the `SLOTPOOL_*` pairs out of `vars`; other variables are ignored.
/// A `SLOTPOOL_*` variable that is neither reserved, ignored nor a setting of
/// `table` is an [`ConfigError::UnknownVariable`].
pub(crate) fn scan<T>(
    table: &[Setting<T>],
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<EnvLayer, ConfigError> {
    let mut layer = EnvLayer::default();
    for (variable, value) in vars {
        if !variable.starts_with(ENV_PREFIX) || is_ignored(&variable) {
            continue;
        }
        match variable.as_str() {
            ENV_CONFIG => layer.config = non_empty(value).map(PathBuf::from),
            ENV_PROFILE => layer.profile = non_empty(value),
            _ => {
                let Some(setting) = names::find_by_env_var(table, &variable) else {
                    let suggestion = names::suggest_env_var(table, &variable);
                    return Err(ConfigError::UnknownVariable {
                        variable,
                        suggestion,
                    });
                };
                layer.assignments.push(Assignment {
                    setting,
                    shown: value.clone(),
                    raw: Raw::Text(value),
                    origin: variable.clone(),
                    source: Source::Env { variable },
                });
            }
        }
    }
    Ok(layer)
}

fn is_ignored(variable: &str) -> bool {
    IGNORED_VARIABLES.contains(&variable)
        || IGNORED_PREFIXES.iter().any(|p| variable.starts_with(p))
}

fn non_empty(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

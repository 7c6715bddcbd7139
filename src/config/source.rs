//! Layering: where a setting's value came from ([`Source`]), and the one
//! overlay routine that applies assignments from any layer (file or
//! environment) on top of a base configuration. Part of the loader (feature
//! `config`).
//!
//! Owns: [`Source`], [`Sources`] and the overlay. It may not parse files or
//! read variables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::error::ConfigError;
use super::schema::{Raw, Setting};

/// Where the value of one setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A configuration file.
    File {
        /// The file, or `None` for text given directly.
        path: Option<PathBuf>,
        /// The profile table the value came from, or `None` for the
        /// `[defaults]` table.
        profile: Option<String>,
    },
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `SLOTPOOL_MAX_SIZE`.
        variable: String,
    },
    /// Not set: derived from settings that were (see
    /// [`PoolConfig::derive_defaults`](super::PoolConfig::derive_defaults)).
    Derived {
        /// How, e.g. `min(5s, connection_timeout / 2)`.
        rule: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, profile } => {
                match path {
                    Some(path) => write!(f, "{}", path.display())?,
                    None => f.write_str("configuration text")?,
                }
                match profile {
                    Some(profile) => write!(f, " [profiles.{profile}]"),
                    None => f.write_str(" [defaults]"),
                }
            }
            Source::Env { variable } => write!(f, "${variable}"),
            Source::Derived { rule } => write!(f, "derived: {rule}"),
        }
    }
}

/// Where each setting's value came from, keyed by dotted setting name.
pub type Sources = BTreeMap<String, Source>;

/// One value for one setting from one layer.
pub(crate) struct Assignment {
    /// The setting assigned: its index in the table being loaded.
    pub(crate) setting: usize,
    /// The value, not yet decoded.
    pub(crate) raw: Raw,
    /// The value as the user wrote it: a TOML literal for file values, the
    /// raw text for environment variables.
    pub(crate) shown: String,
    /// How the user spelled the location: a dotted file key or a variable.
    pub(crate) origin: String,
    /// The layer it came from.
    pub(crate) source: Source,
}

/// Every setting of `table` sourced from its default.
pub(crate) fn default_sources<T>(table: &[Setting<T>]) -> Sources {
    table
        .iter()
        .map(|s| (s.name().to_owned(), Source::Default))
        .collect()
}

/// Applies `assignments` in order on top of `config`, recording each
/// setting's source; later assignments win.
pub(crate) fn overlay<T>(
    table: &[Setting<T>],
    mut config: T,
    mut sources: Sources,
    assignments: impl IntoIterator<Item = Assignment>,
) -> Result<(T, Sources), ConfigError> {
    for assignment in assignments {
        let Assignment {
            setting,
            raw,
            shown,
            origin,
            source,
        } = assignment;
        let setting = &table[setting];
        setting
            .apply(&mut config, &raw)
            .map_err(|mismatch| ConfigError::Parse {
                setting: origin,
                value: shown,
                expected: mismatch.expected,
                source: mismatch.source,
            })?;
        sources.insert(setting.name().to_owned(), source);
    }
    Ok((config, sources))
}

//! [`ConfigError`]: everything that can go wrong while reading, overlaying or
//! validating a configuration.
//!
//! Owns: [`ConfigError`] and its messages. It may not hold loading or
//! validation logic.

use std::fmt;
use std::path::PathBuf;

/// Boxed underlying cause of a [`ConfigError::Parse`] (an integer, float or
/// duration parse error, for instance).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error found while loading or validating a [`PoolConfig`](super::PoolConfig).
///
/// Every variant names the setting, key, variable, profile or file at fault, so
/// its `Display` form is enough for a user to fix the problem.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting holds a well-formed value that breaks a validation rule.
    Invalid {
        /// Dotted setting name, e.g. `min_idle` or `sqlite.busy_timeout`.
        setting: &'static str,
        /// The offending value, written as a TOML literal (`12`, `"0s"`).
        value: String,
        /// The rule it breaks, e.g. `must be <= max_size (10)`.
        rule: String,
    },
    /// A value could not be converted to the setting's type.
    Parse {
        /// Where the value came from: the dotted key in the file
        /// (`profiles.dev.max_size`) or the environment variable
        /// (`SLOTPOOL_MAX_SIZE`).
        setting: String,
        /// The value as written: a TOML literal for file values (`"ten"`),
        /// the raw text for environment variables (`ten`).
        value: String,
        /// What a valid value looks like.
        expected: String,
        /// The underlying parse error, when there is one.
        source: Option<BoxError>,
    },
    /// A configuration file contains a key that is not a known setting.
    UnknownKey {
        /// Full dotted path of the key in the file, e.g. `profiles.dev.max_szie`.
        key: String,
        /// Full dotted path of the closest known key, e.g. `profiles.dev.max_size`.
        suggestion: Option<String>,
    },
    /// The requested profile is not defined in the configuration file.
    UnknownProfile {
        /// The profile that was asked for.
        profile: String,
        /// Profiles the file defines, sorted; empty when no file was loaded.
        available: Vec<String>,
    },
    /// A `SLOTPOOL_*` environment variable does not name a known setting.
    UnknownVariable {
        /// The variable's name, e.g. `SLOTPOOL_MAX_SZIE`.
        variable: String,
        /// The closest known variable, e.g. `SLOTPOOL_MAX_SIZE`.
        suggestion: Option<String>,
    },
    /// The configuration file could not be read.
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The configuration text is not valid TOML.
    Toml {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The TOML parser's message, with line and column.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                setting,
                value,
                rule,
            } => write!(f, "invalid `{setting}` = {value}: {rule}"),
            ConfigError::Parse {
                setting,
                value,
                expected,
                ..
            } => write!(
                f,
                "cannot parse `{setting}` from `{value}`: expected {expected}"
            ),
            ConfigError::UnknownKey { key, suggestion } => {
                write!(f, "unknown setting `{key}`{}", DidYouMean(suggestion))
            }
            ConfigError::UnknownProfile { profile, available } => write!(
                f,
                "unknown profile `{profile}` (available: {})",
                Available(available)
            ),
            ConfigError::UnknownVariable {
                variable,
                suggestion,
            } => write!(
                f,
                "unknown environment variable `{variable}`{}",
                DidYouMean(suggestion)
            ),
            ConfigError::Io { path, .. } => {
                write!(f, "cannot read configuration file `{}`", path.display())
            }
            ConfigError::Toml { path, message } => {
                write!(f, "invalid TOML{}: {message}", InFile(path))
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Parse {
                source: Some(source),
                ..
            } => Some(&**source),
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

struct DidYouMean<'a>(&'a Option<String>);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(suggestion) => write!(f, " (did you mean `{suggestion}`?)"),
            None => Ok(()),
        }
    }
}

struct Available<'a>(&'a [String]);

impl fmt::Display for Available<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none; profiles need a configuration file");
        }
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}

struct InFile<'a>(&'a Option<PathBuf>);

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, " in `{}`", path.display()),
            None => Ok(()),
        }
    }
}

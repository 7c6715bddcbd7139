//! [`ConfigError`]: everything that can go wrong while reading, overlaying or
//! validating a configuration.

use std::fmt;
use std::path::PathBuf;

/// Boxed underlying cause of a [`ConfigError::Parse`] (an integer, float or
/// duration parse error, for instance).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error found while loading or validating a [`PoolConfig`](super::PoolConfig).
///
/// Every variant names the setting, key, variable, profile or file at fault, so
/// its `Display` form is enough for a user to fix the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting holds a well-formed value that breaks a validation rule.
    #[error("invalid `{setting}` = {value}: {rule}")]
    Invalid {
        /// Dotted setting name, e.g. `min_idle` or `sqlite.busy_timeout`.
        setting: &'static str,
        /// The offending value, written as a TOML literal (`12`, `"0s"`).
        value: String,
        /// The rule it breaks, e.g. `must be <= max_size (10)`.
        rule: String,
    },
    /// A value could not be converted to the setting's type.
    #[error("cannot parse `{setting}` from `{value}`: expected {expected}")]
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
        #[source]
        source: Option<BoxError>,
    },
    /// A configuration file contains a key that is not a known setting.
    #[error("unknown setting `{key}`{}", DidYouMean(suggestion))]
    UnknownKey {
        /// Full dotted path of the key in the file, e.g. `profiles.dev.max_szie`.
        key: String,
        /// Full dotted path of the closest known key, e.g. `profiles.dev.max_size`.
        suggestion: Option<String>,
    },
    /// The requested profile is not defined in the configuration file.
    #[error("unknown profile `{profile}` (available: {})", Available(available))]
    UnknownProfile {
        /// The profile that was asked for.
        profile: String,
        /// Profiles the file defines, sorted; empty when no file was loaded.
        available: Vec<String>,
    },
    /// A `SLOTPOOL_*` environment variable does not name a known setting.
    #[error("unknown environment variable `{variable}`{}", DidYouMean(suggestion))]
    UnknownVariable {
        /// The variable's name, e.g. `SLOTPOOL_MAX_SZIE`.
        variable: String,
        /// The closest known variable, e.g. `SLOTPOOL_MAX_SIZE`.
        suggestion: Option<String>,
    },
    /// The configuration file could not be read.
    #[error("cannot read configuration file `{}`", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration text is not valid TOML.
    #[error("invalid TOML{}: {message}", InFile(path))]
    Toml {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The TOML parser's message, with line and column.
        message: String,
    },
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

//! The loading API of [`PoolConfig`]. Every entry point funnels into
//! [`resolve`]: defaults, then the file's `[defaults]` and profile tables,
//! then environment overrides, applied by one overlay routine.

use std::path::{Path, PathBuf};

use super::env;
use super::error::ConfigError;
use super::file::Document;
use super::settings::PoolConfig;
use super::source::{self, Assignment, Sources};
use super::table::{self, SETTINGS};

/// Profile loaded from a file when none is named.
pub const DEFAULT_PROFILE: &str = "dev";

/// Applies `doc`'s `profile` (if any) and then `env` over the defaults, and
/// validates the result.
fn resolve(
    doc: Option<&Document>,
    profile: Option<&str>,
    env: Vec<Assignment>,
) -> Result<(PoolConfig, Sources), ConfigError> {
    let file = match (doc, profile) {
        (Some(doc), profile) => doc.assignments(profile.unwrap_or(DEFAULT_PROFILE))?,
        // A profile was asked for but there is no file to take it from:
        // failing beats silently running on defaults.
        (None, Some(profile)) => {
            return Err(ConfigError::UnknownProfile {
                profile: profile.to_owned(),
                available: Vec::new(),
            });
        }
        (None, None) => Vec::new(),
    };
    let (config, sources) = source::overlay(
        PoolConfig::default(),
        source::default_sources(),
        file.into_iter().chain(env),
    )?;
    config.validate()?;
    Ok((config, sources))
}

impl PoolConfig {
    /// Loads `profile` from TOML text over the defaults, and validates.
    pub fn from_toml_str(text: &str, profile: &str) -> Result<Self, ConfigError> {
        let doc = Document::parse(text, None)?;
        resolve(Some(&doc), Some(profile), Vec::new()).map(|(config, _)| config)
    }

    /// Loads `profile` from a TOML file over the defaults, and validates.
    /// I/O and TOML errors carry the path.
    pub fn from_file(path: impl AsRef<Path>, profile: &str) -> Result<Self, ConfigError> {
        let doc = Document::read(path.as_ref())?;
        resolve(Some(&doc), Some(profile), Vec::new()).map(|(config, _)| config)
    }

    /// Loads from the process environment: `load(None, None, vars)`.
    /// Variables that are not valid Unicode are read lossily.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars = std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        });
        Self::load(None, None, vars)
    }

    /// Loads defaults < file profile < `SLOTPOOL_*` overrides, and validates.
    ///
    /// The file is `path`, else `SLOTPOOL_CONFIG` from `vars`, else none. The
    /// profile is `profile`, else `SLOTPOOL_PROFILE`, else
    /// [`DEFAULT_PROFILE`] when a file is used; naming a profile without a file
    /// is an [`ConfigError::UnknownProfile`]. Empty `SLOTPOOL_CONFIG` and
    /// `SLOTPOOL_PROFILE` count as unset.
    pub fn load(
        path: Option<&Path>,
        profile: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_sources(path, profile, vars).map(|(config, _)| config)
    }

    /// Like [`PoolConfig::load`], and also says where each setting's value
    /// came from (keyed by dotted setting name, every setting present).
    pub fn load_with_sources(
        path: Option<&Path>,
        profile: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Sources), ConfigError> {
        let env = env::scan(vars)?;
        let path: Option<PathBuf> = path.map(Path::to_path_buf).or(env.config);
        let profile = profile.map(str::to_owned).or(env.profile);
        let doc = path.as_deref().map(Document::read).transpose()?;
        resolve(doc.as_ref(), profile.as_deref(), env.assignments)
    }

    /// Overlays `SLOTPOOL_<SETTING>` variables from `vars` (e.g.
    /// `SLOTPOOL_MAX_SIZE=32`, `SLOTPOOL_IDLE_TIMEOUT=off`,
    /// `SLOTPOOL_SQLITE_JOURNAL_MODE=wal`) onto `self`, without validating.
    /// `SLOTPOOL_CONFIG`, `SLOTPOOL_PROFILE` and the ignored variables are
    /// skipped; any other `SLOTPOOL_*` variable is an
    /// [`ConfigError::UnknownVariable`].
    pub fn apply_env(
        self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env = env::scan(vars)?;
        source::overlay(self, Sources::new(), env.assignments).map(|(config, _)| config)
    }

    /// The whole configuration as TOML: every top-level setting, then a
    /// `[sqlite]` table, in declaration order. It reads back through serde
    /// (`toml::from_str::<PoolConfig>`) and, as the table of a profile (its
    /// `[sqlite]` becoming `[profiles.<name>.sqlite]`), through
    /// [`PoolConfig::from_toml_str`], to an equal configuration.
    #[must_use]
    pub fn to_toml_string(&self) -> String {
        table::render_document(self)
    }

    /// Names of the profiles a configuration file defines, sorted.
    pub fn profiles_in_file(path: impl AsRef<Path>) -> Result<Vec<String>, ConfigError> {
        Document::read(path.as_ref())?.profiles()
    }

    /// Dotted names of every setting (`max_size`, `sqlite.path`, ...), in
    /// declaration order.
    pub fn setting_names() -> impl Iterator<Item = &'static str> {
        SETTINGS.iter().map(|s| s.name)
    }

    /// The environment variable overriding a setting, e.g.
    /// `SLOTPOOL_SQLITE_PATH` for `sqlite.path`.
    #[must_use]
    pub fn env_var_for(setting: &str) -> Option<String> {
        table::find(setting).map(table::Setting::env_var)
    }

    /// A setting's current value as a TOML literal (`10`, `"30s"`, `"off"`).
    #[must_use]
    pub fn setting_value(&self, setting: &str) -> Option<String> {
        table::find(setting).map(|s| super::codec::literal(&s.render(self)))
    }
}

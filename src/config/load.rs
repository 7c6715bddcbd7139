//! The loading API (feature `config`). Every entry point funnels into
//! [`resolve`]: defaults, then the file's `[defaults]` and profile tables,
//! then environment overrides, applied by one overlay routine to any
//! [`Settings`] type: the pool's [`PoolConfig`], or a backend's
//! configuration that nests it.
//!
//! Owns: the public loading functions and the order of the layers. It may not
//! decode a value itself (the schema does).

use std::path::{Path, PathBuf};

use super::env;
use super::error::ConfigError;
use super::file::Document;
use super::names;
use super::schema::{Setting, Settings};
use super::settings::PoolConfig;
use super::source::{self, Assignment, Source, Sources};

/// Profile loaded from a file when none is named.
pub const DEFAULT_PROFILE: &str = "dev";

/// Applies `doc`'s `profile` (if any) and then `env` over the defaults of
/// `T`; validates the result when `validate` is set.
fn resolve<T: Settings>(
    table: &[Setting<T>],
    doc: Option<&Document>,
    profile: Option<&str>,
    env: Vec<Assignment>,
    validate: bool,
) -> Result<(T, Sources), ConfigError> {
    let file = match (doc, profile) {
        (Some(doc), profile) => doc.assignments(table, profile.unwrap_or(DEFAULT_PROFILE))?,
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
    let (mut config, mut sources) = source::overlay(
        table,
        T::default(),
        source::default_sources(table),
        file.into_iter().chain(env),
    )?;
    let set = sources.clone();
    let is_set = |name: &str| {
        set.get(name)
            .is_some_and(|source| *source != Source::Default)
    };
    for derived in config.derive_defaults(&is_set) {
        sources.insert(
            derived.setting.to_owned(),
            Source::Derived { rule: derived.rule },
        );
    }
    if validate {
        config.validate()?;
    }
    Ok((config, sources))
}

/// Loads defaults < file profile < `SLOTPOOL_*` overrides into any
/// [`Settings`] type, validates it, and says where each setting's value came
/// from (keyed by dotted setting name, every setting present).
///
/// The file is `path`, else `SLOTPOOL_CONFIG` from `vars`, else none. The
/// profile is `profile`, else `SLOTPOOL_PROFILE`, else [`DEFAULT_PROFILE`]
/// when a file is used; naming a profile without a file is an
/// [`ConfigError::UnknownProfile`]. Empty `SLOTPOOL_CONFIG` and
/// `SLOTPOOL_PROFILE` count as unset.
pub fn load_with_sources<T: Settings>(
    path: Option<&Path>,
    profile: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(T, Sources), ConfigError> {
    load_layers(path, profile, vars, true)
}

/// [`load_with_sources`] without validation, so that a caller can list
/// every problem ([`Settings::problems`]) rather than the first.
pub fn load_unvalidated<T: Settings>(
    path: Option<&Path>,
    profile: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(T, Sources), ConfigError> {
    load_layers(path, profile, vars, false)
}

fn load_layers<T: Settings>(
    path: Option<&Path>,
    profile: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
    validate: bool,
) -> Result<(T, Sources), ConfigError> {
    let table = T::settings();
    let env = env::scan(&table, vars)?;
    let path: Option<PathBuf> = path.map(Path::to_path_buf).or(env.config);
    let profile = profile.map(str::to_owned).or(env.profile);
    let doc = path.as_deref().map(Document::read).transpose()?;
    resolve(
        &table,
        doc.as_ref(),
        profile.as_deref(),
        env.assignments,
        validate,
    )
}

/// Loads `profile` from TOML text over the defaults of `T`, and validates.
pub fn from_toml_str<T: Settings>(text: &str, profile: &str) -> Result<T, ConfigError> {
    let doc = Document::parse(text, None)?;
    resolve(&T::settings(), Some(&doc), Some(profile), Vec::new(), true).map(|(config, _)| config)
}

/// Loads `profile` from a TOML file over the defaults of `T`, and validates.
/// I/O and TOML errors carry the path.
pub fn from_file<T: Settings>(path: impl AsRef<Path>, profile: &str) -> Result<T, ConfigError> {
    let doc = Document::read(path.as_ref())?;
    resolve(&T::settings(), Some(&doc), Some(profile), Vec::new(), true).map(|(config, _)| config)
}

/// Overlays `SLOTPOOL_<SETTING>` variables from `vars` onto `config`,
/// without validating. `SLOTPOOL_CONFIG`, `SLOTPOOL_PROFILE` and the ignored
/// variables are skipped; any other `SLOTPOOL_*` variable that names no
/// setting of `T` is an [`ConfigError::UnknownVariable`].
pub fn apply_env<T: Settings>(
    config: T,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let table = T::settings();
    let env = env::scan(&table, vars)?;
    source::overlay(&table, config, Default::default(), env.assignments).map(|(config, _)| config)
}

/// Names of the profiles a configuration file defines, sorted.
pub fn profiles_in_file(path: impl AsRef<Path>) -> Result<Vec<String>, ConfigError> {
    Document::read(path.as_ref())?.profiles()
}

/// The whole configuration as TOML: every top-level setting, then one table
/// per section (`[sqlite]`), each in declaration order. It reads back, as
/// the table of a profile, through [`from_toml_str`] to an equal
/// configuration.
#[must_use]
pub fn to_toml_string<T: Settings>(config: &T) -> String {
    let mut top = String::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    for setting in T::settings() {
        let line = format!("{} = {}\n", setting.leaf(), setting.value(config).literal());
        match setting.section() {
            None => top.push_str(&line),
            Some(section) => match sections.iter_mut().find(|(name, _)| name == section) {
                Some((_, body)) => body.push_str(&line),
                None => sections.push((section.to_owned(), line)),
            },
        }
    }
    for (section, body) in sections {
        top.push_str(&format!("\n[{section}]\n{body}"));
    }
    top
}

/// Writes a backend configuration's inherent `load`, `from_toml_str` and
/// `to_toml_string` over [`load_with_sources`], [`from_toml_str`] and
/// [`to_toml_string`]; the doc comment written before each name goes on
/// that function.
///
/// ```
/// use slotpool::PoolConfig;
/// use slotpool::config::schema::{Setting, Settings};
///
/// #[derive(Debug, Clone, Default, PartialEq)]
/// struct Config { pool: PoolConfig }
///
/// impl Settings for Config {
///     fn settings() -> Vec<Setting<Self>> {
///         PoolConfig::settings()
///             .into_iter()
///             .map(|s| s.nest(None, |c: &Config| &c.pool, |c| &mut c.pool))
///             .collect()
///     }
///     fn problems(&self) -> Vec<slotpool::ConfigError> {
///         self.pool.problems()
///     }
/// }
///
/// slotpool::config_loaders!(Config {
///     /// Loads defaults < file profile < overrides, and validates.
///     fn load;
///     /// Loads `profile` from TOML text over the defaults, and validates.
///     fn from_toml_str;
///     /// The whole configuration as TOML.
///     fn to_toml_string;
/// });
///
/// let config = Config::from_toml_str("[profiles.dev]\nmax_size = 3\n", "dev").unwrap();
/// assert_eq!(config.pool.max_size, 3);
/// assert!(config.to_toml_string().contains("max_size = 3"));
/// ```
#[macro_export]
macro_rules! config_loaders {
    ($config:ty {
        $(#[$load:meta])* fn load;
        $(#[$from_toml_str:meta])* fn from_toml_str;
        $(#[$to_toml_string:meta])* fn to_toml_string;
    }) => {
        impl $config {
            $(#[$load])*
            pub fn load(
                path: ::std::option::Option<&::std::path::Path>,
                profile: ::std::option::Option<&str>,
                vars: impl ::std::iter::IntoIterator<Item = (::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<Self, $crate::ConfigError> {
                $crate::config::load_with_sources(path, profile, vars).map(|(config, _)| config)
            }

            $(#[$from_toml_str])*
            pub fn from_toml_str(
                text: &str,
                profile: &str,
            ) -> ::std::result::Result<Self, $crate::ConfigError> {
                $crate::config::from_toml_str(text, profile)
            }

            $(#[$to_toml_string])*
            #[must_use]
            pub fn to_toml_string(&self) -> ::std::string::String {
                $crate::config::to_toml_string(self)
            }
        }
    };
}

/// The environment variable overriding a setting of `T`, e.g.
/// `SLOTPOOL_SQLITE_PATH` for `sqlite.path`.
#[must_use]
pub fn env_var_for<T: Settings>(setting: &str) -> Option<String> {
    let table = T::settings();
    names::find(&table, setting).map(|index| table[index].env_var())
}

/// A setting's current value as a TOML literal (`10`, `"30s"`, `"off"`).
#[must_use]
pub fn setting_value<T: Settings>(config: &T, setting: &str) -> Option<String> {
    let table = T::settings();
    names::find(&table, setting).map(|index| table[index].value(config).literal())
}

impl PoolConfig {
    /// Loads `profile` from TOML text over the defaults, and validates.
    pub fn from_toml_str(text: &str, profile: &str) -> Result<Self, ConfigError> {
        from_toml_str(text, profile)
    }

    /// Loads `profile` from a TOML file over the defaults, and validates.
    /// I/O and TOML errors carry the path.
    pub fn from_file(path: impl AsRef<Path>, profile: &str) -> Result<Self, ConfigError> {
        from_file(path, profile)
    }

    /// Loads from the process environment: `load(None, None, vars)`.
    /// Variables that are not valid Unicode are read lossily.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(None, None, process_env())
    }

    /// Loads defaults < file profile < `SLOTPOOL_*` overrides, and validates
    /// (see [`load_with_sources`] for how the file and profile are chosen).
    pub fn load(
        path: Option<&Path>,
        profile: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        load_with_sources(path, profile, vars).map(|(config, _)| config)
    }

    /// Like [`PoolConfig::load`], and also says where each setting's value
    /// came from.
    pub fn load_with_sources(
        path: Option<&Path>,
        profile: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Sources), ConfigError> {
        load_with_sources(path, profile, vars)
    }

    /// Overlays `SLOTPOOL_<SETTING>` variables from `vars` (e.g.
    /// `SLOTPOOL_MAX_SIZE=32`, `SLOTPOOL_IDLE_TIMEOUT=off`) onto `self`,
    /// without validating.
    pub fn apply_env(
        self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        apply_env(self, vars)
    }

    /// The whole configuration as TOML, every setting in declaration order.
    /// It reads back through [`PoolConfig::from_toml_str`] (as a profile's
    /// table) and, with the `serde` feature, through serde, to an equal
    /// configuration.
    #[must_use]
    pub fn to_toml_string(&self) -> String {
        to_toml_string(self)
    }

    /// Names of the profiles a configuration file defines, sorted.
    pub fn profiles_in_file(path: impl AsRef<Path>) -> Result<Vec<String>, ConfigError> {
        profiles_in_file(path)
    }

    /// Dotted names of every setting, in declaration order.
    pub fn setting_names() -> impl Iterator<Item = String> {
        <Self as Settings>::settings()
            .into_iter()
            .map(|s| s.name().to_owned())
    }

    /// The environment variable overriding a setting, e.g.
    /// `SLOTPOOL_MAX_SIZE` for `max_size`.
    #[must_use]
    pub fn env_var_for(setting: &str) -> Option<String> {
        env_var_for::<Self>(setting)
    }

    /// A setting's current value as a TOML literal (`10`, `"30s"`, `"off"`).
    #[must_use]
    pub fn setting_value(&self, setting: &str) -> Option<String> {
        setting_value(self, setting)
    }
}

/// The process environment as `(name, value)` pairs, read lossily.
#[must_use]
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

//! The file layer: reads a TOML document of profiles and turns the selected
//! profile (over the optional `[defaults]` table) into assignments, rejecting
//! unknown keys with a suggestion. Part of the loader (feature `config`).
//!
//! Owns: reading a TOML document and walking its `[defaults]` and profile
//! tables. It may not decode values (the schema does) or read the
//! environment.
//!
//! ```toml
//! [defaults]            # optional; applies under every profile
//! min_idle = 1
//!
//! [profiles.dev]
//! max_size = 4
//! connection_timeout = "5s"
//!
//! [profiles.dev.sqlite]  # a backend's section (slotpool_sqlite::Config)
//! path = "dev.db"
//! ```

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::ConfigError;
use super::names;
use super::schema::{self, Raw, Setting};
use super::source::{Assignment, Source};

/// Top-level table of profiles.
const PROFILES: &str = "profiles";
/// Optional top-level table applied under every profile.
const DEFAULTS: &str = "defaults";

/// A parsed configuration document.
pub(crate) struct Document {
    table: Table,
    path: Option<PathBuf>,
}

impl Document {
    /// Parses TOML text; `path` (if any) is only used in errors and sources.
    pub(crate) fn parse(text: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let table = text.parse::<Table>().map_err(|e| ConfigError::Toml {
            path: path.map(Path::to_path_buf),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Ok(Self {
            table,
            path: path.map(Path::to_path_buf),
        })
    }

    /// Reads and parses a file.
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    /// Names of the profiles defined, sorted.
    pub(crate) fn profiles(&self) -> Result<Vec<String>, ConfigError> {
        // Which settings exist is not known here (a backend adds its
        // section); loading a profile checks the top level against them.
        Ok(self
            .profile_tables()?
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Assignments to the settings of `table` for `profile`: the
    /// `[defaults]` table's, then the profile's.
    pub(crate) fn assignments<T>(
        &self,
        table: &[Setting<T>],
        profile: &str,
    ) -> Result<Vec<Assignment>, ConfigError> {
        self.check_top_level(table)?;
        let Some(selected) = self.profile_tables()?.and_then(|t| t.get(profile)) else {
            return Err(ConfigError::UnknownProfile {
                profile: profile.to_owned(),
                available: self.profiles()?,
            });
        };
        let mut out = Vec::new();
        if let Some(defaults) = self.table.get(DEFAULTS) {
            let defaults = expect_table(defaults, DEFAULTS, "a table of settings")?;
            self.collect(table, defaults, DEFAULTS, "", None, &mut out)?;
        }
        let base = format!("{PROFILES}.{}", key_segment(profile));
        let selected = expect_table(selected, &base, "a table of settings")?;
        self.collect(table, selected, &base, "", Some(profile), &mut out)?;
        Ok(out)
    }

    /// Rejects top-level keys other than `profiles` and `defaults`.
    fn check_top_level<T>(&self, table: &[Setting<T>]) -> Result<(), ConfigError> {
        for key in self.table.keys() {
            if key == PROFILES || key == DEFAULTS {
                continue;
            }
            // A setting written at top level most likely belongs in [defaults].
            let suggestion = if names::find(table, key).is_some() || names::is_section(table, key) {
                Some(format!("{DEFAULTS}.{key}"))
            } else {
                names::closest(key, [PROFILES, DEFAULTS]).map(str::to_owned)
            };
            return Err(ConfigError::UnknownKey {
                key: key_segment(key),
                suggestion,
            });
        }
        Ok(())
    }

    /// The `[profiles]` table, if present.
    fn profile_tables(&self) -> Result<Option<&Table>, ConfigError> {
        self.table
            .get(PROFILES)
            .map(|value| expect_table(value, PROFILES, "a table of profiles"))
            .transpose()
    }

    /// Walks a table of settings. `base` is the dotted file key of the
    /// profile (or `defaults`) table and `prefix` the setting path inside it
    /// (`""` at top level, `"sqlite."` in the sqlite table).
    fn collect<T>(
        &self,
        table: &[Setting<T>],
        settings: &Table,
        base: &str,
        prefix: &str,
        profile: Option<&str>,
        out: &mut Vec<Assignment>,
    ) -> Result<(), ConfigError> {
        for (name, value) in settings {
            let setting_name = format!("{prefix}{name}");
            let key = format!("{base}.{prefix}{}", key_segment(name));
            // A quoted key containing a dot (`"sqlite.path" = ...`) is one
            // key, not a path, and so names no setting or section.
            let plain = !name.contains('.');
            if let Some(setting) = names::find(table, &setting_name).filter(|_| plain) {
                out.push(Assignment {
                    setting,
                    raw: scalar(value),
                    shown: literal(value),
                    origin: key,
                    source: Source::File {
                        path: self.path.clone(),
                        profile: profile.map(str::to_owned),
                    },
                });
            } else if plain && names::is_section(table, &setting_name) {
                let section = expect_table(value, &key, "a table of settings")?;
                self.collect(
                    table,
                    section,
                    base,
                    &format!("{setting_name}."),
                    profile,
                    out,
                )?;
            } else {
                let suggestion =
                    names::suggest_setting(table, &setting_name).map(|s| format!("{base}.{s}"));
                return Err(ConfigError::UnknownKey { key, suggestion });
            }
        }
        Ok(())
    }
}

/// `value` as a table, or a [`ConfigError::Parse`] naming `key`.
fn expect_table<'a>(value: &'a Value, key: &str, expected: &str) -> Result<&'a Table, ConfigError> {
    value.as_table().ok_or_else(|| ConfigError::Parse {
        setting: key.to_owned(),
        value: literal(value),
        expected: expected.to_owned(),
        source: None,
    })
}

/// One component of a dotted key, quoted when it is not a bare TOML key.
fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        literal(&Value::String(name.to_owned()))
    }
}

/// A file value as a setting value. Tables, arrays and dates are no
/// setting's type: they are passed on as a string no codec accepts, so the
/// error names the setting and shows the value as written.
fn scalar(value: &Value) -> Raw {
    match value {
        Value::Boolean(flag) => Raw::Value(schema::Value::Boolean(*flag)),
        Value::Integer(int) => Raw::Value(schema::Value::Integer(*int)),
        Value::Float(float) => Raw::Value(schema::Value::Float(*float)),
        Value::String(text) => Raw::Value(schema::Value::String(text.clone())),
        _ => Raw::Other,
    }
}

/// Renders a TOML value as it would appear on the right of `key = `.
pub(crate) fn literal(value: &Value) -> String {
    value.to_string()
}

//! The setting table: one entry per setting, naming it (dotted, e.g.
//! `sqlite.busy_timeout`) and giving the functions that decode a raw value
//! into it and render it back. Every loader, the environment overlay, the
//! TOML writer and the key checks are driven by this one list.

use toml::Value;

use super::codec::{Mismatch, Raw, SettingValue, literal};
use super::env::{ENV_CONFIG, ENV_PREFIX, ENV_PROFILE};
use super::settings::PoolConfig;

/// Largest edit distance at which a known name is suggested for a typo.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// One setting of [`PoolConfig`].
pub(crate) struct Setting {
    /// Dotted name, e.g. `max_size` or `sqlite.path`.
    pub(crate) name: &'static str,
    apply: fn(&mut PoolConfig, &Raw) -> Result<(), Mismatch>,
    render: fn(&PoolConfig) -> Value,
}

impl Setting {
    /// Decodes `raw` and stores it in `config`.
    pub(crate) fn apply(&self, config: &mut PoolConfig, raw: &Raw) -> Result<(), Mismatch> {
        (self.apply)(config, raw)
    }

    /// The setting's current value in `config`, as TOML.
    pub(crate) fn render(&self, config: &PoolConfig) -> Value {
        (self.render)(config)
    }

    /// The table the setting lives in (`Some("sqlite")`), or `None` at top level.
    pub(crate) fn section(&self) -> Option<&'static str> {
        self.name.rsplit_once('.').map(|(section, _)| section)
    }

    /// The last component of the name (`path` for `sqlite.path`).
    pub(crate) fn leaf(&self) -> &'static str {
        self.name
            .rsplit_once('.')
            .map_or(self.name, |(_, leaf)| leaf)
    }

    /// The environment variable overriding it, e.g. `SLOTPOOL_SQLITE_PATH`.
    pub(crate) fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}{}",
            self.name.replace('.', "_").to_ascii_uppercase()
        )
    }
}

/// Builds [`SETTINGS`] from field paths; the dotted name is the field path.
macro_rules! settings {
    ($($head:ident $(. $tail:ident)*),* $(,)?) => {
        /// Every setting, in declaration order.
        pub(crate) static SETTINGS: &[Setting] = &[$(
            Setting {
                name: concat!(stringify!($head) $(, ".", stringify!($tail))*),
                apply: |config, raw| {
                    config.$head$(.$tail)* = SettingValue::decode(raw)?;
                    Ok(())
                },
                render: |config| SettingValue::to_toml(&config.$head$(.$tail)*),
            },
        )*];
    };
}

settings! {
    pool_name,
    max_size,
    min_idle,
    capacity,
    connection_timeout,
    validation_timeout,
    validation_idle_window,
    idle_timeout,
    max_lifetime,
    max_lifetime_jitter,
    keepalive_interval,
    leak_detection_threshold,
    max_waiters,
    connect_backoff_initial,
    connect_backoff_max,
    fail_fast_after,
    close_timeout,
    startup,
    sqlite.path,
    sqlite.journal_mode,
    sqlite.synchronous,
    sqlite.mmap_size,
    sqlite.cache_size,
    sqlite.busy_timeout,
    sqlite.foreign_keys,
    sqlite.temp_store,
    sqlite.read_only,
    sqlite.locking,
    sqlite.statement_cache_capacity,
}

/// The setting with this dotted name.
pub(crate) fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting overridden by this environment variable.
pub(crate) fn find_by_env_var(variable: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env_var() == variable)
}

/// Whether `name` is a table of settings (`sqlite`).
pub(crate) fn is_section(name: &str) -> bool {
    SETTINGS.iter().any(|s| s.section() == Some(name))
}

/// The known setting or section closest to an unknown dotted `name`: one
/// with the same last component (`path` → `sqlite.path`), else the nearest
/// within a small edit distance.
pub(crate) fn suggest_setting(name: &str) -> Option<&'static str> {
    let leaf = name.rsplit_once('.').map_or(name, |(_, leaf)| leaf);
    SETTINGS
        .iter()
        .find(|s| s.leaf().eq_ignore_ascii_case(leaf))
        .map(|s| s.name)
        .or_else(|| {
            let sections = SETTINGS.iter().filter_map(Setting::section);
            closest(name, SETTINGS.iter().map(|s| s.name).chain(sections))
        })
}

/// The known variable (a setting's, `SLOTPOOL_CONFIG` or `SLOTPOOL_PROFILE`)
/// closest to an unknown `SLOTPOOL_*` one.
pub(crate) fn suggest_env_var(variable: &str) -> Option<String> {
    let reserved = [ENV_CONFIG, ENV_PROFILE].map(str::to_owned);
    let names: Vec<String> = SETTINGS
        .iter()
        .map(Setting::env_var)
        .chain(reserved)
        .collect();
    closest(variable, names.iter().map(String::as_str)).map(str::to_owned)
}

/// The candidate nearest to `input` (Damerau-Levenshtein, ignoring ASCII
/// case), if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    let limit = MAX_SUGGESTION_DISTANCE.min(input.chars().count().saturating_sub(1));
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&input_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Writes every setting of `config` as a TOML document: top-level settings
/// first, then one table per section, each in declaration order.
pub(crate) fn render_document(config: &PoolConfig) -> String {
    let mut top = String::new();
    let mut sections: Vec<(&str, String)> = Vec::new();
    for setting in SETTINGS {
        let line = format!(
            "{} = {}\n",
            setting.leaf(),
            literal(&setting.render(config))
        );
        match setting.section() {
            None => top.push_str(&line),
            Some(section) => match sections.iter_mut().find(|(name, _)| *name == section) {
                Some((_, body)) => body.push_str(&line),
                None => sections.push((section, line)),
            },
        }
    }
    for (section, body) in sections {
        top.push_str(&format!("\n[{section}]\n{body}"));
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_variables_are_unique() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.env_var(), b.env_var());
            }
        }
    }

    #[test]
    fn table_matches_serde_field_names() {
        let value = Value::try_from(PoolConfig::default()).expect("default serialises");
        let mut names = Vec::new();
        let Value::Table(top) = value else {
            panic!("not a table")
        };
        for (key, value) in top {
            match value {
                Value::Table(section) => names.extend(section.keys().map(|k| format!("{key}.{k}"))),
                _ => names.push(key),
            }
        }
        names.sort();
        let mut expected: Vec<String> = SETTINGS.iter().map(|s| s.name.to_owned()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn closest_ignores_far_and_tiny_inputs() {
        assert_eq!(
            closest("max_szie", ["max_size", "min_idle"]),
            Some("max_size")
        );
        assert_eq!(closest("zzzzzzzz", ["max_size"]), None);
        assert_eq!(closest("x", ["y"]), None);
    }
}

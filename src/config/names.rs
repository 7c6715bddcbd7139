//! Finding settings by name and suggesting the right one for a typo.
//!
//! Owns: lookups over a [`Setting`] table (by dotted name, by environment
//! variable, by section) and the did-you-mean suggestions (Damerau-
//! Levenshtein through `strsim`). Part of the loader (feature `config`). It
//! may not decode or apply values.

use super::env::{ENV_CONFIG, ENV_PROFILE};
use super::schema::Setting;

/// Largest edit distance at which a known name is suggested for a typo.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// The index of the setting with this dotted name.
pub(crate) fn find<T>(table: &[Setting<T>], name: &str) -> Option<usize> {
    table.iter().position(|s| s.name() == name)
}

/// The index of the setting overridden by this environment variable.
pub(crate) fn find_by_env_var<T>(table: &[Setting<T>], variable: &str) -> Option<usize> {
    table.iter().position(|s| s.env_var() == variable)
}

/// Whether `name` is a table of settings (`sqlite`).
pub(crate) fn is_section<T>(table: &[Setting<T>], name: &str) -> bool {
    table.iter().any(|s| s.section() == Some(name))
}

/// The known setting or section closest to an unknown dotted `name`: one
/// with the same last component (`path` → `sqlite.path`), else the nearest
/// within a small edit distance.
pub(crate) fn suggest_setting<T>(table: &[Setting<T>], name: &str) -> Option<String> {
    let leaf = name.rsplit_once('.').map_or(name, |(_, leaf)| leaf);
    table
        .iter()
        .find(|s| s.leaf().eq_ignore_ascii_case(leaf))
        .map(|s| s.name().to_owned())
        .or_else(|| {
            let sections = table.iter().filter_map(Setting::section);
            closest(name, table.iter().map(Setting::name).chain(sections)).map(str::to_owned)
        })
}

/// The known variable (a setting's, `SLOTPOOL_CONFIG` or `SLOTPOOL_PROFILE`)
/// closest to an unknown `SLOTPOOL_*` one.
pub(crate) fn suggest_env_var<T>(table: &[Setting<T>], variable: &str) -> Option<String> {
    let reserved = [ENV_CONFIG, ENV_PROFILE].map(str::to_owned);
    let names: Vec<String> = table.iter().map(Setting::env_var).chain(reserved).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PoolConfig;
    use crate::config::schema::Settings;

    #[test]
    fn names_and_variables_are_unique() {
        let table = PoolConfig::settings();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.env_var(), b.env_var());
            }
        }
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

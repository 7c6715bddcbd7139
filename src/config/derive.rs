//! Derived defaults: settings whose default follows other settings, so that
//! setting one value never fails because of a default the user did not set
//! (HikariCP adjusts its derived defaults the same way, and starts).
//!
//! Owns: the rules below and [`Derived`], the record of what was derived and
//! why. It may not touch a value the user set: an explicit conflicting pair
//! is left for validation to reject, naming both settings and the rule.
//!
//! | setting | when not set | rule |
//! |---|---|---|
//! | `connection_timeout` | `validation_timeout` set to 15 s or more | twice `validation_timeout` |
//! | `validation_timeout` | always | `min(5s, connection_timeout / 2)` |
//! | `max_lifetime` | `idle_timeout`, `keepalive_interval` or `leak_detection_threshold` set to 30 min or more | twice the longest of them |
//! | `idle_timeout` | `max_lifetime` is 10 min or less | off (as HikariCP does) |
//! | `keepalive_interval` | `max_lifetime` is 2 min or less | off (as HikariCP does) |
//! | `connect_backoff_max` | `connect_backoff_initial` is over 10 s | `connect_backoff_initial` |
//! | `max_size` | `min_idle` is over 10, or `capacity` is set below 10 | `min_idle`, then at most `capacity` |
//!
//! Who knows what was set: the loader (a value from the file or the
//! environment), the builder (its explicit calls), and otherwise the value
//! itself (a field that differs from its built-in default was set; one equal
//! to it is treated as not set, so an explicit value that happens to equal
//! the default is adjusted rather than rejected).

use std::time::Duration;

use super::schema::{Setting, Settings};
use super::settings::PoolConfig;

/// One setting whose value was derived from others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The dotted setting name.
    pub setting: &'static str,
    /// How the value was derived, e.g. `min(5s, connection_timeout / 2)`.
    pub rule: String,
}

/// The longest an `idle_timeout` default may be under a `max_lifetime`.
const DEFAULT_IDLE: Duration = Duration::from_secs(10 * 60);
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(2 * 60);
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);
const DEFAULT_VALIDATION: Duration = Duration::from_secs(5);
const DEFAULT_CONNECTION: Duration = Duration::from_secs(30);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
const DEFAULT_MAX_SIZE: u32 = 10;

impl PoolConfig {
    /// Fills in every derived default the user did not set (`is_set` names
    /// the settings they did), and says which changed and why. Values equal
    /// to the built-in default are not reported.
    pub fn derive_defaults(&mut self, is_set: &dyn Fn(&str) -> bool) -> Vec<Derived> {
        let mut derived = Vec::new();
        let mut note = |setting: &'static str, changed: bool, rule: String| {
            if changed {
                derived.push(Derived { setting, rule });
            }
        };

        if !is_set("connection_timeout")
            && is_set("validation_timeout")
            && self.validation_timeout * 2 > DEFAULT_CONNECTION
        {
            self.connection_timeout = self.validation_timeout * 2;
            note(
                "connection_timeout",
                true,
                "2 × validation_timeout".to_owned(),
            );
        }
        if !is_set("validation_timeout") {
            let value = DEFAULT_VALIDATION.min(self.connection_timeout / 2);
            self.validation_timeout = value;
            note(
                "validation_timeout",
                value != DEFAULT_VALIDATION,
                "min(5s, connection_timeout / 2)".to_owned(),
            );
        }

        if !is_set("max_lifetime") {
            let longest = [
                ("idle_timeout", self.idle_timeout),
                ("keepalive_interval", self.keepalive_interval),
                ("leak_detection_threshold", self.leak_detection_threshold),
            ]
            .into_iter()
            .filter(|(name, _)| is_set(name))
            .filter_map(|(_, value)| value)
            .max();
            if let Some(longest) = longest.filter(|&longest| longest >= DEFAULT_LIFETIME) {
                self.max_lifetime = Some(longest * 2);
                note(
                    "max_lifetime",
                    true,
                    "2 × the longest of idle_timeout, keepalive_interval, leak_detection_threshold"
                        .to_owned(),
                );
            }
        }
        let lifetime = self.max_lifetime;
        if !is_set("idle_timeout") && lifetime.is_some_and(|lifetime| lifetime <= DEFAULT_IDLE) {
            self.idle_timeout = None;
            note(
                "idle_timeout",
                true,
                "off: max_lifetime is 10m or less".to_owned(),
            );
        }
        if !is_set("keepalive_interval")
            && lifetime.is_some_and(|lifetime| lifetime <= DEFAULT_KEEPALIVE)
        {
            self.keepalive_interval = None;
            note(
                "keepalive_interval",
                true,
                "off: max_lifetime is 2m or less".to_owned(),
            );
        }

        if !is_set("connect_backoff_max") && self.connect_backoff_initial > DEFAULT_BACKOFF_MAX {
            self.connect_backoff_max = self.connect_backoff_initial;
            note(
                "connect_backoff_max",
                true,
                "connect_backoff_initial".to_owned(),
            );
        }

        if !is_set("max_size") {
            let mut value = DEFAULT_MAX_SIZE.max(self.min_idle);
            if let Some(capacity) = self.capacity.filter(|_| is_set("capacity")) {
                value = value.min(capacity.max(1));
            }
            self.max_size = value;
            note(
                "max_size",
                value != DEFAULT_MAX_SIZE,
                "max(10, min_idle), at most capacity".to_owned(),
            );
        }
        derived
    }

    /// [`derive_defaults`](Self::derive_defaults) where a setting counts as
    /// set when its value differs from the built-in default: for a
    /// configuration built in code (`PoolConfig { max_lifetime: .., ..
    /// PoolConfig::default() }`), whose origin is not known.
    pub fn derive_unset_defaults(&mut self) -> Vec<Derived> {
        let changed = differs_from_default(self);
        self.derive_defaults(&|name| changed.iter().any(|set| *set == name))
    }
}

/// The settings of `config` whose value differs from the built-in default.
pub(crate) fn differs_from_default<T: Settings>(config: &T) -> Vec<String> {
    let defaults = T::default();
    T::settings()
        .iter()
        .filter(|setting: &&Setting<T>| setting.value(config) != setting.value(&defaults))
        .map(|setting| setting.name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |name| names.contains(&name)
    }

    #[test]
    fn a_short_connection_timeout_lowers_the_validation_timeout() {
        let mut config = PoolConfig {
            connection_timeout: Duration::from_millis(300),
            ..PoolConfig::default()
        };
        let derived = config.derive_defaults(&set(&["connection_timeout"]));
        assert_eq!(config.validation_timeout, Duration::from_millis(150));
        assert_eq!(derived[0].setting, "validation_timeout");
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn a_short_lifetime_turns_the_idle_timeout_and_keepalive_off() {
        let mut config = PoolConfig {
            max_lifetime: Some(Duration::from_secs(60)),
            ..PoolConfig::default()
        };
        config.derive_unset_defaults();
        assert_eq!(config.idle_timeout, None);
        assert_eq!(config.keepalive_interval, None);
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn explicit_values_are_never_derived() {
        let mut config = PoolConfig {
            max_lifetime: Some(Duration::from_secs(60)),
            idle_timeout: Some(Duration::from_secs(120)),
            ..PoolConfig::default()
        };
        config.derive_defaults(&set(&["max_lifetime", "idle_timeout"]));
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(120)));
        assert!(!config.problems().is_empty(), "the explicit pair conflicts");
    }
}

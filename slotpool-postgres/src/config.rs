//! [`Config`]: the pool's settings and the `[postgres]` section together,
//! as `slotpool_sqlite::Config` pairs the pool's with `[sqlite]`.
//!
//! Owns: joining the two settings tables, so that `config.toml` profiles
//! keep a `[profiles.<name>.postgres]` table, `SLOTPOOL_POSTGRES_*`
//! variables override it, and serde and `to_toml_string` write both (the
//! password redacted). It may not open connections.

use slotpool::config::schema::{Setting, Settings};
use slotpool::{ConfigError, PoolConfig};

use crate::pg_config::PgConfig;

/// A PostgreSQL pool's whole configuration: the pool's settings (top level
/// in a profile) and the `[postgres]` section.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_postgres::Config;

let mut config = Config::default();
config.postgres.url = "postgresql://app@db.internal/app".into();
config.pool.max_size = 16;
assert!(config.problems().is_empty());
```
"#
)]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The pool's settings (`max_size`, timeouts, lifetimes, ...).
    pub pool: PoolConfig,
    /// How each PostgreSQL connection is opened, checked and reset.
    pub postgres: PgConfig,
}

impl Config {
    /// Every broken rule of both parts (empty when valid).
    #[must_use]
    pub fn problems(&self) -> Vec<ConfigError> {
        <Self as Settings>::problems(self)
    }

    /// The first broken rule, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        <Self as Settings>::validate(self)
    }
}

impl Settings for Config {
    fn settings() -> Vec<Setting<Self>> {
        let pool = PoolConfig::settings()
            .into_iter()
            .map(|s| s.nest(None, |c: &Config| &c.pool, |c| &mut c.pool));
        let postgres = PgConfig::settings().into_iter().map(|s| {
            s.nest(
                Some("postgres"),
                |c: &Config| &c.postgres,
                |c| &mut c.postgres,
            )
        });
        pool.chain(postgres).collect()
    }

    fn problems(&self) -> Vec<ConfigError> {
        let mut problems = self.pool.problems();
        problems.extend(self.postgres.problems());
        problems
    }

    fn derive_defaults(&mut self, is_set: &dyn Fn(&str) -> bool) -> Vec<slotpool::config::Derived> {
        self.pool.derive_defaults(is_set)
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{Config, PgConfig};
    use crate::keywords::{Recycling, SslMode};

    macro_rules! via_settings {
        ($($ty:ty),*) => {$(
            impl serde::Serialize for $ty {
                /// Every setting; the password (and a url's) as `"[redacted]"`.
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    slotpool::config::serialize(self, serializer)
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    slotpool::config::deserialize(deserializer)
                }
            }
        )*};
    }

    via_settings!(Config, PgConfig);

    macro_rules! via_keyword {
        ($($ty:ty),*) => {$(
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    serializer.serialize_str(self.as_str())
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    use slotpool::config::schema::SettingValue;
                    let word = <String as serde::Deserialize>::deserialize(deserializer)?;
                    <$ty>::from_text(&word).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "invalid value \"{word}\": expected {}",
                            <$ty>::expected()
                        ))
                    })
                }
            }
        )*};
    }

    via_keyword!(SslMode, Recycling);
}

#[cfg(feature = "config")]
impl Config {
    /// Loads defaults < file profile < `SLOTPOOL_*` overrides (pool
    /// settings at the top of each profile, PostgreSQL's in its `postgres`
    /// table, `SLOTPOOL_POSTGRES_PASSWORD` and friends over both), and
    /// validates. See `slotpool::config::load_with_sources` for how the
    /// file and profile are chosen.
    pub fn load(
        path: Option<&std::path::Path>,
        profile: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        slotpool::config::load_with_sources(path, profile, vars).map(|(config, _)| config)
    }

    /// Loads `profile` from TOML text over the defaults, and validates.
    pub fn from_toml_str(text: &str, profile: &str) -> Result<Self, ConfigError> {
        slotpool::config::from_toml_str(text, profile)
    }

    /// The whole configuration as TOML: the pool's settings, then
    /// `[postgres]`, the password written as `"[redacted]"`.
    #[must_use]
    pub fn to_toml_string(&self) -> String {
        slotpool::config::to_toml_string(self)
    }
}

//! [`Config`]: the pool's settings and the `[postgres]` section together,
//! as `slotpool_sqlite::Config` pairs the pool's with `[sqlite]`.
//!
//! Owns: joining the two settings tables, so that `config.toml` profiles
//! keep a `[profiles.<name>.postgres]` table, `SLOTPOOL_POSTGRES_*`
//! variables override it, and serde and `to_toml_string` write both (the
//! password redacted). It may not open connections.

use slotpool::PoolConfig;
use slotpool::config::schema::SectionRules;

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

slotpool::pool_and_section!(Config {
    pool,
    postgres: PgConfig
});

/// The pool's `idle_timeout` and `max_lifetime` nest inside the pooler's
/// timeouts, when the user gives them (`pooler.rs`).
impl SectionRules for PgConfig {
    fn pool_problems(&self, pool: &PoolConfig) -> Vec<slotpool::ConfigError> {
        crate::pooler::pool_rules(pool, self)
    }

    fn derive_pool_defaults(
        &self,
        pool: &mut PoolConfig,
        is_set: &dyn Fn(&str) -> bool,
    ) -> Vec<slotpool::config::Derived> {
        crate::pooler::derive_pool_defaults(pool, self, is_set)
    }
}

#[cfg(feature = "serde")]
slotpool::serde_via_settings!(
    /// Every setting; the password (and a url's) as `"[redacted]"`.
    Config,
    PgConfig
);

#[cfg(feature = "serde")]
slotpool::serde_via_keyword!(
    crate::keywords::SslMode,
    crate::keywords::Recycling,
    crate::keywords::PoolerMode
);

#[cfg(feature = "config")]
slotpool::config_loaders!(Config {
    /// Loads defaults < file profile < `SLOTPOOL_*` overrides (pool
    /// settings at the top of each profile, PostgreSQL's in its `postgres`
    /// table, `SLOTPOOL_POSTGRES_PASSWORD` and friends over both), and
    /// validates. See `slotpool::config::load_with_sources` for how the
    /// file and profile are chosen.
    fn load;
    /// Loads `profile` from TOML text over the defaults, and validates.
    fn from_toml_str;
    /// The whole configuration as TOML: the pool's settings, then
    /// `[postgres]`, the password written as `"[redacted]"`.
    fn to_toml_string;
});

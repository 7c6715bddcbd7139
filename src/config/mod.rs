//! Pool configuration: the [`PoolConfig`] settings with their documented
//! defaults and validation rules, always; loading them from TOML profiles
//! and `SLOTPOOL_*` environment variables with the `config` feature, and
//! serde with the `serde` feature.
//!
//! Owns: the settings, their schema ([`schema`]), validation, and the
//! loader. It may not touch a running pool: `Pool::reconfigure` takes a
//! finished `PoolConfig`.
//!
//! # Layers
//!
//! A loaded configuration is built in layers, each overriding the previous:
//!
//! 1. the built-in defaults ([`PoolConfig::default`]);
//! 2. the configuration file's optional `[defaults]` table, then its
//!    `[profiles.<name>]` table (file from `SLOTPOOL_CONFIG`, profile from
//!    `SLOTPOOL_PROFILE`, else `"dev"`);
//! 3. `SLOTPOOL_<SETTING>` environment variables: the dotted setting name
//!    upper-cased with `.` replaced by `_` (`SLOTPOOL_MAX_SIZE`, or
//!    `SLOTPOOL_SQLITE_JOURNAL_MODE` for a backend's `sqlite.journal_mode`).
//!
//! then the result is validated ([`PoolConfig::validate`]).
//! [`PoolConfig::load_with_sources`] also reports which layer each value came
//! from.
//!
//! # File format
//!
//! ```toml
//! [defaults]                 # optional, applies under every profile
//! min_idle = 1
//!
//! [profiles.dev]
//! max_size = 4
//! connection_timeout = "5s"  # humantime: "500ms", "10m", "1h 30m"
//! idle_timeout = "off"       # optional durations: "off", "none", "disabled"
//! capacity = "auto"          # or an integer
//!
//! [profiles.dev.sqlite]     # a backend's section: known to `slotpool_sqlite::Config`,
//! path = "dev.db"            # an unknown key to `PoolConfig::load`
//! journal_mode = "wal"
//! ```
//!
//! Unknown keys and unknown `SLOTPOOL_*` variables are errors with a
//! suggestion of the closest known name. `SLOTPOOL_CONFIG` and
//! `SLOTPOOL_PROFILE` are reserved; `SLOTPOOL_REQUIRE_PG` and
//! `SLOTPOOL_TEST_*` are ignored.
//!
//! # Design
//!
//! Each setting is one entry of a table ([`schema::Settings::settings`])
//! built from its field path; each field type has one codec
//! ([`schema::SettingValue`]) used by the file layer, the environment layer,
//! `to_toml_string`, serde and the validation messages alike. Both layers
//! produce assignments applied by one overlay routine (`source.rs`). A
//! backend crate nests `PoolConfig` in its own configuration type and
//! appends its section (`[sqlite]`, `[postgres]`) to the table, so one
//! loader serves every backend and the core knows none of them. The glue
//! such a type needs is written once, by macros the backends call:
//! [`pool_and_section!`](crate::pool_and_section) (its `Settings`),
//! `config_loaders!` (its `load`, `from_toml_str` and `to_toml_string`,
//! feature `config`), and `serde_via_settings!` and `serde_via_keyword!`
//! (feature `serde`).

#![forbid(unsafe_code)]

mod derive;
mod duration;
mod enums;
mod error;
pub mod schema;
mod settings;
mod validate;

#[cfg(feature = "config")]
mod env;
#[cfg(feature = "config")]
mod file;
#[cfg(feature = "config")]
mod load;
#[cfg(feature = "config")]
mod names;
#[cfg(feature = "serde")]
mod serde_impl;
#[cfg(feature = "config")]
mod source;

pub use derive::Derived;
pub(crate) use derive::differs_from_default;
pub use enums::StartupMode;
pub use error::{BoxError, ConfigError};
pub use schema::ENV_PREFIX;
pub use settings::{AUTO_MIN_CAPACITY, MAX_CAPACITY, PoolConfig};
pub use validate::{
    MAX_CONCURRENCY, MAX_LIFETIME_JITTER, MAX_POOL_NAME_LEN, MIN_KEEPALIVE_INTERVAL,
};

#[cfg(feature = "config")]
pub use env::{ENV_CONFIG, ENV_PROFILE, IGNORED_PREFIXES, IGNORED_VARIABLES};
#[cfg(feature = "config")]
pub use load::{
    DEFAULT_PROFILE, apply_env, env_var_for, from_file, from_toml_str, load_unvalidated,
    load_with_sources, process_env, profiles_in_file, setting_value, to_toml_string,
};
/// serde, for [`serde_via_settings!`](crate::serde_via_settings) and
/// [`serde_via_keyword!`](crate::serde_via_keyword).
#[cfg(feature = "serde")]
#[doc(hidden)]
pub use serde as __serde;
#[cfg(feature = "serde")]
pub use serde_impl::{deserialize, serialize};
#[cfg(feature = "config")]
pub use source::{Source, Sources};

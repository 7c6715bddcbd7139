//! Pool configuration: the [`PoolConfig`] settings with their documented
//! defaults, loading them from TOML profiles and `SLOTPOOL_*` environment
//! variables, and validating them.
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
//!    upper-cased with `.` replaced by `_` (`SLOTPOOL_MAX_SIZE`,
//!    `SLOTPOOL_SQLITE_JOURNAL_MODE`).
//!
//! then the result is validated ([`PoolConfig::validate`]).
//! [`PoolConfig::load_with_sources`] also reports which layer each value came
//! from.
//!
//! # File format
//!
//! ```toml
//! [defaults]                 # optional, applies under every profile
//! sqlite.foreign_keys = true
//!
//! [profiles.dev]
//! max_size = 4
//! connection_timeout = "5s"  # humantime: "500ms", "10m", "1h 30m"
//! idle_timeout = "off"       # optional durations: "off", "none", "disabled"
//! capacity = "auto"          # or an integer
//!
//! [profiles.dev.sqlite]
//! path = "dev.db"
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
//! Each setting is one entry of a table (`table.rs`) built from its field
//! path; each field type has one codec (`codec.rs`) used by the file layer,
//! the environment layer, [`PoolConfig::to_toml_string`] and serde alike.
//! Both layers produce assignments applied by one overlay routine
//! (`source.rs`).

#![forbid(unsafe_code)]

mod codec;
mod duration;
mod enums;
mod env;
mod error;
mod file;
mod load;
mod settings;
mod source;
mod table;
mod validate;

pub use enums::{JournalMode, Locking, StartupMode, Synchronous, TempStore};
pub use env::{ENV_CONFIG, ENV_PREFIX, ENV_PROFILE, IGNORED_PREFIXES, IGNORED_VARIABLES};
pub use error::{BoxError, ConfigError};
pub use load::DEFAULT_PROFILE;
pub use settings::{AUTO_MIN_CAPACITY, MAX_CAPACITY, PoolConfig, SqliteConfig};
pub use source::{Source, Sources};
pub use validate::{
    MAX_LIFETIME_JITTER, MAX_POOL_NAME_LEN, MAX_STATEMENT_CACHE_CAPACITY, MIN_KEEPALIVE_INTERVAL,
};

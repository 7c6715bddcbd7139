#![cfg(not(feature = "loom"))]
//! Tests of the SQLite configuration, `slotpool_sqlite::Config` (the pool's
//! settings plus the `[sqlite]` section) through the core's generic loader
//! (`slotpool::config::*`): the SQLite validation rules, layering and
//! precedence, the shipped `config.toml` profiles, error reporting, and
//! property tests of the whole configuration. The pool's own rules are
//! tested in the core's `tests/config.rs`.
//! No test touches the process environment: variables are passed as pairs.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use slotpool::config::schema::Settings;
use slotpool::config::{ConfigError, PoolConfig, Source, StartupMode};
use slotpool_sqlite::{Config, JournalMode, Locking, SqliteConfig, Synchronous, TempStore};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.toml");

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A file under the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "slotpool-sqlite-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Validation rules
// ---------------------------------------------------------------------------

/// Applies `change` to the defaults and asserts that the result breaks a rule
/// of `setting` with `value` (a TOML literal), both named in the message.
#[track_caller]
fn assert_invalid(change: impl FnOnce(&mut Config), setting: &str, value: &str) -> String {
    invalid_message(&changed(change), setting, value)
}

#[track_caller]
fn assert_valid(change: impl FnOnce(&mut Config)) {
    assert_no_problems(&changed(change));
}

/// The defaults of `T` with `change` applied.
fn changed<T: Settings>(change: impl FnOnce(&mut T)) -> T {
    let mut config = T::default();
    change(&mut config);
    config
}

/// Asserts that `config` breaks a rule of `setting` with `value` (a TOML
/// literal), both named in the message, and returns the message.
#[track_caller]
fn invalid_message<T: Settings>(config: &T, setting: &str, value: &str) -> String {
    assert!(
        config.validate().is_err(),
        "expected {setting} = {value} to be invalid"
    );
    let problems = config.problems();
    let found = problems.iter().find_map(|p| match p {
        ConfigError::Invalid {
            setting: s,
            value: v,
            ..
        } if *s == setting => Some((v.clone(), p.to_string())),
        _ => None,
    });
    let Some((found_value, message)) = found else {
        panic!("no problem reported for `{setting}`; got {problems:?}");
    };
    assert_eq!(found_value, value, "value reported for `{setting}`");
    assert!(
        message.contains(&format!("`{setting}`")),
        "message names the setting: {message}"
    );
    assert!(
        message.contains(value),
        "message names the value: {message}"
    );
    message
}

#[track_caller]
fn assert_no_problems<T: Settings>(config: &T) {
    assert_eq!(config.problems().len(), 0, "{:?}", config.problems());
    config.validate().expect("valid");
}

#[test]
fn sqlite_path_must_not_be_empty() {
    assert_invalid(|c| c.sqlite.path = String::new(), "sqlite.path", "\"\"");
    assert_valid(|c| c.sqlite.path = ":memory:".to_owned());
    assert_valid(|c| c.sqlite.path = "file:name?mode=memory&cache=shared".to_owned());
}

#[test]
fn sqlite_path_must_not_contain_nul() {
    assert_invalid(
        |c| c.sqlite.path = "a\0b".to_owned(),
        "sqlite.path",
        "\"a\\u0000b\"",
    );
}

#[test]
fn sqlite_statement_cache_capacity_must_be_at_most_10000() {
    assert_invalid(
        |c| c.sqlite.statement_cache_capacity = 10_001,
        "sqlite.statement_cache_capacity",
        "10001",
    );
    assert_valid(|c| c.sqlite.statement_cache_capacity = 10_000);
}

#[test]
fn sqlite_mmap_size_must_fit_sqlite() {
    assert_invalid(
        |c| c.sqlite.mmap_size = u64::MAX,
        "sqlite.mmap_size",
        "\"18446744073709551615\"",
    );
    assert_valid(|c| c.sqlite.mmap_size = i64::MAX as u64);
}

#[test]
fn sqlite_busy_timeout_must_fit_sqlite() {
    let limit = ms(i32::MAX as u64);
    assert_valid(|c| c.sqlite.busy_timeout = limit);
    let message = assert_invalid(
        |c| c.sqlite.busy_timeout = limit + ms(1),
        "sqlite.busy_timeout",
        "\"24days 20h 31m 23s 648ms\"",
    );
    assert!(message.contains("SQLite"), "{message}");
}

#[cfg(unix)]
#[test]
fn sqlite_locking_process_is_valid_on_unix() {
    assert_valid(|c| c.sqlite.locking = Locking::Process);
    // Ignored for in-memory databases, and harmless there.
    assert_valid(|c| {
        c.sqlite.locking = Locking::Process;
        c.sqlite.path = "file:name?mode=memory&cache=shared".to_owned();
    });
}

#[cfg(not(unix))]
#[test]
fn sqlite_locking_process_is_unix_only() {
    let message = assert_invalid(
        |c| c.sqlite.locking = Locking::Process,
        "sqlite.locking",
        "\"process\"",
    );
    assert!(message.contains("unix-excl"), "{message}");
    assert_valid(|c| c.sqlite.locking = Locking::Shared);
}

// ---------------------------------------------------------------------------
// Defaults and codecs
// ---------------------------------------------------------------------------

#[test]
fn documented_defaults() {
    let c = Config::default();
    assert_eq!(c.pool, PoolConfig::default());
    assert_eq!(c.pool.pool_name, "slotpool");
    assert_eq!(
        (c.pool.max_size, c.pool.min_idle, c.pool.capacity),
        (10, 0, None)
    );
    assert_eq!(c.pool.connection_timeout, secs(30));
    assert_eq!(c.pool.validation_timeout, secs(5));
    assert_eq!(c.pool.validation_idle_window, ms(500));
    assert_eq!(c.pool.idle_timeout, Some(secs(600)));
    assert_eq!(c.pool.max_lifetime, Some(secs(1800)));
    assert_eq!(c.pool.max_lifetime_jitter, 0.025);
    assert_eq!(c.pool.keepalive_interval, Some(secs(120)));
    assert_eq!(c.pool.leak_detection_threshold, None);
    assert_eq!(c.pool.max_waiters, 0);
    assert_eq!(
        (c.pool.connect_backoff_initial, c.pool.connect_backoff_max),
        (ms(100), secs(10))
    );
    assert_eq!(c.pool.fail_fast_after, 5);
    assert_eq!(c.pool.close_timeout, secs(10));
    assert_eq!(c.pool.startup, StartupMode::Background);
    let s = SqliteConfig::default();
    assert_eq!(c.sqlite, s);
    assert_eq!(s.path, "slotpool.db");
    assert_eq!(s.journal_mode, JournalMode::Wal);
    assert_eq!(s.synchronous, Synchronous::Normal);
    assert_eq!((s.mmap_size, s.cache_size), (0, -2000));
    assert_eq!(s.busy_timeout, secs(5));
    assert!(s.foreign_keys && !s.read_only);
    assert_eq!(s.temp_store, TempStore::Memory);
    assert_eq!(s.locking, Locking::Shared);
    assert_eq!(s.statement_cache_capacity, 64);
}

#[test]
fn to_toml_string_writes_flat_settings_then_sqlite_table() {
    let text = Config::default().to_toml_string();
    assert!(
        text.starts_with("pool_name = \"slotpool\"\nmax_size = 10\n"),
        "{text}"
    );
    assert!(text.contains("capacity = \"auto\"\n"), "{text}");
    assert!(text.contains("connection_timeout = \"30s\"\n"), "{text}");
    assert!(
        text.contains("leak_detection_threshold = \"off\"\n"),
        "{text}"
    );
    assert!(text.contains("startup = \"background\"\n"), "{text}");
    assert!(
        text.contains("\n[sqlite]\npath = \"slotpool.db\"\njournal_mode = \"wal\"\n"),
        "{text}"
    );
    let serde: Config = toml::from_str(&text).expect("serde reads it");
    assert_eq!(serde, Config::default());
    assert_eq!(text, slotpool::config::to_toml_string(&Config::default()));
}

#[test]
fn enums_serialise_as_lowercase_words() {
    let config = Config {
        pool: PoolConfig {
            startup: StartupMode::WaitForMinIdle,
            ..PoolConfig::default()
        },
        ..Config::default()
    };
    let text = toml::to_string(&config).expect("serialise");
    assert!(text.contains("startup = \"wait_for_min_idle\""), "{text}");
    assert!(text.contains("synchronous = \"normal\""), "{text}");
    assert!(text.contains("temp_store = \"memory\""), "{text}");
    assert_eq!(JournalMode::Wal.to_string(), "wal");
    assert_eq!(JournalMode::Wal.as_pragma(), "WAL");
    assert_eq!(Synchronous::Extra.as_pragma(), "EXTRA");
    assert_eq!(TempStore::Default.as_pragma(), "DEFAULT");
    assert!(text.contains("locking = \"shared\""), "{text}");
    assert_eq!(Locking::Process.to_string(), "process");
    assert_eq!(Locking::Shared.vfs(), None);
    assert_eq!(Locking::Process.vfs(), Some("unix-excl"));
}

#[test]
fn sqlite_locking_loads_from_toml_and_env_with_its_source() {
    let file = TempFile::new(
        "locking",
        "[profiles.p.sqlite]\nlocking = \"process\"\n[profiles.q]\nsqlite.locking = \"Shared\"\n",
    );
    let (config, sources) =
        slotpool::config::load_with_sources::<Config>(Some(file.path()), Some("p"), vars(&[]))
            .expect("load p");
    assert_eq!(config.sqlite.locking, Locking::Process);
    assert_eq!(
        sources["sqlite.locking"],
        Source::File {
            path: Some(file.path().to_path_buf()),
            profile: Some("p".to_owned()),
        }
    );
    let config = slotpool::config::from_file::<Config>(file.path(), "q").expect("load q");
    assert_eq!(config.sqlite.locking, Locking::Shared, "case-insensitive");

    // The variable beats the file.
    let (config, sources) = slotpool::config::load_with_sources::<Config>(
        Some(file.path()),
        Some("p"),
        vars(&[("SLOTPOOL_SQLITE_LOCKING", "shared")]),
    )
    .expect("load with env");
    assert_eq!(config.sqlite.locking, Locking::Shared);
    assert_eq!(
        sources["sqlite.locking"].to_string(),
        "$SLOTPOOL_SQLITE_LOCKING"
    );
    let (_, sources) =
        slotpool::config::load_with_sources::<Config>(None, None, vars(&[])).expect("defaults");
    assert_eq!(sources["sqlite.locking"], Source::Default);
    assert_eq!(
        slotpool::config::setting_value(&Config::default(), "sqlite.locking").as_deref(),
        Some("\"shared\"")
    );
}

#[test]
fn a_bad_sqlite_locking_names_the_setting_value_and_choices() {
    let err = Config::from_toml_str("[profiles.p.sqlite]\nlocking = \"exclusive\"\n", "p")
        .expect_err("bad keyword");
    match &err {
        ConfigError::Parse {
            setting,
            value,
            expected,
            ..
        } => {
            assert_eq!(setting, "profiles.p.sqlite.locking");
            assert_eq!(value, "\"exclusive\"");
            assert_eq!(expected, "one of \"shared\" or \"process\"");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "cannot parse `profiles.p.sqlite.locking` from `\"exclusive\"`: expected one of \"shared\" or \"process\""
    );

    let err = Config::load(None, None, vars(&[("SLOTPOOL_SQLITE_LOCKING", "excl")]))
        .expect_err("bad variable");
    assert_eq!(
        err.to_string(),
        "cannot parse `SLOTPOOL_SQLITE_LOCKING` from `excl`: expected one of \"shared\" or \"process\""
    );

    let err = Config::from_toml_str("[profiles.p.sqlite]\nlocking = true\n", "p")
        .expect_err("not a string");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite.locking"),
        "{err}"
    );
}

#[test]
fn a_misspelt_locking_key_or_variable_gets_a_suggestion() {
    let err =
        Config::from_toml_str("[profiles.p.sqlite]\nlockng = \"shared\"\n", "p").expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. }
            if s == "profiles.p.sqlite.locking"),
        "{err}"
    );
    let err =
        Config::from_toml_str("[profiles.p]\nlocking = \"shared\"\n", "p").expect_err("misplaced");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. }
            if s.ends_with("sqlite.locking")),
        "{err}"
    );
    let err =
        Config::load(None, None, vars(&[("SLOTPOOL_SQLITE_LOCKNG", "shared")])).expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownVariable { suggestion: Some(s), .. }
            if s == "SLOTPOOL_SQLITE_LOCKING"),
        "{err}"
    );
}

#[test]
fn sqlite_pragmas_set_busy_timeout_first() {
    let pragmas = SqliteConfig::default().pragmas();
    assert_eq!(pragmas[0], "PRAGMA busy_timeout = 5000");
    assert!(pragmas.contains(&"PRAGMA journal_mode = WAL".to_owned()));
    assert!(pragmas.contains(&"PRAGMA foreign_keys = ON".to_owned()));
}

#[test]
fn keywords_are_case_insensitive_on_input() {
    let config = Config::from_toml_str(
        "[profiles.p]\nstartup = \"WAIT_FOR_MIN_IDLE\"\nsqlite.journal_mode = \"WAL\"",
        "p",
    )
    .expect("load");
    assert_eq!(config.pool.startup, StartupMode::WaitForMinIdle);
    assert_eq!(config.sqlite.journal_mode, JournalMode::Wal);
}

#[test]
fn setting_listing_helpers() {
    let names = setting_names::<Config>();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names.len(), 32, "the pool's 21 settings and sqlite's 11");
    assert!(names.contains(&"sqlite.locking"));
    assert_eq!(
        slotpool::config::env_var_for::<Config>("sqlite.locking").as_deref(),
        Some("SLOTPOOL_SQLITE_LOCKING")
    );
    assert_eq!(names[0], "pool_name");
    assert!(names.contains(&"sqlite.statement_cache_capacity"));
    assert_eq!(
        slotpool::config::env_var_for::<Config>("sqlite.path").as_deref(),
        Some("SLOTPOOL_SQLITE_PATH")
    );
    assert_eq!(slotpool::config::env_var_for::<Config>("nope"), None);
    let config = Config::default();
    assert_eq!(
        slotpool::config::setting_value(&config, "max_size").as_deref(),
        Some("10")
    );
    assert_eq!(
        slotpool::config::setting_value(&config, "sqlite.busy_timeout").as_deref(),
        Some("\"5s\"")
    );
}

// ---------------------------------------------------------------------------
// Shipped profiles
// ---------------------------------------------------------------------------

fn shipped(profile: &str) -> Config {
    slotpool::config::from_file::<Config>(SHIPPED, profile)
        .unwrap_or_else(|e| panic!("profile {profile}: {e}"))
}

#[test]
fn shipped_file_has_the_four_profiles() {
    let profiles = slotpool::config::profiles_in_file(SHIPPED).expect("read");
    assert_eq!(profiles, ["dev", "prod", "staging", "test"]);
}

#[test]
fn shipped_dev_profile_loads_and_validates() {
    let config = shipped("dev");
    assert_eq!(config.pool.pool_name, "slotpool-dev");
    assert!(config.pool.max_size <= 8, "dev pools are small");
    assert!(config.sqlite.foreign_keys, "from [defaults]");
}

#[test]
fn shipped_test_profile_loads_and_validates() {
    let config = shipped("test");
    assert_eq!(config.pool.pool_name, "slotpool-test");
    assert!(
        config.pool.connection_timeout <= secs(2),
        "test timeouts are short"
    );
    assert!(config.pool.close_timeout <= secs(2));
    assert!(config.sqlite.path.contains("mode=memory"));
}

#[test]
fn shipped_staging_profile_loads_and_validates() {
    let config = shipped("staging");
    assert_eq!(config.pool.pool_name, "slotpool-staging");
    assert_eq!(config.pool.min_idle, config.pool.max_size);
}

#[test]
fn shipped_prod_profile_loads_and_validates() {
    let config = shipped("prod");
    assert_eq!(config.pool.pool_name, "slotpool");
    assert_eq!(
        config.pool.min_idle, config.pool.max_size,
        "fixed-size pool, as HikariCP advises"
    );
    assert_eq!(config.sqlite.mmap_size, 256 * 1024 * 1024);
    assert_eq!(config.sqlite.temp_store, TempStore::Memory);
}

#[test]
fn every_shipped_profile_sets_shared_locking_explicitly() {
    for profile in ["dev", "test", "staging", "prod"] {
        let (config, sources) = slotpool::config::load_with_sources::<Config>(
            Some(Path::new(SHIPPED)),
            Some(profile),
            vars(&[]),
        )
        .unwrap_or_else(|e| panic!("profile {profile}: {e}"));
        assert_eq!(config.sqlite.locking, Locking::Shared, "{profile}");
        assert!(
            matches!(&sources["sqlite.locking"], Source::File { profile: Some(p), .. } if p == profile),
            "{profile}: {:?}",
            sources["sqlite.locking"]
        );
    }
}

// ---------------------------------------------------------------------------
// Layering and precedence
// ---------------------------------------------------------------------------

#[test]
fn profile_overrides_defaults() {
    let config = Config::from_toml_str(
        "[profiles.p]\nmax_size = 20\n[profiles.p.sqlite]\npath = \"x.db\"",
        "p",
    )
    .expect("load");
    assert_eq!(config.pool.max_size, 20);
    assert_eq!(config.sqlite.path, "x.db");
    assert_eq!(
        config,
        Config {
            pool: PoolConfig {
                max_size: 20,
                ..PoolConfig::default()
            },
            sqlite: SqliteConfig {
                path: "x.db".to_owned(),
                ..SqliteConfig::default()
            },
        }
    );
}

#[test]
fn precedence_is_defaults_then_file_then_env() {
    let file = TempFile::new(
        "precedence",
        "[defaults]\nmax_waiters = 7\n[profiles.p]\nmax_size = 20\nmin_idle = 2\n",
    );
    let (config, sources) = slotpool::config::load_with_sources::<Config>(
        Some(file.path()),
        Some("p"),
        vars(&[("SLOTPOOL_MIN_IDLE", "3"), ("HOME", "/root")]),
    )
    .expect("load");
    assert_eq!(
        (
            config.pool.max_size,
            config.pool.min_idle,
            config.pool.max_waiters
        ),
        (20, 3, 7)
    );
    assert_eq!(config.pool.connection_timeout, secs(30));
    let file_source = |profile: Option<&str>| Source::File {
        path: Some(file.path().to_path_buf()),
        profile: profile.map(str::to_owned),
    };
    assert_eq!(sources["max_size"], file_source(Some("p")));
    assert_eq!(sources["max_waiters"], file_source(None));
    assert_eq!(
        sources["min_idle"],
        Source::Env {
            variable: "SLOTPOOL_MIN_IDLE".to_owned()
        }
    );
    assert_eq!(sources["connection_timeout"], Source::Default);
    assert_eq!(sources["sqlite.path"], Source::Default);
    assert_eq!(sources.len(), setting_names::<Config>().len());
    assert_eq!(sources["min_idle"].to_string(), "$SLOTPOOL_MIN_IDLE");
}

#[test]
fn env_overrides_shipped_profile() {
    let config = Config::load(
        Some(Path::new(SHIPPED)),
        Some("prod"),
        vars(&[("SLOTPOOL_MAX_SIZE", "32"), ("SLOTPOOL_MIN_IDLE", "32")]),
    )
    .expect("load");
    assert_eq!((config.pool.max_size, config.pool.min_idle), (32, 32));
    assert_eq!(config.sqlite.path, "/var/lib/slotpool/slotpool.db");
}

#[test]
fn load_validates_after_overlaying() {
    let err = Config::load(
        Some(Path::new(SHIPPED)),
        Some("dev"),
        vars(&[("SLOTPOOL_MIN_IDLE", "5")]),
    )
    .expect_err("min_idle > max_size");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "min_idle",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn slotpool_config_names_the_file_and_dev_is_the_default_profile() {
    let config = Config::load(None, None, vars(&[("SLOTPOOL_CONFIG", SHIPPED)])).expect("load");
    assert_eq!(config, shipped("dev"));
}

#[test]
fn slotpool_profile_selects_the_profile() {
    let config = Config::load(
        None,
        None,
        vars(&[("SLOTPOOL_CONFIG", SHIPPED), ("SLOTPOOL_PROFILE", "test")]),
    )
    .expect("load");
    assert_eq!(config, shipped("test"));
}

#[test]
fn arguments_beat_slotpool_config_and_slotpool_profile() {
    let config = Config::load(
        Some(Path::new(SHIPPED)),
        Some("staging"),
        vars(&[
            ("SLOTPOOL_CONFIG", "/nonexistent.toml"),
            ("SLOTPOOL_PROFILE", "test"),
        ]),
    )
    .expect("load");
    assert_eq!(config, shipped("staging"));
}

#[test]
fn apply_env_overlays_without_validating() {
    let config = slotpool::config::apply_env(
        Config::default(),
        vars(&[
            ("SLOTPOOL_MAX_SIZE", "32"),
            ("SLOTPOOL_CONNECTION_TIMEOUT", "5s"),
            ("SLOTPOOL_IDLE_TIMEOUT", "off"),
            ("SLOTPOOL_CAPACITY", "128"),
            ("SLOTPOOL_MAX_LIFETIME_JITTER", "0.1"),
            ("SLOTPOOL_STARTUP", "wait_for_min_idle"),
            ("SLOTPOOL_SQLITE_PATH", "x.db"),
            ("SLOTPOOL_SQLITE_JOURNAL_MODE", "truncate"),
            ("SLOTPOOL_SQLITE_FOREIGN_KEYS", "false"),
            ("SLOTPOOL_SQLITE_CACHE_SIZE", "-4000"),
            ("SLOTPOOL_PROFILE", "ignored-here"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .expect("apply");
    assert_eq!(config.pool.max_size, 32);
    assert_eq!(config.pool.connection_timeout, secs(5));
    assert_eq!(config.pool.idle_timeout, None);
    assert_eq!(config.pool.capacity, Some(128));
    assert_eq!(config.pool.max_lifetime_jitter, 0.1);
    assert_eq!(config.pool.startup, StartupMode::WaitForMinIdle);
    assert_eq!(config.sqlite.path, "x.db");
    assert_eq!(config.sqlite.journal_mode, JournalMode::Truncate);
    assert!(!config.sqlite.foreign_keys);
    assert_eq!(config.sqlite.cache_size, -4000);

    let invalid =
        slotpool::config::apply_env(Config::default(), vars(&[("SLOTPOOL_MAX_SIZE", "0")]))
            .expect("no validation");
    assert_eq!(invalid.pool.max_size, 0);
    assert!(invalid.validate().is_err());
}

// ---------------------------------------------------------------------------
// Error reporting
// ---------------------------------------------------------------------------

#[test]
fn unknown_sqlite_key_suggests_the_closest_setting() {
    let err = Config::from_toml_str("[profiles.dev.sqlite]\njornal_mode = \"wal\"\n", "dev")
        .expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) }
            if key == "profiles.dev.sqlite.jornal_mode" && s == "profiles.dev.sqlite.journal_mode"),
        "{err}"
    );
}

#[test]
fn misplaced_key_suggests_its_section() {
    let err =
        Config::from_toml_str("[profiles.dev]\npath = \"x.db\"\n", "dev").expect_err("misplaced");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. } if s == "profiles.dev.sqlite.path"),
        "{err}"
    );
    let err = Config::from_toml_str("max_size = 3\n", "dev").expect_err("top level");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) } if key == "max_size" && s == "defaults.max_size"),
        "{err}"
    );
    let err = Config::from_toml_str("[profile.dev]\n", "dev").expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) } if key == "profile" && s == "profiles"),
        "{err}"
    );
}

#[test]
fn quoted_dotted_key_is_not_a_path() {
    let err = Config::from_toml_str("[profiles.dev]\n\"sqlite.path\" = \"x.db\"\n", "dev")
        .expect_err("one key, not a path");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) }
            if key == "profiles.dev.\"sqlite.path\"" && s == "profiles.dev.sqlite.path"),
        "{err}"
    );
}

#[test]
fn unknown_profile_lists_available_profiles() {
    let text = std::fs::read_to_string(SHIPPED).expect("read");
    let err = Config::from_toml_str(&text, "qa").expect_err("unknown profile");
    match &err {
        ConfigError::UnknownProfile { profile, available } => {
            assert_eq!(profile, "qa");
            assert_eq!(available, &["dev", "prod", "staging", "test"]);
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "unknown profile `qa` (available: `dev`, `prod`, `staging`, `test`)"
    );
}

#[test]
fn wrong_value_type_names_the_setting() {
    let err = Config::from_toml_str("[profiles.p]\nmax_size = \"ten\"\n", "p").expect_err("string");
    assert!(
        matches!(&err, ConfigError::Parse { setting, value, .. } if setting == "profiles.p.max_size" && value == "\"ten\""),
        "{err}"
    );
    let err = Config::from_toml_str("[profiles.p.sqlite]\nforeign_keys = \"yes\"\n", "p")
        .expect_err("bool");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite.foreign_keys"),
        "{err}"
    );
    let err = Config::from_toml_str("[profiles.p]\nsqlite = 3\n", "p").expect_err("section");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite"),
        "{err}"
    );
}

#[test]
fn unknown_keyword_lists_the_choices() {
    let err = Config::from_toml_str("[profiles.p.sqlite]\njournal_mode = \"wall\"\n", "p")
        .expect_err("bad");
    assert!(
        matches!(&err, ConfigError::Parse { expected, .. } if expected.contains("\"wal\"") && expected.contains("\"delete\"")),
        "{err}"
    );
}

#[test]
fn out_of_range_integers_are_errors_not_wraps() {
    for value in ["4294967296", "-1"] {
        let text = format!("[profiles.p]\nmax_size = {value}\n");
        let err = Config::from_toml_str(&text, "p").expect_err(value);
        assert!(
            matches!(&err, ConfigError::Parse { setting, value: v, .. } if setting == "profiles.p.max_size" && v == value),
            "{err}"
        );
    }
    let err = Config::from_toml_str("[profiles.p.sqlite]\nmmap_size = -1\n", "p")
        .expect_err("negative u64");
    assert!(matches!(&err, ConfigError::Parse { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// Largest duration generated, in nanoseconds: 400 days, so humantime's
/// months and years are exercised.
const MAX_NANOS: u64 = 400 * 86_400 * 1_000_000_000;

/// A duration in `[lo, hi]` nanoseconds chosen by `seed`.
fn pick(seed: u64, lo: u64, hi: u64) -> Duration {
    Duration::from_nanos(lo + seed % (hi - lo + 1))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).expect("generated durations fit u64")
}

prop_compose! {
    /// Any pool configuration that passes validation, built by bending
    /// random seeds into the allowed ranges.
    fn valid_pool_config()(
        seeds in prop::array::uniform32(any::<u64>()),
        pool_name in "[A-Za-z0-9_.-]{1,64}",
        jitter in 0.0f64..=0.5,
        max_size in 1u32..=65_536,
        max_waiters in any::<u32>(),
        fail_fast_after in any::<u32>(),
    ) -> PoolConfig {
        let s = seeds;
        let optional = |seed: u64, d: Duration| (!seed.is_multiple_of(4)).then_some(d);
        let connection_timeout = pick(s[0], 2, MAX_NANOS);
        let idle_timeout = optional(s[1], pick(s[2], 1, MAX_NANOS));
        let lifetime_floor = idle_timeout.map_or(1, |d| nanos(d) + 1);
        let max_lifetime = optional(s[3], pick(s[4], lifetime_floor, 2 * MAX_NANOS));
        let keepalive_min = 100_000_000;
        let keepalive_interval = match max_lifetime {
            Some(l) if nanos(l) > keepalive_min => optional(s[5], pick(s[6], keepalive_min, nanos(l) - 1)),
            Some(_) => None,
            None => optional(s[5], pick(s[6], keepalive_min, MAX_NANOS)),
        };
        let leak_detection_threshold = match max_lifetime {
            Some(l) if nanos(l) > 1 => optional(s[7], pick(s[8], 1, nanos(l) - 1)),
            Some(_) => None,
            None => optional(s[7], pick(s[8], 1, MAX_NANOS)),
        };
        let connect_backoff_initial = pick(s[9], 1, MAX_NANOS);
        PoolConfig {
            pool_name,
            max_size,
            min_idle: u32::try_from(s[10] % (u64::from(max_size) + 1)).expect("<= max_size"),
            capacity: (!s[11].is_multiple_of(4))
                .then(|| max_size + u32::try_from(s[12] % u64::from(65_536 - max_size + 1)).expect("small")),
            connection_timeout,
            validation_timeout: pick(s[13], 1, nanos(connection_timeout) - 1),
            validation_idle_window: pick(s[14], 0, MAX_NANOS),
            idle_timeout,
            max_lifetime,
            max_lifetime_jitter: jitter,
            keepalive_interval,
            leak_detection_threshold,
            max_waiters,
            hand_off_after: pick(s[20], 0, 1_000_000_000),
            connect_backoff_initial,
            connect_backoff_max: pick(s[15], nanos(connect_backoff_initial), 2 * MAX_NANOS),
            fail_fast_after,
            close_timeout: pick(s[16], 0, MAX_NANOS),
            startup: StartupMode::ALL[(s[17] % 2) as usize],
            max_concurrent_connects: 1 + (s[18] % 256) as u32,
            max_concurrent_validations: 1 + (s[19] % 256) as u32,
        }
    }
}

prop_compose! {
    /// Any SQLite section that passes validation.
    fn valid_sqlite_config()(
        seeds in prop::array::uniform8(any::<u64>()),
        path in "[^\\x00]{1,40}",
        cache_size in any::<i64>(),
        foreign_keys in any::<bool>(),
        read_only in any::<bool>(),
    ) -> SqliteConfig {
        let s = seeds;
        SqliteConfig {
            path,
            journal_mode: JournalMode::ALL[(s[0] % JournalMode::ALL.len() as u64) as usize],
            synchronous: Synchronous::ALL[(s[1] % Synchronous::ALL.len() as u64) as usize],
            mmap_size: s[2] % (i64::MAX as u64 + 1),
            cache_size,
            busy_timeout: pick(s[3], 0, i32::MAX as u64 * 1_000_000),
            foreign_keys,
            temp_store: TempStore::ALL[(s[4] % TempStore::ALL.len() as u64) as usize],
            read_only,
            locking: if cfg!(unix) {
                Locking::ALL[(s[6] % Locking::ALL.len() as u64) as usize]
            } else {
                Locking::Shared
            },
            statement_cache_capacity: u32::try_from(s[5] % 10_001).expect("small"),
        }
    }
}

prop_compose! {
    /// Any whole configuration that passes validation.
    fn valid_config()(pool in valid_pool_config(), sqlite in valid_sqlite_config()) -> Config {
        Config { pool, sqlite }
    }
}

/// Places a profile body (as written by `to_toml_string`) under
/// `[profiles.<profile>]`.
fn as_profile(body: &str, profile: &str) -> String {
    let body: toml::Table = body.parse().expect("to_toml_string writes TOML");
    let mut profiles = toml::Table::new();
    profiles.insert(profile.to_owned(), toml::Value::Table(body));
    let mut doc = toml::Table::new();
    doc.insert("profiles".to_owned(), toml::Value::Table(profiles));
    toml::to_string(&doc).expect("serialise document")
}

/// Dotted names of every setting of `T`, in declaration order.
fn setting_names<T: Settings>() -> Vec<String> {
    T::settings().iter().map(|s| s.name().to_owned()).collect()
}

/// The sections (nested tables) of `T`'s settings, e.g. `sqlite`.
fn sections<T: Settings>() -> Vec<String> {
    let mut sections: Vec<String> = T::settings()
        .iter()
        .filter_map(|s| s.section().map(str::to_owned))
        .collect();
    sections.dedup();
    sections
}

/// The environment variables that reproduce `config` over the defaults.
fn as_env<T: Settings>(config: &T) -> Vec<(String, String)> {
    setting_names::<T>()
        .into_iter()
        .map(|name| {
            let literal = slotpool::config::setting_value(config, &name).expect("known");
            // Env values are raw text: strip TOML string quoting.
            let doc: toml::Table = format!("v = {literal}").parse().expect("literal");
            let text = doc["v"].as_str().map_or(literal.clone(), str::to_owned);
            let variable = slotpool::config::env_var_for::<T>(&name).expect("known");
            (variable, text)
        })
        .collect()
}

/// A TOML value of any shape, biased towards values the settings of `T`
/// accept.
fn arb_value<T: Settings>() -> impl Strategy<Value = toml::Value> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(64),
            Just(65_536),
            Just(4_294_967_296)
        ]
        .prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        (0.0f64..1.0).prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        ".{0,20}".prop_map(toml::Value::String),
        "[0-9]{1,22} ?(ns|us|ms|s|sec|m|min|h|d|w|M|y|years)( [0-9]{1,4}(ms|s))?"
            .prop_map(toml::Value::String),
        prop::sample::select(vec![
            "off",
            "none",
            "auto",
            "wal",
            "memory",
            "normal",
            "wait_for_min_idle",
            "",
            " ",
            "0s",
        ])
        .prop_map(|s| toml::Value::String(s.to_owned())),
    ];
    scalar.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map(arb_key::<T>(), inner, 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A key: mostly names of `T`'s settings (top-level or section leaves) and
/// sections, plus `sqlite` (a backend's section, known to `T` or not),
/// sometimes noise.
fn arb_key<T: Settings>() -> impl Strategy<Value = String> {
    let known: Vec<String> = T::settings()
        .iter()
        .map(|s| s.leaf().to_owned())
        .chain(sections::<T>())
        .chain(["sqlite".to_owned()])
        .collect();
    prop_oneof![
        4 => prop::sample::select(known),
        1 => "[a-z_]{1,12}",
        1 => ".{0,8}",
    ]
}

/// A document with a `dev` profile (and sometimes `[defaults]`) of
/// arbitrary settings, including a table of arbitrary settings for each of
/// `T`'s sections.
fn arb_document<T: Settings>() -> impl Strategy<Value = toml::Table> {
    let settings = || prop::collection::btree_map(arb_key::<T>(), arb_value::<T>(), 0..8);
    let section_tables = prop::collection::vec(settings(), sections::<T>().len());
    (
        settings(),
        section_tables,
        prop::option::of(settings()),
        prop::option::of(settings()),
    )
        .prop_map(|(mut dev, section_tables, defaults, other)| {
            for (section, table) in sections::<T>().into_iter().zip(section_tables) {
                dev.insert(section, toml::Value::Table(table.into_iter().collect()));
            }
            let mut profiles = toml::Table::new();
            profiles.insert(
                "dev".to_owned(),
                toml::Value::Table(dev.into_iter().collect()),
            );
            if let Some(other) = other {
                profiles.insert(
                    "other".to_owned(),
                    toml::Value::Table(other.into_iter().collect()),
                );
            }
            let mut doc = toml::Table::new();
            doc.insert("profiles".to_owned(), toml::Value::Table(profiles));
            if let Some(defaults) = defaults {
                doc.insert(
                    "defaults".to_owned(),
                    toml::Value::Table(defaults.into_iter().collect()),
                );
            }
            doc
        })
}

/// Loading either yields a valid configuration or an error.
fn assert_valid_or_err<T: Settings + Debug>(result: Result<T, ConfigError>) {
    if let Ok(config) = result {
        assert!(
            config.problems().is_empty(),
            "loaded an invalid config: {config:?}"
        );
    } else if let Err(err) = result {
        assert!(!err.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_configs_round_trip_through_toml(config in valid_config()) {
        prop_assert!(config.problems().is_empty(), "strategy built an invalid config: {:?}", config.problems());
        let body = config.to_toml_string();

        // Through a profile of a configuration file.
        let loaded = Config::from_toml_str(&as_profile(&body, "p"), "p");
        prop_assert_eq!(loaded.as_ref().ok(), Some(&config), "{:?}\n{}", loaded, body);

        // Through serde, both ways.
        let via_serde: Config = toml::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&via_serde, &config);
        let serde_text = toml::to_string(&config).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Config = toml::from_str(&serde_text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &config);
    }

    #[test]
    fn valid_configs_round_trip_through_env(config in valid_config()) {
        let loaded = Config::load(None, None, as_env(&config));
        prop_assert_eq!(loaded.as_ref().ok(), Some(&config), "{:?}", loaded);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}", toml_ish in "(\\[profiles\\.dev(\\.sqlite)?\\]\n|[a-z_]{1,20} = (\"[^\"\n]{0,10}\"|-?[0-9]{1,12}|true|[0-9.e+-]{1,8})\n){0,8}") {
        for input in [&text, &toml_ish] {
            assert_valid_or_err(Config::from_toml_str(input, "dev"));
            let _ = toml::from_str::<Config>(input);
        }
    }

    #[test]
    fn arbitrary_tables_never_panic(doc in arb_document::<Config>()) {
        let text = toml::to_string(&doc);
        prop_assume!(text.is_ok());
        let text = text.unwrap_or_default();
        assert_valid_or_err(Config::from_toml_str(&text, "dev"));
        assert_valid_or_err(Config::from_toml_str(&text, "other"));
        let _ = Config::from_toml_str(&text, "missing");
        let _ = toml::from_str::<Config>(&text);
    }

    #[test]
    fn arbitrary_env_never_panics(
        pairs in prop::collection::vec(
            (
                prop_oneof![
                    3 => prop::sample::select(
                        setting_names::<Config>()
                            .iter()
                            .filter_map(|name| slotpool::config::env_var_for::<Config>(name))
                            .collect::<Vec<_>>(),
                    ),
                    1 => "SLOTPOOL_[A-Z_]{0,12}",
                    1 => ".{0,12}",
                ],
                prop_oneof![".{0,16}", "[0-9]{1,22}", "[0-9]{1,5}(ms|s|m|h)", Just("off".to_owned())],
            ),
            0..8,
        )
    ) {
        assert_valid_or_err(Config::load(None, None, pairs.clone()));
        let _ = slotpool::config::apply_env(Config::default(), pairs);
    }
}

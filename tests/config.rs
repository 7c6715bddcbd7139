#![cfg(not(feature = "loom"))]
//! Tests of `slotpool::config`: every validation rule, layering and
//! precedence, the shipped profiles, error reporting, and property tests.
//! No test touches the process environment: variables are passed as pairs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use slotpool::config::{
    ConfigError, JournalMode, Locking, PoolConfig, Source, SqliteConfig, StartupMode, Synchronous,
    TempStore,
};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");

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
            "slotpool-config-{}-{name}.toml",
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
fn assert_invalid(change: impl FnOnce(&mut PoolConfig), setting: &str, value: &str) -> String {
    let mut config = PoolConfig::default();
    change(&mut config);
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
fn assert_valid(change: impl FnOnce(&mut PoolConfig)) {
    let mut config = PoolConfig::default();
    change(&mut config);
    assert_eq!(config.problems().len(), 0, "{:?}", config.problems());
    config.validate().expect("valid");
}

#[test]
fn defaults_are_valid() {
    assert_valid(|_| {});
}

#[test]
fn max_size_must_be_at_least_one() {
    assert_invalid(|c| c.max_size = 0, "max_size", "0");
    assert_valid(|c| c.max_size = 1);
}

#[test]
fn max_size_must_fit_the_largest_capacity() {
    assert_invalid(|c| c.max_size = 65_537, "max_size", "65537");
    assert_valid(|c| c.max_size = 65_536);
}

#[test]
fn min_idle_must_not_exceed_max_size() {
    let message = assert_invalid(|c| c.min_idle = 12, "min_idle", "12");
    assert_eq!(message, "invalid `min_idle` = 12: must be <= max_size (10)");
    assert_valid(|c| c.min_idle = 10);
}

#[test]
fn capacity_must_be_at_least_max_size() {
    assert_invalid(
        |c| {
            c.max_size = 100;
            c.capacity = Some(99);
        },
        "capacity",
        "99",
    );
    assert_valid(|c| c.capacity = Some(10));
}

#[test]
fn capacity_must_be_at_most_65536() {
    assert_invalid(|c| c.capacity = Some(65_537), "capacity", "65537");
    assert_valid(|c| c.capacity = Some(65_536));
}

#[test]
fn capacity_auto_is_max_of_max_size_and_64() {
    let mut config = PoolConfig::default();
    assert_eq!(config.effective_capacity(), 64);
    config.max_size = 100;
    assert_eq!(config.effective_capacity(), 100);
    config.capacity = Some(200);
    assert_eq!(config.effective_capacity(), 200);
}

#[test]
fn connection_timeout_must_be_positive() {
    assert_invalid(
        |c| c.connection_timeout = Duration::ZERO,
        "connection_timeout",
        "\"0s\"",
    );
}

#[test]
fn validation_timeout_must_be_positive() {
    assert_invalid(
        |c| c.validation_timeout = Duration::ZERO,
        "validation_timeout",
        "\"0s\"",
    );
}

#[test]
fn validation_timeout_must_be_below_connection_timeout() {
    let message = assert_invalid(
        |c| c.validation_timeout = secs(30),
        "validation_timeout",
        "\"30s\"",
    );
    assert!(
        message.contains("connection_timeout (\"30s\")"),
        "{message}"
    );
    assert_valid(|c| c.validation_timeout = secs(29));
}

#[test]
fn validation_idle_window_may_be_zero() {
    assert_valid(|c| c.validation_idle_window = Duration::ZERO);
}

#[test]
fn idle_timeout_must_be_positive_when_set() {
    assert_invalid(
        |c| c.idle_timeout = Some(Duration::ZERO),
        "idle_timeout",
        "\"0s\"",
    );
    assert_valid(|c| c.idle_timeout = None);
}

#[test]
fn max_lifetime_must_be_positive_when_set() {
    assert_invalid(
        |c| {
            c.max_lifetime = Some(Duration::ZERO);
            c.idle_timeout = None;
            c.keepalive_interval = None;
        },
        "max_lifetime",
        "\"0s\"",
    );
}

#[test]
fn max_lifetime_must_exceed_idle_timeout() {
    assert_invalid(
        |c| c.max_lifetime = Some(secs(600)),
        "max_lifetime",
        "\"10m\"",
    );
    assert_valid(|c| c.max_lifetime = Some(secs(601)));
    assert_valid(|c| {
        c.max_lifetime = None;
        c.idle_timeout = Some(secs(3600));
    });
    assert_valid(|c| {
        c.idle_timeout = None;
        c.max_lifetime = Some(secs(180));
    });
}

#[test]
fn max_lifetime_jitter_must_be_within_zero_and_half() {
    assert_invalid(
        |c| c.max_lifetime_jitter = 0.6,
        "max_lifetime_jitter",
        "0.6",
    );
    assert_invalid(
        |c| c.max_lifetime_jitter = -0.1,
        "max_lifetime_jitter",
        "-0.1",
    );
    assert_valid(|c| c.max_lifetime_jitter = 0.0);
    assert_valid(|c| c.max_lifetime_jitter = 0.5);
}

#[test]
fn max_lifetime_jitter_must_be_finite() {
    assert_invalid(
        |c| c.max_lifetime_jitter = f64::NAN,
        "max_lifetime_jitter",
        "nan",
    );
    assert_invalid(
        |c| c.max_lifetime_jitter = f64::INFINITY,
        "max_lifetime_jitter",
        "inf",
    );
}

#[test]
fn keepalive_interval_must_be_at_least_100ms() {
    assert_invalid(
        |c| c.keepalive_interval = Some(ms(99)),
        "keepalive_interval",
        "\"99ms\"",
    );
    assert_valid(|c| c.keepalive_interval = Some(ms(100)));
    assert_valid(|c| c.keepalive_interval = None);
}

#[test]
fn keepalive_interval_must_be_below_max_lifetime() {
    let message = assert_invalid(
        |c| c.keepalive_interval = Some(secs(1800)),
        "keepalive_interval",
        "\"30m\"",
    );
    assert!(message.contains("max_lifetime"), "{message}");
    assert_valid(|c| {
        c.max_lifetime = None;
        c.keepalive_interval = Some(secs(7200));
    });
}

#[test]
fn leak_detection_threshold_must_be_positive() {
    assert_invalid(
        |c| c.leak_detection_threshold = Some(Duration::ZERO),
        "leak_detection_threshold",
        "\"0s\"",
    );
}

#[test]
fn leak_detection_threshold_must_be_below_max_lifetime() {
    assert_invalid(
        |c| c.leak_detection_threshold = Some(secs(1800)),
        "leak_detection_threshold",
        "\"30m\"",
    );
    assert_valid(|c| c.leak_detection_threshold = Some(secs(2)));
    assert_valid(|c| {
        c.max_lifetime = None;
        c.leak_detection_threshold = Some(secs(7200));
    });
}

#[test]
fn connect_backoff_initial_must_be_positive() {
    assert_invalid(
        |c| c.connect_backoff_initial = Duration::ZERO,
        "connect_backoff_initial",
        "\"0s\"",
    );
}

#[test]
fn connect_backoff_max_must_be_at_least_initial() {
    assert_invalid(
        |c| c.connect_backoff_max = ms(99),
        "connect_backoff_max",
        "\"99ms\"",
    );
    assert_valid(|c| c.connect_backoff_max = ms(100));
}

#[test]
fn close_timeout_may_be_anything() {
    assert_valid(|c| c.close_timeout = Duration::ZERO);
    assert_valid(|c| c.close_timeout = secs(86_400));
}

#[test]
fn pool_name_must_not_be_empty() {
    assert_invalid(|c| c.pool_name = String::new(), "pool_name", "\"\"");
}

#[test]
fn pool_name_must_be_at_most_64_characters() {
    assert_invalid(
        |c| c.pool_name = "a".repeat(65),
        "pool_name",
        &format!("\"{}\"", "a".repeat(65)),
    );
    assert_valid(|c| c.pool_name = "a".repeat(64));
}

#[test]
fn pool_name_must_use_label_safe_characters() {
    assert_invalid(
        |c| c.pool_name = "my pool".to_owned(),
        "pool_name",
        "\"my pool\"",
    );
    assert_invalid(|c| c.pool_name = "pöol".to_owned(), "pool_name", "\"pöol\"");
    assert_valid(|c| c.pool_name = "Pool_1.main-db".to_owned());
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

#[test]
fn problems_reports_every_violation() {
    let config = PoolConfig {
        max_size: 0,
        pool_name: String::new(),
        max_lifetime_jitter: 2.0,
        ..PoolConfig::default()
    };
    let settings: Vec<&str> = config
        .problems()
        .iter()
        .filter_map(|p| match p {
            ConfigError::Invalid { setting, .. } => Some(*setting),
            _ => None,
        })
        .collect();
    assert_eq!(settings, ["pool_name", "max_size", "max_lifetime_jitter"]);
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            setting: "pool_name",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// Defaults and codecs
// ---------------------------------------------------------------------------

#[test]
fn documented_defaults() {
    let c = PoolConfig::default();
    assert_eq!(c.pool_name, "slotpool");
    assert_eq!((c.max_size, c.min_idle, c.capacity), (10, 0, None));
    assert_eq!(c.connection_timeout, secs(30));
    assert_eq!(c.validation_timeout, secs(5));
    assert_eq!(c.validation_idle_window, ms(500));
    assert_eq!(c.idle_timeout, Some(secs(600)));
    assert_eq!(c.max_lifetime, Some(secs(1800)));
    assert_eq!(c.max_lifetime_jitter, 0.025);
    assert_eq!(c.keepalive_interval, Some(secs(120)));
    assert_eq!(c.leak_detection_threshold, None);
    assert_eq!(c.max_waiters, 0);
    assert_eq!(
        (c.connect_backoff_initial, c.connect_backoff_max),
        (ms(100), secs(10))
    );
    assert_eq!(c.fail_fast_after, 5);
    assert_eq!(c.close_timeout, secs(10));
    assert_eq!(c.startup, StartupMode::Background);
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
    let text = PoolConfig::default().to_toml_string();
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
    let serde: PoolConfig = toml::from_str(&text).expect("serde reads it");
    assert_eq!(serde, PoolConfig::default());
}

#[test]
fn enums_serialise_as_lowercase_words() {
    let config = PoolConfig {
        startup: StartupMode::WaitForMinIdle,
        ..PoolConfig::default()
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
        PoolConfig::load_with_sources(Some(file.path()), Some("p"), vars(&[])).expect("load p");
    assert_eq!(config.sqlite.locking, Locking::Process);
    assert_eq!(
        sources["sqlite.locking"],
        Source::File {
            path: Some(file.path().to_path_buf()),
            profile: Some("p".to_owned()),
        }
    );
    let config = PoolConfig::from_file(file.path(), "q").expect("load q");
    assert_eq!(config.sqlite.locking, Locking::Shared, "case-insensitive");

    // The variable beats the file.
    let (config, sources) = PoolConfig::load_with_sources(
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
    let (_, sources) = PoolConfig::load_with_sources(None, None, vars(&[])).expect("defaults");
    assert_eq!(sources["sqlite.locking"], Source::Default);
    assert_eq!(
        PoolConfig::default()
            .setting_value("sqlite.locking")
            .as_deref(),
        Some("\"shared\"")
    );
}

#[test]
fn a_bad_sqlite_locking_names_the_setting_value_and_choices() {
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\nlocking = \"exclusive\"\n", "p")
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

    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_SQLITE_LOCKING", "excl")]))
        .expect_err("bad variable");
    assert_eq!(
        err.to_string(),
        "cannot parse `SLOTPOOL_SQLITE_LOCKING` from `excl`: expected one of \"shared\" or \"process\""
    );

    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\nlocking = true\n", "p")
        .expect_err("not a string");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite.locking"),
        "{err}"
    );
}

#[test]
fn a_misspelt_locking_key_or_variable_gets_a_suggestion() {
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\nlockng = \"shared\"\n", "p")
        .expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. }
            if s == "profiles.p.sqlite.locking"),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("[profiles.p]\nlocking = \"shared\"\n", "p")
        .expect_err("misplaced");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. }
            if s.ends_with("sqlite.locking")),
        "{err}"
    );
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_SQLITE_LOCKNG", "shared")]))
        .expect_err("typo");
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
fn optional_durations_accept_off_words() {
    for word in ["off", "none", "disabled", "OFF", " Disabled "] {
        let text = format!("[profiles.p]\nidle_timeout = \"{word}\"");
        let config = PoolConfig::from_toml_str(&text, "p").expect(word);
        assert_eq!(config.idle_timeout, None, "{word}");
    }
    let config = PoolConfig::from_toml_str(
        "[profiles.p]\nidle_timeout = \"1h 30m\"\nmax_lifetime = \"2h\"",
        "p",
    )
    .expect("compound duration");
    assert_eq!(config.idle_timeout, Some(secs(5400)));
}

#[test]
fn keywords_are_case_insensitive_on_input() {
    let config = PoolConfig::from_toml_str(
        "[profiles.p]\nstartup = \"WAIT_FOR_MIN_IDLE\"\nsqlite.journal_mode = \"WAL\"",
        "p",
    )
    .expect("load");
    assert_eq!(config.startup, StartupMode::WaitForMinIdle);
    assert_eq!(config.sqlite.journal_mode, JournalMode::Wal);
}

#[test]
fn setting_listing_helpers() {
    let names: Vec<&str> = PoolConfig::setting_names().collect();
    assert_eq!(names.len(), 29);
    assert!(names.contains(&"sqlite.locking"));
    assert_eq!(
        PoolConfig::env_var_for("sqlite.locking").as_deref(),
        Some("SLOTPOOL_SQLITE_LOCKING")
    );
    assert_eq!(names[0], "pool_name");
    assert!(names.contains(&"sqlite.statement_cache_capacity"));
    assert_eq!(
        PoolConfig::env_var_for("sqlite.path").as_deref(),
        Some("SLOTPOOL_SQLITE_PATH")
    );
    assert_eq!(PoolConfig::env_var_for("nope"), None);
    let config = PoolConfig::default();
    assert_eq!(config.setting_value("max_size").as_deref(), Some("10"));
    assert_eq!(
        config.setting_value("sqlite.busy_timeout").as_deref(),
        Some("\"5s\"")
    );
}

// ---------------------------------------------------------------------------
// Shipped profiles
// ---------------------------------------------------------------------------

fn shipped(profile: &str) -> PoolConfig {
    PoolConfig::from_file(SHIPPED, profile).unwrap_or_else(|e| panic!("profile {profile}: {e}"))
}

#[test]
fn shipped_file_has_the_four_profiles() {
    let profiles = PoolConfig::profiles_in_file(SHIPPED).expect("read");
    assert_eq!(profiles, ["dev", "prod", "staging", "test"]);
}

#[test]
fn shipped_dev_profile_loads_and_validates() {
    let config = shipped("dev");
    assert_eq!(config.pool_name, "slotpool-dev");
    assert!(config.max_size <= 8, "dev pools are small");
    assert!(config.sqlite.foreign_keys, "from [defaults]");
}

#[test]
fn shipped_test_profile_loads_and_validates() {
    let config = shipped("test");
    assert_eq!(config.pool_name, "slotpool-test");
    assert!(
        config.connection_timeout <= secs(2),
        "test timeouts are short"
    );
    assert!(config.close_timeout <= secs(2));
    assert!(config.sqlite.path.contains("mode=memory"));
}

#[test]
fn shipped_staging_profile_loads_and_validates() {
    let config = shipped("staging");
    assert_eq!(config.pool_name, "slotpool-staging");
    assert_eq!(config.min_idle, config.max_size);
}

#[test]
fn shipped_prod_profile_loads_and_validates() {
    let config = shipped("prod");
    assert_eq!(config.pool_name, "slotpool");
    assert_eq!(
        config.min_idle, config.max_size,
        "fixed-size pool, as HikariCP advises"
    );
    assert_eq!(config.sqlite.mmap_size, 256 * 1024 * 1024);
    assert_eq!(config.sqlite.temp_store, TempStore::Memory);
}

#[test]
fn every_shipped_profile_sets_shared_locking_explicitly() {
    for profile in ["dev", "test", "staging", "prod"] {
        let (config, sources) =
            PoolConfig::load_with_sources(Some(Path::new(SHIPPED)), Some(profile), vars(&[]))
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
    let config = PoolConfig::from_toml_str(
        "[profiles.p]\nmax_size = 20\n[profiles.p.sqlite]\npath = \"x.db\"",
        "p",
    )
    .expect("load");
    assert_eq!(config.max_size, 20);
    assert_eq!(config.sqlite.path, "x.db");
    assert_eq!(
        config,
        PoolConfig {
            max_size: 20,
            sqlite: SqliteConfig {
                path: "x.db".to_owned(),
                ..SqliteConfig::default()
            },
            ..PoolConfig::default()
        }
    );
}

#[test]
fn defaults_table_applies_under_every_profile_and_profiles_override_it() {
    let text =
        "[defaults]\nmax_waiters = 7\nmax_size = 3\n[profiles.a]\nmax_size = 4\n[profiles.b]\n";
    let a = PoolConfig::from_toml_str(text, "a").expect("a");
    let b = PoolConfig::from_toml_str(text, "b").expect("b");
    assert_eq!((a.max_waiters, a.max_size), (7, 4));
    assert_eq!((b.max_waiters, b.max_size), (7, 3));
}

#[test]
fn precedence_is_defaults_then_file_then_env() {
    let file = TempFile::new(
        "precedence",
        "[defaults]\nmax_waiters = 7\n[profiles.p]\nmax_size = 20\nmin_idle = 2\n",
    );
    let (config, sources) = PoolConfig::load_with_sources(
        Some(file.path()),
        Some("p"),
        vars(&[("SLOTPOOL_MIN_IDLE", "3"), ("HOME", "/root")]),
    )
    .expect("load");
    assert_eq!(
        (config.max_size, config.min_idle, config.max_waiters),
        (20, 3, 7)
    );
    assert_eq!(config.connection_timeout, secs(30));
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
    assert_eq!(sources.len(), PoolConfig::setting_names().count());
    assert_eq!(sources["min_idle"].to_string(), "$SLOTPOOL_MIN_IDLE");
}

#[test]
fn env_overrides_shipped_profile() {
    let config = PoolConfig::load(
        Some(Path::new(SHIPPED)),
        Some("prod"),
        vars(&[("SLOTPOOL_MAX_SIZE", "32"), ("SLOTPOOL_MIN_IDLE", "32")]),
    )
    .expect("load");
    assert_eq!((config.max_size, config.min_idle), (32, 32));
    assert_eq!(config.sqlite.path, "/var/lib/slotpool/slotpool.db");
}

#[test]
fn load_validates_after_overlaying() {
    let err = PoolConfig::load(
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
fn load_without_file_uses_defaults_and_env() {
    let config = PoolConfig::load(None, None, vars(&[("SLOTPOOL_MAX_SIZE", "3")])).expect("load");
    assert_eq!(
        config,
        PoolConfig {
            max_size: 3,
            ..PoolConfig::default()
        }
    );
    assert_eq!(
        PoolConfig::load(None, None, Vec::new()).expect("load"),
        PoolConfig::default()
    );
}

#[test]
fn slotpool_config_names_the_file_and_dev_is_the_default_profile() {
    let config = PoolConfig::load(None, None, vars(&[("SLOTPOOL_CONFIG", SHIPPED)])).expect("load");
    assert_eq!(config, shipped("dev"));
}

#[test]
fn slotpool_profile_selects_the_profile() {
    let config = PoolConfig::load(
        None,
        None,
        vars(&[("SLOTPOOL_CONFIG", SHIPPED), ("SLOTPOOL_PROFILE", "test")]),
    )
    .expect("load");
    assert_eq!(config, shipped("test"));
}

#[test]
fn arguments_beat_slotpool_config_and_slotpool_profile() {
    let config = PoolConfig::load(
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
fn empty_slotpool_config_and_profile_count_as_unset() {
    let config = PoolConfig::load(
        None,
        None,
        vars(&[("SLOTPOOL_CONFIG", ""), ("SLOTPOOL_PROFILE", "")]),
    )
    .expect("load");
    assert_eq!(config, PoolConfig::default());
}

#[test]
fn profile_without_file_is_an_error() {
    let err =
        PoolConfig::load(None, None, vars(&[("SLOTPOOL_PROFILE", "prod")])).expect_err("no file");
    match err {
        ConfigError::UnknownProfile { profile, available } => {
            assert_eq!(profile, "prod");
            assert!(available.is_empty());
        }
        other => panic!("{other}"),
    }
}

#[test]
fn apply_env_overlays_without_validating() {
    let config = PoolConfig::default()
        .apply_env(vars(&[
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
        ]))
        .expect("apply");
    assert_eq!(config.max_size, 32);
    assert_eq!(config.connection_timeout, secs(5));
    assert_eq!(config.idle_timeout, None);
    assert_eq!(config.capacity, Some(128));
    assert_eq!(config.max_lifetime_jitter, 0.1);
    assert_eq!(config.startup, StartupMode::WaitForMinIdle);
    assert_eq!(config.sqlite.path, "x.db");
    assert_eq!(config.sqlite.journal_mode, JournalMode::Truncate);
    assert!(!config.sqlite.foreign_keys);
    assert_eq!(config.sqlite.cache_size, -4000);

    let invalid = PoolConfig::default()
        .apply_env(vars(&[("SLOTPOOL_MAX_SIZE", "0")]))
        .expect("no validation");
    assert_eq!(invalid.max_size, 0);
    assert!(invalid.validate().is_err());
}

#[test]
fn later_env_pairs_win() {
    let config = PoolConfig::default()
        .apply_env(vars(&[
            ("SLOTPOOL_MAX_SIZE", "3"),
            ("SLOTPOOL_MAX_SIZE", "4"),
        ]))
        .expect("apply");
    assert_eq!(config.max_size, 4);
}

// ---------------------------------------------------------------------------
// Error reporting
// ---------------------------------------------------------------------------

#[test]
fn unknown_key_suggests_the_closest_setting() {
    let err = PoolConfig::from_toml_str("[profiles.dev]\nmax_szie = 4\n", "dev").expect_err("typo");
    match &err {
        ConfigError::UnknownKey { key, suggestion } => {
            assert_eq!(key, "profiles.dev.max_szie");
            assert_eq!(suggestion.as_deref(), Some("profiles.dev.max_size"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "unknown setting `profiles.dev.max_szie` (did you mean `profiles.dev.max_size`?)"
    );
}

#[test]
fn unknown_sqlite_key_suggests_the_closest_setting() {
    let err = PoolConfig::from_toml_str("[profiles.dev.sqlite]\njornal_mode = \"wal\"\n", "dev")
        .expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) }
            if key == "profiles.dev.sqlite.jornal_mode" && s == "profiles.dev.sqlite.journal_mode"),
        "{err}"
    );
}

#[test]
fn misplaced_key_suggests_its_section() {
    let err = PoolConfig::from_toml_str("[profiles.dev]\npath = \"x.db\"\n", "dev")
        .expect_err("misplaced");
    assert!(
        matches!(&err, ConfigError::UnknownKey { suggestion: Some(s), .. } if s == "profiles.dev.sqlite.path"),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("max_size = 3\n", "dev").expect_err("top level");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) } if key == "max_size" && s == "defaults.max_size"),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("[profile.dev]\n", "dev").expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) } if key == "profile" && s == "profiles"),
        "{err}"
    );
}

#[test]
fn quoted_dotted_key_is_not_a_path() {
    let err = PoolConfig::from_toml_str("[profiles.dev]\n\"sqlite.path\" = \"x.db\"\n", "dev")
        .expect_err("one key, not a path");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, suggestion: Some(s) }
            if key == "profiles.dev.\"sqlite.path\"" && s == "profiles.dev.sqlite.path"),
        "{err}"
    );
}

#[test]
fn unknown_key_far_from_everything_has_no_suggestion() {
    let err =
        PoolConfig::from_toml_str("[profiles.dev]\nzzzzzzzzzz = 1\n", "dev").expect_err("unknown");
    assert!(
        matches!(
            &err,
            ConfigError::UnknownKey {
                suggestion: None,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "unknown setting `profiles.dev.zzzzzzzzzz`");
}

#[test]
fn unknown_profile_lists_available_profiles() {
    let text = std::fs::read_to_string(SHIPPED).expect("read");
    let err = PoolConfig::from_toml_str(&text, "qa").expect_err("unknown profile");
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
fn malformed_duration_is_a_parse_error() {
    let err = PoolConfig::from_toml_str("[profiles.p]\nconnection_timeout = \"30 parsecs\"\n", "p")
        .expect_err("bad duration");
    match &err {
        ConfigError::Parse {
            setting,
            value,
            expected,
            source,
        } => {
            assert_eq!(setting, "profiles.p.connection_timeout");
            assert_eq!(value, "\"30 parsecs\"");
            assert!(expected.contains("duration"), "{expected}");
            assert!(source.is_some());
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("connection_timeout"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn bare_number_is_not_a_duration() {
    let err =
        PoolConfig::from_toml_str("[profiles.p]\nclose_timeout = 30\n", "p").expect_err("unitless");
    assert!(
        matches!(&err, ConfigError::Parse { setting, value, .. } if setting == "profiles.p.close_timeout" && value == "30"),
        "{err}"
    );
}

#[test]
fn malformed_optional_duration_mentions_off() {
    let err = PoolConfig::from_toml_str("[profiles.p]\nidle_timeout = \"never\"\n", "p")
        .expect_err("bad");
    assert!(
        matches!(&err, ConfigError::Parse { expected, .. } if expected.contains("\"off\"")),
        "{err}"
    );
}

#[test]
fn wrong_value_type_names_the_setting() {
    let err =
        PoolConfig::from_toml_str("[profiles.p]\nmax_size = \"ten\"\n", "p").expect_err("string");
    assert!(
        matches!(&err, ConfigError::Parse { setting, value, .. } if setting == "profiles.p.max_size" && value == "\"ten\""),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\nforeign_keys = \"yes\"\n", "p")
        .expect_err("bool");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite.foreign_keys"),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("[profiles.p]\nsqlite = 3\n", "p").expect_err("section");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "profiles.p.sqlite"),
        "{err}"
    );
}

#[test]
fn unknown_keyword_lists_the_choices() {
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\njournal_mode = \"wall\"\n", "p")
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
        let err = PoolConfig::from_toml_str(&text, "p").expect_err(value);
        assert!(
            matches!(&err, ConfigError::Parse { setting, value: v, .. } if setting == "profiles.p.max_size" && v == value),
            "{err}"
        );
    }
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\nmmap_size = -1\n", "p")
        .expect_err("negative u64");
    assert!(matches!(&err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn unparsable_env_var_is_a_parse_error() {
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_MAX_SIZE", "ten")])).expect_err("bad");
    match &err {
        ConfigError::Parse {
            setting,
            value,
            expected,
            ..
        } => {
            assert_eq!(setting, "SLOTPOOL_MAX_SIZE");
            assert_eq!(value, "ten");
            assert!(expected.contains("integer"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "cannot parse `SLOTPOOL_MAX_SIZE` from `ten`: expected an integer from 0 to 4294967295"
    );
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_MAX_SIZE", "4294967296")]))
        .expect_err("overflow");
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_CONNECTION_TIMEOUT", "soon")]))
        .expect_err("duration");
    assert!(
        matches!(&err, ConfigError::Parse { setting, .. } if setting == "SLOTPOOL_CONNECTION_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn unknown_env_var_suggests_the_closest_variable() {
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_MAX_SZIE", "4")])).expect_err("typo");
    match &err {
        ConfigError::UnknownVariable {
            variable,
            suggestion,
        } => {
            assert_eq!(variable, "SLOTPOOL_MAX_SZIE");
            assert_eq!(suggestion.as_deref(), Some("SLOTPOOL_MAX_SIZE"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "unknown environment variable `SLOTPOOL_MAX_SZIE` (did you mean `SLOTPOOL_MAX_SIZE`?)"
    );
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_PROFLE", "dev")])).expect_err("typo");
    assert!(
        matches!(&err, ConfigError::UnknownVariable { suggestion: Some(s), .. } if s == "SLOTPOOL_PROFILE"),
        "{err}"
    );
}

#[test]
fn reserved_and_test_variables_are_not_errors() {
    let config = PoolConfig::load(
        None,
        None,
        vars(&[
            ("SLOTPOOL_REQUIRE_PG", "1"),
            ("SLOTPOOL_TEST_DATABASE_URL", "postgres://localhost/test"),
            ("SLOTPOOL_TEST_ANYTHING", "x"),
            ("slotpool_max_szie", "lowercase is not ours"),
            ("OTHER_MAX_SIZE", "99"),
        ]),
    )
    .expect("ignored");
    assert_eq!(config, PoolConfig::default());
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let path = Path::new("/nonexistent/slotpool.toml");
    let err = PoolConfig::from_file(path, "dev").expect_err("missing");
    assert!(
        matches!(&err, ConfigError::Io { path: p, .. } if p == path),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/slotpool.toml"));
    let err = PoolConfig::load(
        None,
        None,
        vars(&[("SLOTPOOL_CONFIG", "/nonexistent/slotpool.toml")]),
    )
    .expect_err("missing");
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn malformed_toml_is_a_toml_error_with_the_path() {
    let file = TempFile::new("malformed", "[profiles.dev\nmax_size = 3\n");
    let err = PoolConfig::from_file(file.path(), "dev").expect_err("malformed");
    assert!(
        matches!(&err, ConfigError::Toml { path: Some(p), .. } if p == file.path()),
        "{err}"
    );
    let err = PoolConfig::from_toml_str("max_size = = 3", "dev").expect_err("malformed");
    assert!(
        matches!(&err, ConfigError::Toml { path: None, .. }),
        "{err}"
    );
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
    /// Any configuration that passes validation, built by bending random
    /// seeds into the allowed ranges.
    fn valid_config()(
        seeds in prop::array::uniform32(any::<u64>()),
        pool_name in "[A-Za-z0-9_.-]{1,64}",
        path in "[^\\x00]{1,40}",
        jitter in 0.0f64..=0.5,
        max_size in 1u32..=65_536,
        max_waiters in any::<u32>(),
        fail_fast_after in any::<u32>(),
        cache_size in any::<i64>(),
        foreign_keys in any::<bool>(),
        read_only in any::<bool>(),
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
            connect_backoff_initial,
            connect_backoff_max: pick(s[15], nanos(connect_backoff_initial), 2 * MAX_NANOS),
            fail_fast_after,
            close_timeout: pick(s[16], 0, MAX_NANOS),
            startup: StartupMode::ALL[(s[17] % 2) as usize],
            sqlite: SqliteConfig {
                path,
                journal_mode: JournalMode::ALL[(s[18] % JournalMode::ALL.len() as u64) as usize],
                synchronous: Synchronous::ALL[(s[19] % Synchronous::ALL.len() as u64) as usize],
                mmap_size: s[20] % (i64::MAX as u64 + 1),
                cache_size,
                busy_timeout: pick(s[21], 0, i32::MAX as u64 * 1_000_000),
                foreign_keys,
                temp_store: TempStore::ALL[(s[22] % TempStore::ALL.len() as u64) as usize],
                read_only,
                locking: if cfg!(unix) {
                    Locking::ALL[(s[24] % Locking::ALL.len() as u64) as usize]
                } else {
                    Locking::Shared
                },
                statement_cache_capacity: u32::try_from(s[23] % 10_001).expect("small"),
            },
        }
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

/// The environment variables that reproduce `config` over the defaults.
fn as_env(config: &PoolConfig) -> Vec<(String, String)> {
    PoolConfig::setting_names()
        .map(|name| {
            let literal = config.setting_value(name).expect("known");
            // Env values are raw text: strip TOML string quoting.
            let doc: toml::Table = format!("v = {literal}").parse().expect("literal");
            let text = doc["v"].as_str().map_or(literal.clone(), str::to_owned);
            (PoolConfig::env_var_for(name).expect("known"), text)
        })
        .collect()
}

/// A TOML value of any shape, biased towards values settings accept.
fn arb_value() -> impl Strategy<Value = toml::Value> {
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
            prop::collection::btree_map(arb_key(), inner, 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A key: mostly setting names (top-level or sqlite leaves), sometimes noise.
fn arb_key() -> impl Strategy<Value = String> {
    let known: Vec<String> = PoolConfig::setting_names()
        .map(|n| n.rsplit('.').next().unwrap_or(n).to_owned())
        .chain(["sqlite".to_owned()])
        .collect();
    prop_oneof![
        4 => prop::sample::select(known),
        1 => "[a-z_]{1,12}",
        1 => ".{0,8}",
    ]
}

/// A document with a `dev` profile (and sometimes `[defaults]`) of
/// arbitrary settings, including a `sqlite` table of arbitrary settings.
fn arb_document() -> impl Strategy<Value = toml::Table> {
    let settings = || prop::collection::btree_map(arb_key(), arb_value(), 0..8);
    (
        settings(),
        settings(),
        prop::option::of(settings()),
        prop::option::of(settings()),
    )
        .prop_map(|(mut dev, sqlite, defaults, other)| {
            dev.insert(
                "sqlite".to_owned(),
                toml::Value::Table(sqlite.into_iter().collect()),
            );
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
fn assert_valid_or_err(result: Result<PoolConfig, ConfigError>) {
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
        let loaded = PoolConfig::from_toml_str(&as_profile(&body, "p"), "p");
        prop_assert_eq!(loaded.as_ref().ok(), Some(&config), "{:?}\n{}", loaded, body);

        // Through serde, both ways.
        let via_serde: PoolConfig = toml::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&via_serde, &config);
        let serde_text = toml::to_string(&config).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: PoolConfig = toml::from_str(&serde_text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &config);
    }

    #[test]
    fn valid_configs_round_trip_through_env(config in valid_config()) {
        let loaded = PoolConfig::load(None, None, as_env(&config));
        prop_assert_eq!(loaded.as_ref().ok(), Some(&config), "{:?}", loaded);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}", toml_ish in "(\\[profiles\\.dev(\\.sqlite)?\\]\n|[a-z_]{1,20} = (\"[^\"\n]{0,10}\"|-?[0-9]{1,12}|true|[0-9.e+-]{1,8})\n){0,8}") {
        for input in [&text, &toml_ish] {
            assert_valid_or_err(PoolConfig::from_toml_str(input, "dev"));
            let _ = toml::from_str::<PoolConfig>(input);
        }
    }

    #[test]
    fn arbitrary_tables_never_panic(doc in arb_document()) {
        let text = toml::to_string(&doc);
        prop_assume!(text.is_ok());
        let text = text.unwrap_or_default();
        assert_valid_or_err(PoolConfig::from_toml_str(&text, "dev"));
        assert_valid_or_err(PoolConfig::from_toml_str(&text, "other"));
        let _ = PoolConfig::from_toml_str(&text, "missing");
        let _ = toml::from_str::<PoolConfig>(&text);
    }

    #[test]
    fn arbitrary_env_never_panics(
        pairs in prop::collection::vec(
            (
                prop_oneof![
                    3 => prop::sample::select(
                        PoolConfig::setting_names()
                            .filter_map(PoolConfig::env_var_for)
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
        assert_valid_or_err(PoolConfig::load(None, None, pairs.clone()));
        let _ = PoolConfig::default().apply_env(pairs);
    }
}

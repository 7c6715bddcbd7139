#![cfg(not(feature = "loom"))]
//! Tests of `slotpool::config` for the pool's own settings ([`PoolConfig`]):
//! every validation rule, layering and precedence, error reporting, and
//! property tests. A backend's sections (`[sqlite]`, `SLOTPOOL_SQLITE_*`)
//! and the shipped `config.toml`, which has them, are tested by the backend
//! crate (`slotpool-sqlite/tests/config.rs`); here they are unknown names.
//! No test touches the process environment: variables are passed as pairs.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use slotpool::config::schema::Settings;
use slotpool::config::{ConfigError, PoolConfig, Source, StartupMode};

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
    invalid_message(&changed(change), setting, value)
}

#[track_caller]
fn assert_valid(change: impl FnOnce(&mut PoolConfig)) {
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
}

#[test]
fn to_toml_string_writes_flat_settings() {
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
    // The pool has no sections of its own.
    assert!(!text.contains('['), "{text}");
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
    assert_eq!(StartupMode::WaitForMinIdle.to_string(), "wait_for_min_idle");
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
fn hand_off_after_is_at_most_one_second() {
    let message = assert_invalid(
        |c| c.hand_off_after = Duration::from_millis(1001),
        "hand_off_after",
        "\"1s 1ms\"",
    );
    assert!(message.contains("at most \"1s\""), "{message}");
    assert_valid(|c| c.hand_off_after = Duration::ZERO);
    assert_valid(|c| c.hand_off_after = Duration::from_secs(1));
}

#[test]
fn keywords_are_case_insensitive_on_input() {
    let config = PoolConfig::from_toml_str("[profiles.p]\nstartup = \"WAIT_FOR_MIN_IDLE\"", "p")
        .expect("load");
    assert_eq!(config.startup, StartupMode::WaitForMinIdle);
}

#[test]
fn setting_listing_helpers() {
    let names: Vec<String> = PoolConfig::setting_names().collect();
    assert_eq!(
        names.len(),
        21,
        "the pool's settings, with max_concurrent_connects and _validations, and hand_off_after"
    );
    assert_eq!(names[0], "pool_name");
    assert!(names.iter().all(|n| !n.contains('.')), "{names:?}");
    assert_eq!(
        PoolConfig::env_var_for("max_size").as_deref(),
        Some("SLOTPOOL_MAX_SIZE")
    );
    assert_eq!(PoolConfig::env_var_for("nope"), None);
    let config = PoolConfig::default();
    assert_eq!(config.setting_value("max_size").as_deref(), Some("10"));
    assert_eq!(
        config.setting_value("connection_timeout").as_deref(),
        Some("\"30s\"")
    );
}

/// The SQLite settings belong to `slotpool_sqlite::Config`: for the core's
/// `PoolConfig` the `sqlite` table and `SLOTPOOL_SQLITE_*` are unknown names.
#[test]
fn sqlite_settings_are_unknown_to_the_core() {
    let err = PoolConfig::from_toml_str("[profiles.p.sqlite]\npath = \"x.db\"\n", "p")
        .expect_err("no sqlite section");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "profiles.p.sqlite"),
        "{err}"
    );
    let err = PoolConfig::load(None, None, vars(&[("SLOTPOOL_SQLITE_PATH", "x.db")]))
        .expect_err("no sqlite variables");
    assert!(
        matches!(&err, ConfigError::UnknownVariable { variable, .. } if variable == "SLOTPOOL_SQLITE_PATH"),
        "{err}"
    );
    assert_eq!(PoolConfig::env_var_for("sqlite.path"), None);
    assert_eq!(PoolConfig::default().setting_value("sqlite.path"), None);
    assert!(
        toml::from_str::<PoolConfig>("[sqlite]\npath = \"x.db\"\n").is_err(),
        "serde rejects it too"
    );
}

// ---------------------------------------------------------------------------
// Layering and precedence
// ---------------------------------------------------------------------------

#[test]
fn profile_overrides_defaults() {
    let config = PoolConfig::from_toml_str("[profiles.p]\nmax_size = 20", "p").expect("load");
    assert_eq!(config.max_size, 20);
    assert_eq!(
        config,
        PoolConfig {
            max_size: 20,
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
    assert_eq!(sources.len(), PoolConfig::setting_names().count());
    assert_eq!(sources["min_idle"].to_string(), "$SLOTPOOL_MIN_IDLE");
}

#[test]
fn load_validates_after_overlaying() {
    let file = TempFile::new("overlay", "[profiles.dev]\nmax_size = 4\n");
    let err = PoolConfig::load(
        Some(file.path()),
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

/// `SLOTPOOL_CONFIG` names the file and `dev` is the default profile;
/// `SLOTPOOL_PROFILE` selects another; arguments beat both.
#[test]
fn file_and_profile_come_from_arguments_then_variables() {
    let file = TempFile::new(
        "selection",
        "[profiles.dev]\nmax_size = 4\n[profiles.test]\nmax_size = 2\n[profiles.staging]\nmax_size = 6\n",
    );
    let path = file.path().to_str().expect("UTF-8 temp path");
    let max_size = |config: Result<PoolConfig, ConfigError>| config.expect("load").max_size;
    assert_eq!(
        max_size(PoolConfig::load(
            None,
            None,
            vars(&[("SLOTPOOL_CONFIG", path)])
        )),
        4
    );
    assert_eq!(
        max_size(PoolConfig::load(
            None,
            None,
            vars(&[("SLOTPOOL_CONFIG", path), ("SLOTPOOL_PROFILE", "test")]),
        )),
        2
    );
    assert_eq!(
        max_size(PoolConfig::load(
            Some(file.path()),
            Some("staging"),
            vars(&[
                ("SLOTPOOL_CONFIG", "/nonexistent.toml"),
                ("SLOTPOOL_PROFILE", "test"),
            ]),
        )),
        6
    );
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
fn misplaced_key_suggests_its_section() {
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
    let text =
        "[profiles.test]\n[profiles.dev]\nmax_size = 4\n[profiles.staging]\n[profiles.prod]\n";
    let err = PoolConfig::from_toml_str(text, "qa").expect_err("unknown profile");
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
}

#[test]
fn unknown_keyword_lists_the_choices() {
    let err = PoolConfig::from_toml_str("[profiles.p]\nstartup = \"eventually\"\n", "p")
        .expect_err("bad");
    assert!(
        matches!(&err, ConfigError::Parse { setting, expected, .. } if setting == "profiles.p.startup"
            && expected.contains("\"background\"") && expected.contains("\"wait_for_min_idle\"")),
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
    fn valid_configs_round_trip_through_toml(config in valid_pool_config()) {
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
    fn valid_configs_round_trip_through_env(config in valid_pool_config()) {
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
    fn arbitrary_tables_never_panic(doc in arb_document::<PoolConfig>()) {
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
                            .filter_map(|name| PoolConfig::env_var_for(&name))
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

#![cfg(not(feature = "loom"))]
//! The `[postgres]` section without a server: defaults, the settings table,
//! every validation rule, layering through profiles and `SLOTPOOL_*`
//! variables, connection strings, tokio-postgres configurations, and
//! building a manager. No test touches the process environment: variables
//! are passed as pairs. Redaction is tested in `secrets.rs`.

use std::time::Duration;

use slotpool::ConfigError;
use slotpool::config::schema::Settings;
use slotpool_postgres::{
    Config, ConnectionString, PgConfig, PgError, PgManager, Recycling, Secret, SslMode,
};

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The defaults with `change` applied.
fn changed(change: impl FnOnce(&mut PgConfig)) -> PgConfig {
    let mut config = PgConfig::default();
    change(&mut config);
    config
}

/// Asserts that `config` breaks a rule of `setting`, with `value` (a TOML
/// literal) and the rule text containing `rule` in the message; returns it.
#[track_caller]
fn assert_invalid(config: &PgConfig, setting: &str, value: &str, rule: &str) -> String {
    let problems = config.problems();
    let found = problems.iter().find_map(|problem| match problem {
        ConfigError::Invalid {
            setting: s,
            value: v,
            rule: r,
        } if *s == setting => Some((v.clone(), r.clone(), problem.to_string())),
        _ => None,
    });
    let Some((shown, rule_text, message)) = found else {
        panic!("expected a problem with `{setting}`, got {problems:?}");
    };
    assert_eq!(shown, value, "{message}");
    assert!(rule_text.contains(rule), "{message}");
    assert!(
        message.contains(setting) && message.contains(value),
        "{message}"
    );
    message
}

#[track_caller]
fn assert_valid(config: &PgConfig) {
    assert_eq!(config.problems().len(), 0, "{:?}", config.problems());
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = PgConfig::default();
    assert!(config.url.is_empty());
    assert_eq!(config.host, "");
    assert_eq!(config.port, None);
    assert_eq!(config.user, "");
    assert_eq!(config.dbname, "");
    assert!(config.password.is_empty());
    assert_eq!(config.sslmode, SslMode::Prefer);
    assert_eq!(config.sslrootcert, "");
    assert_eq!(config.application_name, "");
    assert_eq!(config.connect_timeout, Some(Duration::from_secs(10)));
    assert_eq!(config.statement_timeout, None);
    assert_eq!(config.idle_in_transaction_session_timeout, None);
    assert_eq!(config.statement_cache_capacity, 100);
    assert_eq!(config.recycling, Recycling::Verified);
    assert_valid(&config);
    assert!(Config::default().problems().is_empty());
}

#[test]
fn every_setting_has_a_postgres_name_and_variable() {
    let names: Vec<String> = Config::settings()
        .iter()
        .filter(|s| s.section() == Some("postgres"))
        .map(|s| s.name().to_owned())
        .collect();
    let expected = [
        "url",
        "host",
        "port",
        "user",
        "dbname",
        "password",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "application_name",
        "connect_timeout",
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "statement_cache_capacity",
        "recycling",
        "pooler",
        "pooler_server_idle_timeout",
        "pooler_client_idle_timeout",
    ];
    assert_eq!(
        names,
        expected.map(|n| format!("postgres.{n}")).to_vec(),
        "the [postgres] table"
    );
    assert_eq!(
        slotpool::config::env_var_for::<Config>("postgres.idle_in_transaction_session_timeout")
            .as_deref(),
        Some("SLOTPOOL_POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT")
    );
    // The pool's own settings stay at the top level.
    assert!(
        Config::settings()
            .iter()
            .any(|s| s.name() == "validation_idle_window")
    );
}

/// Every setting, from `SLOTPOOL_POSTGRES_*` variables.
#[test]
fn every_setting_is_overridden_by_its_variable() {
    let config = Config::load(
        None,
        None,
        vars(&[
            ("SLOTPOOL_POSTGRES_HOST", "db.internal"),
            ("SLOTPOOL_POSTGRES_PORT", "6543"),
            ("SLOTPOOL_POSTGRES_USER", "app"),
            ("SLOTPOOL_POSTGRES_DBNAME", "appdb"),
            ("SLOTPOOL_POSTGRES_PASSWORD", "from-env"),
            ("SLOTPOOL_POSTGRES_SSLMODE", "VERIFY-FULL"),
            ("SLOTPOOL_POSTGRES_SSLROOTCERT", "/etc/ca.pem"),
            ("SLOTPOOL_POSTGRES_APPLICATION_NAME", "billing"),
            ("SLOTPOOL_POSTGRES_CONNECT_TIMEOUT", "3s"),
            ("SLOTPOOL_POSTGRES_STATEMENT_TIMEOUT", "1500ms"),
            (
                "SLOTPOOL_POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
                "1m",
            ),
            ("SLOTPOOL_POSTGRES_STATEMENT_CACHE_CAPACITY", "7"),
            ("SLOTPOOL_POSTGRES_RECYCLING", "clean"),
            ("SLOTPOOL_MAX_SIZE", "3"),
        ]),
    )
    .unwrap();
    let pg = &config.postgres;
    assert_eq!(pg.host, "db.internal");
    assert_eq!(pg.port, Some(6543));
    assert_eq!(pg.user, "app");
    assert_eq!(pg.dbname, "appdb");
    assert_eq!(pg.password.expose(), "from-env");
    assert_eq!(pg.sslmode, SslMode::VerifyFull);
    assert_eq!(pg.sslrootcert, "/etc/ca.pem");
    assert_eq!(pg.application_name, "billing");
    assert_eq!(pg.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(pg.statement_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        pg.idle_in_transaction_session_timeout,
        Some(Duration::from_secs(60))
    );
    assert_eq!(pg.statement_cache_capacity, 7);
    assert_eq!(pg.recycling, Recycling::Clean);
    assert_eq!(config.pool.max_size, 3);

    let url = Config::load(
        None,
        None,
        vars(&[("SLOTPOOL_POSTGRES_URL", "postgresql://app@db/app")]),
    )
    .unwrap();
    assert_eq!(url.postgres.url.expose(), "postgresql://app@db/app");
    let off = Config::load(
        None,
        None,
        vars(&[("SLOTPOOL_POSTGRES_CONNECT_TIMEOUT", "off")]),
    )
    .unwrap();
    assert_eq!(off.postgres.connect_timeout, None);
}

/// A profile's `postgres` table, under `[defaults]`, and overridden by a
/// variable.
#[test]
fn profiles_carry_a_postgres_table() {
    let text = r#"
[defaults.postgres]
recycling = "fast"
statement_cache_capacity = 50

[profiles.prod]
max_size = 20

[profiles.prod.postgres]
url = "postgresql://app@db.prod:5433/app?target_session_attrs=read-write"
sslmode = "verify-full"
statement_timeout = "30s"
application_name = "api"
"#;
    let config = Config::from_toml_str(text, "prod").unwrap();
    assert_eq!(config.pool.max_size, 20);
    assert_eq!(config.postgres.sslmode, SslMode::VerifyFull);
    assert_eq!(config.postgres.recycling, Recycling::Fast);
    assert_eq!(config.postgres.statement_cache_capacity, 50);
    assert_eq!(
        config.postgres.statement_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(config.postgres.application_name, "api");

    let path = std::env::temp_dir().join(format!("slotpool-pg-config-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let loaded = Config::load(
        Some(&path),
        Some("prod"),
        vars(&[
            ("SLOTPOOL_POSTGRES_RECYCLING", "clean"),
            ("SLOTPOOL_POSTGRES_PASSWORD", "s3cret"),
        ]),
    );
    std::fs::remove_file(&path).unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(loaded.postgres.recycling, Recycling::Clean);
    assert_eq!(loaded.postgres.password.expose(), "s3cret");
    assert_eq!(loaded.postgres.sslmode, SslMode::VerifyFull);

    // An unknown key in the table is an error naming it.
    let error = Config::from_toml_str("[profiles.x.postgres]\nsslmod = \"require\"\n", "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("sslmod"), "{error}");
    assert!(
        error.contains("sslmode"),
        "suggests the right name: {error}"
    );
    let error = Config::from_toml_str("[profiles.x.postgres]\nsslmode = \"always\"\n", "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("verify-full"), "lists the modes: {error}");
}

#[test]
fn the_pools_derived_defaults_still_apply() {
    // `max_size` unset is raised to `min_idle` (a pool rule), through this
    // crate's Config as through the pool's own.
    let config = Config::from_toml_str("[profiles.x]\nmin_idle = 12\n", "x").unwrap();
    assert_eq!(config.pool.max_size, 12);
}

#[test]
fn keywords_are_case_insensitive_and_listed() {
    let config = Config::from_toml_str(
        "[profiles.x.postgres]\nsslmode = \"Verify-CA\"\nrecycling = \"FAST\"\n",
        "x",
    )
    .unwrap();
    assert_eq!(config.postgres.sslmode, SslMode::VerifyCa);
    assert_eq!(config.postgres.recycling, Recycling::Fast);
    assert_eq!(
        SslMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        ["disable", "prefer", "require", "verify-ca", "verify-full"]
    );
    assert_eq!(
        Recycling::ALL
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>(),
        ["fast", "verified", "clean"]
    );
}

// ---------------------------------------------------------------------------
// Validation rules
// ---------------------------------------------------------------------------

#[test]
fn port_must_be_a_tcp_port() {
    assert_invalid(
        &changed(|c| c.port = Some(0)),
        "postgres.port",
        "0",
        "1 to 65535",
    );
    assert_invalid(
        &changed(|c| c.port = Some(65_536)),
        "postgres.port",
        "65536",
        "1 to 65535",
    );
    assert_valid(&changed(|c| c.port = Some(65_535)));
}

#[test]
fn host_is_one_host() {
    assert_invalid(
        &changed(|c| c.host = "a,b".into()),
        "postgres.host",
        "\"a,b\"",
        "one host",
    );
    assert_invalid(
        &changed(|c| c.host = "a b".into()),
        "postgres.host",
        "\"a b\"",
        "one host",
    );
    assert_valid(&changed(|c| c.host = "/var/run/postgresql".into()));
}

#[test]
fn url_and_the_server_settings_exclude_each_other() {
    let with_url = |change: fn(&mut PgConfig)| {
        changed(|c| {
            c.url = "postgresql://app@db/app".into();
            change(c);
        })
    };
    assert_invalid(
        &with_url(|c| c.host = "other".into()),
        "postgres.host",
        "\"other\"",
        "url",
    );
    assert_invalid(
        &with_url(|c| c.port = Some(5433)),
        "postgres.port",
        "5433",
        "url",
    );
    assert_invalid(
        &with_url(|c| c.dbname = "other".into()),
        "postgres.dbname",
        "\"other\"",
        "url",
    );
    // The url names a user: the user setting may not name another.
    assert_invalid(
        &with_url(|c| c.user = "other".into()),
        "postgres.user",
        "\"other\"",
        "one place",
    );
    // A url without a password may be complemented by the setting.
    assert_valid(&with_url(|c| c.password = Secret::new("pw")));
    assert_valid(&changed(|c| {
        c.url = "host=db dbname=app".into();
        c.user = "app".into();
    }));
    let both = changed(|c| {
        c.url = "postgresql://app:pw@db/app".into();
        c.password = Secret::new("pw2");
    });
    assert_invalid(&both, "postgres.password", "\"[redacted]\"", "one place");
}

#[test]
fn url_must_not_set_what_a_setting_sets() {
    for key in [
        "sslmode",
        "sslrootcert",
        "application_name",
        "connect_timeout",
    ] {
        let value = if key == "sslmode" { "require" } else { "5" };
        let config = changed(|c| c.url = format!("host=db {key}={value}").as_str().into());
        let message = assert_invalid(
            &config,
            "postgres.url",
            &format!("\"host=db {key}={value}\""),
            &format!("`postgres.{key}`"),
        );
        assert!(message.contains("from_connection_string"), "{message}");
    }
}

#[test]
fn url_must_be_a_connection_string_tokio_postgres_accepts() {
    // A string that cannot be read is not shown at all: where its password
    // is cannot be known.
    assert_invalid(
        &changed(|c| c.url = "host=db port".into()),
        "postgres.url",
        "\"[unreadable connection string, not shown]\"",
        "expected `=`",
    );
    let message = assert_invalid(
        &changed(|c| c.url = "host=db colour=blue".into()),
        "postgres.url",
        "\"host=db colour=blue\"",
        "tokio-postgres",
    );
    assert!(message.contains("unknown option `colour`"), "{message}");
    assert_invalid(
        &changed(|c| c.url = "postgres://db/app?port=x".into()),
        "postgres.url",
        "\"postgres://db/app?port=x\"",
        "invalid value for option `port`",
    );
}

#[test]
fn sslrootcert_needs_a_verifying_mode() {
    for mode in [SslMode::Disable, SslMode::Prefer] {
        assert_invalid(
            &changed(|c| {
                c.sslmode = mode;
                c.sslrootcert = "/ca.pem".into();
            }),
            "postgres.sslrootcert",
            "\"/ca.pem\"",
            "no effect",
        );
    }
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        assert_valid(&changed(|c| {
            c.sslmode = mode;
            c.sslrootcert = "/ca.pem".into();
        }));
    }
}

#[test]
fn application_name_fits_the_server() {
    let long = "x".repeat(64);
    assert_invalid(
        &changed(|c| c.application_name = long.clone()),
        "postgres.application_name",
        &format!("\"{long}\""),
        "at most 63 bytes",
    );
    assert_valid(&changed(|c| c.application_name = "x".repeat(63)));
}

#[test]
fn timeouts_have_limits() {
    assert_invalid(
        &changed(|c| c.connect_timeout = Some(Duration::ZERO)),
        "postgres.connect_timeout",
        "\"0s\"",
        "> 0",
    );
    for (setting, set) in [
        (
            "postgres.statement_timeout",
            (|c: &mut PgConfig, d| c.statement_timeout = d) as fn(&mut PgConfig, Option<Duration>),
        ),
        (
            "postgres.idle_in_transaction_session_timeout",
            |c: &mut PgConfig, d| c.idle_in_transaction_session_timeout = d,
        ),
    ] {
        assert_invalid(
            &changed(|c| set(c, Some(Duration::from_micros(1500)))),
            setting,
            "\"1ms 500us\"",
            "whole number of milliseconds",
        );
        assert_invalid(
            &changed(|c| set(c, Some(Duration::ZERO))),
            setting,
            "\"0s\"",
            "from 1ms",
        );
        assert_invalid(
            &changed(|c| set(c, Some(Duration::from_millis(i32::MAX as u64 + 1)))),
            setting,
            &format!(
                "\"{}\"",
                humantime_text(Duration::from_millis(i32::MAX as u64 + 1))
            ),
            "2147483647ms",
        );
        assert_valid(&changed(|c| set(c, Some(Duration::from_millis(1)))));
        assert_valid(&changed(|c| set(c, None)));
    }
}

/// How the core writes a duration (the codec of the settings).
fn humantime_text(duration: Duration) -> String {
    use slotpool::config::schema::SettingValue;
    match duration.to_value() {
        slotpool::config::schema::Value::String(text) => text,
        other => panic!("{other:?}"),
    }
}

#[test]
fn statement_cache_has_a_ceiling() {
    assert_invalid(
        &changed(|c| c.statement_cache_capacity = 10_001),
        "postgres.statement_cache_capacity",
        "10001",
        "<= 10000",
    );
    assert_valid(&changed(|c| c.statement_cache_capacity = 0));
}

#[test]
fn names_and_secrets_have_no_nul() {
    assert_invalid(
        &changed(|c| c.user = "a\0b".into()),
        "postgres.user",
        "\"a\\u0000b\"",
        "NUL",
    );
    assert_invalid(
        &changed(|c| c.dbname = "a\0b".into()),
        "postgres.dbname",
        "\"a\\u0000b\"",
        "NUL",
    );
    assert_invalid(
        &changed(|c| c.password = Secret::new("a\0b")),
        "postgres.password",
        "\"[redacted]\"",
        "NUL",
    );
}

#[test]
fn every_problem_is_reported() {
    let config = changed(|c| {
        c.port = Some(0);
        c.statement_cache_capacity = 20_000;
        c.connect_timeout = Some(Duration::ZERO);
    });
    assert_eq!(config.problems().len(), 3, "{:?}", config.problems());
    let whole = Config {
        postgres: config,
        ..Config::default()
    };
    assert_eq!(whole.problems().len(), 3);
    assert!(whole.validate().is_err());
}

// ---------------------------------------------------------------------------
// Connection strings and tokio-postgres configurations
// ---------------------------------------------------------------------------

#[test]
fn connection_strings_move_their_own_parameters_to_settings() {
    let config = PgConfig::from_connection_string(
        "host=db.internal port=5433 user=app dbname=appdb password='p w' \
         sslmode=verify-full sslrootcert=/etc/ca.pem application_name=api \
         connect_timeout=4 target_session_attrs=read-write",
    )
    .unwrap();
    assert_eq!(config.sslmode, SslMode::VerifyFull);
    assert_eq!(config.sslrootcert, "/etc/ca.pem");
    assert_eq!(config.application_name, "api");
    assert_eq!(config.connect_timeout, Some(Duration::from_secs(4)));
    assert_eq!(config.password.expose(), "p w");
    assert_eq!(
        config.url.expose(),
        "host=db.internal port=5433 user=app dbname=appdb target_session_attrs=read-write"
    );

    let url: PgConfig = "postgresql://app:p%40ss@db:5433/appdb?sslmode=verify-ca&connect_timeout=0"
        .parse()
        .unwrap();
    assert_eq!(url.sslmode, SslMode::VerifyCa);
    assert_eq!(url.password.expose(), "p@ss");
    assert_eq!(url.connect_timeout, None, "libpq: 0 waits forever");
    assert_eq!(url.url.expose(), "postgresql://app@db:5433/appdb");

    let error = PgConfig::from_connection_string("host=db sslmode=sometimes")
        .unwrap_err()
        .to_string();
    assert!(error.contains("sslmode=sometimes"), "{error}");
    let error = PgConfig::from_connection_string("host=db connect_timeout=soon")
        .unwrap_err()
        .to_string();
    assert!(error.contains("whole number of seconds"), "{error}");
}

#[test]
fn a_manager_builds_from_each_source() {
    let from_text = PgManager::from_connection_string(
        "host=db.internal port=6000 user=app dbname=appdb sslmode=require",
    )
    .unwrap();
    assert_eq!(from_text.target(), "db.internal:6000/appdb");
    assert_eq!(from_text.config().sslmode, SslMode::Require);

    let fields = PgManager::new(changed(|c| {
        c.host = "h".into();
        c.dbname = "d".into();
    }))
    .unwrap();
    assert_eq!(fields.target(), "h:5432/d");
    let defaults = PgManager::new(PgConfig::default()).unwrap();
    assert_eq!(defaults.target(), "localhost:5432/(the user's database)");

    let mut tokio_config = tokio_postgres::Config::new();
    tokio_config
        .host("a")
        .host("b")
        .port(1)
        .port(2)
        .user("app")
        .dbname("d");
    let from_tokio = PgManager::from_tokio_postgres(
        tokio_config.clone(),
        changed(|c| c.sslmode = SslMode::Disable),
    )
    .unwrap();
    assert_eq!(from_tokio.target(), "a:1,b:2/d");

    let error =
        PgManager::from_tokio_postgres(tokio_config, changed(|c| c.host = "x".into())).unwrap_err();
    assert!(
        matches!(
            &error,
            PgError::Config(ConfigError::Invalid {
                setting: "postgres.host",
                ..
            })
        ),
        "{error}"
    );
}

#[test]
fn an_invalid_configuration_fails_the_manager() {
    let error = PgManager::new(changed(|c| c.port = Some(0))).unwrap_err();
    assert!(matches!(error, PgError::Config(_)), "{error}");
    assert_eq!(error.class(), slotpool::ErrorClass::Permanent);
    assert!(error.to_string().contains("postgres.port"), "{error}");
}

#[test]
fn trusted_roots_are_loaded_when_the_manager_is_built() {
    let missing = PgManager::new(changed(|c| {
        c.sslmode = SslMode::VerifyFull;
        c.sslrootcert = "/nonexistent/ca.pem".into();
    }))
    .unwrap_err();
    let text = missing.to_string();
    assert!(matches!(missing, PgError::Tls { .. }), "{text}");
    assert!(
        text.contains("postgres.sslrootcert") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
    assert_eq!(missing.class(), slotpool::ErrorClass::Permanent);

    let not_pem =
        std::env::temp_dir().join(format!("slotpool-pg-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    let empty = PgManager::new(changed(|c| {
        c.sslmode = SslMode::VerifyCa;
        c.sslrootcert = not_pem.display().to_string();
    }));
    std::fs::remove_file(&not_pem).unwrap();
    let text = empty.unwrap_err().to_string();
    assert!(text.contains("holds no PEM certificate"), "{text}");

    // `require` without a root file needs none; with one it reads it.
    assert!(PgManager::new(changed(|c| c.sslmode = SslMode::Require)).is_ok());
    assert!(
        PgManager::new(changed(|c| {
            c.sslmode = SslMode::Require;
            c.sslrootcert = "/nonexistent/ca.pem".into();
        }))
        .is_err()
    );
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/untrusted-ca.pem"
    );
    assert!(
        PgManager::new(changed(|c| {
            c.sslmode = SslMode::VerifyFull;
            c.sslrootcert = ca.into();
        }))
        .is_ok()
    );
}

#[test]
fn a_configuration_without_a_password_round_trips_through_toml() {
    let url = ConnectionString::new("postgresql://app@db/app?target_session_attrs=any");
    assert_eq!(url.redacted(), url.expose(), "nothing to redact");
    let config = Config {
        postgres: changed(|c| {
            c.url = url;
            c.sslmode = SslMode::VerifyFull;
            c.statement_timeout = Some(Duration::from_millis(2500));
            c.recycling = Recycling::Clean;
        }),
        ..Config::default()
    };
    let text = config
        .to_toml_string()
        .replace("\n[postgres]", "\n[profiles.p.postgres]");
    let back = Config::from_toml_str(&format!("[profiles.p]\n{text}"), "p").unwrap();
    assert_eq!(back, config);
}

/// Loads profile `prod` of `text` (a temporary file) under `env`.
fn load_prod(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let path = std::env::temp_dir().join(format!(
        "slotpool-pg-pooler-{}-{}.toml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    let loaded = Config::load(Some(&path), Some("prod"), vars(env));
    std::fs::remove_file(&path).unwrap();
    loaded
}

/// `pooler` and the pooler's timeouts from a profile and variables: the
/// pool's lifetimes the user did not set are derived below the pooler's
/// timeouts; one the user set above them is rejected, naming both.
#[test]
fn pooler_settings_load_and_nest_the_pools_lifetimes() {
    let client_idle = [("SLOTPOOL_POSTGRES_POOLER_CLIENT_IDLE_TIMEOUT", "300s")];
    let text = r#"
[profiles.prod.postgres]
url = "postgresql://app@pgbouncer:6432/app"
pooler = "transaction"
pooler_server_idle_timeout = "600s"
"#;
    let config = load_prod(text, &client_idle).unwrap();
    assert_eq!(
        config.postgres.pooler,
        slotpool_postgres::PoolerMode::Transaction
    );
    assert_eq!(
        config.postgres.pooler_client_idle_timeout,
        Some(Duration::from_secs(300))
    );
    assert_eq!(config.pool.max_lifetime, Some(Duration::from_secs(225)));
    assert_eq!(config.pool.idle_timeout, Some(Duration::from_secs(150)));

    let explicit = text.replacen(
        "[profiles.prod.postgres]",
        "[profiles.prod]\nidle_timeout = \"400s\"\n\n[profiles.prod.postgres]",
        1,
    );
    let error = load_prod(&explicit, &client_idle)
        .expect_err("an explicit idle_timeout above the pooler's");
    let message = error.to_string();
    assert!(message.contains("idle_timeout"), "{message}");
    assert!(
        message.contains("postgres.pooler_client_idle_timeout"),
        "{message}"
    );

    // The same in code: a default is derived, never rejected.
    let mut config = Config::default();
    config.postgres.pooler = slotpool_postgres::PoolerMode::Transaction;
    config.postgres.pooler_client_idle_timeout = Some(Duration::from_secs(90));
    assert!(!config.problems().is_empty(), "not derived yet");
    config.derive_unset_defaults();
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    assert_eq!(config.pool.max_lifetime, Some(Duration::from_secs(67)));

    let wrong = load_prod("[profiles.prod.postgres]\npooler = \"session\"\n", &[]);
    assert!(wrong.is_err());
}

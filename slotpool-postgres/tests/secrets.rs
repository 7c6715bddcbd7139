#![cfg(not(feature = "loom"))]
//! Secrets stay secret: no password or token in `Debug` output, error
//! messages, validation messages, the serialised configuration (serde and
//! TOML write `"[redacted]"`, and reading the marker back is an error), or
//! any log line a connect writes, successful or not.

mod support;

use std::time::Duration;

use slotpool::AsyncManager;
use slotpool::config::ConfigError;
use slotpool_postgres::{
    Config, ConnectionString, Credentials, PgConfig, PgManager, REDACTED, Secret, SslMode,
    StaticCredentials,
};
use support::{PG_HOST, PG_PORT, logs, monitor_or_skip, settings, unique_tag};

const PASSWORD: &str = "Sup3r-s3cret-p4ss";
const URL_PASSWORD: &str = "Url-s3cret-p4ss";

fn assert_hidden(what: &str, text: &str) {
    for secret in [PASSWORD, URL_PASSWORD] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn with_secrets() -> Config {
    let mut config = Config::default();
    config.postgres.url = format!("postgresql://app:{URL_PASSWORD}@db.internal/app")
        .as_str()
        .into();
    config.postgres.user = String::new();
    config
}

#[test]
fn debug_output_redacts() {
    let secret = Secret::new(PASSWORD);
    assert_eq!(format!("{secret:?}"), format!("Secret({REDACTED})"));
    let credentials = Credentials::new("app", PASSWORD);
    assert_hidden("Credentials", &format!("{credentials:?}"));
    assert!(format!("{credentials:?}").contains("app"));
    assert_hidden(
        "StaticCredentials",
        &format!("{:?}", StaticCredentials::new(credentials)),
    );
    let config = with_secrets();
    let debug = format!("{config:?}");
    assert_hidden("Config", &debug);
    assert!(
        debug.contains("postgresql://app:[redacted]@db.internal/app"),
        "{debug}"
    );
    let pg = PgConfig {
        password: Secret::new(PASSWORD),
        ..PgConfig::default()
    };
    assert_hidden("PgConfig", &format!("{pg:?}"));
    assert_hidden("PgConfig (pretty)", &format!("{pg:#?}"));
    let manager = PgManager::new(pg).unwrap();
    manager.set_credentials(Credentials::new("rotated", PASSWORD));
    assert_hidden("PgManager", &format!("{manager:?}"));
    // A key=value string, quoted and in the query of a URL.
    for url in [
        format!("host=db password='{URL_PASSWORD}' user=app"),
        format!("postgres://app@db/app?password={URL_PASSWORD}&sslmode=require"),
    ] {
        assert_hidden(
            "ConnectionString",
            &format!("{:?}", ConnectionString::new(url)),
        );
    }
}

#[test]
fn serialised_configuration_redacts_and_the_marker_does_not_read_back() {
    let mut config = with_secrets();
    config.postgres.url = "postgresql://app@db.internal/app".into();
    config.postgres.password = Secret::new(PASSWORD);
    let json = serde_json::to_string(&config).unwrap();
    assert_hidden("serde", &json);
    assert!(json.contains(r#""password":"[redacted]""#), "{json}");
    let toml = config.to_toml_string();
    assert_hidden("to_toml_string", &toml);
    assert!(toml.contains("password = \"[redacted]\""), "{toml}");

    let error = serde_json::from_str::<Config>(&json)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("postgres.password") && error.contains("redaction marker"),
        "{error}"
    );
    let error = Config::from_toml_str(
        &format!("[profiles.p.postgres]\npassword = \"{REDACTED}\"\n"),
        "p",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("postgres.password") && error.contains("redaction marker"),
        "{error}"
    );

    // A url's password too.
    let with_url = with_secrets();
    let json = serde_json::to_string(&with_url).unwrap();
    assert_hidden("serde (url)", &json);
    let error = serde_json::from_str::<Config>(&json)
        .unwrap_err()
        .to_string();
    assert!(error.contains("postgres.url"), "{error}");

    // Without secrets nothing is lost.
    let plain = Config::default();
    let back: Config = serde_json::from_str(&serde_json::to_string(&plain).unwrap()).unwrap();
    assert_eq!(back, plain);
}

#[test]
fn an_unquoted_password_in_toml_is_taken_not_echoed() {
    let config =
        Config::from_toml_str("[profiles.p.postgres]\npassword = 20240607\n", "p").unwrap();
    assert_eq!(config.postgres.password.expose(), "20240607");
    let config = Config::load(
        None,
        None,
        [("SLOTPOOL_POSTGRES_PASSWORD".to_owned(), PASSWORD.to_owned())],
    )
    .unwrap();
    assert_eq!(config.postgres.password.expose(), PASSWORD);
}

#[test]
fn validation_and_parse_messages_redact() {
    // A password breaking a rule.
    let config = PgConfig {
        password: Secret::new(format!("{PASSWORD}\0")),
        ..PgConfig::default()
    };
    let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1);
    assert_hidden("a password rule", &problems[0]);
    assert!(problems[0].contains("[redacted]"), "{}", problems[0]);

    // A url with a password breaking a rule.
    for url in [
        format!("postgresql://app:{URL_PASSWORD}@db/app?sslmode=require"),
        format!("host=db password={URL_PASSWORD} colour=blue"),
        format!("host=db password={URL_PASSWORD} oops"),
        format!("host=db password='{URL_PASSWORD}"),
        format!("postgres://app:{URL_PASSWORD}@db/app?port=x"),
    ] {
        let config = PgConfig {
            url: url.as_str().into(),
            ..PgConfig::default()
        };
        let problems = config.problems();
        assert!(!problems.is_empty(), "{url}");
        for problem in &problems {
            assert_hidden("a url rule", &problem.to_string());
            assert_hidden("a url rule (Debug)", &format!("{problem:?}"));
        }
        let error = PgConfig::from_connection_string(&url);
        if let Err(error) = error {
            assert_hidden("from_connection_string", &error.to_string());
        }
        let manager = PgManager::new(config).unwrap_err();
        assert_hidden("PgManager::new", &manager.to_string());
        assert_hidden("PgManager::new (Debug)", &format!("{manager:?}"));
    }

    // A password with a stray space, unquoted: the part after the space
    // would be read as a keyword; the message must not quote it.
    let config = PgConfig {
        url: format!("host=db password=left {PASSWORD}").as_str().into(),
        ..PgConfig::default()
    };
    for problem in config.problems() {
        let ConfigError::Invalid { value, rule, .. } = &problem else {
            panic!("{problem:?}");
        };
        assert_hidden("value", value);
        assert_hidden("rule", rule);
    }
}

/// Every log line a connect writes, through success and failure.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_hold_the_password() {
    let test = "logs_never_hold_the_password";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let (captured, _guard) = logs::capture();
    let tag = unique_tag("logs");

    // Trust authentication: the password is configured and unused.
    let manager = PgManager::new(PgConfig {
        password: Secret::new(PASSWORD),
        ..settings(&tag)
    })
    .unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.batch_execute("SET search_path TO pg_catalog")
        .await
        .unwrap();
    manager.reset(&mut conn).await.unwrap();
    monitor.terminate_all(&tag).await;
    support::eventually(
        "the connection task to end",
        Duration::from_secs(5),
        || async { conn.is_closed() },
    )
    .await;

    // A refused connect, a timed-out one, and a provider with a secret.
    let refused = PgManager::new(PgConfig {
        port: Some(1),
        password: Secret::new(PASSWORD),
        ..settings(&tag)
    })
    .unwrap();
    let error = refused.connect().await.unwrap_err();
    assert_hidden("a refused connect", &format!("{error} {error:?}"));
    refused.set_credentials(Credentials::new("app", URL_PASSWORD));
    let error = refused.connect().await.unwrap_err();
    assert_hidden(
        "a refused connect (provider)",
        &format!("{error} {error:?}"),
    );

    // With the password setup: a real SCRAM exchange, right and wrong.
    if let Some(role) = monitor.password_role(test, PASSWORD).await {
        let manager = PgManager::new(PgConfig {
            user: role.name.clone(),
            password: Secret::new(PASSWORD),
            sslmode: SslMode::Require,
            ..settings(&tag)
        })
        .unwrap();
        drop(manager.connect().await.unwrap());
        manager.set_credentials(Credentials::new(role.name.clone(), URL_PASSWORD));
        let error = manager.connect().await.unwrap_err();
        assert_hidden("a wrong password", &format!("{error} {error:?}"));
    }

    let text = captured.text();
    assert!(
        text.contains("connecting to PostgreSQL"),
        "logs were captured: {text}"
    );
    assert!(
        text.contains("reset a returned PostgreSQL connection"),
        "{text}"
    );
    assert!(text.contains("ended with an error"), "{text}");
    assert!(text.contains(&format!("{PG_HOST}:{PG_PORT}")), "{text}");
    assert_hidden("the logs", &text);
}

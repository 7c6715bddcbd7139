#![cfg(not(feature = "loom"))]
//! Password authentication and credential rotation against the real
//! server. The server trusts local connections, so these tests need
//! `scripts/pg-test-setup.sh` (members of `slotpool_password_auth` must use
//! a SCRAM password); without it they skip loudly, and fail under
//! `SLOTPOOL_REQUIRE_PG=1`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use slotpool::{AsyncManager, ErrorClass};
use slotpool_postgres::{Credentials, PgConfig, PgError, PgManager, Secret};
use support::{PG_DB, PG_HOST, PG_PORT, first_value, monitor_or_skip, settings, unique_tag};

const RIGHT: &str = "Corr3ct-h0rse-battery";
const WRONG: &str = "Wr0ng-st4ple-guess";

fn with_password(tag: &str, user: &str, password: &str) -> PgConfig {
    PgConfig {
        user: user.to_owned(),
        password: Secret::new(password),
        ..settings(tag)
    }
}

async fn current_user(manager: &PgManager) -> Result<String, PgError> {
    let conn = manager.connect().await?;
    let messages = conn.simple_query("SELECT current_user").await?;
    Ok(first_value(&messages).expect("a row"))
}

#[tokio::test]
async fn the_password_setting_authenticates() {
    let test = "the_password_setting_authenticates";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(role) = monitor.password_role(test, RIGHT).await else {
        return;
    };
    let tag = unique_tag("password");
    let manager = PgManager::new(with_password(&tag, &role.name, RIGHT)).unwrap();
    assert_eq!(current_user(&manager).await.unwrap(), role.name);

    let manager = PgManager::new(with_password(&tag, &role.name, WRONG)).unwrap();
    let error = manager.connect().await.expect_err("a wrong password");
    assert_eq!(error.code().map(|c| c.code()), Some("28P01"), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("28P01") && text.contains("password authentication failed"),
        "{text}"
    );
    assert!(text.contains(&role.name), "names the user: {text}");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
    let debug = format!("{error:?}");
    for shown in [&text, &debug] {
        assert!(!shown.contains(WRONG) && !shown.contains(RIGHT), "{shown}");
    }

    // No password at all, where one is required.
    let manager = PgManager::new(with_password(&tag, &role.name, "")).unwrap();
    let error = manager.connect().await.expect_err("no password");
    assert!(error.to_string().contains("password missing"), "{error}");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
}

#[tokio::test]
async fn a_password_in_the_url_authenticates() {
    let test = "a_password_in_the_url_authenticates";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(role) = monitor.password_role(test, RIGHT).await else {
        return;
    };
    let config = PgConfig {
        url: format!(
            "postgresql://{}:{RIGHT}@{PG_HOST}:{PG_PORT}/{PG_DB}",
            role.name
        )
        .as_str()
        .into(),
        ..PgConfig {
            host: String::new(),
            port: None,
            user: String::new(),
            dbname: String::new(),
            ..settings(&unique_tag("url_password"))
        }
    };
    let manager = PgManager::new(config).unwrap();
    assert_eq!(current_user(&manager).await.unwrap(), role.name);
    // The url's password is kept out of everything printed.
    assert!(!format!("{manager:?}").contains(RIGHT));
}

#[tokio::test]
async fn the_provider_is_asked_for_every_connection() {
    let test = "the_provider_is_asked_for_every_connection";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(role) = monitor.password_role(test, RIGHT).await else {
        return;
    };
    let manager = PgManager::new(settings(&unique_tag("provider"))).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (counted, user) = (calls.clone(), role.name.clone());
    manager.set_credentials_provider(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let user = user.clone();
        async move { Ok(Credentials::new(user, RIGHT)) }
    });
    for expected in 1..=3 {
        assert_eq!(current_user(&manager).await.unwrap(), role.name);
        assert_eq!(calls.load(Ordering::SeqCst), expected);
    }
}

/// Rotation: the role's password changes on the server, the manager gets
/// the new one, and the next connect uses it; connections already open are
/// not affected (that is what `pool.evict_idle()` is for).
#[tokio::test]
async fn rotated_credentials_apply_from_the_next_connect() {
    let test = "rotated_credentials_apply_from_the_next_connect";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let Some(role) = monitor.password_role(test, RIGHT).await else {
        return;
    };
    let tag = unique_tag("rotation");
    let manager = PgManager::new(with_password(&tag, &role.name, RIGHT)).unwrap();
    let old = manager.connect().await.unwrap();

    let rotated = "R0tated-s3cret";
    monitor
        .exec(&format!(
            "ALTER ROLE \"{}\" PASSWORD '{rotated}'",
            role.name
        ))
        .await;
    let error = manager
        .connect()
        .await
        .expect_err("the old password is gone");
    assert_eq!(error.code().map(|c| c.code()), Some("28P01"), "{error}");

    manager.set_credentials(Credentials::new(role.name.clone(), rotated));
    assert_eq!(current_user(&manager).await.unwrap(), role.name);
    // The session opened with the old password lives on until evicted.
    assert!(old.simple_query("SELECT 1").await.is_ok());
    assert_eq!(monitor.count(&tag).await, 1, "only `old` is left open");
}

#[tokio::test]
async fn a_failing_provider_fails_the_connect_transiently() {
    let Some(_monitor) = monitor_or_skip("a_failing_provider_fails_the_connect_transiently").await
    else {
        return;
    };
    let manager = PgManager::new(settings(&unique_tag("provider_error"))).unwrap();
    manager.set_credentials_provider(|| async { Err("the secret store is sealed".into()) });
    let error = manager.connect().await.expect_err("no credentials");
    assert!(matches!(error, PgError::Credentials { .. }), "{error}");
    assert!(
        error.to_string().contains("the secret store is sealed"),
        "{error}"
    );
    assert_eq!(manager.classify(&error), ErrorClass::Transient);
}

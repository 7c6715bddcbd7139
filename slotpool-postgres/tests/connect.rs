#![cfg(not(feature = "loom"))]
//! Each connection setting against the real server: a test per setting
//! that fails if the setting were ignored. Every test skips loudly when the
//! server is unreachable, and fails under `SLOTPOOL_REQUIRE_PG=1`.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slotpool::{AsyncManager, ErrorClass};
use slotpool_postgres::{PgConfig, PgConnection, PgError, PgManager, SslMode};
use support::proxy::{Proxy, Silence, Silent};
use support::{
    PG_DB, PG_HOST, PG_PORT, PG_USER, first_value, monitor_or_skip, settings, unique_tag,
};

async fn open(config: PgConfig) -> (PgManager, PgConnection) {
    let manager = PgManager::new(config).expect("valid settings");
    let conn = manager.connect().await.expect("connect");
    (manager, conn)
}

async fn text(conn: &PgConnection, sql: &str) -> Option<String> {
    first_value(&conn.simple_query(sql).await.expect(sql))
}

#[tokio::test]
async fn url_names_the_server_user_and_database() {
    let Some(monitor) = monitor_or_skip("url_names_the_server_user_and_database").await else {
        return;
    };
    let tag = unique_tag("url");
    let config = PgConfig {
        url: format!("postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/test")
            .as_str()
            .into(),
        sslmode: SslMode::Disable,
        application_name: tag.clone(),
        ..PgConfig::default()
    };
    let (_manager, conn) = open(config).await;
    assert_eq!(
        text(&conn, "SELECT current_database()").await.as_deref(),
        Some("test")
    );
    assert_eq!(
        text(&conn, "SELECT current_user").await.as_deref(),
        Some(PG_USER)
    );
    assert_eq!(monitor.count(&tag).await, 1);
}

#[tokio::test]
async fn user_and_dbname_settings_are_used() {
    let Some(monitor) = monitor_or_skip("user_and_dbname_settings_are_used").await else {
        return;
    };
    let role = monitor.temp_role("user", "").await;
    let tag = unique_tag("user");
    let config = PgConfig {
        user: role.name.clone(),
        dbname: "test".into(),
        ..settings(&tag)
    };
    let (_manager, conn) = open(config).await;
    assert_eq!(
        text(&conn, "SELECT current_user").await,
        Some(role.name.clone())
    );
    assert_eq!(
        text(&conn, "SELECT current_database()").await.as_deref(),
        Some("test")
    );
    drop(conn);
}

#[tokio::test]
async fn port_setting_is_used() {
    let Some(monitor) = monitor_or_skip("port_setting_is_used").await else {
        return;
    };
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], PG_PORT))).unwrap();
    let tag = unique_tag("port");
    let config = PgConfig {
        port: Some(u32::from(proxy.port())),
        ..settings(&tag)
    };
    let (manager, conn) = open(config).await;
    assert_eq!(monitor.count(&tag).await, 1);
    // The connection runs through the proxy: taking it away closes it.
    proxy.blackhole();
    support::eventually(
        "the client to see its socket close",
        Duration::from_secs(5),
        || async { conn.is_closed() },
    )
    .await;
    let error = manager
        .connect()
        .await
        .expect_err("the proxy refuses new connections");
    assert!(matches!(error, PgError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn host_setting_is_used() {
    let Some(monitor) = monitor_or_skip("host_setting_is_used").await else {
        return;
    };
    // A unix-socket directory as the host: the server sees no client
    // address, which only a socket connection gives.
    let directory = monitor
        .value("SELECT split_part(current_setting('unix_socket_directories'), ',', 1)")
        .await
        .expect("a socket directory");
    let tag = unique_tag("host");
    let (_manager, conn) = open(PgConfig {
        host: directory.trim().to_owned(),
        ..settings(&tag)
    })
    .await;
    assert_eq!(
        text(&conn, "SELECT inet_client_addr() IS NULL")
            .await
            .as_deref(),
        Some("t")
    );
    // Another loopback address, where nothing listens.
    let manager = PgManager::new(PgConfig {
        host: "127.0.0.2".into(),
        ..settings(&tag)
    })
    .unwrap();
    let error = manager
        .connect()
        .await
        .expect_err("nothing listens on 127.0.0.2");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
}

#[tokio::test]
async fn application_name_is_sent_at_startup() {
    let Some(monitor) = monitor_or_skip("application_name_is_sent_at_startup").await else {
        return;
    };
    let tag = unique_tag("appname");
    let (_manager, conn) = open(settings(&tag)).await;
    assert_eq!(
        text(&conn, "SHOW application_name").await,
        Some(tag.clone())
    );
    let source = text(
        &conn,
        "SELECT source FROM pg_settings WHERE name = 'application_name'",
    )
    .await;
    assert_eq!(
        source.as_deref(),
        Some("client"),
        "a startup parameter, not a SET"
    );
    assert_eq!(monitor.count(&tag).await, 1);
}

#[tokio::test]
async fn statement_timeout_is_a_startup_option() {
    let Some(_monitor) = monitor_or_skip("statement_timeout_is_a_startup_option").await else {
        return;
    };
    let tag = unique_tag("stmt_timeout");
    let (manager, conn) = open(PgConfig {
        statement_timeout: Some(Duration::from_millis(1500)),
        ..settings(&tag)
    })
    .await;
    assert_eq!(
        text(&conn, "SHOW statement_timeout").await.as_deref(),
        Some("1500ms")
    );
    let source = text(
        &conn,
        "SELECT source FROM pg_settings WHERE name = 'statement_timeout'",
    )
    .await;
    assert_eq!(
        source.as_deref(),
        Some("client"),
        "sent in the startup packet"
    );
    let started = Instant::now();
    let error = conn
        .batch_execute("SELECT pg_sleep(10)")
        .await
        .expect_err("the server cancels it");
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = PgError::from(error);
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");
    assert!(error.to_string().contains("57014"), "{error}");
    // A cancelled statement leaves the connection usable.
    assert_eq!(manager.classify(&error), ErrorClass::Transient);
    assert_eq!(text(&conn, "SELECT 1").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn idle_in_transaction_timeout_is_a_startup_option() {
    let Some(_monitor) = monitor_or_skip("idle_in_transaction_timeout_is_a_startup_option").await
    else {
        return;
    };
    let tag = unique_tag("idle_tx");
    let (manager, mut conn) = open(PgConfig {
        idle_in_transaction_session_timeout: Some(Duration::from_millis(200)),
        ..settings(&tag)
    })
    .await;
    assert_eq!(
        text(&conn, "SHOW idle_in_transaction_session_timeout")
            .await
            .as_deref(),
        Some("200ms")
    );
    conn.batch_execute("BEGIN").await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let error = PgError::from(conn.batch_execute("SELECT 1").await.expect_err("ended"));
    // The server ended the session (FATAL 25P03, or the closed socket if
    // the connection task read the end first): the connection is finished.
    assert_eq!(manager.classify(&error), ErrorClass::Permanent, "{error}");
    support::eventually("the client to close", Duration::from_secs(5), || async {
        conn.is_closed()
    })
    .await;
    assert!(manager.has_broken(&mut conn));
}

#[tokio::test]
async fn url_options_are_kept_and_the_timeouts_added() {
    let Some(_monitor) = monitor_or_skip("url_options_are_kept_and_the_timeouts_added").await
    else {
        return;
    };
    let tag = unique_tag("options");
    let (_manager, conn) = open(PgConfig {
        url: format!(
            "host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB} \
             options='-c search_path=pg_catalog'"
        )
        .as_str()
        .into(),
        sslmode: SslMode::Disable,
        application_name: tag,
        statement_timeout: Some(Duration::from_secs(3)),
        idle_in_transaction_session_timeout: Some(Duration::from_secs(4)),
        ..PgConfig::default()
    })
    .await;
    assert_eq!(
        text(&conn, "SHOW search_path").await.as_deref(),
        Some("pg_catalog")
    );
    assert_eq!(
        text(&conn, "SHOW statement_timeout").await.as_deref(),
        Some("3s")
    );
    assert_eq!(
        text(&conn, "SHOW idle_in_transaction_session_timeout")
            .await
            .as_deref(),
        Some("4s")
    );
}

/// tokio-postgres's own `connect_timeout` covers only the TCP connect; a
/// server that accepts and never answers would hang the connect forever.
#[tokio::test]
async fn connect_timeout_bounds_the_whole_connect() {
    let Some(_monitor) = monitor_or_skip("connect_timeout_bounds_the_whole_connect").await else {
        return;
    };
    for (silence, sslmode) in [
        (Silence::Always, SslMode::Disable),
        (Silence::AfterTlsYes, SslMode::Require),
    ] {
        let silent = Silent::start(silence).unwrap();
        let manager = PgManager::new(PgConfig {
            port: Some(u32::from(silent.port())),
            sslmode,
            connect_timeout: Some(Duration::from_millis(300)),
            ..settings(&unique_tag("connect_timeout"))
        })
        .unwrap();
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(10), manager.connect())
            .await
            .expect("bounded by connect_timeout, not by this test");
        let error = outcome.expect_err("nothing answers");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
            "{silence:?}: {elapsed:?}"
        );
        assert!(matches!(error, PgError::ConnectTimeout { .. }), "{error}");
        assert!(
            error.to_string().contains("connect_timeout (300ms)"),
            "{error}"
        );
        assert_eq!(manager.classify(&error), ErrorClass::Transient);
    }

    // "off": nothing bounds it (so the setting is what bounded it above).
    let silent = Silent::start(Silence::Always).unwrap();
    let manager = PgManager::new(PgConfig {
        port: Some(u32::from(silent.port())),
        connect_timeout: None,
        ..settings(&unique_tag("connect_timeout_off"))
    })
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), manager.connect())
            .await
            .is_err(),
        "without connect_timeout the connect waits"
    );
}

#[tokio::test]
async fn dropping_a_connection_ends_its_backend() {
    let Some(monitor) = monitor_or_skip("dropping_a_connection_ends_its_backend").await else {
        return;
    };
    let tag = unique_tag("drop");
    let (_manager, conn) = open(settings(&tag)).await;
    assert_eq!(monitor.count(&tag).await, 1);
    drop(conn);
    support::eventually("the backend to exit", Duration::from_secs(5), || async {
        monitor.count(&tag).await == 0
    })
    .await;
}

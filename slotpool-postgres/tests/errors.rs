#![cfg(not(feature = "loom"))]
//! Fatal-error classification with real errors from the real server: a
//! missing database, a missing role, a closed port, a role over its
//! connection limit, an administrator's termination, an ordinary SQL error.
//! (A wrong password, 28P01, is in `auth.rs`, since it needs the password
//! setup.)

mod support;

use std::net::TcpListener;
use std::time::Duration;

use slotpool::{AsyncManager, ErrorClass};
use slotpool_postgres::{PgConfig, PgError, PgManager, classify};
use support::{monitor_or_skip, settings, unique_tag};

async fn connect_error(config: PgConfig) -> (PgManager, PgError) {
    let manager = PgManager::new(config).expect("valid settings");
    let error = manager.connect().await.expect_err("the connect fails");
    (manager, error)
}

#[tokio::test]
async fn a_missing_database_is_permanent() {
    let Some(_monitor) = monitor_or_skip("a_missing_database_is_permanent").await else {
        return;
    };
    let tag = unique_tag("no_db");
    let database = format!("no_such_db_{}", std::process::id());
    let (manager, error) = connect_error(PgConfig {
        dbname: database.clone(),
        ..settings(&tag)
    })
    .await;
    assert!(error.is_connect());
    assert_eq!(error.code().map(|c| c.code()), Some("3D000"), "{error}");
    let text = error.to_string();
    assert!(text.contains("3D000") && text.contains(&database), "{text}");
    assert!(text.contains("127.0.0.1:5432"), "names the server: {text}");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
}

#[tokio::test]
async fn a_missing_role_is_permanent() {
    let Some(_monitor) = monitor_or_skip("a_missing_role_is_permanent").await else {
        return;
    };
    let (manager, error) = connect_error(PgConfig {
        user: format!("no_such_role_{}", std::process::id()),
        ..settings(&unique_tag("no_role"))
    })
    .await;
    assert_eq!(error.code().map(|c| c.code()), Some("28000"), "{error}");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);
}

#[tokio::test]
async fn a_closed_port_is_transient() {
    let Some(_monitor) = monitor_or_skip("a_closed_port_is_transient").await else {
        return;
    };
    // A port that was free a moment ago: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (manager, error) = connect_error(PgConfig {
        port: Some(u32::from(port)),
        ..settings(&unique_tag("closed_port"))
    })
    .await;
    assert!(matches!(error, PgError::Connect { .. }), "{error}");
    assert_eq!(error.code(), None);
    let text = error.to_string();
    assert!(text.contains("error connecting to server"), "{text}");
    assert!(text.contains("refused"), "the I/O cause is shown: {text}");
    assert_eq!(manager.classify(&error), ErrorClass::Transient);
}

#[tokio::test]
async fn too_many_connections_is_transient() {
    let Some(monitor) = monitor_or_skip("too_many_connections_is_transient").await else {
        return;
    };
    let role = monitor.temp_role("limit", "CONNECTION LIMIT 0").await;
    let (manager, error) = connect_error(PgConfig {
        user: role.name.clone(),
        ..settings(&unique_tag("too_many"))
    })
    .await;
    assert_eq!(error.code().map(|c| c.code()), Some("53300"), "{error}");
    assert_eq!(manager.classify(&error), ErrorClass::Transient);
}

/// `pg_terminate_backend` (57P01 on the socket, then a closed client): the
/// connection is finished, and the pool's `has_broken` sees it without I/O.
#[tokio::test]
async fn an_administrators_termination_finishes_the_connection() {
    let Some(monitor) =
        monitor_or_skip("an_administrators_termination_finishes_the_connection").await
    else {
        return;
    };
    let tag = unique_tag("terminated");
    let manager = PgManager::new(settings(&tag)).unwrap();
    let mut conn = manager.connect().await.unwrap();
    assert!(!manager.has_broken(&mut conn));
    assert_eq!(monitor.terminate_all(&tag).await.len(), 1);
    support::eventually("the client to notice", Duration::from_secs(5), || async {
        conn.is_closed()
    })
    .await;
    assert!(manager.has_broken(&mut conn));
    let error = PgError::from(conn.simple_query("SELECT 1").await.expect_err("closed"));
    assert_eq!(classify(&error), ErrorClass::Permanent, "{error}");
    let error = manager.is_valid(&mut conn).await.expect_err("closed");
    assert!(matches!(error, PgError::Closed), "{error}");
}

/// An ordinary SQL error leaves the connection fine: transient, so
/// `note_error` keeps it.
#[tokio::test]
async fn an_sql_error_keeps_the_connection() {
    let Some(_monitor) = monitor_or_skip("an_sql_error_keeps_the_connection").await else {
        return;
    };
    let manager = PgManager::new(settings(&unique_tag("sql_error"))).unwrap();
    let conn = manager.connect().await.unwrap();
    let error = PgError::from(conn.simple_query("SELEC 1").await.expect_err("a typo"));
    assert_eq!(error.code().map(|c| c.code()), Some("42601"), "{error}");
    assert!(
        error.to_string().starts_with("ERROR 42601: syntax error"),
        "{error}"
    );
    assert!(!error.is_connect());
    assert_eq!(classify(&error), ErrorClass::Transient);
    assert!(conn.simple_query("SELECT 1").await.is_ok());
}

/// Outside a tokio runtime the connect fails with a clear, permanent error
/// instead of panicking inside tokio-postgres.
#[test]
fn connecting_outside_a_tokio_runtime_is_a_clear_error() {
    let manager = PgManager::new(settings(&unique_tag("no_runtime"))).unwrap();
    let error = block_on_without_runtime(manager.connect()).expect_err("no runtime");
    assert!(matches!(error, PgError::NoTokioRuntime), "{error}");
    assert!(
        error.to_string().contains("slotpool::runtime::Tokio"),
        "{error}"
    );
    assert_eq!(classify(&error), ErrorClass::Permanent);
}

/// Polls `future` to completion on this thread, with no runtime around.
fn block_on_without_runtime<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

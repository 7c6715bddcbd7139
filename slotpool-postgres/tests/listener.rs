#![cfg(not(feature = "loom"))]
//! `Listener` against the real server: notifications from a pooled
//! connection (channel, payload, sender's pid) over TLS, several channels,
//! `unlisten` and `unlisten_all`, channel names and payloads with quotes,
//! spaces and unicode, the reconnect after `pg_terminate_backend` and the
//! gap it reports, a full buffer's gap, the refusal behind a
//! transaction-mode pooler, and `recv` futures dropped mid-wait.
//!
//! No sleep is used to order events: each test waits on the listener's
//! own signals (its `recv`, `buffered`, `try_recv`, or the waker a pending
//! `recv` registered), every wait bounded by `tokio::time::timeout` or
//! `support::eventually` with generous limits. Channel names are unique
//! per test.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use slotpool::runtime::Tokio;
use slotpool::{Async, Pool};
use slotpool_postgres::tokio_postgres::Notification;
use slotpool_postgres::{
    Config, Credentials, Listener, ListenerBuilder, ListenerError, PgConfig, PgManager, PgPool,
    PoolerMode, Secret, SslMode,
};
use support::{Monitor, eventually, monitor_or_skip, pool_config, settings, unique_tag};
use tokio::sync::Notify;

/// The bound on any single wait for the server.
const LIMIT: Duration = Duration::from_secs(15);

/// A channel name no other test (or run) uses.
fn channel(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn connect(tag: &str) -> Listener {
    tokio::time::timeout(LIMIT, Listener::connect(settings(tag)))
        .await
        .expect("connect within the limit")
        .expect("the listener connects")
}

/// The next notification, within [`LIMIT`].
async fn next(listener: &mut Listener) -> Notification {
    match tokio::time::timeout(LIMIT, listener.recv()).await {
        Ok(Ok(notification)) => notification,
        Ok(Err(error)) => panic!("recv failed: {error}"),
        Err(_) => panic!("no notification within {LIMIT:?}"),
    }
}

/// `pg_notify(channel, payload)` from the monitor's own session; returns
/// that session's pid.
async fn notify(monitor: &Monitor, channel: &str, payload: &str) -> i32 {
    monitor
        .client()
        .query_one(
            "SELECT pg_notify($1, $2), pg_backend_pid()",
            &[&channel, &payload],
        )
        .await
        .expect("pg_notify")
        .get(1)
}

/// Terminates the listener's backend from the monitor's session (waiting
/// up to 5 s for it to go); returns the pid it had.
async fn terminate(monitor: &Monitor, listener: &Listener) -> i32 {
    let pid = listener.process_id().expect("the listener is connected");
    let killed: bool = monitor
        .client()
        .query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert!(killed, "backend {pid} was not terminated");
    pid
}

fn assert_note(notification: &Notification, channel: &str, payload: &str) {
    assert_eq!(
        (notification.channel(), notification.payload()),
        (channel, payload)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_from_a_pooled_connection_arrives_with_channel_payload_and_pid() {
    let test = "a_notify_from_a_pooled_connection_arrives_with_channel_payload_and_pid";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("listen_pooled");
    // Over TLS when the server offers it: the listener connects as the
    // pool's manager does.
    let mut config = settings(&tag);
    if monitor.value("SHOW ssl").await.as_deref() == Some("on") {
        config.sslmode = SslMode::Require;
    }
    let mut listener = tokio::time::timeout(LIMIT, Listener::connect(config.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        monitor.pids(&tag).await,
        vec![listener.process_id().unwrap()],
        "one dedicated connection, whose pid the listener knows"
    );
    let orders = channel("orders");
    listener.listen(&orders).await.unwrap();
    assert_eq!(
        listener.channels().collect::<Vec<_>>(),
        vec![orders.as_str()]
    );

    let pool: PgPool = Pool::builder()
        .config(pool_config(1))
        .build(Async::new(
            PgManager::new(settings(&unique_tag("listen_sender"))).unwrap(),
            Tokio::current(),
        ))
        .unwrap();
    let conn = pool.get_async().await.unwrap();
    let sender: i32 = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    conn.execute("SELECT pg_notify($1, $2)", &[&orders, &"order 42 paid"])
        .await
        .unwrap();

    let notification = next(&mut listener).await;
    assert_note(&notification, &orders, "order 42 paid");
    assert_eq!(notification.process_id(), sender, "the sender's backend");
    assert_eq!(
        listener.try_recv().unwrap().map(|n| n.payload().to_owned()),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_channels_deliver_in_order_each_under_its_own_name() {
    let test = "several_channels_deliver_in_order_each_under_its_own_name";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let mut listener = connect(&unique_tag("listen_many")).await;
    let names = [channel("alpha"), channel("beta"), channel("gamma")];
    listener
        .listen_all(names.iter().map(String::as_str))
        .await
        .unwrap();
    listener.listen(&names[0]).await.unwrap(); // again: no change
    assert_eq!(listener.channels().len(), 3);
    for i in [1, 0, 2, 1] {
        notify(&monitor, &names[i], &format!("to {i}")).await;
    }
    for i in [1, 0, 2, 1] {
        assert_note(&next(&mut listener).await, &names[i], &format!("to {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisten_stops_delivery_while_other_channels_go_on() {
    let test = "unlisten_stops_delivery_while_other_channels_go_on";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let mut listener = connect(&unique_tag("listen_unlisten")).await;
    let (dropped, kept) = (channel("dropped"), channel("kept"));
    listener
        .listen_all([dropped.as_str(), kept.as_str()])
        .await
        .unwrap();
    notify(&monitor, &dropped, "before").await;
    assert_note(&next(&mut listener).await, &dropped, "before");

    listener.unlisten(&dropped).await.unwrap();
    assert!(!listener.is_listening(&dropped));
    listener.unlisten(&dropped).await.unwrap(); // not listening: no error
    // One session, in this order: had the server still delivered
    // `dropped`, it would be buffered ahead of `kept`.
    notify(&monitor, &dropped, "after").await;
    notify(&monitor, &kept, "after").await;
    eventually("the kept channel's notification is buffered", LIMIT, || {
        let buffered = listener.buffered();
        async move { buffered >= 1 }
    })
    .await;
    assert_eq!(
        listener.buffered(),
        1,
        "the server sent nothing on `dropped`"
    );
    assert_note(&next(&mut listener).await, &kept, "after");
    assert!(listener.try_recv().unwrap().is_none());

    // `UNLISTEN *`: nothing from `kept` either, then a new channel works.
    listener.unlisten_all().await.unwrap();
    assert_eq!(listener.channels().len(), 0);
    let fresh = channel("fresh");
    listener.listen(&fresh).await.unwrap();
    notify(&monitor, &kept, "after all").await;
    notify(&monitor, &fresh, "new").await;
    assert_note(&next(&mut listener).await, &fresh, "new");
    assert_eq!(listener.buffered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_names_and_payloads_keep_quotes_spaces_and_unicode() {
    let test = "channel_names_and_payloads_keep_quotes_spaces_and_unicode";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let mut listener = connect(&unique_tag("listen_quote")).await;
    let names = [
        channel("we\"ird ch\"; UNLISTEN *; --"),
        channel("Ünïcødé ✓ 频道"),
        channel("MixedCase"),
        channel("'single' \"\""),
    ];
    for name in &names {
        listener.listen(name).await.unwrap();
    }
    let payload = "héllo ✓ 🚀 \"double\" 'single' \\ back\nslash";
    for name in &names {
        notify(&monitor, name, payload).await;
    }
    for name in &names {
        assert_note(&next(&mut listener).await, name, payload);
    }
    // Case is kept: a lower-cased name is another channel.
    notify(&monitor, &names[2].to_lowercase(), "other").await;
    notify(&monitor, &names[2], "same").await;
    assert_note(&next(&mut listener).await, &names[2], "same");

    for (bad, what) in [
        (String::new(), "empty"),
        ("a\0b".to_owned(), "NUL"),
        ("x".repeat(64), "64 bytes"),
        ("✓".repeat(22), "66 bytes"),
    ] {
        match listener.listen(&bad).await {
            Err(ListenerError::InvalidChannel { channel, .. }) => assert_eq!(channel, bad),
            other => panic!("{what}: expected InvalidChannel, got {other:?}"),
        }
    }
    assert_eq!(listener.channels().len(), names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_pg_terminate_backend_recv_reports_the_gap_and_listens_again() {
    let test = "after_pg_terminate_backend_recv_reports_the_gap_and_listens_again";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let tag = unique_tag("listen_kill");
    let mut listener = ListenerBuilder::new(settings(&tag))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let names = [channel("one"), channel("two \"2\""), channel("drei ✓")];
    listener
        .listen_all(names.iter().map(String::as_str))
        .await
        .unwrap();
    notify(&monitor, &names[0], "before").await;
    eventually("the first notification is buffered", LIMIT, || {
        let buffered = listener.buffered();
        async move { buffered == 1 }
    })
    .await;

    let old_pid = terminate(&monitor, &listener).await;

    // Without waiting: what was buffered first, then the loss.
    assert_note(&listener.try_recv().unwrap().unwrap(), &names[0], "before");
    eventually("try_recv sees the loss", LIMIT, || {
        let lost = matches!(listener.try_recv(), Err(ListenerError::Disconnected { .. }));
        async move { lost }
    })
    .await;
    assert_eq!(listener.process_id(), None);

    match tokio::time::timeout(LIMIT, listener.recv()).await {
        Ok(Err(gap @ ListenerError::Reconnected { channels: 3, .. })) => {
            assert!(gap.is_gap());
            assert!(gap.to_string().contains("may have been lost"), "{gap}");
        }
        other => panic!("expected the reconnect gap, got {other:?}"),
    }
    let new_pid = listener.process_id().unwrap();
    assert_ne!(new_pid, old_pid);
    assert_eq!(monitor.pids(&tag).await, vec![new_pid]);
    assert_eq!(listener.channels().len(), 3);
    for name in &names {
        notify(&monitor, name, "after").await;
    }
    for name in &names {
        assert_note(&next(&mut listener).await, name, "after");
    }
}

/// A listener built for a pool's manager logs in with the manager's
/// credentials at every reconnect: rotated on the server and in the
/// manager, the listener's next reconnect uses the new password (with the
/// provider copied at build time it would be refused, 28P01).
#[tokio::test]
async fn a_listener_for_a_manager_reconnects_with_its_rotated_credentials() {
    let test = "a_listener_for_a_manager_reconnects_with_its_rotated_credentials";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let (old, new) = ("0ld-listener-s3cret", "N3w-listener-s3cret");
    let Some(role) = monitor.password_role(test, old).await else {
        return;
    };
    let tag = unique_tag("listen_rotate");
    let manager = PgManager::new(PgConfig {
        user: role.name.clone(),
        password: Secret::new(old),
        ..settings(&tag)
    })
    .unwrap();
    let mut listener = tokio::time::timeout(
        LIMIT,
        ListenerBuilder::for_manager(&manager)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .connect(),
    )
    .await
    .expect("connect within the limit")
    .expect("the listener logs in with the manager's password");
    let name = channel("rotate");
    listener.listen(&name).await.unwrap();

    monitor
        .exec(&format!("ALTER ROLE \"{}\" PASSWORD '{new}'", role.name))
        .await;
    manager.set_credentials(Credentials::new(role.name.clone(), new));
    let old_pid = terminate(&monitor, &listener).await;

    match tokio::time::timeout(LIMIT, listener.recv()).await {
        Ok(Err(ListenerError::Reconnected { channels: 1, .. })) => {}
        other => panic!("expected a reconnect with the new password, got {other:?}"),
    }
    assert_ne!(listener.process_id(), Some(old_pid));
    notify(&monitor, &name, "after rotation").await;
    assert_note(&next(&mut listener).await, &name, "after rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_and_reports_the_gap_in_order() {
    let test = "a_full_buffer_drops_and_reports_the_gap_in_order";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let mut listener = ListenerBuilder::new(settings(&unique_tag("listen_full")))
        .capacity(2)
        .connect()
        .await
        .unwrap();
    let name = channel("burst");
    listener.listen(&name).await.unwrap();
    // Five in one transaction (distinct payloads: the server folds
    // duplicates).
    monitor
        .client()
        .execute(
            "SELECT pg_notify($1, i::text) FROM generate_series(1, 5) AS i",
            &[&name],
        )
        .await
        .unwrap();
    eventually("two buffered and three dropped", LIMIT, || {
        let state = (listener.buffered(), listener.dropped());
        async move { state == (2, 3) }
    })
    .await;
    assert_note(&next(&mut listener).await, &name, "1");
    assert_note(&next(&mut listener).await, &name, "2");
    match listener.recv().await {
        Err(
            gap @ ListenerError::Lagged {
                missed: 3,
                capacity: 2,
            },
        ) => assert!(gap.is_gap()),
        other => panic!("expected Lagged, got {other:?}"),
    }
    notify(&monitor, &name, "6").await;
    assert_note(&next(&mut listener).await, &name, "6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_transaction_mode_pooler_the_listener_refuses() {
    // Refused before any I/O: no server needed.
    let mut config = settings(&unique_tag("listen_pooler"));
    config.port = Some(6432);
    config.pooler = PoolerMode::Transaction;
    match Listener::connect(config.clone()).await {
        Err(error @ ListenerError::Pooler { .. }) => {
            let message = error.to_string();
            assert!(message.contains("127.0.0.1:6432"), "{message}");
            assert!(message.contains("pooler = \"none\""), "{message}");
        }
        other => panic!("expected the pooler refusal, got {other:?}"),
    }
    // The same through the crate's Config and a connection string.
    let whole = Config {
        postgres: config,
        ..Config::default()
    };
    assert!(matches!(
        Listener::connect(whole.postgres.clone()).await,
        Err(ListenerError::Pooler { .. })
    ));
    let text = "host=127.0.0.1 port=6432 user=postgres dbname=postgres pooler=transaction";
    assert!(matches!(
        Listener::from_connection_string(text).await,
        Err(ListenerError::Pooler { .. })
    ));
    // Invalid settings are a typed connect error, not a panic.
    let invalid = PgConfig {
        port: Some(0),
        ..PgConfig::default()
    };
    assert!(matches!(
        Listener::connect(invalid).await,
        Err(ListenerError::Connect(_))
    ));
}

/// Records that a pending future was woken.
struct Woken(Notify);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recv_dropped_mid_wait_loses_nothing() {
    let test = "a_recv_dropped_mid_wait_loses_nothing";
    let Some(monitor) = monitor_or_skip(test).await else {
        return;
    };
    let mut listener = connect(&unique_tag("listen_cancel")).await;
    let name = channel("cancel");
    listener.listen(&name).await.unwrap();

    // A timeout that expires with nothing sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), listener.recv())
            .await
            .is_err()
    );
    notify(&monitor, &name, "first").await;
    assert_note(&next(&mut listener).await, &name, "first");

    // A recv woken by an arriving notification, then dropped before it
    // runs again (what a timeout or `select!` firing at that moment does).
    let woken = Arc::new(Woken(Notify::new()));
    let waker = Waker::from(woken.clone());
    {
        let mut pending = std::pin::pin!(listener.recv());
        assert!(
            pending
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        notify(&monitor, &name, "second").await;
        tokio::time::timeout(LIMIT, woken.0.notified())
            .await
            .expect("the arriving notification wakes the pending recv");
    }
    assert_eq!(listener.buffered(), 1, "kept for the next recv");
    assert_note(&next(&mut listener).await, &name, "second");
}

#![cfg(not(feature = "loom"))]
//! The five `sslmode`s against the local server (TLS on, Debian's snakeoil
//! certificate: self-signed, `CN=localhost`, SAN `DNS:localhost`). The
//! server's view (`pg_stat_ssl`) says whether the session is encrypted; the
//! verifying modes are run with the snakeoil certificate as the trusted
//! root, and with a root that signed nothing, by name and by address.

mod support;

use slotpool::{AsyncManager, ErrorClass};
use slotpool_postgres::{PgConfig, PgError, PgManager, SslMode};
use support::{Monitor, first_value, monitor_or_skip, settings, skip, unique_tag};

/// A root that signed nothing the server presents.
const UNTRUSTED_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/untrusted-ca.pem"
);

/// The monitor and the server's certificate, or a loud skip.
async fn setup(test: &str) -> Option<(Monitor, String)> {
    let monitor = monitor_or_skip(test).await?;
    match monitor.server_certificate().await {
        Some(certificate) => Some((monitor, certificate)),
        None => {
            skip(
                test,
                "the server has TLS off or its certificate is not readable here",
            );
            None
        }
    }
}

/// Settings for `sslmode` to `host` (`localhost` or `127.0.0.1`).
fn tls_settings(tag: &str, sslmode: SslMode, host: &str, root: &str) -> PgConfig {
    PgConfig {
        host: host.to_owned(),
        sslmode,
        sslrootcert: root.to_owned(),
        ..settings(tag)
    }
}

/// Whether the session is encrypted, by the server's account, and with
/// which protocol.
async fn encryption(config: PgConfig) -> Result<(bool, Option<String>), PgError> {
    let manager = PgManager::new(config).expect("valid settings");
    let conn = manager.connect().await?;
    let messages = conn
        .simple_query("SELECT ssl::text || ' ' || coalesce(version, '-') FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .expect("pg_stat_ssl");
    let row = first_value(&messages).expect("a row");
    let (ssl, version) = row.split_once(' ').expect("two words");
    Ok((ssl == "true", (version != "-").then(|| version.to_owned())))
}

/// Whether a session with `sslmode` to `host`, trusting `root`, is
/// encrypted (it must connect).
async fn encrypted(tag: &str, sslmode: SslMode, host: &str, root: &str) -> bool {
    let (ssl, _) = encryption(tls_settings(tag, sslmode, host, root))
        .await
        .unwrap();
    ssl
}

/// A connect with `sslmode` to `host`, trusting `root`, fails on the
/// server's certificate with `what`, permanently.
async fn assert_rejected(tag: &str, sslmode: SslMode, host: &str, root: &str, what: &str) {
    let error = encryption(tls_settings(tag, sslmode, host, root))
        .await
        .unwrap_err();
    assert!(matches!(error, PgError::Connect { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("TLS handshake") && text.contains(what),
        "{text}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent, "{text}");
}

#[tokio::test]
async fn disable_never_encrypts() {
    let Some(_) = setup("disable_never_encrypts").await else {
        return;
    };
    let tag = unique_tag("tls_disable");
    assert!(!encrypted(&tag, SslMode::Disable, "127.0.0.1", "").await);
}

#[tokio::test]
async fn prefer_encrypts_when_the_server_offers_it() {
    let Some(_) = setup("prefer_encrypts_when_the_server_offers_it").await else {
        return;
    };
    let tag = unique_tag("tls_prefer");
    assert!(
        encrypted(&tag, SslMode::Prefer, "127.0.0.1", "").await,
        "the server offers TLS, so prefer takes it"
    );
}

#[tokio::test]
async fn require_encrypts_with_any_certificate() {
    let Some(_) = setup("require_encrypts_with_any_certificate").await else {
        return;
    };
    let tag = unique_tag("tls_require");
    // Self-signed, and not named 127.0.0.1: require does not care.
    let (ssl, version) = encryption(tls_settings(&tag, SslMode::Require, "127.0.0.1", ""))
        .await
        .unwrap();
    assert!(ssl);
    assert!(version.is_some_and(|v| v.starts_with("TLSv1.")));
}

/// libpq's rule: `require` with a root file verifies the chain (not the
/// name), as `verify-ca`.
#[tokio::test]
async fn require_with_a_root_file_verifies_the_chain() {
    let Some((_, certificate)) = setup("require_with_a_root_file_verifies_the_chain").await else {
        return;
    };
    let tag = unique_tag("tls_require_root");
    assert!(
        encrypted(&tag, SslMode::Require, "127.0.0.1", &certificate).await,
        "the chain is trusted; the name is not checked"
    );
    assert_rejected(
        &tag,
        SslMode::Require,
        "127.0.0.1",
        UNTRUSTED_CA,
        "UnknownIssuer",
    )
    .await;
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_name() {
    let Some((_, certificate)) = setup("verify_ca_checks_the_chain_but_not_the_name").await else {
        return;
    };
    let tag = unique_tag("tls_verify_ca");
    // The certificate names localhost; connecting by address is fine here.
    assert!(encrypted(&tag, SslMode::VerifyCa, "127.0.0.1", &certificate).await);
    assert_rejected(
        &tag,
        SslMode::VerifyCa,
        "localhost",
        UNTRUSTED_CA,
        "UnknownIssuer",
    )
    .await;
}

#[tokio::test]
async fn verify_full_checks_the_chain_and_the_name() {
    let Some((_, certificate)) = setup("verify_full_checks_the_chain_and_the_name").await else {
        return;
    };
    let tag = unique_tag("tls_verify_full");
    assert!(
        encrypted(&tag, SslMode::VerifyFull, "localhost", &certificate).await,
        "trusted root, and the certificate names localhost"
    );
    assert_rejected(
        &tag,
        SslMode::VerifyFull,
        "127.0.0.1",
        &certificate,
        "not valid for name",
    )
    .await;
    assert_rejected(
        &tag,
        SslMode::VerifyFull,
        "localhost",
        UNTRUSTED_CA,
        "UnknownIssuer",
    )
    .await;
}

/// A server that refuses TLS fails `require` (permanently) and is fine for
/// `prefer`; a unix socket is one (PostgreSQL never does TLS over it).
#[tokio::test]
async fn require_fails_where_the_server_has_no_tls() {
    let Some(monitor) = monitor_or_skip("require_fails_where_the_server_has_no_tls").await else {
        return;
    };
    let directory = monitor
        .value("SELECT split_part(current_setting('unix_socket_directories'), ',', 1)")
        .await
        .expect("a socket directory");
    let tag = unique_tag("tls_no_tls");
    assert!(!encrypted(&tag, SslMode::Prefer, directory.trim(), "").await);
    let manager =
        PgManager::new(tls_settings(&tag, SslMode::Require, directory.trim(), "")).unwrap();
    let error = manager
        .connect()
        .await
        .expect_err("no TLS on a unix socket");
    assert_eq!(manager.classify(&error), ErrorClass::Permanent, "{error}");
}

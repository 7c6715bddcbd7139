#![cfg(not(feature = "loom"))]
//! The five `sslmode`s against the local server (TLS on, Debian's snakeoil
//! certificate: self-signed, `CN=localhost`, SAN `DNS:localhost`). The
//! server's view (`pg_stat_ssl`) says whether the session is encrypted; the
//! verifying modes are run with the snakeoil certificate as the trusted
//! root, and with a root that signed nothing, by name and by address.
//!
//! Client certificates (`sslcert`, `sslkey`) need `scripts/pg-test-setup.sh`:
//! its CA is the server's `ssl_ca_file`, and its role `slotpool_cert_user`
//! may log in only over TLS with a certificate that CA signed (`cert` in
//! pg_hba.conf), so a connect that did not send the configured certificate
//! fails. The server's `pg_stat_ssl.client_dn` shows which one was sent.

mod support;

use std::time::{Duration, Instant};

use slotpool::runtime::Tokio;
use slotpool::{Async, AsyncManager, ErrorClass, Pool};
use slotpool_postgres::{ClientCertProblem, Config, PgConfig, PgError, PgManager, SslMode};
use support::{
    CERT_USER, CertFiles, Monitor, PG_DB, PG_PORT, cert_files_or_skip, first_value,
    monitor_or_skip, pool_config, settings, skip, unique_tag,
};

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

// ---------------------------------------------------------------------------
// Client certificates
// ---------------------------------------------------------------------------

/// The subject the setup script's client certificates carry, as the server
/// shows it.
fn client_dn() -> String {
    format!("/CN={CERT_USER}")
}

/// Settings for [`CERT_USER`] with `sslmode` to `host`, trusting `root`,
/// presenting `cert` with `key`.
fn cert_settings(
    tag: &str,
    sslmode: SslMode,
    host: &str,
    root: &str,
    cert: &str,
    key: &str,
) -> PgConfig {
    PgConfig {
        user: CERT_USER.to_owned(),
        sslcert: cert.to_owned(),
        sslkey: key.to_owned(),
        ..tls_settings(tag, sslmode, host, root)
    }
}

/// The monitor, the server's certificate and the setup script's files, or a
/// loud skip.
async fn cert_setup(test: &str) -> Option<(Monitor, String, CertFiles)> {
    let (monitor, certificate) = setup(test).await?;
    let files = monitor.cert_setup(test).await?;
    Some((monitor, certificate, files))
}

/// The server's view of a session: encrypted, the client certificate's
/// subject (if one was sent) and the role.
async fn session_view(conn: &slotpool_postgres::PgConnection) -> (bool, Option<String>, String) {
    let row = conn
        .query_one(
            "SELECT ssl, client_dn, current_user::text FROM pg_stat_ssl \
             WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1), row.get(2))
}

/// Connects with `config` and returns the server's view of the session.
async fn connect_and_look(config: PgConfig) -> Result<(bool, Option<String>, String), PgError> {
    let manager = PgManager::new(config).expect("valid settings and files");
    let conn = manager.connect().await?;
    Ok(session_view(&conn).await)
}

/// `cert` auth is only satisfied by the configured certificate, so each
/// of these connects fails if `sslcert`/`sslkey` were ignored in that mode.
#[tokio::test]
async fn every_tls_mode_presents_the_client_certificate() {
    let test = "every_tls_mode_presents_the_client_certificate";
    let Some((_monitor, snakeoil, files)) = cert_setup(test).await else {
        return;
    };
    let tag = unique_tag("tls_cert_modes");
    for (mode, host, root) in [
        (SslMode::Prefer, "127.0.0.1", ""),
        (SslMode::Require, "127.0.0.1", ""),
        (SslMode::Require, "127.0.0.1", snakeoil.as_str()),
        (SslMode::VerifyCa, "127.0.0.1", snakeoil.as_str()),
        (SslMode::VerifyFull, "localhost", snakeoil.as_str()),
    ] {
        let config = cert_settings(
            &tag,
            mode,
            host,
            root,
            &files.client_cert,
            &files.client_key,
        );
        let (ssl, dn, user) = connect_and_look(config)
            .await
            .unwrap_or_else(|e| panic!("{mode} to {host}: {e}"));
        assert!(ssl, "{mode}");
        assert_eq!(dn, Some(client_dn()), "{mode}");
        assert_eq!(user, CERT_USER, "{mode}");
    }
}

/// PKCS#8 and PKCS#1 RSA keys and a SEC1 EC key all log in.
#[tokio::test]
async fn pkcs8_pkcs1_and_sec1_keys_log_in() {
    let test = "pkcs8_pkcs1_and_sec1_keys_log_in";
    let Some((_monitor, snakeoil, files)) = cert_setup(test).await else {
        return;
    };
    let tag = unique_tag("tls_cert_keys");
    for (cert, key) in [
        (&files.client_cert, &files.client_key),
        (&files.client_cert, &files.client_key_pkcs1),
        (&files.ec_cert, &files.ec_key),
    ] {
        let config = cert_settings(&tag, SslMode::VerifyCa, "127.0.0.1", &snakeoil, cert, key);
        let (ssl, dn, _) = connect_and_look(config)
            .await
            .unwrap_or_else(|e| panic!("{cert} with {key}: {e}"));
        assert!(ssl);
        assert_eq!(dn, Some(client_dn()), "{key}");
    }
}

/// A pool of the certificate role: borrowers get sessions authenticated by
/// the certificate, and reuse them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_a_certificate_role_connects_and_queries() {
    let test = "a_pool_of_a_certificate_role_connects_and_queries";
    let Some((_monitor, snakeoil, files)) = cert_setup(test).await else {
        return;
    };
    let tag = unique_tag("tls_cert_pool");
    let manager = PgManager::new(cert_settings(
        &tag,
        SslMode::VerifyCa,
        "127.0.0.1",
        &snakeoil,
        &files.client_cert,
        &files.client_key,
    ))
    .unwrap();
    let pool = Pool::builder()
        .config(pool_config(2))
        .build(Async::new(manager, Tokio::current()))
        .expect("a valid pool");
    for _ in 0..3 {
        let conn = pool.get_async().await.unwrap();
        let (ssl, dn, user) = session_view(&conn).await;
        assert!(ssl);
        assert_eq!(dn, Some(client_dn()));
        assert_eq!(user, CERT_USER);
        let sum: i32 = conn
            .query_one("SELECT $1::int4 + 1", &[&41i32])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sum, 42);
    }
}

/// The settings read from a connection string, either form, reach the
/// handshake.
#[tokio::test]
async fn a_connection_string_with_sslcert_and_sslkey_logs_in() {
    let test = "a_connection_string_with_sslcert_and_sslkey_logs_in";
    let Some((_monitor, _, files)) = cert_setup(test).await else {
        return;
    };
    let tag = unique_tag("tls_cert_connstr");
    let key_value = format!(
        "host=127.0.0.1 port={PG_PORT} dbname={PG_DB} user={CERT_USER} sslmode=require \
         application_name={tag} sslcert='{}' sslkey='{}'",
        files.client_cert, files.client_key
    );
    let url = format!(
        "postgresql://{CERT_USER}@127.0.0.1:{PG_PORT}/{PG_DB}?sslmode=require\
         &application_name={tag}&sslcert={}&sslkey={}",
        files.client_cert.replace('/', "%2F"),
        files.client_key
    );
    for text in [key_value, url] {
        let manager = PgManager::from_connection_string(&text).unwrap();
        assert_eq!(manager.config().sslcert, files.client_cert);
        assert_eq!(manager.config().sslkey, files.client_key);
        let conn = manager
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let (_, dn, user) = session_view(&conn).await;
        assert_eq!(dn, Some(client_dn()), "{text}");
        assert_eq!(user, CERT_USER);
    }
}

/// Without a certificate the server refuses the role (FATAL 28000), and a
/// pool fails the get at once with that error instead of waiting out its
/// timeout; a certificate the server's CA did not sign fails the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_the_role_without_a_certificate_it_trusts() {
    let test = "the_server_refuses_the_role_without_a_certificate_it_trusts";
    let Some((_monitor, _, files)) = cert_setup(test).await else {
        return;
    };
    let tag = unique_tag("tls_cert_refused");
    let no_cert = cert_settings(&tag, SslMode::Require, "127.0.0.1", "", "", "");

    let manager = PgManager::new(no_cert.clone()).unwrap();
    let error = manager.connect().await.expect_err("no client certificate");
    assert!(matches!(error, PgError::Connect { .. }), "{error}");
    assert_eq!(error.code().map(|c| c.code()), Some("28000"), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("certificate") && text.contains(CERT_USER),
        "{text}"
    );
    assert_eq!(manager.classify(&error), ErrorClass::Permanent);

    let deadline = Duration::from_secs(5);
    let pool = Pool::builder()
        .config(slotpool::PoolConfig {
            connection_timeout: deadline,
            ..pool_config(1)
        })
        .build(Async::new(
            PgManager::new(no_cert).unwrap(),
            Tokio::current(),
        ))
        .expect("a valid pool");
    let started = Instant::now();
    let error = pool.get_async().await.expect_err("refused");
    let waited = started.elapsed();
    assert!(waited < deadline, "waited {waited:?}: {error}");
    assert!(
        !error.is_timeout(),
        "a permanent error fails at once: {error}"
    );
    let cause = error.connect_error().expect("the connect error");
    assert!(matches!(cause, PgError::Connect { .. }), "{cause}");
    assert_eq!(cause.code().map(|c| c.code()), Some("28000"), "{cause}");

    // A self-signed certificate naming the role: the server's CA did not
    // sign it, so the server ends the handshake (or the session) before
    // the role is accepted; never a hang.
    let rogue = cert_settings(
        &tag,
        SslMode::Require,
        "127.0.0.1",
        "",
        &files.rogue_cert,
        &files.rogue_key,
    );
    let started = Instant::now();
    let error = connect_and_look(rogue)
        .await
        .expect_err("an untrusted certificate");
    assert!(started.elapsed() < Duration::from_secs(5), "{error}");
    assert!(matches!(error, PgError::Connect { .. }), "{error}");
}

/// Expects `PgManager::new(config)` to fail with `PgError::ClientCert` for
/// `setting` and `path`; returns the problem.
#[track_caller]
fn assert_file_fault(config: PgConfig, setting: &str, path: &str) -> ClientCertProblem {
    let error = PgManager::new(config).expect_err("an unusable client certificate");
    let text = error.to_string();
    assert!(
        text.contains(&format!("`{setting}`")) && text.contains(&format!("`{path}`")),
        "names the setting and the path: {text}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent, "{text}");
    assert!(error.is_connect(), "{text}");
    match error {
        PgError::ClientCert {
            setting: named,
            path: shown,
            problem,
        } => {
            assert_eq!(named, setting);
            assert_eq!(shown, path);
            problem
        }
        other => panic!("expected PgError::ClientCert, got {other:?}"),
    }
}

/// Every file fault fails construction (in each mode that uses TLS) with
/// a typed error naming the setting, the path and the problem; nothing is
/// connected.
#[test]
fn unusable_certificate_files_fail_the_manager() {
    let Some(files) = cert_files_or_skip("unusable_certificate_files_fail_the_manager") else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("slotpool-tls-faults-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let bad_pem = scratch.join("bad.pem").display().to_string();
    std::fs::write(
        &bad_pem,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let unterminated = scratch.join("unterminated.pem").display().to_string();
    std::fs::write(&unterminated, "-----BEGIN PRIVATE KEY-----\nMIIB\n").unwrap();
    let directory = scratch.display().to_string();
    let missing = "/nonexistent/slotpool/client.crt";
    let untrusted = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/untrusted-ca.pem"
    );

    let with = |mode: SslMode, cert: &str, key: &str| {
        let root = if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            untrusted
        } else {
            ""
        };
        cert_settings("faults", mode, "127.0.0.1", root, cert, key)
    };
    for mode in [
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ] {
        // Missing files, either one.
        let problem = assert_file_fault(
            with(mode, missing, &files.client_key),
            "postgres.sslcert",
            missing,
        );
        assert!(
            matches!(&problem, ClientCertProblem::Unreadable(e) if e.kind() == std::io::ErrorKind::NotFound),
            "{problem:?}"
        );
        let problem = assert_file_fault(
            with(mode, &files.client_cert, missing),
            "postgres.sslkey",
            missing,
        );
        assert!(
            matches!(problem, ClientCertProblem::Unreadable(_)),
            "{problem:?}"
        );
        // The key and the certificate that does not match it.
        let problem = assert_file_fault(
            with(mode, &files.client_cert, &files.other_key),
            "postgres.sslkey",
            &files.other_key,
        );
        assert!(
            matches!(&problem, ClientCertProblem::KeyMismatch { certificate } if *certificate == files.client_cert),
            "{problem:?}"
        );
    }
    let mode = SslMode::VerifyFull;
    // A directory cannot be read as a file.
    let problem = assert_file_fault(
        with(mode, &directory, &files.client_key),
        "postgres.sslcert",
        &directory,
    );
    assert!(
        matches!(problem, ClientCertProblem::Unreadable(_)),
        "{problem:?}"
    );
    // A certificate file without a certificate (a key file).
    let problem = assert_file_fault(
        with(mode, &files.client_key, &files.client_key),
        "postgres.sslcert",
        &files.client_key,
    );
    assert!(
        matches!(problem, ClientCertProblem::NoCertificate),
        "{problem:?}"
    );
    // A key file without a key (a certificate file).
    let problem = assert_file_fault(
        with(mode, &files.client_cert, &files.client_cert),
        "postgres.sslkey",
        &files.client_cert,
    );
    assert!(matches!(problem, ClientCertProblem::NoKey), "{problem:?}");
    // Encrypted keys, both OpenSSL forms.
    for encrypted in [&files.encrypted_key, &files.encrypted_key_pkcs1] {
        let problem = assert_file_fault(
            with(mode, &files.client_cert, encrypted),
            "postgres.sslkey",
            encrypted,
        );
        assert!(
            matches!(problem, ClientCertProblem::EncryptedKey),
            "{problem:?}"
        );
        assert!(problem.to_string().contains("encrypted"), "{problem}");
    }
    // Keys of another certificate, other algorithms.
    let problem = assert_file_fault(
        with(mode, &files.ec_cert, &files.client_key),
        "postgres.sslkey",
        &files.client_key,
    );
    assert!(
        matches!(problem, ClientCertProblem::KeyMismatch { .. }),
        "{problem:?}"
    );
    let problem = assert_file_fault(
        with(mode, &files.client_cert, &files.ec_key),
        "postgres.sslkey",
        &files.ec_key,
    );
    assert!(
        matches!(problem, ClientCertProblem::KeyMismatch { .. }),
        "{problem:?}"
    );
    // PEM that does not read.
    let problem = assert_file_fault(
        with(mode, &bad_pem, &files.client_key),
        "postgres.sslcert",
        &bad_pem,
    );
    assert!(
        matches!(problem, ClientCertProblem::BadPem(_)),
        "{problem:?}"
    );
    let problem = assert_file_fault(
        with(mode, &files.client_cert, &unterminated),
        "postgres.sslkey",
        &unterminated,
    );
    assert!(
        matches!(problem, ClientCertProblem::BadPem(_)),
        "{problem:?}"
    );
    std::fs::remove_dir_all(&scratch).unwrap();

    // And the good pair builds, in every mode.
    for mode in [
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ] {
        PgManager::new(with(mode, &files.client_cert, &files.client_key))
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
}

/// The problem `setting` has in `config`, which must have exactly one.
#[track_caller]
fn only_problem(config: &PgConfig, setting: &str) -> String {
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(text.contains(setting), "{text}");
    text
}

/// One of the pair without the other, or either with `sslmode=disable`,
/// is a validation error (so also `PgManager::new`'s, before any file is
/// read).
#[test]
fn sslcert_and_sslkey_come_together_and_need_tls() {
    let base = |cert: &str, key: &str, mode: SslMode| PgConfig {
        sslmode: mode,
        sslcert: cert.to_owned(),
        sslkey: key.to_owned(),
        ..PgConfig::default()
    };
    let text = only_problem(&base("/c.pem", "", SslMode::Require), "postgres.sslkey");
    assert!(
        text.contains("`postgres.sslcert`") && text.contains("/c.pem") && text.contains("both"),
        "{text}"
    );
    let text = only_problem(&base("", "/k.pem", SslMode::Require), "postgres.sslcert");
    assert!(
        text.contains("`postgres.sslkey`") && text.contains("/k.pem"),
        "{text}"
    );
    let error = PgManager::new(base("/c.pem", "", SslMode::VerifyFull)).unwrap_err();
    assert!(matches!(error, PgError::Config(_)), "{error}");

    // libpq ignores a client certificate without TLS; here it is an error.
    let problems = base("/c.pem", "/k.pem", SslMode::Disable).problems();
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    for (text, setting) in texts.iter().zip(["postgres.sslcert", "postgres.sslkey"]) {
        assert!(
            text.contains(setting) && text.contains("\"disable\"") && text.contains("no effect"),
            "{text}"
        );
    }
    let error = PgManager::new(base("/c.pem", "/k.pem", SslMode::Disable)).unwrap_err();
    assert!(matches!(error, PgError::Config(_)), "{error}");

    for mode in [
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ] {
        assert!(
            base("/c.pem", "/k.pem", mode).problems().is_empty(),
            "{mode}"
        );
    }
    let nul = only_problem(
        &base("/c\0.pem", "/k.pem", SslMode::Require),
        "postgres.sslcert",
    );
    assert!(nul.contains("NUL"), "{nul}");
}

/// Both libpq forms move `sslcert` and `sslkey` to their settings (quoted
/// and percent-encoded paths included); in `postgres.url` they are
/// rejected like the other parameters with a setting of their own.
#[test]
fn sslcert_and_sslkey_are_read_from_connection_strings() {
    let config: PgConfig = "host=db user=app sslmode=verify-full sslrootcert=/etc/ca.pem \
                            sslcert='/etc/client certs/app.crt' sslkey=/etc/app\\ key.pem"
        .parse()
        .unwrap();
    assert_eq!(config.sslcert, "/etc/client certs/app.crt");
    assert_eq!(config.sslkey, "/etc/app key.pem");
    assert_eq!(config.sslrootcert, "/etc/ca.pem");
    assert_eq!(config.url.expose(), "host=db user=app");

    let config: PgConfig = "postgresql://app@db/app?sslmode=require&sslcert=%2Fetc%2Fapp%20x.crt\
                            &sslkey=/etc/app.key&target_session_attrs=any"
        .parse()
        .unwrap();
    assert_eq!(config.sslcert, "/etc/app x.crt");
    assert_eq!(config.sslkey, "/etc/app.key");
    assert_eq!(config.sslmode, SslMode::Require);
    assert_eq!(
        config.url.expose(),
        "postgresql://app@db/app?target_session_attrs=any"
    );

    // Validated as it is read: one without the other.
    let error = PgConfig::from_connection_string("host=db sslcert=/c.pem").unwrap_err();
    assert!(error.to_string().contains("postgres.sslkey"), "{error}");

    for key in ["sslcert", "sslkey"] {
        let config = PgConfig {
            url: format!("host=db {key}=/x.pem").as_str().into(),
            ..PgConfig::default()
        };
        let text = config
            .problems()
            .iter()
            .map(ToString::to_string)
            .find(|t| t.contains("postgres.url"))
            .unwrap_or_else(|| panic!("{key} in the url is rejected"));
        assert!(text.contains(&format!("`postgres.{key}`")), "{text}");
    }
}

/// The settings schema gives them `SLOTPOOL_POSTGRES_SSLCERT` /
/// `SLOTPOOL_POSTGRES_SSLKEY` and a place in `config.toml` profiles.
#[test]
fn sslcert_and_sslkey_load_from_variables_and_profiles() {
    let vars = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        slotpool::config::env_var_for::<Config>("postgres.sslcert").as_deref(),
        Some("SLOTPOOL_POSTGRES_SSLCERT")
    );
    let config = Config::load(
        None,
        None,
        vars(&[
            ("SLOTPOOL_POSTGRES_SSLMODE", "verify-ca"),
            ("SLOTPOOL_POSTGRES_SSLCERT", "/etc/app.crt"),
            ("SLOTPOOL_POSTGRES_SSLKEY", "/etc/app.key"),
        ]),
    )
    .unwrap();
    assert_eq!(config.postgres.sslcert, "/etc/app.crt");
    assert_eq!(config.postgres.sslkey, "/etc/app.key");

    let error = Config::load(
        None,
        None,
        vars(&[("SLOTPOOL_POSTGRES_SSLKEY", "/etc/app.key")]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("postgres.sslcert"), "{error}");

    let toml = "[profiles.p.postgres]\nsslmode = \"require\"\nsslcert = \"/etc/app.crt\"\n\
                sslkey = \"/etc/app.key\"\n";
    let config = Config::from_toml_str(toml, "p").unwrap();
    assert_eq!(config.postgres.sslcert, "/etc/app.crt");
    assert_eq!(config.postgres.sslkey, "/etc/app.key");
    // Written back, and read again.
    let text = config.to_toml_string();
    assert!(text.contains("sslcert = \"/etc/app.crt\""), "{text}");
    let back = Config::from_toml_str(
        &format!(
            "[profiles.p]\n{}",
            text.replace("\n[postgres]", "\n[profiles.p.postgres]")
        ),
        "p",
    )
    .unwrap();
    assert_eq!(back.postgres, config.postgres);
}

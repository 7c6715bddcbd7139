//! Helpers for the tests against a real server: finding it (or skipping
//! loudly, or failing under `SLOTPOOL_REQUIRE_PG=1`), per-test tags, an
//! unpooled monitor connection, temporary roles, and bounded polling.
//!
//! Owns: everything the test files share, on `tokio-postgres`. What the
//! root's `tests/pg_support` (on the blocking `postgres` crate) shares with
//! it is that directory's: [`server`] (the server, skipping loudly, the
//! monitor's SQL) and [`proxy`], included by path. Each test file uses part
//! of it. It may not touch the server's configuration
//! (`scripts/pg-test-setup.sh` does, once).
#![allow(dead_code)]

pub mod logs;
#[path = "../../../tests/pg_support/proxy.rs"]
pub mod proxy;
#[path = "../../../tests/pg_support/server.rs"]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use slotpool_postgres::{PgConfig, Recycling, SslMode};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

pub use server::{PG_DB, PG_HOST, PG_PORT, PG_USER, skip};
use server::{PIDS_BY_TAG, TERMINATE_BY_TAG};

/// [`TERMINATE_BY_TAG`] without its per-backend wait for the exit: every
/// signal sent at once. The `CASE` keeps the tag filter ahead of the call.
const TERMINATE_BY_TAG_AT_ONCE: &str = "SELECT pid FROM pg_stat_activity WHERE CASE \
     WHEN application_name = $1 AND pid <> pg_backend_pid() \
     THEN pg_terminate_backend(pid) ELSE false END";

/// The group whose members must log in with a password (see
/// `scripts/pg-test-setup.sh`).
pub const PASSWORD_GROUP: &str = "slotpool_password_auth";

/// A unique `application_name` for one test: `sp_<test>_<pid>_<n>`, at
/// most 63 bytes (longer names would be truncated and merge tags).
pub fn unique_tag(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let short: String = test.chars().take(30).collect();
    let tag = format!(
        "sp_{short}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    assert!(tag.len() <= 63, "tag {tag:?} would be truncated");
    tag
}

/// The pool settings the server tests share: `max_size` connections, short
/// timeouts and connect backoff so a fault shows within a test's bounds,
/// and a check of any connection idle for 50 ms.
pub fn pool_config(max_size: u32) -> slotpool::PoolConfig {
    slotpool::PoolConfig {
        max_size,
        connection_timeout: Duration::from_secs(5),
        validation_timeout: Duration::from_secs(1),
        validation_idle_window: Duration::from_millis(50),
        connect_backoff_initial: Duration::from_millis(10),
        connect_backoff_max: Duration::from_millis(100),
        ..slotpool::PoolConfig::default()
    }
}

/// Settings for a plain connection to the test server as the superuser,
/// tagged with `tag`, TLS off.
pub fn settings(tag: &str) -> PgConfig {
    PgConfig {
        host: PG_HOST.to_owned(),
        port: Some(u32::from(PG_PORT)),
        user: PG_USER.to_owned(),
        dbname: PG_DB.to_owned(),
        sslmode: SslMode::Disable,
        application_name: tag.to_owned(),
        connect_timeout: Some(Duration::from_secs(5)),
        recycling: Recycling::Verified,
        ..PgConfig::default()
    }
}

/// The start of every server test: a monitor connection if the server
/// answers, otherwise a loud skip (or a panic under
/// `SLOTPOOL_REQUIRE_PG=1`).
pub async fn monitor_or_skip(test: &str) -> Option<Monitor> {
    match Monitor::connect(test).await {
        Ok(monitor) => Some(monitor),
        Err(why) => {
            skip(test, &server::unreachable(&why));
            None
        }
    }
}

/// An unpooled superuser connection that inspects and kills one test's
/// backends.
pub struct Monitor {
    client: Client,
}

impl Monitor {
    async fn connect(test: &str) -> Result<Self, String> {
        let conn = format!(
            "host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB} \
             application_name=sp_monitor_{} connect_timeout=2",
            test.chars().take(40).collect::<String>()
        );
        let attempt = async {
            let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
            tokio::spawn(connection);
            client.simple_query("SELECT 1").await?;
            Ok::<_, tokio_postgres::Error>(client)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(client)) => Ok(Self { client }),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer to the startup handshake within 5 s".to_owned()),
        }
    }

    /// The client, for ad-hoc statements.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `sql` (no parameters) and returns the first column of each row
    /// as text (`None` for NULL).
    pub async fn column(&self, sql: &str) -> Vec<Option<String>> {
        self.client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("monitor query {sql:?}: {e}"))
            .into_iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .collect()
    }

    /// The single value `sql` returns.
    pub async fn value(&self, sql: &str) -> Option<String> {
        let mut values = self.column(sql).await;
        assert_eq!(values.len(), 1, "{sql:?} returned {values:?}");
        values.remove(0)
    }

    /// Runs statements.
    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("monitor statement {sql:?}: {e}"));
    }

    /// Process ids of the backends tagged `tag`.
    pub async fn pids(&self, tag: &str) -> Vec<i32> {
        self.client
            .query(PIDS_BY_TAG, &[&tag])
            .await
            .expect("query pg_stat_activity")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// How many backends are tagged `tag`.
    pub async fn count(&self, tag: &str) -> usize {
        self.pids(tag).await.len()
    }

    /// The `state` column of backend `pid` (`idle`, `active`, `idle in
    /// transaction`, ...).
    pub async fn state(&self, pid: i32) -> Option<String> {
        self.client
            .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .expect("query pg_stat_activity")
            .and_then(|row| row.get(0))
    }

    /// Terminates every backend tagged `tag` and waits until they are gone.
    pub async fn terminate_all(&self, tag: &str) -> Vec<i32> {
        self.terminate_with(TERMINATE_BY_TAG, tag).await
    }

    /// [`terminate_all`](Self::terminate_all) with the signals sent back to
    /// back in one statement, rather than one per backend's exit.
    pub async fn terminate_at_once(&self, tag: &str) -> Vec<i32> {
        self.terminate_with(TERMINATE_BY_TAG_AT_ONCE, tag).await
    }

    /// Runs `sql` (one of the two statements above) for `tag`, then waits
    /// until every backend it terminated has exited. Returns their pids.
    async fn terminate_with(&self, sql: &str, tag: &str) -> Vec<i32> {
        let killed: Vec<i32> = self
            .client
            .query(sql, &[&tag])
            .await
            .expect("pg_terminate_backend")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alive = self.pids(tag).await;
            if killed.iter().all(|pid| !alive.contains(pid)) {
                return killed;
            }
            assert!(Instant::now() < deadline, "terminated backends linger");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The path of the server's certificate (Debian's snakeoil,
    /// `CN=localhost`), if TLS is on and the file is readable here.
    pub async fn server_certificate(&self) -> Option<String> {
        if self.value("SHOW ssl").await.as_deref() != Some("on") {
            return None;
        }
        let path = self.value("SHOW ssl_cert_file").await?;
        std::fs::metadata(&path).is_ok().then_some(path)
    }

    /// A new login role (trust auth), dropped when the guard drops.
    pub async fn temp_role(&self, test: &str, extra: &str) -> TempRole {
        let name = unique_tag(&format!("r_{test}"));
        self.exec(&format!("CREATE ROLE \"{name}\" LOGIN {extra}"))
            .await;
        TempRole { name }
    }

    /// A login role that must authenticate with `password` (SCRAM), if
    /// `scripts/pg-test-setup.sh` has been run: the role is a member of the
    /// password group and a wrong password is refused. Otherwise a loud
    /// skip (a panic under `SLOTPOOL_REQUIRE_PG=1`) and `None`.
    pub async fn password_role(&self, test: &str, password: &str) -> Option<TempRole> {
        let group = self
            .value(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{PASSWORD_GROUP}'"
            ))
            .await;
        if group.as_deref() != Some("1") {
            skip(
                test,
                "password authentication is not set up (run scripts/pg-test-setup.sh as root)",
            );
            return None;
        }
        let role = self
            .temp_role(
                test,
                &format!("PASSWORD '{password}' IN ROLE {PASSWORD_GROUP}"),
            )
            .await;
        let probe = format!(
            "host={PG_HOST} port={PG_PORT} user={} dbname={PG_DB} password=certainly-wrong",
            role.name
        );
        if tokio_postgres::connect(&probe, NoTls).await.is_ok() {
            skip(
                test,
                "pg_hba.conf lets password-group members in without a password \
                 (run scripts/pg-test-setup.sh as root)",
            );
            return None;
        }
        Some(role)
    }
}

/// A role that is dropped (with a fresh connection on a helper thread) when
/// the guard drops, even if the test panicked.
pub struct TempRole {
    pub name: String,
}

impl Drop for TempRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let conn = format!("host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB}");
                if let Ok((client, connection)) = tokio_postgres::connect(&conn, NoTls).await {
                    tokio::spawn(connection);
                    // Its sessions first: a role with backends cannot be
                    // dropped.
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                             WHERE usename = $1",
                            &[&name],
                        )
                        .await;
                    let _ = client
                        .batch_execute(&format!("DROP ROLE IF EXISTS \"{name}\""))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

/// Polls `condition` every 5 ms up to `limit`; panics with `what` if it
/// never holds.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The first column of the first row of a tracked or untracked simple
/// query's result.
pub fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })
}

/// The group whose members must log in with a client certificate (see
/// `scripts/pg-test-setup.sh`).
pub const CERT_GROUP: &str = "slotpool_cert_auth";

/// The login role the setup script's client certificates name (CN).
pub const CERT_USER: &str = "slotpool_cert_user";

/// Where `scripts/pg-test-setup.sh` puts its CA and client certificates
/// (`SLOTPOOL_PG_CERT_DIR`, as for the script).
pub fn cert_dir() -> std::path::PathBuf {
    std::env::var_os("SLOTPOOL_PG_CERT_DIR").map_or_else(
        || std::path::PathBuf::from("/var/lib/postgresql/slotpool-test-certs"),
        std::path::PathBuf::from,
    )
}

/// The files `scripts/pg-test-setup.sh` makes for the client-certificate
/// tests, as path strings (see the script for what each one is).
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA that signed `client.crt` and `client-ec.crt`.
    pub ca: String,
    /// CN=[`CERT_USER`], RSA, signed by the CA.
    pub client_cert: String,
    /// Its key, PKCS#8.
    pub client_key: String,
    /// The same key, PKCS#1.
    pub client_key_pkcs1: String,
    /// CN=[`CERT_USER`], P-256, signed by the CA.
    pub ec_cert: String,
    /// Its key, SEC1.
    pub ec_key: String,
    /// An RSA key (PKCS#8) that matches no certificate.
    pub other_key: String,
    /// `client_key`, encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY`).
    pub encrypted_key: String,
    /// `client_key`, encrypted the legacy OpenSSL way (`Proc-Type`).
    pub encrypted_key_pkcs1: String,
    /// CN=[`CERT_USER`], self-signed: the server's CA did not sign it.
    pub rogue_cert: String,
    /// Its key.
    pub rogue_key: String,
}

/// The setup script's certificate files if they are all readable here,
/// otherwise a loud skip (a panic under `SLOTPOOL_REQUIRE_PG=1`) and
/// `None`. Needs no server.
pub fn cert_files_or_skip(test: &str) -> Option<CertFiles> {
    let dir = cert_dir();
    let path = |name: &str| dir.join(name).display().to_string();
    let files = CertFiles {
        ca: path("ca.crt"),
        client_cert: path("client.crt"),
        client_key: path("client.key"),
        client_key_pkcs1: path("client-pkcs1.key"),
        ec_cert: path("client-ec.crt"),
        ec_key: path("client-ec.key"),
        other_key: path("other.key"),
        encrypted_key: path("client-encrypted.key"),
        encrypted_key_pkcs1: path("client-encrypted-pkcs1.key"),
        rogue_cert: path("rogue.crt"),
        rogue_key: path("rogue.key"),
    };
    let all = [
        &files.ca,
        &files.client_cert,
        &files.client_key,
        &files.client_key_pkcs1,
        &files.ec_cert,
        &files.ec_key,
        &files.other_key,
        &files.encrypted_key,
        &files.encrypted_key_pkcs1,
        &files.rogue_cert,
        &files.rogue_key,
    ];
    if let Some(missing) = all.into_iter().find(|f| std::fs::read(f).is_err()) {
        skip(
            test,
            &format!(
                "the client-certificate files are not readable here ({missing}; run \
                 scripts/pg-test-setup.sh as root, or set SLOTPOOL_PG_CERT_DIR)"
            ),
        );
        return None;
    }
    Some(files)
}

impl Monitor {
    /// The certificate files, if the server is set up for the
    /// client-certificate tests: TLS on, `ssl_ca_file` the setup script's,
    /// [`CERT_USER`] a login member of [`CERT_GROUP`] and the `cert` rules
    /// in force. Otherwise a loud skip (a panic under
    /// `SLOTPOOL_REQUIRE_PG=1`) and `None`.
    pub async fn cert_setup(&self, test: &str) -> Option<CertFiles> {
        let files = cert_files_or_skip(test)?;
        let bundle = cert_dir().join("server-ca.crt").display().to_string();
        let ready = self
            .value(&format!(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CERT_USER}' \
                                            AND rolcanlogin) \
                   AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CERT_GROUP}') \
                 THEN current_setting('ssl') = 'on' \
                   AND current_setting('ssl_ca_file') = '{bundle}' \
                   AND pg_has_role('{CERT_USER}', '{CERT_GROUP}', 'MEMBER') \
                   AND (SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL \
                          AND '+{CERT_GROUP}' = ANY(user_name) AND auth_method = 'cert') > 0 \
                 ELSE false END"
            ))
            .await;
        if ready.as_deref() != Some("t") {
            skip(
                test,
                "client-certificate authentication is not set up (run \
                 scripts/pg-test-setup.sh as root)",
            );
            return None;
        }
        Some(files)
    }
}

//! The server: one connection string, as each client spells it.
//!
//! Owns: the connection string and the bench table; no pool.

use super::*;

pub(super) struct Server {
    /// tokio-postgres's config: slotpool, deadpool-postgres, bb8-postgres.
    pub(super) tokio: tokio_postgres::Config,
    /// sqlx's.
    pub(super) sqlx: sqlx::postgres::PgConnectOptions,
    /// `host:port/dbname as user`, no password.
    pub(super) shown: String,
}

impl Server {
    pub(super) fn from_env() -> Result<Self, String> {
        let url = std::env::var("SLOTPOOL_BENCH_PG_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        // tokio-postgres's parse errors do not quote the string.
        let mut tokio = tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("SLOTPOOL_BENCH_PG_URL is not a connection string: {e}"))?;
        tokio
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .application_name(APPLICATION_NAME)
            .connect_timeout(Duration::from_secs(5));
        let host = tokio.get_hosts().first().cloned();
        let port = tokio.get_ports().first().copied().unwrap_or(5432);
        let user = tokio.get_user().unwrap_or("postgres").to_owned();
        let dbname = tokio.get_dbname().unwrap_or(&user).to_owned();
        let mut sqlx = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .port(port)
            .username(&user)
            .database(&dbname)
            .ssl_mode(sqlx::postgres::PgSslMode::Disable)
            .application_name(APPLICATION_NAME);
        let host_shown = match &host {
            Some(Host::Tcp(name)) => {
                sqlx = sqlx.host(name);
                name.clone()
            }
            #[cfg(unix)]
            Some(Host::Unix(dir)) => {
                sqlx = sqlx.socket(dir);
                dir.display().to_string()
            }
            None => {
                tokio.host("localhost");
                sqlx = sqlx.host("localhost");
                "localhost".to_owned()
            }
        };
        if let Some(password) = tokio.get_password() {
            sqlx = sqlx.password(&String::from_utf8_lossy(password));
        }
        Ok(Self {
            tokio,
            sqlx,
            shown: format!("{host_shown}:{port}/{dbname} as {user}"),
        })
    }

    pub(super) async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.tokio.connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

/// Connects once and creates the table; `Err` (a reason to skip) when the
/// server cannot be reached. Returns the server's version.
pub(super) async fn setup(server: &Server) -> Result<String, String> {
    let client = match tokio::time::timeout(Duration::from_secs(10), server.connect()).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => return Err(error_chain(&error)),
        Err(_) => return Err("no answer within 10 s".to_owned()),
    };
    // The server answered: from here on a failure is the bench's, not a skip.
    client
        .batch_execute(SETUP)
        .await
        .unwrap_or_else(|e| panic!("creating slotpool_bench.point_read: {}", error_chain(&e)));
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM slotpool_bench.point_read WHERE id BETWEEN 1 AND $1",
            &[&ROWS],
        )
        .await
        .expect("count rows")
        .get(0);
    assert_eq!(count, i64::from(ROWS), "slotpool_bench.point_read rows");
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .expect("server_version")
        .get(0);
    Ok(version)
}

pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

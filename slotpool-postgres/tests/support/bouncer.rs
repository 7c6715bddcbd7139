//! PgBouncer in transaction mode at 127.0.0.1:6432, as `scripts/pgbouncer.sh
//! start` runs it: whether it answers, and its settings read back from its
//! admin console (`SHOW CONFIG`). Included by path from tests/pooler.rs and
//! tests/fleet.rs (the shared `support` module stays as it is).
#![allow(dead_code)]

use std::time::Duration;

use slotpool::PoolConfig;
use slotpool_postgres::{Config, PgConfig, PoolerMode, Recycling, SslMode};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::support::{PG_USER, skip};

/// Where PgBouncer listens.
pub const BOUNCER_HOST: &str = "127.0.0.1";
/// Its port.
pub const BOUNCER_PORT: u16 = 6432;
/// The forced-user database whose server connections log in as
/// [`FLEET_ROLE`] (tests/fleet.rs counts them by usename).
pub const FLEET_DB: &str = "slotpool_fleet";
/// The role PgBouncer logs in as for [`FLEET_DB`].
pub const FLEET_ROLE: &str = "slotpool_pgbouncer";
/// A database with `pool_size = 2` (the named-statement failure).
pub const INTERLEAVE_DB: &str = "slotpool_interleave";

/// PgBouncer's settings that the tests depend on.
#[derive(Debug, Clone)]
pub struct Bouncer {
    /// `default_pool_size`.
    pub pool_size: u32,
    /// `max_client_conn`.
    pub max_client_conn: u32,
    /// `server_idle_timeout` (None when 0: no timeout).
    pub server_idle_timeout: Option<Duration>,
    /// `client_idle_timeout` (None when 0).
    pub client_idle_timeout: Option<Duration>,
    /// `pool_mode`.
    pub pool_mode: String,
}

/// Reads PgBouncer's settings, or prints a loud SKIPPED line (a failure
/// under `SLOTPOOL_REQUIRE_PG=1`) and gives `None`.
pub async fn bouncer_or_skip(test: &str) -> Option<Bouncer> {
    match read_config().await {
        Ok(bouncer) if bouncer.pool_mode == "transaction" => Some(bouncer),
        Ok(bouncer) => {
            skip(
                test,
                &format!(
                    "PgBouncer at {BOUNCER_HOST}:{BOUNCER_PORT} runs in {} mode, not transaction \
                     (start it with scripts/pgbouncer.sh start)",
                    bouncer.pool_mode
                ),
            );
            None
        }
        Err(why) => {
            skip(
                test,
                &format!(
                    "PgBouncer is not reachable at {BOUNCER_HOST}:{BOUNCER_PORT} ({why}); start it \
                     with scripts/pgbouncer.sh start"
                ),
            );
            None
        }
    }
}

/// `sql` (`SHOW POOLS`, `KILL db`, ...) on the admin console, as rows of
/// text columns.
pub async fn admin(sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let conn = format!(
        "host={BOUNCER_HOST} port={BOUNCER_PORT} user={PG_USER} dbname=pgbouncer connect_timeout=2"
    );
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
        tokio::spawn(connection);
        client.simple_query(sql).await
    };
    let messages = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(messages)) => messages,
        Ok(Err(error)) => return Err(error.to_string()),
        Err(_) => return Err("no answer within 5 s".to_owned()),
    };
    Ok(messages
        .into_iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

async fn read_config() -> Result<Bouncer, String> {
    let rows = admin("SHOW CONFIG").await?;
    let get = |key: &str| -> Result<String, String> {
        rows.iter()
            .find(|row| row.first().and_then(Option::as_deref) == Some(key))
            .and_then(|row| row.get(1).cloned().flatten())
            .ok_or_else(|| format!("SHOW CONFIG has no {key}"))
    };
    let number = |key: &str| -> Result<u64, String> {
        let text = get(key)?;
        text.trim()
            .parse::<f64>()
            .map(|n| n as u64)
            .map_err(|_| format!("{key} = {text:?} is not a number"))
    };
    let seconds = |key: &str| number(key).map(|s| (s > 0).then(|| Duration::from_secs(s)));
    Ok(Bouncer {
        pool_size: number("default_pool_size")? as u32,
        max_client_conn: number("max_client_conn")? as u32,
        server_idle_timeout: seconds("server_idle_timeout")?,
        client_idle_timeout: seconds("client_idle_timeout")?,
        pool_mode: get("pool_mode")?,
    })
}

impl Bouncer {
    /// Settings for a pool through PgBouncer to `dbname`, in pooler mode
    /// with its timeouts given (so the pool's lifetimes are checked, and
    /// derived, against them).
    pub fn settings(&self, tag: &str, dbname: &str) -> PgConfig {
        PgConfig {
            host: BOUNCER_HOST.to_owned(),
            port: Some(u32::from(BOUNCER_PORT)),
            user: PG_USER.to_owned(),
            dbname: dbname.to_owned(),
            sslmode: SslMode::Disable,
            application_name: tag.to_owned(),
            connect_timeout: Some(Duration::from_secs(5)),
            recycling: Recycling::Verified,
            pooler: PoolerMode::Transaction,
            pooler_server_idle_timeout: self.server_idle_timeout,
            pooler_client_idle_timeout: self.client_idle_timeout,
            ..PgConfig::default()
        }
    }

    /// The same without pooler mode (named statements, session state).
    pub fn settings_without_pooler_mode(&self, tag: &str, dbname: &str) -> PgConfig {
        PgConfig {
            pooler: PoolerMode::None,
            ..self.settings(tag, dbname)
        }
    }

    /// A whole configuration with `pool`, its unset lifetimes derived
    /// below the pooler's timeouts, validated.
    pub fn config(&self, pool: PoolConfig, postgres: PgConfig) -> Config {
        let mut config = Config { pool, postgres };
        config.derive_unset_defaults();
        config
            .validate()
            .unwrap_or_else(|e| panic!("pooler config rejected: {e}"));
        config
    }
}

/// Drops every client and server connection of PgBouncer's `db` and lets
/// new ones in again (`KILL`, `RESUME`): a server pool with nothing left
/// by earlier runs.
pub async fn fresh_server_pool(db: &str) {
    admin(&format!("KILL {db}"))
        .await
        .unwrap_or_else(|e| panic!("KILL {db}: {e}"));
    admin(&format!("RESUME {db}"))
        .await
        .unwrap_or_else(|e| panic!("RESUME {db}: {e}"));
}

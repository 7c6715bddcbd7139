//! [`PgConfig`]: the `[postgres]` section, its defaults and its settings
//! table, and how one is read from a connection string.
//!
//! Owns: every PostgreSQL setting and its default. It may not validate
//! (`rules.rs`) or open connections (`target.rs` turns it into a
//! `tokio_postgres::Config`).

use std::str::FromStr;
use std::time::Duration;

use slotpool::ConfigError;
use slotpool::config::schema::{Setting, Settings};

use crate::conn_string::ConnString;
use crate::keywords::{PoolerMode, Recycling, SslMode};
use crate::secret::Secret;
use crate::url::ConnectionString;

/// Largest allowed `postgres.statement_cache_capacity`.
pub const MAX_STATEMENT_CACHE_CAPACITY: u32 = 10_000;

/// Connection-string parameters that have a setting of their own (they are
/// rejected in `postgres.url`; [`PgConfig::from_connection_string`] moves
/// them to their settings).
pub(crate) const OWN_PARAMETERS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "connect_timeout",
    "pooler",
];

/// How each PostgreSQL connection of a pool is opened, checked and reset
/// (the `[postgres]` section).
///
/// The server is named either by `url` or by `host`/`port`/`dbname`, not
/// both; `user` and `password` may complement a `url` that has none (so the
/// password can come from `SLOTPOOL_POSTGRES_PASSWORD` while the url sits in
/// a file). `Debug` and every written form redact the password.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_postgres::{PgConfig, SslMode};

let config: PgConfig =
    "host=db.internal user=app password=hunter2 sslmode=verify-full".parse().unwrap();
assert_eq!(config.sslmode, SslMode::VerifyFull);
assert_eq!(config.password.expose(), "hunter2");
assert!(!format!("{config:?}").contains("hunter2"));
```
"#
)]
#[derive(Debug, Clone, PartialEq)]
pub struct PgConfig {
    /// A libpq connection string naming the server, user and database
    /// (`"postgresql://app@db:5432/app"` or `"host=db user=app"`); any
    /// parameter tokio-postgres knows may appear (`options`,
    /// `target_session_attrs`, `keepalives`, several hosts). `sslmode`,
    /// `sslrootcert`, `sslcert`, `sslkey`, `application_name` and
    /// `connect_timeout` have settings of their own and are rejected here.
    /// Default: `""` (unset).
    pub url: ConnectionString,

    /// Host name, IP address, or a unix-socket directory (an absolute
    /// path). Default: `""`: the url's, else `"localhost"`.
    pub host: String,

    /// TCP port, 1 to 65535. Default: `None` (written `"auto"`): the url's,
    /// else 5432.
    pub port: Option<u32>,

    /// Role to log in as. Default: `""`: the url's, else `"postgres"`. A
    /// [`CredentialsProvider`](crate::CredentialsProvider) set on the
    /// manager replaces it.
    pub user: String,

    /// Database. Default: `""`: the url's, else the server's default (the
    /// user's name).
    pub dbname: String,

    /// Password. Default: empty (none). Written as `"[redacted]"` wherever
    /// the configuration is shown or serialised; set it from
    /// `SLOTPOOL_POSTGRES_PASSWORD` or through a credentials provider
    /// rather than a file.
    pub password: Secret,

    /// TLS: `disable`, `prefer`, `require`, `verify-ca` or `verify-full`,
    /// all through rustls. Default: `prefer`, as libpq.
    pub sslmode: SslMode,

    /// Trusted root certificates for `verify-ca`/`verify-full` (and
    /// `require`, which then verifies the chain as `verify-ca`, libpq's
    /// rule): a PEM file, or `""`/`"system"` for the operating system's
    /// trust store. Default: `""`.
    pub sslrootcert: String,

    /// TLS client certificate, for servers that authenticate clients by
    /// certificate (`cert` in pg_hba.conf, or `clientcert=verify-ca`/
    /// `verify-full`): a PEM file holding the certificate and any
    /// intermediates, sent in every TLS handshake (`prefer`, `require`,
    /// `verify-ca`, `verify-full`); `sslkey` must be set with it, and
    /// `sslmode` must not be `disable`. Read when the manager is built, not
    /// again. Default: `""` (none).
    pub sslcert: String,

    /// The private key of `sslcert`: a PEM file, unencrypted, in PKCS#8,
    /// PKCS#1 (RSA) or SEC1 (EC) form; it must be the certificate's key.
    /// Set with `sslcert`. Default: `""` (none).
    pub sslkey: String,

    /// `application_name` sent at startup (shown in `pg_stat_activity`), at
    /// most 63 bytes. Default: `""`: the url's, else none.
    pub application_name: String,

    /// Bound on the whole connect: DNS, TCP, TLS, authentication and the
    /// startup parameters (tokio-postgres's own `connect_timeout` covers
    /// only the TCP connect of each address; it is set to this too). Also
    /// bounds each reset. `"off"` waits forever.
    /// Default: 10s.
    pub connect_timeout: Option<Duration>,

    /// Server-side `statement_timeout` for every session, sent as a startup
    /// option (no extra round trip); whole milliseconds. Default: `"off"`
    /// (the server's setting).
    pub statement_timeout: Option<Duration>,

    /// Server-side `idle_in_transaction_session_timeout`, sent as a startup
    /// option: the server ends a session left idle inside a transaction
    /// this long. Whole milliseconds. Default: `"off"` (the server's
    /// setting).
    pub idle_in_transaction_session_timeout: Option<Duration>,

    /// Prepared statements each connection keeps for
    /// `PgConnection::prepare_cached`, at most 10 000; least recently used
    /// are evicted (and closed on the server). 0 disables the cache. With
    /// `pooler = "transaction"` it holds no statements but the parameter
    /// types of SQL texts sent unnamed, with the same bound. Default: 100.
    pub statement_cache_capacity: u32,

    /// How connections are checked and reset: `fast`, `verified` or
    /// `clean` (see [`Recycling`]). Default: `verified`.
    pub recycling: Recycling,

    /// What sits between the pool and the server: `none`, or `transaction`
    /// for PgBouncer (or pgcat, PgDog, Supavisor) in transaction mode, which
    /// turns off everything that needs a session (see [`PoolerMode`]).
    /// Default: `none`.
    pub pooler: PoolerMode,

    /// The pooler's `server_idle_timeout`, when known: the pool's
    /// `idle_timeout` and `max_lifetime` must be below it (checked by
    /// [`Config::validate`](crate::Config::validate); when not set they are
    /// derived below it). Whole seconds, as PgBouncer's. Default: `"off"`
    /// (not given: nothing is checked).
    pub pooler_server_idle_timeout: Option<Duration>,

    /// The pooler's `client_idle_timeout`, when known: the pooler closes a
    /// client connection idle this long, so the pool's `idle_timeout` and
    /// `max_lifetime` must be below it (as for
    /// `pooler_server_idle_timeout`). Default: `"off"` (not given).
    pub pooler_client_idle_timeout: Option<Duration>,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            url: ConnectionString::default(),
            host: String::new(),
            port: None,
            user: String::new(),
            dbname: String::new(),
            password: Secret::default(),
            sslmode: SslMode::Prefer,
            sslrootcert: String::new(),
            sslcert: String::new(),
            sslkey: String::new(),
            application_name: String::new(),
            connect_timeout: Some(Duration::from_secs(10)),
            statement_timeout: None,
            idle_in_transaction_session_timeout: None,
            statement_cache_capacity: 100,
            recycling: Recycling::Verified,
            pooler: PoolerMode::None,
            pooler_server_idle_timeout: None,
            pooler_client_idle_timeout: None,
        }
    }
}

impl Settings for PgConfig {
    fn settings() -> Vec<Setting<Self>> {
        slotpool::settings![PgConfig;
            url,
            host,
            port,
            user,
            dbname,
            password,
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            application_name,
            connect_timeout,
            statement_timeout,
            idle_in_transaction_session_timeout,
            statement_cache_capacity,
            recycling,
            pooler,
            pooler_server_idle_timeout,
            pooler_client_idle_timeout,
        ]
    }

    fn problems(&self) -> Vec<ConfigError> {
        crate::rules::problems(self)
    }
}

impl PgConfig {
    /// Every broken rule (empty when valid), each naming the setting
    /// (`postgres.port`), its value (passwords redacted) and the rule.
    #[must_use]
    pub fn problems(&self) -> Vec<ConfigError> {
        <Self as Settings>::problems(self)
    }

    /// The first broken rule, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        <Self as Settings>::validate(self)
    }

    /// Reads a libpq connection string, either form. `sslmode` (all five
    /// modes, which tokio-postgres alone cannot parse), `sslrootcert`,
    /// `sslcert`, `sslkey`, `application_name`, `connect_timeout` (whole
    /// seconds, as libpq), `pooler` (`none` or `transaction`; not a libpq
    /// parameter) and the password move to their settings; every other
    /// parameter stays in `url`. The result is validated.
    pub fn from_connection_string(text: &str) -> Result<Self, ConfigError> {
        let invalid = |rule: String| ConfigError::Invalid {
            setting: "postgres.url",
            value: ConnectionString::new(text).redacted_literal(),
            rule,
        };
        let parsed = ConnString::parse(text).map_err(|e| invalid(e.to_string()))?;
        let mut config = Self::default();
        if let Some(word) = parsed.get("sslmode") {
            config.sslmode = <SslMode as slotpool::config::schema::SettingValue>::from_text(word)
                .map_err(|_| invalid(format!("`sslmode={word}` is not one of disable, prefer, require, verify-ca, verify-full")))?;
        }
        if let Some(path) = parsed.get("sslrootcert") {
            config.sslrootcert = path.to_owned();
        }
        if let Some(path) = parsed.get("sslcert") {
            config.sslcert = path.to_owned();
        }
        if let Some(path) = parsed.get("sslkey") {
            config.sslkey = path.to_owned();
        }
        if let Some(name) = parsed.get("application_name") {
            config.application_name = name.to_owned();
        }
        if let Some(seconds) = parsed.get("connect_timeout") {
            let seconds: i64 = seconds.trim().parse().map_err(|_| {
                invalid("`connect_timeout` must be a whole number of seconds".to_owned())
            })?;
            // libpq: zero or negative means wait forever.
            config.connect_timeout = u64::try_from(seconds)
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs);
        }
        if let Some(word) = parsed.get("pooler") {
            config.pooler = <PoolerMode as slotpool::config::schema::SettingValue>::from_text(word)
                .map_err(|_| invalid(format!("`pooler={word}` is not one of none, transaction")))?;
        }
        if let Some(password) = parsed.get("password") {
            config.password = Secret::new(password);
        }
        let mut moved: Vec<&str> = OWN_PARAMETERS.to_vec();
        moved.push("password");
        config.url = ConnectionString::new(parsed.without(&moved));
        config.validate()?;
        Ok(config)
    }
}

impl FromStr for PgConfig {
    type Err = ConfigError;

    /// [`PgConfig::from_connection_string`].
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_connection_string(text)
    }
}

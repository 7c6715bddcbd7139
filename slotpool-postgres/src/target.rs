//! From settings to what a connect needs: a `tokio_postgres::Config` without
//! the password, the credentials the manager starts with, and a printable
//! name for the server.
//!
//! Owns: how each setting lands in the tokio-postgres configuration: the
//! url first, then `host`/`port`/`dbname`/`user`, then `application_name`,
//! `connect_timeout`, `sslmode`, and `statement_timeout` and
//! `idle_in_transaction_session_timeout` as startup options (`-c name=ms`,
//! no extra round trip). The password is kept out of the base
//! configuration and added per connect from the credentials provider. It
//! may not connect.

use std::str::FromStr;
use std::time::Duration;

use slotpool::ConfigError;
use slotpool::config::schema::SettingValue;
use tokio_postgres::config::Host;

use crate::conn_string::ConnString;
use crate::credentials::Credentials;
use crate::pg_config::PgConfig;
use crate::secret::Secret;
use crate::tls;

/// The role used when neither the settings nor the url name one.
pub const DEFAULT_USER: &str = "postgres";

/// The host used when neither the settings nor the url name one.
pub const DEFAULT_HOST: &str = "localhost";

/// What the manager connects to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Everything but the password.
    pub(crate) base: tokio_postgres::Config,
    /// The user and password the settings give.
    pub(crate) credentials: Credentials,
    /// `host:port/dbname`, for logs and errors.
    pub(crate) name: String,
}

/// The target `config` describes; it must be valid.
pub(crate) fn from_settings(config: &PgConfig) -> Result<Target, ConfigError> {
    config.validate()?;
    let mut url_password = None;
    let mut base = if config.url.is_empty() {
        tokio_postgres::Config::new()
    } else {
        let invalid = |rule: String| ConfigError::Invalid {
            setting: "postgres.url",
            value: config.url.redacted_literal(),
            rule,
        };
        let parsed = ConnString::parse(config.url.expose()).map_err(|e| invalid(e.to_string()))?;
        url_password = parsed.get("password").map(Secret::new);
        tokio_postgres::Config::from_str(&parsed.without(&["password"]))
            .map_err(|e| invalid(crate::error::describe(&e)))?
    };
    if !config.host.is_empty() {
        base.host(&config.host);
    }
    if base.get_hosts().is_empty() && base.get_hostaddrs().is_empty() {
        base.host(DEFAULT_HOST);
    }
    if let Some(port) = config.port {
        // Validated to be 1..=65535.
        base.port(u16::try_from(port).unwrap_or(5432));
    }
    if !config.dbname.is_empty() {
        base.dbname(&config.dbname);
    }
    let user = if config.user.is_empty() {
        base.get_user().unwrap_or(DEFAULT_USER).to_owned()
    } else {
        config.user.clone()
    };
    base.user(&user);
    let password = if config.password.is_empty() {
        url_password
    } else {
        Some(config.password.clone())
    };
    apply_session_settings(&mut base, config);
    Ok(Target {
        name: describe(&base),
        base,
        credentials: Credentials { user, password },
    })
}

/// The target for a tokio-postgres configuration, with the section's other
/// settings; the section must not name a server or credentials itself.
pub(crate) fn from_tokio_postgres(
    mut base: tokio_postgres::Config,
    config: &PgConfig,
) -> Result<Target, ConfigError> {
    config.validate()?;
    let named: [(&'static str, bool, String); 6] = [
        (
            "postgres.url",
            config.url.is_empty(),
            config.url.redacted_literal(),
        ),
        ("postgres.host", config.host.is_empty(), lit(&config.host)),
        ("postgres.port", config.port.is_none(), config.port.shown()),
        ("postgres.user", config.user.is_empty(), lit(&config.user)),
        (
            "postgres.dbname",
            config.dbname.is_empty(),
            lit(&config.dbname),
        ),
        (
            "postgres.password",
            config.password.is_empty(),
            lit(crate::secret::REDACTED),
        ),
    ];
    if let Some((setting, _, value)) = named.into_iter().find(|(_, empty, _)| !empty) {
        return Err(ConfigError::Invalid {
            setting,
            value,
            rule: "must be unset when the server is given as a tokio_postgres::Config".to_owned(),
        });
    }
    let password = match base.get_password() {
        Some(bytes) => Some(Secret::new(String::from_utf8(bytes.to_vec()).map_err(
            |_| ConfigError::Invalid {
                setting: "postgres.password",
                value: lit(crate::secret::REDACTED),
                rule: "must be valid UTF-8".to_owned(),
            },
        )?)),
        None => None,
    };
    if base.get_hosts().is_empty() && base.get_hostaddrs().is_empty() {
        base.host(DEFAULT_HOST);
    }
    let user = base.get_user().unwrap_or(DEFAULT_USER).to_owned();
    base.user(&user);
    apply_session_settings(&mut base, config);
    Ok(Target {
        name: describe(&base),
        base,
        credentials: Credentials { user, password },
    })
}

fn lit(text: &str) -> String {
    slotpool::config::schema::Value::String(text.to_owned()).literal()
}

/// `application_name`, `connect_timeout`, `sslmode` and the server-side
/// timeouts as startup options, after any `options` the url had.
fn apply_session_settings(base: &mut tokio_postgres::Config, config: &PgConfig) {
    if !config.application_name.is_empty() {
        base.application_name(&config.application_name);
    }
    if let Some(timeout) = config.connect_timeout {
        base.connect_timeout(timeout);
    }
    base.ssl_mode(tls::tokio_mode(config.sslmode));
    let mut options: Vec<String> = base
        .get_options()
        .filter(|o| !o.trim().is_empty())
        .map(|o| vec![o.to_owned()])
        .unwrap_or_default();
    let server_timeouts = [
        ("statement_timeout", config.statement_timeout),
        (
            "idle_in_transaction_session_timeout",
            config.idle_in_transaction_session_timeout,
        ),
    ];
    for (name, timeout) in server_timeouts {
        if let Some(timeout) = timeout {
            options.push(format!("-c {name}={}", millis(timeout)));
        }
    }
    if !options.is_empty() {
        base.options(options.join(" "));
    }
}

fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

/// `host:port[,host:port]/dbname`: the server, without credentials.
fn describe(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| {
        ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            #[cfg(unix)]
            Host::Unix(path) => format!("{}:{}", path.display(), port(i)),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config
            .get_hostaddrs()
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{addr}:{}", port(i)))
            .collect();
    }
    let dbname = config.get_dbname().unwrap_or("(the user's database)");
    format!("{}/{dbname}", hosts.join(","))
}

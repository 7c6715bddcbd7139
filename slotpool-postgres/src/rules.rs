//! The validation rules of the `[postgres]` section.
//!
//! Owns: every rule, each reported as a `ConfigError::Invalid` naming the
//! setting, its value (passwords redacted, since the setting types redact
//! themselves) and the rule. It may not touch the file system or the
//! network: a missing `sslrootcert`, `sslcert` or `sslkey` file is reported
//! when the manager is built.

use std::str::FromStr;
use std::time::Duration;

use slotpool::ConfigError;
use slotpool::config::schema::Problems;

use crate::conn_string::ConnString;
use crate::keywords::{PoolerMode, Recycling, SslMode};
use crate::pg_config::{MAX_STATEMENT_CACHE_CAPACITY, OWN_PARAMETERS, PgConfig};

/// PostgreSQL truncates identifiers (and `application_name`) past this.
pub const MAX_APPLICATION_NAME_LEN: usize = 63;

/// The largest server-side timeout, in milliseconds (an `int` GUC).
const MAX_SERVER_TIMEOUT_MS: u128 = i32::MAX as u128;

/// Every broken rule of `config`.
pub(crate) fn problems(config: &PgConfig) -> Vec<ConfigError> {
    let mut p = Problems::default();
    url_rules(config, &mut p);
    target_rules(config, &mut p);
    tls_rules(config, &mut p);
    session_rules(config, &mut p);
    pooler_rules(config, &mut p);
    p.require(
        config.statement_cache_capacity <= MAX_STATEMENT_CACHE_CAPACITY,
        "postgres.statement_cache_capacity",
        &config.statement_cache_capacity,
        || format!("must be <= {MAX_STATEMENT_CACHE_CAPACITY}"),
    );
    p.into_vec()
}

/// The url reads, tokio-postgres accepts it, and it does not say what a
/// setting says.
fn url_rules(config: &PgConfig, p: &mut Problems) {
    if config.url.is_empty() {
        return;
    }
    let url = &config.url;
    let parsed = match ConnString::parse(url.expose()) {
        Ok(parsed) => parsed,
        Err(error) => {
            p.require(false, "postgres.url", url, || {
                format!("is not a connection string: {error}")
            });
            return;
        }
    };
    for key in OWN_PARAMETERS {
        p.require(!parsed.has(key), "postgres.url", url, || {
            format!(
                "must not set `{key}`: use the `postgres.{key}` setting \
                 (PgConfig::from_connection_string moves it there)"
            )
        });
    }
    let stripped = parsed.without(&["password"]);
    let target = match tokio_postgres::Config::from_str(&stripped) {
        Ok(target) => target,
        Err(error) => {
            p.require(false, "postgres.url", url, || {
                format!(
                    "is not a connection string tokio-postgres accepts: {}",
                    crate::error::describe(&error)
                )
            });
            return;
        }
    };
    p.require(
        config.host.is_empty(),
        "postgres.host",
        &config.host,
        || "must be empty when `postgres.url` is set: the url names the server".to_owned(),
    );
    p.require(config.port.is_none(), "postgres.port", &config.port, || {
        "must be \"auto\" when `postgres.url` is set: the url names the server".to_owned()
    });
    p.require(
        config.dbname.is_empty(),
        "postgres.dbname",
        &config.dbname,
        || "must be empty when `postgres.url` is set: the url names the database".to_owned(),
    );
    p.require(
        config.user.is_empty() || target.get_user().is_none(),
        "postgres.user",
        &config.user,
        || "must be empty when `postgres.url` names a user: say it in one place".to_owned(),
    );
    p.require(
        config.password.is_empty() || !parsed.has("password"),
        "postgres.password",
        &config.password,
        || "must be empty when `postgres.url` holds a password: say it in one place".to_owned(),
    );
}

/// `host`, `port`, `user`, `dbname`, `password` on their own.
fn target_rules(config: &PgConfig, p: &mut Problems) {
    p.require(
        !config
            .host
            .chars()
            .any(|c| c == ',' || c.is_whitespace() || c == '\0'),
        "postgres.host",
        &config.host,
        || "must be one host name, address or socket directory (list several hosts in `postgres.url`)"
            .to_owned(),
    );
    p.require(
        config.port.is_none_or(|port| (1..=65_535).contains(&port)),
        "postgres.port",
        &config.port,
        || "must be from 1 to 65535, or \"auto\"".to_owned(),
    );
    for (setting, value) in [
        ("postgres.user", &config.user),
        ("postgres.dbname", &config.dbname),
    ] {
        p.require(!value.contains('\0'), setting, value, || {
            "must not contain NUL characters".to_owned()
        });
    }
    p.require(
        !config.password.expose().contains('\0'),
        "postgres.password",
        &config.password,
        || "must not contain NUL characters".to_owned(),
    );
}

fn tls_rules(config: &PgConfig, p: &mut Problems) {
    p.require(
        config.sslrootcert.is_empty() || !matches!(config.sslmode, SslMode::Disable | SslMode::Prefer),
        "postgres.sslrootcert",
        &config.sslrootcert,
        || {
            format!(
                "has no effect with sslmode \"{}\": use \"require\", \"verify-ca\" or \"verify-full\"",
                config.sslmode
            )
        },
    );
    client_certificate_rules(config, p);
    for (setting, value) in [
        ("postgres.sslrootcert", &config.sslrootcert),
        ("postgres.sslcert", &config.sslcert),
        ("postgres.sslkey", &config.sslkey),
    ] {
        p.require(!value.contains('\0'), setting, value, || {
            "must not contain NUL characters".to_owned()
        });
    }
}

/// `sslcert` and `sslkey` come together, and need TLS. (Whether the files
/// exist and match is checked when the manager is built.)
fn client_certificate_rules(config: &PgConfig, p: &mut Problems) {
    let pairs = [
        (
            "postgres.sslcert",
            &config.sslcert,
            "postgres.sslkey",
            &config.sslkey,
            "its private key",
        ),
        (
            "postgres.sslkey",
            &config.sslkey,
            "postgres.sslcert",
            &config.sslcert,
            "its certificate",
        ),
    ];
    for (setting, value, other, other_value, what) in pairs {
        p.require(
            value.is_empty() || !other_value.is_empty(),
            other,
            other_value,
            || {
                format!(
                    "must be set when `{setting}` is set ({}): a client certificate is sent with \
                 {what}; set both or neither",
                    slotpool::config::schema::Value::String(value.clone()).literal()
                )
            },
        );
    }
    for (setting, value) in [
        ("postgres.sslcert", &config.sslcert),
        ("postgres.sslkey", &config.sslkey),
    ] {
        p.require(
            value.is_empty() || config.sslmode != SslMode::Disable,
            setting,
            value,
            || {
                "has no effect with sslmode \"disable\": without TLS no client certificate is \
                 sent; use \"prefer\" or a stricter mode, or leave it unset"
                    .to_owned()
            },
        );
    }
}

/// `application_name` and the three timeouts.
fn session_rules(config: &PgConfig, p: &mut Problems) {
    p.require(
        config.application_name.len() <= MAX_APPLICATION_NAME_LEN
            && !config.application_name.contains('\0'),
        "postgres.application_name",
        &config.application_name,
        || {
            format!(
                "must be at most {MAX_APPLICATION_NAME_LEN} bytes without NUL characters \
                 (PostgreSQL truncates longer names)"
            )
        },
    );
    p.require(
        config.connect_timeout.is_none_or(|d| !d.is_zero()),
        "postgres.connect_timeout",
        &config.connect_timeout,
        || "must be > 0 (\"off\" waits forever)".to_owned(),
    );
    for (setting, value) in [
        ("postgres.statement_timeout", &config.statement_timeout),
        (
            "postgres.idle_in_transaction_session_timeout",
            &config.idle_in_transaction_session_timeout,
        ),
    ] {
        p.require(value.is_none_or(server_timeout_ok), setting, value, || {
            format!(
                "must be a whole number of milliseconds from 1ms to {MAX_SERVER_TIMEOUT_MS}ms \
                 (\"off\" leaves the server's setting)"
            )
        });
    }
}

fn server_timeout_ok(timeout: Duration) -> bool {
    let ms = timeout.as_millis();
    (1..=MAX_SERVER_TIMEOUT_MS).contains(&ms) && timeout.subsec_nanos().is_multiple_of(1_000_000)
}

/// `pooler` and the pooler's timeouts (the nesting with the pool's
/// lifetimes is `crate::pooler::pool_rules`, which sees both sections).
fn pooler_rules(config: &PgConfig, p: &mut Problems) {
    for (setting, value) in [
        (
            "postgres.pooler_server_idle_timeout",
            &config.pooler_server_idle_timeout,
        ),
        (
            "postgres.pooler_client_idle_timeout",
            &config.pooler_client_idle_timeout,
        ),
    ] {
        p.require(
            value.is_none_or(|d| d.as_secs() >= 1 && d.subsec_nanos() == 0),
            setting,
            value,
            || {
                "must be a whole number of seconds, at least 1s, as the pooler's setting \
                 (\"off\" when not given; a pooler's 0 means no timeout: leave it \"off\")"
                    .to_owned()
            },
        );
    }
    if config.pooler != PoolerMode::Transaction {
        return;
    }
    let because = "with postgres.pooler = \"transaction\"";
    for (setting, value) in [
        ("postgres.statement_timeout", &config.statement_timeout),
        (
            "postgres.idle_in_transaction_session_timeout",
            &config.idle_in_transaction_session_timeout,
        ),
    ] {
        p.require(value.is_none(), setting, value, || {
            format!(
                "must be \"off\" {because}: it is a startup option, which PgBouncer refuses \
                 (\"unsupported startup parameter: options\") and a pooler could not keep per \
                 client anyway; set it per role (ALTER ROLE .. SET) or with SET LOCAL in a \
                 transaction"
            )
        });
    }
    p.require(
        config.recycling != Recycling::Clean,
        "postgres.recycling",
        &config.recycling,
        || {
            format!(
                "must be \"fast\" or \"verified\" {because}: \"clean\" resets session state \
                 on whichever server connection the pooler picks, not on the one that was used"
            )
        },
    );
    if config.url.is_empty() {
        return;
    }
    if let Ok(parsed) = ConnString::parse(config.url.expose()) {
        p.require(!parsed.has("options"), "postgres.url", &config.url, || {
            format!(
                "must not set `options` {because}: PgBouncer refuses the startup parameter \
                 (\"unsupported startup parameter: options\")"
            )
        });
    }
}

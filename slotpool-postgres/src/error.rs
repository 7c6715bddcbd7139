//! [`PgError`]: what building a manager, connecting, checking and resetting
//! fail with, and messages that say what happened without a secret in them.
//!
//! Owns: the error type, its messages (the server's SQLSTATE and message
//! for server errors, the I/O cause for network errors, the target as
//! `host:port/dbname` and user, never a password) and its accessors. It may
//! not classify (`classify.rs` does).
//!
//! What tokio-postgres puts in its errors was checked for secrets: a
//! `tokio_postgres::Error` displays only its kind, its cause is the
//! server's `DbError` (severity, code, message, detail, hint: the server
//! never echoes a password) or an I/O or TLS error; `tokio_postgres::Config`'s
//! `Debug` redacts the password. Connection-string parse errors can quote a
//! fragment of the string, so this crate reads connection strings itself
//! first and reports its own messages (byte offsets, no text).

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use slotpool::ConfigError;
use slotpool::config::BoxError;
use tokio_postgres::error::SqlState;

/// An error from [`PgManager`](crate::PgManager) or the checks and resets it
/// runs. No variant's `Display` or `Debug` holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The settings break a rule (names the setting, value and rule).
    #[error("invalid PostgreSQL settings: {0}")]
    Config(#[from] ConfigError),

    /// The TLS configuration could not be built (e.g. `sslrootcert` names a
    /// file that is missing or holds no certificate).
    #[error("cannot set up TLS (sslmode {sslmode}): {reason}")]
    Tls {
        /// The `sslmode` setting.
        sslmode: crate::SslMode,
        /// What went wrong, naming the setting and file.
        reason: String,
    },

    /// A client certificate file (`sslcert` or `sslkey`) cannot be used.
    /// Both are read when the manager is built, so this fails
    /// [`PgManager::new`](crate::PgManager::new), never a connect.
    #[error("cannot use the TLS client certificate: `{setting}` file `{path}` {problem}")]
    ClientCert {
        /// `postgres.sslcert` or `postgres.sslkey`.
        setting: &'static str,
        /// The path, as the setting gives it.
        path: String,
        /// What is wrong with the file.
        #[source]
        problem: ClientCertProblem,
    },

    /// The [`CredentialsProvider`](crate::CredentialsProvider) failed.
    #[error("cannot get credentials to connect to {target}: {source}")]
    Credentials {
        /// `host:port/dbname` (no credentials).
        target: String,
        /// The provider's error.
        #[source]
        source: BoxError,
    },

    /// The connect (TCP, TLS, authentication, startup) did not finish within
    /// `connect_timeout`.
    #[error("connecting to {target} took longer than connect_timeout ({timeout:?})")]
    ConnectTimeout {
        /// `host:port/dbname`.
        target: String,
        /// The `connect_timeout` setting.
        timeout: Duration,
    },

    /// The connect failed: the server refused it (SQLSTATE in the
    /// message), the network failed, or TLS failed.
    #[error("cannot connect to {target} as {user}: {}", describe(.source))]
    Connect {
        /// `host:port/dbname`.
        target: String,
        /// The role connecting.
        user: String,
        /// tokio-postgres's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A statement on an open connection failed (a check, a reset, or a
    /// borrower's query converted with `?`).
    #[error("{}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),

    /// The manager was asked to connect outside a tokio runtime
    /// (tokio-postgres's sockets and the connection's task need one): build
    /// the pool with `slotpool::runtime::Tokio`.
    #[error(
        "slotpool-postgres connects on a tokio runtime, and this call ran outside one \
         (build the pool with slotpool::runtime::Tokio)"
    )]
    NoTokioRuntime,

    /// The connection's task has ended (the server or network closed it).
    #[error("the connection to the server is closed")]
    Closed,

    /// A reset did not finish within `connect_timeout`.
    #[error("{what} took longer than {timeout:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The bound.
        timeout: Duration,
    },
}

impl PgError {
    /// The underlying tokio-postgres error, if any.
    #[must_use]
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Postgres(source) => Some(source),
            _ => None,
        }
    }

    /// The server's error response, if the server sent one.
    #[must_use]
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        self.postgres().and_then(tokio_postgres::Error::as_db_error)
    }

    /// The SQLSTATE the server sent, if any (`28P01` for a wrong password).
    #[must_use]
    pub fn code(&self) -> Option<&SqlState> {
        self.as_db_error().map(tokio_postgres::error::DbError::code)
    }

    /// Whether the error happened while opening a connection (as opposed to
    /// on one that was open).
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::Config(_)
                | Self::Tls { .. }
                | Self::ClientCert { .. }
                | Self::Credentials { .. }
                | Self::ConnectTimeout { .. }
                | Self::Connect { .. }
                | Self::NoTokioRuntime
        )
    }
}

/// What is wrong with a `sslcert` or `sslkey` file
/// ([`PgError::ClientCert`] names the setting and the path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCertProblem {
    /// The file cannot be read (missing, no permission, a directory).
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),

    /// The file is not well-formed PEM (a section without its end line,
    /// bad base64).
    #[error("is not valid PEM: {0}")]
    BadPem(String),

    /// `sslcert` holds no `-----BEGIN CERTIFICATE-----` section.
    #[error("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate,

    /// `sslkey` holds no unencrypted private key in PEM.
    #[error(
        "holds no PEM private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 \
         `EC PRIVATE KEY`)"
    )]
    NoKey,

    /// `sslkey` holds a password-protected key (`ENCRYPTED PRIVATE KEY`, or
    /// OpenSSL's `Proc-Type: 4,ENCRYPTED`). There is no `sslpassword`
    /// setting: keep the key unencrypted, readable only by the service.
    #[error(
        "holds an encrypted private key, and this crate has no `sslpassword`: decrypt it \
         (`openssl pkey -in <key> -out <plain key>`) and restrict who may read the file"
    )]
    EncryptedKey,

    /// `sslkey`'s key is not the key of `sslcert`'s first certificate.
    #[error(
        "holds a private key that does not match the certificate in `postgres.sslcert` file `{certificate}`"
    )]
    KeyMismatch {
        /// The `sslcert` path.
        certificate: String,
    },

    /// rustls (ring) cannot use the certificate or key: a certificate that
    /// does not parse, a key type other than RSA, ECDSA P-256/P-384 or
    /// Ed25519.
    #[error("cannot be used: {0}")]
    Unusable(String),
}

/// A tokio-postgres error in one line: for a server error its severity,
/// SQLSTATE, message, detail and hint (`FATAL 28P01: password
/// authentication failed for user "app"`); otherwise its kind and the chain
/// of causes (`error connecting to server: Connection refused (os error
/// 111)`).
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    Describe(error).to_string()
}

struct Describe<'a>(&'a tokio_postgres::Error);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(
                f,
                "{} {}: {}",
                db.severity(),
                db.code().code(),
                db.message()
            )?;
            if let Some(detail) = db.detail() {
                write!(f, " (DETAIL: {detail})")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, " (HINT: {hint})")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

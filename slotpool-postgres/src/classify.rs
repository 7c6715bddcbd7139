//! Fatal-error classification: which errors mean "retrying cannot help" or
//! "this connection is finished", by SQLSTATE and by the phase the error
//! came from.
//!
//! Owns: [`classify`]. The pool uses it for connect errors (a permanent one
//! fails waiting callers at once instead of letting them wait out their
//! timeout, and stops background retries until the next request) and for
//! `PooledConnection::note_error` (a permanent one closes the connection on
//! return). It may not look at anything but the error.
//!
//! | error | class |
//! |---|---|
//! | SQLSTATE class 08 (connection exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now | permanent |
//! | class 28 (28000 invalid authorization, 28P01 wrong password), 3D000 no such database | permanent |
//! | 53300 too many connections | transient |
//! | I/O errors while connecting (refused, reset, unreachable) and the `connect_timeout` bound | transient |
//! | TLS: a certificate that fails verification, a server without TLS under `require` | permanent |
//! | invalid settings, an unusable `sslcert`/`sslkey` file, a connection string tokio-postgres rejects, a password the server asks for and none is set, no tokio runtime | permanent |
//! | a failing [`CredentialsProvider`](crate::CredentialsProvider) | transient |
//! | on an open connection: closed, an I/O error, any FATAL or PANIC from the server | permanent (the connection is finished) |
//! | anything else (a syntax error, a constraint violation) | transient (the connection is fine) |
//!
//! 57P01–57P03 are permanent as the issue asks: "permanent" stops the pool
//! hammering a server that is shutting down or starting up, and fails the
//! requests that arrive meanwhile at once; the next request retries, so a
//! restart costs the requests made while the server is down, not a stuck
//! pool.

use std::error::Error as _;

use rustls::Error as TlsError;
use slotpool::ErrorClass;
use tokio_postgres::error::{Severity, SqlState};

use crate::error::PgError;

/// How the pool should treat `error`: see the module table.
#[must_use]
pub fn classify(error: &PgError) -> ErrorClass {
    match error {
        PgError::Config(_)
        | PgError::Tls { .. }
        | PgError::ClientCert { .. }
        | PgError::NoTokioRuntime => ErrorClass::Permanent,
        PgError::Credentials { .. } | PgError::ConnectTimeout { .. } => ErrorClass::Transient,
        PgError::Connect { source, .. } => connect_class(source),
        PgError::Postgres(source) => open_class(source),
        PgError::Closed => ErrorClass::Permanent,
        PgError::Timeout { .. } => ErrorClass::Permanent,
    }
}

/// Whether `code` says the session cannot go on or cannot start.
fn fatal_code(code: &SqlState) -> bool {
    let text = code.code();
    text.starts_with("08")
        || text.starts_with("28")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::INVALID_CATALOG_NAME
}

fn connect_class(error: &tokio_postgres::Error) -> ErrorClass {
    if let Some(db) = error.as_db_error() {
        return if fatal_code(db.code()) {
            ErrorClass::Permanent
        } else {
            // 53300 too many connections, 53xxx out of resources, anything
            // else the server may get over.
            ErrorClass::Transient
        };
    }
    if let Some(tls) = find_tls_error(error) {
        return tls_class(tls);
    }
    if find_io_error(error).is_some() {
        return ErrorClass::Transient;
    }
    // tokio-postgres has no public error kind; its `Display` is the kind's
    // fixed text. TLS without an I/O cause is "server does not support TLS"
    // or a missing connector; the others are settings problems.
    match error.to_string().as_str() {
        "error performing TLS handshake"
        | "invalid configuration"
        | "invalid connection string"
        | "authentication error" => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

pub(crate) fn open_class(error: &tokio_postgres::Error) -> ErrorClass {
    if error.is_closed() {
        return ErrorClass::Permanent;
    }
    if let Some(db) = error.as_db_error() {
        let fatal = matches!(
            db.parsed_severity(),
            Some(Severity::Fatal | Severity::Panic)
        );
        return if fatal || fatal_code(db.code()) {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        };
    }
    if find_io_error(error).is_some() {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    }
}

/// A certificate the verifier rejected, or a handshake the peers cannot
/// agree on, is a configuration problem; anything else in TLS is not.
fn tls_class(error: &TlsError) -> ErrorClass {
    match error {
        TlsError::InvalidCertificate(_)
        | TlsError::NoCertificatesPresented
        | TlsError::UnsupportedNameType
        | TlsError::PeerIncompatible(_)
        | TlsError::InvalidCertRevocationList(_)
        | TlsError::AlertReceived(_) => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

fn causes<'a>(
    error: &'a tokio_postgres::Error,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(
        error.source(),
        |e: &&'a (dyn std::error::Error + 'static)| {
            let e: &'a (dyn std::error::Error + 'static) = *e;
            e.source()
        },
    )
}

fn find_io_error(error: &tokio_postgres::Error) -> Option<&std::io::Error> {
    causes(error).find_map(|e| e.downcast_ref::<std::io::Error>())
}

/// rustls reports through tokio-rustls as an `io::Error` (`InvalidData`)
/// wrapping the `rustls::Error`.
fn find_tls_error(error: &tokio_postgres::Error) -> Option<&TlsError> {
    causes(error).find_map(|e| {
        e.downcast_ref::<TlsError>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<TlsError>())
        })
    })
}

impl PgError {
    /// [`classify`] this error.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        classify(self)
    }
}

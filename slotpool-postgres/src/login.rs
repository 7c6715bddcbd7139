//! One login: credentials from the provider, then TCP, TLS and the startup
//! exchange with the target.
//!
//! Owns: that sequence and its errors (`PgError::Credentials` for a
//! provider that fails, `PgError::Connect` naming the server and the user),
//! and bounding a whole connect by `connect_timeout`
//! (`PgError::ConnectTimeout`). It is shared by the pool's manager and the
//! listener, which differ in what they do with the connection. It may not
//! spawn the connection's task.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::credentials::CredentialsProvider;
use crate::error::PgError;
use crate::target::Target;

/// The stream of a connection made through [`MakeRustlsConnect`].
pub(crate) type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// A logged-in session: the client, the connection to drive, and the user
/// it logged in as.
pub(crate) struct Login {
    pub(crate) client: Client,
    pub(crate) connection: Connection<Socket, TlsStream>,
    pub(crate) user: String,
}

/// Asks `provider` for credentials and logs in to `target` through `tls`.
pub(crate) async fn login(
    target: &Target,
    tls: &MakeRustlsConnect,
    provider: &dyn CredentialsProvider,
) -> Result<Login, PgError> {
    let credentials = provider
        .credentials()
        .await
        .map_err(|source| PgError::Credentials {
            target: target.name.clone(),
            source,
        })?;
    let mut config = target.base.clone();
    config.user(&credentials.user);
    if let Some(password) = &credentials.password {
        config.password(password.expose());
    }
    tracing::debug!(server = %target.name, user = %credentials.user, "connecting to PostgreSQL");
    let (client, connection) =
        config
            .connect(tls.clone())
            .await
            .map_err(|source| PgError::Connect {
                target: target.name.clone(),
                user: credentials.user.clone(),
                source,
            })?;
    Ok(Login {
        client,
        connection,
        user: credentials.user,
    })
}

/// Runs `connect` (a whole connect to `target`: the login and whatever the
/// caller does before the connection is ready) within `connect_timeout`,
/// when one is set.
pub(crate) async fn within<T>(
    connect_timeout: Option<Duration>,
    target: &Target,
    connect: impl Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    match connect_timeout {
        Some(timeout) => {
            tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| PgError::ConnectTimeout {
                    target: target.name.clone(),
                    timeout,
                })?
        }
        None => connect.await,
    }
}

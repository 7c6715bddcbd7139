//! Credentials for each new connection: [`Credentials`], the
//! [`CredentialsProvider`] trait and its static implementation.
//!
//! Owns: what a provider returns and how it is called. It may not cache:
//! the manager asks the provider for every connection it opens, so a
//! rotated password or a fresh IAM token is used from the next connect on.
//!
//! # Why async
//!
//! The provider is called once per new connection, inside the connect
//! task, on the application's runtime. The providers that motivate it fetch
//! over the network (a Vault lease, a cloud metadata endpoint refreshing the
//! keys an IAM token is signed with): a synchronous call would block a
//! runtime worker thread for that round trip, stalling every task on it.
//! An async provider costs one boxed future per connect, which is noise
//! next to a TCP and TLS handshake; a provider with nothing to await
//! returns a ready future. The trait returns a boxed future (rather than
//! `async fn`) so that it is object-safe: the manager holds
//! `Arc<dyn CredentialsProvider>` and swaps it at run time.
//!
//! # Rotation
//!
//! Swap the provider (or the static credentials) with
//! [`PgManager::set_credentials_provider`](crate::PgManager::set_credentials_provider)
//! or [`PgManager::set_credentials`](crate::PgManager::set_credentials),
//! then call `pool.evict_idle()`: idle connections are closed now and
//! checked-out ones when they come back, and every connection opened
//! afterwards logs in with the new credentials.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use slotpool::config::BoxError;

use crate::secret::Secret;

/// A user name and its password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The role to log in as.
    pub user: String,
    /// Its password or token; `None` for trust or certificate
    /// authentication.
    pub password: Option<Secret>,
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            user: user.into(),
            password: Some(password.into()),
        }
    }

    /// `user` without a password.
    pub fn without_password(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

/// The future a [`CredentialsProvider`] returns.
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, BoxError>> + Send + 'a>>;

/// Supplies the credentials of each new connection (see the module docs for
/// why it is async). An error fails that connect; the pool treats it as
/// transient and retries with backoff. Its message is shown as is: keep
/// secrets out of it.
///
/// Any `Fn() -> impl Future<Output = Result<Credentials, BoxError>>` is a
/// provider:
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_postgres::{Credentials, CredentialsProvider};

fn takes(_: impl CredentialsProvider) {}
takes(|| async {
    let token = "fetched from a secret store".to_owned();
    Ok(Credentials::new("app", token))
});
```
"#
)]
pub trait CredentialsProvider: Send + Sync + 'static {
    /// The credentials for the connection being opened now.
    fn credentials(&self) -> CredentialsFuture<'_>;
}

/// The same credentials for every connection: what the manager uses when
/// no provider was set (from `user`/`password` or the url).
#[derive(Debug, Clone)]
pub struct StaticCredentials(Credentials);

impl StaticCredentials {
    /// Always `credentials`.
    #[must_use]
    pub fn new(credentials: Credentials) -> Self {
        Self(credentials)
    }

    /// The credentials it returns.
    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.0
    }
}

impl CredentialsProvider for StaticCredentials {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

impl<F, Fut> CredentialsProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, BoxError>> + Send + 'static,
{
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self())
    }
}

//! TLS for each `sslmode`, through rustls with the ring provider, and the
//! trusted roots for the verifying modes.
//!
//! Owns: the mapping from `sslmode` (plus `sslrootcert`) to tokio-postgres's
//! three modes and a rustls client configuration, loading roots, and
//! loading the client certificate (`sslcert`, `sslkey`). It may not connect
//! or validate settings (`rules.rs` does).
//!
//! | `sslmode` | tokio-postgres | certificate check |
//! |---|---|---|
//! | `disable` | `Disable` | none (no TLS) |
//! | `prefer` | `Prefer` | none: any certificate, signatures checked |
//! | `require` | `Require` | none; with `sslrootcert` set, the chain (libpq's rule) |
//! | `verify-ca` | `Require` | the chain must reach a trusted root; any host name |
//! | `verify-full` | `Require` | the chain, and the certificate must name the host |
//!
//! tokio-postgres itself parses only the first three and rejects
//! `verify-ca`/`verify-full` in a connection string, which is why this
//! crate reads `sslmode` itself.
//!
//! # Where trusted roots come from
//!
//! `sslrootcert` names a PEM file; empty or `"system"` means the operating
//! system's trust store, read with rustls-native-certs (the `SSL_CERT_FILE`
//! and `SSL_CERT_DIR` variables apply). This is libpq's
//! `sslrootcert=system`. webpki-roots (Mozilla's list compiled in) was the
//! alternative and was not chosen: database servers are usually signed by a
//! private or cloud-provider CA (Amazon RDS, Cloud SQL) that is not in
//! Mozilla's list, and operators install those in the system store, which
//! also gets CA updates with OS patches rather than with a crate release. A
//! container without a CA bundle has an empty store; the manager then
//! fails to build with a message naming `sslrootcert`.
//!
//! # Client certificates
//!
//! `sslcert` and `sslkey` name PEM files: the certificate (followed by any
//! intermediates, all sent to the server) and its private key, unencrypted,
//! in PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC
//! PRIVATE KEY`); RSA, ECDSA P-256/P-384 and Ed25519 keys. Both or neither
//! must be set (validation says so). They apply to every mode that uses
//! TLS:
//!
//! | `sslmode` | client certificate |
//! |---|---|
//! | `disable` | setting one is a validation error (no TLS, nothing to send it on; libpq ignores it silently) |
//! | `prefer` | sent if the server asks for one and TLS is negotiated; a server without TLS gets plain text and no certificate |
//! | `require`, `verify-ca`, `verify-full` | sent if the server asks for one (it asks when its `ssl_ca_file` is set) |
//!
//! The files are read once, when the manager is built, as the roots are: a
//! missing or unreadable file, a certificate file without a certificate, a
//! key file without a key, an encrypted key (there is no `sslpassword`) or
//! a key that is not the certificate's fails
//! [`PgManager::new`](crate::PgManager::new) with
//! [`PgError::ClientCert`], naming the setting, the path and the problem
//! ([`ClientCertProblem`](crate::ClientCertProblem)). They are not read
//! again: a renewed certificate is used by a manager built after the
//! renewal (a new pool), not by [`set_credentials`] and
//! `evict_idle`, which rotate only the user and password. Unlike libpq there
//! are no defaults (`~/.postgresql/postgresql.crt`), the key file's
//! permissions are not checked, and paths are taken as given (relative to
//! the working directory, no `~`).
//!
//! [`set_credentials`]: crate::PgManager::set_credentials

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{ClientCertProblem, PgError};
use crate::keywords::SslMode;
use crate::pg_config::PgConfig;
use crate::verifiers::Lenient;

/// The `sslrootcert` word for the system store.
pub const SYSTEM_ROOTS: &str = "system";

/// tokio-postgres's mode for `mode`.
pub(crate) fn tokio_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as Tp;
    match mode {
        SslMode::Disable => Tp::Disable,
        SslMode::Prefer => Tp::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Tp::Require,
    }
}

/// The connector for `settings`' `sslmode`, with roots from `sslrootcert`
/// and the client certificate from `sslcert`/`sslkey`. Every file is read
/// here, once, so a missing or unusable one fails the manager's
/// construction. `settings` must be valid.
pub(crate) fn connector(settings: &PgConfig) -> Result<MakeRustlsConnect, PgError> {
    let mode = settings.sslmode;
    let tls_error = |reason: String| PgError::Tls {
        sslmode: mode,
        reason,
    };
    let identity = match mode {
        // Validation rejects a client certificate with `disable`.
        SslMode::Disable => None,
        SslMode::Prefer | SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            client_identity(&settings.sslcert, &settings.sslkey)?
        }
    };
    let sslrootcert = settings.sslrootcert.as_str();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("rustls rejected the protocol versions: {e}")))?;
    let builder = match mode {
        SslMode::VerifyFull => builder.with_webpki_verifier(
            webpki(roots(sslrootcert).map_err(tls_error)?, provider.clone()).map_err(tls_error)?,
        ),
        SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => {
            // `require` checks the chain when given a root file (libpq's rule).
            let has_root_file = !sslrootcert.is_empty() && sslrootcert != SYSTEM_ROOTS;
            let verifier =
                if mode == SslMode::VerifyCa || (mode == SslMode::Require && has_root_file) {
                    let roots = roots(sslrootcert).map_err(tls_error)?;
                    let chain = webpki(roots, provider.clone()).map_err(tls_error)?;
                    Lenient::ignore_hostname(provider.clone(), chain)
                } else {
                    Lenient::accept_any_certificate(provider.clone())
                };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => identity.install(builder)?,
    };
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("cannot build the certificate verifier: {e}"))
}

/// The trusted roots: the PEM file `sslrootcert`, or the system store.
fn roots(sslrootcert: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if sslrootcert.is_empty() || sslrootcert == SYSTEM_ROOTS {
        let found = rustls_native_certs::load_native_certs();
        let (added, _unparsable) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(format!(
                "no trusted root certificates in the system store{}; set `postgres.sslrootcert` \
                 to the server's CA file",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join("; "))
                }
            ));
        }
        return Ok(store);
    }
    let certs = CertificateDer::pem_file_iter(sslrootcert)
        .map_err(|e| format!("cannot read `postgres.sslrootcert` file `{sslrootcert}`: {e}"))?;
    for cert in certs {
        let cert = cert
            .map_err(|e| format!("cannot read `postgres.sslrootcert` file `{sslrootcert}`: {e}"))?;
        store.add(cert).map_err(|e| {
            format!(
                "`postgres.sslrootcert` file `{sslrootcert}` holds an unusable certificate: {e}"
            )
        })?;
    }
    if store.is_empty() {
        return Err(format!(
            "`postgres.sslrootcert` file `{sslrootcert}` holds no PEM certificate"
        ));
    }
    Ok(store)
}

/// A client certificate chain and its private key, read from the `sslcert`
/// and `sslkey` files (not yet checked against each other).
struct ClientIdentity {
    /// The `sslcert` path, for messages.
    cert_path: String,
    /// The `sslkey` path, for messages.
    key_path: String,
    /// The certificate first, then any intermediates, as the file has them.
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// The client configuration that presents this identity; rustls checks
    /// here that the key is the certificate's.
    fn install(
        self,
        builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    ) -> Result<ClientConfig, PgError> {
        let Self {
            cert_path,
            key_path,
            chain,
            key,
        } = self;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|error| match error {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    file_error(
                        "postgres.sslkey",
                        &key_path,
                        ClientCertProblem::KeyMismatch {
                            certificate: cert_path,
                        },
                    )
                }
                // The end-entity certificate did not parse.
                rustls::Error::InvalidCertificate(_) => file_error(
                    "postgres.sslcert",
                    &cert_path,
                    ClientCertProblem::Unusable(error.to_string()),
                ),
                // The provider could not load the key (an unsupported type or
                // curve, a malformed key).
                other => file_error(
                    "postgres.sslkey",
                    &key_path,
                    ClientCertProblem::Unusable(other.to_string()),
                ),
            })
    }
}

fn file_error(setting: &'static str, path: &str, problem: ClientCertProblem) -> PgError {
    PgError::ClientCert {
        setting,
        path: path.to_owned(),
        problem,
    }
}

/// The client certificate and key, if `sslcert` is set (validation
/// guarantees `sslkey` is then set too).
fn client_identity(sslcert: &str, sslkey: &str) -> Result<Option<ClientIdentity>, PgError> {
    if sslcert.is_empty() && sslkey.is_empty() {
        return Ok(None);
    }
    let cert_error = |problem| file_error("postgres.sslcert", sslcert, problem);
    let key_error = |problem| file_error("postgres.sslkey", sslkey, problem);

    let pem = std::fs::read(sslcert).map_err(|e| cert_error(ClientCertProblem::Unreadable(e)))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(pem_problem(&e)))?;
    if chain.is_empty() {
        return Err(cert_error(ClientCertProblem::NoCertificate));
    }

    let pem = std::fs::read(sslkey).map_err(|e| key_error(ClientCertProblem::Unreadable(e)))?;
    // An encrypted PKCS#8 section is skipped by the PEM reader (it would
    // look like no key at all), and OpenSSL's legacy encryption headers
    // make the section unreadable: name the real reason.
    if contains(&pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&pem, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(key_error(ClientCertProblem::EncryptedKey));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        key_error(match e {
            pem::Error::NoItemsFound => ClientCertProblem::NoKey,
            other => pem_problem(&other),
        })
    })?;
    Ok(Some(ClientIdentity {
        cert_path: sslcert.to_owned(),
        key_path: sslkey.to_owned(),
        chain,
        key,
    }))
}

fn pem_problem(error: &pem::Error) -> ClientCertProblem {
    ClientCertProblem::BadPem(error.to_string())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

//! TLS for each `sslmode`, through rustls with the ring provider, and the
//! trusted roots for the verifying modes.
//!
//! Owns: the mapping from `sslmode` (plus `sslrootcert`) to tokio-postgres's
//! three modes and a rustls client configuration, and loading roots. It may
//! not connect.
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

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::keywords::SslMode;
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

/// The connector for `mode` with roots from `sslrootcert`. Roots are loaded
/// here, once, so a missing file fails the manager's construction.
pub(crate) fn connector(mode: SslMode, sslrootcert: &str) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls rejected the protocol versions: {e}"))?;
    let config = match mode {
        SslMode::VerifyFull => builder.with_webpki_verifier(webpki(roots(sslrootcert)?, provider)?),
        SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => {
            // `require` checks the chain when given a root file (libpq's rule).
            let has_root_file = !sslrootcert.is_empty() && sslrootcert != SYSTEM_ROOTS;
            let verifier =
                if mode == SslMode::VerifyCa || (mode == SslMode::Require && has_root_file) {
                    let chain = webpki(roots(sslrootcert)?, provider.clone())?;
                    Lenient::ignore_hostname(provider, chain)
                } else {
                    Lenient::accept_any_certificate(provider)
                };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    }
    .with_no_client_auth();
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

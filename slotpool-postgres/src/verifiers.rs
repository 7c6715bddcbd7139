//! The certificate checks rustls does not ship: accept any certificate
//! (`prefer`, `require`) and verify the chain but not the name
//! (`verify-ca`).
//!
//! Owns: [`Lenient`], after sqlx's `DummyTlsVerifier` and
//! `NoHostnameTlsVerifier`. Either way it still verifies the handshake
//! signatures with the provider's algorithms, so the peer must hold the key
//! of the certificate it presents. It may not choose which mode uses which
//! (`tls.rs` does).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

/// Never checks the name; checks the chain with `chain` if there is one,
/// and always the handshake signatures.
#[derive(Debug)]
pub(crate) struct Lenient {
    /// Whose signature algorithms check the handshake signatures.
    provider: Arc<CryptoProvider>,
    /// `None`: any certificate chain. `Some`: the WebPKI verifier with name
    /// mismatches forgiven, so the chain must reach a trusted root and the
    /// certificate may name any host.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl Lenient {
    /// Accepts any certificate chain and name.
    pub(crate) fn accept_any_certificate(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            chain: None,
        }
    }

    /// Checks the chain with `chain` and forgives a name that does not
    /// match (`chain` must use `provider`).
    pub(crate) fn ignore_hostname(
        provider: Arc<CryptoProvider>,
        chain: Arc<WebPkiServerVerifier>,
    ) -> Self {
        Self {
            provider,
            chain: Some(chain),
        }
    }
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

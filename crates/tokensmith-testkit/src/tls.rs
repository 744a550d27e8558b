//! A private certificate authority made at test time (feature `tls`), for
//! tests of private PKI (`ca_file`), `rediss://` and self-signed endpoints:
//! no certificate is checked in, none outlives the test.
//!
//! ```
//! use tokensmith_testkit::tls::PrivateCa;
//!
//! let ca = PrivateCa::new("my test CA");
//! let cert = ca.issue(&["localhost", "127.0.0.1"]);
//! assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(cert.chain_pem().matches("BEGIN CERTIFICATE").count() == 2);
//! let _config = cert.rustls_server_config(); // for tokio-rustls' TlsAcceptor
//! ```

use std::fmt;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed certificate authority with a fresh key.
pub struct PrivateCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl PrivateCa {
    /// A CA whose common name is `name`.
    ///
    /// # Panics
    ///
    /// When key generation or signing fails (it does not with ring).
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("a key pair");
        Self { issuer: CertifiedIssuer::self_signed(params, key).expect("a self-signed CA") }
    }

    /// The CA's certificate as PEM: what goes into `ca_file`.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `hosts` (names or IP addresses; the first
    /// is its common name) signed by this CA, with a fresh key.
    ///
    /// # Panics
    ///
    /// When `hosts` is empty or holds something that is neither a DNS name
    /// nor an IP address.
    pub fn issue(&self, hosts: &[&str]) -> ServerCert {
        let key = KeyPair::generate().expect("a key pair");
        let names = hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("host names or IP addresses");
        params.distinguished_name.push(DnType::CommonName, *hosts.first().expect("a host"));
        params.use_authority_key_identifier_extension = true;
        let leaf = params.signed_by(&key, &self.issuer).expect("a signed certificate");
        ServerCert {
            chain_pem: format!("{}{}", leaf.pem(), self.issuer.pem()),
            chain: vec![leaf.der().clone(), self.issuer.der().clone()],
            key,
        }
    }
}

impl fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateCa").finish_non_exhaustive()
    }
}

/// A server certificate (the leaf, then the CA, as a chain) and its key.
pub struct ServerCert {
    chain_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
}

impl ServerCert {
    /// The chain as PEM (leaf, then CA), for a server reading files.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key as PKCS#8 PEM, for a server reading files.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A rustls server config on ring presenting this certificate (no
    /// client authentication), for a `tokio_rustls::TlsAcceptor`.
    ///
    /// # Panics
    ///
    /// When rustls refuses the certificate (it does not for one made here).
    pub fn rustls_server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3 on ring")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("a certificate rustls accepts");
        Arc::new(config)
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert").finish_non_exhaustive()
    }
}

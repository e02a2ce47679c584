//! Turning `MockTls` PEM bytes into a rustls server config (ring provider). Owns no sockets; the
//! handshake itself happens in `server.rs` through monoio-rustls.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::MockTls;

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("mock TLS {what}: {e}"))
}

pub(crate) fn server_config(tls: &MockTls) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(&tls.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate chain", e))?;
    if certs.is_empty() {
        return Err(invalid("certificate chain", "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| invalid("key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate", e))?;
    // The mock speaks HTTP/1.1 only; say so to clients that negotiate ALPN.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

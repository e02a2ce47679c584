//! TLS client configurations, one set per worker, so rustls' session cache is never shared between
//! cores.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::config::resolve::ResolvedProvider;

/// A worker's TLS client configurations, keyed by provider name (providers may trust different
/// extra CAs).
pub struct TlsClientConfigs {
    by_provider: HashMap<String, Arc<ClientConfig>>,
}

impl TlsClientConfigs {
    /// Builds one configuration per HTTPS provider: the Mozilla roots plus the provider's `ca_file`.
    pub fn build<'a>(providers: impl Iterator<Item = &'a ResolvedProvider>) -> Result<TlsClientConfigs, rustls::Error> {
        let mut by_provider = HashMap::new();
        for provider in providers {
            if provider.origin.key.scheme == super::Scheme::Https {
                by_provider.insert(provider.name.to_string(), client_config_for(provider)?);
            }
        }
        Ok(TlsClientConfigs { by_provider })
    }

    pub fn get(&self, provider: &str) -> Option<&Arc<ClientConfig>> {
        self.by_provider.get(provider)
    }
}

fn client_config_for(provider: &ResolvedProvider) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &provider.extra_roots {
        roots.add(cert.clone())?;
    }
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: the gateway's upstream client speaks nothing else yet.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

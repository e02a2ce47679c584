//! The mock over TLS: a CA and a leaf certificate made with rcgen, and a blocking rustls client
//! (StreamOwned over std's TcpStream) that trusts only that CA.

use std::sync::Arc;

use loadtest::{MockConfig, MockOptions, MockProvider, MockTls};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::client::{Client, chat, connect};

/// Returns the server's PEM material and the CA certificate a client should trust.
fn certificates() -> (MockTls, CertificateDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let tls = MockTls { cert_chain_pem: leaf.pem().into_bytes(), key_pem: leaf_key.serialize_pem().into_bytes() };
    (tls, ca_cert.der().clone())
}

fn client_config(ca: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[test]
fn tls_client_gets_completions_and_streams() {
    let (tls, ca) = certificates();
    let options = MockOptions { tls: Some(tls), ..MockOptions::default() };
    let mock = MockProvider::start_with(MockConfig::default(), options).unwrap();
    assert!(mock.base_url().starts_with("https://127.0.0.1:"));

    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(client_config(ca), name).unwrap();
    let mut c = Client::new(StreamOwned::new(session, connect(mock.addr())));
    let response = c.exchange(&chat(r#"{"model":"m"}"#));
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["object"], "chat.completion");
    // Keep-alive works through TLS too.
    let stream = c.exchange(&chat(r#"{"model":"m","stream":true}"#));
    assert_eq!(stream.data_lines().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(mock.connections_accepted(), 1);
}

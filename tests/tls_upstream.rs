//! Real TLS to the provider: rustls (ring) through Corelay's own TLS stream against the mock (whose
//! TLS is monoio-rustls, an independent implementation) serving a leaf certificate issued by a test
//! CA, trusted through the provider's `ca_file`.

mod common;

use std::path::PathBuf;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{MockConfig, MockOptions, MockProvider, MockTls};

const MODEL: &str = "acme/chat-small";

/// A CA (returned as PEM) and a mock serving a `localhost` leaf it issued.
fn tls_mock() -> (MockProvider, String) {
    let pki = common::TestPki::localhost();
    let tls = MockTls { cert_chain_pem: pki.leaf_pem.into_bytes(), key_pem: pki.leaf_key_pem.into_bytes() };
    let mock =
        MockProvider::start_with(MockConfig::default(), MockOptions { tls: Some(tls), ..MockOptions::default() })
            .expect("TLS mock starts");
    (mock, pki.ca_pem)
}

/// Writes the CA to a file unique to this test process and name.
fn ca_file(name: &str, pem: &str) -> PathBuf {
    common::temp_file(name, "pem", pem)
}

fn https_base_url(mock: &MockProvider) -> String {
    format!("https://localhost:{}/v1", mock.addr().port())
}

#[test]
fn provider_over_tls_serves_completions_and_streams_on_one_connection() {
    let (mock, ca_pem) = tls_mock();
    let ca = ca_file("trusted", &ca_pem);
    let provider_extra = format!("ca_file = \"{}\"\n", ca.display());
    let text = config_text(&https_base_url(&mock), "", "").replace(
        "api_key_env = \"CORELAY_TEST_PROVIDER_KEY\"\n",
        &format!("api_key_env = \"CORELAY_TEST_PROVIDER_KEY\"\n{provider_extra}"),
    );
    let gateway = start_gateway(&text);
    let mut client = Client::connect(gateway.local_addr());

    let plain = client.post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    let stream = client.post("/v1/chat/completions", &[], &chat_body(MODEL, true));

    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(plain.json()["model"], MODEL);
    assert_eq!(stream.status, 200, "{}", stream.text());
    let (events, done) = stream.sse_data();
    assert!(done && events.iter().all(|e| e["model"] == MODEL));
    assert_eq!(mock.connections_accepted(), 1, "the TLS connection was pooled and reused");
    assert_eq!(mock.requests()[0].header("host"), Some(format!("localhost:{}", mock.addr().port()).as_str()));
    let _ = std::fs::remove_file(ca);
}

#[test]
fn an_untrusted_provider_certificate_is_a_502() {
    let (mock, _ca_pem) = tls_mock();
    let gateway = start_gateway(&config_text(&https_base_url(&mock), "", ""));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));

    assert_eq!(response.status, 502);
    assert!(response.json()["error"]["message"].as_str().unwrap().contains("TLS"), "{}", response.text());
    assert!(mock.requests().is_empty(), "no request bytes were sent over an unverified connection");
}

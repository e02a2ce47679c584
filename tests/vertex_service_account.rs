//! Vertex AI with a service-account key file through the running gateway: the token exchange (an
//! RS256 JWT the loopback token endpoint verifies with the account's public key), the token on every
//! Vertex call, its refresh before expiry without any request waiting for it, HTTPS to the token
//! endpoint, and failover with a clear error when the endpoint refuses the account.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Client, PROVIDER_KEY, TestPki, chat_body, start_gateway};
use corelay::credentials::vertex::{CLOUD_PLATFORM_SCOPE, ServiceAccount};
use loadtest::{MockConfig, MockProvider, Reply};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

const KEY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vertex-test-service-account.json");
const ACCOUNT: &str = "corelay-test@corelay-test.iam.gserviceaccount.com";
/// Connections one token mock serves before its thread ends (bounds the test's threads).
const MAX_TOKEN_CONNECTIONS: usize = 32;

/// What the token endpoint was sent.
struct TokenRequest {
    head: String,
    form: Vec<(String, String)>,
}

impl TokenRequest {
    fn field(&self, name: &str) -> &str {
        self.form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

/// A loopback stand-in for Google's token endpoint: answers in turn with `answers` (the last one
/// repeats) and reports each request on a channel.
struct TokenEndpoint {
    url: String,
    requests: mpsc::Receiver<TokenRequest>,
}

impl TokenEndpoint {
    fn start(answers: Vec<(u16, String)>, tls: Option<&TestPki>) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (report, requests) = mpsc::channel();
        let server = tls.map(server_config);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().take(MAX_TOKEN_CONNECTIONS).enumerate() {
                let Ok(tcp) = stream else { continue };
                let (status, body) = answers[n.min(answers.len() - 1)].clone();
                let answered = match &server {
                    Some(config) => {
                        let tls = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
                        answer(rustls::StreamOwned::new(tls, tcp), status, &body)
                    }
                    None => answer(tcp, status, &body),
                };
                if let Some(request) = answered {
                    let _ = report.send(request);
                }
            }
        });
        let scheme = if tls.is_some() { "https://localhost" } else { "http://127.0.0.1" };
        TokenEndpoint { url: format!("{scheme}:{port}/token"), requests }
    }

    fn next_request(&self) -> TokenRequest {
        self.requests.recv_timeout(Duration::from_secs(20)).expect("the token endpoint is called")
    }
}

fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(pki.leaf_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.leaf_key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// Reads one request (head, then a Content-Length body) and writes the answer.
fn answer<S: Read + Write>(mut stream: S, status: u16, body: &str) -> Option<TokenRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let (head_end, length) = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || Instant::now() > deadline {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || Instant::now() > deadline {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).ok()?;
    stream.flush().ok()?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let form = String::from_utf8_lossy(&buf[head_end..head_end + length])
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":")))
        .collect();
    Some(TokenRequest { head, form })
}

/// The value of one sample line (`name{labels} value`) in Prometheus text.
fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn token_json(token: &str, expires_in: u64) -> (u16, String) {
    (200, format!(r#"{{"access_token":"{token}","expires_in":{expires_in},"token_type":"Bearer"}}"#))
}

/// Checks the assertion the way Google does: an RS256 signature by the account's key over
/// `header.claims`, claims naming the account, the scope and the token URL.
fn assert_valid_assertion(request: &TokenRequest, token_url: &str) {
    assert!(request.head.starts_with("POST /token HTTP/1.1\r\n"), "{}", request.head);
    assert!(request.head.to_ascii_lowercase().contains("content-type: application/x-www-form-urlencoded"));
    assert_eq!(request.field("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let jwt = request.field("assertion");
    let (signed, signature) = jwt.rsplit_once('.').expect("a JWT");
    let account = ServiceAccount::from_key_file(&std::fs::read(KEY_FILE).unwrap()).unwrap();
    let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, account.public_key_der());
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    verifier.verify(signed.as_bytes(), &signature).expect("the assertion is signed by the account's key");
    let claims = signed.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["iss"], ACCOUNT);
    assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
    assert_eq!(claims["aud"], token_url);
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
}

fn config(vertex: &MockProvider, token_url: &str, extra: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
cores = 1
[health]
tick_ms = 20
[providers.vertex]
kind = "vertex"
base_url = "http://{}"
project = "my-project"
location = "us-east5"
service_account_file = "{KEY_FILE}"
token_url = "{token_url}"
{extra}
[models."google/gemini"]
endpoints = [{{ provider = "vertex", model = "gemini-2.5-flash" }}]
"#,
        vertex.addr()
    )
}

fn vertex_mock() -> MockProvider {
    let recorded = std::fs::read(corelay::fixture_path!("vertex/vertex-gemini-stream.sse")).unwrap();
    MockProvider::start(MockConfig { reply: Reply::Sse(recorded), ..MockConfig::default() }).unwrap()
}

fn ask(gateway: &corelay::runtime::Gateway, model: &str) -> common::Response {
    Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(model, true))
}

#[test]
fn the_service_accounts_token_authenticates_vertex_calls_and_is_replaced_before_it_expires() {
    // The first token lasts 4 s, so the refresher replaces it after 3 s (three quarters of its
    // life); the second lasts an hour.
    let tokens = TokenEndpoint::start(vec![token_json("ya29.first", 4), token_json("ya29.second", 3600)], None);
    let vertex = vertex_mock();
    let gateway = start_gateway(&config(&vertex, &tokens.url, ""));

    // The first token was fetched before the gateway started serving.
    assert_valid_assertion(&tokens.next_request(), &tokens.url);
    let response = ask(&gateway, "google/gemini");
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = &vertex.requests()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.first"));
    assert!(!format!("{seen:?}").contains(PROVIDER_KEY), "no static key next to the service account");

    assert_valid_assertion(&tokens.next_request(), &tokens.url);
    // Workers pick the new token up on their next control tick (20 ms here); requests meanwhile go
    // out with the old one, which is still valid.
    let served_with_second = served_with(&gateway, &vertex, "Bearer ya29.second");
    assert!(served_with_second, "the refreshed token reaches the workers");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let fetched_twice = |text: &str| {
        let expiry = metric(text, "corelay_access_token_expiry_timestamp_seconds{provider=\"vertex\"}");
        metric(text, "corelay_access_token_fetches_total{provider=\"vertex\",outcome=\"ok\"}") == Some(2)
            && expiry.is_some_and(|e| (now + 3500..=now + 3700).contains(&e))
    };
    let metrics = gateway.health().wait_until_metrics(fetched_twice, Duration::from_secs(10));
    assert!(metrics, "{}", gateway.health().latest_metrics());
}

/// Asks until the Vertex mock sees `authorization` (bounded in count and time); every answer must
/// be a success.
fn served_with(gateway: &corelay::runtime::Gateway, vertex: &MockProvider, authorization: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..500 {
        let response = ask(gateway, "google/gemini");
        assert_eq!(response.status, 200, "{}", response.text());
        if vertex.requests().pop().unwrap().header("authorization") == Some(authorization) {
            return true;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    false
}

#[test]
fn a_reload_that_changes_the_token_url_gets_a_token_there() {
    let first = TokenEndpoint::start(vec![token_json("ya29.before", 3600)], None);
    let second = TokenEndpoint::start(vec![token_json("ya29.after", 3600)], None);
    let vertex = vertex_mock();
    let gateway = start_gateway(&config(&vertex, &first.url, ""));
    first.next_request();
    let path = common::temp_file("vertex-reload", "toml", &config(&vertex, &second.url, ""));

    gateway.reload_from(&path).expect("the reload applies");
    let _ = std::fs::remove_file(&path);

    assert_valid_assertion(&second.next_request(), &second.url);
    assert!(served_with(&gateway, &vertex, "Bearer ya29.after"), "the new account's token reaches the workers");
}

#[test]
fn the_token_endpoint_is_reached_over_tls_trusting_the_providers_ca_file() {
    let pki = TestPki::localhost();
    let tokens = TokenEndpoint::start(vec![token_json("ya29.over-tls", 3600)], Some(&pki));
    let ca = common::temp_file("token-endpoint-ca", "pem", &pki.ca_pem);
    let vertex = vertex_mock();
    let gateway = start_gateway(&config(&vertex, &tokens.url, &format!("ca_file = \"{}\"", ca.display())));

    assert_valid_assertion(&tokens.next_request(), &tokens.url);
    let response = ask(&gateway, "google/gemini");

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(vertex.requests()[0].header("authorization"), Some("Bearer ya29.over-tls"));
    let _ = std::fs::remove_file(&ca);
}

#[test]
fn a_refused_service_account_fails_over_and_says_why_without_secrets() {
    let refusal = (400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.to_string());
    let tokens = TokenEndpoint::start(vec![refusal], None);
    let vertex = vertex_mock();
    let fallback = MockProvider::start(MockConfig::default()).unwrap();
    let extra = format!(
        r#"[providers.backup]
kind = "openai"
base_url = "http://{}/v1"
[models."google/gemini-with-backup"]
endpoints = [{{ provider = "vertex", model = "gemini-2.5-flash" }}, {{ provider = "backup", model = "gpt-4o-mini" }}]
"#,
        fallback.addr()
    );
    let text = config(&vertex, &tokens.url, "") + &extra;
    let gateway = start_gateway(&text);
    tokens.next_request();

    let only_vertex = ask(&gateway, "google/gemini");
    let with_backup = ask(&gateway, "google/gemini-with-backup");

    assert_eq!(only_vertex.status, 502, "{}", only_vertex.text());
    let message = only_vertex.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("provider `vertex`") && message.contains("access token"), "{message}");
    assert!(!message.contains("PRIVATE KEY") && !message.contains("assertion"), "{message}");
    assert!(vertex.requests().is_empty(), "Vertex is never called without a token");
    assert_eq!(with_backup.status, 200, "{}", with_backup.text());
    assert_eq!(with_backup.header("x-corelay-attempts"), Some("2"));
    assert_eq!(fallback.requests().len(), 1);
    let counted = |text: &str| {
        let series =
            |outcome: &str| format!("corelay_access_token_fetches_total{{provider=\"vertex\",outcome=\"{outcome}\"}}");
        metric(text, &series("failed")).is_some_and(|n| n >= 1) && metric(text, &series("ok")) == Some(0)
    };
    let metrics = gateway.health().wait_until_metrics(counted, Duration::from_secs(10));
    assert!(metrics, "{}", gateway.health().latest_metrics());
}

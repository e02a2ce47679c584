//! Bedrock requests are really signed: a SigV4 verifier written here from the AWS specification
//! (canonical request, string to sign, HMAC key chain; sharing no code with src/providers/aws)
//! recomputes the signature from the bytes the mock received and must get the one the gateway
//! sent, for Converse and for InvokeModel with a session token. The verifier proves itself on
//! the AWS signing test suite's vectors and by rejecting a tampered request. Translation and
//! event-stream decoding are tested in golden_bedrock.rs and bedrock_provider.rs.

mod common;

use std::sync::Arc;

use common::{AWS_ACCESS_KEY_ID, Client};
use corelay::config::resolve::{AwsCredentials, Secret};
use corelay::config::{Config, resolve};
use loadtest::{MockConfig, MockProvider, RecordedRequest, Reply};
use ring::{digest, hmac};

/// The secret `common::start_gateway` gives Bedrock providers (the AWS documentation's example key).
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token/with+odd=chars";
const MODEL: &str = "anthropic/claude-sonnet-4";
const BEDROCK_MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 specifies.
fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The canonical URI of every service but S3: each segment of the path as sent, encoded once more
/// (so a `%3A` on the wire is `%253A` here).
fn canonical_uri(raw_path: &str) -> String {
    raw_path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

/// Header values as SigV4 canonicalises them: trimmed, runs of spaces collapsed, repeats joined by commas.
fn canonical_header_value(headers: &[(String, String)], name: &str) -> String {
    let values: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(!values.is_empty(), "signed header {name} is not in the request");
    values.join(",")
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: String,
    signature: String,
}

fn parse_authorization(value: &str) -> Authorization {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").unwrap_or_else(|| panic!("not SigV4: {value}"));
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {value}"))
            .to_string()
    };
    let credential = field("Credential=");
    let scope: Vec<&str> = credential.split('/').collect();
    assert_eq!(scope.len(), 5, "credential scope: {credential}");
    assert_eq!(scope[4], "aws4_request");
    Authorization {
        access_key_id: scope[0].into(),
        date: scope[1].into(),
        region: scope[2].into(),
        service: scope[3].into(),
        signed_headers: field("SignedHeaders="),
        signature: field("Signature="),
    }
}

/// What a request looks like to the verifier: exactly the bytes that crossed the wire.
struct WireRequest<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

/// The signature SigV4 gives `request` under `secret` for the scope its Authorization names.
fn expected_signature(request: &WireRequest<'_>, secret: &str) -> String {
    let auth = parse_authorization(&canonical_header_value(request.headers, "authorization"));
    let (path, query) = request.path.split_once('?').unwrap_or((request.path, ""));
    assert!(query.is_empty(), "this verifier handles no query string (Bedrock sends none): {}", request.path);
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    let mut sorted = signed.clone();
    sorted.sort_unstable();
    assert_eq!(signed, sorted, "SignedHeaders must be sorted");
    let canonical_headers: String =
        signed.iter().map(|name| format!("{name}:{}\n", canonical_header_value(request.headers, name))).collect();
    let canonical_request = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{}\n{}",
        request.method,
        canonical_uri(path),
        auth.signed_headers,
        sha256_hex(request.body)
    );
    let amz_date = canonical_header_value(request.headers, "x-amz-date");
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex(&hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// Asserts the request's signature is the one SigV4 gives it, and that what must be signed is.
fn assert_signed(seen: &RecordedRequest, region: &str, session_token: Option<&str>) {
    let request = WireRequest { method: &seen.method, path: &seen.path, headers: &seen.headers, body: &seen.body };
    let auth = parse_authorization(seen.header("authorization").expect("an Authorization header"));
    assert_eq!(auth.access_key_id, AWS_ACCESS_KEY_ID);
    assert_eq!((auth.region.as_str(), auth.service.as_str()), (region, "bedrock"));
    let amz_date = seen.header("x-amz-date").expect("x-amz-date");
    assert_eq!(&amz_date[..8], auth.date, "the scope's date is the request's date");
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "content-type"] {
        assert!(signed.contains(&required), "{required} is signed: {}", auth.signed_headers);
    }
    if let Some(hash) = seen.header("x-amz-content-sha256") {
        assert_eq!(hash, sha256_hex(&seen.body), "x-amz-content-sha256 is the body's hash");
    }
    match session_token {
        Some(token) => {
            assert_eq!(seen.header("x-amz-security-token"), Some(token));
            assert!(signed.contains(&"x-amz-security-token"), "the session token is signed");
        }
        None => assert_eq!(seen.header("x-amz-security-token"), None),
    }
    assert_eq!(auth.signature, expected_signature(&request, AWS_SECRET), "the signature verifies");
}

#[test]
fn the_verifier_reproduces_the_aws_signing_test_suite() {
    // get-vanilla, post-vanilla and get-vanilla-with-session-token from the AWS signing test suite
    // (aws-c-auth tests/aws-signing-test-suite/v4): request, credentials and expected signatures.
    let cases = [
        ("GET", None, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", None, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        (
            "GET",
            Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        ),
    ];
    for (method, token, signature) in cases {
        let signed_headers = if token.is_some() { "host;x-amz-date;x-amz-security-token" } else { "host;x-amz-date" };
        let mut headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
            (
                "Authorization".to_string(),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders={signed_headers}, Signature={signature}"
                ),
            ),
        ];
        if let Some(token) = token {
            headers.push(("X-Amz-Security-Token".to_string(), token.to_string()));
        }
        let request = WireRequest { method, path: "/", headers: &headers, body: b"" };
        assert_eq!(expected_signature(&request, AWS_SECRET), signature, "{method} {token:?}");
    }
    assert_eq!(canonical_uri("/model/a.b-v1%3A0/converse"), "/model/a.b-v1%253A0/converse", "double encoding");
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/bedrock/{name}", corelay::fixture_path!())).unwrap()
}

fn bedrock_config(base_url: &str, api: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n\
         [providers.bedrock]\nkind = \"bedrock\"\nbase_url = \"{base_url}\"\nregion = \"eu-west-3\"\nbedrock_api = \"{api}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"bedrock\", model = \"{BEDROCK_MODEL}\" }}]\n"
    )
}

/// A gateway whose Bedrock providers hold the test credentials plus `session_token`, built like
/// `common::start_gateway` (credentials injected, never through the environment).
fn start_with_session_token(text: &str, session_token: &str) -> corelay::runtime::Gateway {
    let config = Config::parse(text).expect("test config parses");
    let mut resolved = resolve(config).expect("test config resolves");
    for provider in resolved.providers.values_mut() {
        let mut with_credentials = (**provider).clone();
        if let Some(bedrock) = &mut with_credentials.bedrock {
            bedrock.credentials = Some(AwsCredentials {
                access_key_id: Secret::new(AWS_ACCESS_KEY_ID.into()),
                secret_access_key: Secret::new(AWS_SECRET.into()),
                session_token: Some(Secret::new(session_token.into())),
            });
        }
        *provider = Arc::new(with_credentials);
    }
    corelay::runtime::Gateway::start(resolved).expect("gateway starts")
}

fn chat_body(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the capital of France? Answer: \"Paris\" / 'Paris'."}],
        "stream": stream,
    }))
    .unwrap()
}

#[test]
fn converse_and_converse_stream_requests_carry_a_signature_that_verifies() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("bedrock-converse-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = common::start_gateway(&bedrock_config(&mock.base_url(), "converse"));

    let answer = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(false));
    assert_eq!(answer.status, 200, "{}", answer.text());

    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    assert_signed(seen, "eu-west-3", None);

    let streaming = MockProvider::start(MockConfig {
        reply: Reply::Sse(fixture("bedrock-converse-stream.bin")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = common::start_gateway(&bedrock_config(&streaming.base_url(), "converse"));
    let stream = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(true));
    assert_eq!(stream.status, 200, "{}", stream.text());
    assert!(stream.sse_data().1, "{}", stream.text());
    let seen = &streaming.requests()[0];
    assert_eq!(seen.path, "/v1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    assert_signed(seen, "eu-west-3", None);
}

#[test]
fn invoke_model_with_a_session_token_is_signed_with_the_token() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("bedrock-invoke-anthropic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_with_session_token(&bedrock_config(&mock.base_url(), "invoke"), SESSION_TOKEN);

    let answer = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(false));

    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.is_empty()));
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31", "InvokeModel's Anthropic body: {body}");
    assert!(body.get("model").is_none(), "the model is in the path, not the body");
    assert_signed(seen, "eu-west-3", Some(SESSION_TOKEN));
}

#[test]
fn the_verifier_rejects_a_request_changed_after_signing() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("bedrock-converse-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = common::start_gateway(&bedrock_config(&mock.base_url(), "converse"));
    assert_eq!(Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(false)).status, 200);
    let seen = &mock.requests()[0];
    let auth = parse_authorization(seen.header("authorization").unwrap());

    let mut body = seen.body.clone();
    let middle = body.len() / 2;
    body[middle] ^= 1;
    let tampered_body = WireRequest { method: &seen.method, path: &seen.path, headers: &seen.headers, body: &body };
    assert_ne!(expected_signature(&tampered_body, AWS_SECRET), auth.signature, "a changed body no longer verifies");
    let path = seen.path.replace("converse", "converse-stream");
    let tampered_path = WireRequest { method: &seen.method, path: &path, headers: &seen.headers, body: &seen.body };
    assert_ne!(expected_signature(&tampered_path, AWS_SECRET), auth.signature, "a changed path no longer verifies");
    let original = WireRequest { method: &seen.method, path: &seen.path, headers: &seen.headers, body: &seen.body };
    assert_ne!(expected_signature(&original, "another-secret"), auth.signature, "the secret matters");
}

#[test]
fn a_forwarded_traceparent_leaves_the_signature_valid() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("bedrock-converse-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = common::start_gateway(&bedrock_config(&mock.base_url(), "converse"));
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let answer = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("traceparent", traceparent)],
        &chat_body(false),
    );

    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = &mock.requests()[0];
    let forwarded = seen.header("traceparent").expect("the trace is forwarded to Bedrock");
    assert!(forwarded.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{forwarded}");
    assert_signed(seen, "eu-west-3", None);
}

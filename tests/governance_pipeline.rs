//! End to end: governed gateway keys in front of the mock provider. A denied request gets 429 (with
//! `Retry-After`) or 403 in its client's own error format and never reaches the provider.

mod common;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";
const SECRET: &str = "gw-governed-key-0123456789";

fn gateway_with_key(provider: &MockProvider, limits: &str) -> corelay::Gateway {
    let keys = format!("[[keys]]\nname = \"team\"\nkey = \"{SECRET}\"\n{limits}\n");
    start_gateway(&config_text(&provider.base_url(), "", &keys))
}

fn bearer() -> [(&'static str, String); 1] {
    [("authorization", format!("Bearer {SECRET}"))]
}

fn post(gateway: &corelay::Gateway, path: &str, body: &[u8]) -> common::Response {
    let [(name, value)] = bearer();
    Client::connect(gateway.local_addr()).post(path, &[(name, value.as_str())], body)
}

#[test]
fn a_key_over_its_rpm_gets_429_with_retry_after_and_the_provider_sees_nothing_more() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = gateway_with_key(&provider, "rpm = 2");

    let first = post(&gateway, "/v1/chat/completions", &chat_body(MODEL, false));
    let second = post(&gateway, "/v1/chat/completions", &chat_body(MODEL, false));
    let third = post(&gateway, "/v1/chat/completions", &chat_body(MODEL, false));

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(third.status, 429, "{}", third.text());
    let wait: u64 = third.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(third.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(provider.requests().len(), 2, "the refused request never reached the provider");
}

#[test]
fn a_model_outside_the_keys_list_is_403_in_the_anthropic_format_on_v1_messages() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = gateway_with_key(&provider, "models = [\"other/*\"]");
    let body = br#"{"model":"acme/chat-small","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#;

    let refused = post(&gateway, "/v1/messages", body);

    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["type"], "error");
    assert_eq!(refused.json()["error"]["type"], "permission_error");
    assert!(provider.requests().is_empty());
}

#[test]
fn a_request_that_would_overshoot_the_budget_is_refused_before_it_is_sent() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config_text(
        &provider.base_url(),
        "",
        &format!(
            "[models.\"acme/priced\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\nprice = {{ input = \
             1.0, output = 2.0 }}\n[[keys]]\nname = \"team\"\nkey = \"{SECRET}\"\nbudget_micros_total = 5\n"
        ),
    ));

    let refused = post(&gateway, "/v1/chat/completions", &chat_body("acme/priced", false));

    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("budget"), "{}", refused.text());
    assert!(provider.requests().is_empty(), "no provider call for a request the budget cannot cover");
    let unknown = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer not-a-key")],
        &chat_body(MODEL, false),
    );
    assert_eq!(unknown.status, 401);
}

/// The reservation counts the output the request allows (`max_tokens`, `max_completion_tokens`,
/// Responses' `max_output_tokens`), not only the configured default: a request allowed more output
/// than the key's TPM is refused before it is sent, the same request with a small limit is not.
#[test]
fn a_requests_max_tokens_is_reserved_against_the_keys_tpm() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = gateway_with_key(&provider, "tpm = 5000");
    let asking = |field: &str, limit: u64| {
        format!(r#"{{"model":"{MODEL}","{field}":{limit},"messages":[{{"role":"user","content":"hi"}}]}}"#)
    };

    for field in ["max_tokens", "max_completion_tokens"] {
        let refused = post(&gateway, "/v1/chat/completions", asking(field, 100_000).as_bytes());
        assert_eq!(refused.status, 429, "{field}: {}", refused.text());
    }
    let responses = format!(r#"{{"model":"{MODEL}","max_output_tokens":100000,"input":"hi"}}"#);
    assert_eq!(post(&gateway, "/v1/responses", responses.as_bytes()).status, 429);
    assert!(provider.requests().is_empty(), "nothing over the limit reached the provider");

    let admitted = post(&gateway, "/v1/chat/completions", asking("max_tokens", 16).as_bytes());
    assert_eq!(admitted.status, 200, "{}", admitted.text());
}

//! The admin key guarding `/metrics` and `/v1/stats` (401 without it or with a wrong one, open
//! when no admin key is configured), the `x-corelay-only` / `x-corelay-models` request headers, and
//! what reaches a provider: never the client's credentials, hop-by-hop headers or routing
//! headers. `POST /admin/reload` and gateway keys are in proxy_openai.rs.

mod common;

use common::{Client, PROVIDER_KEY, chat_body, config_text, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";
const ADMIN_KEY: &str = "admin-claims-key-0123456789";

#[test]
fn metrics_and_stats_need_the_admin_key_when_one_is_set() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let admin = format!("[admin]\nkey = \"{ADMIN_KEY}\"\n");
    let gateway = start_gateway(&config_text(&provider.base_url(), "", &admin));
    let addr = gateway.local_addr();
    let with_key = format!("Bearer {ADMIN_KEY}");

    for path in ["/metrics", "/v1/stats"] {
        let missing = Client::connect(addr).get(path, &[]);
        assert_eq!(missing.status, 401, "{path} without the admin key: {}", missing.text());
        let wrong = Client::connect(addr).get(path, &[("authorization", "Bearer admin-claims-key-0123456780")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong admin key");
        assert!(!wrong.text().contains("corelay_"), "no metrics in the refusal");
        let allowed = Client::connect(addr).get(path, &[("authorization", with_key.as_str())]);
        assert_eq!(allowed.status, 200, "{path} with the admin key: {}", allowed.text());
    }
    let metrics = Client::connect(addr).get("/metrics", &[("authorization", with_key.as_str())]);
    let content_type = metrics.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "the Prometheus scrape came back: {content_type}");
    let stats = Client::connect(addr).get("/v1/stats", &[("authorization", with_key.as_str())]).json();
    assert!(stats["seconds"].is_array(), "{stats}");
}

#[test]
fn metrics_and_stats_are_open_without_an_admin_key() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    for path in ["/metrics", "/v1/stats"] {
        assert_eq!(Client::connect(gateway.local_addr()).get(path, &[]).status, 200, "{path}");
    }
}

/// Providers `a` and `b` serve `acme/chat`; `c` serves `acme/fallback`.
fn routing_config(a: &str, b: &str, c: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n\
         [providers.a]\nkind = \"openai\"\nbase_url = \"{a}\"\n\
         [providers.b]\nkind = \"openai\"\nbase_url = \"{b}\"\n\
         [providers.c]\nkind = \"openai\"\nbase_url = \"{c}\"\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"a\", model = \"m-a\" }}, {{ provider = \"b\", model = \"m-b\" }}]\n\
         [models.\"acme/fallback\"]\nendpoints = [{{ provider = \"c\", model = \"m-c\" }}]\n"
    )
}

#[test]
fn x_corelay_only_restricts_the_providers_and_x_corelay_models_adds_fallbacks() {
    let (a, b, c) = (
        MockProvider::start(MockConfig::default()).unwrap(),
        MockProvider::start(MockConfig::default()).unwrap(),
        MockProvider::start(MockConfig::default()).unwrap(),
    );
    let gateway = start_gateway(&routing_config(&a.base_url(), &b.base_url(), &c.base_url()));
    let mut client = Client::connect(gateway.local_addr());
    let post = |client: &mut Client, headers: &[(&str, &str)]| {
        client.post("/v1/chat/completions", headers, &chat_body("acme/chat", false))
    };

    let only_b = post(&mut client, &[("x-corelay-only", "b")]);
    assert_eq!(only_b.header("x-corelay-provider"), Some("b"), "{}", only_b.text());
    assert_eq!(a.requests().len(), 0, "`only` kept the first provider out");

    // b fails and is the only one allowed: without a fallback the failure is the answer...
    b.set_config(MockConfig {
        fault: Fault::Status { code: 503, retry_after_s: None, body: None },
        ..MockConfig::default()
    });
    let failed = post(&mut client, &[("x-corelay-only", "b")]);
    assert_eq!(failed.status, 503, "{}", failed.text());
    assert_eq!(a.requests().len(), 0, "`only` holds even when its provider fails");
    // ... and with `x-corelay-models` the fallback model serves, its provider is allowed too.
    let fell_back = post(&mut client, &[("x-corelay-only", "b, c"), ("x-corelay-models", "acme/fallback")]);
    assert_eq!(fell_back.status, 200, "{}", fell_back.text());
    assert_eq!(fell_back.header("x-corelay-provider"), Some("c"));
    assert_eq!(fell_back.header("x-corelay-model"), Some("acme/fallback"));
    assert_eq!(fell_back.header("x-corelay-attempts"), Some("2"));
    assert_eq!(a.requests().len(), 0);
    let sent: serde_json::Value = serde_json::from_slice(&c.requests()[0].body).unwrap();
    assert_eq!(sent["model"], "m-c", "the fallback model's own provider model");

    let unknown = post(&mut client, &[("x-corelay-models", "acme/none")]);
    assert_eq!(unknown.status, 400, "an unknown fallback model is the client's error: {}", unknown.text());
}

#[test]
fn only_the_gateway_built_headers_reach_the_provider() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let keys = "[[keys]]\nname = \"team-a\"\nkey = \"gw-client-key-0123456789\"\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", keys));
    let mut client = Client::connect(gateway.local_addr());
    let headers = [
        ("authorization", "Bearer gw-client-key-0123456789"),
        ("proxy-authorization", "Basic Y2xpZW50OnNlY3JldA=="),
        ("x-api-key", "client-x-api-key"),
        ("api-key", "client-azure-key"),
        ("x-goog-api-key", "client-google-key"),
        ("cookie", "session=client"),
        ("connection", "keep-alive, x-hop-named"),
        ("x-hop-named", "hop-value"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("x-forwarded-for", "10.1.2.3"),
        ("x-corelay-order", "mock"),
        ("x-corelay-only", "mock"),
    ];

    let response = client.post("/v1/chat/completions", &headers, &chat_body(MODEL, false));

    assert_eq!(response.status, 200, "{}", response.text());
    let seen = &provider.requests()[0];
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    for name in [
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "x-hop-named",
        "keep-alive",
        "te",
        "upgrade",
        "x-forwarded-for",
        "x-corelay-order",
        "x-corelay-only",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the provider: {:?}", seen.headers);
    }
    assert!(
        seen.header("connection").is_none_or(|v| v.eq_ignore_ascii_case("keep-alive")),
        "the client's Connection header was not forwarded: {:?}",
        seen.headers
    );
    let all = format!("{:?}", seen.headers);
    for leaked in ["gw-client-key", "hop-value", "client-", "session=client", "10.1.2.3"] {
        assert!(!all.contains(leaked), "{leaked} reached the provider: {all}");
    }
}

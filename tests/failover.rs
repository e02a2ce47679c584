//! Failover, retry discipline and shared health, end to end with fault-injecting mocks. Every
//! assertion counts what the mocks' request logs (or the published health table) show exactly.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Response, chat_body, start_gateway};
use corelay::health::EndpointState;
use loadtest::{Fault, MockConfig, MockProvider, refused_addr};

const MODEL: &str = "acme/chat";
const WAIT: Duration = Duration::from_secs(10);

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

fn failing(code: u16) -> MockConfig {
    MockConfig { fault: Fault::Status { code, retry_after_s: None, body: None }, ..MockConfig::default() }
}

/// A gateway whose `acme/chat` model is served by the named providers in this order; `acme/fallback`
/// by the last one. `extra` goes at the top level (sections such as [health]).
fn config(providers: &[(&str, String)], cores: usize, extra: &str) -> String {
    config_with_fallback(providers, providers.len(), cores, extra)
}

/// Like `config`, but only the first `chat_count` providers serve `acme/chat`.
fn config_with_fallback(providers: &[(&str, String)], chat_count: usize, cores: usize, extra: &str) -> String {
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\ncores = {cores}\n{extra}\n");
    for (name, url) in providers {
        text.push_str(&format!("[providers.{name}]\nkind = \"openai\"\nbase_url = \"{url}\"\n"));
    }
    let endpoints: Vec<String> = providers[..chat_count]
        .iter()
        .map(|(name, _)| format!("{{ provider = \"{name}\", model = \"m-{name}\" }}"))
        .collect();
    text.push_str(&format!("[models.\"{MODEL}\"]\nendpoints = [{}]\n", endpoints.join(", ")));
    let last = providers.last().unwrap().0;
    text.push_str(&format!(
        "[models.\"acme/fallback\"]\nendpoints = [{{ provider = \"{last}\", model = \"fb-{last}\" }}]\n"
    ));
    text
}

fn chat(client: &mut Client, stream: bool) -> Response {
    client.post("/v1/chat/completions", &[], &chat_body(MODEL, stream))
}

fn chat_with_options(client: &mut Client, options: serde_json::Value) -> Response {
    let body = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "providerOptions": {"gateway": options},
    });
    client.post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap())
}

fn served_by(response: &Response) -> String {
    assert_eq!(response.status, 200, "{}", response.text());
    response.header("x-corelay-provider").unwrap_or("-").to_string()
}

#[test]
fn a_refusing_primary_is_ejected_and_only_its_probe_reaches_it() {
    let secondary = mock(MockConfig::default());
    let providers = [("primary", format!("http://{}/v1", refused_addr())), ("secondary", secondary.base_url())];
    let health = "[health]\ntick_ms = 20\neject_consecutive_failures = 3\neject_base_ms = 1500\n";
    let gateway = start_gateway(&config(&providers, 1, health));
    let primary_id = gateway.endpoint_id("primary", "m-primary").unwrap();
    let mut client = Client::connect(gateway.local_addr());

    for i in 0..100 {
        assert_eq!(served_by(&chat(&mut client, i % 2 == 0)), "secondary", "request {i}");
    }

    assert_eq!(secondary.requests().len(), 100, "all 100 served by the secondary, once each");
    let ejected = |t: &corelay::health::HealthTable| matches!(t.get(primary_id).state, EndpointState::Ejected { .. });
    assert!(gateway.health().wait_until(ejected, WAIT), "the primary is ejected");
    let table = gateway.health().latest();
    assert_eq!(table.get(primary_id).requests, 3, "exactly the 3 failures that ejected it reached the primary");

    let probing = |t: &corelay::health::HealthTable| t.get(primary_id).state == EndpointState::Probing { worker: 0 };
    assert!(gateway.health().wait_until(probing, WAIT), "after the ejection, a probe is due");
    assert_eq!(served_by(&chat(&mut client, false)), "secondary", "the probe failed over");
    assert_eq!(served_by(&chat(&mut client, false)), "secondary");
    let re_ejected = |t: &corelay::health::HealthTable| t.get(primary_id).ejections == 2;
    assert!(gateway.health().wait_until(re_ejected, WAIT), "the failed probe ejected it again, for longer");
    assert_eq!(gateway.health().latest().get(primary_id).requests, 1, "one probe, then nothing");
    assert_eq!(secondary.requests().len(), 102);
}

#[test]
fn retry_after_pauses_the_provider_for_that_long() {
    let primary = mock(MockConfig {
        fault: Fault::Status { code: 429, retry_after_s: Some(2), body: None },
        ..MockConfig::default()
    });
    let secondary = mock(MockConfig::default());
    let providers = [("primary", primary.base_url()), ("secondary", secondary.base_url())];
    let gateway = start_gateway(&config(&providers, 1, "[health]\ntick_ms = 20\n"));
    let mut client = Client::connect(gateway.local_addr());

    assert_eq!(served_by(&chat(&mut client, false)), "secondary");
    let limited_at = Instant::now();
    primary.set_config(MockConfig::default());
    let mut back = None;
    for _ in 0..1_000_000 {
        if served_by(&chat(&mut client, false)) == "primary" {
            back = Some(limited_at.elapsed());
            break;
        }
        if limited_at.elapsed() > WAIT {
            break;
        }
    }

    let back = back.expect("the primary gets traffic again after its cooldown");
    assert!(back >= Duration::from_millis(1900), "no request reached the primary for 2 s (came back after {back:?})");
    assert_eq!(primary.requests().len(), 2, "the 429, then the first request after the cooldown");
}

#[test]
fn an_error_as_the_first_event_fails_over_invisibly() {
    let primary = mock(MockConfig { fault: Fault::ErrorEventFirst, ..MockConfig::default() });
    let secondary = mock(MockConfig { events: 4, ..MockConfig::default() });
    let providers = [("primary", primary.base_url()), ("secondary", secondary.base_url())];
    let gateway = start_gateway(&config(&providers, 1, ""));

    let response = chat(&mut Client::connect(gateway.local_addr()), true);

    assert_eq!(served_by(&response), "secondary");
    assert_eq!(response.header("x-corelay-attempts"), Some("2"));
    let (events, done) = response.sse_data();
    assert!(done);
    assert_eq!(events.len(), 6, "only the secondary's role, 4 deltas and finish chunks");
    assert!(events.iter().all(|e| e.get("error").is_none()), "{}", response.text());
    assert_eq!((primary.requests().len(), secondary.requests().len()), (1, 1));
}

#[test]
fn a_reset_after_three_events_is_reported_in_band_and_never_replayed() {
    let primary = mock(MockConfig { fault: Fault::ResetAfterEvents(3), ..MockConfig::default() });
    let secondary = mock(MockConfig::default());
    let providers = [("primary", primary.base_url()), ("secondary", secondary.base_url())];
    let gateway = start_gateway(&config(&providers, 1, ""));
    let mut client = Client::connect(gateway.local_addr());

    let response = chat(&mut client, true);

    assert_eq!(served_by(&response), "primary");
    let (events, done) = response.sse_data();
    assert!(!done);
    assert_eq!(events.len(), 4, "3 events then one error: {}", response.text());
    assert!(events[..3].iter().all(|e| e["model"] == MODEL && e.get("error").is_none()));
    assert_eq!(events[3]["error"]["type"], "api_error");
    let ids: Vec<&str> = events[..3].iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "all from the one attempt");
    assert!(client.is_closed());
    assert_eq!((primary.requests().len(), secondary.requests().len()), (1, 0), "exactly one upstream attempt");
}

#[test]
fn an_outage_stays_within_the_retry_budget_and_recovers() {
    let a = mock(failing(503));
    let b = mock(failing(503));
    let providers = [("a", a.base_url()), ("b", b.base_url())];
    let routing = "[routing]\nretry_budget_ratio = 0.2\nretry_budget_min_per_sec = 0\n[health]\ntick_ms = 20\neject_base_ms = 60000\n";
    let gateway = start_gateway(&config(&providers, 1, routing));
    let mut client = Client::connect(gateway.local_addr());

    let started = Instant::now();
    for _ in 0..100 {
        let response = chat(&mut client, false);
        assert_eq!(response.status, 503, "the provider's answer is passed on");
    }
    let outage = started.elapsed();
    let attempts = a.requests().len() + b.requests().len();
    assert!(attempts <= 120, "{attempts} upstream attempts for 100 requests exceeds the 20% budget");
    assert!(attempts >= 100);
    assert!(outage < WAIT, "errors come back fast ({outage:?} for 100)");

    a.set_config(MockConfig::default());
    b.set_config(MockConfig::default());
    for _ in 0..5 {
        assert_eq!(chat(&mut client, false).status, 200, "service recovers with the providers");
    }
}

#[test]
fn order_only_and_fallback_models_are_honoured() {
    let (a, b, c) = (mock(MockConfig::default()), mock(MockConfig::default()), mock(MockConfig::default()));
    let d = mock(MockConfig::default());
    let providers = [("a", a.base_url()), ("b", b.base_url()), ("c", c.base_url()), ("d", d.base_url())];
    let gateway = start_gateway(&config_with_fallback(&providers, 3, 1, ""));
    let mut client = Client::connect(gateway.local_addr());

    assert_eq!(served_by(&chat(&mut client, false)), "a", "config order by default");
    assert_eq!(served_by(&chat_with_options(&mut client, serde_json::json!({"order": ["c", "a"]}))), "c");
    assert_eq!(served_by(&chat_with_options(&mut client, serde_json::json!({"only": ["b"]}))), "b");
    let by_header = client.post("/v1/chat/completions", &[("x-corelay-order", "b,c")], &chat_body(MODEL, false));
    assert_eq!(served_by(&by_header), "b");

    c.set_config(failing(500));
    let response = chat_with_options(&mut client, serde_json::json!({"order": ["c", "b"]}));
    assert_eq!(served_by(&response), "b", "c failed, the next in order served");
    c.set_config(MockConfig::default());
    a.set_config(failing(500));
    let response = chat_with_options(&mut client, serde_json::json!({"only": ["a", "d"], "models": ["acme/fallback"]}));
    assert_eq!(served_by(&response), "d", "`only` left a, which failed; then the fallback model's endpoint");
    assert_eq!(response.header("x-corelay-model"), Some("acme/fallback"));
    assert_eq!(response.json()["model"], "acme/fallback");

    let sent: Vec<String> = [&a, &b, &c, &d]
        .iter()
        .flat_map(|m| m.requests())
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(sent.iter().all(|b| !b.contains("providerOptions")), "routing options never reach a provider");
    let fallback_body: serde_json::Value = serde_json::from_slice(&d.requests()[0].body).unwrap();
    assert_eq!(fallback_body["model"], "fb-d");
    let counts = (a.requests().len(), b.requests().len(), c.requests().len(), d.requests().len());
    assert_eq!(counts, (2, 3, 2, 1));

    for options in [serde_json::json!({"order": ["a", "nope"]}), serde_json::json!({"only": ["zzz"]})] {
        let response = chat_with_options(&mut client, options);
        assert_eq!(response.status, 400);
        let message = response.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("nope") || message.contains("zzz"), "{message}");
    }
    let response = chat_with_options(&mut client, serde_json::json!({"models": ["acme/none"]}));
    assert_eq!(response.status, 400);
}

#[test]
fn health_seen_on_one_core_reaches_routing_on_all_cores() {
    let primary = mock(failing(500));
    let secondary = mock(MockConfig::default());
    let providers = [("primary", primary.base_url()), ("secondary", secondary.base_url())];
    let health = "[health]\ntick_ms = 20\neject_consecutive_failures = 3\neject_base_ms = 60000\n";
    let gateway = start_gateway(&config(&providers, 2, health));
    let primary_id = gateway.endpoint_id("primary", "m-primary").unwrap();

    let mut observer = Client::connect(gateway.local_addr());
    for _ in 0..3 {
        assert_eq!(served_by(&chat(&mut observer, false)), "secondary");
    }
    let ejected = |t: &corelay::health::HealthTable| matches!(t.get(primary_id).state, EndpointState::Ejected { .. });
    assert!(gateway.health().wait_until(ejected, WAIT), "every worker routes with the ejection");

    for _ in 0..24 {
        assert_eq!(served_by(&chat(&mut Client::connect(gateway.local_addr()), false)), "secondary");
    }
    assert_eq!(primary.requests().len(), 3, "no worker sent the ejected primary anything more");

    let health: serde_json::Value = Client::connect(gateway.local_addr()).get("/v1/health", &[]).json();
    let entry = health["endpoints"].as_array().unwrap().iter().find(|e| e["provider"] == "primary").unwrap().clone();
    assert_eq!(entry["state"], "ejected");
    assert!(entry["retry_in_ms"].as_u64().unwrap() > 0);
}

/// Issue #16: weights spread equal-priority endpoints (3:1 within 5% over 4,000 requests; priority
/// defaults to the config position, so equal ones are written out), and a
/// model's configured `fallbacks` serve once every one of its own endpoints has failed.
#[test]
fn weights_split_three_to_one_and_config_fallbacks_serve_when_every_endpoint_fails() {
    let (heavy, light, spare) = (mock(MockConfig::default()), mock(MockConfig::default()), mock(MockConfig::default()));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n\
         [providers.heavy]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [providers.light]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [providers.spare]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [models.\"{MODEL}\"]\n\
         endpoints = [{{ provider = \"heavy\", model = \"m\", priority = 0, weight = 3 }}, \
                      {{ provider = \"light\", model = \"m\", priority = 0, weight = 1 }}]\n\
         fallbacks = [\"acme/spare\"]\n\
         [models.\"acme/spare\"]\nendpoints = [{{ provider = \"spare\", model = \"s\" }}]\n",
        heavy.base_url(),
        light.base_url(),
        spare.base_url()
    );
    let gateway = start_gateway(&text);
    let mut client = Client::connect(gateway.local_addr());

    const REQUESTS: usize = 4_000;
    for i in 0..REQUESTS {
        let provider = served_by(&chat(&mut client, false));
        assert!(provider == "heavy" || provider == "light", "request {i} went to {provider}");
    }
    let heavy_share = heavy.requests().len() as f64 / REQUESTS as f64;
    assert_eq!(heavy.requests().len() + light.requests().len(), REQUESTS);
    assert!((heavy_share - 0.75).abs() <= 0.05 * 0.75, "heavy served {heavy_share:.3} of the requests, not 3/4");
    assert!(spare.requests().is_empty(), "the fallback is not used while the model's endpoints serve");

    heavy.set_config(failing(500));
    light.set_config(failing(503));
    let response = chat(&mut client, false);
    assert_eq!(served_by(&response), "spare", "every endpoint of the model failed: its configured fallback serves");
    assert_eq!(response.header("x-corelay-model"), Some("acme/spare"));
    let sent: serde_json::Value = serde_json::from_slice(&spare.requests()[0].body).unwrap();
    assert_eq!(sent["model"], "s");
}

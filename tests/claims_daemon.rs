//! What the README promises for SIGTERM and SIGHUP that daemon.rs does not check: drained responses
//! say `connection: close`, idle keep-alive connections close at once, and a reload is visibly the
//! new version (old model gone, new model served with its new provider model) while a stream begun
//! before it finishes on the old one. Exit codes and the grace deadline are daemon.rs's.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, Daemon, Response, chat_body};
use loadtest::{MockConfig, MockProvider};

const WAIT: Duration = Duration::from_secs(15);

fn config(base_url: &str, gateway_model: &str, provider_model: &str, server_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\n{server_extra}\n[health]\ntick_ms = 20\n\
         [providers.mock]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n\
         [models.\"{gateway_model}\"]\nendpoints = [{{ provider = \"mock\", model = \"{provider_model}\" }}]\n"
    )
}

fn in_thread(addr: SocketAddr, model: &'static str, stream: bool) -> std::thread::JoinHandle<Response> {
    std::thread::spawn(move || Client::connect(addr).post("/v1/chat/completions", &[], &chat_body(model, stream)))
}

/// A daemon whose provider answers every request only after 2 s (its head for a body, its first
/// event for a stream, which the gateway holds until then), so a signal sent once the provider
/// has the requests arrives before any response head is written.
fn slow_daemon(name: &str) -> (MockProvider, Daemon) {
    let mock = MockProvider::start(MockConfig {
        first_event_delay: Duration::from_millis(2000),
        events: 5,
        event_gap: Duration::from_millis(20),
        ..MockConfig::default()
    })
    .unwrap();
    let text = config(&mock.base_url(), "acme/chat", "gpt-4o-mini", "shutdown_grace_ms = 10000");
    let daemon = Daemon::start(name, &text);
    (mock, daemon)
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_at_once_while_requests_drain() {
    let (mock, mut daemon) = slow_daemon("drain-idle");
    let mut idle = Client::connect(daemon.addr);
    assert_eq!(idle.get("/v1/models", &[]).status, 200, "an idle keep-alive connection, open");
    let in_flight = in_thread(daemon.addr, "acme/chat", true);
    assert!(mock.wait_for_requests(1, WAIT), "the stream reached the provider");

    daemon.signal(libc::SIGTERM);
    let signalled = Instant::now();

    assert!(idle.is_closed(), "the idle keep-alive connection was closed");
    assert!(signalled.elapsed() < Duration::from_millis(1500), "closed at once, before the in-flight stream ended");
    let stream = in_flight.join().unwrap();
    assert_eq!(stream.status, 200, "{}", stream.text());
    assert!(stream.sse_data().1, "the stream finished within the grace: {}", stream.text());
    assert_eq!(daemon.exit_code_within(Duration::from_secs(5)), Some(0));
}

#[test]
fn responses_written_during_a_drain_say_connection_close() {
    let (mock, mut daemon) = slow_daemon("drain-close");
    let in_flight = [in_thread(daemon.addr, "acme/chat", true), in_thread(daemon.addr, "acme/chat", false)];
    assert!(mock.wait_for_requests(2, WAIT), "both requests reached the provider");

    daemon.signal(libc::SIGTERM);
    daemon.wait_for_line("stopped accepting");

    let [stream, body] = in_flight.map(|handle| handle.join().unwrap());
    assert_eq!(body.status, 200, "{}", body.text());
    assert_eq!(body.header("connection"), Some("close"), "a drained body says so: {:?}", body.headers);
    assert_eq!(stream.status, 200, "{}", stream.text());
    assert!(stream.sse_data().1, "the stream finished within the grace: {}", stream.text());
    assert_eq!(stream.header("connection"), Some("close"), "a drained stream says so: {:?}", stream.headers);
    assert_eq!(daemon.exit_code_within(Duration::from_secs(5)), Some(0));
}

fn model_ids(addr: SocketAddr) -> Vec<String> {
    let json = Client::connect(addr).get("/v1/models", &[]).json();
    json["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn after_sighup_every_core_serves_the_new_version_and_a_stream_begun_before_finishes_on_the_old() {
    let mock =
        MockProvider::start(MockConfig { events: 10, event_gap: Duration::from_millis(60), ..MockConfig::default() })
            .unwrap();
    let mut daemon = Daemon::start("reload-versions", &config(&mock.base_url(), "acme/old", "gpt-old", ""));
    let old_stream = in_thread(daemon.addr, "acme/old", true);
    assert!(mock.wait_for_requests(1, WAIT));

    std::fs::write(&daemon.config, config(&mock.base_url(), "acme/new", "gpt-new", "")).unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_line("switched to config version 1");
    daemon.wait_for_line("switched to config version 1");

    // New connections land on either core (SO_REUSEPORT): enough of them to reach both.
    for i in 0..20 {
        assert_eq!(model_ids(daemon.addr), ["acme/new"], "connection {i}: only the new version's model");
        let new = Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body("acme/new", false));
        assert_eq!(new.status, 200, "{}", new.text());
        assert_eq!(new.json()["model"], "acme/new");
        let old = Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body("acme/old", false));
        assert_eq!(old.status, 404, "the old version's model is gone: {}", old.text());
    }
    let sent_models: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent_models[0], "gpt-old");
    assert!(sent_models[1..].iter().all(|m| m == "gpt-new"), "after the switch only the new mapping: {sent_models:?}");
    assert_eq!(sent_models.len(), 21);

    let response = old_stream.join().unwrap();
    let (events, done) = response.sse_data();
    assert!(done && events.len() == 12, "the old stream completed: {}", response.text());
    assert!(events.iter().all(|e| e["model"] == "acme/old"), "on the version it started with");
}

//! The client-side limits of `[server]` as the README documents them, end to end on raw sockets:
//! `header_read_timeout_ms` (408, for the whole head, not per read), `body_read_timeout_ms` (408),
//! `keepalive_timeout_ms` (an idle connection is closed, a busy one is not) and `max_headers`
//! (431). Small timeouts (tens of ms) keep the file fast. Oversized heads and bodies are covered in
//! proxy_openai.rs, not here.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Client, chat_body, config_text, raw_connect, read_until_closed, start_gateway, status_of};
use loadtest::{MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";
/// Upper bound for "promptly after the timeout": generous for a loaded 2-core CI machine, and far
/// below what the same test would take if the timeout were not enforced (the defaults are 10 s+).
const SLACK: Duration = Duration::from_millis(1500);

fn gateway_with(server: &str) -> (MockProvider, corelay::runtime::Gateway) {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config_text(&provider.base_url(), server, ""));
    (provider, gateway)
}

fn assert_within(elapsed: Duration, timeout: Duration, what: &str) {
    assert!(elapsed >= timeout, "{what}: answered after {elapsed:?}, before the {timeout:?} timeout");
    assert!(elapsed < timeout + SLACK, "{what}: answered after {elapsed:?}, long after the {timeout:?} timeout");
}

#[test]
fn a_head_that_does_not_complete_within_header_read_timeout_gets_408_and_the_connection_closes() {
    let timeout = Duration::from_millis(60);
    let (_provider, gateway) = gateway_with("header_read_timeout_ms = 60\nkeepalive_timeout_ms = 60000");
    let mut stream = raw_connect(gateway.local_addr());
    stream.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n").unwrap();
    let sent = Instant::now();

    let answer = read_until_closed(&mut stream);

    assert_within(sent.elapsed(), timeout, "header timeout");
    assert_eq!(status_of(&answer), 408, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).to_ascii_lowercase().contains("connection: close"));
}

#[test]
fn the_header_timeout_bounds_the_whole_head_not_each_read() {
    // A slow-loris client sends a byte every 10 ms: each read is quick, the head never completes.
    let timeout = Duration::from_millis(120);
    let (_provider, gateway) = gateway_with("header_read_timeout_ms = 120");
    let mut stream = raw_connect(gateway.local_addr());
    stream.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nx-pad: {}", "a".repeat(1000));
    let mut answer = Vec::new();
    for byte in head.as_bytes() {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => {
                answer.extend_from_slice(&chunk[..n]);
                break;
            }
            _ => {}
        }
        // Pacing the client like a slow-loris attacker, not synchronising with the gateway.
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed();
    stream.set_nonblocking(false).unwrap();
    answer.extend(read_until_closed(&mut stream));

    assert_eq!(status_of(&answer), 408, "{}", String::from_utf8_lossy(&answer));
    assert_within(elapsed, timeout, "whole-head timeout while bytes keep trickling in");
}

#[test]
fn a_body_that_does_not_arrive_within_body_read_timeout_gets_408() {
    let timeout = Duration::from_millis(80);
    let (provider, gateway) = gateway_with("body_read_timeout_ms = 80");
    let mut stream = raw_connect(gateway.local_addr());
    let body = chat_body(MODEL, false);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // Taken before the head is written: the gateway's body clock starts once it has parsed the head.
    let sent = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..10]).unwrap();

    let answer = read_until_closed(&mut stream);

    assert_within(sent.elapsed(), timeout, "body timeout");
    assert_eq!(status_of(&answer), 408, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("request body"), "the error names the body");
    assert!(provider.requests().is_empty(), "nothing reached the provider");
}

#[test]
fn an_idle_keep_alive_connection_closes_after_keepalive_timeout_and_a_busy_one_stays() {
    let timeout = Duration::from_millis(150);
    let (_provider, gateway) = gateway_with("keepalive_timeout_ms = 150\nheader_read_timeout_ms = 60000");
    let mut client = Client::connect(gateway.local_addr());
    // Requests 50 ms apart for 250 ms in all: each pause is within the idle timeout, the whole is not,
    // so the connection must stay open (the timer counts idleness, not the connection's age).
    let opened = Instant::now();
    let mut idle_since = opened;
    for i in 0..6 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Taken before the request: the gateway's idle clock starts when it has written the answer.
        idle_since = Instant::now();
        assert_eq!(client.post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status, 200, "request {i}");
    }
    assert!(opened.elapsed() > timeout, "the connection outlived one idle timeout while busy");

    assert!(client.is_closed(), "the gateway closed the idle connection");
    assert_within(idle_since.elapsed(), timeout, "keep-alive timeout");
}

#[test]
fn more_header_fields_than_max_headers_get_431_and_exactly_the_limit_passes() {
    let (_provider, gateway) = gateway_with("max_headers = 8");
    // The client sends host, content-type and content-length itself: 3 + 5 = 8 fields.
    let five: Vec<(String, String)> = (0..5).map(|i| (format!("x-extra-{i}"), "v".to_string())).collect();
    let six: Vec<(String, String)> = (0..6).map(|i| (format!("x-extra-{i}"), "v".to_string())).collect();
    let post = |headers: &[(String, String)]| {
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut client = Client::connect(gateway.local_addr());
        let response = client.post("/v1/chat/completions", &refs, &chat_body(MODEL, false));
        (response, client)
    };

    let (at_limit, _) = post(&five);
    assert_eq!(at_limit.status, 200, "8 fields are allowed: {}", at_limit.text());

    let (over, mut client) = post(&six);
    assert_eq!(over.status, 431, "{}", over.text());
    assert_eq!(over.header("connection"), Some("close"));
    assert!(client.is_closed(), "the connection closes after a 431");
}

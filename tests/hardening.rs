//! End to end: hostile clients and broken providers against the gateway on port 0 (issue #15). Each
//! test names the defect it guards against; each failed (or aborted the process) before its fix.

mod common;

use std::time::Duration;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const MODEL: &str = "acme/chat-small";

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

/// `{"model": ..., "x": [[[...]]]}` with `depth` brackets: valid JSON, nested far past any limit.
/// A gateway whose model `acme/two` is served by the mock at `primary_url`, then by `backup`.
fn with_backup(primary_url: &str, backup: &MockProvider) -> corelay::Gateway {
    let extra = format!(
        "[providers.backup]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[models.\"acme/two\"]\nendpoints = [{{ provider = \
         \"mock\", model = \"gpt-4o-mini\" }}, {{ provider = \"backup\", model = \"gpt-4o-mini\" }}]\n",
        backup.base_url()
    );
    start_gateway(&config_text(primary_url, "", &extra))
}

fn deeply_nested_body(depth: usize) -> Vec<u8> {
    let mut body = format!("{{\"model\":\"{MODEL}\",\"stream\":false,\"messages\":[],\"x\":").into_bytes();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    body
}

#[test]
fn deeply_nested_request_bodies_get_a_400_on_every_door_and_the_process_lives() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_body_bytes = 4194304", ""));
    let doors = [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/responses",
        "/v1/embeddings",
        "/v4/ai/language-model",
        "/v1/ai/embedding-model",
    ];
    for depth in [200, 20_000, 1_000_000] {
        let body = deeply_nested_body(depth);
        for door in doors {
            let headers = [("ai-language-model-id", MODEL), ("ai-model-id", MODEL)];
            let response = Client::connect(gateway.local_addr()).post(door, &headers, &body);
            assert_eq!(response.status, 400, "{door} at depth {depth}: {}", response.text());
            assert!(response.text().contains("nested deeper than 128"), "{door}: {}", response.text());
        }
    }
    assert!(provider.requests().is_empty(), "nothing reached the provider");
    let fine = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(fine.status, 200, "the worker is still serving");
}

#[test]
fn a_deeply_nested_first_stream_event_fails_over_and_the_process_lives() {
    let mut event = b"data: {\"id\":\"x\",\"choices\":".to_vec();
    event.extend(std::iter::repeat_n(b'[', 100_000));
    event.extend(std::iter::repeat_n(b']', 100_000));
    event.extend_from_slice(b"}\n\n");
    let broken = mock(MockConfig { reply: Reply::Sse(event), ..MockConfig::default() });
    let healthy = mock(MockConfig::default());
    let gateway = with_backup(&broken.base_url(), &healthy);

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body("acme/two", true));

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-corelay-provider"), Some("backup"), "the broken first event was failed over");
    assert_eq!(broken.requests().len(), 1);
    let (events, done) = response.sse_data();
    assert!(done && !events.is_empty());
    let again = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(again.status, 200, "the worker is still serving");
}

/// A recorded provider stream (see the fixtures' INDEX.md for where each came from).
fn recorded(path: &str) -> Vec<u8> {
    let full = format!("{}/{path}", corelay::fixture_path!());
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The recorded events of `sse` up to (not including) the first whose `event:` line names `stop_at`.
fn events_before(sse: &[u8], stop_at: &str) -> Vec<u8> {
    let text = String::from_utf8(sse.to_vec()).unwrap();
    let cut = text.find(&format!("event: {stop_at}")).unwrap_or_else(|| panic!("no {stop_at} event"));
    text.as_bytes()[..cut].to_vec()
}

fn one_provider(kind: &str, base_url: &str, model: &str, upstream_model: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.p]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\n\
         [models.\"{model}\"]\nendpoints = [{{ provider = \"p\", model = \"{upstream_model}\" }}]\n"
    )
}

#[test]
fn an_openai_stream_cut_before_its_end_ends_with_an_error_not_a_clean_finish() {
    let provider = mock(MockConfig { fault: Fault::MissingFinalEvent, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut body: serde_json::Value = serde_json::from_slice(&chat_body(MODEL, true)).unwrap();
    body["stream_options"] = serde_json::json!({"include_usage": true});

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap());

    assert_eq!(response.status, 200);
    let (events, done) = response.sse_data();
    assert!(!done, "no [DONE]: {}", response.text());
    let last = events.last().expect("events");
    assert!(last["error"]["message"].as_str().unwrap().contains("before it was complete"), "{}", response.text());
    assert!(!response.text().contains("corelay usage"), "a cut stream gets no closing usage comment");
    assert_eq!(events.iter().filter(|e| e.get("error").is_some()).count(), 1, "exactly one error event");
}

#[test]
fn an_anthropic_stream_passed_through_and_cut_ends_with_an_anthropic_error_event() {
    let cut = events_before(&recorded("anthropic/anthropic-messages-stream-text.sse"), "message_stop");
    let provider = mock(MockConfig { reply: Reply::Sse(cut), ..MockConfig::default() });
    let gateway = start_gateway(&one_provider("anthropic", &provider.base_url(), "a/claude", "claude-sonnet-4-5"));
    let body = br#"{"model":"a/claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/messages", &[], body);

    assert_eq!(response.status, 200);
    let text = response.text();
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "Anthropic's error event, not OpenAI's: {tail}");
    let data: serde_json::Value = serde_json::from_str(tail.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert!(data["error"]["message"].as_str().unwrap().contains("before it was complete"), "{data}");
    assert!(text.contains("content_block_delta"), "the content before the cut was relayed");
}

#[test]
fn message_start_then_overloaded_error_fails_over_to_the_next_endpoint() {
    let recorded_stream = recorded("anthropic/anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse");
    let mut early_error = events_before(&recorded_stream, "content_block_start");
    early_error.extend_from_slice(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
    let overloaded = mock(MockConfig { reply: Reply::Sse(early_error), ..MockConfig::default() });
    let healthy = mock(MockConfig {
        reply: Reply::Sse(recorded("anthropic/anthropic-messages-stream-text.sse")),
        ..MockConfig::default()
    });
    let config = format!(
        "{}[providers.q]\nkind = \"anthropic\"\nbase_url = \"{}\"\n",
        one_provider("anthropic", &overloaded.base_url(), "a/claude", "claude-sonnet-4-5"),
        healthy.base_url()
    )
    .replace(
        "endpoints = [{ provider = \"p\", model = \"claude-sonnet-4-5\" }]",
        "endpoints = [{ provider = \"p\", model = \"claude-sonnet-4-5\" }, { provider = \"q\", model = \"claude-sonnet-4-5\" }]",
    );
    let gateway = start_gateway(&config);
    let body = br#"{"model":"a/claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/messages", &[], body);

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-corelay-provider"), Some("q"), "{}", response.text());
    assert_eq!(response.header("x-corelay-attempts"), Some("2"));
    assert!(!response.text().contains("overloaded_error"));
    assert!(response.text().contains("event: message_stop"));
    assert_eq!(overloaded.requests().len(), 1);
}

#[test]
fn a_responses_stream_passed_through_and_cut_ends_with_a_responses_error_event() {
    let cut = events_before(&recorded("openai/responses/openai-responses-stream-text.sse"), "response.completed");
    let data_events =
        String::from_utf8_lossy(&cut).matches("\ndata: ").count() + usize::from(cut.starts_with(b"data: "));
    let provider = mock(MockConfig { reply: Reply::Sse(cut), ..MockConfig::default() });
    let gateway = start_gateway(&one_provider("openai_responses", &provider.base_url(), "o/pro", "o3-pro"));
    let body = br#"{"model":"o/pro","stream":true,"input":"hi"}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/responses", &[], body);

    assert_eq!(response.status, 200);
    let text = response.text();
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "{tail}");
    let data: serde_json::Value = serde_json::from_str(tail.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["sequence_number"], data_events as u64, "numbering continues the provider's");
    assert!(data["message"].as_str().unwrap().contains("before it was complete"));
}

/// A provider written by hand for answers the mock cannot give: accepts one connection, reads one
/// request (head and `content-length` body), writes `answer` in a single write and closes.
fn raw_provider(answer: Vec<u8>) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let request = read_one_request(&mut socket);
        socket.write_all(&answer).unwrap();
        request
    });
    (url, handle)
}

/// Reads one request (head and `content-length` body) from a provider-side socket, waiting at most
/// 10 s for each read.
fn read_one_request(socket: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        let n = socket.read(&mut chunk).unwrap_or(0);
        request.extend_from_slice(&chunk[..n]);
        if n == 0 || request_is_complete(&request) {
            break;
        }
    }
    request
}

fn request_is_complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some(head_end) = text.find("\r\n\r\n") else { return false };
    let length = text[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    request.len() >= head_end + 4 + length
}

#[test]
fn a_100_continue_and_the_final_head_in_one_read_are_both_parsed_at_once() {
    let body = br#"{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    let mut answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\n"
            .to_vec();
    answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(body);
    let (url, provider) = raw_provider(answer);
    // Before the fix the gateway waited for the first-byte timeout, then answered 504.
    let gateway = start_gateway(&config_text(&url, "", "[pool]\nfirst_byte_timeout_ms = 5000\n"));
    let started = std::time::Instant::now();

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["choices"][0]["message"]["content"], "hi");
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "answered without waiting for a timeout");
    drop(gateway);
    let seen = provider.join().unwrap();
    assert!(
        String::from_utf8_lossy(&seen).starts_with("POST /chat/completions"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
}

#[test]
fn unknown_model_names_add_no_metric_series_and_are_not_echoed_whole() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", "[health]\ntick_ms = 20\n"));
    let mut client = Client::connect(gateway.local_addr());
    for i in 0..200 {
        let response =
            client.post("/v1/chat/completions", &[], &chat_body(&format!("nobody/model-{i}-{}", i * 7919), false));
        assert_eq!(response.status, 404);
    }
    let long_name = "x".repeat(1 << 20);
    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(&long_name, false));
    assert_eq!(response.status, 404);
    assert!(response.text().len() < 2_000, "the 404 echoes a prefix, not a megabyte: {} bytes", response.text().len());

    let counted = |text: &str| {
        text.lines().any(|l| {
            l == r#"corelay_requests_total{front_door="openai",model="(unknown)",provider="none",status_class="4xx"} 201"#
        })
    };
    assert!(
        gateway.health().wait_until_metrics(counted, Duration::from_secs(10)),
        "{}",
        gateway.health().latest_metrics()
    );
    let metrics = gateway.health().latest_metrics();
    assert!(!metrics.contains("nobody/model"), "no client-chosen name became a label");
}

fn revoked_key_body() -> Vec<u8> {
    format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#,
        common::PROVIDER_KEY
    )
    .into_bytes()
}

#[test]
fn a_provider_401_fails_over_and_its_text_never_reaches_the_client() {
    let revoked = mock(MockConfig {
        fault: Fault::Status { code: 401, retry_after_s: None, body: Some(revoked_key_body()) },
        ..MockConfig::default()
    });
    let healthy = mock(MockConfig::default());
    let gateway = with_backup(&revoked.base_url(), &healthy);

    for (door, body) in [
        ("/v1/chat/completions", chat_body("acme/two", false)),
        ("/v1/chat/completions", chat_body("acme/two", true)),
        (
            "/v1/messages",
            br#"{"model":"acme/two","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        ),
    ] {
        let served = Client::connect(gateway.local_addr()).post(door, &[], &body);
        assert_eq!(served.status, 200, "{door}: {}", served.text());
        assert_eq!(served.header("x-corelay-provider"), Some("backup"), "{door}");
    }
    for (door, body) in [
        ("/v1/chat/completions", chat_body(MODEL, false)),
        ("/v1/chat/completions", chat_body(MODEL, true)),
        (
            "/v1/messages",
            br#"{"model":"acme/chat-small","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        ),
        ("/v1/responses", br#"{"model":"acme/chat-small","input":"hi"}"#.to_vec()),
    ] {
        let refused = Client::connect(gateway.local_addr()).post(door, &[], &body);
        assert_eq!(
            refused.status,
            502,
            "{door}: the gateway's credential problem, not the client's: {}",
            refused.text()
        );
        assert!(!refused.text().contains(common::PROVIDER_KEY), "{door}: {}", refused.text());
        assert!(refused.text().contains("refused the gateway's credentials"), "{door}: {}", refused.text());
    }
}

#[test]
fn a_provider_error_quoting_the_key_is_scrubbed() {
    let quoting = mock(MockConfig {
        fault: Fault::Status { code: 400, retry_after_s: None, body: Some(revoked_key_body()) },
        ..MockConfig::default()
    });
    let gateway = start_gateway(&config_text(&quoting.base_url(), "", ""));
    for door in ["/v1/chat/completions", "/v1/messages"] {
        let body = br#"{"model":"acme/chat-small","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#;
        let response = Client::connect(gateway.local_addr()).post(door, &[], body);
        assert_eq!(response.status, 400, "{door}");
        assert!(!response.text().contains(common::PROVIDER_KEY), "{door}: {}", response.text());
        assert!(response.text().contains("[redacted]"), "{door}: {}", response.text());
    }
}

#[test]
fn the_gateway_key_is_checked_after_the_head_before_any_body_is_read() {
    let provider = mock(MockConfig::default());
    let keys = "[[keys]]\nname = \"team\"\nkey = \"gw-key-0123456789\"\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_body_bytes = 16777216", keys));
    for (path, format_marker) in [("/v1/chat/completions", "\"error\""), ("/v1/messages", "\"type\":\"error\"")] {
        let mut client = Client::connect(gateway.local_addr());
        // 15 MB announced, a few bytes sent: the answer must not wait for the rest.
        client.send_raw(
            format!("POST {path} HTTP/1.1\r\nhost: g\r\ncontent-length: 15000000\r\n\r\n{{\"model\":").as_bytes(),
        );
        let started = std::time::Instant::now();
        let response = client.read_response();
        assert_eq!(response.status, 401, "{path}: {}", response.text());
        assert!(response.text().contains(format_marker), "{path}: in the path's own format: {}", response.text());
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: no wait for the body (the body timeout is 30 s)");
        assert_eq!(response.header("connection"), Some("close"));
    }
    let served = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer gw-key-0123456789")],
        &chat_body(MODEL, false),
    );
    assert_eq!(served.status, 200);
}

/// A provider that reads one request and never answers; its thread returns how long after the
/// request the gateway closed the connection (`None`: still open after 10 s).
fn silent_provider(requested: std::sync::mpsc::Sender<()>) -> (String, std::thread::JoinHandle<Option<Duration>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        read_one_request(&mut socket);
        let mut chunk = [0u8; 1];
        let asked = std::time::Instant::now();
        requested.send(()).unwrap();
        match socket.read(&mut chunk) {
            Ok(0) => Some(asked.elapsed()),
            _ => None,
        }
    });
    (url, handle)
}

#[test]
fn a_client_gone_before_the_first_byte_cancels_the_provider_call() {
    for stream in [false, true] {
        let (requested, asked) = std::sync::mpsc::channel();
        let (url, provider) = silent_provider(requested);
        let gateway = start_gateway(&config_text(&url, "", "[health]\ntick_ms = 20\n"));
        let mut client = Client::connect(gateway.local_addr());
        let body = chat_body(MODEL, stream);
        client.send_raw(
            format!("POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: {}\r\n\r\n", body.len())
                .as_bytes(),
        );
        client.send_raw(&body);
        asked.recv_timeout(Duration::from_secs(5)).expect("the call reached the provider");
        let left = std::time::Instant::now();
        drop(client);

        let closed_after = provider.join().unwrap();
        let closed_after = closed_after.expect("the gateway closed the provider connection");
        assert!(left.elapsed() < Duration::from_secs(2), "stream={stream}: closed {closed_after:?} after the request");
        let recorded = |text: &str| {
            text.lines().any(|l| l.contains("status_class=\"4xx\"") && l.contains("model=\"acme/chat-small\""))
        };
        assert!(
            gateway.health().wait_until_metrics(recorded, Duration::from_secs(5)),
            "the partial call is recorded: {}",
            gateway.health().latest_metrics()
        );
    }
}

#[test]
fn a_provider_redirect_fails_over_and_is_never_passed_on() {
    let redirecting = mock(MockConfig {
        fault: Fault::Status { code: 307, retry_after_s: None, body: Some(b"moved".to_vec()) },
        ..MockConfig::default()
    });
    let healthy = mock(MockConfig::default());
    let gateway = with_backup(&redirecting.base_url(), &healthy);

    let served = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body("acme/two", false));
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.header("x-corelay-provider"), Some("backup"));
    for door in ["/v1/chat/completions", "/v1/messages"] {
        let body = br#"{"model":"acme/chat-small","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#;
        let refused = Client::connect(gateway.local_addr()).post(door, &[], body);
        assert_eq!(refused.status, 502, "{door}: {}", refused.text());
        assert!(refused.text().contains("redirect"), "{door}: {}", refused.text());
    }
}

#[test]
fn request_line_forms_and_chunk_sizes_are_judged_as_rfc_9112_says() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_body_bytes = 65536", ""));
    let body = chat_body(MODEL, false);

    // Absolute-form is accepted; its path routes.
    let mut client = Client::connect(gateway.local_addr());
    client.send_raw(
        format!(
            "POST http://gateway.example/v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    client.send_raw(&body);
    assert_eq!(client.read_response().status, 200);

    // A space in the target is a bad request, not an unsupported version.
    let mut client = Client::connect(gateway.local_addr());
    client.send_raw(b"GET /a b HTTP/1.1\r\nhost: g\r\n\r\n");
    assert_eq!(client.read_response().status, 400);

    // A chunk announced past the body limit is refused at its size line, without waiting for data.
    let mut client = Client::connect(gateway.local_addr());
    client.send_raw(b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ntransfer-encoding: chunked\r\n\r\nFFFFFF\r\n");
    let started = std::time::Instant::now();
    assert_eq!(client.read_response().status, 413);
    assert!(started.elapsed() < Duration::from_secs(5), "no wait for the body timeout");

    // Providers are asked for bodies as they are: Corelay decodes no content coding.
    assert_eq!(provider.requests()[0].header("accept-encoding"), Some("identity"));
}

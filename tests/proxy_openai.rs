//! End to end: the gateway on port 0 in front of the mock OpenAI provider, driven over real sockets.
//! Covers round trips, what the provider receives, every gateway error, connection reuse on both
//! sides, and mid-stream failures.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Client, PROVIDER_KEY, chat_body, config_text, start_gateway};
use loadtest::{Fault, Framing, MockConfig, MockProvider, Reply, refused_addr};

const MODEL: &str = "acme/chat-small";

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

#[test]
fn non_streaming_round_trip_rewrites_model_both_ways() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());

    let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, false));

    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.header("content-type").unwrap().starts_with("application/json"));
    let json = response.json();
    assert_eq!(json["model"], MODEL, "the client sees the gateway model id");
    assert_eq!(json["object"], "chat.completion");
    assert!(json["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()));
    let seen = provider.requests();
    assert_eq!(seen.len(), 1);
    let sent: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini", "the provider sees its own model name");
    assert_eq!(sent["messages"][0]["content"], "Say hello");
    assert_eq!(seen[0].path, "/v1/chat/completions");
}

#[test]
fn upstream_body_differs_from_the_client_body_only_in_model() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let body = br#"{ "messages" : [ {"role":"user","content":"\u00e9 \"model\": x"} ],"model":"acme/chat-small","temperature":0.25 }"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], body);

    assert_eq!(response.status, 200);
    let expected = br#"{ "messages" : [ {"role":"user","content":"\u00e9 \"model\": x"} ],"model":"gpt-4o-mini","temperature":0.25 }"#;
    assert_eq!(provider.requests()[0].body, expected.to_vec());
}

#[test]
fn provider_gets_its_key_and_never_the_client_credentials() {
    let provider = mock(MockConfig::default());
    let keys = "[[keys]]\nname = \"team-a\"\nkey = \"gw-client-key-0123456789\"\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", keys));
    let mut client = Client::connect(gateway.local_addr());
    let headers = [
        ("authorization", "Bearer gw-client-key-0123456789"),
        ("x-api-key", "client-anthropic-style-key"),
        ("openai-organization", "org-client"),
        ("cookie", "session=client"),
    ];

    let response = client.post("/v1/chat/completions", &headers, &chat_body(MODEL, false));

    assert_eq!(response.status, 200, "{}", response.text());
    let seen = &provider.requests()[0];
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    let all_headers = format!("{:?}", seen.headers);
    for leaked in ["gw-client-key", "client-anthropic-style-key", "org-client", "session=client"] {
        assert!(!all_headers.contains(leaked), "{leaked} reached the provider: {all_headers}");
    }
    assert!(!response.text().contains(PROVIDER_KEY), "the provider key must not reach the client");
}

#[test]
fn gateway_keys_are_required_when_configured() {
    let provider = mock(MockConfig::default());
    let keys = "[[keys]]\nname = \"team-a\"\nkey = \"gw-client-key-0123456789\"\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", keys));
    let addr = gateway.local_addr();

    let missing = Client::connect(addr).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    let wrong = Client::connect(addr).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer gw-client-key-0123456780")],
        &chat_body(MODEL, false),
    );
    let models = Client::connect(addr).get("/v1/models", &[]);
    let health = Client::connect(addr).get("/healthz", &[]);

    for response in [&missing, &wrong, &models] {
        assert_eq!(response.status, 401);
        assert_eq!(response.json()["error"]["type"], "authentication_error");
    }
    assert_eq!(health.status, 200, "health checks need no key");
    assert!(provider.requests().is_empty(), "rejected requests never reach the provider");
}

#[test]
fn streaming_round_trip_flushes_events_and_rewrites_every_chunk() {
    let provider = mock(MockConfig { events: 8, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, true));

    assert_eq!(response.status, 200);
    assert!(response.header("content-type").unwrap().starts_with("text/event-stream"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    let (events, done) = response.sse_data();
    assert!(done, "the stream ends with [DONE]");
    assert_eq!(events.len(), 8 + 2, "role chunk, 8 deltas, finish chunk");
    assert!(events.iter().all(|e| e["model"] == MODEL), "every chunk carries the gateway model id");
    let sent: serde_json::Value = serde_json::from_slice(&provider.requests()[0].body).unwrap();
    assert_eq!(sent["stream"], true);
}

#[test]
fn a_stream_the_provider_sends_at_once_reaches_the_client_in_one_write() {
    // The recorded stream (8.7 KiB, 15 events) written in one go, as a provider's burst arrives: the
    // gateway reads it into its pooled connection's buffer, which doubles while reads fill it (2,
    // 4, 8, 16 KiB) and is kept by the pool, and writes everything one read brought in one write,
    // the head and the chunked end included. Counted as TCP segments on the client's connection.
    let recorded = std::fs::read(corelay::fixture_path!("openai/chat/openai-chat-stream-usage.sse")).unwrap();
    let recorded_events = recorded.windows(7).filter(|w| w == b"data: {").count();
    let provider =
        mock(MockConfig { reply: Reply::Sse(recorded), replay_piece_bytes: 1 << 20, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());
    let mut segments = Vec::new();
    for _ in 0..4 {
        let before = client.data_segments_in();
        let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, true));
        segments.push(client.data_segments_in() - before);
        assert_eq!(response.status, 200, "{}", response.text());
        let (events, done) = response.sse_data();
        assert!(done, "the stream ends with [DONE]");
        assert_eq!(events.len(), recorded_events);
        assert!(events.iter().all(|e| e["model"] == MODEL));
    }
    assert_eq!(provider.connections_accepted(), 1, "one pooled provider connection");
    // First stream: reads of 2, 4 and 8 KiB, a write after each; then 16 KiB holds it all.
    assert!(segments.iter().all(|&n| n <= 3), "writes per stream: {segments:?}");
    assert_eq!(segments[2..], [1, 1], "writes per stream: {segments:?}");
}

#[test]
fn events_reach_the_client_while_the_provider_is_still_streaming() {
    // The provider sends three events and then nothing, without ending the body: the client can
    // only see them if the gateway flushed them as they came.
    let provider = mock(MockConfig { fault: Fault::StallAfterEvents(3), ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut stream = std::net::TcpStream::connect(gateway.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = chat_body(MODEL, true);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), &body].concat()).unwrap();

    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let events = |bytes: &[u8]| bytes.windows(6).filter(|w| w == b"data: ").count();
    while events(&received) < 3 && std::time::Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }

    assert_eq!(events(&received), 3, "{}", String::from_utf8_lossy(&received));
}

#[test]
fn upstream_framings_are_all_relayed() {
    for framing in [Framing::Chunked, Framing::ContentLength, Framing::CloseDelimited] {
        let provider = mock(MockConfig { framing, ..MockConfig::default() });
        let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
        let mut client = Client::connect(gateway.local_addr());
        for stream in [false, true] {
            let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, stream));
            assert_eq!(response.status, 200, "{framing:?} stream={stream}");
            if stream {
                let (events, done) = response.sse_data();
                assert!(done && events.len() == 7, "{framing:?}: {}", response.text());
            } else {
                assert_eq!(response.json()["model"], MODEL, "{framing:?}");
            }
        }
    }
}

#[test]
fn models_and_health_endpoints() {
    let provider = mock(MockConfig::default());
    let extra =
        "[models.\"other/large\"]\nendpoints = [{ provider = \"mock\", model = \"gpt-4o\" }]\nowned_by = \"someone\"\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", extra));
    let mut client = Client::connect(gateway.local_addr());

    let models = client.get("/v1/models", &[]);
    let health = client.get("/healthz", &[]);

    assert_eq!(models.status, 200);
    let json = models.json();
    assert_eq!(json["object"], "list");
    let ids: Vec<&str> = json["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["acme/chat-small", "other/large"]);
    assert_eq!(json["data"][0]["owned_by"], "acme");
    assert_eq!(json["data"][1]["owned_by"], "someone");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn client_and_upstream_connections_are_reused() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());

    for stream in [false, true, false, true] {
        let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, stream));
        assert_eq!(response.status, 200);
    }

    assert_eq!(provider.connections_accepted(), 1, "one upstream connection served all four requests");
    let ids: Vec<u64> = provider.requests().iter().map(|r| r.connection_id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|&id| id == ids[0]));
}

#[test]
fn provider_closing_a_pooled_connection_does_not_fail_the_next_request() {
    let provider = mock(MockConfig { drop_idle_after_response: true, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());

    for (i, stream) in [false, true, false, true].into_iter().enumerate() {
        let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, stream));
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
    }

    assert_eq!(provider.connections_accepted(), 4, "each request needed a fresh upstream connection");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());
    let one = chat_body(MODEL, false);
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend_from_slice(
            format!("POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: {}\r\n\r\n", one.len())
                .as_bytes(),
        );
        bytes.extend_from_slice(&one);
    }
    bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: g\r\n\r\n");

    client.send_raw(&bytes);

    for _ in 0..3 {
        assert_eq!(client.read_response().json()["model"], MODEL);
    }
    assert_eq!(client.read_response().json()["status"], "ok");
}

#[test]
fn chunked_request_bodies_are_accepted() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let body = chat_body(MODEL, false);
    let (a, b) = body.split_at(10);
    let mut raw = b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{:x};ext=1\r\n", a.len()).as_bytes());
    raw.extend_from_slice(a);
    raw.extend_from_slice(format!("\r\n{:X}\r\n", b.len()).as_bytes());
    raw.extend_from_slice(b);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut client = Client::connect(gateway.local_addr());

    client.send_raw(&raw);
    let response = client.read_response();

    assert_eq!(response.status, 200, "{}", response.text());
    let sent: serde_json::Value = serde_json::from_slice(&provider.requests()[0].body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let body = chat_body(MODEL, false);
    let mut client = Client::connect(gateway.local_addr());

    client.send_raw(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = client.read_response();
    client.send_raw(&body);
    let response = client.read_response();

    assert_eq!(interim.status, 100);
    assert_eq!(response.status, 200);
}

#[test]
fn the_driver_in_use_is_reported() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "cores = 2", "").replace("cores = 1\n", ""));
    assert_eq!(gateway.drivers().len(), 2);
    if std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok_and(|v| v == "1") {
        assert!(gateway.drivers().iter().all(|d| d.name() == "epoll"), "{:?}", gateway.drivers());
    }
    let mut clients: Vec<Client> = (0..8).map(|_| Client::connect(gateway.local_addr())).collect();
    for client in &mut clients {
        assert_eq!(client.post("/v1/chat/completions", &[], &chat_body(MODEL, true)).status, 200);
    }
}

#[test]
fn first_byte_timeout_is_a_504_and_refused_is_a_502() {
    let slow = mock(MockConfig { first_event_delay: Duration::from_secs(5), ..MockConfig::default() });
    let pool = "[pool]\nfirst_byte_timeout_ms = 200\n";
    let gateway = start_gateway(&config_text(&slow.base_url(), "", pool));
    let timed_out = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(timed_out.status, 504);
    assert_eq!(timed_out.json()["error"]["code"], "upstream_timeout");

    let gateway = start_gateway(&config_text(&format!("http://{}/v1", refused_addr()), "", ""));
    let refused = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, true));
    assert_eq!(refused.status, 502);
    let json = refused.json();
    assert_eq!(json["error"]["type"], "api_error");
    assert!(json["error"]["message"].as_str().unwrap().contains("`mock`"), "names the provider: {json}");
    assert!(!refused.text().contains("127.0.0.1"), "does not reveal provider addresses");
}

#[test]
fn provider_hanging_up_before_the_head_is_a_502() {
    for fault in [Fault::ResetBeforeHeaders, Fault::CloseBeforeHeaders] {
        let provider = mock(MockConfig { fault: fault.clone(), ..MockConfig::default() });
        let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
        let response =
            Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
        assert_eq!(response.status, 502, "{fault:?}");
    }
}

#[test]
fn provider_errors_pass_through_with_status_body_and_retry_after() {
    let body =
        br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    for (code, retry_after) in [(429, Some(7)), (500, None), (503, Some(2)), (400, None)] {
        let fault = Fault::Status { code, retry_after_s: retry_after, body: Some(body.to_vec()) };
        let provider = mock(MockConfig { fault, ..MockConfig::default() });
        let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
        let mut client = Client::connect(gateway.local_addr());
        for stream in [false, true] {
            let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, stream));
            assert_eq!(response.status, code);
            assert_eq!(response.body, body.to_vec());
            assert_eq!(response.header("retry-after").map(str::to_string), retry_after.map(|s| s.to_string()));
        }
    }
}

fn assert_openai_error(response: &common::Response, status: u16, code: Option<&str>, param: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    let error = &json["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    assert!(error["type"].is_string(), "{json}");
    assert_eq!(error["code"].as_str(), code, "{json}");
    assert_eq!(error["param"].as_str(), param, "{json}");
}

#[test]
fn request_errors_get_openai_envelopes() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_body_bytes = 2048", ""));
    let mut client = Client::connect(gateway.local_addr());
    let chat = "/v1/chat/completions";

    assert_openai_error(
        &client.post(chat, &[], &chat_body("acme/nope", false)),
        404,
        Some("model_not_found"),
        Some("model"),
    );
    assert_openai_error(&client.post(chat, &[], b"{\"model\": \"acme/chat-small\","), 400, None, None);
    assert_openai_error(&client.post(chat, &[], b"{\"messages\": []}"), 400, None, Some("model"));
    assert_openai_error(&client.post(chat, &[], b"{\"model\": 7}"), 400, None, Some("model"));
    assert_openai_error(&client.post("/v1/nothing", &[], b"{}"), 404, None, None);
    assert_openai_error(&client.get(chat, &[]), 405, None, None);
    let credits = client.get("/v1/credits", &[]);
    assert_openai_error(&credits, 404, None, None);
    assert!(credits.text().contains("/v1/stats"), "says where spend is: {}", credits.text());
    assert!(provider.requests().is_empty(), "no bad request reached the provider");

    let big = vec![b' '; 4096];
    assert_openai_error(&client.post(chat, &[], &big), 413, Some("request_too_large"), None);
    assert!(client.is_closed(), "a rejected body is not read, so the connection closes");
}

#[test]
fn routing_errors_come_in_the_format_of_the_api_the_path_belongs_to() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());

    let anthropic = client.get("/v1/messages", &[]);
    let ai_sdk_method = client.get("/v4/ai/language-model", &[]);
    let ai_sdk_unknown = client.post("/v3/ai/image-model", &[], b"{}");
    let openai_unknown = client.post("/v1/nothing", &[], b"{}");

    assert_eq!(anthropic.status, 405, "{}", anthropic.text());
    assert_eq!(anthropic.json()["type"], "error", "Anthropic's envelope: {}", anthropic.text());
    assert_eq!(anthropic.json()["error"]["type"], "invalid_request_error");
    assert_eq!(ai_sdk_method.status, 405, "{}", ai_sdk_method.text());
    assert_eq!(ai_sdk_method.json()["error"]["type"], "invalid_request_error", "{}", ai_sdk_method.text());
    assert_eq!(ai_sdk_unknown.status, 404, "{}", ai_sdk_unknown.text());
    assert_eq!(ai_sdk_unknown.json()["error"]["type"], "not_found", "the AI SDK's type: {}", ai_sdk_unknown.text());
    assert_eq!(openai_unknown.status, 404);
    assert_eq!(openai_unknown.json()["error"]["type"], "invalid_request_error", "{}", openai_unknown.text());
}

#[test]
fn oversized_heads_get_431_and_close() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_head_bytes = 1024", ""));
    let mut client = Client::connect(gateway.local_addr());
    let long = "x".repeat(2000);

    client.send_raw(format!("GET /healthz HTTP/1.1\r\nhost: g\r\nx-long: {long}\r\n\r\n").as_bytes());
    let response = client.read_response();

    assert_openai_error(&response, 431, None, None);
    assert!(client.is_closed());
}

#[test]
fn ambiguous_framing_gets_400_and_closes() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let cases: [&[u8]; 6] = [
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: -2\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: 2x\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ntransfer-encoding: gzip\r\n\r\n",
    ];
    for raw in cases {
        let mut client = Client::connect(gateway.local_addr());
        client.send_raw(raw);
        let response = client.read_response();
        assert_openai_error(&response, 400, None, None);
        assert_eq!(response.header("connection"), Some("close"), "{}", String::from_utf8_lossy(raw));
        assert!(client.is_closed(), "{}", String::from_utf8_lossy(raw));
    }
    assert!(provider.requests().is_empty());
}

#[test]
fn garbage_and_wrong_versions_are_rejected() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    for (raw, status) in
        [(&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..], 400), (b"GET / HTTP/2.0\r\n\r\n", 505)]
    {
        let mut client = Client::connect(gateway.local_addr());
        client.send_raw(raw);
        assert_eq!(client.read_response().status, status);
        assert!(client.is_closed());
    }
}

#[test]
fn failure_mid_stream_ends_with_an_in_band_error_and_closes() {
    let faults = [Fault::ResetAfterEvents(3), Fault::StallAfterEvents(3)];
    for fault in faults {
        let provider = mock(MockConfig { fault: fault.clone(), ..MockConfig::default() });
        let pool = "[pool]\nread_idle_timeout_ms = 300\n";
        let gateway = start_gateway(&config_text(&provider.base_url(), "", pool));
        let mut client = Client::connect(gateway.local_addr());

        let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, true));

        assert_eq!(response.status, 200, "{fault:?}");
        let text = response.text();
        let errors: Vec<serde_json::Value> =
            response.sse_data().0.into_iter().filter(|e| e.get("error").is_some()).collect();
        assert_eq!(errors.len(), 1, "{fault:?}: exactly one in-band error event: {text}");
        assert_eq!(errors[0]["error"]["type"], "api_error");
        assert!(!response.sse_data().1, "{fault:?}: no [DONE] after a failure");
        let content_events = response.sse_data().0.iter().filter(|e| e["model"] == MODEL).count();
        assert_eq!(content_events, 3, "{fault:?}: the events before the failure arrived once each");
        assert!(client.is_closed(), "{fault:?}: the connection closes after a failed stream");
    }
}

#[test]
fn client_leaving_mid_stream_does_not_disturb_the_worker() {
    let provider = mock(MockConfig { events: 50, event_gap: Duration::from_millis(5), ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    {
        let mut leaver = Client::connect(gateway.local_addr());
        let body = chat_body(MODEL, true);
        leaver.send_raw(
            format!("POST /v1/chat/completions HTTP/1.1\r\nhost: g\r\ncontent-length: {}\r\n\r\n", body.len())
                .as_bytes(),
        );
        leaver.send_raw(&body);
        assert!(provider.wait_for_requests(1, Duration::from_secs(5)));
    }
    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(response.status, 200);
}

#[test]
fn a_malformed_event_ends_the_stream_with_one_error_event_instead_of_passing_through() {
    let provider = mock(MockConfig { fault: Fault::MalformedEventAfter(2), ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, true));
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(!text.contains("{not json"), "an event that is not JSON never reaches the client: {text}");
    let (events, done) = response.sse_data();
    assert!(!done, "a broken stream must not look complete");
    assert_eq!(events.len(), 3, "the two good events, then one error: {text}");
    assert!(events[2]["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{text}");
}

#[test]
fn an_event_that_never_ends_is_cut_at_the_bound_with_one_error_event() {
    // A broken or hostile provider: two good events, then one that grows past 4 MiB with no blank
    // line. The gateway may not hold it without bound, nor pass a partial event on.
    let mut raw = b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n".to_vec();
    raw.extend_from_slice(
        b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
    );
    raw.extend_from_slice(b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    raw.resize(raw.len() + (5 << 20), b'a');
    raw.extend_from_slice(b"\"}}]}\n\ndata: [DONE]\n\n");
    let provider = mock(MockConfig { reply: Reply::Sse(raw), replay_piece_bytes: 64 << 10, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, true));
    assert_eq!(response.status, 200);
    assert!(
        response.body.len() < 64 << 10,
        "no part of the oversize event reached the client: {} bytes",
        response.body.len()
    );
    let (events, done) = response.sse_data();
    assert!(!done, "a cut stream must not look complete");
    assert_eq!(events.len(), 3, "the two good events, then one error");
    assert_eq!(events[1]["model"], MODEL);
    let message = events[2]["error"]["message"].as_str().unwrap();
    assert!(message.contains("larger than the gateway's bound"), "{message}");
}

#[test]
fn connections_beyond_the_per_core_limit_get_a_fast_503() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_connections_per_core = 2", ""));
    let mut first = Client::connect(gateway.local_addr());
    let mut second = Client::connect(gateway.local_addr());
    assert_eq!(first.get("/healthz", &[]).status, 200);
    assert_eq!(second.get("/healthz", &[]).status, 200);

    let mut third = Client::connect(gateway.local_addr());
    let refused = third.read_response();

    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(third.is_closed());
    drop(first);
    assert_eq!(second.get("/healthz", &[]).status, 200, "existing connections are unaffected");
}

#[test]
fn admin_reload_applies_the_file_and_needs_the_admin_key() {
    let provider = mock(MockConfig::default());
    let path = std::env::temp_dir().join(format!("corelay-admin-{}.toml", std::process::id()));
    let admin = "[admin]\nkey = \"admin-key-0123456789\"\n[health]\ntick_ms = 10\n";
    let first =
        config_text(&provider.base_url(), "", admin).replace("api_key_env = \"CORELAY_TEST_PROVIDER_KEY\"\n", "");
    std::fs::write(&path, &first).unwrap();
    let gateway = corelay::Gateway::start(corelay::config::load_resolved(&path).unwrap()).unwrap();
    let addr = gateway.local_addr();
    let second = format!("{first}[models.\"acme/new\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o\" }}]\n");
    std::fs::write(&path, second).unwrap();

    let denied = Client::connect(addr).post("/admin/reload", &[("authorization", "Bearer wrong")], b"");
    let reloaded =
        Client::connect(addr).post("/admin/reload", &[("authorization", "Bearer admin-key-0123456789")], b"");

    assert_eq!(denied.status, 401);
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    assert_eq!(reloaded.json()["version"], 1);
    let started = std::time::Instant::now();
    let mut listed = false;
    for _ in 0..10_000 {
        let models = Client::connect(addr).get("/v1/models", &[]).text();
        if models.contains("acme/new") {
            listed = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    assert!(listed, "the new model is served after the reload");
    std::fs::write(&path, "[server\n").unwrap();
    let broken = Client::connect(addr).post("/admin/reload", &[("authorization", "Bearer admin-key-0123456789")], b"");
    assert_eq!(broken.status, 400);
    assert!(broken.text().contains(":1:"), "names the line: {}", broken.text());
    let _ = std::fs::remove_file(path);
}

#[test]
fn embeddings_pass_through_to_openai_format_providers_only() {
    let embedding = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#;
    let provider = mock(MockConfig { reply: loadtest::Reply::Json(embedding.to_vec()), ..MockConfig::default() });
    let extra = "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
[models.\"acme/embed\"]\nendpoints = [{ provider = \"mock\", model = \"text-embedding-3-small\" }]\n\
[models.\"acme/claude\"]\nendpoints = [{ provider = \"claude\", model = \"claude-x\" }]\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", extra));
    let mut client = Client::connect(gateway.local_addr());

    let response = client.post("/v1/embeddings", &[], br#"{"model":"acme/embed","input":"hello"}"#);
    let refused = client.post("/v1/embeddings", &[], br#"{"model":"acme/claude","input":"hello"}"#);

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["model"], "acme/embed");
    assert_eq!(json["data"][0]["embedding"][1], -0.5);
    let seen = &provider.requests()[0];
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap()["model"], "text-embedding-3-small");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["param"], "model");
}

#[test]
fn ai_sdk_embedding_calls_are_answered_in_the_sdks_shape() {
    let embedding = br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5]},{"object":"embedding","index":0,"embedding":[0.25]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#;
    let provider = mock(MockConfig { reply: loadtest::Reply::Json(embedding.to_vec()), ..MockConfig::default() });
    let extra = "[models.\"acme/embed\"]\nendpoints = [{ provider = \"mock\", model = \"text-embedding-3-small\" }]\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", extra));
    let mut client = Client::connect(gateway.local_addr());

    let body = br#"{"values":["a","b"],"providerOptions":{"gateway":{"order":["mock"]}}}"#;
    let response = client.post("/v4/ai/embedding-model", &[("ai-model-id", "acme/embed")], body);
    let missing_model = client.post("/v4/ai/embedding-model", &[], body);

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["embeddings"], serde_json::json!([[0.25], [0.5]]));
    assert_eq!(json["usage"]["tokens"], 5);
    assert_eq!(json["providerMetadata"]["gateway"]["routing"]["finalProvider"], "mock");
    let seen: serde_json::Value = serde_json::from_slice(&provider.requests()[0].body).unwrap();
    assert_eq!(seen, serde_json::json!({"model": "text-embedding-3-small", "input": ["a", "b"]}));
    assert_eq!(provider.requests()[0].path, "/v1/embeddings");
    assert_eq!(missing_model.status, 400, "{}", missing_model.text());
}

#[test]
fn count_tokens_passes_through_to_anthropic_kinds_with_the_providers_key() {
    let provider =
        mock(MockConfig { reply: loadtest::Reply::Json(br#"{"input_tokens":14}"#.to_vec()), ..MockConfig::default() });
    let extra = format!(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key_env = \"CORELAY_TEST_PROVIDER_KEY\"\n\
[models.\"acme/counted\"]\nendpoints = [{{ provider = \"claude\", model = \"claude-sonnet-4-5\" }}]\n",
        provider.base_url()
    );
    let gateway = start_gateway(&config_text(&provider.base_url(), "", &extra));
    let mut client = Client::connect(gateway.local_addr());

    let body = br#"{"model":"acme/counted","messages":[{"role":"user","content":"Hello"}]}"#;
    let counted = client.post("/v1/messages/count_tokens", &[("anthropic-version", "2023-06-01")], body);
    let refused = client.post("/v1/messages/count_tokens", &[], br#"{"model":"acme/chat-small","messages":[]}"#);

    assert_eq!(counted.status, 200, "{}", counted.text());
    assert_eq!(counted.json()["input_tokens"], 14);
    let seen = &provider.requests()[0];
    assert_eq!(seen.path, "/v1/messages/count_tokens");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap()["model"], "claude-sonnet-4-5");
    assert_eq!(seen.header("x-api-key"), Some(PROVIDER_KEY));
    assert_eq!(seen.header("authorization"), None, "the client's credentials stay at the gateway");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"]["type"], "invalid_request_error");
}

#[test]
fn ai_sdk_embedding_errors_come_back_in_the_sdks_envelope() {
    let body = br#"{"error":{"message":"Input too long for this model","type":"invalid_request_error","param":"input","code":null}}"#;
    let fault = Fault::Status { code: 400, retry_after_s: None, body: Some(body.to_vec()) };
    let provider = mock(MockConfig { fault, ..MockConfig::default() });
    let extra = "[models.\"acme/embed\"]\nendpoints = [{ provider = \"mock\", model = \"text-embedding-3-small\" }]\n";
    let gateway = start_gateway(&config_text(&provider.base_url(), "", extra));
    let mut client = Client::connect(gateway.local_addr());

    let response = client.post("/v4/ai/embedding-model", &[("ai-model-id", "acme/embed")], br#"{"values":["a"]}"#);

    assert_eq!(response.status, 400, "{}", response.text());
    let json = response.json();
    assert!(json["error"]["message"].as_str().unwrap().contains("Input too long"), "{json}");
    assert!(json["error"]["type"].is_string(), "the SDK maps errors by type: {json}");
    assert_ne!(response.body, body.to_vec(), "not OpenAI's body passed through");
}

/// A buffered answer goes to the client from the buffer it was read into. One that takes many reads
/// (the recorded answer grown to 256 KiB of content, in one piece or in 4 KiB chunks) and one sent as
/// many small chunks (the recording in 100-byte chunks) each reach the client whole, with the
/// gateway's model, and the provider's connection still serves the next request.
#[test]
fn answers_read_in_many_reads_or_sent_in_many_chunks_arrive_whole() {
    let path = corelay::fixture_path!("openai/chat/openai-chat-basic.response.json");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut large = recorded.clone();
    large["choices"][0]["message"]["content"] = "token ".repeat(256 * 1024 / 6).into();
    let cases = [
        (&large, Framing::ContentLength, 0),
        (&large, Framing::Chunked, 0),
        (&large, Framing::Chunked, 4096),
        (&recorded, Framing::Chunked, 100),
    ];
    for (answer, framing, piece_bytes) in cases {
        let reply = Reply::Json(serde_json::to_vec(answer).unwrap());
        let provider = mock(MockConfig { reply, framing, replay_piece_bytes: piece_bytes, ..MockConfig::default() });
        let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
        let mut client = Client::connect(gateway.local_addr());
        for round in 0..2 {
            let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, false));
            let case = format!("{framing:?} in pieces of {piece_bytes}, request {round}");
            assert_eq!(response.status, 200, "{case}: {}", response.text());
            let json = response.json();
            assert_eq!(json["model"], MODEL, "{case}");
            assert_eq!(json["choices"], answer["choices"], "{case}");
            assert_eq!(json["usage"], answer["usage"], "{case}");
        }
        assert_eq!(provider.connections_accepted(), 1, "{framing:?}: the connection went back to the pool");
    }
}

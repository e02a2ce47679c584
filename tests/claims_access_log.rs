//! The JSON access log (`log.access`): one line per call with the documented fields, for a call
//! served at once, one that failed over, and one the gateway refused; and the file reopened on
//! SIGHUP (log rotation), driven against the real binary. Metrics are tested in metrics.rs.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Client, Daemon, chat_body};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat";
const KEY: &str = "gw-log-test-key-0123456789";

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("corelay-claims-access-{}-{name}.log", std::process::id()))
}

/// Two providers serving `acme/chat` in order, a gateway key named `team-log`, the access log at `log`.
fn config(first: &str, second: &str, log: &Path, cores: usize) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = {cores}\n[log]\naccess = \"{}\"\n\
         [providers.first]\nkind = \"openai\"\nbase_url = \"{first}\"\n\
         [providers.second]\nkind = \"openai\"\nbase_url = \"{second}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"first\", model = \"m-first\" }}, {{ provider = \"second\", model = \"m-second\" }}]\n\
         price = {{ input = 1.0, output = 2.0 }}\n\
         [[keys]]\nname = \"team-log\"\nkey = \"{KEY}\"\n",
        log.display()
    )
}

/// The JSON lines of the log file once it has at least `n`, waiting (bounded) for the log thread.
fn lines_once_at_least(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} has {} lines, expected {n}:\n{text}", path.display(), lines.len());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn by_request_id<'a>(lines: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    lines.iter().find(|l| l["request_id"] == id).unwrap_or_else(|| panic!("no line for {id}: {lines:?}"))
}

fn post(addr: std::net::SocketAddr, id: &str, key: &str, stream: bool) -> common::Response {
    let auth = format!("Bearer {key}");
    let headers = [("x-request-id", id), ("authorization", auth.as_str())];
    Client::connect(addr).post("/v1/chat/completions", &headers, &chat_body(MODEL, stream))
}

#[test]
fn served_failed_over_and_refused_calls_each_log_one_line_with_their_fields() {
    let first = MockProvider::start(MockConfig::default()).unwrap();
    let second = MockProvider::start(MockConfig::default()).unwrap();
    let log = log_path("fields");
    let _ = std::fs::remove_file(&log);
    // The binary rather than an in-process gateway: dropping a gateway whose access log is a file
    // hangs (see the ignored test below), a child process can be killed.
    let daemon = Daemon::start("access-fields", &config(&first.base_url(), &second.base_url(), &log, 1));
    let addr = daemon.addr;

    let served = post(addr, "req-served", KEY, false);
    assert_eq!(served.status, 200);
    first.set_config(MockConfig {
        fault: Fault::Status { code: 503, retry_after_s: None, body: None },
        ..MockConfig::default()
    });
    let failed_over = post(addr, "req-failover", KEY, true);
    assert_eq!(failed_over.status, 200);
    let refused = post(addr, "req-refused", "not-the-key", false);
    assert_eq!(refused.status, 401);

    let lines = lines_once_at_least(&log, 3);
    assert_eq!(lines.len(), 3, "one line per call");

    let line = by_request_id(&lines, "req-served");
    assert_eq!(line["key"], "team-log");
    assert_eq!(line["front_door"], "openai");
    assert_eq!(line["model"], MODEL);
    assert_eq!(line["served_model"], MODEL);
    assert_eq!(line["provider"], "first");
    assert_eq!(line["attempts"], serde_json::json!([{"provider": "first", "outcome": "success", "status": 200}]));
    assert_eq!(line["status"], 200);
    assert_eq!(line["stream"], false);
    let tokens = &line["tokens"];
    let (prompt, completion) = (tokens["prompt"].as_u64().unwrap(), tokens["completion"].as_u64().unwrap());
    assert!(prompt > 0 && completion > 0, "{line}");
    // input 1.0 and output 2.0 USD per million tokens: 1 and 2 micro-dollars per token.
    assert_eq!(line["cost_usd_micros"].as_u64().unwrap(), prompt + 2 * completion);
    assert_eq!(line["bytes_out"].as_u64().unwrap(), served.body.len() as u64 + head_len(&served));
    assert_eq!(line["bytes_in"].as_u64().unwrap(), chat_body(MODEL, false).len() as u64);
    let duration = line["duration_ms"].as_f64().unwrap();
    assert!(duration > 0.0 && line["overhead_ms"].as_f64().unwrap() <= duration, "{line}");
    assert!(line["ttfb_ms"].as_f64().is_some_and(|t| t <= duration), "{line}");
    let now_ms = corelay::clock::unix_now_ms();
    assert!(line["ts_unix_ms"].as_u64().is_some_and(|t| t <= now_ms && t + 60_000 > now_ms), "{line}");

    let line = by_request_id(&lines, "req-failover");
    assert_eq!(line["provider"], "second");
    assert_eq!(
        line["attempts"],
        serde_json::json!([
            {"provider": "first", "outcome": "server_error", "status": 503},
            {"provider": "second", "outcome": "success", "status": 200}
        ])
    );
    assert_eq!((line["status"].as_u64(), line["stream"].as_bool()), (Some(200), Some(true)));

    let line = by_request_id(&lines, "req-refused");
    assert_eq!(line["status"], 401);
    assert_eq!(line["key"], "", "no key name for a refused key");
    assert_eq!(line["attempts"], serde_json::json!([]), "no provider was tried");
    assert_eq!(line["provider"], "");
    assert_eq!(line["cost_usd_micros"], 0);
    assert!(line["tokens"].is_null());
    drop(daemon);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn client_address_request_line_user_agent_user_and_tags_are_logged_escaped_and_cut() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let log = log_path("client-fields");
    let _ = std::fs::remove_file(&log);
    let daemon = Daemon::start("access-client-fields", &config(&mock.base_url(), &mock.base_url(), &log, 1));
    let mut client = Client::connect(daemon.addr);
    let local = client.local_addr();
    let auth = format!("Bearer {KEY}");
    // A user agent with quotes, a tab and a forged JSON fragment, longer than what is kept.
    let agent = format!("evil \"agent\"\t{{\"status\":200}} {}", "x".repeat(600));
    let gateway_options = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "providerOptions": {"gateway": {"user": "end-user-7", "tags": ["team:search", "exp\"1\n"]}},
    });
    let headers =
        [("x-request-id", "req-gateway-user"), ("authorization", auth.as_str()), ("user-agent", agent.as_str())];
    let response = client.post(
        "/v1/chat/completions?api_key=sk-in-query-secret",
        &headers,
        gateway_options.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let openai_user =
        serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "user": "u-openai"});
    let headers = [("x-request-id", "req-openai-user"), ("authorization", auth.as_str())];
    assert_eq!(client.post("/v1/chat/completions", &headers, openai_user.to_string().as_bytes()).status, 200);

    let ai_sdk = serde_json::json!({
        "prompt": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "providerOptions": {"gateway": {"user": "sdk-user", "tags": ["a", "b"]}},
    });
    let headers =
        [("x-request-id", "req-ai-sdk-user"), ("authorization", auth.as_str()), ("ai-language-model-id", MODEL)];
    let response = client.post("/v3/ai/language-model", &headers, ai_sdk.to_string().as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());

    let text_lines = lines_once_at_least(&log, 3);
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(!raw.contains("sk-in-query-secret"), "the query string is never logged: {raw}");
    assert_eq!(raw.lines().count(), 3, "escaped control characters keep one line per call");

    let line = by_request_id(&text_lines, "req-gateway-user");
    assert_eq!(line["client"], local.to_string());
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/v1/chat/completions");
    let logged_agent = line["user_agent"].as_str().unwrap();
    assert!(agent.starts_with(logged_agent) && logged_agent.len() == 256, "cut to 256 bytes: {logged_agent}");
    assert_eq!(line["user"], "end-user-7");
    assert_eq!(line["tags"], serde_json::json!(["team:search", "exp\"1\n"]));

    let line = by_request_id(&text_lines, "req-ai-sdk-user");
    assert_eq!(line["front_door"], "ai_sdk");
    assert_eq!(line["user"], "sdk-user", "the AI SDK's providerOptions.gateway.user");
    assert_eq!(line["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(line["path"], "/v3/ai/language-model");

    let line = by_request_id(&text_lines, "req-openai-user");
    assert_eq!(line["user"], "u-openai", "OpenAI's own `user` field");
    assert_eq!(line["tags"], serde_json::json!([]));
    assert_eq!(line["user_agent"], "");
    drop(daemon);
    let _ = std::fs::remove_file(&log);
}

/// The bytes of a response head as the client received it (status line, fields, blank line),
/// recomputed from what the client parsed.
fn head_len(response: &common::Response) -> u64 {
    let fields: usize = response.headers.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
    let status_line = format!("HTTP/1.1 {} ", response.status).len() + reason(response.status).len() + 2;
    (status_line + fields + 2) as u64
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        other => panic!("no reason phrase known for {other}"),
    }
}

#[test]
fn sighup_reopens_the_access_log_so_a_rotated_file_stops_growing() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let log = log_path("rotate");
    let rotated = log.with_extension("log.1");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&rotated);
    let text = config(&mock.base_url(), &mock.base_url(), &log, 2);
    let mut daemon = Daemon::start("access-rotate", &text);

    assert_eq!(post(daemon.addr, "before-rotation", KEY, false).status, 200);
    lines_once_at_least(&log, 1);
    // What logrotate does: rename the file, then tell the daemon.
    std::fs::rename(&log, &rotated).unwrap();
    daemon.signal(libc::SIGHUP);
    // Logged by the main thread once the control thread has applied the reload and asked for the
    // reopen, so the next call's line is queued after the reopen.
    daemon.wait_for_line("SIGHUP: config reloaded from");
    assert_eq!(post(daemon.addr, "after-rotation", KEY, false).status, 200);

    let fresh = lines_once_at_least(&log, 1);
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0]["request_id"], "after-rotation", "the new file at the configured path gets new lines");
    let old = lines_once_at_least(&rotated, 1);
    assert_eq!(old.len(), 1, "the rotated file got nothing more");
    assert_eq!(old[0]["request_id"], "before-rotation");
    drop(daemon);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&rotated);
}

#[test]
fn sigterm_exits_zero_with_an_access_log_file() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let log = log_path("sigterm");
    let mut text = config(&mock.base_url(), &mock.base_url(), &log, 1);
    text = text.replace("cores = 1\n", "cores = 1\nshutdown_grace_ms = 200\n");
    let mut daemon = Daemon::start("access-sigterm", &text);
    assert_eq!(post(daemon.addr, "before-sigterm", KEY, false).status, 200);

    daemon.signal(libc::SIGTERM);

    assert_eq!(daemon.exit_code_within(Duration::from_secs(3)), Some(0), "exits within the 200 ms grace + slack");
    assert_eq!(lines_once_at_least(&log, 1).len(), 1, "the queued line was written before exiting");
    drop(daemon);
    let _ = std::fs::remove_file(&log);
}

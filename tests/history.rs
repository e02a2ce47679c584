//! The request history (`[history]`) against the real binary: `/v1/stats?from=&to=&group_by=` equals
//! the sum of what was served (count, tokens, cost) by key, model and provider; failovers and client
//! errors are counted apart; the history survives SIGTERM and a restart; the live view without
//! parameters is unchanged; bad parameters are 400s; history off answers 404. Unit tests of the
//! store and the query parser are in src/history/.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Client, Daemon, chat_body};
use loadtest::{Fault, MockConfig, MockProvider};

const KEY_A: &str = "gw-history-key-a-0123456789";
const KEY_B: &str = "gw-history-key-b-0123456789";
const ADMIN: &str = "admin-history-0123456789";

/// A directory of this test's own under the system temp dir; removed at the end.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corelay-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `acme/chat` on `first` then `second` (1 and 2 micro-dollars per token), `acme/other` on `second`
/// (3 and 5), keys `team-a` and `team-b`, an admin key, and the history at `history`.
fn config(first: &str, second: &str, history: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\nshutdown_grace_ms = 200\n\
         [admin]\nkey = \"{ADMIN}\"\n\
         [history]\n{history}\n\
         [providers.first]\nkind = \"openai\"\nbase_url = \"{first}\"\n\
         [providers.second]\nkind = \"openai\"\nbase_url = \"{second}\"\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"first\", model = \"m-first\" }}, {{ provider = \"second\", model = \"m-second\" }}]\n\
         price = {{ input = 1.0, output = 2.0 }}\n\
         [models.\"acme/other\"]\nendpoints = [{{ provider = \"second\", model = \"m-other\" }}]\n\
         price = {{ input = 3.0, output = 5.0 }}\n\
         [[keys]]\nname = \"team-a\"\nkey = \"{KEY_A}\"\n\
         [[keys]]\nname = \"team-b\"\nkey = \"{KEY_B}\"\n"
    )
}

fn history_at(path: &Path) -> String {
    format!("path = \"{}\"\nretention_days = 7", path.display())
}

/// What the client was served, summed per (key, model, provider): requests, prompt and completion
/// tokens, cost in micro-dollars.
type Served = BTreeMap<(String, String, String), [u64; 4]>;

fn chat(client: &mut Client, key: &str, body: &[u8]) -> common::Response {
    let auth = format!("Bearer {key}");
    client.post("/v1/chat/completions", &[("authorization", auth.as_str())], body)
}

/// Adds a served answer's usage (from the body, or the last SSE chunk of a stream) to `served`.
fn count(served: &mut Served, response: &common::Response, key: &str, model: &str, provider: &str, price: (u64, u64)) {
    assert_eq!(response.status, 200, "{}", response.text());
    let usage = if response.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")) {
        let (events, _) = response.sse_data();
        events.iter().rev().find(|e| e["usage"].is_object()).expect("a usage chunk")["usage"].clone()
    } else {
        response.json()["usage"].clone()
    };
    let (prompt, completion) = (usage["prompt_tokens"].as_u64().unwrap(), usage["completion_tokens"].as_u64().unwrap());
    let entry = served.entry((key.into(), model.into(), provider.into())).or_default();
    entry[0] += 1;
    entry[1] += prompt;
    entry[2] += completion;
    entry[3] += prompt * price.0 + completion * price.1;
}

fn stats(addr: SocketAddr, query: &str) -> common::Response {
    let auth = format!("Bearer {ADMIN}");
    Client::connect(addr).get(&format!("/v1/stats{query}"), &[("authorization", auth.as_str())])
}

/// Serves calls of both keys, both models, one failed over (streamed) and one client error; returns
/// what was served.
fn serve_calls(first: &MockProvider, client: &mut Client) -> Served {
    let mut served = Served::new();
    for _ in 0..3 {
        let response = chat(client, KEY_A, &chat_body("acme/chat", false));
        count(&mut served, &response, "team-a", "acme/chat", "first", (1, 2));
    }
    for _ in 0..2 {
        let response = chat(client, KEY_B, &chat_body("acme/other", false));
        count(&mut served, &response, "team-b", "acme/other", "second", (3, 5));
    }
    first.set_config(MockConfig {
        fault: Fault::Status { code: 503, retry_after_s: None, body: None },
        ..MockConfig::default()
    });
    let streamed = serde_json::json!({
        "model": "acme/chat", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hello"}],
    });
    let response = chat(client, KEY_A, streamed.to_string().as_bytes());
    count(&mut served, &response, "team-a", "acme/chat", "second", (1, 2));
    first.set_config(MockConfig::default());
    assert_eq!(chat(client, KEY_A, &chat_body("nobody/model", false)).status, 404);
    served
}

/// `corelay_history_rows_total{outcome}` from `/metrics`, once it reads `expected` (the scrape is
/// re-rendered every health tick) or after a bounded wait.
fn rows_metric(addr: SocketAddr, outcome: &str, expected: u64) -> u64 {
    let auth = format!("Bearer {ADMIN}");
    let series = format!("corelay_history_rows_total{{outcome=\"{outcome}\"}} ");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = Client::connect(addr).get("/metrics", &[("authorization", auth.as_str())]).text();
        let value = text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.parse().ok());
        if value == Some(expected) || std::time::Instant::now() >= deadline {
            return value.unwrap_or_else(|| panic!("no {series} in /metrics"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows(answer: &serde_json::Value) -> &Vec<serde_json::Value> {
    answer["rows"].as_array().unwrap_or_else(|| panic!("no rows: {answer}"))
}

/// Every served group appears with exactly the served sums, and the totals add up.
fn assert_equals_served(answer: &serde_json::Value, served: &Served) {
    for ((key, model, provider), [requests, prompt, completion, cost]) in served {
        let row = rows(answer)
            .iter()
            .find(|r| r["key"] == key.as_str() && r["model"] == model.as_str() && r["provider"] == provider.as_str())
            .unwrap_or_else(|| panic!("no row for {key} {model} {provider}: {answer}"));
        assert_eq!(row["requests"].as_u64(), Some(*requests), "{row}");
        assert_eq!(row["prompt_tokens"].as_u64(), Some(*prompt), "{row}");
        assert_eq!(row["completion_tokens"].as_u64(), Some(*completion), "{row}");
        assert_eq!(row["cost_micros"].as_u64(), Some(*cost), "{row}");
        assert_eq!(row["provider_errors"], 0, "{row}");
    }
    let total = &answer["total"];
    let served_cost: u64 = served.values().map(|v| v[3]).sum();
    let served_calls: u64 = served.values().map(|v| v[0]).sum();
    assert_eq!(total["cost_micros"].as_u64(), Some(served_cost), "{answer}");
    assert_eq!(total["requests"].as_u64(), Some(served_calls + 1), "the served calls and the 404: {answer}");
    assert_eq!(total["client_errors"], 1, "the unknown model is the client's error: {answer}");
    assert_eq!(total["provider_errors"], 0, "{answer}");
    assert_eq!(total["failovers"], 1, "the streamed call failed over: {answer}");
    let unknown = rows(answer).iter().find(|r| r["model"] == "(unknown)").expect("the 404's row");
    assert_eq!((unknown["key"].as_str(), unknown["provider"].as_str()), (Some("team-a"), Some("")));
}

#[test]
fn stats_over_a_range_equal_what_was_served_and_survive_a_restart() {
    let first = MockProvider::start(MockConfig::default()).unwrap();
    let second = MockProvider::start(MockConfig::default()).unwrap();
    let dir = temp_dir("restart");
    let path = dir.join("history.sqlite");
    let text = config(&first.base_url(), &second.base_url(), &history_at(&path));
    let from = corelay::clock::unix_now();
    let mut daemon = Daemon::start("history-restart", &text);
    // One connection for the calls: the worker records each call before reading the next request,
    // and a query sent after them on any connection is answered after those records are written.
    let mut client = Client::connect(daemon.addr);
    let served = serve_calls(&first, &mut client);
    let range = format!("?from={from}&to={}&group_by=key,model,provider", corelay::clock::unix_now() + 2);
    let auth = format!("Bearer {ADMIN}");
    let before = client.get(&format!("/v1/stats{range}"), &[("authorization", auth.as_str())]);
    assert_eq!(before.status, 200, "{}", before.text());
    let before = before.json();
    assert_equals_served(&before, &served);

    // One bucket per minute: the buckets of each group add up to the group's total.
    let bucketed = stats(daemon.addr, &format!("{range}&interval=60s")).json();
    let bucket_sum: i64 = rows(&bucketed).iter().map(|r| r["cost_micros"].as_i64().unwrap()).sum();
    assert_eq!(Some(bucket_sum), before["total"]["cost_micros"].as_i64());
    assert!(rows(&bucketed).iter().all(|r| r["t"].as_u64().is_some_and(|t| t % 60 == 0)), "{bucketed}");

    assert_eq!(rows_metric(daemon.addr, "written", 7), 7, "every call written, counted in /metrics");
    assert_eq!(rows_metric(daemon.addr, "dropped", 0), 0);

    drop(client);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.exit_code_within(Duration::from_secs(5)), Some(0));
    drop(daemon);

    let daemon = Daemon::start("history-restart", &text);
    let after = stats(daemon.addr, &range);
    assert_eq!(after.status, 200, "{}", after.text());
    let after = after.json();
    assert_equals_served(&after, &served);
    assert_eq!(after["rows"], before["rows"], "the same rows after the restart");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_live_view_bad_parameters_and_history_off_answer_as_documented() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let dir = temp_dir("params");
    let text = config(&mock.base_url(), &mock.base_url(), &history_at(&dir.join("h.sqlite")));
    let daemon = Daemon::start("history-params", &text);
    let live = stats(daemon.addr, "");
    assert_eq!(live.status, 200);
    assert!(live.json()["seconds"].is_array(), "no parameters: the live ten-minute view, as before");
    for bad in ["?from=yesterday", "?group_by=secret", "?interval=1w", "?from=20&to=10"] {
        let response = stats(daemon.addr, bad);
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
    let unauthorized = Client::connect(daemon.addr).get("/v1/stats?group_by=key", &[]);
    assert_eq!(unauthorized.status, 401, "the admin key guards range queries too");
    drop(daemon);

    let off = config(&mock.base_url(), &mock.base_url(), "path = \"off\"");
    let daemon = Daemon::start("history-off", &off);
    let response = stats(daemon.addr, "?group_by=key");
    assert_eq!(response.status, 404, "{}", response.text());
    assert!(response.text().contains("[history] path"), "{}", response.text());
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

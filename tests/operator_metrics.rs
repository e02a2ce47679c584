//! The latency histograms as an operator aggregates them: two gateway instances (in-process, port 0)
//! whose bucket series add up across instances, and a flood of requests with client-chosen model
//! names that adds no series. The exposition text is read line by line here; the Python test
//! `tests/sdk/test_metrics_histograms.py` checks the same scrape with Prometheus's own parser.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Client, chat_body, start_gateway};
use loadtest::{MockConfig, MockProvider};

/// The slow provider's delay before its response head: far above the 0.25 s bucket bound.
const SLOW: Duration = Duration::from_millis(300);

fn config(fast: &str, slow: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
cores = 1
[health]
tick_ms = 20
[providers.fast]
kind = "openai"
base_url = "{fast}"
[providers.slow]
kind = "openai"
base_url = "{slow}"
[models."acme/fast"]
endpoints = [{{ provider = "fast", model = "gpt-4o-mini" }}]
[models."acme/slow"]
endpoints = [{{ provider = "slow", model = "gpt-4o-mini" }}]
"#
    )
}

/// Every sample of a scrape: the series (name and labels as written) and its value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
            (series.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
        })
        .collect()
}

/// The `_bucket` samples of `family` for one label set, by `le`, in scrape order.
fn buckets(scrape: &BTreeMap<String, f64>, family: &str, labels: &str) -> Vec<(String, f64)> {
    let prefix = format!("{family}_bucket{{{labels},le=\"");
    let mut found: Vec<(String, f64)> = scrape
        .iter()
        .filter_map(|(series, v)| series.strip_prefix(&prefix).map(|le| (le.trim_end_matches("\"}").to_string(), *v)))
        .collect();
    let bound = |le: &str| if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().unwrap() };
    found.sort_by(|a, b| bound(&a.0).total_cmp(&bound(&b.0)));
    found
}

fn send(gateway: &corelay::runtime::Gateway, model: &str, times: usize) {
    let mut client = Client::connect(gateway.local_addr());
    for _ in 0..times {
        let response = client.post("/v1/chat/completions", &[], &chat_body(model, false));
        assert_eq!(response.status, 200, "{}", response.text());
    }
}

/// Waits until the gateway's published scrape has `count` as the duration count of `labels`.
fn wait_for_count(gateway: &corelay::runtime::Gateway, labels: &str, count: u64) -> BTreeMap<String, f64> {
    let line = format!("corelay_request_duration_seconds_count{{{labels}}} {count}");
    let seen = gateway.health().wait_until_metrics(|t| t.lines().any(|l| l == line), Duration::from_secs(10));
    assert!(seen, "no `{line}` in\n{}", gateway.health().latest_metrics());
    let scraped = Client::connect(gateway.local_addr()).get("/metrics", &[]);
    assert_eq!(scraped.status, 200);
    samples(&scraped.text())
}

#[test]
fn histograms_of_two_instances_add_up_bucket_by_bucket() {
    let fast = MockProvider::start(MockConfig::default()).unwrap();
    let slow = MockProvider::start(MockConfig { first_event_delay: SLOW, ..MockConfig::default() }).unwrap();
    let text = config(&fast.base_url(), &slow.base_url());
    let (a, b) = (start_gateway(&text), start_gateway(&text));
    send(&a, "acme/fast", 3);
    send(&a, "acme/slow", 1);
    send(&b, "acme/fast", 2);
    send(&b, "acme/slow", 2);
    let fast_labels = r#"front_door="openai",model="acme/fast",provider="fast""#;
    let slow_labels = r#"front_door="openai",model="acme/slow",provider="slow""#;
    let (_, scrape_a) = (wait_for_count(&a, fast_labels, 3), wait_for_count(&a, slow_labels, 1));
    let (_, scrape_b) = (wait_for_count(&b, fast_labels, 2), wait_for_count(&b, slow_labels, 2));

    for family in
        ["corelay_request_duration_seconds", "corelay_time_to_first_byte_seconds", "corelay_gateway_overhead_seconds"]
    {
        for (labels, total) in [(fast_labels, 5.0), (slow_labels, 3.0)] {
            let (from_a, from_b) = (buckets(&scrape_a, family, labels), buckets(&scrape_b, family, labels));
            let bounds = |v: &[(String, f64)]| v.iter().map(|(le, _)| le.clone()).collect::<Vec<_>>();
            assert!(from_a.len() > 10, "{family}{{{labels}}}: {from_a:?}");
            assert_eq!(bounds(&from_a), bounds(&from_b), "both instances use the same bucket bounds");
            let summed: Vec<(String, f64)> =
                from_a.iter().zip(&from_b).map(|((le, x), (_, y))| (le.clone(), x + y)).collect();
            assert!(summed.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {summed:?}");
            assert_eq!(summed.last(), Some(&("+Inf".to_string(), total)), "{family}{{{labels}}}");
            let count_of = |scrape: &BTreeMap<String, f64>| scrape[&format!("{family}_count{{{labels}}}")];
            assert_eq!(count_of(&scrape_a) + count_of(&scrape_b), total);
        }
    }
    // The slow provider's 300 ms are in every slow call's duration and TTFB, and not in the
    // gateway's overhead.
    let summed_at = |family: &str, le: &str| {
        [&scrape_a, &scrape_b].iter().map(|s| s[&format!("{family}_bucket{{{slow_labels},le=\"{le}\"}}")]).sum::<f64>()
    };
    assert_eq!(summed_at("corelay_request_duration_seconds", "0.25"), 0.0);
    assert_eq!(summed_at("corelay_time_to_first_byte_seconds", "0.25"), 0.0);
    assert_eq!(summed_at("corelay_gateway_overhead_seconds", "0.1"), 3.0);
    let sum_of = |s: &BTreeMap<String, f64>| s[&format!("corelay_request_duration_seconds_sum{{{slow_labels}}}")];
    assert!(sum_of(&scrape_a) + sum_of(&scrape_b) >= 3.0 * SLOW.as_secs_f64());
}

/// The names of every series in a scrape (values dropped).
fn series(scrape: &BTreeMap<String, f64>) -> BTreeSet<String> {
    scrape.keys().cloned().collect()
}

#[test]
fn ten_thousand_random_model_names_add_no_series() {
    const FLOOD: u64 = 10_000;
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config(&provider.base_url(), &provider.base_url()));
    send(&gateway, "acme/fast", 1);
    let mut client = Client::connect(gateway.local_addr());
    assert_eq!(client.post("/v1/chat/completions", &[], &chat_body("not-configured", false)).status, 404);
    let unknown = r#"front_door="openai",model="(unknown)",provider="none""#;
    let before = series(&wait_for_count(&gateway, unknown, 1));

    // One keep-alive connection: the flood costs no connection setup, so it stays quick.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..FLOOD {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let model = format!("random-{seed:016x}-{i}");
        let response = client.post("/v1/chat/completions", &[], &chat_body(&model, i % 2 == 0));
        assert_eq!(response.status, 404, "{}", response.text());
    }
    let after = series(&wait_for_count(&gateway, unknown, FLOOD + 1));
    assert_eq!(before, after, "the flood added or removed series");
    assert!(after.iter().all(|s| !s.contains("random-")));
}

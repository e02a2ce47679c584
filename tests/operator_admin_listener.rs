//! The admin endpoints (`/metrics`, `/v1/stats`, `/dashboard`, `/admin/*`) on the client listener by
//! default, and only on their own listener when `admin.listen` is set: there the client listener
//! answers 404 for them and the admin listener answers 404 for model calls. Both listeners bind
//! port 0 on 127.0.0.1. The path split itself is unit-tested in `src/proxy/listener.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, chat_body};
use corelay::runtime::Gateway;
use loadtest::{MockConfig, MockProvider};

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

fn config(base_url: &str, admin: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\n[health]\ntick_ms = 20\n\
         [providers.mock]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\n{admin}"
    )
}

/// A gateway started from a config file (so `POST /admin/reload` has a file to re-read).
fn start_from_file(name: &str, text: &str) -> (Gateway, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("corelay-operator-admin-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let resolved = corelay::config::load_resolved(&path).unwrap_or_else(|e| panic!("{e}"));
    (Gateway::start(resolved).expect("gateway starts"), path)
}

fn get(addr: SocketAddr, path: &str, auth: bool) -> common::Response {
    let bearer = format!("Bearer {ADMIN_KEY}");
    let headers: &[(&str, &str)] = if auth { &[("authorization", &bearer)] } else { &[] };
    Client::connect(addr).get(path, headers)
}

fn reload(addr: SocketAddr) -> common::Response {
    Client::connect(addr).post("/admin/reload", &[("authorization", &format!("Bearer {ADMIN_KEY}"))], b"")
}

fn chat(addr: SocketAddr) -> common::Response {
    Client::connect(addr).post("/v1/chat/completions", &[], &chat_body("acme/chat", false))
}

#[test]
fn without_admin_listen_the_client_listener_serves_the_admin_endpoints() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let admin = format!("[admin]\nkey = \"{ADMIN_KEY}\"\n");
    let (gateway, path) = start_from_file("shared", &config(&provider.base_url(), &admin));
    assert_eq!(gateway.admin_addr(), None);
    let addr = gateway.local_addr();
    assert_eq!(chat(addr).status, 200);
    for endpoint in ["/metrics", "/v1/stats", "/dashboard"] {
        assert_eq!(get(addr, endpoint, true).status, 200, "{endpoint}");
    }
    assert_eq!(get(addr, "/metrics", false).status, 401, "the admin key still guards the scrape");
    assert_eq!(reload(addr).status, 200);
    let _ = std::fs::remove_file(path);
}

#[test]
fn with_admin_listen_the_admin_endpoints_are_only_on_their_own_listener() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let admin = format!("[admin]\nkey = \"{ADMIN_KEY}\"\nlisten = \"127.0.0.1:0\"\n");
    let (gateway, path) = start_from_file("split", &config(&provider.base_url(), &admin));
    let (public, private) = (gateway.local_addr(), gateway.admin_addr().expect("an admin listener"));
    assert_ne!(public.port(), private.port());

    // The client listener: model calls and probes, no admin endpoint (404 as for any unknown path).
    assert_eq!(chat(public).status, 200);
    assert_eq!(get(public, "/healthz", false).status, 200);
    for endpoint in ["/metrics", "/v1/stats", "/dashboard"] {
        let response = get(public, endpoint, true);
        assert_eq!(response.status, 404, "{endpoint}: {}", response.text());
    }
    assert_eq!(reload(public).status, 404);

    // The admin listener: the admin endpoints (still behind the admin key) and probes, no model calls.
    let counted =
        r#"corelay_requests_total{front_door="openai",model="acme/chat",provider="mock",status_class="2xx"} 1"#;
    assert!(gateway.health().wait_until_metrics(|t| t.lines().any(|l| l == counted), Duration::from_secs(10)));
    let scrape = get(private, "/metrics", true);
    assert_eq!(scrape.status, 200);
    assert!(scrape.text().lines().any(|l| l == counted), "{}", scrape.text());
    assert_eq!(get(private, "/metrics", false).status, 401);
    assert_eq!(get(private, "/v1/stats", true).status, 200);
    let dashboard = get(private, "/dashboard", false);
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert_eq!(get(private, "/healthz", false).status, 200);
    assert_eq!(chat(private).status, 404, "model calls are not served on the admin listener");
    assert_eq!(get(private, "/v1/models", false).status, 404);
    let reloaded = reload(private);
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    assert_eq!(reloaded.json()["version"], 1);
    assert_eq!(chat(public).status, 200, "the client listener serves on after the reload");
    let _ = std::fs::remove_file(path);
}

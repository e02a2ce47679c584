//! `/admin/keys` end to end over HTTP: a gateway with a real redis-server creates, lists, rotates
//! and revokes virtual keys behind the admin key, and the keys it makes work (or stop working) for
//! model calls at once. On the client listener by default and only on `admin.listen` when set.
//! Skips without redis-server (`.ci/run` installs it).

mod common;
mod governance_support;

use std::net::SocketAddr;

use common::{Client, Response, chat_body, config_text, start_gateway};
use governance_support::{Redis, redis_server_binary};
use loadtest::{MockConfig, MockProvider};

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
const MODEL: &str = "acme/chat-small";

fn gateway(provider: &MockProvider, redis: Option<&Redis>, admin_listen: bool) -> corelay::Gateway {
    let listen = if admin_listen { "listen = \"127.0.0.1:0\"\n" } else { "" };
    let governance = redis.map_or(String::new(), |r| format!("[governance]\nredis_url = \"{}\"\n", r.url()));
    let extra = format!(
        "[admin]\nkey = \"{ADMIN_KEY}\"\n{listen}{governance}[[keys]]\nname = \"from-config\"\nkey = \
         \"sk-config-0123456789\"\nrpm = 7\n"
    );
    start_gateway(&config_text(&provider.base_url(), "", &extra))
}

fn admin() -> String {
    format!("Bearer {ADMIN_KEY}")
}

/// One request with any method, the admin key and a JSON body, on a fresh connection.
fn call(addr: SocketAddr, method: &str, path: &str, authorization: &str, body: &[u8]) -> Response {
    let mut client = Client::connect(addr);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: gateway\r\nauthorization: {authorization}\r\ncontent-type: \
         application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    client.send_raw(&bytes);
    client.read_response()
}

fn chat_with(addr: SocketAddr, secret: &str) -> u16 {
    let bearer = format!("Bearer {secret}");
    Client::connect(addr).post("/v1/chat/completions", &[("authorization", &bearer)], &chat_body(MODEL, false)).status
}

#[test]
fn keys_are_created_listed_rotated_and_revoked_over_http_and_work_at_once() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gw = gateway(&provider, Some(&redis), false);
    let addr = gw.local_addr();

    let created = call(addr, "POST", "/admin/keys", &admin(), br#"{"name":"ci","rpm":5,"models":["acme/*"]}"#);
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let secret = created.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ck-"), "{secret}");
    assert_eq!(chat_with(addr, &secret), 200, "the new key works on its instance at once");

    let listed = call(addr, "GET", "/admin/keys", &admin(), b"");
    assert_eq!(listed.status, 200);
    let text = listed.text();
    assert!(!text.contains(&secret[3..]) && !text.contains("sha256"), "never a secret or a hash: {text}");
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    let by_name = |name: &str| keys.iter().find(|k| k["name"] == name).unwrap_or_else(|| panic!("{text}")).clone();
    assert_eq!((by_name("ci")["rpm"].as_u64(), by_name("ci")["source"].as_str()), (Some(5), Some("redis")));
    assert_eq!(by_name("from-config")["source"], "config");

    let again = call(addr, "POST", "/admin/keys", &admin(), br#"{"name":"ci"}"#);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("exists"));

    let rotated = call(addr, "POST", "/admin/keys/ci/rotate", &admin(), b"");
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_secret = rotated.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(chat_with(addr, &secret), 401, "the old secret stopped working");
    assert_eq!(chat_with(addr, &new_secret), 200);

    let revoked = call(addr, "DELETE", "/admin/keys/ci", &admin(), b"");
    assert_eq!((revoked.status, revoked.json()["revoked"].as_bool()), (200, Some(true)), "{}", revoked.text());
    assert_eq!(chat_with(addr, &new_secret), 401);
    assert_eq!(call(addr, "DELETE", "/admin/keys/ci", &admin(), b"").status, 404);
    assert_eq!(call(addr, "POST", "/admin/keys/ci/rotate", &admin(), b"").status, 404);
    assert_eq!(provider.requests().len(), 2, "only the two admitted calls reached the provider");
}

#[test]
fn bad_requests_get_json_errors_and_nothing_is_stored() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gw = gateway(&provider, Some(&redis), false);
    let addr = gw.local_addr();

    let wrong_key = call(addr, "GET", "/admin/keys", "Bearer not-the-admin-key", b"");
    assert_eq!(wrong_key.status, 401);
    let as_client = call(addr, "POST", "/admin/keys", "Bearer sk-config-0123456789", br#"{"name":"x"}"#);
    assert_eq!(as_client.status, 401, "a virtual key is not the admin key");
    for (body, field) in [
        (&br#"{"name":"a b"}"#[..], "name"),
        (br#"{"name":"ok","sha256":"00"}"#, "sha256"),
        (br#"{"name":"ok","rpm":"ten"}"#, "expected u64"),
        (br#"{"name":"from-config"}"#, "config file"),
        (b"not json", "invalid"),
    ] {
        let refused = call(addr, "POST", "/admin/keys", &admin(), body);
        assert_eq!(refused.status, 400, "{}", refused.text());
        let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(field), "{field}: {message}");
    }
    let too_large = call(addr, "POST", "/admin/keys", &admin(), &vec![b' '; 70 * 1024]);
    assert_eq!(too_large.status, 413, "{}", too_large.text());
    assert_eq!(call(addr, "PUT", "/admin/keys", &admin(), b"").status, 405);
    assert_eq!(call(addr, "DELETE", "/admin/keys/from-config", &admin(), b"").status, 400);
    assert_eq!(redis.connect().call(&["HLEN", "corelay:keys"]).unwrap().as_int(), Some(0));
}

#[test]
fn on_admin_listen_only_and_listing_config_keys_without_redis() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gw = gateway(&provider, None, true);
    let private = gw.admin_addr().expect("an admin listener");

    assert_eq!(call(gw.local_addr(), "GET", "/admin/keys", &admin(), b"").status, 404);
    let listed = call(private, "GET", "/admin/keys", &admin(), b"");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["name"].as_str(), keys[0]["spent_micros_total"].as_u64()), (Some("from-config"), Some(0)));
    assert!(!listed.text().contains("sha256"));

    let refused = call(private, "POST", "/admin/keys", &admin(), br#"{"name":"ci"}"#);
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("redis_url"), "{}", refused.text());
}

/// The body limit of `/admin/keys` (64 KiB, far below `server.max_body_bytes`) applies while the
/// body is read: an oversized `Content-Length` is refused before any body byte is sent, and a
/// chunked body at the chunk that would pass the limit, before its data. Had the gateway waited for
/// either body it would answer 408 after its body timeout, not 413.
#[test]
fn oversized_key_requests_are_refused_before_their_body_is_read() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gw = gateway(&provider, None, false);
    let addr = gw.local_addr();
    let head = |framing: &str| {
        format!(
            "POST /admin/keys HTTP/1.1\r\nhost: gateway\r\nauthorization: {}\r\ncontent-type: application/json\r\n\
             {framing}\r\n\r\n",
            admin()
        )
    };
    let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
    let refused_in_json = |response: &Response| {
        assert_eq!(response.status, 413, "{}", response.text());
        let message = response.json()["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("65536"), "{message}");
    };

    let mut client = Client::connect(addr);
    client.send_raw(head("content-length: 1048576").as_bytes());
    refused_in_json(&client.read_response());

    // 64,000 bytes in chunks are within the limit: read whole and parsed (refused only for want of Redis).
    let mut client = Client::connect(addr);
    let spaces = vec![b' '; 16_000];
    let mut within = head("transfer-encoding: chunked").into_bytes();
    for _ in 0..3 {
        within.extend(chunk(&spaces));
    }
    within.extend(chunk(&[br#"{"name":"ci""#, &vec![b' '; 16_000 - 13][..], b"}"].concat()));
    within.extend_from_slice(b"0\r\n\r\n");
    client.send_raw(&within);
    let parsed = client.read_response();
    assert_eq!(parsed.status, 400, "{}", parsed.text());
    assert!(parsed.text().contains("redis_url"), "{}", parsed.text());

    // The same 64,000 bytes and then a chunk of 4 KiB: refused at that chunk's size line.
    let mut client = Client::connect(addr);
    let mut over = head("transfer-encoding: chunked").into_bytes();
    for _ in 0..4 {
        over.extend(chunk(&spaces));
    }
    over.extend_from_slice(b"1000\r\n");
    client.send_raw(&over);
    refused_in_json(&client.read_response());
}

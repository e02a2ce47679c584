//! Key rotation as an operator does it: the `corelay` binary reads its provider key from a file and
//! its provider URL from `${VAR}`, the key file is replaced and SIGHUP sent while clients keep
//! calling, and the mock provider's recorded headers show the new key from the next request on,
//! with no request failing. A broken rotation (an empty file) changes nothing and is counted.
//! Config-level details (errors, line numbers) are unit tests in `src/config/tests.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::Client;
use loadtest::{MockConfig, MockProvider, RecordedRequest};

const WAIT: Duration = Duration::from_secs(15);
const OLD_KEY: &str = "sk-rotation-old-0123456789";
const NEW_KEY: &str = "sk-rotation-new-9876543210";

/// The `corelay` binary with its stderr lines readable as they come; killed when dropped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corelay"))
            .args(["--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("corelay starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon { child, addr: "127.0.0.1:1".parse().unwrap(), lines, seen: Vec::new() };
        let line = daemon.wait_for_line("listening on http://");
        let addr = line.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        daemon.addr = addr.parse().unwrap();
        daemon
    }

    fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with {needle:?}; saw:\n{}", self.seen.join("\n"));
    }

    fn sighup(&self) {
        // SAFETY: kill with a valid signal number on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill failed");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("corelay-operator-secrets-{}-{name}", std::process::id()))
}

/// Replaces the key file the way rotation tools do: a new file renamed over the old one, so a
/// reader sees the old key or the new one, never half of one.
fn rotate(path: &Path, key: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, format!("{key}\n")).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

fn authorization(request: &RecordedRequest) -> String {
    request.headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.clone()).unwrap_or_default()
}

fn chat(client: &mut Client, text: &str) -> u16 {
    let body = serde_json::json!({"model": "acme/chat", "messages": [{"role": "user", "content": text}]});
    client.post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap()).status
}

/// Clients calling on kept-alive connections until `stop`; each returns the statuses it got.
fn start_callers(addr: SocketAddr, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<u16>>> {
    (0..3)
        .map(|_| {
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && statuses.len() < 50_000 {
                    statuses.push(chat(&mut client, "background"));
                }
                statuses
            })
        })
        .collect()
}

/// Scrapes until `line` is in `/metrics` (the text is re-rendered every health tick); bounded by
/// count and time.
fn scrape_until(addr: SocketAddr, line: &str) -> Result<(), String> {
    let mut client = Client::connect(addr);
    let deadline = Instant::now() + WAIT;
    let mut text = String::new();
    for _ in 0..5_000 {
        text = client.get("/metrics", &[]).text();
        if text.lines().any(|l| l == line) {
            return Ok(());
        }
        if Instant::now() > deadline {
            break;
        }
    }
    Err(format!("no `{line}` in\n{text}"))
}

#[test]
fn a_rotated_key_file_is_used_after_sighup_without_a_failed_request() {
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let key_file = temp("provider.key");
    rotate(&key_file, OLD_KEY);
    let config = temp("corelay.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\n[health]\ntick_ms = 20\n\
         [providers.mock]\nkind = \"openai\"\nbase_url = \"${{CORELAY_TEST_MOCK_URL}}\"\napi_key_file = \"{}\"\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\n",
        key_file.display()
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(&config, &[("CORELAY_TEST_MOCK_URL", &provider.base_url())]);

    let stop = Arc::new(AtomicBool::new(false));
    let callers = start_callers(daemon.addr, &stop);
    assert!(provider.wait_for_requests(30, WAIT), "the callers are calling");
    rotate(&key_file, NEW_KEY);
    daemon.sighup();
    daemon.wait_for_line("config reloaded");
    let mut probe = Client::connect(daemon.addr);
    assert_eq!(chat(&mut probe, "the first call after the reload"), 200);
    let seen = provider.requests().len();
    assert!(provider.wait_for_requests(seen + 30, WAIT), "the callers go on after the reload");

    // A broken rotation (an empty file) is refused: the new key stays, the failure is counted.
    rotate(&key_file, "");
    daemon.sighup();
    daemon.wait_for_line("reload failed");
    assert_eq!(chat(&mut probe, "the first call after the failed reload"), 200);
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = callers.into_iter().flat_map(|c| c.join().unwrap()).collect();

    assert!(statuses.len() >= 60, "{} calls", statuses.len());
    assert!(statuses.iter().all(|&s| s == 200), "failed calls during rotation: {statuses:?}");
    let requests = provider.requests();
    let key_of = |marker: &str| {
        let found = requests.iter().find(|r| String::from_utf8_lossy(&r.body).contains(marker));
        authorization(found.unwrap_or_else(|| panic!("no request with {marker}")))
    };
    assert_eq!(key_of("the first call after the reload"), format!("Bearer {NEW_KEY}"));
    assert_eq!(key_of("the first call after the failed reload"), format!("Bearer {NEW_KEY}"));
    let keys: std::collections::BTreeSet<String> = requests.iter().map(authorization).collect();
    let expected = [format!("Bearer {NEW_KEY}"), format!("Bearer {OLD_KEY}")];
    assert_eq!(keys, expected.into_iter().collect(), "only the two keys, never a blend or none");

    for line in [
        "corelay_config_reloads_total{outcome=\"success\"} 1",
        "corelay_config_reloads_total{outcome=\"failure\"} 1",
        "corelay_config_last_reload_successful 0",
    ] {
        scrape_until(daemon.addr, line).unwrap();
    }
    for path in [&key_file, &config] {
        let _ = std::fs::remove_file(path);
    }
}

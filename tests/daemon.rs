//! The `corelay` binary as a daemon: signals, draining and exit codes, driven from outside the
//! process exactly as systemd or a shell would.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{Client, chat_body};
use loadtest::{MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";
const WAIT: Duration = Duration::from_secs(15);

/// A running `corelay` child with its stderr lines readable as they come.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    seen: Vec<String>,
    config: PathBuf,
}

impl Daemon {
    fn start(name: &str, config_text: &str) -> Daemon {
        let config = std::env::temp_dir().join(format!("corelay-daemon-{}-{name}.toml", std::process::id()));
        std::fs::write(&config, config_text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corelay"))
            .args(["--config", config.to_str().unwrap()])
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
        let mut daemon = Daemon { child, addr: "127.0.0.1:1".parse().unwrap(), lines, seen: Vec::new(), config };
        let line = daemon.wait_for_line("listening on http://");
        let addr = line.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        daemon.addr = addr.parse().unwrap();
        daemon
    }

    /// The next stderr line containing `needle`, waiting at most `WAIT`.
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

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill with a valid signal number on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit within `limit`; returns its exit code.
    fn exit_code_within(mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.id() as libc::pid_t;
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().map(|status| status.code()));
        });
        match exited.recv_timeout(limit) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                // SAFETY: SIGKILL to our own child, which has not been reaped (its waiter is blocked).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("corelay did not exit within {limit:?}; saw:\n{}", self.seen.join("\n"));
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn config(base_url: &str, server_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\n{server_extra}\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n[models.\"{MODEL}\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\n"
    )
}

/// Starts `n` streaming requests on their own connections, each in its own thread.
fn start_streams(addr: SocketAddr, n: usize) -> Vec<std::thread::JoinHandle<common::Response>> {
    (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                client.post("/v1/chat/completions", &[], &chat_body(MODEL, true))
            })
        })
        .collect()
}

#[test]
fn sigterm_drains_fifty_streams_then_exits_zero() {
    let mock =
        MockProvider::start(MockConfig { events: 20, event_gap: Duration::from_millis(40), ..MockConfig::default() })
            .unwrap();
    let mut daemon = Daemon::start("drain", &config(&mock.base_url(), "shutdown_grace_ms = 10000"));
    let streams = start_streams(daemon.addr, 50);
    assert!(mock.wait_for_requests(50, WAIT), "all 50 streams reached the provider");

    daemon.signal(libc::SIGTERM);
    let signalled = Instant::now();
    daemon.wait_for_line("stopped accepting");
    daemon.wait_for_line("stopped accepting");
    let refused = TcpStream::connect(daemon.addr);
    assert!(refused.is_err(), "a new connection after the signal must not be accepted");

    for stream in streams {
        let response = stream.join().unwrap();
        assert_eq!(response.status, 200);
        let (events, done) = response.sse_data();
        assert!(done, "stream completed: {}", response.text());
        assert_eq!(events.len(), 22);
    }
    assert_eq!(daemon.exit_code_within(Duration::from_secs(11)), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(11));
}

#[test]
fn streams_still_open_at_the_deadline_end_with_an_error_event() {
    let mock =
        MockProvider::start(MockConfig { events: 100, event_gap: Duration::from_millis(50), ..MockConfig::default() })
            .unwrap();
    let daemon = Daemon::start("deadline", &config(&mock.base_url(), "shutdown_grace_ms = 300"));
    let streams = start_streams(daemon.addr, 3);
    assert!(mock.wait_for_requests(3, WAIT));

    daemon.signal(libc::SIGTERM);
    let signalled = Instant::now();

    for stream in streams {
        let response = stream.join().unwrap();
        assert_eq!(response.status, 200);
        let (events, done) = response.sse_data();
        assert!(!done);
        let last = events.last().expect("some events, then the error");
        assert!(last["error"]["message"].as_str().unwrap().contains("shutting down"), "{}", response.text());
    }
    assert_eq!(daemon.exit_code_within(Duration::from_millis(1300)), Some(0), "exits within grace + 1 s");
    assert!(signalled.elapsed() < Duration::from_millis(1300));
}

#[test]
fn a_second_signal_exits_at_once() {
    let mock =
        MockProvider::start(MockConfig { events: 100, event_gap: Duration::from_millis(50), ..MockConfig::default() })
            .unwrap();
    let mut daemon = Daemon::start("second", &config(&mock.base_url(), "shutdown_grace_ms = 30000"));
    let _streams = start_streams(daemon.addr, 1);
    assert!(mock.wait_for_requests(1, WAIT));

    daemon.signal(libc::SIGINT);
    daemon.wait_for_line("draining for up to");
    daemon.signal(libc::SIGINT);

    assert_eq!(daemon.exit_code_within(Duration::from_secs(2)), Some(130));
}

fn model_ids(addr: SocketAddr) -> Vec<String> {
    let json = Client::connect(addr).get("/v1/models", &[]).json();
    json["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn sighup_applies_a_new_model_list_on_every_core_without_dropping_streams_or_pools() {
    let mock =
        MockProvider::start(MockConfig { events: 10, event_gap: Duration::from_millis(60), ..MockConfig::default() })
            .unwrap();
    let first = config(&mock.base_url(), "[health]\ntick_ms = 20\n");
    let mut daemon = Daemon::start("reload", &first);
    let old_stream = start_streams(daemon.addr, 1);
    assert!(mock.wait_for_requests(1, WAIT));
    for _ in 0..20 {
        assert_eq!(
            Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status,
            200
        );
    }
    let connections_before = mock.connections_accepted();

    let second = format!("{first}[models.\"acme/new\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o\" }}]\n");
    std::fs::write(&daemon.config, second).unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_line("switched to config version 1");
    daemon.wait_for_line("switched to config version 1");

    for _ in 0..20 {
        assert_eq!(model_ids(daemon.addr), ["acme/chat-small", "acme/new"], "every core lists the new model");
        let response = Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body("acme/new", false));
        assert_eq!(response.json()["model"], "acme/new");
    }
    let response = old_stream.into_iter().next().unwrap().join().unwrap();
    let (events, done) = response.sse_data();
    assert!(done && events.len() == 12 && events.iter().all(|e| e["model"] == MODEL), "{}", response.text());
    assert_eq!(mock.connections_accepted(), connections_before, "pooled upstream connections survived the reload");
    assert_eq!(
        mock.requests().last().map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["model"].clone()),
        Some("gpt-4o".into())
    );
}

#[test]
fn sighup_with_an_invalid_file_changes_nothing_and_names_the_line() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let first = config(&mock.base_url(), "[health]\ntick_ms = 20\n");
    let mut daemon = Daemon::start("invalid", &first);

    let broken = first.replace("cores = 2\n", "cores = 2\nbogus_key = 1\n");
    let line = broken.lines().position(|l| l.starts_with("bogus_key")).unwrap() + 1;
    std::fs::write(&daemon.config, broken).unwrap();
    daemon.signal(libc::SIGHUP);
    let error = daemon.wait_for_line("reload failed");

    assert!(error.contains(&format!(".toml:{line}: server.bogus_key: unknown key")), "{error}");
    assert_eq!(model_ids(daemon.addr), ["acme/chat-small"]);
    assert_eq!(Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status, 200);

    std::fs::write(&daemon.config, first.replace("cores = 2\n", "cores = 3\n")).unwrap();
    daemon.signal(libc::SIGHUP);
    let warning = daemon.wait_for_line("needs a restart");
    assert!(warning.contains("server.cores: 2 -> 3"), "{warning}");
}

#[test]
fn sigterm_exits_zero_with_the_access_log_on_and_every_call_logged() {
    let mock =
        MockProvider::start(MockConfig { events: 10, event_gap: Duration::from_millis(20), ..MockConfig::default() })
            .unwrap();
    let log = std::env::temp_dir().join(format!("corelay-daemon-{}-access.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let text =
        format!("{}\n[log]\naccess = \"{}\"\n", config(&mock.base_url(), "shutdown_grace_ms = 5000"), log.display());
    let mut daemon = Daemon::start("access-log", &text);
    for _ in 0..10 {
        assert_eq!(
            Client::connect(daemon.addr).post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status,
            200
        );
    }
    let streams = start_streams(daemon.addr, 10);
    assert!(mock.wait_for_requests(20, WAIT));

    daemon.signal(libc::SIGTERM);
    daemon.wait_for_line("stopped accepting");
    for stream in streams {
        assert_eq!(stream.join().unwrap().status, 200);
    }

    // Before the fix the access-log writer and the main thread waited on each other: no exit at all.
    assert_eq!(daemon.exit_code_within(Duration::from_secs(8)), Some(0));
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 20, "one line per call, none lost at shutdown:\n{lines}");
    let _ = std::fs::remove_file(&log);
}

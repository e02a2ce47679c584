//! Test support for the governance tests: a real `redis-server` on a free loopback port in a temp
//! directory (killed on drop), and governors built from config text. Not a test itself.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corelay::config::{Config, resolve};
use corelay::governance::Governor;

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("corelay-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `redis-server` when installed (`.ci/run` installs it). Without it a test prints why it skips, and
/// under `CI=true` fails instead, as every other missing test dependency does there.
pub fn redis_server_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join("redis-server"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "redis-server is required under CI=true");
        eprintln!("redis-server not installed: skipping (apt-get install -y redis-server)");
    }
    found
}

/// A redis-server child with append-only persistence in `dir`, so a restart keeps its data.
pub struct Redis {
    pub port: u16,
    dir: TempDir,
    binary: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts on a free port: Redis cannot bind port 0, so a port is taken from the kernel by binding
    /// one, released, and retried on the rare conflict, at most five times.
    pub fn start(binary: PathBuf) -> Redis {
        let mut redis = Redis { port: 0, dir: TempDir::new("redis"), binary, child: None };
        for _ in 0..5 {
            redis.port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if redis.spawn().is_ok() {
                return redis;
            }
        }
        panic!("redis-server would not start on any of five free ports");
    }

    /// Starts the server and waits for its "Ready to accept connections" line (or its exit); `Err`
    /// holds the last lines it logged, to say why it did not start.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--logfile", ""])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut last = std::collections::VecDeque::new();
        let ready = lines.by_ref().take(200).map_while(Result::ok).any(|line| {
            let ready = line.contains("Ready to accept connections");
            last.push_back(line);
            if last.len() > 8 {
                last.pop_front();
            }
            ready
        });
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Vec::from(last).join("\n"));
        }
        // Keep draining its log so a full pipe never blocks it.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data, up to three tries (each waits for the
    /// server's own ready line or exit, no sleep), and a failure shows what redis-server logged. One
    /// restart failed in CI on 2026-12-08 without saying why; a test in the same process handed the
    /// just-freed port by a bind to port 0 is one way it could happen.
    pub fn restart(&mut self) {
        let mut why = String::new();
        for _ in 0..3 {
            match self.spawn() {
                Ok(()) => return,
                Err(log) => why = log,
            }
        }
        panic!("redis-server did not restart on port {} after three tries; its last lines:\n{why}", self.port);
    }

    pub fn connect(&self) -> corelay::governance::resp::Connection {
        corelay::governance::resp::Connection::connect(&format!("127.0.0.1:{}", self.port), Duration::from_secs(2))
            .unwrap()
    }

    /// One of the counters Redis keeps for a virtual key (`spent_total`, `tpm`, ...; see
    /// `governance::scripts`).
    pub fn counter(&self, key: &str, field: &str) -> i64 {
        let hash = format!("corelay:k:{key}:counters");
        self.connect().call(&["HGET", &hash, field]).unwrap().as_int().unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A governor from config text (keys and `[governance]` only; no providers are needed).
pub fn governor(text: &str) -> Governor {
    let config = Config::parse(text).unwrap_or_else(|issues| panic!("{issues:?}"));
    Governor::start(&resolve(config).unwrap()).unwrap()
}

/// Polls `condition` every 10 ms for at most `limit`: for state another thread changes on its own
/// schedule (the governance thread reconnecting), never to order two actions of this test.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

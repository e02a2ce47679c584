//! The access log: one JSON line per request, written off the request path by a dedicated thread.
//! Text the client chose (path, user agent, user, tags) is JSON-escaped by the serializer and cut to
//! a bounded length; the query string and headers other than `user-agent` are never logged, so a
//! key sent in either cannot reach the log.
//! Workers `try_send` a record; when the thread falls behind, records are dropped and counted rather
//! than slowing requests. `Reopen` (sent on SIGHUP) reopens the file, for rotation by logrotate.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;

use super::CallRecord;

/// Records queued for the writer at most; beyond it new records are dropped.
const QUEUE: usize = 65_536;

pub enum LogMessage {
    Call(Box<CallRecord>),
    Reopen,
    /// Write what was queued before this, then end. Shutdown says so rather than waiting for every
    /// handle to be dropped: a handle held by anything that outlives the workers would otherwise
    /// keep the writer (and the process, which joins it) alive forever.
    Stop,
}

/// Where access-log lines go, from `[log] access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Off,
    Stdout,
    File(PathBuf),
}

impl Target {
    pub fn parse(value: &str) -> Target {
        match value {
            "" | "off" => Target::Off,
            "stdout" | "-" => Target::Stdout,
            path => Target::File(PathBuf::from(path)),
        }
    }
}

/// A worker's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AccessLog {
    tx: Sender<LogMessage>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    pub fn log(&self, call: &CallRecord) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(LogMessage::Call(Box::new(call.clone()))) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reopen(&self) {
        let _ = self.tx.try_send(LogMessage::Reopen);
    }

    /// Asks the writer to finish the queue and end. Blocks only while the queue is full.
    pub fn stop(&self) {
        let _ = self.tx.send(LogMessage::Stop);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the writer thread; `None` when the log is off. The thread ends on [`AccessLog::stop`] (or
/// when every handle is gone).
pub fn start(target: Target) -> io::Result<Option<(AccessLog, JoinHandle<()>)>> {
    let sink = match &target {
        Target::Off => return Ok(None),
        Target::Stdout => Sink::Stdout,
        Target::File(path) => Sink::File(path.clone(), open(path)?),
    };
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let handle = std::thread::Builder::new().name("corelay-access-log".into()).spawn(move || write_loop(rx, sink))?;
    Ok(Some((AccessLog { tx, dropped: Arc::new(AtomicU64::new(0)) }, handle)))
}

enum Sink {
    Stdout,
    File(PathBuf, BufWriter<File>),
}

fn open(path: &std::path::Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?))
}

fn write_loop(rx: Receiver<LogMessage>, mut sink: Sink) {
    let mut line = Vec::with_capacity(1024);
    while let Ok(message) = rx.recv() {
        match message {
            LogMessage::Call(call) => {
                line.clear();
                if serde_json::to_writer(&mut line, &Line::from(call.as_ref())).is_ok() {
                    line.push(b'\n');
                    write(&mut sink, &line);
                }
            }
            LogMessage::Reopen => reopen(&mut sink),
            LogMessage::Stop => break,
        }
        // Flush when the queue is drained, so lines are visible promptly without a write per line.
        if rx.is_empty() {
            flush(&mut sink);
        }
    }
    flush(&mut sink);
}

fn write(sink: &mut Sink, line: &[u8]) {
    let _ = match sink {
        Sink::Stdout => io::stdout().lock().write_all(line),
        Sink::File(_, file) => file.write_all(line),
    };
}

fn flush(sink: &mut Sink) {
    let _ = match sink {
        Sink::Stdout => io::stdout().lock().flush(),
        Sink::File(_, file) => file.flush(),
    };
}

fn reopen(sink: &mut Sink) {
    if let Sink::File(path, file) = sink {
        let _ = file.flush();
        match open(path) {
            Ok(fresh) => *file = fresh,
            Err(e) => log::error!("cannot reopen the access log {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_ends_the_writer_after_the_queue_while_other_handles_still_exist() {
        let path = std::env::temp_dir().join(format!("corelay-access-stop-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (log, writer) = start(Target::File(path.clone())).unwrap().unwrap();
        let held_elsewhere = log.clone();
        let call = CallRecord { request_id: "r-1".into(), ..CallRecord::default() };
        log.log(&call);
        log.stop();
        // Before `Stop`, this join waited for `held_elsewhere` forever.
        writer.join().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("\"request_id\":\"r-1\""), "{written}");
        drop(held_elsewhere);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn client_text_is_escaped_onto_one_line_and_cut() {
        let call = CallRecord {
            client: Some("127.0.0.1:4242".parse().unwrap()),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            user_agent: format!("evil\"agent\n{{\"status\":1}}\u{1b}[31m{}", "é".repeat(400)),
            user: "u\"1".into(),
            tags: (0..20).map(|i| format!("t{i}")).collect(),
            ..CallRecord::default()
        };
        let line = serde_json::to_string(&Line::from(&call)).unwrap();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        let agent = parsed["user_agent"].as_str().unwrap();
        assert!(agent.starts_with("evil\"agent\n{\"status\":1}\u{1b}[31m") && agent.len() <= MAX_VALUE, "{agent}");
        assert_eq!(parsed["client"], "127.0.0.1:4242");
        assert_eq!(parsed["user"], "u\"1");
        assert_eq!(parsed["tags"].as_array().unwrap().len(), MAX_TAGS);
    }
}

#[derive(Serialize)]
struct Tokens {
    prompt: u64,
    completion: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
}

#[derive(Serialize)]
struct Attempt<'a> {
    provider: &'a str,
    outcome: &'static str,
    /// The provider's status, when a response head arrived.
    status: Option<u16>,
}

/// Longest client-chosen value logged (path, user agent), in bytes; longer is cut.
const MAX_VALUE: usize = 256;
/// Longest user and tag logged, and tags per line at most.
const MAX_LABEL: usize = 128;
const MAX_TAGS: usize = 16;

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Serialize)]
struct Line<'a> {
    ts_unix_ms: u64,
    request_id: &'a str,
    key: &'a str,
    /// `ip:port` of the TCP peer.
    client: Option<String>,
    method: &'a str,
    path: &'a str,
    user_agent: &'a str,
    user: &'a str,
    tags: Vec<&'a str>,
    front_door: &'static str,
    model: &'a str,
    served_model: &'a str,
    provider: &'a str,
    attempts: Vec<Attempt<'a>>,
    status: u16,
    stream: bool,
    ttfb_ms: Option<f64>,
    duration_ms: f64,
    overhead_ms: f64,
    tokens: Option<Tokens>,
    cost_usd_micros: u64,
    bytes_in: u64,
    bytes_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'static str>,
}

impl<'a> From<&'a CallRecord> for Line<'a> {
    fn from(c: &'a CallRecord) -> Line<'a> {
        let ms = |d: std::time::Duration| d.as_micros() as f64 / 1000.0;
        Line {
            ts_unix_ms: crate::clock::unix_now_ms(),
            request_id: &c.request_id,
            key: &c.key,
            client: c.client.map(|a| a.to_string()),
            method: cut(&c.method, MAX_LABEL),
            path: cut(&c.path, MAX_VALUE),
            user_agent: cut(&c.user_agent, MAX_VALUE),
            user: cut(&c.user, MAX_LABEL),
            tags: c.tags.iter().take(MAX_TAGS).map(|t| cut(t, MAX_LABEL)).collect(),
            front_door: c.front_door,
            model: &c.model,
            served_model: &c.served_model,
            provider: &c.provider,
            attempts: c
                .attempts
                .iter()
                .map(|a| Attempt { provider: &a.provider, outcome: a.outcome.name(), status: a.status })
                .collect(),
            status: c.status,
            stream: c.stream,
            ttfb_ms: c.ttfb.map(ms),
            duration_ms: ms(c.duration),
            overhead_ms: ms(c.overhead()),
            tokens: c.usage.map(|u| Tokens {
                prompt: u.prompt_tokens,
                completion: u.completion_tokens,
                cache_read: u.cache_read_tokens,
                cache_write: u.cache_write_tokens,
                reasoning: u.reasoning_tokens,
            }),
            cost_usd_micros: c.cost_micros,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            cache: c.cache,
        }
    }
}

//! Process logging on `tracing`: one line per event on stderr (journald-friendly), logfmt by default
//! or JSON, with per-module levels. Owns the subscriber and the line format; not the access log
//! (`metrics::access_log`) and not trace export (`telemetry`).
//!
//! `CORELAY_LOG` takes directives like `info,corelay::upstream=debug` (a bare level is the default;
//! `target=level` applies to a module and those below it). `CORELAY_LOG_FORMAT` is `logfmt` or
//! `json`. The environment wins over the config file's `[log] level` and `[log] format`.
//!
//! The gateway's `log::` call sites (and rustls's) are bridged by tracing-log rather than rewritten:
//! every `log` record becomes a `tracing` event with its own target, so per-module filters apply to
//! them, and the call sites (spread over every layer) stay as they are.
//!
//! Each line is formatted into one buffer and written with one `write` call, so lines from different
//! threads never interleave. Callers must not put secrets in messages; nothing here can tell a
//! secret from other text.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::{AsLog, NormalizeEvent};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// The line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ts=… level=… thread=… target=… msg="…" key=value…`
    Logfmt,
    /// `{"ts":…,"level":…,"thread":…,"target":…,"msg":…,"key":value…}`
    Json,
}

impl Format {
    pub fn parse(value: &str) -> Option<Format> {
        match value.trim().to_ascii_lowercase().as_str() {
            "logfmt" | "" => Some(Format::Logfmt),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

const DEFAULT_DIRECTIVES: &str = "info";

/// The format in force (0 logfmt, 1 json): read per line, so the config file can change it after
/// `init`.
static FORMAT: AtomicU8 = AtomicU8::new(0);
static FILTER: OnceLock<reload::Handle<Targets, tracing_subscriber::Registry>> = OnceLock::new();

/// Installs the subscriber once, from the environment; later calls are ignored (tests start many
/// gateways).
pub fn init() {
    if FILTER.get().is_some() {
        return;
    }
    let parsed = std::env::var("CORELAY_LOG").ok().map(|d| parse_directives(&d));
    let targets = match &parsed {
        Some(Ok(targets)) => targets.clone(),
        _ => default_targets(),
    };
    if let Some(format) = std::env::var("CORELAY_LOG_FORMAT").ok().as_deref().and_then(Format::parse) {
        set_format(format);
    }
    let (filter, handle) = reload::Layer::new(targets);
    let subscriber = tracing_subscriber::registry().with(filter).with(LineWriter);
    if subscriber.try_init().is_ok() {
        let _ = FILTER.set(handle);
    }
    if let Some(Err(why)) = parsed {
        tracing::warn!("CORELAY_LOG: {why}; logging at the default level `{DEFAULT_DIRECTIVES}`");
    }
}

/// Applies the config file's `[log] level` and `[log] format` where the environment set neither.
pub fn configure(level: Option<&str>, format: Option<Format>) -> Result<(), String> {
    if let (Some(level), None) = (level, std::env::var_os("CORELAY_LOG")) {
        let targets = parse_directives(level)?;
        if let Some(handle) = FILTER.get() {
            // Reloading rebuilds the callsite caches and the max-level hint; the `log` macros
            // check their own global maximum, set from that hint.
            handle.reload(targets).map_err(|e| e.to_string())?;
            log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
        }
    }
    if let (Some(format), None) = (format, std::env::var_os("CORELAY_LOG_FORMAT")) {
        set_format(format);
    }
    Ok(())
}

fn set_format(format: Format) {
    FORMAT.store(u8::from(format == Format::Json), Ordering::Relaxed);
}

fn current_format() -> Format {
    if FORMAT.load(Ordering::Relaxed) == 1 { Format::Json } else { Format::Logfmt }
}

fn default_targets() -> Targets {
    DEFAULT_DIRECTIVES.parse().unwrap_or_default()
}

/// `info,corelay::upstream=debug`: checked here so a typo is an error rather than silence.
pub fn parse_directives(text: &str) -> Result<Targets, String> {
    text.parse::<Targets>().map_err(|e| format!("invalid log directives `{text}`: {e}"))
}

/// The layer that writes each event as one line on stderr.
struct LineWriter;

impl<S: Subscriber> Layer<S> for LineWriter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = Record {
            now: SystemTime::now(),
            level: *metadata.level(),
            thread: std::thread::current().name().unwrap_or("-").to_string(),
            target: metadata.target(),
            fields: &fields,
        };
        let line = match current_format() {
            Format::Logfmt => record.logfmt(),
            Format::Json => record.json(),
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// An event's message and other fields, as text; the bridge's own `log.*` fields are left out (the
/// target is taken from the normalized metadata).
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name if name.starts_with("log.") => {}
            name => self.others.push((name, value)),
        }
    }
}

struct Record<'a> {
    now: SystemTime,
    level: Level,
    thread: String,
    target: &'a str,
    fields: &'a Fields,
}

impl Record<'_> {
    fn timestamp(&self) -> String {
        let since_epoch = self.now.duration_since(UNIX_EPOCH).unwrap_or_default();
        rfc3339_utc(since_epoch.as_secs(), since_epoch.subsec_millis())
    }

    fn level_name(&self) -> String {
        self.level.as_str().to_ascii_lowercase()
    }

    fn logfmt(&self) -> String {
        let mut line = format!(
            "ts={} level={} thread={} target={} msg={}",
            self.timestamp(),
            self.level_name(),
            self.thread,
            self.target,
            quote(&self.fields.message),
        );
        for (name, value) in &self.fields.others {
            let _ = write!(line, " {name}={}", quote(value));
        }
        line.push('\n');
        line
    }

    fn json(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("ts".into(), self.timestamp().into());
        object.insert("level".into(), self.level_name().into());
        object.insert("thread".into(), self.thread.clone().into());
        object.insert("target".into(), self.target.into());
        object.insert("msg".into(), self.fields.message.clone().into());
        for (name, value) in &self.fields.others {
            object.entry(*name).or_insert_with(|| value.clone().into());
        }
        // serde_json escapes control characters, so the object stays on one line.
        let mut line = serde_json::Value::Object(object).to_string();
        line.push('\n');
        line
    }
}

/// logfmt value quoting: quotes, backslashes and newlines escaped so a message stays one line.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from Unix seconds, without a date library (civil-from-days).
pub fn rfc3339_utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, others: &[(&'static str, &str)]) -> Fields {
        Fields { message: message.into(), others: others.iter().map(|(n, v)| (*n, v.to_string())).collect() }
    }

    fn record<'a>(fields: &'a Fields) -> Record<'a> {
        Record { now: UNIX_EPOCH, level: Level::WARN, thread: "corelay-w0".into(), target: "corelay::x", fields }
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339_utc(1_795_653_000, 999), "2026-11-26T00:30:00.999Z");
    }

    #[test]
    fn lines_are_single_logfmt_records() {
        let fields = fields("bad \"thing\"\nhere", &[]);
        let line = record(&fields).logfmt();
        assert_eq!(
            line,
            "ts=1970-01-01T00:00:00.000Z level=warn thread=corelay-w0 target=corelay::x msg=\"bad \\\"thing\\\"\\nhere\"\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn structured_fields_follow_the_message() {
        let fields = fields("exported", &[("spans", "3")]);
        assert!(record(&fields).logfmt().ends_with(" msg=\"exported\" spans=\"3\"\n"));
    }

    #[test]
    fn json_lines_carry_the_same_fields_on_one_line() {
        let fields = fields("two\nlines", &[("spans", "3"), ("msg", "not the message")]);
        let line = record(&fields).json();
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["level"], "warn");
        assert_eq!(value["thread"], "corelay-w0");
        assert_eq!(value["target"], "corelay::x");
        assert_eq!(value["msg"], "two\nlines");
        assert_eq!(value["spans"], "3");
    }

    #[test]
    fn directives_set_levels_per_module() {
        let targets = parse_directives("info,corelay::upstream=debug").unwrap();
        assert!(targets.would_enable("corelay::upstream::pool", &Level::DEBUG));
        assert!(!targets.would_enable("corelay::proxy", &Level::DEBUG));
        assert!(targets.would_enable("corelay::proxy", &Level::INFO));
        assert!(parse_directives("corelay=loud").is_err());
        assert_eq!(Format::parse("JSON"), Some(Format::Json));
        assert_eq!(Format::parse("xml"), None);
    }
}

//! A small `log` backend: one logfmt line per record on stderr (journald-friendly), level from
//! `CORELAY_LOG` (error, warn, info, debug, trace; default info).
//!
//! Log lines are written with one `write` call each so lines from different threads never interleave.
//! Callers must not put secrets in messages; nothing here can tell a secret from other text.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(SystemTime::now(), record.level(), record.target(), &record.args().to_string());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls are ignored (tests start many gateways).
pub fn init() {
    let level = std::env::var("CORELAY_LOG").ok().and_then(|v| v.parse().ok()).unwrap_or(LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

fn format_line(now: SystemTime, level: Level, target: &str, message: &str) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let thread = std::thread::current();
    format!(
        "ts={} level={} thread={} target={} msg={}\n",
        rfc3339_utc(since_epoch.as_secs(), since_epoch.subsec_millis()),
        level.as_str().to_ascii_lowercase(),
        thread.name().unwrap_or("-"),
        target,
        quote(message),
    )
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
fn rfc3339_utc(secs: u64, millis: u32) -> String {
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

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339_utc(1_795_653_000, 999), "2026-11-26T00:30:00.999Z");
    }

    #[test]
    fn lines_are_single_logfmt_records() {
        let line = format_line(UNIX_EPOCH, Level::Warn, "corelay::x", "bad \"thing\"\nhere");
        assert!(line.starts_with("ts=1970-01-01T00:00:00.000Z level=warn thread="));
        assert!(line.ends_with(" target=corelay::x msg=\"bad \\\"thing\\\"\\nhere\"\n"));
        assert_eq!(line.matches('\n').count(), 1);
    }
}

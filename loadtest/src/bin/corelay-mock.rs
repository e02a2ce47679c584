//! `corelay-mock`: the mock provider as a standalone server for benchmarks. Owns only argument
//! parsing (by hand, to keep dependencies down) and the process lifetime; all serving is the
//! library's. Runs until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use loadtest::{Fault, Framing, MockConfig, MockOptions, MockProvider, Reply};

const USAGE: &str = "\
usage: corelay-mock [options]

Mock OpenAI-compatible provider (POST .../chat/completions, POST .../embeddings, GET .../models).
Prints `listening on http://ADDR/v1` once ready, then serves until killed.

options:
  --listen ADDR            address to bind (default 127.0.0.1:0)
  --workers N              runtime threads sharing the port via SO_REUSEPORT (default 1)
  --events N               content chunks per stream (default 5)
  --first-event-ms N       delay before the first SSE event / non-stream head (default 0)
  --gap-ms N               delay between SSE events (default 0)
  --content-bytes N        assistant text size of generated replies (default 64)
  --framing F              auto | chunked | content-length | close (default auto)
  --fault SPEC             none | status:CODE[:RETRY_AFTER_S] | reset-before-headers |
                           close-before-headers | reset-after:N | stall-after:N |
                           malformed-after:N | missing-final | error-first
  --replay-sse FILE        replay FILE verbatim as the body of every streaming reply
  --replay-json FILE       replay FILE verbatim as the body of every non-streaming reply
  --replay-piece-bytes N   write replayed bytes N at a time, each piece one chunk when chunked
                           (default 0: one SSE event, or the whole JSON body, at a time)
  --help                   print this help
";

struct Args {
    config: MockConfig,
    options: MockOptions,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("corelay-mock: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockProvider::start_with(args.config, args.options) {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("corelay-mock: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", mock.base_url());
    // A benchmark script waits for this line through a pipe, where stdout is block-buffered.
    let _ = std::io::stdout().flush();
    // Serve until killed; park may wake spuriously, hence the loop.
    loop {
        std::thread::park();
    }
}

/// `Ok(None)` asks for the help text.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut config = MockConfig::default();
    // A benchmark sends millions of requests: keeping them all would only eat memory.
    let mut options = MockOptions { record_requests: false, ..MockOptions::default() };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => options.listen = parse::<SocketAddr>(&flag, &value)?,
            "--workers" => options.workers = parse(&flag, &value)?,
            "--events" => config.events = parse(&flag, &value)?,
            "--first-event-ms" => config.first_event_delay = millis(&flag, &value)?,
            "--gap-ms" => config.event_gap = millis(&flag, &value)?,
            "--content-bytes" => config.content_bytes = parse(&flag, &value)?,
            "--framing" => config.framing = parse_framing(&value)?,
            "--fault" => config.fault = parse_fault(&value)?,
            "--replay-sse" => config.reply = Reply::Sse(read_file(&value)?),
            "--replay-json" => config.reply = Reply::Json(read_file(&value)?),
            "--replay-piece-bytes" => config.replay_piece_bytes = parse(&flag, &value)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.workers == 0 {
        return Err("--workers must be at least 1".to_owned());
    }
    Ok(Some(Args { config, options }))
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: invalid value {value:?}"))
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    parse(flag, value).map(Duration::from_millis)
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn parse_framing(value: &str) -> Result<Framing, String> {
    match value {
        "auto" => Ok(Framing::Auto),
        "chunked" => Ok(Framing::Chunked),
        "content-length" => Ok(Framing::ContentLength),
        "close" => Ok(Framing::CloseDelimited),
        _ => Err(format!("--framing: unknown framing {value:?}")),
    }
}

fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (name, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let count = || parse::<usize>("--fault", arg);
    match name {
        "none" => Ok(Fault::None),
        "reset-before-headers" => Ok(Fault::ResetBeforeHeaders),
        "close-before-headers" => Ok(Fault::CloseBeforeHeaders),
        "missing-final" => Ok(Fault::MissingFinalEvent),
        "error-first" => Ok(Fault::ErrorEventFirst),
        "reset-after" => count().map(Fault::ResetAfterEvents),
        "stall-after" => count().map(Fault::StallAfterEvents),
        "malformed-after" => count().map(Fault::MalformedEventAfter),
        "status" => parse_status_fault(arg),
        _ => Err(format!("--fault: unknown fault {spec:?}")),
    }
}

fn parse_status_fault(arg: &str) -> Result<Fault, String> {
    let (code, retry) = match arg.split_once(':') {
        Some((code, retry)) => (code, Some(parse("--fault status retry-after", retry)?)),
        None => (arg, None),
    };
    Ok(Fault::Status { code: parse("--fault status code", code)?, retry_after_s: retry, body: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))?.ok_or_else(|| "help".to_owned())
    }

    #[test]
    fn flags() {
        let args = run(&[
            "--listen",
            "127.0.0.1:9000",
            "--workers",
            "2",
            "--events",
            "7",
            "--first-event-ms",
            "5",
            "--fault",
            "status:429:3",
        ])
        .unwrap();
        assert_eq!(args.options.listen.port(), 9000);
        assert_eq!(args.options.workers, 2);
        assert_eq!(args.config.events, 7);
        assert_eq!(args.config.first_event_delay, Duration::from_millis(5));
        let expected = Fault::Status { code: 429, retry_after_s: Some(3), body: None };
        assert_eq!(args.config.fault, expected);
    }

    #[test]
    fn faults_and_errors() {
        assert_eq!(parse_fault("stall-after:2"), Ok(Fault::StallAfterEvents(2)));
        assert_eq!(parse_fault("missing-final"), Ok(Fault::MissingFinalEvent));
        assert!(parse_fault("reset-after:x").is_err());
        assert!(run(&["--events"]).is_err());
        assert!(run(&["--bogus", "1"]).is_err());
        assert!(run(&["--workers", "0"]).is_err());
        assert_eq!(run(&["--help"]).err().as_deref(), Some("help"));
    }
}

//! `corelay-load`: the load generator as a command. Owns only argument parsing (by hand, like
//! corelay-mock) and output (the table on stdout, the `--json` file); running the load is
//! `loadtest::load`'s.

use std::process::ExitCode;
use std::time::Duration;

use loadtest::load::{LoadConfig, Method, Pace, run};

const USAGE: &str = "\
usage: corelay-load [options]

Sends OpenAI chat completions (or GETs) to one URL over keep-alive HTTP/1.1 connections and
prints latency percentiles (HDR histograms, milliseconds).

options:
  --url URL            http://host[:port]/path (default http://127.0.0.1:8080/v1/chat/completions)
  --method M           POST (a chat completion) or GET (default POST)
  --model M            model of the chat completion (default bench/chat)
  --stream             ask for \"stream\": true and time the SSE events
  --body-bytes N       pad the user message so the JSON body is N bytes (default 1024)
  --header 'N: V'      extra request header (repeatable), e.g. 'Authorization: Bearer KEY'
  --connections C      connections in total: the concurrency, or its cap with --rate (default 10)
  --rate R             open loop: R requests/s in total, latency counted from each scheduled
                       start (default: closed loop, each connection sends as soon as it is free)
  --threads N          worker threads, each with its share of connections and rate (default 1)
  --duration SECS      stop starting requests after SECS (default 10; 0 = no limit, needs --requests)
  --requests N         stop after N measured requests (whichever of duration and N comes first)
  --warmup SECS        run this long first and discard the results (default 0)
  --timeout SECS       per-request limit for connect + response (default 30)
  --json FILE          also write the report as JSON to FILE
  --quiet              no progress line on stderr
  --help               print this help
";

struct Args {
    config: LoadConfig,
    json: Option<String>,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("corelay-load: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = match run(&args.config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("corelay-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = args.json
        && let Err(e) = std::fs::write(&path, report.to_json() + "\n")
    {
        eprintln!("corelay-load: cannot write {path}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `Ok(None)` asks for the help text.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut config = LoadConfig { progress: true, ..LoadConfig::default() };
    let mut json = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--stream" => config.stream = true,
            "--quiet" => config.progress = false,
            _ => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                apply(&mut config, &mut json, &flag, value)?;
            }
        }
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(Some(Args { config, json }))
}

fn apply(config: &mut LoadConfig, json: &mut Option<String>, flag: &str, value: String) -> Result<(), String> {
    match flag {
        "--url" => config.url = value,
        "--method" => config.method = parse_method(&value)?,
        "--model" => config.model = value,
        "--body-bytes" => config.body_bytes = parse(flag, &value)?,
        "--header" => config.headers.push(parse_header(&value)?),
        "--connections" => config.connections = parse(flag, &value)?,
        "--rate" => config.pace = Pace::Open { rate: parse(flag, &value)? },
        "--threads" => config.threads = parse(flag, &value)?,
        "--duration" => config.duration = Some(seconds(flag, &value)?).filter(|d| !d.is_zero()),
        "--requests" => config.requests = Some(parse(flag, &value)?),
        "--warmup" => config.warmup = seconds(flag, &value)?,
        "--timeout" => config.timeout = seconds(flag, &value)?,
        "--json" => *json = Some(value),
        _ => return Err(format!("unknown option {flag}")),
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: invalid value {value:?}"))
}

/// Fractional seconds, e.g. `0.5`.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = parse(flag, value)?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{flag}: invalid duration {value:?}"))
}

fn parse_method(value: &str) -> Result<Method, String> {
    match value.to_ascii_uppercase().as_str() {
        "POST" => Ok(Method::Post),
        "GET" => Ok(Method::Get),
        _ => Err(format!("--method: {value:?} is not POST or GET")),
    }
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, val) = value.split_once(':').ok_or_else(|| format!("--header: {value:?} is not 'Name: value'"))?;
    Ok((name.trim().to_owned(), val.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))?.ok_or_else(|| "help".to_owned())
    }

    #[test]
    fn flags() {
        let args = run_args(&[
            "--url",
            "http://127.0.0.1:9/v1/chat/completions",
            "--stream",
            "--rate",
            "250.5",
            "--connections",
            "4",
            "--threads",
            "2",
            "--header",
            "Authorization: Bearer k",
            "--duration",
            "0",
            "--requests",
            "100",
            "--warmup",
            "0.5",
            "--json",
            "out.json",
            "--quiet",
        ])
        .unwrap();
        let c = &args.config;
        assert!(c.stream && !c.progress);
        assert_eq!(c.pace, Pace::Open { rate: 250.5 });
        assert_eq!((c.connections, c.threads, c.duration, c.requests), (4, 2, None, Some(100)));
        assert_eq!(c.warmup, Duration::from_millis(500));
        assert_eq!(c.headers, vec![("Authorization".to_owned(), "Bearer k".to_owned())]);
        assert_eq!(args.json.as_deref(), Some("out.json"));
    }

    #[test]
    fn errors() {
        assert!(run_args(&["--connections"]).is_err());
        assert!(run_args(&["--bogus", "1"]).is_err());
        assert!(run_args(&["--method", "PUT"]).is_err());
        assert!(run_args(&["--header", "no colon"]).is_err());
        assert!(run_args(&["--duration", "0"]).is_err(), "unbounded run");
        assert!(run_args(&["--timeout", "-1"]).is_err());
        assert_eq!(run_args(&["--help"]).err().as_deref(), Some("help"));
    }
}

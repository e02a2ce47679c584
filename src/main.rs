//! The `corelay` command line: run the gateway, or check a config file. All real work is in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use corelay::config::{self, HostLookup};
use corelay::runtime::Gateway;
use corelay::signals::{self, Signal};

/// mimalloc when built with `--features mimalloc`: per-thread free lists suit one event loop per
/// core and cut instructions per request by about 4%, but it kept about 3x the resident memory per
/// open stream (124 KiB against 42 KiB, 400 slow streams), and many open streams are the load a
/// gateway in front of LLMs carries; so glibc's malloc is the default (README, "Performance").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
corelay: a thread-per-core AI gateway

USAGE:
    corelay --config FILE           run the gateway
    corelay check --config FILE     validate FILE (syntax, keys, environment, DNS) and exit,
                                    listing every problem at once
    corelay check --offline --config FILE
                                    the same without DNS lookups of provider hosts
    corelay keys ...                manage virtual keys kept in Redis (see below)
    corelay --version | --help

ENVIRONMENT:
    CORELAY_LOG                     error | warn | info (default) | debug | trace
    MONOIO_FORCE_LEGACY_DRIVER=1    use epoll instead of io_uring
";

enum Command {
    Run(PathBuf),
    Check { path: PathBuf, lookup: HostLookup },
    Help,
    Version,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut check = false;
    let mut offline = false;
    let mut config = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "check" if !check && config.is_none() => check = true,
            "--offline" if check => offline = true,
            "--config" | "-c" => {
                let path = iter.next().ok_or("--config needs a FILE")?;
                config = Some(PathBuf::from(path));
            }
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    let config = config.ok_or("--config FILE is required")?;
    if !check {
        return Ok(Command::Run(config));
    }
    let lookup = if offline { HostLookup::Skip } else { HostLookup::Dns };
    Ok(Command::Check { path: config, lookup })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "keys") {
        return keys(&args[1..]);
    }
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("corelay: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("corelay {} (commit {})", env!("CARGO_PKG_VERSION"), env!("CORELAY_COMMIT"));
            ExitCode::SUCCESS
        }
        Command::Check { path, lookup } => check(&path, lookup),
        Command::Run(path) => run(&path),
    }
}

/// `corelay keys ...`: virtual keys in Redis (`corelay::governance::cli`).
fn keys(args: &[String]) -> ExitCode {
    match corelay::governance::cli::run(args) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("corelay: {why}\n\nUSAGE:\n{}", corelay::governance::cli::USAGE);
            ExitCode::from(2)
        }
    }
}

/// `corelay check`: every problem in the file and its environment at once, DNS failures said to be
/// DNS failures, exit 1 when there is any.
fn check(path: &Path, lookup: HostLookup) -> ExitCode {
    match config::load_resolved_with(path, lookup) {
        Ok(resolved) => {
            let c = &resolved.config;
            let skipped = if lookup == HostLookup::Skip { "; provider hosts not looked up (--offline)" } else { "" };
            println!(
                "{}: ok ({} providers, {} models, {} keys, {} workers){skipped}",
                path.display(),
                c.providers.len(),
                c.models.len(),
                c.keys.len(),
                c.worker_count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            let dns = e.issues.iter().filter(|issue| config::resolve::is_dns_failure(issue)).count();
            if dns > 0 {
                eprintln!(
                    "{dns} of these are failed DNS lookups, not mistakes in the file: check the host names and \
                     this machine's resolver, or run `corelay check --offline` to check everything else"
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path) -> ExitCode {
    corelay::logging::init();
    // Before any thread exists, so every thread inherits the mask and only `signals::wait` sees them.
    if let Err(e) = signals::block() {
        log::error!("cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let resolved = match config::load_resolved(path) {
        Ok(r) => r,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let log_config = &resolved.config.log;
    let format = log_config.format.as_deref().and_then(corelay::logging::Format::parse);
    if let Err(e) = corelay::logging::configure(log_config.level.as_deref(), format) {
        log::warn!("{e}");
    }
    let models = resolved.config.models.len();
    let grace = Duration::from_millis(resolved.config.server.shutdown_grace_ms);
    let gateway = match Gateway::start(resolved) {
        Ok(g) => g,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let drivers: Vec<&str> = gateway.drivers().iter().map(|d| d.name()).collect();
    log::info!(
        "corelay {} (commit {}) listening on http://{} with {} workers (drivers: {}), {models} models",
        env!("CARGO_PKG_VERSION"),
        env!("CORELAY_COMMIT"),
        gateway.local_addr(),
        drivers.len(),
        drivers.join(",")
    );
    serve_until_signalled(gateway, path, grace)
}

/// The main thread's job once the gateway runs: act on signals until told to stop.
fn serve_until_signalled(gateway: Gateway, path: &Path, mut grace: Duration) -> ExitCode {
    loop {
        match signals::wait() {
            Ok(Signal::Terminate(name)) => {
                log::info!("{name}: draining for up to {} ms; a second signal exits at once", grace.as_millis());
                std::thread::spawn(exit_on_second_signal);
                gateway.shutdown(grace);
                log::info!("stopped");
                return ExitCode::SUCCESS;
            }
            Ok(Signal::Reload) => match gateway.reload_from(path) {
                Ok(outcome) => {
                    grace = Duration::from_millis(outcome.shutdown_grace_ms);
                    log::info!("SIGHUP: config reloaded from {} (version {})", path.display(), outcome.version);
                    for change in outcome.needs_restart {
                        log::warn!("SIGHUP: {change} needs a restart; not applied");
                    }
                }
                Err(why) => log::error!("SIGHUP: reload failed, nothing changed: {why}"),
            },
            Err(e) => {
                log::error!("waiting for signals failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

fn exit_on_second_signal() {
    loop {
        match signals::wait() {
            Ok(Signal::Terminate(name)) => {
                log::warn!("{name} again: exiting without waiting for requests in flight");
                std::process::exit(130);
            }
            Ok(Signal::Reload) => log::warn!("SIGHUP ignored while shutting down"),
            Err(_) => return,
        }
    }
}

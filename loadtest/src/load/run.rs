//! Runs a `LoadConfig`: splits connections, rate and request count over the worker threads,
//! starts them together, prints the progress line while they run, and merges what they measured
//! into a `Report`. The per-thread work is `worker.rs`'s.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{LoadConfig, Method, Pace, Target, chat_body, request_bytes};
use super::report::{Report, RunFacts};
use super::schedule::Slots;
use super::stats::Recorder;
use super::worker::{Progress, StartLine, ThreadPlan, ThreadResult, run_thread};

/// Building a runtime takes milliseconds; this only catches a thread that never gets going.
const START_LIMIT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs the load described by `config` and returns what it measured. Blocks for the whole run.
pub fn run(config: &LoadConfig) -> io::Result<Report> {
    config.validate()?;
    let target = Target::resolve(&config.url)?;
    let request = request_bytes(config, &target);
    let body_bytes = match config.method {
        Method::Post => chat_body(&config.model, config.stream, config.body_bytes).len(),
        Method::Get => 0,
    };
    let start = Arc::new(StartLine::default());
    let progress = Arc::new(Progress::default());
    // Every thread holds a sender; the channel disconnects when the last thread is done.
    let (alive, all_done) = mpsc::channel::<()>();
    let mut handles = Vec::with_capacity(config.threads);
    for index in 0..config.threads {
        let plan = thread_plan(config, &target, &request, index);
        let (line, progress, alive) = (Arc::clone(&start), Arc::clone(&progress), alive.clone());
        let spawned = std::thread::Builder::new().name(format!("corelay-load-{index}")).spawn(move || {
            let result = run_thread(plan, &line, progress);
            drop(alive);
            result
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                start.abandon();
                let _ = join_all(handles);
                return Err(e);
            }
        }
    }
    drop(alive);
    let t0 = match start.start(config.threads, START_LIMIT) {
        Ok(t0) => t0,
        Err(e) => {
            let _ = join_all(handles);
            return Err(e);
        }
    };
    watch(config, t0, &progress, &all_done);
    let results = join_all(handles)?;
    Ok(merge(config, body_bytes, t0, &results))
}

/// Thread `index`'s share: connections and the request limit split as evenly as possible, and
/// every `threads`-th slot of the open-loop schedule.
fn thread_plan(config: &LoadConfig, target: &Target, request: &[u8], index: usize) -> ThreadPlan {
    let share = |total: u64| total / config.threads as u64 + u64::from((index as u64) < total % config.threads as u64);
    ThreadPlan {
        connections: share(config.connections as u64) as usize,
        slots: match config.pace {
            Pace::Closed => None,
            Pace::Open { rate } => Some(Slots::for_thread(rate, index, config.threads)),
        },
        limit: config.requests.map(share),
        warmup: config.warmup,
        duration: config.duration,
        addr: target.addr,
        request: request.to_vec(),
        stream: config.stream,
        timeout: config.timeout,
    }
}

/// Prints the progress line once a second until every thread is done (when asked to).
fn watch(config: &LoadConfig, t0: Instant, progress: &Progress, all_done: &mpsc::Receiver<()>) {
    let mut last = (t0, 0u64);
    // Ends when the threads do; each pass waits at most PROGRESS_EVERY.
    loop {
        match all_done.recv_timeout(PROGRESS_EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if !config.progress {
            continue;
        }
        let now = Instant::now();
        let completed = progress.completed.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let rate = (completed - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        let phase = if now < t0 + config.warmup { " (warmup)" } else { "" };
        let elapsed = now.duration_since(t0).as_secs_f64();
        let line = format!("[{elapsed:6.1}s] completed {completed}  errors {errors}  rate {rate:.0}/s{phase}\n");
        let _ = io::stderr().write_all(line.as_bytes());
        last = (now, completed);
    }
}

fn join_all(handles: Vec<JoinHandle<io::Result<ThreadResult>>>) -> io::Result<Vec<ThreadResult>> {
    let mut results = Vec::with_capacity(handles.len());
    let mut failure = None;
    // Join every thread before reporting the first failure, so none outlives the run.
    for handle in handles {
        match handle.join() {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(io::Error::other("a load thread panicked"))),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

fn merge(config: &LoadConfig, body_bytes: usize, t0: Instant, results: &[ThreadResult]) -> Report {
    let mut recorder = Recorder::new();
    for result in results {
        recorder.merge(&result.recorder);
    }
    let finished = results.iter().map(|r| r.finished).max().unwrap_or(t0);
    let facts = RunFacts {
        elapsed: finished.saturating_duration_since(t0 + config.warmup),
        unsent: results.iter().map(|r| r.unsent).sum(),
        driver: results.first().map_or("none", |r| r.driver),
    };
    Report::new(config, body_bytes, &recorder, facts)
}

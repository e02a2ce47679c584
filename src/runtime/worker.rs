//! One worker thread: pin, build the monoio runtime, build the core-local state, accept connections
//! until told to stop.

use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::{FusionDriver, RuntimeBuilder};

use crossbeam_channel::{Receiver, Sender};

use super::StopSignal;
use crate::config::ResolvedConfig;
use crate::health::HealthTable;
use crate::messages::{ToControl, WorkerCommand};
use crate::proxy::PreparedConfig;
use crate::proxy::WorkerContext;
use crate::proxy::lifecycle::Phase;
use crate::proxy::listener::Listener;
use crate::routing::{Routes, Snapshot};

/// The I/O driver a worker's runtime got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Uring,
    /// epoll: io_uring is unavailable (seccomp, `kernel.io_uring_disabled`) or
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` forced it.
    Epoll,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Uring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

pub struct WorkerSpec {
    pub id: usize,
    pub workers: usize,
    pub listener: TcpListener,
    /// This worker's share of the admin listener (`admin.listen`), when configured.
    pub admin_listener: Option<TcpListener>,
    pub config: Arc<ResolvedConfig>,
    pub stop: Arc<StopSignal>,
    /// Health deltas and reload replies to the control thread, sent with `try_send` (never blocks).
    pub to_control: Sender<ToControl>,
    /// Health tables and reload phases from the control thread, drained with `try_iter` on the tick.
    pub commands: Receiver<WorkerCommand>,
    /// Requests to the control thread (an admin reload).
    pub requests: Sender<crate::messages::ControlRequest>,
    pub access_log: Option<crate::metrics::access_log::AccessLog>,
    pub governor: crate::governance::Governor,
    /// Service-account access tokens fetched before the workers started.
    pub access_tokens: Vec<crate::credentials::vertex::AccessToken>,
    /// The request-history writer, when `[history]` is on.
    pub history: Option<crate::history::History>,
    /// The trace exporter, when tracing is on.
    pub telemetry: Option<crate::telemetry::Exporter>,
}

/// After the grace period, how long cut streams get to send their error event.
const ABORT_FLUSH: Duration = Duration::from_millis(500);

/// How often idle pooled connections are checked for expiry.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

type Ready = std::sync::mpsc::Sender<Result<(usize, Driver), (usize, String)>>;

/// The thread's body. Reports readiness (or the reason it could not start) on `ready`.
pub fn run(spec: WorkerSpec, ready: Ready) {
    let id = spec.id;
    let server = &spec.config.config.server;
    if server.pin_cores {
        pin(id);
    }
    let runtime = build_runtime(server.io_uring_entries);
    let mut runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err((id, format!("cannot build runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(serve(spec, ready));
}

/// The worker's runtime: io_uring with cooperative task running where the kernel has it (5.19+), so
/// a completion that arrives while the worker runs does not interrupt it; the worker collects it at
/// its next entry to the kernel, which every turn of its loop makes. Else the ring as it comes, or
/// epoll where io_uring is blocked.
fn build_runtime(
    entries: u32,
) -> std::io::Result<monoio::FusionRuntime<TimeDriverOf<monoio::IoUringDriver>, TimeDriverOf<monoio::LegacyDriver>>> {
    let cooperative = io_uring::IoUring::builder().setup_coop_taskrun().setup_taskrun_flag().clone();
    let built =
        RuntimeBuilder::<FusionDriver>::new().with_entries(entries).uring_builder(cooperative).enable_timer().build();
    match built {
        Ok(runtime) => Ok(runtime),
        Err(e) => {
            log::debug!("io_uring without cooperative task running: {e}");
            RuntimeBuilder::<FusionDriver>::new().with_entries(entries).enable_timer().build()
        }
    }
}

type TimeDriverOf<D> = monoio::time::TimeDriver<D>;

fn pin(id: usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let core = id % cores;
    match monoio::utils::bind_to_cpu_set([core]) {
        Ok(()) => log::debug!("worker {id} pinned to core {core}"),
        Err(e) => log::warn!("worker {id}: cannot pin to core {core}: {e:?}"),
    }
}

async fn serve(spec: WorkerSpec, ready: Ready) {
    let id = spec.id;
    let driver = if monoio::utils::is_legacy() { Driver::Epoll } else { Driver::Uring };
    let listener = match monoio::net::TcpListener::from_std(spec.listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err((id, format!("cannot adopt listener: {e}"))));
            return;
        }
    };
    let admin_listener = match spec.admin_listener.map(monoio::net::TcpListener::from_std).transpose() {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err((id, format!("cannot adopt the admin listener: {e}"))));
            return;
        }
    };
    let routes = Routes::build(&spec.config, crate::clock::unix_now());
    let health = HealthTable::new(routes.endpoint_count(), spec.workers);
    let snapshot = Snapshot::new(std::rc::Rc::new(routes), health);
    let cx = match WorkerContext::new(id, &spec.config, snapshot) {
        Ok(cx) => Rc::new(
            cx.with_control(spec.requests.clone())
                .with_access_log(spec.access_log.clone())
                .with_governor(spec.governor.clone())
                .with_history(spec.history.clone())
                .with_telemetry(spec.telemetry.clone()),
        ),
        Err(e) => {
            let _ = ready.send(Err((id, format!("cannot build TLS configuration: {e}"))));
            return;
        }
    };
    for token in &spec.access_tokens {
        cx.install_access_token(token);
    }
    log::info!("worker {id} serving with the {} driver", driver.name());
    let _ = ready.send(Ok((id, driver)));
    monoio::spawn(sweep_pool(Rc::clone(&cx), Arc::clone(&spec.stop)));
    let tick = Duration::from_millis(spec.config.config.health.tick_ms);
    let channels = (spec.to_control, spec.commands);
    monoio::spawn(control_tick(Rc::clone(&cx), channels, spec.workers, tick, Arc::clone(&spec.stop), driver));
    let max_open = spec.config.config.server.max_connections_per_core;
    let role = match admin_listener {
        Some(admin) => {
            monoio::spawn(serve_admin(Rc::clone(&cx), admin, Arc::clone(&spec.stop), max_open));
            Listener::Public
        }
        None => Listener::Both,
    };
    accept_loop(&cx, &listener, role, &spec.stop, max_open).await;
    close_listener(listener);
    log::info!("worker {id} stopped accepting; draining {} connection(s)", cx.lifecycle.open_connections());
    drain(&cx, spec.stop.grace()).await;
}

/// Stops listening now. Dropping a monoio listener closes it asynchronously, and under io_uring a
/// cancelled accept may still complete; `shutdown` on the listening socket takes it out of the
/// LISTEN state synchronously, so from here on new connections are refused.
fn close_listener(listener: monoio::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is owned by `listener`, which is alive for the duration of the call.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
    drop(listener);
}

/// Lets requests in flight finish within `grace`, then cuts what is left with in-band errors.
async fn drain(cx: &WorkerContext, grace: Duration) {
    cx.lifecycle.advance(Phase::Draining);
    let finished = monoio::select! {
        _ = cx.lifecycle.all_closed() => true,
        _ = monoio::time::sleep(grace) => false,
    };
    if !finished {
        log::warn!(
            "worker {}: grace period over; ending {} connection(s)",
            cx.worker_id,
            cx.lifecycle.open_connections()
        );
        cx.lifecycle.advance(Phase::Aborting);
        // Give the cut streams a moment to write their error event and close.
        monoio::select! {
            _ = cx.lifecycle.all_closed() => {},
            _ = monoio::time::sleep(ABORT_FLUSH) => {},
        }
    }
    log::info!("worker {} drained", cx.worker_id);
}

/// The admin listener's accept loop, beside the client one; it stops accepting on the same signal.
async fn serve_admin(
    cx: Rc<WorkerContext>,
    listener: monoio::net::TcpListener,
    stop: Arc<StopSignal>,
    max_open: usize,
) {
    accept_loop(&cx, &listener, Listener::Admin, &stop, max_open).await;
    close_listener(listener);
}

async fn accept_loop(
    cx: &Rc<WorkerContext>,
    listener: &monoio::net::TcpListener,
    role: Listener,
    stop: &StopSignal,
    max_open: usize,
) {
    let mut accept_errors = ErrorLogLimit::default();
    // Under epoll it did not need it, and its sockets taken this way were not served; a blocking
    // listener would block the worker on an empty queue.
    let batch = if monoio::utils::is_legacy() || !is_nonblocking(listener) { 0 } else { ACCEPT_BATCH };
    loop {
        // The stop branch is the only one that can cancel an accept (see STACK-NOTES on fd leaks).
        let accepted = monoio::select! {
            _ = stop.wait() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                admit(cx, stream, role, max_open);
                // io_uring completes one accept per turn of the loop, and with thousands of open
                // streams a turn is long: at 7,000 streams the queue drained at ~10 connections a
                // second and clients behind it started seconds late (loadtest/RESULTS.md). So the
                // connections already waiting are taken now, with plain non-blocking accepts.
                for _ in 0..batch {
                    let Some(stream) = accept_waiting(listener) else { break };
                    admit(cx, stream, role, max_open);
                }
            }
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning on a full descriptor table,
                // and say so once a second (with how many failed) rather than a hundred times.
                if let Some(failed) = accept_errors.note(std::time::Instant::now()) {
                    log::warn!("worker {}: accept failed ({failed} time(s) in the last second): {e}", cx.worker_id);
                }
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Connections taken from the queue after one accept completes, at most.
const ACCEPT_BATCH: usize = 256;

/// Whether the listening socket is non-blocking (`bind_reuseport` makes it so), so that
/// [`accept_waiting`] answers at once on an empty queue.
fn is_nonblocking(listener: &monoio::net::TcpListener) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL on a descriptor `listener` owns reads its flags and changes nothing.
    let flags = unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

/// Serves an accepted connection, or refuses it (503) when the core is at its limit.
fn admit(cx: &Rc<WorkerContext>, stream: monoio::net::TcpStream, role: Listener, max_open: usize) {
    if cx.lifecycle.open_connections() >= max_open {
        monoio::spawn(crate::proxy::connection::refuse(stream));
    } else {
        monoio::spawn(crate::clock::read_once_per_poll(crate::proxy::connection::serve(Rc::clone(cx), stream, role)));
    }
}

/// A connection already waiting in the listener's queue, without waiting for one (io_uring only):
/// the listening socket is non-blocking (`bind_reuseport`) and this worker's alone (`SO_REUSEPORT`),
/// so `accept4` answers at once. `None` when the queue is empty, or on an error the next ring accept
/// will meet and report. The new socket is blocking, as monoio's ring accept makes its own (a ring
/// read on a non-blocking socket may answer `EAGAIN` instead of waiting).
fn accept_waiting(listener: &monoio::net::TcpListener) -> Option<monoio::net::TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let flags = libc::SOCK_CLOEXEC;
    // SAFETY: a plain syscall on a descriptor `listener` owns; null address pointers are allowed.
    let fd = unsafe { libc::accept4(listener.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by accept4 and is owned by nothing else.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    monoio::net::TcpStream::from_std(stream).ok()
}

/// Lets one log line through per interval and counts the rest, for errors that repeat in bursts.
#[derive(Default)]
struct ErrorLogLimit {
    last_logged: Option<std::time::Instant>,
    since: u64,
}

impl ErrorLogLimit {
    const INTERVAL: Duration = Duration::from_secs(1);

    /// Counts one error; returns how many to report when a line is due.
    fn note(&mut self, now: std::time::Instant) -> Option<u64> {
        self.since += 1;
        let due = self.last_logged.is_none_or(|at| now.duration_since(at) >= Self::INTERVAL);
        if !due {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

async fn sweep_pool(cx: Rc<WorkerContext>, stop: Arc<StopSignal>) {
    while !stop.is_stopped() {
        monoio::time::sleep(POOL_SWEEP_INTERVAL).await;
        cx.pool.evict_expired();
    }
}

/// Every tick: send what this worker measured, act on reload phases, and route with the newest
/// health table received.
async fn control_tick(
    cx: Rc<WorkerContext>,
    (to_control, commands): (Sender<ToControl>, Receiver<WorkerCommand>),
    workers: usize,
    tick: Duration,
    stop: Arc<StopSignal>,
    driver: Driver,
) {
    let mut prepared: Option<PreparedConfig> = None;
    while !stop.is_stopped() {
        monoio::time::sleep(tick).await;
        let applied = cx.snapshot().health.version;
        // A full channel means the control thread is behind; this delta is dropped, not waited for.
        let _ = to_control.try_send(ToControl::Report(cx.health.take_report(applied)));
        let pool = cx.pool.counters();
        let open = cx.lifecycle.open_connections() as u64;
        let metrics = cx.metrics.take_delta(open, pool, driver.name());
        let _ = to_control.try_send(ToControl::Metrics(Box::new(metrics)));
        let mut latest: Option<Arc<HealthTable>> = None;
        for command in commands.try_iter() {
            match command {
                WorkerCommand::Health(table) => latest = Some(table),
                WorkerCommand::Metrics { text, stats } => cx.set_metrics_text(text, stats),
                WorkerCommand::AccessToken(token) => cx.install_access_token(&token),
                WorkerCommand::Prepare { version, config, workers: count } => {
                    let result = cx.prepare(version, &config, count.max(workers));
                    let reply = result.as_ref().map(|_| ()).map_err(String::clone);
                    prepared = result.ok();
                    let _ = to_control.try_send(ToControl::Prepared { worker: cx.worker_id, version, result: reply });
                }
                WorkerCommand::Commit { version } => {
                    if let Some(next) = prepared.take_if(|p| p.version == version) {
                        cx.commit(next);
                        log::info!("worker {} switched to config version {version}", cx.worker_id);
                        let _ = to_control.try_send(ToControl::Committed { worker: cx.worker_id, version });
                    }
                }
                WorkerCommand::Abort { version } => {
                    prepared.take_if(|p| p.version == version);
                }
            }
        }
        if let Some(table) = latest {
            cx.install_health((*table).clone());
        }
    }
}

#[cfg(test)]
mod log_limit_tests {
    use super::*;

    #[test]
    fn a_burst_of_errors_logs_one_line_a_second_with_the_count() {
        let start = std::time::Instant::now();
        let mut limit = ErrorLogLimit::default();
        let logged: Vec<(u64, Option<u64>)> = (0..300u64)
            .map(|ms| (ms * 10, limit.note(start + Duration::from_millis(ms * 10))))
            .filter(|(_, line)| line.is_some())
            .collect();
        // 3 s of errors every 10 ms: lines at 0, 1 and 2 s, the first for 1 error, then 100 each.
        assert_eq!(logged, [(0, Some(1)), (1000, Some(100)), (2000, Some(100))]);
    }
}

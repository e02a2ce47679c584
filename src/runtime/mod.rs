//! The supervisor and the workers: one thread per configured core, each with its own monoio runtime
//! (io_uring, falling back to epoll), its own `SO_REUSEPORT` listener, its own upstream pool and its
//! own routing snapshot.
//!
//! The supervisor (the caller's thread, later the control thread) binds the listeners, so bind errors
//! surface before any worker starts and port 0 resolves to one port shared by all workers. It never
//! touches a worker's state; it can only ask workers to stop.

mod control;
pub mod limits;
mod stop;
mod tokens;
mod worker;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use socket2::{Domain, Protocol, Socket, Type};

pub use control::HealthHub;
pub use stop::StopSignal;
pub use worker::Driver;

use crate::config::ResolvedConfig;
use crate::health::HealthTable;
use crate::health::aggregator::Aggregator;
use crate::messages::{ControlRequest, ReloadOutcome, ToControl, WorkerCommand};
use crate::routing::Routes;

/// What went wrong starting the gateway.
#[derive(Debug)]
pub enum StartError {
    Bind(SocketAddr, io::Error),
    Worker(usize, String),
    Control(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Worker(id, why) => write!(f, "worker {id} failed to start: {why}"),
            StartError::Control(why) => write!(f, "control thread failed to start: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running gateway. Dropping it stops the workers and waits for them.
pub struct Gateway {
    addr: SocketAddr,
    /// The admin endpoints' own listener (`admin.listen`), when configured.
    admin_addr: Option<SocketAddr>,
    drivers: Vec<Driver>,
    stop: Arc<StopSignal>,
    workers: Vec<JoinHandle<()>>,
    control: Option<JoinHandle<()>>,
    hub: Arc<HealthHub>,
    requests: crossbeam_channel::Sender<ControlRequest>,
    access_log: Option<(crate::metrics::access_log::AccessLog, JoinHandle<()>)>,
    /// Virtual keys and their limits; shut down (state file written, Redis owed flushed) last.
    governor: crate::governance::Governor,
    /// The routes as every worker built them at start, for naming endpoints from outside.
    routes: Routes,
    /// The request-history writer, when `[history]` is on; stopped after the workers.
    history: Option<(crate::history::History, JoinHandle<()>)>,
    /// The OTLP trace exporter's thread, when `[tracing] otlp_endpoint` is set.
    telemetry: Option<(crate::telemetry::Exporter, JoinHandle<()>)>,
}

impl Gateway {
    /// Binds, starts every worker, and returns once all of them serve.
    pub fn start(config: ResolvedConfig) -> Result<Gateway, StartError> {
        let config = Arc::new(config);
        let count = config.config.worker_count();
        let needed = limits::descriptors_needed(count, config.config.server.max_connections_per_core);
        if let Some(warning) = limits::ensure_descriptors(needed) {
            log::warn!("{warning}");
        }
        let listeners = bind_listeners(config.config.listen_addr(), count)?;
        let addr = listeners[0].local_addr().map_err(|e| StartError::Bind(config.config.listen_addr(), e))?;
        let (mut admin_listeners, admin_addr) = bind_admin_listeners(&config, count)?;
        let stop = Arc::new(StopSignal::new());
        let target = crate::metrics::access_log::Target::parse(&config.config.log.access);
        let access_log = crate::metrics::access_log::start(target)
            .map_err(|e| StartError::Control(format!("cannot open the access log: {e}")))?;
        let log_handle = access_log.as_ref().map(|(log, _)| log.clone());
        let history = start_history(&config)?;
        let history_handle = history.as_ref().map(|(history, _)| history.clone());
        let telemetry = crate::telemetry::start(&config.config.tracing)
            .map_err(|e| StartError::Control(format!("cannot start the trace exporter: {e}")))?;
        let exporter = telemetry.as_ref().map(|(exporter, _)| exporter.clone());
        let governor = crate::governance::Governor::start(&config)
            .map_err(|e| StartError::Control(format!("cannot start governance: {e}")))?;
        // Before any worker serves, so Vertex service accounts work from the first request.
        let (access_tokens, token_schedule) = tokens::first_round(tokens::accounts(&config));
        let routes = Routes::build(&config, 0);
        let endpoints = routes.endpoint_count();
        let hub = Arc::new(HealthHub::new(count, HealthTable::new(endpoints, count)));
        let (report_tx, report_rx) = crossbeam_channel::bounded(1024);
        let (requests, request_rx) = crossbeam_channel::unbounded();
        let mut command_txs = Vec::with_capacity(count);
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut workers = Vec::with_capacity(count);
        for (id, listener) in listeners.into_iter().enumerate() {
            let (command_tx, command_rx) = crossbeam_channel::unbounded();
            command_txs.push(command_tx);
            let spec = worker::WorkerSpec {
                id,
                workers: count,
                listener,
                admin_listener: admin_listeners.pop(),
                config: Arc::clone(&config),
                stop: Arc::clone(&stop),
                to_control: report_tx.clone(),
                commands: command_rx,
                requests: requests.clone(),
                access_log: log_handle.clone(),
                governor: governor.clone(),
                access_tokens: access_tokens.clone(),
                history: history_handle.clone(),
                telemetry: exporter.clone(),
            };
            let ready = ready_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("corelay-w{id}"))
                .spawn(move || worker::run(spec, ready))
                .map_err(|e| StartError::Worker(id, e.to_string()))?;
            workers.push(handle);
        }
        drop(ready_tx);
        let (token_reloads, reloads) = crossbeam_channel::unbounded();
        for report in tokens::first_round_reports(&access_tokens, &token_schedule) {
            let _ = report_tx.try_send(report);
        }
        let refresher = tokens::Refresher {
            tracked: token_schedule,
            workers: command_txs.clone(),
            // The last sender besides the workers': the control loop ends on the stop signal.
            to_control: report_tx,
            reloads,
        };
        // Not joined: it ends when the control thread drops `token_reloads`, and a fetch in flight
        // then must not hold up shutdown.
        std::thread::Builder::new()
            .name("corelay-tokens".into())
            .spawn(move || refresher.run())
            .map_err(|e| StartError::Control(format!("cannot start the token refresher: {e}")))?;
        let channels =
            ControlChannels { from_workers: report_rx, workers: command_txs, requests: request_rx, token_reloads };
        let control =
            spawn_control(&config, &routes, channels, &hub, &stop, (log_handle, governor.clone(), history_handle))?;
        let mut gateway = Gateway {
            addr,
            admin_addr,
            drivers: vec![Driver::Uring; count],
            stop,
            workers,
            control: Some(control),
            hub,
            requests,
            access_log,
            governor,
            routes,
            history,
            telemetry,
        };
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok((id, driver))) => gateway.drivers[id] = driver,
                Ok(Err((id, why))) => return Err(StartError::Worker(id, why)),
                Err(_) => return Err(StartError::Worker(count, "exited before reporting".into())),
            }
        }
        Ok(gateway)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics`, `/v1/stats`, `/dashboard` and `/admin/*` are served when `admin.listen` is
    /// set (then only there); `None` when they share the client listener.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The I/O driver each worker ended up with, by worker id.
    pub fn drivers(&self) -> &[Driver] {
        &self.drivers
    }

    /// A handle that can stop this gateway from another thread (a signal handler).
    pub fn stop_signal(&self) -> Arc<StopSignal> {
        Arc::clone(&self.stop)
    }

    /// The latest health table and a way to wait until every worker routes with a given one.
    pub fn health(&self) -> &HealthHub {
        &self.hub
    }

    /// The health table index of a (provider, provider model) endpoint.
    pub fn endpoint_id(&self, provider: &str, model: &str) -> Option<usize> {
        self.routes.endpoint_id(provider, model)
    }

    /// Re-reads the config file at `path` and switches every worker to it, or changes nothing and
    /// says why (with the file, line and key for config errors). Blocks until decided.
    pub fn reload_from(&self, path: &std::path::Path) -> Result<ReloadOutcome, String> {
        let (reply, outcome) = mpsc::channel();
        self.requests
            .send(ControlRequest::Reload { path: Some(path.to_path_buf()), reply })
            .map_err(|_| "the control thread is gone".to_string())?;
        outcome.recv().map_err(|_| "the control thread is gone".to_string())?
    }

    /// Blocks until every worker has exited.
    pub fn wait(mut self) {
        self.join_all();
    }

    /// Graceful stop: every worker stops accepting, lets requests and streams in flight finish
    /// within `grace` (then ends the rest with in-band errors), and exits. Blocks until done.
    pub fn shutdown(mut self, grace: std::time::Duration) {
        self.stop.stop_with_grace(grace);
        self.join_all();
    }

    fn join_all(&mut self) {
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
        // The control loop ends on the stop signal (or once every sender of reports is gone).
        self.stop.stop();
        if let Some(control) = self.control.take() {
            let _ = control.join();
        }
        // Every record is queued by now (the workers and the control thread are gone): the writer
        // drains the queue and ends. Not waiting for the last handle to drop: one kept alive by
        // anything (a task the runtime never dropped) hung SIGTERM forever.
        if let Some((log, writer)) = self.access_log.take() {
            log.stop();
            let _ = writer.join();
        }
        // Likewise for the history: every row is queued; the writer commits them and ends.
        if let Some((history, writer)) = self.history.take() {
            history.stop();
            let _ = writer.join();
        }
        // Likewise for traces: the exporter sends what is queued (bounded by its export timeout).
        if let Some((exporter, thread)) = self.telemetry.take() {
            exporter.stop();
            let _ = thread.join();
            let counters = exporter.counters();
            let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                exported_spans = load(&counters.exported_spans),
                failed_spans = load(&counters.failed_spans),
                dropped_calls = load(&counters.dropped_calls),
                "trace export ended"
            );
        }
        // No request is left to settle: the state file (or what Redis is owed) is complete.
        self.governor.shutdown();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.stop();
        self.join_all();
    }
}

/// Opens the request history when `[history]` is on (its path, or systemd's state directory).
fn start_history(config: &ResolvedConfig) -> Result<Option<(crate::history::History, JoinHandle<()>)>, StartError> {
    let state_directory = std::env::var("STATE_DIRECTORY").ok();
    let Some(path) = config.config.history.file(state_directory.as_deref()) else { return Ok(None) };
    let settings = crate::history::Settings { path, retention: config.config.history.retention() };
    log::info!("request history in {} (kept {} days)", settings.path.display(), config.config.history.retention_days);
    crate::history::start(settings)
        .map(Some)
        .map_err(|e| StartError::Control(format!("cannot open the request history: {e}")))
}

struct ControlChannels {
    from_workers: crossbeam_channel::Receiver<ToControl>,
    workers: Vec<crossbeam_channel::Sender<WorkerCommand>>,
    requests: crossbeam_channel::Receiver<ControlRequest>,
    /// The service accounts of each newly committed config, to the token refresher.
    token_reloads: crossbeam_channel::Sender<Vec<tokens::Account>>,
}

fn spawn_control(
    config: &Arc<ResolvedConfig>,
    routes: &Routes,
    channels: ControlChannels,
    hub: &Arc<HealthHub>,
    stop: &Arc<StopSignal>,
    (access_log, governor, history): (
        Option<crate::metrics::access_log::AccessLog>,
        crate::governance::Governor,
        Option<crate::history::History>,
    ),
) -> Result<JoinHandle<()>, StartError> {
    let h = &config.config.health;
    let ms = std::time::Duration::from_millis;
    let workers = channels.workers.len();
    let policy = control::ejection_policy(&config.config);
    let control = control::ControlLoop {
        config: Arc::clone(config),
        aggregator: Aggregator::new(routes.endpoint_count(), workers, ms(h.window_ms), policy),
        endpoint_keys: routes.endpoint_keys().to_vec(),
        routes_version: 0,
        from_workers: channels.from_workers,
        workers: channels.workers,
        requests: channels.requests,
        token_reloads: channels.token_reloads,
        hub: Arc::clone(hub),
        tick: ms(h.tick_ms),
        stop: Arc::clone(stop),
        registry: crate::metrics::registry::Registry::new(workers),
        timeline: crate::metrics::timeline::Timeline::default(),
        stats: (0, Arc::from("{\"seconds\":[],\"health\":null}")),
        access_log,
        governor,
        history,
    };
    std::thread::Builder::new()
        .name("corelay-control".into())
        .spawn(move || control.run())
        .map_err(|e| StartError::Control(e.to_string()))
}

/// The admin listeners (one per worker, like the client's) and their address, when `admin.listen`
/// is set. Popped from the back by the workers; all share one address, so the order is immaterial.
fn bind_admin_listeners(
    config: &ResolvedConfig,
    count: usize,
) -> Result<(Vec<TcpListener>, Option<SocketAddr>), StartError> {
    let Some(addr) = config.config.admin_listen_addr() else { return Ok((Vec::new(), None)) };
    let listeners = bind_listeners(addr, count)?;
    let bound = listeners[0].local_addr().map_err(|e| StartError::Bind(addr, e))?;
    log::info!("admin endpoints (/metrics, /v1/stats, /dashboard, /admin/*) on http://{bound}");
    Ok((listeners, Some(bound)))
}

/// One listener per worker on the same address with `SO_REUSEPORT`, so the kernel spreads new
/// connections across cores. With port 0 the first bind picks the port and the rest join it.
fn bind_listeners(addr: SocketAddr, count: usize) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(count);
    let mut bind_addr = addr;
    for _ in 0..count {
        let listener = bind_reuseport(bind_addr).map_err(|e| StartError::Bind(bind_addr, e))?;
        if let Some(first) = listeners.first() {
            debug_assert_eq!(first.local_addr().ok(), listener.local_addr().ok());
        } else {
            bind_addr = listener.local_addr().map_err(|e| StartError::Bind(addr, e))?;
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Pending connections per listener, capped by the kernel's somaxconn. Deep, because a gateway
/// meets connection storms (clients reconnecting after a deploy): with 1024, 10,000 streams opened
/// at once through one worker overflowed the queue and a few hundred clients were reset.
const LISTEN_BACKLOG: i32 = 8192;

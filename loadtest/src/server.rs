//! The mock's runtime threads: one monoio runtime per worker, each with its own listener
//! (sharing the port through SO_REUSEPORT when there are several), an accept loop, one task per
//! connection, and an orderly stop. Owns threads and listeners; what a connection does is
//! `conn.rs`'s business.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio_rustls::TlsAcceptor;
use rustls::ServerConfig;

use crate::conn::Conn;
use crate::shutdown::{LiveConns, LiveGuard, Stop, until_stopped};
use crate::state::Shared;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Everything a worker thread needs.
#[derive(Clone)]
pub(crate) struct WorkerEnv {
    pub shared: Arc<Shared>,
    pub stop: Arc<Stop>,
    pub tls: Option<Arc<ServerConfig>>,
}

/// Starts `workers` runtime threads listening on `listen`; returns the bound address. On error
/// the threads already started are stopped and joined.
pub(crate) fn start_workers(
    listen: SocketAddr,
    workers: usize,
    env: &WorkerEnv,
) -> io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let reuse_port = workers > 1;
    // The first worker resolves port 0; the others bind the port it got.
    let (addr, first) = spawn_worker(0, listen, reuse_port, env.clone())?;
    let mut threads = vec![first];
    for index in 1..workers {
        match spawn_worker(index, addr, reuse_port, env.clone()) {
            Ok((_, thread)) => threads.push(thread),
            Err(e) => {
                stop_workers(&env.stop, threads);
                return Err(e);
            }
        }
    }
    Ok((addr, threads))
}

/// Signals every worker and waits for their threads to end.
pub(crate) fn stop_workers(stop: &Stop, threads: Vec<JoinHandle<()>>) {
    stop.trigger();
    for thread in threads {
        // A worker that panicked has nothing left to clean up.
        let _ = thread.join();
    }
}

fn spawn_worker(
    index: usize,
    listen: SocketAddr,
    reuse_port: bool,
    env: WorkerEnv,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(format!("corelay-mock-{index}"))
        .spawn(move || run_worker(listen, reuse_port, env, ready_tx))?;
    match ready_rx.recv() {
        Ok(Ok(addr)) => Ok((addr, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("mock worker thread died while starting"))
        }
    }
}

type Ready = mpsc::Sender<io::Result<SocketAddr>>;

fn run_worker(listen: SocketAddr, reuse_port: bool, env: WorkerEnv, ready: Ready) {
    let runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
    let mut runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(serve(listen, reuse_port, env, ready));
}

/// Pending connections the mock's listener holds.
const MOCK_BACKLOG: i32 = 8192;

async fn serve(listen: SocketAddr, reuse_port: bool, env: WorkerEnv, ready: Ready) {
    // Bound inside the runtime: monoio registers the socket with this thread's driver.
    // The kernel's cap (somaxconn) bounds it: a provider stand-in must take a burst of thousands of
    // connections (loadtest/streams opens them all at once) without dropping SYNs, or the gateway
    // under test sees connect timeouts that are the mock's.
    let opts = ListenerOpts::new().reuse_port(reuse_port).backlog(MOCK_BACKLOG);
    let bound =
        TcpListener::bind_with_config(listen, &opts).and_then(|listener| Ok((listener.local_addr()?, listener)));
    let listener = match bound {
        Ok((addr, listener)) => {
            let _ = ready.send(Ok(addr));
            listener
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let live = Rc::new(LiveConns::default());
    until_stopped(&env.stop, accept_loop(&listener, &env, &live)).await;
    drop(listener);
    // Every connection task saw the same stop signal; wait until each has closed its socket.
    live.all_closed().await;
}

async fn accept_loop(listener: &TcpListener, env: &WorkerEnv, live: &Rc<LiveConns>) {
    // Runs until the stop signal drops it.
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                monoio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let id = env.shared.next_connection_id();
        // Events are written one by one and must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        monoio::spawn(connection(stream, id, env.clone(), live.enter()));
    }
}

async fn connection(stream: TcpStream, id: u64, env: WorkerEnv, _live: LiveGuard) {
    let fd = stream.as_raw_fd();
    let shared = env.shared.clone();
    let tls = env.tls.clone();
    until_stopped(&env.stop, async move {
        match tls {
            None => Conn::new(stream, fd, id, shared).serve().await,
            Some(config) => {
                if let Ok(stream) = TlsAcceptor::from(config).accept(stream).await {
                    Conn::new(stream, fd, id, shared).serve().await;
                }
            }
        }
    })
    .await;
}

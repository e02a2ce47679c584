//! One worker thread of a load run: its own monoio runtime (FusionDriver, timer on), its share of
//! connections, each a task that claims a request from the thread's `Schedule`, waits until it is
//! due, runs the exchange and records the result. Splitting the run over threads and reporting
//! belong to `run.rs`.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use monoio::{FusionDriver, RuntimeBuilder};

use super::exchange::{Request, exchange};
use super::pacer::Pacer;
use super::schedule::{Schedule, Slots, Ticket};
use super::stats::{Failure, Recorder, StreamTiming};

/// What one thread is asked to do.
pub(crate) struct ThreadPlan {
    pub connections: usize,
    /// Open-loop slots; `None` for closed loop.
    pub slots: Option<Slots>,
    /// Measured requests this thread may send.
    pub limit: Option<u64>,
    pub warmup: Duration,
    pub duration: Option<Duration>,
    pub addr: std::net::SocketAddr,
    pub request: Vec<u8>,
    pub stream: bool,
    pub timeout: Duration,
}

pub(crate) struct ThreadResult {
    pub recorder: Recorder,
    pub unsent: u64,
    pub driver: &'static str,
    /// When the thread's last request finished.
    pub finished: Instant,
}

/// Counters every thread bumps for the once-a-second progress line (warmup included).
#[derive(Default)]
pub(crate) struct Progress {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

/// Starts every thread at one shared t0, taken only once every runtime is built (so early
/// open-loop slots are not missed), or releases them with nothing to do when the run is abandoned.
#[derive(Default)]
pub(crate) struct StartLine {
    gate: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Default)]
struct Gate {
    arrived: usize,
    /// `None` while undecided; `Some(None)` when abandoned.
    start: Option<Option<Instant>>,
}

impl StartLine {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker is ready; blocks until the run starts (`Some(t0)`) or is abandoned.
    fn arrive(&self) -> Option<Instant> {
        let mut gate = self.gate();
        gate.arrived += 1;
        self.changed.notify_all();
        let gate = self.changed.wait_while(gate, |g| g.start.is_none()).unwrap_or_else(PoisonError::into_inner);
        gate.start.flatten()
    }

    /// Waits (at most `limit`) for `threads` workers, then starts them all now.
    pub fn start(&self, threads: usize, limit: Duration) -> io::Result<Instant> {
        let gate = self.gate();
        let (mut gate, _) = self
            .changed
            .wait_timeout_while(gate, limit, |g| g.arrived < threads)
            .unwrap_or_else(PoisonError::into_inner);
        let ready = gate.arrived >= threads;
        let t0 = Instant::now();
        gate.start = Some(ready.then_some(t0));
        self.changed.notify_all();
        if ready { Ok(t0) } else { Err(io::Error::other("worker threads did not start in time")) }
    }

    /// Releases every waiting worker without running anything.
    pub fn abandon(&self) {
        self.gate().start = Some(None);
        self.changed.notify_all();
    }
}

/// Runs one thread's share of the load; blocks until its last request finished.
pub(crate) fn run_thread(plan: ThreadPlan, start: &StartLine, progress: Arc<Progress>) -> io::Result<ThreadResult> {
    let runtime = RuntimeBuilder::<FusionDriver>::new().enable_timer().build();
    // Arrive even when the runtime failed: the start line waits for every thread.
    let Some(t0) = start.arrive() else {
        return Err(io::Error::other("load run abandoned before it started"));
    };
    runtime?.block_on(drive(plan, t0, progress))
}

struct Ctx {
    schedule: Schedule,
    /// Open loop only.
    pacer: Option<Pacer>,
    request: Request,
    recorder: RefCell<Recorder>,
    progress: Arc<Progress>,
}

async fn drive(plan: ThreadPlan, t0: Instant, progress: Arc<Progress>) -> io::Result<ThreadResult> {
    let driver = if monoio::utils::is_legacy() { "epoll" } else { "io_uring" };
    let schedule = Schedule::new(t0, plan.warmup, plan.duration, plan.slots, plan.limit);
    let pacer = plan.slots.map(|slots| Pacer::start(slots, t0, schedule.deadline())).transpose()?;
    let ctx = Rc::new(Ctx {
        schedule,
        pacer,
        request: Request { addr: plan.addr, bytes: Rc::new(plan.request), stream: plan.stream, timeout: plan.timeout },
        recorder: RefCell::new(Recorder::new()),
        progress,
    });
    let tasks: Vec<_> = (0..plan.connections).map(|_| monoio::spawn(connection(Rc::clone(&ctx)))).collect();
    for task in tasks {
        task.await;
    }
    let finished = Instant::now();
    let recorder = ctx.recorder.replace(Recorder::new());
    Ok(ThreadResult { recorder, unsent: ctx.schedule.unsent(), driver, finished })
}

/// One connection's life: ends when the schedule has nothing left for it.
async fn connection(ctx: Rc<Ctx>) {
    let mut slot = None;
    let mut timing = StreamTiming::default();
    while let Some(ticket) = ctx.schedule.claim(Instant::now()) {
        if let Some(pacer) = &ctx.pacer {
            pacer.released(ticket.slot).await;
        }
        let result = exchange(&ctx.request, &mut slot, ticket.scheduled, &mut timing).await;
        record(&ctx, ticket, result, &timing);
    }
}

fn record(ctx: &Ctx, ticket: Ticket, result: Result<Instant, Failure>, timing: &StreamTiming) {
    ctx.progress.completed.fetch_add(1, Ordering::Relaxed);
    if result.is_err() {
        ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
    }
    if !ticket.measured {
        return;
    }
    let mut recorder = ctx.recorder.borrow_mut();
    match result {
        Ok(end) => {
            let stream = ctx.request.stream.then_some(timing);
            recorder.success(end.saturating_duration_since(ticket.scheduled), stream);
        }
        Err(failure) => recorder.failure(failure),
    }
}

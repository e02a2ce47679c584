//! Shared enforcement through Redis: the governance thread, the only thread that writes to Redis
//! (a reader thread reads the answers to its batches).
//!
//! Workers send it admissions and settlements over a channel and never wait on Redis themselves:
//! an admission's answer comes back through a one-shot the worker awaits. The thread drains
//! whatever is queued and hands it to Redis as one call of the batch script (one per 256
//! operations), so a busy gateway pays one round trip and one script call per batch, and each
//! admission is still checked and reserved atomically. Key records, administration and provider
//! health use a second connection, one request and its reply at a time.
//!
//! When Redis does not answer, the thread marks it down: workers then admit locally against a share
//! of each limit (`local_share`), every outage is logged and counted, and usage settled locally is
//! handed to Redis (once, by charge id) when it is back. Settlements that could not be delivered are
//! retried; the scripts make a repeat count once.
//!
//! Owns the Redis protocol of governance. What limits mean is `ledger` and `scripts`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::denial::{Denial, DenialReason, Usage};
use super::policy::{KeyPolicy, Limits};
use super::records::{KeyAdmin, KeyAdminAnswer};
use super::resp::{self, Connection, Reply};
use super::windows::Windows;
use super::{GovernorStats, Held, KeyRef, KeyStore, oneshot, records, scripts};
use crate::config::GovernanceConfig;

/// How long a reservation holds a concurrency slot in Redis if its instance never settles it.
const LEASE_MS: u64 = 10 * 60 * 1000;
/// Most commands taken from the queue for one pipeline.
const MAX_BATCH: usize = 512;
/// Most script calls written and not yet answered. While one runs in Redis the next batch grows in
/// the queue, so Redis is called per batch rather than per request: measured on two CPUs, 2, 4 or
/// unbounded gave 3 to 26 operations per call, up to twice the redis-server CPU per request and no
/// more throughput (loadtest/RESULTS.md).
const MAX_IN_FLIGHT: usize = 1;
/// Most operations in one call of the batch script (Redis stays responsive; `unpack` has a limit).
const OPS_PER_SCRIPT: usize = 256;
/// How often key records are re-read and a lost connection retried.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
const RECONNECT_EVERY: Duration = Duration::from_millis(200);
/// How often provider health is announced and others' read: with the control thread's tick on each
/// side, an ejection on one instance reaches every other well within a second.
const HEALTH_SYNC_EVERY: Duration = Duration::from_millis(50);

pub enum AdmitReply {
    Admitted(Held),
    Denied(Denial),
    /// Redis did not answer: the worker decides locally.
    Unreachable,
}

enum Command {
    Admin { request: KeyAdmin, reply: oneshot::Sender<Result<KeyAdminAnswer, String>> },
    Admit { key: KeyRef, id: String, windows: Windows, estimate: Usage, reply: oneshot::Sender<AdmitReply> },
    Op(Op),
    Stop,
}

/// A write that must reach Redis eventually, and counts once however often it is sent.
#[derive(Debug, Clone)]
enum Op {
    Settle { key: String, id: String, reserved: Windows, now: Windows, estimate: Usage, actual: Usage },
    Charge { key: String, id: String, now: Windows, usage: Usage },
}

/// Spend Redis reported for a key at its last admission, to size budgets during an outage.
#[derive(Debug, Clone, Copy, Default)]
struct KnownSpend {
    day: u64,
    spent_today: u64,
    month: u64,
    spent_this_month: u64,
    spent_total: u64,
}

/// What workers hold of the governance thread.
pub struct Link {
    commands: Sender<Command>,
    up: AtomicBool,
    instance: String,
    next_id: AtomicU64,
    local_share: f64,
    known: Mutex<HashMap<String, KnownSpend>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Provider health exchanged with the other instances through Redis.
    pub health: Arc<crate::health::remote::SharedHealth>,
}

/// A reservation Redis holds.
pub struct SharedHold {
    link: Arc<Link>,
    key: String,
    id: String,
    windows: Windows,
    pub estimate: Usage,
}

impl SharedHold {
    pub fn settle(self, now: Windows, actual: Usage) {
        let op =
            Op::Settle { key: self.key, id: self.id, reserved: self.windows, now, estimate: self.estimate, actual };
        self.link.send(Command::Op(op));
    }
}

impl Link {
    pub fn start(
        address: String,
        settings: &GovernanceConfig,
        keys: Arc<KeyStore>,
        stats: Arc<GovernorStats>,
    ) -> io::Result<Arc<Link>> {
        let (commands, receiver) = crossbeam_channel::unbounded();
        let instance = records::new_secret()?[3..19].to_string();
        let link = Arc::new(Link {
            commands,
            up: AtomicBool::new(false),
            instance,
            next_id: AtomicU64::new(0),
            local_share: settings.local_share,
            known: Mutex::new(HashMap::new()),
            thread: Mutex::new(None),
            health: Arc::default(),
        });
        let mut thread = GovernanceThread {
            link: Arc::clone(&link),
            receiver,
            address,
            timeout: Duration::from_millis(settings.redis_timeout_ms),
            prefix: settings.redis_prefix.clone(),
            keys,
            stats,
            connection: None,
            pipeline: None,
            replies: crossbeam_channel::unbounded(),
            generation: 0,
            sha: String::new(),
            retry: Vec::new(),
            unsent_charges: HashMap::new(),
            next_connect: Instant::now(),
            next_refresh: Instant::now(),
            next_health_sync: Instant::now(),
            said_unreachable: false,
        };
        // The first connection is made before workers start, so a gateway whose Redis is up starts shared.
        thread.ensure_connected();
        let handle = std::thread::Builder::new().name("corelay-governance".into()).spawn(move || thread.run())?;
        *link.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(link)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn send(&self, command: Command) {
        // Fails only after `stop`: the thread is gone and nothing more can reach Redis.
        let _ = self.commands.send(command);
    }

    fn next_id(&self) -> String {
        format!("{}:{}", self.instance, self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub fn admit(self: &Arc<Self>, key: &KeyRef, windows: Windows, estimate: Usage) -> oneshot::Receiver<AdmitReply> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Admit { key: key.clone(), id: self.next_id(), windows, estimate, reply });
        receiver
    }

    /// Hands usage settled locally (during an outage) to Redis.
    pub fn charge(&self, key: &str, now: Windows, usage: Usage) {
        if usage != Usage::default() {
            // The thread sums charges until it can write them, and ids them then.
            self.send(Command::Op(Op::Charge { key: key.to_string(), id: String::new(), now, usage }));
        }
    }

    /// Limits while Redis is away: `local_share` of each rate, and of what was left of each budget
    /// when Redis last answered for this key.
    pub fn outage_limits(&self, policy: &KeyPolicy, now: &Windows) -> Limits {
        let mut limits = policy.limits.scaled(self.local_share);
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&policy.name).copied().unwrap_or_default();
        let share_of_rest = |limit: Option<u64>, spent: u64| {
            limit.map(|l| (l.saturating_sub(spent) as f64 * self.local_share).floor() as u64)
        };
        let today = if known.day == now.day { known.spent_today } else { 0 };
        let this_month = if known.month == now.month { known.spent_this_month } else { 0 };
        limits.budget_micros_per_day = share_of_rest(policy.limits.budget_micros_per_day, today);
        limits.budget_micros_per_month = share_of_rest(policy.limits.budget_micros_per_month, this_month);
        limits.budget_micros_total = share_of_rest(policy.limits.budget_micros_total, known.spent_total);
        limits
    }

    /// Runs a key administration request on the governance thread (workers must not block on
    /// Redis); the answer arrives on the returned one-shot.
    pub fn administer(&self, request: KeyAdmin) -> oneshot::Receiver<Result<KeyAdminAnswer, String>> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Admin { request, reply });
        receiver
    }

    /// Stops the thread after it tried once more to deliver what it owes Redis.
    pub fn stop(&self) {
        self.send(Command::Stop);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

struct GovernanceThread {
    link: Arc<Link>,
    receiver: Receiver<Command>,
    address: String,
    timeout: Duration,
    prefix: String,
    keys: Arc<KeyStore>,
    stats: Arc<GovernorStats>,
    /// For key records, administration and provider health: one request, then its reply.
    connection: Option<Connection>,
    /// For admissions and settlements: batches written without waiting for earlier answers.
    pipeline: Option<Pipeline>,
    /// Answers read from the pipeline by its reader thread, tagged with the pipeline's generation.
    replies: (Sender<Answer>, Receiver<Answer>),
    /// Counts pipelines opened, so answers from one already given up are told apart.
    generation: u64,
    /// SHA-1 of the batch script as loaded into this Redis.
    sha: String,
    /// Writes not yet known to have reached Redis.
    retry: Vec<Op>,
    /// Usage settled locally and never yet written, summed per key and UTC day and month, so a long
    /// outage holds one entry per key rather than one per request. Given an id only when written.
    unsent_charges: HashMap<(String, u64, u64), (Windows, Usage)>,
    next_connect: Instant,
    next_refresh: Instant,
    next_health_sync: Instant,
    /// Whether the log last said Redis is unreachable (so each outage is said once, and its end).
    said_unreachable: bool,
}

/// One operation of a batch and what to do with its answer.
enum Pending {
    Admit { key: KeyRef, id: String, windows: Windows, estimate: Usage, reply: oneshot::Sender<AdmitReply> },
    Op(Op),
}

impl Pending {
    /// How many arguments follow the operation's letter in the batch script's `ARGV`.
    fn arg_count(&self) -> usize {
        match self {
            Pending::Admit { .. } => scripts::ADMIT_ARGS,
            Pending::Op(Op::Settle { .. }) => scripts::SETTLE_ARGS,
            Pending::Op(Op::Charge { .. }) => scripts::CHARGE_ARGS,
        }
    }
}

/// An answer the reader thread read, with the generation of the pipeline it came on.
type Answer = (u64, io::Result<Reply>);

/// The connection admissions and settlements go out on. A reader thread reads the answers and hands
/// them back, so the governance thread waits on one place for answers, commands and its timers, and
/// enforces `redis_timeout_ms` itself. Redis answers in order; up to `MAX_IN_FLIGHT` batches are
/// written before the first is answered.
struct Pipeline {
    writer: TcpStream,
    generation: u64,
    /// Script calls written and not yet answered, oldest first, with when they were written.
    in_flight: VecDeque<(Instant, Vec<Pending>)>,
}

impl Pipeline {
    fn open(connection: Connection, generation: u64, replies: Sender<Answer>) -> io::Result<Pipeline> {
        let (writer, reader) = connection.into_parts()?;
        std::thread::Builder::new()
            .name("corelay-governance-read".into())
            .spawn(move || read_answers(reader, generation, &replies))?;
        Ok(Pipeline { writer, generation, in_flight: VecDeque::new() })
    }

    /// When the oldest call written is overdue.
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.in_flight.front().map(|(sent, _)| *sent + timeout)
    }
}

/// The reader thread: every answer goes back to the governance thread until the connection fails
/// or is shut down (its last message is then the error).
fn read_answers(mut reader: BufReader<TcpStream>, generation: u64, replies: &Sender<Answer>) {
    loop {
        let reply = resp::read_reply(&mut reader);
        let failed = reply.is_err();
        if replies.send((generation, reply)).is_err() || failed {
            return;
        }
    }
}

impl GovernanceThread {
    fn run(mut self) {
        let (commands, replies) = (self.receiver.clone(), self.replies.1.clone());
        loop {
            let (batch, stopping) = self.next_batch(&commands, &replies);
            self.ensure_connected();
            self.process(batch);
            self.refresh_records_if_due();
            self.sync_health_if_due();
            if stopping {
                self.finish(&replies);
                return;
            }
        }
    }

    /// Waits for commands, answers or the next timer, acts on the answers, and returns the commands
    /// drained (and whether to stop). While `MAX_IN_FLIGHT` calls are unanswered, commands wait in
    /// the queue: the next batch grows while Redis runs the earlier ones.
    fn next_batch(&mut self, commands: &Receiver<Command>, replies: &Receiver<Answer>) -> (Vec<Command>, bool) {
        let mut batch = Vec::new();
        let mut stopping = false;
        let wake_at = self.next_wake();
        let open_to_commands = if self.at_capacity() { crossbeam_channel::never() } else { commands.clone() };
        crossbeam_channel::select! {
            recv(open_to_commands) -> command => match command {
                Ok(Command::Stop) | Err(_) => stopping = true,
                Ok(command) => batch.push(command),
            },
            recv(replies) -> reply => {
                if let Ok((generation, reply)) = reply {
                    self.on_answer(generation, reply);
                }
            },
            default(wake_at.saturating_duration_since(Instant::now())) => {}
        }
        while let Ok((generation, reply)) = replies.try_recv() {
            self.on_answer(generation, reply);
        }
        self.check_overdue();
        while !stopping && batch.len() < MAX_BATCH && !self.at_capacity() {
            match commands.try_recv() {
                Ok(Command::Stop) => stopping = true,
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        (batch, stopping)
    }

    /// On stopping: waits for the answers still owed, says what could not be delivered, and ends the
    /// reader thread (which would otherwise wait on the socket for good).
    fn finish(&mut self, replies: &Receiver<Answer>) {
        self.await_in_flight(replies);
        let owed = self.retry.len() + self.unsent_charges.len();
        if owed > 0 {
            log::warn!("governance: {owed} settlements could not be handed to Redis before exit");
        }
        if let Some(pipeline) = self.pipeline.take() {
            let _ = pipeline.writer.shutdown(Shutdown::Both);
        }
    }

    fn ensure_connected(&mut self) {
        if self.connection.is_some() || Instant::now() < self.next_connect {
            return;
        }
        self.next_connect = Instant::now() + RECONNECT_EVERY;
        match self.connect() {
            Ok((connection, pipeline, sha)) => {
                self.connection = Some(connection);
                self.pipeline = Some(pipeline);
                self.sha = sha;
                self.resume();
            }
            Err(e) if self.said_unreachable => log::debug!("governance: redis still unreachable: {e}"),
            Err(e) => {
                self.said_unreachable = true;
                log::warn!("governance: redis at {} unreachable ({e}); enforcing limits locally", self.address);
            }
        }
    }

    fn connect(&mut self) -> io::Result<(Connection, Pipeline, String)> {
        let mut connection = Connection::connect(&self.address, self.timeout)?;
        let sha = match connection.call(&["SCRIPT", "LOAD", scripts::BATCH])? {
            Reply::Bulk(Some(sha)) => String::from_utf8_lossy(&sha).into_owned(),
            other => return Err(io::Error::other(format!("SCRIPT LOAD answered {other:?}"))),
        };
        self.generation += 1;
        let pipeline =
            Pipeline::open(Connection::connect(&self.address, self.timeout)?, self.generation, self.replies.0.clone())?;
        Ok((connection, pipeline, sha))
    }

    /// Back to shared enforcement: local counters start over (what they counted is handed to Redis
    /// as charges), and what is owed is delivered first.
    fn resume(&mut self) {
        for counters in self.keys.current().counters.values() {
            counters.clear_usage();
        }
        if self.said_unreachable {
            log::info!("governance: redis at {} reachable again; shared enforcement resumed", self.address);
        }
        self.said_unreachable = false;
        self.link.up.store(true, Ordering::Release);
    }

    /// Redis is down: marked so first (an admission told so finds `is_up` false), then what was in
    /// flight is given up and a reconnection scheduled.
    fn lost(&mut self, why: &io::Error) {
        self.link.up.store(false, Ordering::Release);
        if self.connection.take().is_some() {
            self.stats.redis_outages.fetch_add(1, Ordering::Relaxed);
            log::warn!("governance: redis at {} lost ({why}); enforcing local shares of each limit", self.address);
            self.said_unreachable = true;
        }
        if let Some(pipeline) = self.pipeline.take() {
            // Ends the reader thread; what it still sends carries an old generation and is ignored.
            let _ = pipeline.writer.shutdown(Shutdown::Both);
            // Written, so they may have run: admissions are released (a no-op if they never ran).
            self.give_up(pipeline.in_flight.into_iter().flat_map(|(_, items)| items).collect());
        }
        self.next_connect = Instant::now() + RECONNECT_EVERY;
    }

    fn process(&mut self, batch: Vec<Command>) {
        let mut pending: Vec<Pending> = Vec::new();
        for command in batch {
            match command {
                Command::Admit { key, id, windows, estimate, reply } => {
                    pending.push(Pending::Admit { key, id, windows, estimate, reply })
                }
                Command::Op(Op::Charge { key, now, usage, .. }) => self.owe_charge(key, now, usage),
                Command::Op(op) => pending.push(Pending::Op(op)),
                Command::Admin { request, reply } => reply.send(self.administer(request)),
                Command::Stop => {}
            }
        }
        // What is owed goes out with the next batch Redis has room for.
        if self.pipeline.is_some() && !self.at_capacity() {
            let charges = self.unsent_charges.drain().map(|((key, _, _), (now, usage))| {
                Pending::Op(Op::Charge { key, id: self.link.next_id(), now, usage })
            });
            let owed: Vec<Pending> = self.retry.drain(..).map(Pending::Op).chain(charges).collect();
            pending.splice(0..0, owed);
        }
        if pending.is_empty() {
            return;
        }
        if self.pipeline.is_none() {
            for item in pending {
                self.not_sent(item);
            }
            return;
        }
        self.write_batch(pending);
    }

    /// Writes `pending` as script calls of at most `OPS_PER_SCRIPT` operations, one pipeline, and
    /// keeps them in flight until their answers come.
    fn write_batch(&mut self, pending: Vec<Pending>) {
        self.stats.redis_batches.fetch_add(1, Ordering::Relaxed);
        self.stats.redis_batched_items.fetch_add(pending.len() as u64, Ordering::Relaxed);
        let mut scripts: Vec<Vec<Pending>> = Vec::new();
        let mut items = pending.into_iter().peekable();
        while items.peek().is_some() {
            scripts.push(items.by_ref().take(OPS_PER_SCRIPT).collect());
        }
        let mut out = Vec::new();
        for script in &scripts {
            self.encode(script, &mut out);
        }
        let pipeline = self.pipeline.as_mut().expect("checked above");
        let written = (&pipeline.writer).write_all(&out);
        let sent = Instant::now();
        pipeline.in_flight.extend(scripts.into_iter().map(|items| (sent, items)));
        if let Err(why) = written {
            self.lost(&why);
        }
    }

    /// One answer from the pipeline: for its oldest call written. An answer from a pipeline already
    /// given up is ignored (its calls were given up with it).
    fn on_answer(&mut self, generation: u64, reply: io::Result<Reply>) {
        let Some(pipeline) = self.pipeline.as_mut().filter(|p| p.generation == generation) else { return };
        let answered = match (reply, pipeline.in_flight.pop_front()) {
            (Ok(reply), Some((_, items))) => self.answer(items, reply),
            (Ok(_), None) => Err(io::Error::other("redis answered a call never made")),
            (Err(why), unanswered) => {
                if let Some((_, items)) = unanswered {
                    self.give_up(items);
                }
                Err(why)
            }
        };
        if let Err(why) = answered {
            self.lost(&why);
        }
    }

    fn at_capacity(&self) -> bool {
        self.pipeline.as_ref().is_some_and(|p| p.in_flight.len() >= MAX_IN_FLIGHT)
    }

    /// Redis is lost when a call waits longer than `redis_timeout_ms` for its answer.
    fn check_overdue(&mut self) {
        let overdue =
            self.pipeline.as_ref().and_then(|p| p.deadline(self.timeout)).is_some_and(|d| Instant::now() >= d);
        if overdue {
            self.lost(&io::Error::new(io::ErrorKind::TimedOut, "no answer within redis_timeout_ms"));
        }
    }

    /// When the loop must look again even if nothing arrives: the next health sync, or the oldest
    /// call's deadline.
    fn next_wake(&self) -> Instant {
        let sync = Instant::now() + HEALTH_SYNC_EVERY;
        self.pipeline.as_ref().and_then(|p| p.deadline(self.timeout)).map_or(sync, |d| d.min(sync))
    }

    /// On stopping: the answers still owed, for at most `redis_timeout_ms` each.
    fn await_in_flight(&mut self, replies: &Receiver<Answer>) {
        while let Some(deadline) = self.pipeline.as_ref().and_then(|p| p.deadline(self.timeout)) {
            match replies.recv_deadline(deadline) {
                Ok((generation, reply)) => self.on_answer(generation, reply),
                Err(_) => self.check_overdue(),
            }
        }
    }

    /// One `EVALSHA` of the batch script for `items`, written straight into `out`.
    fn encode(&self, items: &[Pending], out: &mut Vec<u8>) {
        let count = items.iter().map(|item| 1 + item.arg_count()).sum::<usize>();
        resp::array_header(3 + count, out);
        resp::bulk(b"EVALSHA", out);
        resp::bulk(self.sha.as_bytes(), out);
        resp::bulk(b"0", out);
        let prefix =
            |key: &str, out: &mut Vec<u8>| resp::bulk_of(&[self.prefix.as_bytes(), b":k:", key.as_bytes(), b":"], out);
        let int = resp::bulk_int;
        let opt = |v: Option<u64>, out: &mut Vec<u8>| int(v.map_or(-1, |v| v as i64), out);
        for item in items {
            match item {
                Pending::Admit { key, id, windows: w, estimate, .. } => {
                    let l = &key.policy.limits;
                    resp::bulk(b"A", out);
                    prefix(key.name(), out);
                    for n in [w.now_ms, w.minute, w.day, w.month, estimate.tokens, estimate.cost_micros] {
                        int(n as i64, out);
                    }
                    for limit in [
                        l.budget_micros_per_day,
                        l.budget_micros_per_month,
                        l.budget_micros_total,
                        l.max_concurrent,
                        l.rpm,
                        l.tpm,
                    ] {
                        opt(limit, out);
                    }
                    resp::bulk(id.as_bytes(), out);
                    int((w.now_ms + LEASE_MS) as i64, out);
                }
                Pending::Op(Op::Settle { key, id, reserved: r, now: n, estimate, actual }) => {
                    resp::bulk(b"S", out);
                    prefix(key, out);
                    resp::bulk(id.as_bytes(), out);
                    for window in [r.minute, r.day, r.month] {
                        int(window as i64, out);
                    }
                    int(actual.tokens as i64 - estimate.tokens as i64, out);
                    int(actual.cost_micros as i64 - estimate.cost_micros as i64, out);
                    for window in [n.minute, n.day, n.month, n.now_ms] {
                        int(window as i64, out);
                    }
                }
                Pending::Op(Op::Charge { key, id, now: n, usage }) => {
                    resp::bulk(b"C", out);
                    prefix(key, out);
                    resp::bulk(id.as_bytes(), out);
                    for n in [n.minute, n.day, n.month, usage.tokens, usage.cost_micros] {
                        int(n as i64, out);
                    }
                }
            }
        }
    }

    /// Acts on the answers of one script call. An error reply (`NOSCRIPT` after a Redis restart,
    /// say) or answers that do not match the operations are treated as a lost connection, so the
    /// script is loaded again on reconnecting; the operations are given up as if unanswered.
    fn answer(&mut self, items: Vec<Pending>, reply: Reply) -> Result<(), io::Error> {
        let answers = reply.items();
        if answers.len() != items.len() {
            let why = match &reply {
                Reply::Error(e) => format!("redis: {e}"),
                other => format!("the batch script answered {} of {} operations", other.items().len(), items.len()),
            };
            self.give_up(items);
            return Err(io::Error::other(why));
        }
        for (item, answer) in items.into_iter().zip(answers) {
            if let Pending::Admit { key, id, windows, estimate, reply: sender } = item {
                sender.send(self.admission(&key, id, windows, estimate, answer));
            }
        }
        Ok(())
    }

    fn admission(&self, key: &KeyRef, id: String, windows: Windows, estimate: Usage, reply: &Reply) -> AdmitReply {
        let items = reply.items();
        let verdict = items.first().and_then(Reply::as_text).unwrap_or_default();
        let number = |i: usize| items.get(i).and_then(Reply::as_int).unwrap_or(0).max(0) as u64;
        if verdict == "ok" {
            let known = KnownSpend {
                day: windows.day,
                spent_today: number(1),
                month: windows.month,
                spent_this_month: number(2),
                spent_total: number(3),
            };
            self.link.known.lock().unwrap_or_else(|e| e.into_inner()).insert(key.name().to_string(), known);
            let hold = SharedHold { link: Arc::clone(&self.link), key: key.name().to_string(), id, windows, estimate };
            return AdmitReply::Admitted(Held::Shared(hold));
        }
        AdmitReply::Denied(shared_denial(&key.policy, &verdict, number(1), estimate, &windows))
    }

    /// Items written on a connection that broke before their answers came: admissions are answered
    /// `Unreachable` (decided locally), writes wait for the next connection.
    fn give_up(&mut self, items: Vec<Pending>) {
        for item in items {
            self.abandon(item);
        }
    }

    fn owe_charge(&mut self, key: String, now: Windows, usage: Usage) {
        let owed = self.unsent_charges.entry((key, now.day, now.month)).or_insert((now, Usage::default()));
        owed.0 = now;
        owed.1.tokens += usage.tokens;
        owed.1.cost_micros += usage.cost_micros;
    }

    /// An item never written: as `abandon`, without releasing an admission Redis never saw.
    fn not_sent(&mut self, item: Pending) {
        match item {
            Pending::Op(Op::Charge { key, now, usage, .. }) => self.owe_charge(key, now, usage),
            Pending::Op(op) => self.retry.push(op),
            Pending::Admit { reply, .. } => reply.send(AdmitReply::Unreachable),
        }
    }

    /// An item that may or may not have run in Redis. An admission is answered `Unreachable` and
    /// released once Redis is back, which undoes it if it ran and changes nothing if it did not.
    fn abandon(&mut self, item: Pending) {
        match item {
            Pending::Op(op) => self.retry.push(op),
            Pending::Admit { key, id, windows, estimate, reply } => {
                let release = Op::Settle {
                    key: key.name().to_string(),
                    id,
                    reserved: windows,
                    now: windows,
                    estimate,
                    actual: Usage::default(),
                };
                self.retry.push(release);
                reply.send(AdmitReply::Unreachable);
            }
        }
    }

    /// One key administration request, then an immediate refresh so this instance applies it at once.
    fn administer(&mut self, request: KeyAdmin) -> Result<KeyAdminAnswer, String> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(format!("redis at {} is unreachable", self.address));
        };
        match records::administer(connection, &self.prefix, request) {
            Ok(answer) => {
                self.refresh_records();
                Ok(answer)
            }
            Err(e) => {
                let message = e.to_string();
                self.lost(&e);
                Err(message)
            }
        }
    }

    fn refresh_records_if_due(&mut self) {
        if Instant::now() < self.next_refresh {
            return;
        }
        self.refresh_records();
    }

    fn refresh_records(&mut self) {
        self.next_refresh = Instant::now() + REFRESH_EVERY;
        let Some(connection) = self.connection.as_mut() else { return };
        match records::list(connection, &self.prefix) {
            Ok(list) => self.keys.set_recorded(list.iter().filter_map(records::KeyRecord::to_policy).collect()),
            Err(e) => self.lost(&e),
        }
    }
}

/// Provider health through Redis: one key per avoided endpoint, `PREFIX:health:PROVIDER:MODEL`,
/// holding `UNTIL_MS INSTANCE` and expiring at `UNTIL_MS`; every instance writes what it avoids and
/// reads every endpoint of its config in the same pipeline.
impl GovernanceThread {
    fn sync_health_if_due(&mut self) {
        if Instant::now() < self.next_health_sync {
            return;
        }
        self.next_health_sync = Instant::now() + HEALTH_SYNC_EVERY;
        if self.connection.is_none() {
            return;
        }
        if let Err(e) = self.sync_health() {
            self.lost(&e);
        }
    }

    fn sync_health(&mut self) -> io::Result<()> {
        let (avoided, endpoints) = self.link.health.outgoing();
        if endpoints.is_empty() {
            return Ok(());
        }
        let now = crate::clock::unix_now_ms();
        let key = |name: &str| format!("{}:health:{name}", self.prefix);
        let mut out = Vec::new();
        for (name, until) in &avoided {
            let value = format!("{until} {}", self.link.instance);
            let ttl = until.saturating_sub(now).max(1).to_string();
            resp::encode(&["SET", &key(name), &value, "PX", &ttl], &mut out);
        }
        let mut lookup = vec!["MGET".to_string()];
        lookup.extend(endpoints.iter().map(|name| key(name)));
        resp::encode(&lookup, &mut out);
        let connection = self.connection.as_mut().expect("checked by the caller");
        connection.write_all(&out)?;
        for _ in &avoided {
            connection.read_reply()?;
        }
        let found = connection.read_reply()?;
        let mut remote = HashMap::new();
        for (name, value) in endpoints.into_iter().zip(found.items()) {
            let Some(text) = value.as_text() else { continue };
            let Some((until, instance)) = text.split_once(' ') else { continue };
            match until.parse::<u64>() {
                Ok(until) if instance != self.link.instance && until > now => {
                    remote.insert(name, until);
                }
                _ => {}
            }
        }
        self.link.health.set_remote(remote);
        Ok(())
    }
}

fn shared_denial(policy: &KeyPolicy, verdict: &str, current: u64, estimate: Usage, w: &Windows) -> Denial {
    let l = &policy.limits;
    let budget = |reason, which: &str, limit: Option<u64>| {
        let limit = limit.unwrap_or(0);
        let message = if current >= limit {
            format!("the key's {which} budget of {limit} micro-dollars is spent")
        } else {
            format!(
                "this request (up to {} micro-dollars) would exceed the key's {which} budget: {} of {limit} micro-dollars left",
                estimate.cost_micros,
                limit - current
            )
        };
        Denial::new(reason, None, message)
    };
    let next_minute = Some(w.seconds_to_next_minute());
    match verdict {
        "day" => budget(DenialReason::BudgetPerDay, "daily", l.budget_micros_per_day),
        "month" => budget(DenialReason::BudgetPerMonth, "monthly", l.budget_micros_per_month),
        "total" => budget(DenialReason::BudgetTotal, "total", l.budget_micros_total),
        "concurrency" => Denial::new(
            DenialReason::Concurrency,
            Some(1),
            format!("{} requests already in flight", l.max_concurrent.unwrap_or(0)),
        ),
        "rpm" => Denial::new(
            DenialReason::RequestsPerMinute,
            next_minute,
            format!("rate limit of {} requests per minute reached", l.rpm.unwrap_or(0)),
        ),
        _ => Denial::new(
            DenialReason::TokensPerMinute,
            next_minute,
            format!(
                "rate limit of {} tokens per minute: {current} used, {} more needed",
                l.tpm.unwrap_or(0),
                estimate.tokens
            ),
        ),
    }
}

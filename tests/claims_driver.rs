//! The I/O driver each worker runs, asserted by name: io_uring where this kernel allows it (probed
//! here through the raw syscalls, independently of monoio's own detection), epoll when
//! `MONOIO_FORCE_LEGACY_DRIVER=1` forces the fallback or the kernel refuses io_uring. Checked both
//! through `Gateway::drivers()` and the `corelay_worker_driver` gauge in `/metrics`. It does not
//! test that either driver serves traffic correctly: every other end-to-end test does, on both runs.

mod common;

use std::time::{Duration, Instant};

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";

/// `io_uring_register` opcode that fills an `io_uring_probe` (kernel ABI, include/uapi/linux/io_uring.h).
const IORING_REGISTER_PROBE: libc::c_uint = 8;
/// `io_uring_probe_op.flags` bit for a supported opcode.
const IO_URING_OP_SUPPORTED: u16 = 1;
/// The opcodes monoio submits (readv, writev, fsync, poll_add, sendmsg, recvmsg, timeout, accept,
/// async_cancel, connect, openat, close, read, write, send, recv, provide_buffers): without all
/// of them it falls back to epoll, so the probe demands the same.
const OPCODES_USED: [u8; 17] = [1, 2, 3, 6, 9, 10, 11, 13, 14, 16, 18, 19, 22, 23, 26, 27, 31];

/// Whether this process may set up an io_uring whose kernel supports every opcode monoio uses,
/// asked of the kernel directly: io_uring_setup, then IORING_REGISTER_PROBE.
fn kernel_allows_io_uring() -> bool {
    // On a thread of its own: tearing a ring down queues kernel task work on the thread that made
    // it, which interrupts that thread's blocking socket reads (EINTR under SO_RCVTIMEO).
    std::thread::spawn(probe_io_uring).join().expect("the io_uring probe thread")
}

fn probe_io_uring() -> bool {
    // struct io_uring_params is 120 bytes; zeroed means "no flags".
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup(entries, params) with a writable buffer of the params struct's size.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return false;
    }
    let fd = fd as libc::c_int;
    // struct io_uring_probe: a 16-byte header (last_op, ops_len, ...) then 8-byte entries
    // (op, resv, flags: u16, resv2: u32); room for 256 opcodes.
    let mut probe = vec![0u8; 16 + 256 * 8];
    // SAFETY: io_uring_register on the ring just created, with a buffer sized for 256 entries.
    let rc =
        unsafe { libc::syscall(libc::SYS_io_uring_register, fd, IORING_REGISTER_PROBE, probe.as_mut_ptr(), 256u32) };
    // SAFETY: closing the ring fd this function opened.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return false;
    }
    let ops_len = probe[1] as usize;
    OPCODES_USED.iter().all(|&op| {
        let entry = 16 + op as usize * 8;
        (op as usize) < ops_len && u16::from_ne_bytes([probe[entry + 2], probe[entry + 3]]) & IO_URING_OP_SUPPORTED != 0
    })
}

/// The driver name every worker must report on this run.
fn expected_driver() -> &'static str {
    let forced = std::env::var("MONOIO_FORCE_LEGACY_DRIVER")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    if !forced && kernel_allows_io_uring() { "io_uring" } else { "epoll" }
}

/// The `corelay_worker_driver` samples of one scrape, as (core, driver) pairs.
fn driver_samples(metrics: &str) -> Vec<(String, String)> {
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        Some(line[start..].split('"').next()?.to_string())
    };
    metrics
        .lines()
        .filter(|l| l.starts_with("corelay_worker_driver{") && l.ends_with(" 1"))
        .filter_map(|l| Some((label(l, "core")?, label(l, "driver")?)))
        .collect()
}

#[test]
fn every_worker_runs_the_driver_this_kernel_and_environment_call_for() {
    let expected = expected_driver();
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let text = config_text(&provider.base_url(), "", "[health]\ntick_ms = 20\n").replace("cores = 1\n", "cores = 2\n");
    let gateway = start_gateway(&text);

    let names: Vec<&str> = gateway.drivers().iter().map(|d| d.name()).collect();
    assert_eq!(names, [expected, expected], "each worker's driver, by name");

    // Traffic on both cores proves the reported driver serves; the gauge appears once each core has
    // sent a tick, so the scrape is repeated, bounded in count and time.
    for _ in 0..4 {
        assert_eq!(
            Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status,
            200
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut samples = Vec::new();
    for _ in 0..100_000 {
        let scrape = Client::connect(gateway.local_addr()).get("/metrics", &[]);
        assert_eq!(scrape.status, 200);
        samples = driver_samples(&scrape.text());
        samples.sort();
        // Before a core's first tick the gauge says "unknown" for it.
        let reported = samples.len() == 2 && samples.iter().all(|(_, d)| d != "unknown");
        if reported || Instant::now() > deadline {
            break;
        }
    }
    let expected_samples = vec![("0".to_string(), expected.to_string()), ("1".to_string(), expected.to_string())];
    assert_eq!(samples, expected_samples, "corelay_worker_driver names {expected} on both cores");
}

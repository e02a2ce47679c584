//! Process signals, handled synchronously: SIGTERM, SIGINT and SIGHUP are blocked in every thread
//! (call `block` before spawning any) and taken one at a time with `sigwait` by whoever asks.
//! No handler runs asynchronously, so nothing here races with the workers.

use std::io;

/// The signals Corelay acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Terminate(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset only adds valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Blocks the handled signals in the calling thread and every thread it spawns afterwards.
pub fn block() -> io::Result<()> {
    let set = signal_set();
    // SAFETY: `set` is a valid, initialised signal set; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// Waits for the next handled signal.
pub fn wait() -> io::Result<Signal> {
    let set = signal_set();
    let mut number: libc::c_int = 0;
    // SAFETY: `set` is valid and `number` is a valid out-pointer for the call's duration.
    let rc = unsafe { libc::sigwait(&set, &mut number) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(match number {
        libc::SIGHUP => Signal::Reload,
        libc::SIGINT => Signal::Terminate("SIGINT"),
        _ => Signal::Terminate("SIGTERM"),
    })
}

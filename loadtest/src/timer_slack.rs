//! The timer slack of the threads that keep time for the loadtest tools (the load generator's
//! pacer, the mock's alarms). Owns that one setting; what the threads time is theirs.

/// Linux lets a sleeping thread wake up to 50 µs late by default ("timer slack"); 1 µs keeps the
/// calling thread's sleeps punctual. Best effort: on failure they are merely a little less
/// punctual.
pub(crate) fn set_fine() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches only this thread's state.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

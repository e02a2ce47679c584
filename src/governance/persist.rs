//! The embedded mode's state file: every key's counters as JSON, rewritten atomically (temporary
//! file, fsync, rename) every `snapshot_interval_ms` by a thread, and once more on shutdown.
//!
//! A crash loses the spend, tokens and requests counted since the last snapshot (at most one
//! interval: an under-count), and reservations in flight at that snapshot are kept as their estimates
//! (an over-count, never settled). A clean shutdown, after workers drained, loses nothing.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Governor;
use super::ledger::SavedCounters;

/// The file's shape: a version, so a later format can tell an old file, and counters by key name.
#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    keys: BTreeMap<String, SavedCounters>,
}

pub fn write(path: &Path, counters: &[(String, SavedCounters)]) -> io::Result<()> {
    let state = StateFile { version: 1, keys: counters.iter().cloned().collect() };
    let body = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&body)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The counters a state file holds; a missing file is an empty state (the first start).
pub fn read(path: &Path) -> io::Result<BTreeMap<String, SavedCounters>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let state: StateFile = serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
            Ok(state.keys)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// The thread that rewrites the state file periodically.
pub struct Persister {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Persister {
    pub fn start(governor: Governor, path: PathBuf, interval: Duration) -> io::Result<Persister> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new().name("corelay-governance-snapshot".into()).spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                if let Err(e) = governor.snapshot_now() {
                    log::error!("governance: writing {} failed: {e}", path.display());
                }
            }
        })?;
        Ok(Persister { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

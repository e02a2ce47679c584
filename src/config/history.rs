//! `[history]`: where the request history is kept and for how long. Owns parsing and checking only;
//! the store and its thread are the `history` module's.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigIssue, UnknownKeys, issue};

/// The file name used under systemd's state directory when `path` is not set.
pub const DEFAULT_FILE_NAME: &str = "history.sqlite";

/// `[history]`: an embedded SQLite file of every finished call, queried by `/v1/stats?from=&to=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HistoryConfig {
    /// The SQLite file; `"off"` turns history off. Unset: `$STATE_DIRECTORY/history.sqlite` when
    /// systemd gives the service a state directory (`StateDirectory=`), otherwise off, so a gateway
    /// started by hand or by a test writes nothing it was not told to.
    pub path: Option<String>,
    /// Calls older than this are deleted (checked every few minutes).
    pub retention_days: u64,
    #[serde(flatten)]
    pub(super) unknown: UnknownKeys,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { path: None, retention_days: 7, unknown: UnknownKeys::new() }
    }
}

impl HistoryConfig {
    /// The file to use, given systemd's `STATE_DIRECTORY` (a `:`-separated list; the first is
    /// used); `None` when history is off.
    pub fn file(&self, state_directory: Option<&str>) -> Option<PathBuf> {
        match self.path.as_deref().map(str::trim) {
            Some("off") | Some("") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => state_directory
                .and_then(|dirs| dirs.split(':').next())
                .filter(|dir| !dir.is_empty())
                .map(|dir| PathBuf::from(dir).join(DEFAULT_FILE_NAME)),
        }
    }

    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retention_days.saturating_mul(86_400))
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        if self.retention_days == 0 || self.retention_days > 3650 {
            issues.push(issue("history.retention_days", "must be between 1 and 3650"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_the_path_given_or_under_the_state_directory_or_none() {
        let with = |path: Option<&str>| HistoryConfig { path: path.map(String::from), ..HistoryConfig::default() };
        assert_eq!(with(None).file(None), None, "off without a state directory");
        assert_eq!(
            with(None).file(Some("/var/lib/corelay:/x")),
            Some(PathBuf::from("/var/lib/corelay/history.sqlite"))
        );
        assert_eq!(with(Some("/tmp/h.db")).file(Some("/var/lib/corelay")), Some(PathBuf::from("/tmp/h.db")));
        assert_eq!(with(Some("off")).file(Some("/var/lib/corelay")), None);
    }
}

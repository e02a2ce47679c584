//! The standard Prometheus process metrics (CPU seconds, resident and virtual memory, open and
//! maximum file descriptors, start time), read from `/proc/self` on the control thread when the
//! scrape text is rendered.
//!
//! Linux only, like the gateway. A value that cannot be read is left out of the scrape rather than
//! reported as zero. Nothing here runs on a worker.

use std::fmt::Write;

/// One reading of the process's resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Fields of `/proc/self/stat` after the command name, 0-based from field 3 (`state`).
const UTIME: usize = 11;
const STIME: usize = 12;
const STARTTIME: usize = 19;
const VSIZE: usize = 20;
const RSS_PAGES: usize = 21;

impl ProcessSample {
    /// Reads `/proc/self` now.
    pub fn read() -> ProcessSample {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let ticks = (ticks > 0).then_some(ticks as f64);
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| boot_time(&s));
        ProcessSample {
            cpu_seconds: field(UTIME).zip(field(STIME)).zip(ticks).map(|((u, s), t)| (u + s) as f64 / t),
            resident_bytes: field(RSS_PAGES).filter(|_| page > 0).map(|p| p * page as u64),
            virtual_bytes: field(VSIZE),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|dir| dir.count() as u64),
            max_fds: max_fds(),
            start_time_seconds: field(STARTTIME)
                .zip(ticks)
                .zip(boot)
                .map(|((start, t), boot)| boot as f64 + start as f64 / t),
        }
    }

    /// The families with a value, in text format 0.0.4.
    pub fn render(&self, out: &mut String) {
        let gauges: [(&str, &str, &str, Option<f64>); 6] = [
            ("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", self.cpu_seconds),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                self.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                self.virtual_bytes.map(|v| v as f64),
            ),
            ("process_open_fds", "gauge", "Open file descriptors.", self.open_fds.map(|v| v as f64)),
            ("process_max_fds", "gauge", "The soft limit on open file descriptors.", self.max_fds.map(|v| v as f64)),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process, in seconds since the Unix epoch.",
                self.start_time_seconds,
            ),
        ];
        for (name, kind, help, value) in gauges {
            if let Some(value) = value {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
            }
        }
    }
}

/// The space-separated fields after `(comm)`; the command name may itself hold spaces and
/// parentheses, so the split starts after the last `)`.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default()
}

/// `btime` from `/proc/stat`: boot time in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat.lines().find_map(|line| line.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the valid `limit` it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_start_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21";
        let fields = stat_fields(stat);
        assert_eq!(fields[0], "S");
        assert_eq!(fields[UTIME], "11");
        assert_eq!(fields[RSS_PAGES], "21");
    }

    #[test]
    fn this_process_reads_as_running_now_with_memory_and_descriptors() {
        let sample = ProcessSample::read();
        let now = crate::clock::unix_now() as f64;
        let started = sample.start_time_seconds.expect("start time readable");
        assert!(started <= now + 1.0 && started > now - 24.0 * 3600.0 * 365.0, "{started} vs {now}");
        assert!(sample.resident_bytes.is_some_and(|b| b > 1024 * 1024));
        assert!(sample.open_fds.is_some_and(|n| n >= 3));
        assert!(sample.cpu_seconds.is_some_and(|s| s >= 0.0));
        let mut out = String::new();
        sample.render(&mut out);
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "), "{out}");
    }

    #[test]
    fn boot_time_is_read_from_its_line() {
        assert_eq!(boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), Some(1_700_000_000));
        assert_eq!(boot_time("cpu 1 2 3\n"), None);
    }
}

//! Start-up check of the file-descriptor limit: every client connection and every pooled upstream
//! connection is a descriptor, on every core. Raises the soft limit when the hard one allows, and
//! says clearly when even that is not enough.

/// Descriptors the configured connection limits can use, with room for listeners, pools and logs.
pub fn descriptors_needed(cores: usize, max_connections_per_core: usize) -> u64 {
    (cores as u64).saturating_mul(max_connections_per_core as u64).saturating_mul(2).saturating_add(256)
}

/// Raises the soft `RLIMIT_NOFILE` towards `needed`; returns a warning when the result falls short.
pub fn ensure_descriptors(needed: u64) -> Option<String> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-pointer for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Some("cannot read the file-descriptor limit (getrlimit failed)".into());
    }
    if limit.rlim_cur < needed {
        let raised = libc::rlimit { rlim_cur: needed.min(limit.rlim_max), rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit with rlim_cur <= rlim_max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    (limit.rlim_cur < needed).then(|| {
        format!(
            "the file-descriptor limit is {} but cores x server.max_connections_per_core x 2 needs {needed}: \
             connections beyond it will fail; raise it (systemd LimitNOFILE=, or ulimit -n) or lower \
             server.max_connections_per_core",
            limit.rlim_cur
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_needs_are_met_and_huge_ones_are_reported() {
        assert_eq!(ensure_descriptors(64), None);
        let warning = ensure_descriptors(u64::MAX / 2).expect("no machine allows this many");
        assert!(warning.contains("LimitNOFILE"), "{warning}");
        assert_eq!(descriptors_needed(2, 10_000), 40_256);
    }
}

//! The time windows limits count in (UTC minute, day and month), derived from a Unix time in
//! milliseconds the caller passes in, so every check is testable without waiting.

/// The windows a request at one instant counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub now_ms: u64,
    /// Minutes since the Unix epoch (RPM and TPM count per UTC minute).
    pub minute: u64,
    /// Days since the Unix epoch (the daily budget resets at 00:00 UTC).
    pub day: u64,
    /// Months since year 0 (`year * 12 + month - 1`): the monthly budget resets on the 1st, UTC.
    pub month: u64,
}

impl Windows {
    pub fn at(now_ms: u64) -> Windows {
        let day = now_ms / 86_400_000;
        let (year, month) = year_month_of_day(day as i64);
        Windows { now_ms, minute: now_ms / 60_000, day, month: (year * 12 + i64::from(month) - 1) as u64 }
    }

    /// Whole seconds until the next minute starts (at least 1): the `Retry-After` of a rate limit.
    pub fn seconds_to_next_minute(&self) -> u64 {
        let into = (self.now_ms % 60_000) / 1000;
        (60 - into).max(1)
    }

    /// Whole seconds until the next UTC day starts.
    pub fn seconds_to_next_day(&self) -> u64 {
        (86_400 - (self.now_ms % 86_400_000) / 1000).max(1)
    }
}

/// (year, month 1..=12) of a day count since 1970-01-01 (the inverse of `days_from_civil`).
fn year_month_of_day(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::governance_days_from_civil as days_from_civil;

    #[test]
    fn months_roll_over_at_utc_month_starts() {
        let ms = |y, m, d| days_from_civil(y, m, d) as u64 * 86_400_000;
        assert_eq!(Windows::at(ms(2026, 12, 31) + 86_399_999).month, 2026 * 12 + 11);
        assert_eq!(Windows::at(ms(2027, 1, 1)).month, 2027 * 12);
        assert_eq!(Windows::at(ms(2024, 2, 29)).month, 2024 * 12 + 1);
        assert_eq!(Windows::at(ms(2024, 3, 1)).day, days_from_civil(2024, 3, 1) as u64);
    }

    #[test]
    fn retry_after_counts_to_the_next_minute() {
        assert_eq!(Windows::at(60_000).seconds_to_next_minute(), 60);
        assert_eq!(Windows::at(119_500).seconds_to_next_minute(), 1);
        assert_eq!(Windows::at(90_000).seconds_to_next_minute(), 30);
    }
}

//! Instants and lengths as `/v1/stats` takes them: Unix seconds or RFC 3339 date-times, and
//! intervals such as `60s`, `15m`, `1h`, `1d`. Pure functions, no clock.

/// Unix seconds from `123456` or an RFC 3339 date-time (`2026-12-06T07:00:00Z`,
/// `2026-12-06T08:00:00.5+01:00`; fractions are dropped).
pub fn parse_instant(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    parse_rfc3339(text)
}

fn digits(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    if part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None }
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(text, 0..4)?, digits(text, 5..7)?, digits(text, 8..10)?);
    let (hour, minute, second) = (digits(text, 11..13)?, digits(text, 14..16)?, digits(text, 17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        rest = &fraction[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (digits(rest, 1..3)?, digits(rest, 4..6)?);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(seconds).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds from `60s`, `15m`, `1h`, `1d` or a bare number of seconds; zero is refused.
pub fn parse_interval(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1),
        (i, 'm') => (&text[..i], 60),
        (i, 'h') => (&text[..i], 3600),
        (i, 'd') => (&text[..i], 86_400),
        _ => (text, 1),
    };
    let n: u64 = number.parse().ok()?;
    n.checked_mul(unit).filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_from_unix_seconds_and_rfc3339() {
        assert_eq!(parse_instant("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_instant("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_instant("2023-11-14T23:13:20.250+01:00"), Some(1_700_000_000));
        assert_eq!(parse_instant("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in ["", "-5", "2023-11-14", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "2023-11-14T22:13:20+0100"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn intervals_parse_with_their_units() {
        assert_eq!(parse_interval("60s"), Some(60));
        assert_eq!(parse_interval("15m"), Some(900));
        assert_eq!(parse_interval("1h"), Some(3600));
        assert_eq!(parse_interval("1d"), Some(86_400));
        assert_eq!(parse_interval("30"), Some(30));
        for bad in ["", "0s", "h", "1w", "-1h", "99999999999999999999d"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }
}

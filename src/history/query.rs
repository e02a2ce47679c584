//! `/v1/stats?from=&to=&group_by=&interval=`: parsing the query string into a [`StatsQuery`], and
//! rendering the store's groups as the JSON answer. The SQL itself is `store`'s.

use serde_json::{Map, Value, json};

use super::store::{COUNTERS, GroupTotals};
use super::time::{parse_instant, parse_interval};
use crate::error::{ErrorKind, GatewayError};

/// Range used when `from` is not given: the day before `to`.
const DEFAULT_RANGE_S: u64 = 86_400;
/// Time buckets one answer may have at most (a year in minutes would be a 525,600-row answer).
const MAX_BUCKETS: u64 = 10_000;

/// What a call can be grouped by. Each maps to a fixed SQL column (`store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Key,
    User,
    Model,
    Provider,
    Door,
    StatusClass,
    ErrorClass,
}

impl Group {
    const ALL: [(&'static str, Group); 7] = [
        ("key", Group::Key),
        ("user", Group::User),
        ("model", Group::Model),
        ("provider", Group::Provider),
        ("door", Group::Door),
        ("status_class", Group::StatusClass),
        ("error_class", Group::ErrorClass),
    ];

    fn parse(name: &str) -> Option<Group> {
        Group::ALL.iter().find(|(n, _)| *n == name).map(|(_, g)| *g)
    }

    fn name(self) -> &'static str {
        Group::ALL.iter().find(|(_, g)| *g == self).map_or("", |(n, _)| n)
    }
}

/// A parsed stats query: calls that ended in `[from_s, to_s)`, grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub from_s: u64,
    pub to_s: u64,
    pub group_by: Vec<Group>,
    /// Time bucket length; none sums the whole range.
    pub interval_s: Option<u64>,
    /// Only calls whose group value equals this (`key=team-a`), all of them at once.
    pub filters: Vec<(Group, String)>,
}

/// The groups a query may also filter on (exact match).
const FILTERABLE: [Group; 5] = [Group::Key, Group::User, Group::Model, Group::Provider, Group::Door];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// A parameter the client got wrong (400), with why.
    Invalid(String),
    /// History is off, or its thread is gone.
    Unavailable,
    /// Too many queries are waiting for the reader (503).
    Busy,
    /// The store failed (logged by the writer).
    Store(String),
}

impl From<QueryError> for GatewayError {
    fn from(error: QueryError) -> GatewayError {
        match error {
            QueryError::Invalid(why) => GatewayError::new(ErrorKind::InvalidField, why),
            QueryError::Unavailable => GatewayError::new(
                ErrorKind::RouteNotFound,
                "request history is off: set [history] path to query /v1/stats by range",
            ),
            QueryError::Busy => {
                GatewayError::new(ErrorKind::Unavailable, "too many stats queries at once: retry later")
            }
            QueryError::Store(why) => GatewayError::new(ErrorKind::Internal, format!("request history: {why}")),
        }
    }
}

/// `%XX` and `+` decoded; invalid escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl StatsQuery {
    /// The query of a request target (`/v1/stats?...`); `None` when it has no range, grouping or
    /// interval parameter (then the live ten-minute view answers, as before history existed).
    pub fn from_target(target: &str, now_s: u64) -> Option<Result<StatsQuery, QueryError>> {
        let (_, query) = target.split_once('?')?;
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect();
        let known = ["from", "to", "group_by", "interval"];
        let filter = |name: &str| Group::parse(name).filter(|g| FILTERABLE.contains(g));
        if !pairs.iter().any(|(name, _)| known.contains(&name.as_str()) || filter(name).is_some()) {
            return None;
        }
        Some(StatsQuery::from_pairs(&pairs, now_s))
    }

    fn from_pairs(pairs: &[(String, String)], now_s: u64) -> Result<StatsQuery, QueryError> {
        let invalid = |why: String| QueryError::Invalid(why);
        let instant = |name: &str| -> Result<Option<u64>, QueryError> {
            match pairs.iter().rev().find(|(n, _)| n == name) {
                None => Ok(None),
                Some((_, v)) => parse_instant(v.trim())
                    .map(Some)
                    .ok_or_else(|| invalid(format!("`{name}` must be Unix seconds or an RFC 3339 date-time"))),
            }
        };
        // `to` defaults to the end of the current second, so calls that just ended are in range.
        let to_s = instant("to")?.unwrap_or(now_s + 1);
        let from_s = instant("from")?.unwrap_or(to_s.saturating_sub(DEFAULT_RANGE_S));
        if from_s >= to_s {
            return Err(invalid("`from` must be before `to`".into()));
        }
        let mut group_by = Vec::new();
        for (_, value) in pairs.iter().filter(|(n, _)| n == "group_by") {
            for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let group = Group::parse(name).ok_or_else(|| {
                    let names: Vec<&str> = Group::ALL.iter().map(|(n, _)| *n).collect();
                    invalid(format!("`group_by` takes {}", names.join(", ")))
                })?;
                if !group_by.contains(&group) {
                    group_by.push(group);
                }
            }
        }
        let interval_s = match pairs.iter().rev().find(|(n, _)| n == "interval") {
            None => None,
            Some((_, v)) => Some(
                parse_interval(v.trim()).ok_or_else(|| invalid("`interval` must be like 60s, 15m, 1h or 1d".into()))?,
            ),
        };
        if let Some(interval) = interval_s
            && (to_s - from_s).div_ceil(interval) > MAX_BUCKETS
        {
            return Err(invalid(format!("at most {MAX_BUCKETS} intervals per query: widen `interval`")));
        }
        let filters = pairs
            .iter()
            .filter_map(|(name, value)| {
                Group::parse(name).filter(|g| FILTERABLE.contains(g)).map(|g| (g, value.clone()))
            })
            .collect();
        Ok(StatsQuery { from_s, to_s, group_by, interval_s, filters })
    }
}

fn counters_json(counters: &[i64]) -> Map<String, Value> {
    let mut object: Map<String, Value> =
        COUNTERS.iter().zip(counters).map(|((n, _), v)| ((*n).into(), json!(v))).collect();
    let get = |name: &str| object.get(name).and_then(Value::as_i64).unwrap_or(0);
    let (requests, duration, ttfb) = (get("requests"), get("duration_us_sum"), get("ttfb_us_sum"));
    let average_ms = |sum: i64| if requests > 0 { sum as f64 / requests as f64 / 1000.0 } else { 0.0 };
    object.insert("latency_avg_ms".into(), json!(average_ms(duration)));
    object.insert("ttfb_avg_ms".into(), json!(average_ms(ttfb)));
    object
}

/// The JSON answer: the query echoed, one object per group, and the totals over all of them.
pub fn render(query: &StatsQuery, groups: &[GroupTotals]) -> String {
    let mut total = vec![0i64; COUNTERS.len()];
    let rows: Vec<Value> = groups
        .iter()
        .filter(|g| g.counters.first().is_some_and(|&requests| requests > 0))
        .map(|group| {
            for (sum, value) in total.iter_mut().zip(&group.counters) {
                *sum = sum.saturating_add(*value);
            }
            let mut object = counters_json(&group.counters);
            for (g, value) in query.group_by.iter().zip(&group.keys) {
                object.insert(g.name().into(), json!(value));
            }
            if let Some(bucket) = group.bucket {
                object.insert("t".into(), json!(bucket));
            }
            Value::Object(object)
        })
        .collect();
    json!({
        "from": query.from_s,
        "to": query.to_s,
        "group_by": query.group_by.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "interval_seconds": query.interval_s,
        "filters": query.filters.iter().map(|(g, v)| (g.name().to_string(), json!(v))).collect::<Map<String, Value>>(),
        "rows": rows,
        "total": counters_json(&total),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(target: &str) -> Result<StatsQuery, QueryError> {
        StatsQuery::from_target(target, 1_000_000).expect("a history query")
    }

    #[test]
    fn no_range_grouping_or_interval_keeps_the_live_view() {
        assert_eq!(StatsQuery::from_target("/v1/stats", 5), None);
        assert_eq!(StatsQuery::from_target("/v1/stats?", 5), None);
        assert_eq!(StatsQuery::from_target("/v1/stats?pretty=1", 5), None);
    }

    #[test]
    fn ranges_groups_and_intervals_parse() {
        let q = parse(
            "/v1/stats?from=2023-11-14T22%3A13%3A20Z&to=1700003600&group_by=key,model&group_by=provider&interval=1h",
        )
        .unwrap();
        assert_eq!((q.from_s, q.to_s), (1_700_000_000, 1_700_003_600));
        assert_eq!(q.group_by, [Group::Key, Group::Model, Group::Provider]);
        assert_eq!(q.interval_s, Some(3600));
        assert!(q.filters.is_empty());
        let q = parse("/v1/stats?key=team%20a&model=acme%2Fchat&tags=x").unwrap();
        assert_eq!(q.filters, [(Group::Key, "team a".to_string()), (Group::Model, "acme/chat".to_string())]);
        assert!(q.group_by.is_empty(), "a filter alone is a history query");
        let q = parse("/v1/stats?group_by=door").unwrap();
        assert_eq!((q.from_s, q.to_s), (1_000_001 - 86_400, 1_000_001), "the last day by default");
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        for (target, says) in [
            ("/v1/stats?from=yesterday", "`from`"),
            ("/v1/stats?from=10&to=5", "before"),
            ("/v1/stats?group_by=secret_column", "`group_by` takes"),
            ("/v1/stats?group_by=key;DROP%20TABLE%20calls", "`group_by` takes"),
            ("/v1/stats?interval=1w", "`interval`"),
            ("/v1/stats?from=0&to=1000000&interval=1s", "at most"),
        ] {
            match parse(target) {
                Err(QueryError::Invalid(why)) => assert!(why.contains(says), "{target}: {why}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%3Ab+c%zz%"), "a:b c%zz%");
    }
}

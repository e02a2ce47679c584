//! Shared enforcement through a real redis-server: three governors (as three instances would) share
//! one Redis; budgets and rates hold exactly across them, Redis going away falls back to local
//! shares, and its return resumes shared counting with every settled micro-dollar delivered once.
//! Time is injected (`now_ms`), so a minute's limit needs no minute. Skips when redis-server is
//! not installed (`.ci/run` installs it).

mod governance_support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use corelay::governance::{DenialReason, Governor, Reservation, Usage, hash_hex, records, sha256};
use governance_support::{Redis, eventually, governor, redis_server_binary};

/// A minute boundary (1.8e12 ms is a whole number of minutes).
const T0: u64 = 1_800_000_000_000;
const MINUTE: u64 = 60_000;

fn config(redis: &Redis, keys: &str) -> String {
    format!("[governance]\nredis_url = \"{}\"\nlocal_share = 0.5\nredis_timeout_ms = 500\n{keys}", redis.url())
}

fn key_entry(name: &str, limits: &str) -> String {
    let hash = hash_hex(&sha256(format!("sk-{name}-0123456789").as_bytes()));
    format!("[[keys]]\nname = \"{name}\"\nkey_sha256 = \"{hash}\"\n{limits}\n")
}

fn three(redis: &Redis, keys: &str) -> Vec<Governor> {
    let text = config(redis, keys);
    (0..3).map(|_| governor(&text)).collect()
}

fn usage(tokens: u64, cost_micros: u64) -> Usage {
    Usage { tokens, cost_micros }
}

/// `attempts` admissions of `key` at `now_ms`, all started together on their own threads, spread
/// over the governors in turn.
fn admit_concurrently(
    governors: &[Governor],
    key: &str,
    attempts: usize,
    now_ms: u64,
    estimate: Usage,
) -> Vec<Result<Reservation, corelay::governance::Denial>> {
    let start = Arc::new(Barrier::new(attempts));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..attempts)
            .map(|i| {
                let g = governors[i % governors.len()].clone();
                let start = Arc::clone(&start);
                s.spawn(move || {
                    let key = g.key(key).expect("configured key");
                    start.wait();
                    g.admit(&key, "acme/chat", now_ms, estimate).wait()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn shutdown(governors: Vec<Governor>) {
    governors.iter().for_each(Governor::shutdown);
}

#[test]
fn a_budget_for_two_admits_exactly_two_of_a_hundred_across_three_instances() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("two", "budget_micros_total = 200"));
    assert!(governors.iter().all(|g| g.redis_up() == Some(true)));

    let results = admit_concurrently(&governors, "two", 100, T0, usage(10, 100));
    let (admitted, denied): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(admitted.len(), 2);
    for denial in denied.into_iter().map(Result::unwrap_err) {
        assert_eq!((denial.status, denial.reason, denial.retry_after_s), (403, DenialReason::BudgetTotal, None));
    }
    assert_eq!(redis.counter("two", "spent_total"), 200, "both estimates are reserved in Redis");

    for reservation in admitted.into_iter().map(Result::unwrap) {
        assert!(reservation.is_shared());
        reservation.settle(T0 + 1_000, usage(7, 70));
    }
    assert!(eventually(Duration::from_secs(5), || redis.counter("two", "spent_total") == 140));
    let open = redis.connect().call(&["ZCARD", "corelay:k:two:open"]).unwrap().as_int();
    assert_eq!(open, Some(0), "settled reservations leave no concurrency slot behind");
    shutdown(governors);
}

#[test]
fn sixty_rpm_admits_sixty_in_a_minute_across_three_instances() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("rpm", "rpm = 60\ntpm = 100000"));

    let results = admit_concurrently(&governors, "rpm", 150, T0 + 30 * 1000, usage(100, 0));
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, 60);
    let denial = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!((denial.status, denial.reason, denial.retry_after_s), (429, DenialReason::RequestsPerMinute, Some(30)));
    drop(results);

    let next_minute = admit_concurrently(&governors, "rpm", 30, T0 + MINUTE, usage(100, 0));
    assert!(next_minute.iter().all(Result::is_ok), "a new minute starts from zero");
    shutdown(governors);
}

#[test]
fn tokens_per_minute_hold_within_one_reservation() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("tpm", "tpm = 1000"));
    let results = admit_concurrently(&governors, "tpm", 30, T0, usage(300, 0));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3, "3 x 300 fits 1000; a fourth would not");
    assert_eq!(redis.counter("tpm", "minute"), (T0 / MINUTE) as i64);
    assert_eq!(redis.counter("tpm", "tpm"), 900);
    shutdown(governors);
}

#[test]
fn redis_going_away_falls_back_to_local_shares_and_its_return_resumes_shared_counting() {
    let Some(binary) = redis_server_binary() else { return };
    let mut redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("flow", "rpm = 40\nbudget_micros_total = 1000000"));
    let g = &governors[0];
    let key = g.key("flow").unwrap();

    // Shared: ten requests settled, one still in flight when Redis goes.
    for i in 0..10 {
        let r = g.admit(&key, "acme/chat", T0 + i, usage(10, 1_500)).wait().unwrap();
        assert!(r.is_shared());
        r.settle(T0 + i, usage(10, 1_000));
    }
    let in_flight = g.admit(&key, "acme/chat", T0 + 20, usage(10, 5_000)).wait().unwrap();
    redis.kill();

    // Local: each instance admits its share (0.5 x 40 RPM = 20) of the next minute, and no more.
    let mut local = Vec::new();
    for g in &governors {
        let key = g.key("flow").unwrap();
        let results: Vec<_> =
            (0..30).map(|i| g.admit(&key, "acme/chat", T0 + MINUTE + i, usage(10, 600)).wait()).collect();
        let admitted: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        assert_eq!(admitted.len(), 20);
        assert!(admitted.iter().all(|r| !r.is_shared()));
        assert_eq!(g.redis_up(), Some(false));
        local.extend(admitted);
    }
    let outage_metrics = {
        let mut text = String::new();
        g.render_metrics(&mut text);
        text
    };
    assert!(outage_metrics.contains("corelay_governance_redis_up 0"), "{outage_metrics}");
    assert!(outage_metrics.contains("corelay_governance_redis_outages_total 1"), "{outage_metrics}");
    for r in local {
        r.settle(T0 + MINUTE + 40, usage(10, 500));
    }
    in_flight.settle(T0 + MINUTE + 40, usage(10, 2_000));

    redis.restart();
    assert!(
        eventually(Duration::from_secs(10), || governors.iter().all(|g| g.redis_up() == Some(true))),
        "every instance reconnects by itself"
    );
    let expected = 10 * 1_000 + 2_000 + 60 * 500;
    assert!(
        eventually(Duration::from_secs(10), || redis.counter("flow", "spent_total") == expected),
        "spend after the switch: {} (want {expected})",
        redis.counter("flow", "spent_total")
    );

    // Shared again: a new request is counted in Redis, and nothing owed arrives twice.
    let r = g.admit(&key, "acme/chat", T0 + 2 * MINUTE, usage(10, 100)).wait().unwrap();
    assert!(r.is_shared());
    r.settle(T0 + 2 * MINUTE, usage(10, 100));
    assert!(eventually(Duration::from_secs(5), || redis.counter("flow", "spent_total") == expected + 100));
    shutdown(governors);
    assert_eq!(redis.counter("flow", "spent_total"), expected + 100);
}

#[test]
fn keys_created_in_redis_are_accepted_by_every_instance_until_revoked() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, "");
    let secret = records::new_secret().unwrap();
    let policy = corelay::governance::KeyPolicy {
        name: "runtime".into(),
        hash: sha256(secret.as_bytes()),
        models: Some(vec!["acme/*".into()]),
        ..Default::default()
    };
    let record = records::KeyRecord::from_policy(&policy, 0);
    assert!(records::create(&mut redis.connect(), "corelay", &record).unwrap());
    assert!(!records::create(&mut redis.connect(), "corelay", &record).unwrap(), "names are unique");
    assert!(eventually(Duration::from_secs(5), || governors
        .iter()
        .all(|g| g.authenticate(secret.as_bytes()).is_some())));

    let g = &governors[1];
    let key = g.authenticate(secret.as_bytes()).unwrap();
    assert_eq!(g.admit(&key, "other/model", T0, usage(1, 0)).wait().unwrap_err().status, 403);
    drop(g.admit(&key, "acme/chat", T0, usage(1, 0)).wait().unwrap());

    assert!(records::revoke(&mut redis.connect(), "corelay", "runtime").unwrap());
    assert!(eventually(Duration::from_secs(5), || governors
        .iter()
        .all(|g| g.authenticate(secret.as_bytes()).is_none())));
    shutdown(governors);
}

#[test]
fn a_monoio_worker_awaits_a_shared_admission_without_blocking() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("worker", "rpm = 2"));
    let g = governors[0].clone();
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
    let (first, second, third) = runtime.block_on(async move {
        let key = g.key("worker").unwrap();
        let mut pending = g.admit(&key, "acme/chat", T0, usage(1, 0));
        assert!(pending.now_or_never().is_none(), "a shared admission waits for Redis");
        let first = pending.await;
        let second = g.admit(&key, "acme/chat", T0, usage(1, 0)).await;
        let third = g.admit(&key, "acme/chat", T0, usage(1, 0)).await;
        (first.map(|r| r.is_shared()), second.is_ok(), third.map(drop).unwrap_err().status)
    });
    assert_eq!((first, second, third), (Ok(true), true, 429));
    shutdown(governors);
}

#[test]
fn the_admin_api_manages_keys_through_the_governance_thread() {
    use corelay::governance::records::{KeyAdmin, KeyAdminAnswer, KeyRecord};
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, "");
    let (a, b) = (&governors[0], &governors[1]);
    let record = KeyRecord { name: "svc".into(), rpm: Some(7), ..Default::default() };
    let KeyAdminAnswer::Secret { secret, .. } =
        a.administer_keys(KeyAdmin::Create(record.clone())).unwrap().wait().unwrap()
    else {
        panic!("create answers the secret")
    };
    assert!(a.authenticate(secret.as_bytes()).is_some(), "the instance that created it knows it at once");
    assert!(eventually(Duration::from_secs(5), || b.authenticate(secret.as_bytes()).is_some()));
    assert_eq!(a.administer_keys(KeyAdmin::Create(record)).unwrap().wait(), Ok(KeyAdminAnswer::Exists));
    let KeyAdminAnswer::Listed(listed) = b.administer_keys(KeyAdmin::List).unwrap().wait().unwrap() else {
        panic!("list answers the records")
    };
    assert_eq!(
        listed.iter().map(|(r, spent)| (r.name.as_str(), r.rpm, *spent)).collect::<Vec<_>>(),
        [("svc", Some(7), 0)]
    );
    assert_eq!(b.administer_keys(KeyAdmin::Revoke("svc".into())).unwrap().wait(), Ok(KeyAdminAnswer::Revoked));
    assert!(b.authenticate(secret.as_bytes()).is_none());
    assert_eq!(b.administer_keys(KeyAdmin::Rotate("svc".into())).unwrap().wait(), Ok(KeyAdminAnswer::NotFound));
    shutdown(governors);
}

/// Concurrency slots are counted inside one batch script call (reservations opened and closed by
/// the same call included) and across instances: 30 at once on three instances hold exactly the 3
/// slots; released, exactly 3 again.
#[test]
fn concurrent_requests_hold_exactly_the_keys_slots_across_three_instances() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("slots", "max_concurrent = 3"));
    let open = || redis.connect().call(&["ZCARD", "corelay:k:slots:open"]).unwrap().as_int();

    // Redis holds every command for 300 ms, so admissions queue up behind each instance's first and
    // reach the script together (the count within one call is what this exercises); holding or not,
    // exactly 3 may be admitted.
    redis.connect().call(&["CLIENT", "PAUSE", "300", "ALL"]).unwrap();
    let first = admit_concurrently(&governors, "slots", 30, T0, usage(10, 0));
    assert_eq!(first.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(first.iter().filter_map(|r| r.as_ref().err()).all(|d| d.reason == DenialReason::Concurrency));
    assert_eq!(open(), Some(3));
    drop(first);
    assert!(eventually(Duration::from_secs(5), || open() == Some(0)), "releases reach Redis");

    redis.connect().call(&["CLIENT", "PAUSE", "300", "ALL"]).unwrap();
    let second = admit_concurrently(&governors, "slots", 30, T0 + 1_000, usage(10, 0));
    assert_eq!(second.iter().filter(|r| r.is_ok()).count(), 3, "released slots are free again, and no more");
    drop(second);
    shutdown(governors);
}

/// Windows only move forward: an instance whose clock is behind counts into the newest minute
/// (stricter), never back into an older one that would start from zero.
#[test]
fn a_lagging_clock_counts_into_the_newest_minute() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("lag", "rpm = 2"));

    let ahead = admit_concurrently(&governors[..1], "lag", 2, T0 + MINUTE, usage(1, 0));
    assert!(ahead.iter().all(Result::is_ok));
    let behind = admit_concurrently(&governors[1..2], "lag", 1, T0 + MINUTE - 1, usage(1, 0));
    assert_eq!(behind[0].as_ref().err().map(|d| d.reason), Some(DenialReason::RequestsPerMinute));
    assert_eq!((redis.counter("lag", "minute"), redis.counter("lag", "rpm")), ((T0 / MINUTE + 1) as i64, 2));
    drop((ahead, behind));
    shutdown(governors);
}

/// A Redis that stops answering (paused 3 s, longer than `redis_timeout_ms` = 500) is given up when
/// the batch waiting on it is overdue: the admission is decided locally within about the timeout,
/// not after the pause, and shared enforcement resumes once Redis answers again.
#[test]
fn a_redis_that_stops_answering_is_given_up_after_its_timeout() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let governors = three(&redis, &key_entry("hung", "rpm = 100"));
    let key = governors[0].key("hung").unwrap();

    redis.connect().call(&["CLIENT", "PAUSE", "3000", "ALL"]).unwrap();
    let started = std::time::Instant::now();
    let reservation = governors[0].admit(&key, "acme/chat", T0, usage(1, 0)).wait().expect("admitted locally");
    let waited = started.elapsed();
    assert!(!reservation.is_shared(), "decided by this instance's local share");
    assert!(waited < Duration::from_millis(2_500), "gave up after {waited:?}, not at the timeout");
    assert_eq!(governors[0].redis_up(), Some(false));
    assert!(eventually(Duration::from_secs(10), || governors[0].redis_up() == Some(true)), "resumed");
    drop(reservation);
    shutdown(governors);
}

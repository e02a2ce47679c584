//! The embedded governor (no Redis): limits exact across threads, allowances, the state file that
//! carries spend across a restart, and an admission awaited on a monoio worker as the pipeline will.

mod governance_support;

use std::sync::{Arc, Barrier};

use corelay::governance::{DenialReason, Governor, Usage, hash_hex, sha256};
use governance_support::{TempDir, governor};

const T0: u64 = 1_800_000_000_000;

fn usage(tokens: u64, cost_micros: u64) -> Usage {
    Usage { tokens, cost_micros }
}

fn keys(state_file: Option<&std::path::Path>) -> String {
    let state = state_file.map_or(String::new(), |p| format!("[governance]\nstate_file = \"{}\"\n", p.display()));
    let hash = hash_hex(&sha256(b"sk-hashed-0123456789"));
    format!(
        "{state}[[keys]]\nname = \"team\"\nkey = \"sk-team-0123456789\"\nbudget_micros_per_day = 1000\n\
         max_concurrent = 4\nmodels = [\"acme/*\"]\nexpires_at = 2027-06-01T00:00:00Z\n\
         [[keys]]\nname = \"hashed\"\nkey_sha256 = \"{hash}\"\n"
    )
}

#[test]
fn keys_authenticate_by_hash_and_allowances_answer_403() {
    let g = governor(&keys(None));
    assert!(g.authenticate(b"sk-team-0123456789").is_some_and(|k| k.name() == "team"));
    assert!(g.authenticate(b"sk-hashed-0123456789").is_some_and(|k| k.name() == "hashed"));
    assert!(g.authenticate(b"sk-team-012345678").is_none());
    let team = g.key("team").unwrap();
    let denial = g.admit(&team, "other/model", T0, usage(1, 1)).wait().unwrap_err();
    assert_eq!((denial.status, denial.reason), (403, DenialReason::ModelNotAllowed));
    let after_expiry = 1_800_000_000_000 + 365 * 86_400_000;
    let denial = g.admit(&team, "acme/chat", after_expiry, usage(1, 1)).wait().unwrap_err();
    assert_eq!((denial.status, denial.reason), (403, DenialReason::Expired));
}

#[test]
fn concurrency_is_capped_and_a_dropped_reservation_frees_its_slot() {
    let g = governor(&keys(None));
    let team = g.key("team").unwrap();
    let held: Vec<_> = (0..4).map(|_| g.admit(&team, "acme/chat", T0, usage(1, 0)).wait().unwrap()).collect();
    let denial = g.admit(&team, "acme/chat", T0, usage(1, 0)).wait().unwrap_err();
    assert_eq!((denial.status, denial.reason, denial.retry_after_s), (429, DenialReason::Concurrency, Some(1)));
    drop(held);
    assert!(g.admit(&team, "acme/chat", T0, usage(1, 0)).wait().is_ok());
    let mut metrics = String::new();
    g.render_metrics(&mut metrics);
    assert!(metrics.contains("corelay_governance_admitted_total 5\n"), "{metrics}");
    assert!(metrics.contains("corelay_governance_denied_total{reason=\"concurrency\"} 1\n"), "{metrics}");
    assert!(metrics.contains("corelay_governance_denied_total{reason=\"rpm\"} 0\n"), "{metrics}");
}

#[test]
fn a_daily_budget_is_exact_under_threads_and_survives_a_restart() {
    let dir = TempDir::new("governance-state");
    let state = dir.0.join("state.json");
    let g = governor(&keys(Some(&state)));
    let start = Arc::new(Barrier::new(16));
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (g, start) = (g.clone(), Arc::clone(&start));
                s.spawn(move || {
                    let team = g.key("team").unwrap();
                    start.wait();
                    (0..10)
                        .filter_map(|_| g.admit(&team, "acme/chat", T0, usage(5, 30)).wait().ok())
                        .map(|r| r.settle(T0, usage(5, 25)))
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // Each admission needs 30 free; each settles at 25. Whatever the interleaving, what was spent
    // is 25 per admission and never more than the budget.
    let spent = g.counters(T0).into_iter().find(|(n, _)| n == "team").unwrap().1.spend_micros_today;
    assert_eq!(spent, admitted as u64 * 25);
    assert!(spent <= 1000 && spent > 1000 - 30, "spent {spent}");
    g.shutdown();

    let restarted = governor(&keys(Some(&state)));
    let after = restarted.counters(T0).into_iter().find(|(n, _)| n == "team").unwrap().1;
    assert_eq!(after.spend_micros_today, spent, "the state file carried the day's spend");
    let team = restarted.key("team").unwrap();
    let denial = restarted.admit(&team, "acme/chat", T0, usage(5, 30)).wait().unwrap_err();
    assert_eq!((denial.status, denial.reason), (403, DenialReason::BudgetPerDay));
    restarted.shutdown();
}

#[test]
fn an_admission_is_awaited_on_a_monoio_worker() {
    let g: Governor = governor(&keys(None));
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
    let outcome = runtime.block_on(async {
        let team = g.key("team").unwrap();
        let reservation = g.admit(&team, "acme/chat", T0, usage(3, 7)).await.unwrap();
        reservation.settle(T0, usage(2, 5));
        g.counters(T0).into_iter().find(|(n, _)| n == "team").unwrap().1
    });
    assert_eq!((outcome.spend_micros_today, outcome.tokens_this_minute, outcome.in_flight), (5, 2, 0));
}

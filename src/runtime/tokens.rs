//! The access-token refresher: one thread that fetches each Vertex service account's access token,
//! fetches a new one well before the old one expires, and sends every new token to every worker.
//!
//! Requests never wait on it: a worker builds requests with the newest token it has been sent. The
//! gateway fetches the first round before workers start, so Vertex works from the first request; a
//! fetch that fails is retried with backoff while the previous token, if any, is still served. It
//! owns no worker state; the control thread tells it about reloads, and it exits when the control
//! thread drops that channel. Scheduling (`Schedule`) is sans-IO and tested on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustls_pki_types::CertificateDer;

use crate::config::ResolvedConfig;
use crate::config::resolve::ServiceAccountSettings;
use crate::credentials::vertex::{AccessToken, parse_token_response, token_request_body};
use crate::messages::{ToControl, WorkerCommand};
use crate::upstream::blocking::post_form;

/// Bound on one token exchange (connect, each read, and the whole answer).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long before expiry a token is replaced, at most; short-lived tokens are replaced after three
/// quarters of their life.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Backoff after failed fetches: 1 s, doubling, at most this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A provider's service account, with what its token exchange trusts.
#[derive(Debug, Clone)]
pub struct Account {
    pub provider: String,
    pub settings: ServiceAccountSettings,
    /// The provider's `ca_file` roots, trusted for the token URL too (a private token endpoint).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Account {
    /// Same provider, key file, account and token URL: its token stays good across a reload.
    fn same_as(&self, other: &Account) -> bool {
        let (a, b) = (&self.settings, &other.settings);
        self.provider == other.provider
            && a.file == b.file
            && a.token_url == b.token_url
            && a.account.client_email == b.account.client_email
            && a.account.private_key_id == b.account.private_key_id
    }
}

/// Every service account `config` names.
pub fn accounts(config: &ResolvedConfig) -> Vec<Account> {
    let with_account = |p: &Arc<crate::config::resolve::ResolvedProvider>| {
        let settings = p.vertex.as_ref()?.service_account.clone()?;
        Some(Account { provider: p.name.to_string(), settings, extra_roots: p.extra_roots.clone() })
    };
    config.providers.values().filter_map(with_account).collect()
}

/// One token exchange: sign an assertion, post it, read the token and how long it lasts (counted
/// from before the request left, so never longer than the endpoint meant). The error names the
/// provider and the endpoint's reason, never a secret.
pub fn fetch(account: &Account) -> Result<(AccessToken, Duration), String> {
    let why =
        |e: String| format!("provider `{}`: access token from {}: {e}", account.provider, account.settings.token_url);
    let now_ms = crate::clock::unix_now_ms();
    let assertion = account
        .settings
        .account
        .assertion(&account.settings.token_url, now_ms / 1000)
        .map_err(|e| why(e.to_string()))?;
    let body = token_request_body(&assertion);
    let answer = post_form(&account.settings.token_url, &account.extra_roots, body.as_bytes(), FETCH_TIMEOUT)
        .map_err(|e| why(e.to_string()))?;
    let issued = parse_token_response(answer.status, &answer.body).map_err(|e| why(e.to_string()))?;
    let lifetime = Duration::from_secs(issued.expires_in_secs);
    let token = AccessToken {
        provider: account.provider.clone(),
        token: issued.access_token,
        expires_at_unix_ms: now_ms + lifetime.as_millis() as u64,
    };
    Ok((token, lifetime))
}

/// When an account's next fetch is due. Sans-IO: fed outcomes and the time, it answers when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub next_due: Instant,
    failures: u32,
}

impl Schedule {
    pub fn due_now(now: Instant) -> Schedule {
        Schedule { next_due: now, failures: 0 }
    }

    /// A token valid for `lifetime` arrived: replace it `REFRESH_MARGIN` before it expires, or after
    /// three quarters of its life when it is short, and never sooner than a second from now.
    pub fn on_success(&mut self, now: Instant, lifetime: Duration) {
        let margin = REFRESH_MARGIN.min(lifetime / 4);
        self.next_due = now + lifetime.saturating_sub(margin).max(Duration::from_secs(1));
        self.failures = 0;
    }

    /// A fetch failed: try again after 1 s, 2 s, 4 s, ... up to `MAX_RETRY_DELAY`.
    pub fn on_failure(&mut self, now: Instant) {
        let delay = Duration::from_secs(1 << self.failures.min(6)).min(MAX_RETRY_DELAY);
        self.next_due = now + delay;
        self.failures = self.failures.saturating_add(1);
    }
}

/// The first round, fetched before the workers start: the tokens that came, and each account's
/// schedule (failed fetches are retried by the refresher). [`first_round_reports`] turns it into
/// the `/metrics` counts.
pub fn first_round(accounts: Vec<Account>) -> (Vec<AccessToken>, Vec<(Account, Schedule)>) {
    let mut tokens = Vec::new();
    let tracked = accounts
        .into_iter()
        .map(|account| {
            let mut schedule = Schedule::due_now(Instant::now());
            if let Some(token) = fetch_logged(&account, &mut schedule) {
                tokens.push(token);
            }
            (account, schedule)
        })
        .collect();
    (tokens, tracked)
}

/// The first round's outcome per account, as the refresher reports each later fetch.
pub fn first_round_reports(tokens: &[AccessToken], tracked: &[(Account, Schedule)]) -> Vec<ToControl> {
    let report = |(account, _): &(Account, Schedule)| {
        let token = tokens.iter().find(|t| t.provider == account.provider);
        ToControl::AccessToken {
            provider: account.provider.clone(),
            expires_at_unix_ms: token.map(|t| t.expires_at_unix_ms),
        }
    };
    tracked.iter().map(report).collect()
}

/// Fetches and moves `schedule` on by the outcome, logging either way.
fn fetch_logged(account: &Account, schedule: &mut Schedule) -> Option<AccessToken> {
    let started = Instant::now();
    match fetch(account) {
        Ok((token, lifetime)) => {
            schedule.on_success(started, lifetime);
            log::info!("provider `{}`: new access token, valid for {} s", account.provider, lifetime.as_secs());
            Some(token)
        }
        Err(why) => {
            schedule.on_failure(Instant::now());
            log::warn!(
                "{why}; retrying in {} ms",
                schedule.next_due.saturating_duration_since(Instant::now()).as_millis()
            );
            None
        }
    }
}

/// The refresher thread's state.
pub struct Refresher {
    pub tracked: Vec<(Account, Schedule)>,
    pub workers: Vec<Sender<WorkerCommand>>,
    /// Every fetch's outcome, for `/metrics` (sent with `try_send`: a full channel drops one count).
    pub to_control: Sender<ToControl>,
    /// A new set of accounts after each reload; closed when the control thread ends.
    pub reloads: Receiver<Vec<Account>>,
}

impl Refresher {
    /// Runs until the control thread drops its end of `reloads`.
    pub fn run(mut self) {
        loop {
            let next = self.tracked.iter().map(|(_, s)| s.next_due).min();
            let event = match next {
                Some(due) => self.reloads.recv_deadline(due),
                None => self.reloads.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(accounts) => self.on_reload(accounts),
                Err(RecvTimeoutError::Timeout) => self.refresh_due(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Keeps the schedule of accounts that did not change; new or changed ones are due now.
    fn on_reload(&mut self, accounts: Vec<Account>) {
        let now = Instant::now();
        let previous = std::mem::take(&mut self.tracked);
        self.tracked = accounts
            .into_iter()
            .map(|account| {
                let kept = previous.iter().find(|(old, _)| old.same_as(&account)).map(|(_, s)| *s);
                (account, kept.unwrap_or_else(|| Schedule::due_now(now)))
            })
            .collect();
    }

    fn refresh_due(&mut self) {
        let now = Instant::now();
        for (account, schedule) in &mut self.tracked {
            if schedule.next_due > now {
                continue;
            }
            let fetched = fetch_logged(account, schedule);
            let expires_at_unix_ms = fetched.as_ref().map(|t| t.expires_at_unix_ms);
            let report = ToControl::AccessToken { provider: account.provider.clone(), expires_at_unix_ms };
            let _ = self.to_control.try_send(report);
            if let Some(token) = fetched {
                let token = Arc::new(token);
                for worker in &self.workers {
                    // A worker that is gone (shutting down) needs no token.
                    let _ = worker.send(WorkerCommand::AccessToken(Arc::clone(&token)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::vertex::ServiceAccount;

    fn account(provider: &str, token_url: &str) -> Account {
        let file = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/vertex-test-service-account.json"
        ));
        let key = ServiceAccount::from_key_file(&std::fs::read(&file).unwrap()).unwrap();
        let settings = ServiceAccountSettings { account: Arc::new(key), token_url: token_url.into(), file };
        Account { provider: provider.into(), settings, extra_roots: Vec::new() }
    }

    #[test]
    fn a_reload_keeps_unchanged_accounts_schedules_and_fetches_new_or_changed_ones_now() {
        let later = Instant::now() + Duration::from_secs(3000);
        let kept = Schedule { next_due: later, failures: 0 };
        let (_tx, reloads) = crossbeam_channel::unbounded();
        let (to_control, _reports) = crossbeam_channel::unbounded();
        let mut refresher = Refresher {
            tracked: vec![
                (account("a", "https://t/1"), kept),
                (account("b", "https://t/1"), kept),
                (account("gone", "https://t/1"), kept),
            ],
            workers: Vec::new(),
            to_control,
            reloads,
        };

        refresher.on_reload(vec![
            account("a", "https://t/1"),
            account("b", "https://t/2"),
            account("new", "https://t/1"),
        ]);

        let due: Vec<(&str, bool)> =
            refresher.tracked.iter().map(|(a, s)| (a.provider.as_str(), s.next_due == later)).collect();
        assert_eq!(due, [("a", true), ("b", false), ("new", false)]);
        assert!(refresher.tracked.iter().all(|(_, s)| s.next_due <= later));
    }

    #[test]
    fn an_hour_long_token_is_replaced_five_minutes_before_it_expires() {
        let now = Instant::now();
        let mut schedule = Schedule::due_now(now);
        schedule.on_success(now, Duration::from_secs(3599));
        assert_eq!(schedule.next_due, now + Duration::from_secs(3299));
    }

    #[test]
    fn short_tokens_are_replaced_after_three_quarters_of_their_life_and_never_in_a_loop() {
        let now = Instant::now();
        let mut schedule = Schedule::due_now(now);
        schedule.on_success(now, Duration::from_secs(100));
        assert_eq!(schedule.next_due, now + Duration::from_secs(75));
        schedule.on_success(now, Duration::ZERO);
        assert_eq!(schedule.next_due, now + Duration::from_secs(1));
    }

    #[test]
    fn failures_back_off_exponentially_to_a_minute_and_success_resets() {
        let now = Instant::now();
        let mut schedule = Schedule::due_now(now);
        let delays: Vec<u64> = (0..9)
            .map(|_| {
                schedule.on_failure(now);
                (schedule.next_due - now).as_secs()
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        schedule.on_success(now, Duration::from_secs(3600));
        schedule.on_failure(now);
        assert_eq!(schedule.next_due, now + Duration::from_secs(1));
    }
}

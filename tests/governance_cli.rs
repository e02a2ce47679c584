//! `corelay keys create|list|revoke|hash` run as a user would, against a real redis-server (skipped
//! without one), and the created key accepted by a governor sharing that Redis.

mod governance_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use corelay::governance::{hash_hex, sha256};
use governance_support::{Redis, TempDir, eventually, governor, redis_server_binary};

fn corelay(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_corelay")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_hash_prints_the_sha256_of_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelay"))
        .args(["keys", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"sk-team-0123456789\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), hash_hex(&sha256(b"sk-team-0123456789")));
}

#[test]
fn keys_created_listed_and_revoked_from_the_command_line() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let dir = TempDir::new("keys-cli");
    let config_text = format!("[governance]\nredis_url = \"{}\"\n", redis.url());
    let config = dir.0.join("corelay.toml");
    std::fs::write(&config, &config_text).unwrap();
    let config = config.to_str().unwrap();
    let g = governor(&config_text);

    let (ok, out, err) =
        corelay(&["keys", "create", "--config", config, "--name", "ci", "--rpm", "5", "--models", "acme/*"]);
    assert!(ok, "{err}");
    let secret = out.lines().last().unwrap().to_string();
    assert!(secret.starts_with("ck-") && secret.len() == 67, "{out}");
    let (ok, _, err) = corelay(&["keys", "create", "--config", config, "--name", "ci"]);
    assert!(!ok && err.contains("exists"), "{err}");

    let (ok, out, _) = corelay(&["keys", "list", "--config", config]);
    assert!(ok);
    let row = out.lines().find(|l| l.starts_with("ci\t")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("rpm=5") && row.contains("models=acme/*") && !row.contains(&secret[3..]), "{row}");

    assert!(eventually(Duration::from_secs(5), || g.authenticate(secret.as_bytes()).is_some()));
    let (ok, out, err) = corelay(&["keys", "rotate", "--config", config, "--name", "ci"]);
    assert!(ok, "{err}");
    let rotated = out.lines().last().unwrap().to_string();
    assert!(rotated.starts_with("ck-") && rotated != secret);
    assert!(eventually(Duration::from_secs(5), || g.authenticate(secret.as_bytes()).is_none()));
    let key = g.authenticate(rotated.as_bytes()).expect("the new secret works once the old one stopped");
    assert_eq!(key.policy.limits.rpm, Some(5), "rotation keeps the limits");

    let (ok, out, _) = corelay(&["keys", "revoke", "--config", config, "--name", "ci"]);
    assert!(ok, "{out}");
    assert!(eventually(Duration::from_secs(5), || g.authenticate(rotated.as_bytes()).is_none()));
    let (ok, _, err) = corelay(&["keys", "revoke", "--config", config, "--name", "ci"]);
    assert!(!ok && err.contains("no key named"), "{err}");
    g.shutdown();
}

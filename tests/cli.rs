//! The `corelay` command line as a user runs it: `--version` and `corelay check`, through the real
//! binary. It does not start the gateway (`daemon.rs` does) nor test config parsing rules one by one
//! (the config module's unit tests do).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn corelay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corelay")).args(args).output().expect("run corelay")
}

/// The commit the build script should have recorded: HEAD when this is a git checkout.
fn expected_commit() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    if !std::path::Path::new(root).join(".git").exists() {
        return "unknown".into();
    }
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(root).output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap().trim().to_string(),
        _ => "unknown".into(),
    }
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = corelay(&["--version"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let expected = format!("corelay {} (commit {})\n", env!("CARGO_PKG_VERSION"), expected_commit());
    assert_eq!(stdout, expected);
}

/// A variable no test machine sets; removed from the child's environment besides.
const UNSET_VAR: &str = "CORELAY_CLI_TEST_SURELY_UNSET_VAR";

/// A config with three problems: a semantic one (max_body_bytes = 0), and one provider whose host
/// cannot resolve (a DNS label over 63 characters is refused before any packet is sent) and whose
/// key variable is unset.
fn broken_config() -> String {
    let host = format!("{}.invalid", "a".repeat(64));
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 0\n\n\
         [providers.remote]\nkind = \"openai\"\nbase_url = \"https://{host}/v1\"\napi_key_env = \"{UNSET_VAR}\"\n\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"remote\", model = \"gpt-4o-mini\" }}]\n"
    )
}

/// Runs `corelay check [extra] --config FILE` on `text`; returns (exit code, stdout, stderr).
fn check(text: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    // Tests run in parallel: each call gets its own file.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("corelay-cli-check-{}-{call}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    args.extend(["--config", path.to_str().unwrap()]);
    let out =
        Command::new(env!("CARGO_BIN_EXE_corelay")).args(&args).env_remove(UNSET_VAR).output().expect("run corelay");
    let _ = std::fs::remove_file(&path);
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_lists_every_problem_at_once_and_calls_a_dns_failure_one() {
    let (code, _, stderr) = check(&broken_config(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(": 3 error(s)\n"), "{stderr}");
    assert!(stderr.contains(":3: server.max_body_bytes: "), "{stderr}");
    assert!(stderr.contains(":7: providers.remote.base_url: DNS lookup of `aaaa"), "{stderr}");
    // The failed lookup does not hide the same provider's missing key.
    assert!(stderr.contains(&format!(":8: providers.remote.api_key_env: environment variable {UNSET_VAR} is not set")));
    assert!(stderr.contains("1 of these are failed DNS lookups"), "{stderr}");
    assert!(stderr.contains("corelay check --offline"), "{stderr}");
}

#[test]
fn check_offline_skips_dns_and_still_reports_everything_else() {
    let (code, _, stderr) = check(&broken_config(), &["--offline"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(": 2 error(s)\n"), "{stderr}");
    assert!(stderr.contains("server.max_body_bytes"), "{stderr}");
    assert!(stderr.contains("providers.remote.api_key_env"), "{stderr}");
    assert!(!stderr.contains("DNS"), "{stderr}");

    let fixed = broken_config().replace("max_body_bytes = 0\n", "").replace(UNSET_VAR, "PATH");
    let (code, stdout, stderr) = check(&fixed, &["--offline"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(": ok (1 providers, 1 models, 0 keys,"), "{stdout}");
    assert!(stdout.contains("provider hosts not looked up (--offline)"), "{stdout}");
}

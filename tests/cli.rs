//! The `corelay` command line as a user runs it: `--version` and `corelay check`, through the real
//! binary. It does not start the gateway (`daemon.rs` does) nor test config parsing rules one by one
//! (the config module's unit tests do).

use std::process::{Command, Output};

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

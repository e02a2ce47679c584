//! Build script: records the git commit the binary is built from, for `corelay --version`. It does
//! nothing else (no code generation, no network). Outside a git checkout (a source tarball) the
//! commit is `CORELAY_BUILD_COMMIT` when set, else "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CORELAY_BUILD_COMMIT");
    let commit = std::env::var("CORELAY_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).or_else(git_commit);
    println!("cargo:rustc-env=CORELAY_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}

/// The abbreviated HEAD commit, with cargo told to rerun when HEAD moves; `None` outside git.
fn git_commit() -> Option<String> {
    if !Path::new(".git").exists() {
        return None;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    for file in head_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Some(commit)
}

/// The files whose change means HEAD names another commit: HEAD itself, the branch it points to
/// (a loose ref or packed-refs). Only existing files: cargo reruns every build for a missing one.
fn head_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        files.push(PathBuf::from(git_dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = PathBuf::from(common);
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            files.push(common.join(branch));
        }
        files.push(common.join("packed-refs"));
    }
    files.retain(|f| f.exists());
    files
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

//! Checks that the repository carries what its tests read: no file in it points at the fixture tree
//! that used to lie beside the checkout, and `tests/fixtures` matches its `SHA256SUMS` exactly (every
//! file listed, every listed file present and unchanged). It does not check what each test reads;
//! the tests themselves fail when a recording is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The old out-of-repository locations, spelt in pieces so this file does not match itself.
const FORBIDDEN: [&str; 2] = [concat!("shared", "/fixtures"), concat!("shared", "/protocols")];

/// Directories that are build output or installed tools and packages, not repository content.
const NOT_CONTENT: [&str; 5] = ["target", "node_modules", ".git", ".venv", ".tools"];

/// The repository's files: `git ls-files` in a clone, else every file under the root but build
/// output (a source tarball has no `.git`).
fn repository_files() -> Vec<PathBuf> {
    let listed = Command::new("git").args(["ls-files", "-z"]).current_dir(ROOT).output();
    match listed {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout)
            .expect("git ls-files prints UTF-8 paths")
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(|p| Path::new(ROOT).join(p))
            .collect(),
        _ => walk(Path::new(ROOT)),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if NOT_CONTENT.iter().any(|skip| name == *skip || name.starts_with("target-")) {
            continue;
        }
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn no_file_reads_fixtures_from_outside_the_repository() {
    let mut offenders = Vec::new();
    for path in repository_files() {
        // A file deleted in the work tree but still in the index is not content any more.
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if FORBIDDEN.iter().any(|needle| line.contains(needle)) {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "files that point outside the repository for fixtures:\n{}", offenders.join("\n"));
}

/// `SHA256SUMS` as (relative path, lowercase hex digest), in file order.
fn listed_sums(fixtures: &Path) -> Vec<(String, String)> {
    let sums = std::fs::read_to_string(fixtures.join("SHA256SUMS")).expect("tests/fixtures/SHA256SUMS");
    sums.lines()
        .map(|line| {
            let (digest, path) = line.split_once("  ").unwrap_or_else(|| panic!("not a sha256sum line: {line}"));
            (path.to_string(), digest.to_string())
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn fixture_tree_matches_its_checksums() {
    let fixtures = PathBuf::from(corelay::fixture_path!());
    let listed = listed_sums(&fixtures);
    for (path, digest) in &listed {
        let bytes = std::fs::read(fixtures.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(&sha256_hex(&bytes), digest, "{path} differs from its SHA256SUMS line");
    }
    let mut present: Vec<String> = walk(&fixtures)
        .iter()
        .map(|p| p.strip_prefix(&fixtures).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != "SHA256SUMS" && p != "INDEX.md")
        .collect();
    present.sort();
    let mut names: Vec<String> = listed.into_iter().map(|(path, _)| path).collect();
    names.sort();
    assert_eq!(present, names, "files in tests/fixtures and lines of SHA256SUMS differ");
}

//! What the golden tests share: expected-output files, compared byte for byte or (re)written when
//! the tests run with `CORELAY_BLESS=1`, and the corrupted-input corpus of their never-panic tests.
//! It owns no translation code and knows nothing of any format.

use std::path::Path;

/// A file's bytes; a missing file names itself in the panic.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blessing() -> bool {
    std::env::var_os("CORELAY_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the expected file `name` under `dir`, or writes it when blessing.
pub fn check(dir: &str, name: &str, actual: &[u8]) {
    let path = Path::new(dir).join(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = read(&path);
    if expected != actual {
        panic!(
            "{name} differs from its expected file\n--- expected\n{}\n--- actual\n{}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual)
        );
    }
}

/// Corrupts `body` one byte at a time with JSON-significant bytes, and truncates it at every offset.
pub fn mutations(body: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let flips = (0..body.len()).flat_map(move |at| {
        [b'"', b'{', b'}', b'[', b']', b'0', b'\\', b':', b',', 0xff].into_iter().map(move |byte| {
            let mut mutated = body.to_vec();
            mutated[at] = byte;
            mutated
        })
    });
    (0..body.len()).map(|at| body[..at].to_vec()).chain(flips)
}

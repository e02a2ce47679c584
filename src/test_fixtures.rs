//! Where the recorded provider traffic lives: `tests/fixtures` in this repository (provenance in
//! `tests/fixtures/INDEX.md`), and the unit tests' shared deterministic generator. It owns only the
//! path and the generator; the readers of each recording live with their tests. A macro rather than a function so unit tests, integration tests and benches all get a
//! `&'static str` built with `concat!` in their own crate (`CARGO_MANIFEST_DIR` of the caller).

/// The fixture root, or a path under it: `fixture_path!()` is `<crate>/tests/fixtures`,
/// `fixture_path!("openai/chat/")` is `<crate>/tests/fixtures/openai/chat/`.
#[doc(hidden)]
#[macro_export]
macro_rules! fixture_path {
    () => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")
    };
    ($relative:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/", $relative)
    };
}

/// One step of xorshift64 (13, 7, 17): the unit tests that feed arbitrary inputs and splits draw from
/// it, so they need no dependency and a failure reproduces from its seed. `seed` must not be 0.
#[cfg(test)]
pub fn xorshift(mut seed: u64) -> u64 {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    seed
}

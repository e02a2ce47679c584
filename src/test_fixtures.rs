//! Where the recorded provider traffic lives: `tests/fixtures` in this repository (provenance in
//! `tests/fixtures/INDEX.md`). It owns only the path; the readers of each recording live with their
//! tests. A macro rather than a function so unit tests, integration tests and benches all get a
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

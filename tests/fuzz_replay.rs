//! The fuzz targets on stable Rust: every file of every corpus (fuzz/corpus/<target>/, seeds and
//! what campaigns found, minimised crashes included) replayed through the target it belongs to, then
//! a fixed budget of proptest cases per target, each a corpus file with random edits, so CI explores
//! a little without nightly; plus deep-nesting checks on a worker-sized stack, which libFuzzer's
//! small inputs on an 8 MiB stack cannot reach. It owns no target logic (that is fuzz/targets.rs,
//! shared with the cargo-fuzz binaries).

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per target. Debug builds run the targets slowly (JSON parsing, encoders); this keeps the
/// whole file within a few seconds per target.
const CASES_PER_TARGET: u32 = 512;
/// The most edits applied to one seed.
const MAX_EDITS: usize = 12;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// Every file in a target's corpus, sorted by name so failures are reproducible.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths.into_iter().map(|path| (path.clone(), std::fs::read(&path).expect("corpus file"))).collect()
}

#[test]
fn every_corpus_file_replays_cleanly() {
    let mut replayed = 0;
    for (target, run) in targets::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "{target}: empty corpus");
        for (path, bytes) in files {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            replayed += 1;
        }
    }
    assert!(replayed >= targets::TARGETS.len());
}

/// One random edit of a seed: overwrite, insert or delete a byte, or cut the tail.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the grammars under test are drawn more often than the rest.
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"\r\n:{}[]\",0123456789abcdef; \t\x00\xff".to_vec())];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Set(at, b) if len > 0 => bytes[at % len] = b,
            Edit::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Edit::Remove(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
    bytes
}

/// A fixed seed per target: CI explores the same cases every run, so a failure is reproducible.
fn runner(target: &str) -> TestRunner {
    let config = Config { cases: CASES_PER_TARGET, failure_persistence: None, ..Config::default() };
    let seed: [u8; 32] = std::array::from_fn(|i| target.as_bytes().get(i).copied().unwrap_or(i as u8));
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

fn explore(target: &str, run: fn(&[u8])) {
    let seeds: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, bytes)| bytes).collect();
    let strategy = (prop::sample::select(seeds), prop::collection::vec(edit(), 0..MAX_EDITS));
    let outcome = runner(target).run(&strategy, |(seed, edits)| {
        let input = apply(seed, &edits);
        let result = std::panic::catch_unwind(|| run(&input));
        prop_assert!(result.is_ok(), "{target} fails on {:?}", String::from_utf8_lossy(&input));
        Ok(())
    });
    if let Err(error) = outcome {
        panic!("{target}: {error}");
    }
}

macro_rules! explore_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                explore(stringify!($name), targets::$name);
            }
        )*
    };
}

mod explore {
    use super::{explore, targets};

    explore_tests!(
        request_head,
        response_head,
        chunked_body,
        sse_decoder,
        aws_eventstream,
        translate_anthropic,
        translate_gemini,
        translate_openai_chat,
        translate_openai_responses,
        translate_bedrock_converse,
        translate_bedrock_invoke,
        request_bodies,
        audit_openai_chat,
        audit_anthropic_messages,
        audit_openai_responses,
        audit_by_difference,
    );
}

/// Runs `target` on `input` on a thread with std's default 2 MiB stack, the size Corelay's worker
/// threads get (they set none), so stack use the fuzzer's 8 MiB main thread survives shows here.
fn on_worker_sized_stack(target: targets::Target, input: Vec<u8>) {
    let thread = std::thread::Builder::new().stack_size(2 << 20).spawn(move || target(&input));
    thread.expect("spawn").join().expect("target panicked");
}

/// A body nested 1,000,000 `[` deep (issue #15 item 1): the nesting check refuses it before the
/// recursive `route_fields::extract` sees it, also when a syntax error comes first (the check then
/// lets the body through, and extract must stop at that error before it recurses).
#[test]
fn deeply_nested_request_bodies_do_not_overflow_the_stack() {
    let prefixes: [&[u8]; 5] = [
        br#"{"model":"a/b","messages":"#,
        b"{\"x\":\"\xff\",\"model\":\"a/b\",\"messages\":",
        b"{\"x\":\"\x01\",\"model\":\"a/b\",\"messages\":",
        br#"{"x":01,"model":"a/b","messages":"#,
        br#"{"x":[1,],"model":"a/b","messages":"#,
    ];
    for prefix in prefixes {
        let mut body = prefix.to_vec();
        body.extend(std::iter::repeat_n(b'[', 1_000_000));
        on_worker_sized_stack(targets::request_bodies, body);
    }
}

/// The SSE translators parse each event with a depth-limited parser: a first event nested 1,000,000
/// deep ends the stream with an error, it does not overflow the stack. (The proxy's hold of the first
/// event, outside the translators, is issue #15 item 1.)
#[test]
fn deeply_nested_provider_events_do_not_overflow_the_translators() {
    for target in [
        targets::translate_anthropic,
        targets::translate_gemini,
        targets::translate_openai_chat,
        targets::translate_openai_responses,
    ] {
        let mut stream = b"\xffdata: ".to_vec();
        stream.extend(std::iter::repeat_n(b'[', 1_000_000));
        stream.extend_from_slice(b"\n\n");
        on_worker_sized_stack(target, stream);
    }
}

//! The "split at every byte offset" check shared by the golden tests of translated streams, in
//! linear rather than quadratic time. It owns no translation code: callers pass a relay state (a
//! provider translator and a client encoder) with its `feed` and `finish`.
//!
//! Feeding a body in two pieces split at offset `at` must give the client exactly the bytes that
//! feeding it whole gives. Checking that naively re-translates the whole body for every offset,
//! which for the largest recording (47 KB) is minutes in a debug build. Instead the body is cut into
//! segments at event boundaries and fed segment by segment from one reference run, snapshotting the
//! state before each segment. A split inside segment `i` is then checked from snapshot `i`: the two
//! pieces of the segment must give the segment's reference bytes *and* leave a state whose `Debug`
//! rendering equals snapshot `i + 1`. Equal states continue identically, so every split is covered,
//! and one whole-body run checks that segment-wise feeding itself changes nothing.

use std::fmt::Debug;

/// Offsets just after each blank line (`\n\n`, or `\r\n\r\n` as Gemini frames events), with 0 and
/// `input.len()`.
fn boundaries(input: &[u8]) -> Vec<usize> {
    let mut cuts = vec![0];
    cuts.extend(input.windows(2).enumerate().filter(|(_, w)| *w == b"\n\n").map(|(i, _)| i + 2));
    cuts.extend(input.windows(4).enumerate().filter(|(_, w)| *w == b"\r\n\r\n").map(|(i, _)| i + 4));
    cuts.sort_unstable();
    if cuts.last() != Some(&input.len()) {
        cuts.push(input.len());
    }
    cuts.dedup();
    cuts
}

/// Asserts the split property for `input` and returns the client bytes of the whole body.
pub fn assert_every_split<S: Clone + Debug>(
    fresh: &S,
    input: &[u8],
    feed: impl Fn(&mut S, &[u8], &mut Vec<u8>),
    finish: impl Fn(&mut S, &mut Vec<u8>),
    name: &str,
) -> Vec<u8> {
    let cuts = boundaries(input);
    let last = cuts.len() - 2;
    // The reference run, segment by segment; the last segment's bytes include the finish.
    let mut snapshots = Vec::with_capacity(cuts.len());
    let mut segments = Vec::with_capacity(cuts.len());
    let mut state = fresh.clone();
    for (i, window) in cuts.windows(2).enumerate() {
        snapshots.push(state.clone());
        let mut out = Vec::new();
        feed(&mut state, &input[window[0]..window[1]], &mut out);
        if i == last {
            finish(&mut state, &mut out);
        }
        segments.push(out);
    }
    snapshots.push(state);
    let whole = segments.concat();
    let mut once = fresh.clone();
    let mut once_out = Vec::new();
    feed(&mut once, input, &mut once_out);
    finish(&mut once, &mut once_out);
    assert!(once_out == whole, "{name}: feeding whole differs from feeding event by event");

    for (i, window) in cuts.windows(2).enumerate() {
        let expected_state = format!("{:?}", snapshots[i + 1]);
        for at in window[0] + 1..window[1] {
            let mut state = snapshots[i].clone();
            let mut out = Vec::new();
            feed(&mut state, &input[window[0]..at], &mut out);
            feed(&mut state, &input[at..window[1]], &mut out);
            if i == last {
                finish(&mut state, &mut out);
            } else {
                assert!(format!("{state:?}") == expected_state, "{name}: state differs after a split at {at}");
            }
            assert!(out == segments[i], "{name}: split at {at} gives other bytes");
        }
    }
    whole
}

#[test]
fn a_split_sensitive_relay_is_caught() {
    // Writes a byte for every piece that does not end an event: the same whole and event by event,
    // but not when an event is split.
    let feed = |_: &mut (), piece: &[u8], out: &mut Vec<u8>| {
        if !piece.ends_with(b"\n\n") {
            out.push(b'.');
        }
    };
    let input = b"data: a\n\ndata: b";
    let caught = std::panic::catch_unwind(|| assert_every_split(&(), input, feed, |_, _| {}, "t"));
    assert!(caught.is_err());
    let honest = |_: &mut (), piece: &[u8], out: &mut Vec<u8>| out.extend_from_slice(piece);
    assert_eq!(assert_every_split(&(), input, honest, |_, _| {}, "t"), input);
}

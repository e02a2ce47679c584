//! Turns the pieces of a Gemini function call whose arguments stream (`partialArgs`, sent by Gemini 3
//! when a request sets `streamFunctionCallArguments`) into the arguments' JSON text, incrementally,
//! so a client sees the arguments as they arrive instead of all at the end. It reads no wire JSON
//! (`wire.rs` does) and emits no events (`stream.rs` does): pieces in, text out, no I/O.
//!
//! Each piece fills one leaf named by a JSONPath (`$.recipe.ingredients[0].amount`). The text written
//! so far is always a prefix of the final object, and a stack of open containers follows the path of
//! the last value written. A piece at a new path closes the containers beyond the common prefix
//! (`}` / `]`), writes `,` between siblings, opens the new containers and keys, then the value. A
//! string may come in pieces on one path: it stays open until a piece without `willContinue` (often
//! an empty `stringValue`) or a piece at another path ends it. [`ArgsAssembler::finish`] closes
//! whatever is still open; a call that streamed no piece is `{}`.
//!
//! Order: Gemini fills the object depth first, in order (indices 0, 1, ...; a key, once left, never
//! comes back). A piece that would need to go back (a key already written, an index already passed)
//! or to skip (an index beyond the next) cannot be placed: the text before it has gone to the client
//! and cannot be taken back, and dropping or moving the piece would hand the client a call with
//! arguments other than the model's, which it would run. So such a piece is an [`ArgsError`], and
//! the stream ends with an error rather than a wrong call. So does a path that names no member of
//! the arguments object (`$`, `$[0]`, wildcards); keys that dots cannot name may come bracketed
//! (`$['a.b']`).

use std::borrow::Cow;
use std::fmt;

use crate::sse::escape_json_str;

/// One `partialArgs` entry: the leaf it fills, its value, and whether more of a string follows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ArgPiece<'a> {
    pub(super) path: &'a str,
    pub(super) value: ArgValue<'a>,
    /// `willContinue`: the string goes on in a later piece on the same path (other values are
    /// always whole).
    pub(super) more: bool,
}

/// The value of a piece (`stringValue`, `numberValue`, `boolValue`, `nullValue`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ArgValue<'a> {
    /// A piece of a string, unescaped.
    String(&'a str),
    Number(serde_json::Number),
    Bool(bool),
    Null,
}

/// A piece that cannot be written into the text already sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArgsError {
    path: String,
    problem: &'static str,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.path, self.problem)
    }
}

impl ArgsError {
    fn new(path: &str, problem: &'static str) -> Self {
        Self { path: path.to_owned(), problem }
    }
}

/// Where the text stands; the state machine of one call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum At {
    /// Nothing written yet: the root object opens with the first piece.
    #[default]
    Start,
    /// After a whole value: the next piece closes, separates and opens as its path needs.
    AfterValue,
    /// Inside a string value: pieces on its path add to it.
    InString,
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Key(Cow<'a, str>),
    Index(u32),
}

/// An open container and the children written into it so far; its last child is the one the text
/// is inside of (or just after).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// Every key written, to refuse one that comes back (objects in arguments are small).
    Object {
        keys: Vec<String>,
    },
    Array {
        len: u32,
    },
}

impl Frame {
    fn open(first: &Segment<'_>, text: &mut Vec<u8>) -> Self {
        let mut frame = match first {
            Segment::Key(_) => {
                text.push(b'{');
                Frame::Object { keys: Vec::new() }
            }
            Segment::Index(_) => {
                text.push(b'[');
                Frame::Array { len: 0 }
            }
        };
        frame.write_child(first, text);
        frame
    }

    /// True when `segment` is the child the text is in (or just after).
    fn is_at(&self, segment: &Segment<'_>) -> bool {
        match (self, segment) {
            (Frame::Object { keys }, Segment::Key(key)) => keys.last().is_some_and(|last| last == key),
            (Frame::Array { len }, Segment::Index(index)) => len.checked_sub(1) == Some(*index),
            _ => false,
        }
    }

    /// True when `segment` may come next: a new key, or the next index.
    fn accepts(&self, segment: &Segment<'_>) -> bool {
        match (self, segment) {
            (Frame::Object { keys }, Segment::Key(key)) => !keys.iter().any(|written| written == key),
            (Frame::Array { len }, Segment::Index(index)) => index == len,
            _ => false,
        }
    }

    /// Writes the separator and key (objects) for a child `accepts` let through.
    fn write_child(&mut self, segment: &Segment<'_>, text: &mut Vec<u8>) {
        match (self, segment) {
            (Frame::Object { keys }, Segment::Key(key)) => {
                if !keys.is_empty() {
                    text.push(b',');
                }
                text.push(b'"');
                escape_json_str(key, text);
                text.extend_from_slice(b"\":");
                keys.push(key.clone().into_owned());
            }
            (Frame::Array { len }, Segment::Index(_)) => {
                if *len > 0 {
                    text.push(b',');
                }
                *len = len.saturating_add(1);
            }
            // `accepts` (or a fresh frame of the segment's own kind) rules this out.
            _ => {}
        }
    }

    fn close(&self, text: &mut Vec<u8>) {
        text.push(match self {
            Frame::Object { .. } => b'}',
            Frame::Array { .. } => b']',
        });
    }
}

/// The arguments of one streamed call, as JSON text written piece by piece.
#[derive(Debug, Clone, Default)]
pub(super) struct ArgsAssembler {
    at: At,
    /// The open containers, root first; frame `d` holds the path's step `d`.
    frames: Vec<Frame>,
    /// Text written since the last [`ArgsAssembler::take_text`]; always UTF-8.
    text: Vec<u8>,
}

impl ArgsAssembler {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Writes one piece; an `Err` means it cannot be placed (see the module doc on order). A refused
    /// piece writes nothing, but the call cannot go on as the model meant it.
    pub(super) fn push(&mut self, piece: &ArgPiece<'_>) -> Result<(), ArgsError> {
        let path = parse_path(piece.path)
            .filter(|path| matches!(path.first(), Some(Segment::Key(_))))
            .ok_or_else(|| ArgsError::new(piece.path, "is not a JSONPath to a member of the arguments object"))?;
        if self.at == At::InString
            && let ArgValue::String(more) = piece.value
            && self.is_at(&path)
        {
            self.write_str_piece(more, piece.more);
            return Ok(());
        }
        // Checked before anything is written, so a refused piece leaves the text as it was.
        let keep = self.check(&path).map_err(|problem| ArgsError::new(piece.path, problem))?;
        if self.at == At::InString {
            // A string left open by a piece at another path ends there: nothing more can join it.
            self.end_string();
        }
        self.move_to(&path, keep);
        self.write_value(&piece.value, piece.more);
        Ok(())
    }

    /// The text written since the last call, to go out as one delta (empty when nothing was).
    pub(super) fn take_text(&mut self) -> String {
        bytes_to_string(std::mem::take(&mut self.text))
    }

    /// Closes every open string and container and returns the text not yet taken.
    pub(super) fn finish(mut self) -> String {
        match self.at {
            At::Start => self.text.extend_from_slice(b"{}"),
            At::InString => self.end_string(),
            At::AfterValue => {}
        }
        self.close_frames(0);
        bytes_to_string(self.text)
    }

    /// True when the text is at `path` exactly (inside or just after its value).
    fn is_at(&self, path: &[Segment<'_>]) -> bool {
        path.len() == self.frames.len() && self.frames.iter().zip(path).all(|(frame, step)| frame.is_at(step))
    }

    /// How many open frames `path` shares with the text's position: the containers it stays in.
    fn shared_frames(&self, path: &[Segment<'_>]) -> usize {
        let mut keep = 0;
        while keep < self.frames.len()
            && keep < path.len()
            && (keep == 0 || self.frames[keep - 1].is_at(&path[keep - 1]))
        {
            keep += 1;
        }
        keep
    }

    /// Whether a value may be written at `path` (see the module doc on order), and if so how many
    /// open frames it stays in.
    fn check(&self, path: &[Segment<'_>]) -> Result<usize, &'static str> {
        let keep = self.shared_frames(path);
        let fresh = &path[keep..];
        let placed = keep == 0 || self.frames[keep - 1].accepts(&path[keep - 1]);
        // A new array can only start at index 0.
        if placed && fresh.iter().all(|step| !matches!(step, Segment::Index(index) if *index != 0)) {
            Ok(keep)
        } else {
            Err("comes out of order: the text before it was already sent")
        }
    }

    /// Closes, separates and opens so the next value written lands at `path`, which shares `keep`
    /// frames with the position ([`ArgsAssembler::check`]).
    fn move_to(&mut self, path: &[Segment<'_>], keep: usize) {
        self.close_frames(keep);
        if keep > 0 {
            self.frames[keep - 1].write_child(&path[keep - 1], &mut self.text);
        }
        for step in &path[keep..] {
            let frame = Frame::open(step, &mut self.text);
            self.frames.push(frame);
        }
    }

    fn write_value(&mut self, value: &ArgValue<'_>, more: bool) {
        match value {
            ArgValue::String(piece) => {
                self.text.push(b'"');
                self.at = At::InString;
                // Ends the string (and moves on to `AfterValue`) unless more of it follows.
                self.write_str_piece(piece, more);
                return;
            }
            ArgValue::Number(number) => self.text.extend_from_slice(number.to_string().as_bytes()),
            ArgValue::Bool(true) => self.text.extend_from_slice(b"true"),
            ArgValue::Bool(false) => self.text.extend_from_slice(b"false"),
            ArgValue::Null => self.text.extend_from_slice(b"null"),
        }
        self.at = At::AfterValue;
    }

    fn write_str_piece(&mut self, piece: &str, more: bool) {
        escape_json_str(piece, &mut self.text);
        if !more {
            self.end_string();
        }
    }

    fn end_string(&mut self) {
        self.text.push(b'"');
        self.at = At::AfterValue;
    }

    /// Closes the frames beyond the first `keep`, innermost first.
    fn close_frames(&mut self, keep: usize) {
        while self.frames.len() > keep {
            if let Some(frame) = self.frames.pop() {
                frame.close(&mut self.text);
            }
        }
    }
}

/// Everything written is UTF-8 (escaped `str`s and ASCII), so the lossy branch never runs; it
/// stands in for a panic.
fn bytes_to_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The steps of a JSONPath from the root: `.key`, `[index]`, and `['key']` / `["key"]` for keys
/// dots cannot name. `None` for anything else (filters, wildcards, a missing `$`).
fn parse_path(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let (step, after) = if let Some(after_dot) = rest.strip_prefix('.') {
            dotted_key(after_dot)?
        } else {
            bracketed(rest.strip_prefix('[')?)?
        };
        steps.push(step);
        rest = after;
    }
    Some(steps)
}

fn dotted_key(rest: &str) -> Option<(Segment<'_>, &str)> {
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    (end > 0).then(|| (Segment::Key(Cow::Borrowed(&rest[..end])), &rest[end..]))
}

/// After a `[`: an index or a quoted key, up to and past the `]`.
fn bracketed(rest: &str) -> Option<(Segment<'_>, &str)> {
    if rest.starts_with(['\'', '"']) {
        return quoted_key(rest);
    }
    let (digits, after) = rest.split_once(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Segment::Index(digits.parse().ok()?), after))
}

/// `'key']` or `"key"]`, a backslash escaping the next character.
fn quoted_key(rest: &str) -> Option<(Segment<'_>, &str)> {
    let quote = rest.chars().next()?;
    let body = &rest[1..];
    let mut key = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => key.push(chars.next()?.1),
            c if c == quote => return Some((Segment::Key(Cow::Owned(key)), body[at + 1..].strip_prefix(']')?)),
            c => key.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn string(path: &'static str, piece: &'static str, more: bool) -> ArgPiece<'static> {
        ArgPiece { path, value: ArgValue::String(piece), more }
    }

    fn scalar(path: &'static str, value: ArgValue<'static>) -> ArgPiece<'static> {
        ArgPiece { path, value, more: false }
    }

    /// Feeds `pieces` and returns every text taken (one per piece, as the stream takes them) and
    /// the final one.
    fn assemble(pieces: &[ArgPiece<'_>]) -> Vec<String> {
        let mut assembler = ArgsAssembler::new();
        let mut texts = Vec::new();
        for piece in pieces {
            assembler.push(piece).unwrap_or_else(|e| panic!("{piece:?}: {e}"));
            texts.push(assembler.take_text());
        }
        texts.push(assembler.finish());
        texts
    }

    fn parsed(texts: &[String]) -> Value {
        let joined = texts.concat();
        serde_json::from_str(&joined).unwrap_or_else(|e| panic!("{joined}: {e}"))
    }

    #[test]
    fn a_string_in_pieces_streams_as_it_comes() {
        let texts = assemble(&[
            string("$.location", "Bos", true),
            string("$.location", "ton", true),
            string("$.location", "", false),
        ]);
        assert_eq!(texts, [r#"{"location":"Bos"#, "ton", "\"", "}"]);
        assert_eq!(parsed(&texts), json!({"location": "Boston"}));
    }

    #[test]
    fn nested_objects_and_arrays_close_and_open_as_the_path_moves() {
        let texts = assemble(&[
            string("$.recipe.ingredients[0].amount", "16 oz", false),
            string("$.recipe.ingredients[0].name", "Noodles", false),
            string("$.recipe.ingredients[1].amount", "1 lb", false),
            string("$.recipe.name", "Lasagna", false),
            string("$.recipe.steps[0]", "Preheat.", false),
            string("$.recipe.steps[1]", "Cook", true),
            string("$.recipe.steps[1]", ".", false),
            scalar("$.serves", ArgValue::Number(4.into())),
        ]);
        assert_eq!(
            texts.concat(),
            r#"{"recipe":{"ingredients":[{"amount":"16 oz","name":"Noodles"},{"amount":"1 lb"}],"name":"Lasagna","steps":["Preheat.","Cook."]},"serves":4}"#
        );
        assert_eq!(texts[2], r#"},{"amount":"1 lb""#);
        assert_eq!(texts[3], r#"}],"name":"Lasagna""#);
    }

    #[test]
    fn arrays_of_arrays_and_arrays_at_the_leaf() {
        let texts = assemble(&[
            scalar("$.grid[0][0]", ArgValue::Number(1.into())),
            scalar("$.grid[0][1]", ArgValue::Number(2.into())),
            scalar("$.grid[1][0]", ArgValue::Number(3.into())),
            scalar("$.flags[0]", ArgValue::Bool(true)),
        ]);
        assert_eq!(parsed(&texts), json!({"grid": [[1, 2], [3]], "flags": [true]}));
    }

    #[test]
    fn numbers_booleans_and_nulls_are_whole_values() {
        let float = serde_json::Number::from_f64(-2.5).unwrap();
        let texts = assemble(&[
            scalar("$.n", ArgValue::Number(float)),
            scalar("$.big", ArgValue::Number(u64::MAX.into())),
            scalar("$.yes", ArgValue::Bool(true)),
            scalar("$.no", ArgValue::Bool(false)),
            scalar("$.none", ArgValue::Null),
        ]);
        assert_eq!(texts.concat(), r#"{"n":-2.5,"big":18446744073709551615,"yes":true,"no":false,"none":null}"#);
    }

    #[test]
    fn quotes_backslashes_controls_and_non_ascii_are_escaped() {
        let texts = assemble(&[
            string("$.q", "say \"hi\" \\ ", true),
            string("$.q", "tab\there\n°C ✓", false),
            string("$['odd \"key\"']", "x", false),
            string("$[\"a.b\"]", "y", false),
        ]);
        assert_eq!(texts[0], r#"{"q":"say \"hi\" \\ "#);
        assert_eq!(texts[1], "tab\\there\\n°C ✓\"");
        assert_eq!(parsed(&texts), json!({"q": "say \"hi\" \\ tab\there\n°C ✓", "odd \"key\"": "x", "a.b": "y"}));
    }

    #[test]
    fn a_call_without_pieces_is_an_empty_object() {
        assert_eq!(assemble(&[]), ["{}"]);
    }

    #[test]
    fn strings_end_with_their_last_piece_or_the_next_path_or_the_call() {
        // An empty first piece without `willContinue` is an empty string; a string never ended is
        // ended by the next path, and the last one by the end of the call.
        let texts = assemble(&[string("$.a", "", false), string("$.b", "x", true), string("$.c", "y", true)]);
        assert_eq!(texts.concat(), r#"{"a":"","b":"x","c":"y"}"#);
    }

    fn refused(pieces: &[ArgPiece<'_>]) -> ArgsError {
        let mut assembler = ArgsAssembler::new();
        let (last, before) = pieces.split_last().unwrap();
        for piece in before {
            assembler.push(piece).unwrap();
        }
        assembler.push(last).unwrap_err()
    }

    #[test]
    fn pieces_out_of_order_are_refused() {
        let null = |path| scalar(path, ArgValue::Null);
        let cases: [&[ArgPiece<'_>]; 8] = [
            &[null("$.a[1]")],
            &[null("$.a[0]"), null("$.a[2]")],
            &[null("$.a[0]"), null("$.a[1]"), null("$.a[0]")],
            &[null("$.a"), null("$.b"), null("$.a")],
            &[null("$.a.x"), null("$.b"), null("$.a.y")],
            &[null("$.a"), null("$.a.x")],
            &[null("$.a.x"), null("$.a")],
            &[null("$.a[0]"), null("$.a.x")],
        ];
        for pieces in cases {
            let error = refused(pieces);
            assert!(error.to_string().contains("out of order"), "{pieces:?}: {error}");
        }
        // The value already written at a path ends; a string piece cannot add to it.
        assert!(refused(&[string("$.a", "x", false), string("$.a", "y", false)]).to_string().contains("out of order"));
    }

    #[test]
    fn paths_outside_the_arguments_object_are_refused() {
        for path in
            ["", "$", "location", "$[0]", "$.", "$.a[", "$.a[x]", "$.a[-1]", "$['a'", "$.a..b", "$..a", "$.a[*]"]
        {
            let error = ArgsAssembler::new().push(&scalar(path, ArgValue::Null)).unwrap_err();
            assert_eq!(error, ArgsError::new(path, "is not a JSONPath to a member of the arguments object"));
        }
    }

    #[test]
    fn a_refused_piece_writes_nothing() {
        let mut assembler = ArgsAssembler::new();
        assembler.push(&string("$.a[0].b", "x", true)).unwrap();
        assert_eq!(assembler.take_text(), r#"{"a":[{"b":"x"#);
        assert!(assembler.push(&scalar("$.a[3]", ArgValue::Null)).is_err());
        assert_eq!(assembler.take_text(), "");
        assert_eq!(assembler.finish(), r#""}]}"#);
    }
}

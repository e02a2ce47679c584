//! The answer side of Google's wire format, shared by streams and non-streaming bodies: one
//! `GenerateContentResponse` (every stream chunk is a whole one), what its parts mean in the internal
//! model, and its usage. It keeps no state (the stream's state machine is in `stream.rs`) and knows
//! nothing of requests (`request.rs`).
//!
//! Mapping choices:
//! - Only the first candidate counts: the gateway never asks for more than one.
//! - `thought: true` text is reasoning; other text is answer text; empty texts carry nothing.
//! - `functionCall` parts with `args` are whole calls (arguments already an object); a call gets
//!   Gemini's `id` when it has one, else `call_<n>`. In a stream a call's arguments may also come in
//!   pieces (`partialArgs`, Gemini 3 with `streamFunctionCallArguments`): a part with a `name` and
//!   `willContinue` opens the call, parts without a `name` carry its pieces, and one without
//!   `willContinue` closes it. [`WirePart::into_stream_piece`] reads those as [`CallFragment`]s (the
//!   assembly is `partial_args.rs`'s); non-streaming bodies never carry them, and
//!   [`WirePart::into_piece`] skips a part without a `name`.
//! - `thoughtSignature`s are not surfaced: the internal model has no slot tying one to a text or call
//!   part and OpenAI clients could not send it back; `request.rs` sends Google's documented sentinel
//!   instead. Parts the gateway never asks for (`inlineData` output, `executableCode`,
//!   `codeExecutionResult`) are skipped too.
//! - Usage: `promptTokenCount` already counts cached tokens (`cachedContentTokenCount` breaks them
//!   out); built-in tool prompts (`toolUsePromptTokenCount`) are input too. Output is
//!   `candidatesTokenCount` plus `thoughtsTokenCount`, which Google bills as output. Proto3 JSON
//!   leaves zero counts out, so an absent count is 0.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::partial_args::{ArgPiece, ArgValue};
use super::{ErrorDetail, borrow_opt, synthetic_call_id};
use crate::chat::Usage;

/// A `GenerateContentResponse`, or Google's error envelope where one stands in for it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResponse<'a> {
    #[serde(borrow, default)]
    pub(super) candidates: Vec<WireCandidate<'a>>,
    #[serde(borrow)]
    pub(super) prompt_feedback: Option<WirePromptFeedback<'a>>,
    pub(super) usage_metadata: Option<WireUsage>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    pub(super) model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    pub(super) response_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) error: Option<ErrorDetail<'a>>,
}

impl<'a> WireResponse<'a> {
    /// The candidate the gateway asked for (index 0; Vertex leaves the index out).
    pub(super) fn take_candidate(&mut self) -> Option<WireCandidate<'a>> {
        let at = self.candidates.iter().position(|c| c.index.unwrap_or(0) == 0)?;
        Some(self.candidates.swap_remove(at))
    }

    /// True when Google refused the prompt itself: no candidate, a `blockReason`.
    pub(super) fn prompt_blocked(&self) -> bool {
        self.prompt_feedback.as_ref().is_some_and(|feedback| feedback.block_reason.is_some())
    }

    pub(super) fn id(&self) -> String {
        self.response_id.as_deref().unwrap_or_default().to_owned()
    }

    pub(super) fn model(&self) -> String {
        self.model_version.as_deref().unwrap_or_default().to_owned()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCandidate<'a> {
    #[serde(borrow)]
    pub(super) content: Option<WireContent<'a>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    pub(super) finish_reason: Option<Cow<'a, str>>,
    index: Option<u32>,
}

#[derive(Deserialize)]
pub(super) struct WireContent<'a> {
    #[serde(borrow, default)]
    pub(super) parts: Vec<WirePart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePromptFeedback<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    block_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePart<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(borrow)]
    function_call: Option<WireFunctionCall<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireFunctionCall<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    args: Option<&'a RawValue>,
    #[serde(borrow, default)]
    partial_args: Vec<WirePartialArg<'a>>,
    #[serde(default)]
    will_continue: bool,
}

/// One `partialArgs` entry: a piece of a streamed call's arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePartialArg<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    json_path: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    string_value: Option<Cow<'a, str>>,
    #[serde(borrow)]
    number_value: Option<&'a RawValue>,
    bool_value: Option<bool>,
    /// `nullValue` is the enum `NULL_VALUE` (or JSON `null`): only its presence means anything.
    #[serde(default, deserialize_with = "present")]
    null_value: bool,
    #[serde(default)]
    will_continue: bool,
}

impl WirePartialArg<'_> {
    /// The piece, or `None` when it names no path or carries no value (nothing to write).
    pub(super) fn piece(&self) -> Option<ArgPiece<'_>> {
        let value = if let Some(text) = &self.string_value {
            ArgValue::String(text)
        } else if let Some(raw) = self.number_value {
            // Proto3 JSON writes NaN and the infinities as strings, which JSON cannot carry as
            // numbers: they become `null`, as `JSON.stringify` makes them.
            serde_json::from_str(raw.get()).map_or(ArgValue::Null, ArgValue::Number)
        } else if let Some(flag) = self.bool_value {
            ArgValue::Bool(flag)
        } else if self.null_value {
            ArgValue::Null
        } else {
            return None;
        };
        Some(ArgPiece { path: self.json_path.as_deref()?, value, more: self.will_continue })
    }
}

/// True for a field that is there, whatever its value (JSON `null` included).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// What one part means for the client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    Text(Cow<'a, str>),
    Thought(Cow<'a, str>),
    Call { id: String, name: String, arguments: String },
}

/// What one part means in a stream, where a call's arguments may come in pieces.
#[derive(Debug)]
pub(super) enum StreamPiece<'a> {
    Whole(Piece<'a>),
    Fragment(CallFragment<'a>),
}

/// One part of a call whose arguments stream.
#[derive(Debug)]
pub(super) struct CallFragment<'a> {
    /// The call's id and name, when this part opens a call.
    pub(super) start: Option<(String, String)>,
    pub(super) args: Vec<WirePartialArg<'a>>,
    /// `willContinue`: more parts of this call follow; without it this part closes the call.
    pub(super) more: bool,
}

impl<'a> WirePart<'a> {
    /// The part's meaning; `call` is the index the answer's next function call gets.
    pub(super) fn into_piece(self, call: u32) -> Option<Piece<'a>> {
        if let Some(function_call) = self.function_call {
            return function_call.into_piece(call);
        }
        self.into_text_piece()
    }

    /// The part's meaning in a stream: as [`WirePart::into_piece`], except that a call whose
    /// arguments stream (a `name` with `willContinue` or `partialArgs`, or no `name` at all) is a
    /// fragment.
    pub(super) fn into_stream_piece(self, call: u32) -> Option<StreamPiece<'a>> {
        match self.function_call {
            Some(function_call) if function_call.streams() => {
                Some(StreamPiece::Fragment(function_call.into_fragment(call)))
            }
            Some(function_call) => function_call.into_piece(call).map(StreamPiece::Whole),
            None => self.into_text_piece().map(StreamPiece::Whole),
        }
    }

    fn into_text_piece(self) -> Option<Piece<'a>> {
        let text = self.text.filter(|text| !text.is_empty())?;
        Some(if self.thought { Piece::Thought(text) } else { Piece::Text(text) })
    }
}

impl<'a> WireFunctionCall<'a> {
    /// True for a part of a call whose arguments stream. `args` always makes a whole call, and a
    /// named part with neither `willContinue` nor `partialArgs` is a whole call without arguments,
    /// as before Gemini 3.
    fn streams(&self) -> bool {
        self.args.is_none() && (self.name.is_none() || self.will_continue || !self.partial_args.is_empty())
    }

    fn into_fragment(self, call: u32) -> CallFragment<'a> {
        let start = self.name.map(|name| (call_id(self.id, call), name.into_owned()));
        CallFragment { start, args: self.partial_args, more: self.will_continue }
    }

    fn into_piece(self, call: u32) -> Option<Piece<'static>> {
        let name = self.name?.into_owned();
        let id = call_id(self.id, call);
        let arguments = match self.args.map(RawValue::get) {
            Some(raw) if raw.starts_with('{') => compact_json(raw),
            // Absent or null: a call without parameters, sent as OpenAI sends one.
            _ => "{}".to_owned(),
        };
        Some(Piece::Call { id, name, arguments })
    }
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl WireUsage {
    /// The internal usage this `usageMetadata` stands for, in full: Google's counts are cumulative
    /// totals, so the latest one replaces, never adds to, what came before.
    pub(super) fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_token_count.saturating_add(self.tool_use_prompt_token_count),
            completion_tokens: self.candidates_token_count.saturating_add(self.thoughts_token_count),
            cache_read_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

/// Gemini's id for a call when it gave one, else the synthetic id of the answer's `call`-th call.
fn call_id(id: Option<Cow<'_, str>>, call: u32) -> String {
    match id {
        Some(id) if !id.is_empty() => id.into_owned(),
        _ => synthetic_call_id(call),
    }
}

/// `json` (valid JSON) without insignificant whitespace, as OpenAI writes tool arguments; Google
/// pretty-prints `args` in some answers. Key order is kept.
fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(json: &str, call: u32) -> Option<Piece<'static>> {
        let part: WirePart<'_> = serde_json::from_str(json).unwrap();
        part.into_piece(call).map(|piece| match piece {
            Piece::Text(t) => Piece::Text(Cow::Owned(t.into_owned())),
            Piece::Thought(t) => Piece::Thought(Cow::Owned(t.into_owned())),
            Piece::Call { id, name, arguments } => Piece::Call { id, name, arguments },
        })
    }

    #[test]
    fn parts_map_to_pieces() {
        assert_eq!(piece(r#"{"text":"hi"}"#, 0), Some(Piece::Text("hi".into())));
        assert_eq!(piece(r#"{"text":"hm","thought":true}"#, 0), Some(Piece::Thought("hm".into())));
        assert_eq!(piece(r#"{"text":"","thoughtSignature":"c2ln"}"#, 0), None);
        assert_eq!(piece(r#"{"inlineData":{"mimeType":"image/png","data":"AA=="}}"#, 0), None);
        assert_eq!(
            piece(r#"{"functionCall":{"name":"f","args":{ "a b" : [1, "x \" y"] }},"thoughtSignature":"c2ln"}"#, 2),
            Some(Piece::Call { id: "call_2".into(), name: "f".into(), arguments: r#"{"a b":[1,"x \" y"]}"#.into() })
        );
        assert_eq!(
            piece(r#"{"functionCall":{"id":"fc_1","name":"f"}}"#, 0),
            Some(Piece::Call { id: "fc_1".into(), name: "f".into(), arguments: "{}".into() })
        );
        assert_eq!(piece(r#"{"functionCall":{"partialArgs":[{"jsonPath":"$.a"}],"willContinue":true}}"#, 0), None);
    }

    /// A fragment as the tests compare it: start (id, name), pieces (`Debug`), willContinue.
    type Seen = (Option<(String, String)>, Vec<String>, bool);

    /// The fragment a part is in a stream, or `None` for a whole piece.
    fn fragment(json: &str, call: u32) -> Option<Seen> {
        let part: WirePart<'_> = serde_json::from_str(json).unwrap();
        match part.into_stream_piece(call)? {
            StreamPiece::Whole(_) => None,
            StreamPiece::Fragment(CallFragment { start, args, more }) => {
                let pieces = args.iter().map(|arg| format!("{:?}", arg.piece())).collect();
                Some((start, pieces, more))
            }
        }
    }

    #[test]
    fn streamed_call_parts_are_fragments_and_whole_calls_stay_whole() {
        let opened = fragment(r#"{"functionCall":{"name":"f","willContinue":true},"thoughtSignature":"c2ln"}"#, 3);
        assert_eq!(opened, Some((Some(("call_3".into(), "f".into())), vec![], true)));
        let with_id = fragment(r#"{"functionCall":{"id":"fc_1","name":"f","willContinue":true}}"#, 3);
        assert_eq!(with_id.unwrap().0, Some(("fc_1".into(), "f".into())));
        assert_eq!(fragment(r#"{"functionCall":{}}"#, 0), Some((None, vec![], false)));
        assert_eq!(fragment(r#"{"functionCall":{"willContinue":true}}"#, 0), Some((None, vec![], true)));
        // `args` makes a whole call, and so does a name alone, exactly as before.
        assert_eq!(fragment(r#"{"functionCall":{"name":"f","args":{"a":1},"willContinue":true}}"#, 0), None);
        assert_eq!(fragment(r#"{"functionCall":{"name":"f"}}"#, 0), None);
        assert_eq!(fragment(r#"{"text":"hi"}"#, 0), None);
        assert_eq!(fragment(r#"{"text":""}"#, 0), None);
    }

    #[test]
    fn partial_args_carry_each_kind_of_value() {
        let json = r#"{"functionCall":{"partialArgs":[
            {"jsonPath":"$.s","stringValue":"a\"b","willContinue":true},{"jsonPath":"$.n","numberValue":1.5},
            {"jsonPath":"$.i","numberValue":"Infinity"},{"jsonPath":"$.b","boolValue":true},
            {"jsonPath":"$.z","nullValue":null},{"jsonPath":"$.none"},{"stringValue":"no path"}],"willContinue":true}}"#;
        let (start, pieces, more) = fragment(&json.lines().map(str::trim).collect::<String>(), 0).unwrap();
        assert_eq!((start, more), (None, true));
        let piece = |path, value, more| format!("{:?}", Some(ArgPiece { path, value, more }));
        let number = serde_json::Number::from_f64(1.5).unwrap();
        assert_eq!(
            pieces,
            [
                piece("$.s", ArgValue::String("a\"b"), true),
                piece("$.n", ArgValue::Number(number), false),
                piece("$.i", ArgValue::Null, false),
                piece("$.b", ArgValue::Bool(true), false),
                piece("$.z", ArgValue::Null, false),
                "None".to_owned(),
                "None".to_owned(),
            ]
        );
    }

    #[test]
    fn usage_counts_thoughts_as_output_and_cache_inside_the_prompt() {
        let wire: WireUsage = serde_json::from_str(
            r#"{"promptTokenCount":100,"candidatesTokenCount":7,"thoughtsTokenCount":30,
                "cachedContentTokenCount":64,"toolUsePromptTokenCount":5,"totalTokenCount":142,
                "promptTokensDetails":[{"modality":"TEXT","tokenCount":100}],"serviceTier":"standard"}"#,
        )
        .unwrap();
        let usage = wire.usage();
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 105,
                completion_tokens: 37,
                cache_read_tokens: 64,
                cache_write_tokens: 0,
                reasoning_tokens: 30
            }
        );
        assert_eq!(usage.total_tokens(), 142);
    }
}

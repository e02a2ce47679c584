//! Token usage read from answers that pass through untranslated: the `usage` object of a
//! `chat.completion`, of a Responses API `response` (its `usage` names the counts `input_tokens` /
//! `output_tokens`) or of an Anthropic message, found among the top-level members a validating walk
//! reports ([`UsageMembers`]); likewise a passed-through stream's events that `sse::audit` names as
//! reporting usage ([`fold_reported`]): the usage chunk (sent when the client asked for
//! `stream_options.include_usage`), `response.completed`, `message_start` and `message_delta`.
//! Translated providers report usage through `chat::StreamEvent`.

use std::ops::Range;

use crate::chat::Usage;
use crate::json_check;

/// The counts of a `usage` object, in the names OpenAI (chat and Responses) and Anthropic give them.
#[derive(Default)]
struct OpenAiUsage {
    /// `prompt_tokens`, or `input_tokens` (Responses API, Anthropic).
    prompt_tokens: u64,
    /// `completion_tokens`, or `output_tokens`.
    completion_tokens: u64,
    /// `prompt_tokens_details.cached_tokens` (or `input_tokens_details`).
    cached_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens` (or `output_tokens_details`).
    reasoning_tokens: Option<u64>,
    /// Anthropic counts cache reads and writes apart from `input_tokens`.
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl OpenAiUsage {
    /// Reads a `usage` object from bytes a validating walk has already passed, by its members'
    /// raw keys (no provider escapes them). `None` when it is not an object or a count is not a
    /// non-negative integer, as a typed parse would refuse it; `null` or a missing member counts as
    /// absent. Read by hand rather than by a JSON parser: this runs for every answer, and
    /// sonic-rs's typed parse of this small object was ~1,700 instructions a request of ~38,000.
    fn read(object: &[u8]) -> Option<OpenAiUsage> {
        if object.first() != Some(&b'{') {
            return None;
        }
        let mut usage = OpenAiUsage::default();
        let mut readable = true;
        let walked = json_check::visit_valid_members(object, |key, value| {
            let value = &object[value];
            let count = || count_of(value);
            let fine = match key {
                b"\"prompt_tokens\"" | b"\"input_tokens\"" => count().map(|n| usage.prompt_tokens = n.unwrap_or(0)),
                b"\"completion_tokens\"" | b"\"output_tokens\"" => {
                    count().map(|n| usage.completion_tokens = n.unwrap_or(0))
                }
                b"\"cache_read_input_tokens\"" => count().map(|n| usage.cache_read_input_tokens = n),
                b"\"cache_creation_input_tokens\"" => count().map(|n| usage.cache_creation_input_tokens = n),
                b"\"prompt_tokens_details\"" | b"\"input_tokens_details\"" => {
                    detail(value, b"\"cached_tokens\"").map(|n| usage.cached_tokens = n)
                }
                b"\"completion_tokens_details\"" | b"\"output_tokens_details\"" => {
                    detail(value, b"\"reasoning_tokens\"").map(|n| usage.reasoning_tokens = n)
                }
                _ => Some(()),
            };
            readable &= fine.is_some();
        });
        (walked.is_some() && readable).then_some(usage)
    }
}

/// A count: `Some(Some(n))` for a non-negative integer, `Some(None)` for `null`, `None` (unreadable)
/// for anything else.
fn count_of(value: &[u8]) -> Option<Option<u64>> {
    if value == b"null" {
        return Some(None);
    }
    if value.is_empty() {
        return None;
    }
    // Validated JSON has no leading zeros; more digits than a u64 holds is unreadable.
    let digit = |b: u8| b.is_ascii_digit().then(|| u64::from(b - b'0'));
    value.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(digit(b)?)).map(Some)
}

/// The count `key` (raw, quotes included) of a details object: `Some(None)` when the details are
/// `null` or lack it, `None` when they are not an object or the count is unreadable.
fn detail(details: &[u8], key: &[u8]) -> Option<Option<u64>> {
    match details {
        b"null" => Some(None),
        [b'{', ..] => member(details, key).map_or(Some(None), count_of),
        _ => None,
    }
}

/// The value of the member `key` (raw, quotes included) of a validated object.
fn member<'a>(object: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut found = None;
    json_check::visit_valid_members(object, |name, value| {
        if name == key {
            found = Some(value);
        }
    })?;
    found.map(|value| &object[value])
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Usage {
        // Internally the prompt counts every input token, cached or not (OpenAI's meaning).
        let (read, write) = (u.cache_read_input_tokens.unwrap_or(0), u.cache_creation_input_tokens.unwrap_or(0));
        Usage {
            prompt_tokens: u.prompt_tokens + read + write,
            completion_tokens: u.completion_tokens,
            cache_read_tokens: u.cached_tokens.unwrap_or(read),
            cache_write_tokens: write,
            reasoning_tokens: u.reasoning_tokens.unwrap_or(0),
        }
    }
}

/// The usage of a `chat.completion` or Responses `response` JSON body, or of a Responses stream
/// event that carries the response (`response.completed`), if it has one.
pub fn from_json(body: &[u8]) -> Option<Usage> {
    // One validating pass finds the top-level members (sonic-rs recurses while it skips, so it only
    // sees sub-values that pass has bounded).
    let mut members = UsageMembers::default();
    crate::json_check::visit_members(body, |key, value| members.note(key, value)).ok()?;
    members.parse(body)
}

/// Folds the usage a streamed event's payload reports, if any, into what the stream reported so
/// far: each count the largest reported (counts in a stream only grow, and Anthropic's come in two
/// parts, `message_start` and `message_delta`).
pub fn fold_reported(seen: &mut Option<Usage>, payload: &[u8]) {
    if let Some(reported) = from_json(payload) {
        *seen = Some(seen.map_or(reported, |before| before.most_of(reported)));
    }
}

/// Where a JSON body's usage may be, noted from its top-level members by a walk that validates the
/// body (`json_check::visit_members`, or one that also looks for other members): `usage` itself, or
/// the `response` (Responses API) or `message` (Anthropic) object that holds it.
#[derive(Default)]
pub struct UsageMembers {
    usage: Option<Range<usize>>,
    response: Option<Range<usize>>,
    message: Option<Range<usize>>,
}

impl UsageMembers {
    /// One top-level member: its key as written (quotes included) and its value's range.
    pub fn note(&mut self, key: &[u8], value: Range<usize>) {
        match key {
            b"\"usage\"" => self.usage = Some(value),
            b"\"response\"" => self.response = Some(value),
            b"\"message\"" => self.message = Some(value),
            _ => {}
        }
    }

    /// The usage these members say `body` has. Call only once the walk has validated `body`.
    pub fn parse(self, body: &[u8]) -> Option<Usage> {
        let usage = match (self.usage, self.response.or(self.message)) {
            (Some(usage), _) => &body[usage],
            (None, Some(inner)) => member(&body[inner], b"\"usage\"")?,
            (None, None) => return None,
        };
        OpenAiUsage::read(usage).map(Usage::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::PassThrough;
    use crate::sse::audit::StreamFormat;

    /// The usage a recorded stream reports, read as a passed-through stream's is: fed a line at a
    /// time as a provider might send it, each payload the audit names folded in.
    fn stream_usage(format: StreamFormat, stream: &[u8]) -> Option<Usage> {
        let mut events = PassThrough::new("gw", format, 256);
        let (mut usage, mut out) = (None, Vec::new());
        for line in stream.split_inclusive(|&b| b == b'\n') {
            events.feed(Some(line)).expect("a recorded stream passes the audit");
            events.drain_usage_payloads(|payload| fold_reported(&mut usage, payload));
            events.release(&mut out);
        }
        usage
    }

    #[test]
    fn reads_completion_usage_with_details() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        let u = from_json(body).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cache_read_tokens, u.reasoning_tokens), (20, 7, 4, 2));
        assert_eq!(from_json(br#"{"usage":null}"#), None);
    }

    #[test]
    fn a_usage_object_is_read_as_a_typed_parse_would_or_not_at_all() {
        let read =
            |json: &str| from_json(json.as_bytes()).map(|u| (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens));
        // Responses API names, nulls as absent, unknown members skipped, whitespace anywhere.
        assert_eq!(
            read(
                r#"{ "usage" : { "input_tokens" : 3 , "output_tokens":4, "x":[1,{"y":2}],
                "output_tokens_details": {"reasoning_tokens": 2}, "input_tokens_details": null } }"#
            ),
            Some((3, 4, 2))
        );
        assert_eq!(read(r#"{"usage":{"prompt_tokens":null,"completion_tokens":5}}"#), Some((0, 5, 0)));
        // Not a count: refused whole rather than half read.
        for bad in [
            r#"{"usage":{"prompt_tokens":1.5}}"#,
            r#"{"usage":{"prompt_tokens":-1}}"#,
            r#"{"usage":{"prompt_tokens":"7"}}"#,
            r#"{"usage":{"prompt_tokens":1e3}}"#,
            r#"{"usage":{"prompt_tokens":99999999999999999999}}"#,
            r#"{"usage":{"completion_tokens_details":7}}"#,
            r#"{"usage":{"completion_tokens_details":{"reasoning_tokens":true}}}"#,
            r#"{"usage":[1]}"#,
            r#"{"usage":null}"#,
            r#"{"response":{"usage":"none"}}"#,
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
        // Inside an envelope, only the envelope's own usage counts.
        assert_eq!(
            read(r#"{"message":{"content":[{"usage":{"input_tokens":9}}],"usage":{"input_tokens":2}}}"#),
            Some((2, 0, 0))
        );
        assert_eq!(read(r#"{"message":{"content":[{"usage":{"input_tokens":9}}]}}"#), None);
    }

    #[test]
    fn reads_responses_api_usage_in_bodies_and_in_the_completed_event() {
        let dir = crate::fixture_path!("openai/responses");
        let body = std::fs::read(format!("{dir}/openai-responses-basic.response.json")).unwrap();
        let u = from_json(&body).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cache_read_tokens, u.reasoning_tokens), (24, 8, 0, 0));

        let stream = std::fs::read(format!("{dir}/openai-responses-stream-reasoning-usage.sse")).unwrap();
        let streamed = stream_usage(StreamFormat::OpenAiResponses, &stream);
        let text = String::from_utf8(stream).unwrap();
        let completed = text.lines().find(|l| l.contains("\"type\":\"response.completed\"")).unwrap();
        let json: serde_json::Value = serde_json::from_str(completed.trim_start_matches("data: ")).unwrap();
        let usage = &json["response"]["usage"];
        let u = streamed.expect("response.completed carries usage");
        assert_eq!(u.prompt_tokens, usage["input_tokens"].as_u64().unwrap());
        assert_eq!(u.completion_tokens, usage["output_tokens"].as_u64().unwrap());
        assert_eq!(u.reasoning_tokens, usage["output_tokens_details"]["reasoning_tokens"].as_u64().unwrap());
    }

    #[test]
    fn reads_anthropic_usage_split_over_message_start_and_message_delta() {
        let dir = crate::fixture_path!("anthropic");
        let stream = std::fs::read(format!("{dir}/anthropic-messages-stream-text.sse")).unwrap();
        let streamed = stream_usage(StreamFormat::AnthropicMessages, &stream);
        let text = String::from_utf8(stream).unwrap();
        let data = |kind: &str| -> serde_json::Value {
            let line = text.lines().filter(|l| l.contains(kind)).find(|l| l.starts_with("data:")).unwrap();
            serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap()
        };
        let start = data("\"type\":\"message_start\"");
        let delta = data("\"type\":\"message_delta\"");
        let input = &start["message"]["usage"];
        let expected_prompt = ["input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
            .iter()
            .map(|k| input[*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        let u = streamed.expect("the stream reports usage");
        assert!(expected_prompt > 0);
        assert_eq!(u.prompt_tokens, expected_prompt);
        assert_eq!(u.completion_tokens, delta["usage"]["output_tokens"].as_u64().unwrap());
    }

    #[test]
    fn anthropic_cache_reads_and_writes_count_in_the_prompt() {
        let body = br#"{"usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":3}}"#;
        let u = from_json(body).unwrap();
        assert_eq!((u.prompt_tokens, u.cache_read_tokens, u.cache_write_tokens, u.completion_tokens), (115, 100, 5, 3));
    }

    #[test]
    fn finds_the_usage_chunk_of_every_recorded_stream_that_has_one() {
        let dir = crate::fixture_path!("openai/chat");
        let path = format!("{dir}/openai-chat-stream-usage.sse");
        let bytes = std::fs::read(path).unwrap();
        let streamed = stream_usage(StreamFormat::OpenAiChat, &bytes);
        let usage = streamed.expect("the recording ends with a usage chunk");
        let text = String::from_utf8(bytes).unwrap();
        let last = text.lines().rfind(|l| l.contains("\"usage\":{")).unwrap();
        let json: serde_json::Value = serde_json::from_str(last.trim_start_matches("data: ")).unwrap();
        assert_eq!(usage.prompt_tokens, json["usage"]["prompt_tokens"].as_u64().unwrap());
        assert_eq!(usage.completion_tokens, json["usage"]["completion_tokens"].as_u64().unwrap());
    }
}

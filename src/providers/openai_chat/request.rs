//! Internal chat request -> OpenAI chat-completions body: the inverse of
//! `api::openai_chat::parse_request`. It writes JSON only; the head is `providers::openai`'s.
//!
//! Choices where the formats differ (each one a decision, not an accident):
//! - Streams always ask for `stream_options.include_usage`, whatever the client asked: the gateway
//!   needs the token counts, and clients of other formats always get usage.
//! - The output budget goes out as `max_completion_tokens` (OpenAI's current name, the only one
//!   its reasoning models take), or as `max_tokens` for servers that know only the legacy name.
//! - A reasoning budget becomes the nearest `reasoning_effort` not above it (OpenAI takes no token
//!   budgets): under 2048 `low`, under 16384 `medium`, else `high`. `Reasoning::Disabled` is
//!   `"none"`. Sent as given, so a model that cannot reason explains itself with its own 400.
//! - Reasoning parts of earlier assistant turns are not sent back: OpenAI has no field for them and
//!   DeepSeek-style servers reject `reasoning_content` in requests. Signatures and redacted
//!   reasoning are another provider's and are dropped with them.
//! - `tool_choice` and `parallel_tool_calls` go out only with tools (OpenAI rejects them alone).
//! - One text part is written as a string, several as text parts; an assistant turn without text is
//!   `content: null`.
//! - A file sent inline without a name is named `file.<subtype>` (OpenAI requires a filename with
//!   `file_data`).
//! - Rejected by name: images and files in system prompts and tool results (OpenAI takes text
//!   only there), files by URL (OpenAI has no such source), and images by file id.
//! - The request's unmodelled fields (`extra`) go out only with [`RequestOptions::pass_extra`]:
//!   they are in the client's format, which is OpenAI's only for OpenAI-format clients.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::chat::{
    ChatRequest, Effort, ExtraField, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall,
    ToolChoice,
};

/// What the body needs besides the client's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The provider's model name (from the endpoint config).
    pub model: &'a str,
    /// Send the output budget as the legacy `max_tokens` (older OpenAI-compatible servers).
    pub legacy_max_tokens: bool,
    /// Pass `request.extra` on; set only when the client spoke OpenAI's format.
    pub pass_extra: bool,
}

/// The request body for `request`. Fails only for content OpenAI cannot take (see the module doc).
pub fn request_body(request: &ChatRequest, options: &RequestOptions<'_>) -> Result<Vec<u8>, RequestError> {
    let messages = request.messages.iter().enumerate().map(|(i, m)| wire_message(m, i)).collect::<Result<_, _>>()?;
    let has_tools = !request.tools.is_empty();
    let (max_tokens, max_completion_tokens) = match options.legacy_max_tokens {
        true => (request.max_tokens, None),
        false => (None, request.max_tokens),
    };
    let body = Body {
        model: options.model,
        messages,
        tools: request.tools.iter().map(wire_tool).collect(),
        tool_choice: request.tool_choice.as_ref().filter(|_| has_tools).map(wire_tool_choice),
        parallel_tool_calls: request.parallel_tool_calls.filter(|_| has_tools),
        max_tokens,
        max_completion_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: &request.stop,
        seed: request.seed,
        response_format: request.response_format.as_ref().map(wire_format),
        reasoning_effort: request.reasoning.map(reasoning_effort),
        user: request.user.as_deref(),
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptions { include_usage: true }),
    };
    let mut out = serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(format!("cannot encode: {e}")))?;
    if options.pass_extra {
        append_extra(&mut out, &request.extra);
    }
    Ok(out)
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

/// The top-level names [`Body`] writes; an extra field with one of them would duplicate it.
const WRITTEN: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "reasoning_effort",
    "user",
    "stream",
    "stream_options",
];

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `None` is written as `null`.
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// Message content: one string, or parts.
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl },
    File { file: WireFile<'a> },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

#[derive(Serialize)]
struct WireFile<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: NamedFunction<'a>,
    },
}

#[derive(Serialize)]
struct NamedFunction<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct WireFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<JsonSchema<'a>>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

fn wire_message(message: &Message, i: usize) -> Result<WireMessage<'_>, RequestError> {
    let plain = |role, content| WireMessage {
        role,
        content: Some(content),
        refusal: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    };
    Ok(match message {
        Message::System { content, developer } => {
            plain(if *developer { "developer" } else { "system" }, text_content(content, i, "system prompts")?)
        }
        Message::User { content } => plain("user", user_content(content, i)?),
        Message::Assistant { content, tool_calls } => assistant_message(content, tool_calls),
        Message::Tool { tool_call_id, content } => {
            WireMessage { tool_call_id: Some(tool_call_id), ..plain("tool", text_content(content, i, "tool results")?) }
        }
    })
}

/// Content that OpenAI takes as text only; `where_` names the place for the error.
fn text_content<'a>(content: &'a [Part], i: usize, where_: &str) -> Result<Content<'a>, RequestError> {
    let mut texts = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) => texts.push(text.as_str()),
            _ => return Err(unsupported_part(i, j, &format!("OpenAI {where_} take text only"))),
        }
    }
    Ok(match texts.as_slice() {
        [] => Content::Text(""),
        [one] => Content::Text(one),
        _ => Content::Parts(texts.into_iter().map(|text| WirePart::Text { text }).collect()),
    })
}

fn user_content(content: &[Part], i: usize) -> Result<Content<'_>, RequestError> {
    if let [Part::Text(text)] = content {
        return Ok(Content::Text(text));
    }
    if content.is_empty() {
        return Ok(Content::Text(""));
    }
    let mut parts = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        parts.push(match part {
            Part::Text(text) => WirePart::Text { text },
            Part::Image(media) => WirePart::ImageUrl { image_url: ImageUrl { url: image_url(media, i, j)? } },
            Part::File { media, filename } => WirePart::File { file: wire_file(media, filename.as_deref(), i, j)? },
            _ => return Err(unsupported_part(i, j, "this part is only valid in assistant messages")),
        });
    }
    Ok(Content::Parts(parts))
}

/// Texts and refusals go out; reasoning stays behind (see the module doc).
fn assistant_message<'a>(content: &'a [Part], tool_calls: &'a [ToolCall]) -> WireMessage<'a> {
    let texts: Vec<&str> = content
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let refusals: Vec<&str> = content
        .iter()
        .filter_map(|part| match part {
            Part::Refusal(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let content = match texts.as_slice() {
        [] => None,
        [one] => Some(Content::Text(one)),
        _ => Some(Content::Parts(texts.into_iter().map(|text| WirePart::Text { text }).collect())),
    };
    WireMessage {
        role: "assistant",
        content,
        refusal: (!refusals.is_empty()).then(|| refusals.concat()),
        tool_calls: tool_calls.iter().map(wire_tool_call).collect(),
        tool_call_id: None,
    }
}

fn wire_tool_call(call: &ToolCall) -> WireToolCall<'_> {
    WireToolCall {
        id: &call.id,
        kind: "function",
        function: WireFunctionCall { name: &call.name, arguments: &call.arguments },
    }
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

fn image_url(media: &Media, i: usize, j: usize) -> Result<String, RequestError> {
    match media {
        Media::Url(url) => Ok(url.clone()),
        Media::Base64 { media_type, data } => Ok(data_url(media_type, data)),
        Media::FileId(_) => Err(unsupported_part(i, j, "OpenAI chat images cannot reference a file id")),
    }
}

fn wire_file<'a>(media: &'a Media, filename: Option<&str>, i: usize, j: usize) -> Result<WireFile<'a>, RequestError> {
    match media {
        Media::Base64 { media_type, data } => Ok(WireFile {
            file_data: Some(data_url(media_type, data)),
            file_id: None,
            filename: Some(filename.map_or_else(|| default_filename(media_type), str::to_owned)),
        }),
        Media::FileId(id) => Ok(WireFile { file_data: None, file_id: Some(id), filename: filename.map(str::to_owned) }),
        Media::Url(_) => Err(unsupported_part(i, j, "OpenAI takes files inline or by file id, not by URL")),
    }
}

/// `file.pdf` for `application/pdf`; `file` when the type has no usable subtype.
fn default_filename(media_type: &str) -> String {
    let subtype = media_type.split_once('/').map_or("", |(_, sub)| sub);
    let extension: String = subtype.chars().take_while(char::is_ascii_alphanumeric).collect();
    if extension.is_empty() { "file".to_owned() } else { format!("file.{extension}") }
}

fn wire_tool(tool: &Tool) -> WireTool<'_> {
    WireTool {
        kind: "function",
        function: WireFunction {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters: tool.parameters.as_deref(),
            strict: tool.strict,
        },
    }
}

fn wire_tool_choice(choice: &ToolChoice) -> WireToolChoice<'_> {
    match choice {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Named(name) => WireToolChoice::Named { kind: "function", function: NamedFunction { name } },
    }
}

fn wire_format(format: &ResponseFormat) -> WireFormat<'_> {
    match format {
        ResponseFormat::Text => WireFormat { kind: "text", json_schema: None },
        ResponseFormat::JsonObject => WireFormat { kind: "json_object", json_schema: None },
        ResponseFormat::JsonSchema { name, schema, strict } => WireFormat {
            kind: "json_schema",
            json_schema: Some(JsonSchema { name, schema: schema.as_deref(), strict: *strict }),
        },
    }
}

/// See the module doc for the budget buckets (the Responses API takes the same efforts).
pub(crate) fn reasoning_effort(reasoning: Reasoning) -> &'static str {
    match reasoning {
        Reasoning::Disabled => "none",
        Reasoning::Effort(Effort::Minimal) => "minimal",
        Reasoning::Effort(Effort::Low) => "low",
        Reasoning::Effort(Effort::Medium) => "medium",
        Reasoning::Effort(Effort::High) => "high",
        Reasoning::Effort(Effort::XHigh) => "xhigh",
        Reasoning::Budget(budget) if budget < 2048 => "low",
        Reasoning::Budget(budget) if budget < 16384 => "medium",
        Reasoning::Budget(_) => "high",
    }
}

/// Appends `,"name":value` for each extra field before the body's closing brace, in arrival order,
/// skipping names the body already has. `out` is a serialized JSON object.
fn append_extra(out: &mut Vec<u8>, extra: &[ExtraField]) {
    let mut fields = extra.iter().filter(|field| !WRITTEN.contains(&field.name.as_str())).peekable();
    if fields.peek().is_none() || out.pop() != Some(b'}') {
        return;
    }
    for field in fields {
        out.push(b',');
        // A `String` always serializes.
        let _ = serde_json::to_writer(&mut *out, &field.name);
        out.push(b':');
        out.extend_from_slice(field.value.get().as_bytes());
    }
    out.push(b'}');
}

fn unsupported_part(i: usize, j: usize, why: &str) -> RequestError {
    RequestError::unsupported(format!("messages[{i}].content[{j}]"), why)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::api::openai_chat::parse_request;

    fn options() -> RequestOptions<'static> {
        RequestOptions { model: "gpt-x", legacy_max_tokens: false, pass_extra: false }
    }

    fn body_with(request: &ChatRequest, options: &RequestOptions<'_>) -> Value {
        serde_json::from_slice(&request_body(request, options).unwrap()).unwrap()
    }

    fn body(request: &ChatRequest) -> Value {
        body_with(request, &options())
    }

    fn user(text: &str) -> Message {
        Message::User { content: vec![Part::Text(text.into())] }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest { model: "gw".into(), messages, ..ChatRequest::default() }
    }

    #[test]
    fn minimal_request() {
        assert_eq!(
            body(&request(vec![user("hi")])),
            json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "stream": false})
        );
    }

    #[test]
    fn streams_always_ask_for_usage() {
        let r = ChatRequest { stream: true, include_usage: false, max_tokens: Some(9), ..request(vec![user("x")]) };
        let b = body(&r);
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
        assert_eq!(b["max_completion_tokens"], 9);
        let legacy = body_with(&r, &RequestOptions { legacy_max_tokens: true, ..options() });
        assert_eq!((legacy["max_tokens"].clone(), legacy.get("max_completion_tokens")), (json!(9), None));
    }

    #[test]
    fn inverse_of_the_front_door() {
        let original = json!({"model": "gpt-x", "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
                    {"type": "file", "file": {"file_id": "file-abc"}}]},
                {"role": "assistant", "content": null, "refusal": "no", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                       "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9,
            "stop": ["END"], "seed": 42,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
            "reasoning_effort": "low", "user": "u1", "stream": true, "stream_options": {"include_usage": true},
            "logprobs": true, "metadata": {"a": "b"}});
        let parsed = parse_request(original.to_string().as_bytes()).unwrap();
        let with_extra = RequestOptions { pass_extra: true, ..options() };
        assert_eq!(body_with(&parsed, &with_extra), original);
        let without: Value = body(&parsed);
        assert!(without.get("logprobs").is_none() && without.get("metadata").is_none());
    }

    #[test]
    fn tool_fields_only_with_tools() {
        let r = ChatRequest {
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: Some(false),
            ..request(vec![user("x")])
        };
        let b = body(&r);
        assert!(b.get("tool_choice").is_none() && b.get("parallel_tool_calls").is_none());
        for (choice, expected) in [
            (ToolChoice::Auto, json!("auto")),
            (ToolChoice::None, json!("none")),
            (ToolChoice::Required, json!("required")),
        ] {
            let r = ChatRequest {
                tools: vec![Tool { name: "f".into(), description: None, parameters: None, strict: None }],
                tool_choice: Some(choice),
                ..request(vec![user("x")])
            };
            let b = body(&r);
            assert_eq!(b["tool_choice"], expected);
            assert_eq!(b["tools"], json!([{"type": "function", "function": {"name": "f"}}]));
        }
    }

    #[test]
    fn reasoning_mapping() {
        let effort = |reasoning| body(&ChatRequest { reasoning: Some(reasoning), ..request(vec![user("x")]) });
        assert_eq!(effort(Reasoning::Budget(1024))["reasoning_effort"], "low");
        assert_eq!(effort(Reasoning::Budget(2048))["reasoning_effort"], "medium");
        assert_eq!(effort(Reasoning::Budget(16384))["reasoning_effort"], "high");
        assert_eq!(effort(Reasoning::Effort(Effort::Minimal))["reasoning_effort"], "minimal");
        assert_eq!(effort(Reasoning::Disabled)["reasoning_effort"], "none");
    }

    #[test]
    fn assistant_reasoning_stays_behind_and_texts_join_as_parts() {
        let r = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![
                    Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                    Part::RedactedReasoning { data: "opaque".into() },
                    Part::Text("a".into()),
                    Part::Text("b".into()),
                ],
                tool_calls: vec![],
            },
            Message::Tool { tool_call_id: "c".into(), content: vec![] },
        ]);
        let b = body(&r);
        assert_eq!(
            b["messages"][1],
            json!({"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
        );
        assert_eq!(b["messages"][2], json!({"role": "tool", "content": "", "tool_call_id": "c"}));
    }

    #[test]
    fn inline_files_get_a_name() {
        let file = |media_type: &str| Part::File {
            media: Media::Base64 { media_type: media_type.into(), data: "AAAA".into() },
            filename: None,
        };
        let r =
            request(vec![Message::User { content: vec![file("application/pdf"), file("text/plain;x"), file("x")] }]);
        let names: Vec<Value> = body(&r)["messages"][0]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["file"]["filename"].clone())
            .collect();
        assert_eq!(names, vec![json!("file.pdf"), json!("file.plain"), json!("file")]);
    }

    #[test]
    fn unsupported_content_is_named() {
        let image = Part::Image(Media::Url("https://x/y.png".into()));
        let cases = [
            (Message::System { content: vec![image.clone()], developer: false }, "messages[0].content[0]"),
            (
                Message::Tool { tool_call_id: "c".into(), content: vec![Part::Text("a".into()), image] },
                "messages[0].content[1]",
            ),
            (
                Message::User {
                    content: vec![Part::File { media: Media::Url("https://x/a.pdf".into()), filename: None }],
                },
                "messages[0].content[0]",
            ),
            (Message::User { content: vec![Part::Image(Media::FileId("f".into()))] }, "messages[0].content[0]"),
            (Message::User { content: vec![Part::Refusal("no".into())] }, "messages[0].content[0]"),
        ];
        for (message, param) in cases {
            let err = request_body(&request(vec![message]), &options()).unwrap_err();
            assert!(matches!(err, RequestError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.param(), Some(param));
        }
    }

    #[test]
    fn extra_fields_never_duplicate_written_ones() {
        let extra = |name: &str, value: &str| ExtraField {
            name: name.into(),
            value: serde_json::from_str::<Box<RawValue>>(value).unwrap(),
        };
        let r = ChatRequest { extra: vec![extra("stream", "true"), extra("top_k", "5")], ..request(vec![user("x")]) };
        let text =
            String::from_utf8(request_body(&r, &RequestOptions { pass_extra: true, ..options() }).unwrap()).unwrap();
        assert_eq!(text.matches("\"stream\"").count(), 1, "{text}");
        assert!(text.ends_with(r#""stream":false,"top_k":5}"#), "{text}");
    }
}

//! Internal chat request -> OpenAI Responses request body. It writes JSON only; the head (path
//! [`super::RESPONSES_PATH`], key) is the caller's.
//!
//! Choices where the formats differ (each one a decision, not an accident):
//! - `store: false` always: a gateway relays conversations, it must not make OpenAI keep them (and
//!   every request carries its whole history, so nothing stored would ever be read back).
//! - The system and developer messages that open the conversation become `instructions` (texts
//!   joined by a blank line), the Responses API's own slot for them; one that comes later stays in
//!   place as a `system` / `developer` input message, so its position in the history is kept.
//! - User content is always a list of parts (`input_text`, `input_image`, `input_file`), also for a
//!   single text; images and files go by URL, inline as a data URL, or by file id (all three exist
//!   here, unlike in chat completions). An inline file without a name is named `file.<subtype>`.
//! - An assistant turn becomes an assistant message with `output_text` and `refusal` parts (when it
//!   has any), then one `function_call` item per tool call; a tool result becomes a
//!   `function_call_output` whose `output` is its texts concatenated.
//! - Reasoning parts of earlier assistant turns are not sent back: a Responses reasoning item needs
//!   the OpenAI item id, which the internal model does not keep, and a redacted part may be another
//!   provider's, which OpenAI cannot decrypt. The model reasons afresh instead.
//! - Tools are flat (`{"type": "function", "name", ...}`). `strict` is always written, `false` when
//!   the client did not say: the Responses API defaults it to `true`, the chat API to `false`, and a
//!   chat client's schema is rarely a strict one. A tool without a schema takes no parameters
//!   (`{"type": "object", "properties": {}}`): the Responses API requires `parameters`.
//! - `tool_choice` and `parallel_tool_calls` go out only with tools (OpenAI rejects them alone).
//! - `max_tokens` is `max_output_tokens`; `response_format` is `text.format`; the reasoning effort is
//!   `reasoning.effort`, a token budget becoming the nearest effort not above it (under 2048 `low`,
//!   under 16384 `medium`, else `high`) and `Reasoning::Disabled` `"none"`, sent as given so a model
//!   that cannot honour it explains itself with its own 400. `reasoning.summary: "auto"` is asked for
//!   only with [`RequestOptions::reasoning_summary`]: OpenAI refuses summaries to unverified
//!   organizations and to models without reasoning, so the operator opts in per endpoint.
//! - `user` is sent as `user` (still accepted, and what the chat mapping sends).
//! - Dropped: `seed` (a best-effort hint the Responses API does not take; the answer is as valid
//!   without it), `include_usage` (Responses always reports usage) and the request's unmodelled
//!   fields (`extra`), which are in the client's format, never Responses'.
//! - Rejected by name: `stop` (the Responses API has no stop sequences, and ignoring them would hand
//!   the client text it asked not to get), and non-text content in system prompts and tool results
//!   and reasoning or refusals in user turns.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::chat::{
    ChatRequest, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall, ToolChoice,
};
use crate::providers::openai_chat::reasoning_effort;

/// What the body needs besides the client's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The provider's model name (from the endpoint config).
    pub model: &'a str,
    /// Ask for reasoning summaries (`reasoning.summary: "auto"`), which stream as reasoning text.
    /// Only for reasoning models of organizations OpenAI lets see them (see the module doc).
    pub reasoning_summary: bool,
}

/// The request body for `request`. Fails only for what the Responses API cannot express (see the
/// module doc).
pub fn request_body(request: &ChatRequest, options: &RequestOptions<'_>) -> Result<Vec<u8>, RequestError> {
    if !request.stop.is_empty() {
        return Err(RequestError::unsupported("stop", "the OpenAI Responses API has no stop sequences"));
    }
    let (instructions, rest) = leading_instructions(&request.messages)?;
    // Errors name messages by their index in the client's request.
    let offset = request.messages.len() - rest.len();
    let mut input = Vec::with_capacity(rest.len());
    for (i, message) in rest.iter().enumerate() {
        push_items(message, offset + i, &mut input)?;
    }
    let has_tools = !request.tools.is_empty();
    let body = Body {
        model: options.model,
        instructions,
        input,
        tools: request.tools.iter().map(wire_tool).collect(),
        tool_choice: request.tool_choice.as_ref().filter(|_| has_tools).map(wire_tool_choice),
        parallel_tool_calls: request.parallel_tool_calls.filter(|_| has_tools),
        max_output_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        reasoning: wire_reasoning(request.reasoning, options.reasoning_summary),
        text: request.response_format.as_ref().map(|format| TextConfig { format: wire_format(format) }),
        user: request.user.as_deref(),
        store: false,
        stream: request.stream,
    };
    serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(format!("cannot encode: {e}")))
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
    input: Vec<Item<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<WireReasoning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    store: bool,
    stream: bool,
}

/// One input item: a message (untyped, the API's "easy" form), or a typed call or call output.
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Message { role: &'static str, content: Vec<ContentPart<'a>> },
    Typed(TypedItem<'a>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TypedItem<'a> {
    FunctionCall { call_id: &'a str, name: &'a str, arguments: &'a str },
    FunctionCallOutput { call_id: &'a str, output: String },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart<'a> {
    InputText {
        text: &'a str,
    },
    InputImage {
        #[serde(skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_id: Option<&'a str>,
    },
    InputFile {
        #[serde(skip_serializing_if = "Option::is_none")]
        file_data: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_url: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    OutputText {
        text: &'a str,
    },
    Refusal {
        refusal: &'a str,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a RawValue,
    strict: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        name: &'a str,
    },
}

#[derive(Serialize)]
struct WireReasoning {
    #[serde(skip_serializing_if = "Option::is_none")]
    effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'static str>,
}

#[derive(Serialize)]
struct TextConfig<'a> {
    format: WireFormat<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat<'a> {
    Text,
    JsonObject,
    JsonSchema {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// The `instructions` of the system and developer messages that open the conversation, and the
/// messages after them.
fn leading_instructions(messages: &[Message]) -> Result<(Option<String>, &[Message]), RequestError> {
    let count = messages.iter().take_while(|m| matches!(m, Message::System { .. })).count();
    let mut texts = Vec::with_capacity(count);
    for (i, message) in messages[..count].iter().enumerate() {
        if let Message::System { content, .. } = message {
            texts.push(system_text(content, i)?);
        }
    }
    let instructions = (!texts.is_empty()).then(|| texts.join("\n\n"));
    Ok((instructions, &messages[count..]))
}

/// Appends the input items of message `i`.
fn push_items<'a>(message: &'a Message, i: usize, input: &mut Vec<Item<'a>>) -> Result<(), RequestError> {
    match message {
        Message::System { content, developer } => {
            let content = text_parts(content, i, "system prompts")?;
            input.push(Item::Message { role: if *developer { "developer" } else { "system" }, content });
        }
        Message::User { content } => input.push(Item::Message { role: "user", content: user_parts(content, i)? }),
        Message::Assistant { content, tool_calls } => push_assistant(content, tool_calls, input),
        Message::Tool { tool_call_id, content } => {
            let output = text_only(content, i, "tool results")?.concat();
            input.push(Item::Typed(TypedItem::FunctionCallOutput { call_id: tool_call_id, output }));
        }
    }
    Ok(())
}

/// The texts of content that OpenAI takes as text only; `where_` names the place for the error.
fn text_only<'a>(content: &'a [Part], i: usize, where_: &str) -> Result<Vec<&'a str>, RequestError> {
    let mut texts = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) => texts.push(text.as_str()),
            _ => return Err(unsupported_part(i, j, &format!("OpenAI {where_} take text only"))),
        }
    }
    Ok(texts)
}

/// A leading system message as one instructions text (its parts concatenated, as one message's
/// parts are one text).
fn system_text(content: &[Part], i: usize) -> Result<String, RequestError> {
    Ok(text_only(content, i, "system prompts")?.concat())
}

fn text_parts<'a>(content: &'a [Part], i: usize, where_: &str) -> Result<Vec<ContentPart<'a>>, RequestError> {
    Ok(text_only(content, i, where_)?.into_iter().map(|text| ContentPart::InputText { text }).collect())
}

fn user_parts(content: &[Part], i: usize) -> Result<Vec<ContentPart<'_>>, RequestError> {
    let mut parts = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        parts.push(match part {
            Part::Text(text) => ContentPart::InputText { text },
            Part::Image(media) => image_part(media),
            Part::File { media, filename } => file_part(media, filename.as_deref()),
            _ => return Err(unsupported_part(i, j, "this part is only valid in assistant messages")),
        });
    }
    Ok(parts)
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

fn image_part(media: &Media) -> ContentPart<'_> {
    match media {
        Media::Url(url) => ContentPart::InputImage { image_url: Some(url.clone()), file_id: None },
        Media::Base64 { media_type, data } => {
            ContentPart::InputImage { image_url: Some(data_url(media_type, data)), file_id: None }
        }
        Media::FileId(id) => ContentPart::InputImage { image_url: None, file_id: Some(id) },
    }
}

fn file_part<'a>(media: &'a Media, filename: Option<&str>) -> ContentPart<'a> {
    let named = filename.map(str::to_owned);
    match media {
        Media::Base64 { media_type, data } => ContentPart::InputFile {
            file_data: Some(data_url(media_type, data)),
            file_id: None,
            file_url: None,
            filename: Some(named.unwrap_or_else(|| default_filename(media_type))),
        },
        Media::FileId(id) => {
            ContentPart::InputFile { file_data: None, file_id: Some(id), file_url: None, filename: named }
        }
        Media::Url(url) => {
            ContentPart::InputFile { file_data: None, file_id: None, file_url: Some(url), filename: named }
        }
    }
}

/// `file.pdf` for `application/pdf`; `file` when the type has no usable subtype.
fn default_filename(media_type: &str) -> String {
    let subtype = media_type.split_once('/').map_or("", |(_, sub)| sub);
    let extension: String = subtype.chars().take_while(char::is_ascii_alphanumeric).collect();
    if extension.is_empty() { "file".to_owned() } else { format!("file.{extension}") }
}

/// Texts and refusals as one assistant message, then the calls; reasoning stays behind (module doc).
fn push_assistant<'a>(content: &'a [Part], tool_calls: &'a [ToolCall], input: &mut Vec<Item<'a>>) {
    let parts: Vec<ContentPart<'a>> = content
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(ContentPart::OutputText { text }),
            Part::Refusal(refusal) => Some(ContentPart::Refusal { refusal }),
            _ => None,
        })
        .collect();
    if !parts.is_empty() {
        input.push(Item::Message { role: "assistant", content: parts });
    }
    input.extend(tool_calls.iter().map(|call| {
        Item::Typed(TypedItem::FunctionCall { call_id: &call.id, name: &call.name, arguments: &call.arguments })
    }));
}

/// The schema of a function without parameters.
fn no_parameters() -> &'static RawValue {
    // Valid JSON, so the conversion cannot fail.
    serde_json::from_str(r#"{"type":"object","properties":{}}"#).expect("a valid schema")
}

fn wire_tool(tool: &Tool) -> WireTool<'_> {
    WireTool {
        kind: "function",
        name: &tool.name,
        description: tool.description.as_deref(),
        parameters: tool.parameters.as_deref().unwrap_or_else(|| no_parameters()),
        strict: tool.strict.unwrap_or(false),
    }
}

fn wire_tool_choice(choice: &ToolChoice) -> WireToolChoice<'_> {
    match choice {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Named(name) => WireToolChoice::Named { kind: "function", name },
    }
}

fn wire_format(format: &ResponseFormat) -> WireFormat<'_> {
    match format {
        ResponseFormat::Text => WireFormat::Text,
        ResponseFormat::JsonObject => WireFormat::JsonObject,
        ResponseFormat::JsonSchema { name, schema, strict } => {
            WireFormat::JsonSchema { name, schema: schema.as_deref(), strict: *strict }
        }
    }
}

/// `reasoning`, when the client asked for an effort or the endpoint for summaries. No summary is
/// asked for when the client turned reasoning off.
fn wire_reasoning(reasoning: Option<Reasoning>, summary: bool) -> Option<WireReasoning> {
    let summary = (summary && reasoning != Some(Reasoning::Disabled)).then_some("auto");
    let effort = reasoning.map(reasoning_effort);
    (effort.is_some() || summary.is_some()).then_some(WireReasoning { effort, summary })
}

fn unsupported_part(i: usize, j: usize, why: &str) -> RequestError {
    RequestError::unsupported(format!("messages[{i}].content[{j}]"), why)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::Effort;

    fn options() -> RequestOptions<'static> {
        RequestOptions { model: "o3-pro", reasoning_summary: false }
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

    fn system(text: &str, developer: bool) -> Message {
        Message::System { content: vec![Part::Text(text.into())], developer }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest { model: "gw".into(), messages, ..ChatRequest::default() }
    }

    fn schema(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn minimal_request() {
        assert_eq!(
            body(&request(vec![user("hi")])),
            json!({"model": "o3-pro", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                   "store": false, "stream": false})
        );
    }

    #[test]
    fn leading_system_messages_are_instructions_later_ones_stay_in_place() {
        let r = request(vec![system("be brief", false), system("in French", true), user("hi"), system("now", true)]);
        let b = body(&r);
        assert_eq!(b["instructions"], "be brief\n\nin French");
        assert_eq!(
            b["input"],
            json!([{"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                   {"role": "developer", "content": [{"type": "input_text", "text": "now"}]}])
        );
        let plain = body(&request(vec![user("a"), system("s", false)]));
        assert!(plain.get("instructions").is_none());
        assert_eq!(plain["input"][1]["role"], "system");
    }

    #[test]
    fn every_mapped_field() {
        let r = ChatRequest {
            messages: vec![
                user("look"),
                Message::User {
                    content: vec![
                        Part::Image(Media::Url("https://x/cat.jpg".into())),
                        Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }),
                        Part::Image(Media::FileId("file-img".into())),
                        Part::File {
                            media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() },
                            filename: None,
                        },
                        Part::File { media: Media::FileId("file-doc".into()), filename: Some("a.pdf".into()) },
                        Part::File { media: Media::Url("https://x/b.pdf".into()), filename: None },
                    ],
                },
                Message::Assistant {
                    content: vec![
                        Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                        Part::RedactedReasoning { data: "gAAAA".into() },
                        Part::Text("a".into()),
                        Part::Refusal("no".into()),
                    ],
                    tool_calls: vec![
                        ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"x\":1}".into() },
                        ToolCall { id: "call_2".into(), name: "g".into(), arguments: "{}".into() },
                    ],
                },
                Message::Tool {
                    tool_call_id: "call_1".into(),
                    content: vec![Part::Text("4".into()), Part::Text("2".into())],
                },
                Message::Tool { tool_call_id: "call_2".into(), content: vec![] },
            ],
            tools: vec![
                Tool {
                    name: "f".into(),
                    description: Some("d".into()),
                    parameters: Some(schema(r#"{"type":"object","properties":{"x":{"type":"integer"}}}"#)),
                    strict: Some(true),
                },
                Tool { name: "g".into(), description: None, parameters: None, strict: None },
            ],
            tool_choice: Some(ToolChoice::Named("f".into())),
            parallel_tool_calls: Some(false),
            max_tokens: Some(300),
            temperature: Some(0.5),
            top_p: Some(0.9),
            seed: Some(7),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "s".into(),
                schema: Some(schema(r#"{"type":"object"}"#)),
                strict: Some(true),
            }),
            reasoning: Some(Reasoning::Effort(Effort::High)),
            stream: true,
            include_usage: true,
            user: Some("u1".into()),
            ..request(vec![])
        };
        let expected = json!({
            "model": "o3-pro",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "look"}]},
                {"role": "user", "content": [
                    {"type": "input_image", "image_url": "https://x/cat.jpg"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBOR"},
                    {"type": "input_image", "file_id": "file-img"},
                    {"type": "input_file", "file_data": "data:application/pdf;base64,JVBER", "filename": "file.pdf"},
                    {"type": "input_file", "file_id": "file-doc", "filename": "a.pdf"},
                    {"type": "input_file", "file_url": "https://x/b.pdf"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "a"}, {"type": "refusal", "refusal": "no"}]},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"x\":1}"},
                {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                {"type": "function_call_output", "call_id": "call_2", "output": ""}],
            "tools": [
                {"type": "function", "name": "f", "description": "d",
                 "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}, "strict": true},
                {"type": "function", "name": "g", "parameters": {"type": "object", "properties": {}}, "strict": false}],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": false,
            "max_output_tokens": 300,
            "temperature": 0.5,
            "top_p": 0.9,
            "reasoning": {"effort": "high"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": true}},
            "user": "u1",
            "store": false,
            "stream": true
        });
        assert_eq!(body(&r), expected);
    }

    #[test]
    fn tool_fields_only_with_tools() {
        let r = ChatRequest {
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: Some(true),
            ..request(vec![user("x")])
        };
        let b = body(&r);
        assert!(b.get("tool_choice").is_none() && b.get("parallel_tool_calls").is_none() && b.get("tools").is_none());
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
            assert_eq!(body(&r)["tool_choice"], expected);
        }
    }

    #[test]
    fn schemas_pass_through_byte_for_byte() {
        let r = ChatRequest {
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: Some(schema(r#"{"type":"object","required":["z"],"properties":{"z":{}}}"#)),
                strict: None,
            }],
            ..request(vec![user("x")])
        };
        let text = String::from_utf8(request_body(&r, &options()).unwrap()).unwrap();
        assert!(text.contains(r#""parameters":{"type":"object","required":["z"],"properties":{"z":{}}}"#), "{text}");
    }

    #[test]
    fn reasoning_and_summaries() {
        let with = |reasoning: Option<Reasoning>, summary: bool| {
            let r = ChatRequest { reasoning, ..request(vec![user("x")]) };
            body_with(&r, &RequestOptions { reasoning_summary: summary, ..options() }).get("reasoning").cloned()
        };
        assert_eq!(with(None, false), None);
        assert_eq!(with(None, true), Some(json!({"summary": "auto"})));
        assert_eq!(with(Some(Reasoning::Budget(1024)), false), Some(json!({"effort": "low"})));
        assert_eq!(with(Some(Reasoning::Budget(2048)), true), Some(json!({"effort": "medium", "summary": "auto"})));
        assert_eq!(with(Some(Reasoning::Budget(16384)), false), Some(json!({"effort": "high"})));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Minimal)), false), Some(json!({"effort": "minimal"})));
        assert_eq!(with(Some(Reasoning::Effort(Effort::XHigh)), false), Some(json!({"effort": "xhigh"})));
        assert_eq!(with(Some(Reasoning::Disabled), true), Some(json!({"effort": "none"})));
    }

    #[test]
    fn response_formats() {
        let format =
            |format| body(&ChatRequest { response_format: Some(format), ..request(vec![user("x")]) })["text"].clone();
        assert_eq!(format(ResponseFormat::Text), json!({"format": {"type": "text"}}));
        assert_eq!(format(ResponseFormat::JsonObject), json!({"format": {"type": "json_object"}}));
        assert_eq!(
            format(ResponseFormat::JsonSchema { name: "n".into(), schema: None, strict: None }),
            json!({"format": {"type": "json_schema", "name": "n"}})
        );
    }

    #[test]
    fn what_cannot_be_expressed_is_named() {
        let stop = ChatRequest { stop: vec!["END".into()], ..request(vec![user("x")]) };
        let err = request_body(&stop, &options()).unwrap_err();
        assert!(matches!(err, RequestError::Unsupported { .. }) && err.param() == Some("stop"), "{err:?}");

        let image = Part::Image(Media::Url("https://x/y.png".into()));
        let cases = [
            (vec![Message::System { content: vec![image.clone()], developer: false }], "messages[0].content[0]"),
            (
                vec![user("x"), Message::System { content: vec![image.clone()], developer: true }],
                "messages[1].content[0]",
            ),
            (
                vec![
                    user("x"),
                    Message::Tool { tool_call_id: "c".into(), content: vec![Part::Text("a".into()), image] },
                ],
                "messages[1].content[1]",
            ),
            (vec![Message::User { content: vec![Part::Refusal("no".into())] }], "messages[0].content[0]"),
            (
                vec![Message::User { content: vec![Part::RedactedReasoning { data: "d".into() }] }],
                "messages[0].content[0]",
            ),
        ];
        for (messages, param) in cases {
            let err = request_body(&request(messages), &options()).unwrap_err();
            assert!(matches!(err, RequestError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.param(), Some(param));
        }
    }

    #[test]
    fn assistant_turns_without_text_are_calls_only() {
        let r = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![Part::Reasoning { text: "t".into(), signature: None }],
                tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "{}".into() }],
            },
            Message::Assistant { content: vec![], tool_calls: vec![] },
        ]);
        assert_eq!(
            body(&r)["input"],
            json!([{"role": "user", "content": [{"type": "input_text", "text": "x"}]},
                   {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}])
        );
    }
}

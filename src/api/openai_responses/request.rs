//! OpenAI Responses request body -> internal `ChatRequest`, with errors that name the offending
//! `param` the way OpenAI does (`input[2].content[0].image_url`, `tools[1]`). It encodes nothing.
//!
//! Parsing is typed but lazy, as in `api::openai_chat`: the top level is read as (key, raw JSON)
//! pairs and each known field parsed on its own, so an error knows its field; duplicate keys are
//! rejected.
//!
//! Mapping choices:
//! - `input` as a string is one user message. As a list, messages (with or without
//!   `"type": "message"`) keep their role (`developer` stays a developer message); `instructions`
//!   (when not empty) becomes a system message before them.
//! - One assistant turn is built from consecutive assistant-side items: `reasoning` items and an
//!   assistant message start or join a turn that has no text and no calls yet, and `function_call`
//!   items join the assistant turn just before them (or start one). A `reasoning` item becomes a
//!   reasoning part (summary texts joined by a blank line, as `providers::openai_responses` joins
//!   them; its `reasoning_text` content another) and its `encrypted_content` a redacted reasoning
//!   part. `function_call_output` is a tool result (a string, or input parts).
//! - Text parts are `input_text` and `output_text` in any role; `input_image` (`image_url` as an
//!   http(s) or base64 data URL, or `file_id`) and `input_file` (`file_data` data URL, `file_url`,
//!   `file_id`, `filename`) only in user turns and tool results; `refusal` only in assistant turns.
//! - `strict` of a function tool defaults to `true` when absent or null: the Responses API's own
//!   default (the chat API's is `false`), kept so the `openai_responses` provider sends what OpenAI
//!   would have assumed.
//! - `max_output_tokens` is the output budget, `text.format` the response format, `reasoning.effort`
//!   the reasoning effort (`none` disables it).
//! - `include_usage` is always set: the Responses API always reports usage, so every provider is
//!   asked for it.
//! - Ignored, with no effect on any provider: `metadata`, `store` (Corelay stores nothing),
//!   `include`, `truncation`, `service_tier`, `safety_identifier`, `prompt_cache_key`,
//!   `prompt_cache_retention`, `stream_options`, `text.verbosity`, `reasoning.summary` (and the
//!   older `reasoning.generate_summary`), `background: false`, null `previous_response_id` /
//!   `conversation` / `prompt`, image `detail`, and the ids and statuses of input items.
//! - Other unknown top-level fields are kept verbatim in `extra`, as the chat parser keeps them.
//! - Rejected by name: `previous_response_id`, `conversation` and `prompt` (state and templates
//!   stored at OpenAI; Corelay keeps none, so the client must send the whole input), `background:
//!   true`, built-in tools (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`,
//!   `mcp`, `image_generation`, `local_shell`, `custom`, ...) and their calls in the input,
//!   `item_reference` items, `allowed_tools` and built-in tool choices; anything malformed.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::request_json::{
    check_parts, effort_named, first_byte, media_from_data_url, media_from_url, structured, top_level_members, typed,
};

use crate::chat::{
    ChatRequest, ExtraField, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall, ToolChoice,
};

/// Parses a Responses request body.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let mut top = TopLevel::default();
    for (name, raw) in &top_level_members(body)? {
        top.apply(name, raw)?;
    }
    top.finish()
}

/// The request being assembled, with the fields that are combined at the end.
#[derive(Default)]
struct TopLevel {
    request: ChatRequest,
    model: Option<String>,
    instructions: Option<String>,
    input: Option<Vec<Message>>,
}

/// Fields that mean nothing to a provider of another format and change nothing in the answer
/// (see the module doc).
const IGNORED: [&str; 8] = [
    "metadata",
    "store",
    "include",
    "truncation",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
];

impl TopLevel {
    fn apply(&mut self, name: &str, raw: &RawValue) -> Result<(), RequestError> {
        let r = &mut self.request;
        match name {
            "model" => self.model = Some(typed(raw, name, "a string")?),
            "input" => self.input = Some(parse_input(raw)?),
            "instructions" => self.instructions = typed(raw, name, "a string")?,
            "tools" => r.tools = parse_tools(raw)?,
            "tool_choice" => r.tool_choice = parse_tool_choice(raw)?,
            "parallel_tool_calls" => r.parallel_tool_calls = typed(raw, name, "a boolean")?,
            "max_output_tokens" => r.max_tokens = typed(raw, name, "a non-negative integer")?,
            "temperature" => r.temperature = typed(raw, name, "a number")?,
            "top_p" => r.top_p = typed(raw, name, "a number")?,
            "stream" => r.stream = typed::<Option<bool>>(raw, name, "a boolean")?.unwrap_or(false),
            "reasoning" => r.reasoning = parse_reasoning(raw)?,
            "text" => r.response_format = parse_text(raw)?,
            "user" => r.user = typed(raw, name, "a string")?,
            "previous_response_id" | "conversation" => refuse_state(raw, name)?,
            "prompt" => refuse_if_set(raw, name, "stored prompt templates live at OpenAI; send `input` instead")?,
            "background" => check_background(raw)?,
            "stream_options" => {}
            _ if IGNORED.contains(&name) => {}
            _ => r.extra.push(ExtraField { name: name.to_owned(), value: raw.to_owned() }),
        }
        Ok(())
    }

    fn finish(self) -> Result<ChatRequest, RequestError> {
        let mut request = self.request;
        request.model =
            self.model.ok_or_else(|| RequestError::invalid("model", "you must provide a model parameter"))?;
        let input = self.input.ok_or_else(|| RequestError::invalid("input", "`input` is required"))?;
        let instructions = self.instructions.filter(|text| !text.is_empty());
        request.messages = Vec::with_capacity(input.len() + 1);
        request
            .messages
            .extend(instructions.map(|text| Message::System { content: vec![Part::Text(text)], developer: false }));
        request.messages.extend(input);
        // The Responses API always reports usage, so every provider must be asked for it.
        request.include_usage = true;
        Ok(request)
    }
}

fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// `previous_response_id` and `conversation` point at state stored at OpenAI; null is their default.
fn refuse_state(raw: &RawValue, name: &str) -> Result<(), RequestError> {
    refuse_if_set(
        raw,
        name,
        "Corelay keeps no conversation state; send the whole conversation in `input` (and reasoning items \
         with `encrypted_content` to carry reasoning over)",
    )
}

fn refuse_if_set(raw: &RawValue, name: &str, why: &str) -> Result<(), RequestError> {
    if is_null(raw) {
        return Ok(());
    }
    Err(RequestError::unsupported(name, format!("`{name}` is not supported: {why}")))
}

/// Background responses are polled from OpenAI's store, which a gateway does not have.
fn check_background(raw: &RawValue) -> Result<(), RequestError> {
    match typed::<Option<bool>>(raw, "background", "a boolean")? {
        Some(true) => Err(RequestError::unsupported("background", "background responses are not supported")),
        _ => Ok(()),
    }
}

fn parse_effort(effort: &str) -> Result<Reasoning, RequestError> {
    effort_named(effort, "reasoning.effort")
}

fn parse_reasoning(raw: &RawValue) -> Result<Option<Reasoning>, RequestError> {
    #[derive(Deserialize)]
    struct WireReasoning {
        effort: Option<String>,
    }
    let reasoning: Option<WireReasoning> = structured(raw, "reasoning")?;
    reasoning.and_then(|r| r.effort).map(|effort| parse_effort(&effort)).transpose()
}

/// `text.format` -> the response format; `text.verbosity` is ignored.
fn parse_text(raw: &RawValue) -> Result<Option<ResponseFormat>, RequestError> {
    #[derive(Deserialize)]
    struct Text<'a> {
        #[serde(borrow)]
        format: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Format {
        #[serde(rename = "type")]
        kind: String,
        name: Option<String>,
        schema: Option<Box<RawValue>>,
        strict: Option<bool>,
    }
    let Some(text) = structured::<Option<Text<'_>>>(raw, "text")? else { return Ok(None) };
    let Some(format) = text.format.filter(|f| !is_null(f)) else { return Ok(None) };
    let format: Format = structured(format, "text.format")?;
    Ok(Some(match format.kind.as_str() {
        "text" => ResponseFormat::Text,
        "json_object" => ResponseFormat::JsonObject,
        "json_schema" => {
            let name = format
                .name
                .ok_or_else(|| RequestError::invalid("text.format.name", "`text.format.name` is required"))?;
            ResponseFormat::JsonSchema { name, schema: format.schema, strict: format.strict }
        }
        other => {
            return Err(RequestError::invalid("text.format.type", format!("unknown `text.format.type` `{other}`")));
        }
    }))
}

fn parse_tools(raw: &RawValue) -> Result<Vec<Tool>, RequestError> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Function {
        name: String,
        description: Option<String>,
        parameters: Option<Box<RawValue>>,
        strict: Option<bool>,
    }
    let items = typed::<Option<Vec<&RawValue>>>(raw, "tools", "an array of tools")?.unwrap_or_default();
    let mut tools = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let param = format!("tools[{i}]");
        let Kind { kind } = structured(item, &param)?;
        if kind != "function" {
            return Err(RequestError::unsupported(
                param,
                format!(
                    "`{kind}` is an OpenAI built-in tool: it runs only at OpenAI and is not supported when \
                     translating to other providers; use function tools"
                ),
            ));
        }
        let Function { name, description, parameters, strict } = structured(item, &param)?;
        // The Responses API's default (module doc).
        tools.push(Tool { name, description, parameters, strict: Some(strict.unwrap_or(true)) });
    }
    Ok(tools)
}

fn parse_tool_choice(raw: &RawValue) -> Result<Option<ToolChoice>, RequestError> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "type")]
        kind: String,
        name: Option<String>,
    }
    let param = "tool_choice";
    match first_byte(raw) {
        Some(b'n') => Ok(None),
        Some(b'"') => match typed::<String>(raw, param, "a string")?.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(RequestError::invalid(param, format!("unknown `tool_choice` `{other}`"))),
        },
        _ => {
            let named: Named = structured(raw, param)?;
            match (named.kind.as_str(), named.name) {
                ("function", Some(name)) => Ok(Some(ToolChoice::Named(name))),
                ("function", None) => Err(RequestError::invalid("tool_choice.name", "`name` is required")),
                (other, _) => Err(RequestError::unsupported(
                    "tool_choice.type",
                    format!("`tool_choice` of type `{other}` is not supported when translating to other providers"),
                )),
            }
        }
    }
}

/// One input item, every member any item type uses; the type decides which are read.
#[derive(Deserialize)]
struct WireItem<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    #[serde(borrow)]
    output: Option<&'a RawValue>,
    #[serde(borrow)]
    summary: Option<&'a RawValue>,
    encrypted_content: Option<String>,
}

fn parse_input(raw: &RawValue) -> Result<Vec<Message>, RequestError> {
    let expected = "a string or an array of input items";
    match first_byte(raw) {
        Some(b'"') => Ok(vec![Message::User { content: vec![Part::Text(typed(raw, "input", expected)?)] }]),
        Some(b'[') => {
            let items: Vec<&RawValue> = typed(raw, "input", expected)?;
            if items.is_empty() {
                return Err(RequestError::invalid("input", "`input` must contain at least one item"));
            }
            let mut messages = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                add_item(item, &format!("input[{i}]"), &mut messages)?;
            }
            Ok(messages)
        }
        _ => Err(RequestError::invalid("input", format!("`input` must be {expected}"))),
    }
}

/// Adds one input item to the conversation (module doc: how assistant turns are assembled).
fn add_item(raw: &RawValue, param: &str, messages: &mut Vec<Message>) -> Result<(), RequestError> {
    if first_byte(raw) != Some(b'{') {
        return Err(RequestError::invalid(param, format!("`{param}` must be an object")));
    }
    let item: WireItem<'_> = structured(raw, param)?;
    match item.kind.as_deref() {
        None | Some("message") => add_message(item, param, messages),
        Some("function_call") => {
            let call = function_call(item, param)?;
            match messages.last_mut() {
                Some(Message::Assistant { tool_calls, .. }) => tool_calls.push(call),
                _ => messages.push(Message::Assistant { content: Vec::new(), tool_calls: vec![call] }),
            }
            Ok(())
        }
        Some("function_call_output") => {
            messages.push(function_call_output(item, param)?);
            Ok(())
        }
        Some("reasoning") => {
            let parts = reasoning_parts(item, param)?;
            assistant_turn(messages).extend(parts);
            Ok(())
        }
        Some("item_reference") => Err(RequestError::unsupported(
            format!("{param}.type"),
            "item references point at items stored at OpenAI; Corelay keeps none, so send the items themselves",
        )),
        Some(other) if other.ends_with("_call") || other.ends_with("_call_output") || other.starts_with("mcp_") => {
            Err(RequestError::unsupported(
                format!("{param}.type"),
                format!(
                    "`{other}` items belong to OpenAI built-in tools, which are not supported when translating to other providers"
                ),
            ))
        }
        Some(other) => {
            Err(RequestError::invalid(format!("{param}.type"), format!("unknown input item type `{other}`")))
        }
    }
}

/// The content of the assistant turn that the next reasoning part or message text joins: the last
/// message when it is an assistant turn with no text and no calls yet, else a new assistant turn.
fn assistant_turn(messages: &mut Vec<Message>) -> &mut Vec<Part> {
    let joinable = matches!(
        messages.last(),
        Some(Message::Assistant { content, tool_calls })
            if tool_calls.is_empty() && !content.iter().any(|p| matches!(p, Part::Text(_) | Part::Refusal(_)))
    );
    if !joinable {
        messages.push(Message::Assistant { content: Vec::new(), tool_calls: Vec::new() });
    }
    match messages.last_mut() {
        Some(Message::Assistant { content, .. }) => content,
        _ => unreachable!("an assistant turn was just ensured"),
    }
}

fn add_message(item: WireItem<'_>, param: &str, messages: &mut Vec<Message>) -> Result<(), RequestError> {
    let role = item.role.ok_or_else(|| RequestError::invalid(format!("{param}.role"), "`role` is required"))?;
    let content_param = format!("{param}.content");
    let content = parse_content(item.content, &content_param)?;
    check_parts(&role, &content, &content_param)?;
    match role.as_str() {
        "user" => messages.push(Message::User { content }),
        "system" => messages.push(Message::System { content, developer: false }),
        "developer" => messages.push(Message::System { content, developer: true }),
        "assistant" => assistant_turn(messages).extend(content),
        other => return Err(RequestError::invalid(format!("{param}.role"), format!("unknown role `{other}`"))),
    }
    Ok(())
}

fn parse_content(raw: Option<&RawValue>, param: &str) -> Result<Vec<Part>, RequestError> {
    let expected = "a string or an array of content parts";
    let Some(raw) = raw else { return Err(RequestError::invalid(param, format!("`{param}` is required"))) };
    match first_byte(raw) {
        Some(b'"') => Ok(vec![Part::Text(typed(raw, param, expected)?)]),
        Some(b'[') => {
            let items: Vec<&RawValue> = typed(raw, param, expected)?;
            items.into_iter().enumerate().map(|(j, item)| parse_part(item, &format!("{param}[{j}]"))).collect()
        }
        _ => Err(RequestError::invalid(param, format!("`{param}` must be {expected}"))),
    }
}

#[derive(Deserialize)]
struct WirePart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<String>,
    file_id: Option<String>,
    file_data: Option<String>,
    file_url: Option<String>,
    filename: Option<String>,
}

fn parse_part(raw: &RawValue, param: &str) -> Result<Part, RequestError> {
    let part: WirePart = structured(raw, param)?;
    let missing = |field: &str| RequestError::invalid(format!("{param}.{field}"), format!("`{field}` is required"));
    match part.kind.as_str() {
        "input_text" | "output_text" => part.text.map(Part::Text).ok_or_else(|| missing("text")),
        "refusal" => part.refusal.map(Part::Refusal).ok_or_else(|| missing("refusal")),
        "input_image" => match (part.image_url, part.file_id) {
            (Some(url), _) => Ok(Part::Image(media_from_url(url, &format!("{param}.image_url"))?)),
            (None, Some(id)) => Ok(Part::Image(Media::FileId(id))),
            (None, None) => Err(RequestError::invalid(param, "`image_url` or `file_id` is required")),
        },
        "input_file" => parse_file(part, param),
        "input_audio" => Err(RequestError::unsupported(param, "audio input is not supported")),
        other => Err(RequestError::invalid(format!("{param}.type"), format!("unknown content part type `{other}`"))),
    }
}

fn parse_file(part: WirePart, param: &str) -> Result<Part, RequestError> {
    let media = match (part.file_data, part.file_url, part.file_id) {
        (Some(data), _, _) => media_from_data_url(data, &format!("{param}.file_data"))?,
        (None, Some(url), _) => media_from_url(url, &format!("{param}.file_url"))?,
        (None, None, Some(id)) => Media::FileId(id),
        (None, None, None) => {
            return Err(RequestError::invalid(param, "`file_data`, `file_url` or `file_id` is required"));
        }
    };
    Ok(Part::File { media, filename: part.filename })
}

fn function_call(item: WireItem<'_>, param: &str) -> Result<ToolCall, RequestError> {
    let missing = |field: &str| RequestError::invalid(format!("{param}.{field}"), format!("`{field}` is required"));
    Ok(ToolCall {
        id: item.call_id.ok_or_else(|| missing("call_id"))?,
        name: item.name.ok_or_else(|| missing("name"))?,
        arguments: item.arguments.ok_or_else(|| missing("arguments"))?,
    })
}

/// A tool result: `output` is a string or a list of input parts.
fn function_call_output(item: WireItem<'_>, param: &str) -> Result<Message, RequestError> {
    let tool_call_id =
        item.call_id.ok_or_else(|| RequestError::invalid(format!("{param}.call_id"), "`call_id` is required"))?;
    let output_param = format!("{param}.output");
    let content = parse_content(item.output, &output_param)?;
    check_parts("user", &content, &output_param)?;
    Ok(Message::Tool { tool_call_id, content })
}

/// A reasoning item's parts: the summary, the raw reasoning text, the encrypted reasoning.
fn reasoning_parts(item: WireItem<'_>, param: &str) -> Result<Vec<Part>, RequestError> {
    #[derive(Deserialize)]
    struct Text {
        #[serde(rename = "type")]
        kind: String,
        text: String,
    }
    let texts = |raw: Option<&RawValue>, name: &str, kind: &str| -> Result<Vec<String>, RequestError> {
        let Some(raw) = raw else { return Ok(Vec::new()) };
        let param = format!("{param}.{name}");
        let parts: Option<Vec<Text>> = structured(raw, &param)?;
        Ok(parts.unwrap_or_default().into_iter().filter(|p| p.kind == kind).map(|p| p.text).collect())
    };
    let summary = texts(item.summary, "summary", "summary_text")?.join("\n\n");
    let content = texts(item.content, "content", "reasoning_text")?.concat();
    let mut parts: Vec<Part> = [summary, content]
        .into_iter()
        .filter(|text| !text.is_empty())
        .map(|text| Part::Reasoning { text, signature: None })
        .collect();
    parts.extend(item.encrypted_content.filter(|d| !d.is_empty()).map(|data| Part::RedactedReasoning { data }));
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Effort;

    fn parse(json: &str) -> Result<ChatRequest, RequestError> {
        parse_request(json.as_bytes())
    }

    fn param_of(json: &str) -> Option<String> {
        parse(json).unwrap_err().param().map(str::to_owned)
    }

    fn text(t: &str) -> Part {
        Part::Text(t.into())
    }

    #[test]
    fn a_string_input_is_one_user_message_and_usage_is_always_asked_for() {
        let r = parse(r#"{"model":"gw","input":"hi"}"#).unwrap();
        assert_eq!(r.model, "gw");
        assert_eq!(r.messages, vec![Message::User { content: vec![text("hi")] }]);
        assert!(!r.stream && r.include_usage && r.extra.is_empty());
    }

    #[test]
    fn scalar_fields_and_ignored_ones() {
        let r = parse(
            r#"{"model":"gw","input":"x","instructions":"be brief","stream":true,"max_output_tokens":50,
                "temperature":0.5,"top_p":0.9,"parallel_tool_calls":false,"user":"u1",
                "reasoning":{"effort":"high","summary":"auto"},"text":{"format":{"type":"json_object"},"verbosity":"low"},
                "metadata":{"a":"b"},"store":true,"include":["reasoning.encrypted_content"],"truncation":"auto",
                "service_tier":"flex","safety_identifier":"s","prompt_cache_key":"k","previous_response_id":null,
                "conversation":null,"background":false,"stream_options":{"include_obfuscation":false},"top_logprobs":2}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages,
            vec![
                Message::System { content: vec![text("be brief")], developer: false },
                Message::User { content: vec![text("x")] }
            ]
        );
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(50));
        assert_eq!((r.temperature, r.top_p), (Some(0.5), Some(0.9)));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert_eq!(r.user.as_deref(), Some("u1"));
        assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
        assert_eq!(r.response_format, Some(ResponseFormat::JsonObject));
        let extra: Vec<(&str, &str)> = r.extra.iter().map(|f| (f.name.as_str(), f.value.get())).collect();
        assert_eq!(extra, vec![("top_logprobs", "2")]);
    }

    #[test]
    fn efforts_and_formats() {
        let effort = |e: &str| parse(&format!(r#"{{"model":"gw","input":"x","reasoning":{{"effort":"{e}"}}}}"#));
        assert_eq!(effort("none").unwrap().reasoning, Some(Reasoning::Disabled));
        assert_eq!(effort("minimal").unwrap().reasoning, Some(Reasoning::Effort(Effort::Minimal)));
        assert_eq!(effort("xhigh").unwrap().reasoning, Some(Reasoning::Effort(Effort::XHigh)));
        let r = parse(
            r#"{"model":"gw","input":"x","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"},"strict":true}}}"#,
        )
        .unwrap();
        assert!(matches!(&r.response_format,
            Some(ResponseFormat::JsonSchema { name, schema: Some(s), strict: Some(true) })
                if name == "s" && s.get() == r#"{"type":"object"}"#));
        let plain = parse(r#"{"model":"gw","input":"x","text":{"format":{"type":"text"}},"reasoning":null}"#).unwrap();
        assert_eq!((plain.response_format, plain.reasoning), (Some(ResponseFormat::Text), None));
    }

    #[test]
    fn items_build_turns() {
        let r = parse(
            r#"{"model":"gw","input":[
                {"role":"developer","content":"rules"},
                {"type":"message","role":"user","content":[
                    {"type":"input_text","text":"look"},
                    {"type":"input_image","image_url":"data:image/png;base64,iVBOR","detail":"high"},
                    {"type":"input_image","image_url":"https://x/cat.jpg"},
                    {"type":"input_image","file_id":"file-img"},
                    {"type":"input_file","file_data":"data:application/pdf;base64,JVBER","filename":"a.pdf"},
                    {"type":"input_file","file_url":"https://x/b.pdf"},
                    {"type":"input_file","file_id":"file-doc"}]},
                {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"a"},{"type":"summary_text","text":"b"}],
                 "encrypted_content":"gAAA"},
                {"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[
                    {"type":"output_text","text":"calling","annotations":[]},{"type":"refusal","refusal":"no"}]},
                {"type":"function_call","id":"fc_1","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
                {"type":"function_call","call_id":"c2","name":"g","arguments":"{}"},
                {"type":"function_call_output","call_id":"c1","output":"42"},
                {"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"ok"}]},
                {"type":"function_call","call_id":"c3","name":"f","arguments":"{}"},
                {"role":"assistant","content":"first"},
                {"role":"assistant","content":"second"}]}"#,
        )
        .unwrap();
        let call =
            |id: &str, name: &str, args: &str| ToolCall { id: id.into(), name: name.into(), arguments: args.into() };
        assert_eq!(
            r.messages,
            vec![
                Message::System { content: vec![text("rules")], developer: true },
                Message::User {
                    content: vec![
                        text("look"),
                        Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }),
                        Part::Image(Media::Url("https://x/cat.jpg".into())),
                        Part::Image(Media::FileId("file-img".into())),
                        Part::File {
                            media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() },
                            filename: Some("a.pdf".into()),
                        },
                        Part::File { media: Media::Url("https://x/b.pdf".into()), filename: None },
                        Part::File { media: Media::FileId("file-doc".into()), filename: None },
                    ],
                },
                Message::Assistant {
                    content: vec![
                        Part::Reasoning { text: "a\n\nb".into(), signature: None },
                        Part::RedactedReasoning { data: "gAAA".into() },
                        text("calling"),
                        Part::Refusal("no".into()),
                    ],
                    tool_calls: vec![call("c1", "f", "{\"a\":1}"), call("c2", "g", "{}")],
                },
                Message::Tool { tool_call_id: "c1".into(), content: vec![text("42")] },
                Message::Tool { tool_call_id: "c2".into(), content: vec![text("ok")] },
                Message::Assistant { content: vec![], tool_calls: vec![call("c3", "f", "{}")] },
                Message::Assistant { content: vec![text("first")], tool_calls: vec![] },
                Message::Assistant { content: vec![text("second")], tool_calls: vec![] },
            ]
        );
    }

    #[test]
    fn tools_and_choices() {
        let r = parse(
            r#"{"model":"gw","input":"x","tools":[
                {"type":"function","name":"f","description":"d","parameters":{"type":"object","properties":{"z":{},"a":{}}},"strict":false},
                {"type":"function","name":"g"}],
                "tool_choice":{"type":"function","name":"f"}}"#,
        )
        .unwrap();
        assert_eq!(r.tools.len(), 2);
        assert_eq!(r.tools[0].parameters.as_ref().unwrap().get(), r#"{"type":"object","properties":{"z":{},"a":{}}}"#);
        assert_eq!((r.tools[0].strict, r.tools[1].strict), (Some(false), Some(true)));
        assert_eq!(r.tools[0].description.as_deref(), Some("d"));
        assert_eq!(r.tool_choice, Some(ToolChoice::Named("f".into())));
        for (choice, expected) in [
            ("\"auto\"", Some(ToolChoice::Auto)),
            ("\"none\"", Some(ToolChoice::None)),
            ("\"required\"", Some(ToolChoice::Required)),
            ("null", None),
        ] {
            let json = format!(r#"{{"model":"gw","input":"x","tool_choice":{choice}}}"#);
            assert_eq!(parse(&json).unwrap().tool_choice, expected);
        }
    }

    #[test]
    fn built_in_tools_and_server_state_are_refused_by_name() {
        for tool in ["web_search", "file_search", "computer_use_preview", "code_interpreter", "mcp", "image_generation"]
        {
            let json = format!(
                r#"{{"model":"gw","input":"x","tools":[{{"type":"function","name":"f"}},{{"type":"{tool}"}}]}}"#
            );
            let err = parse(&json).unwrap_err();
            assert!(matches!(err, RequestError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.param(), Some("tools[1]"));
            assert!(err.to_string().contains(tool) && err.to_string().contains("other providers"), "{err}");
        }
        for (field, value) in
            [("previous_response_id", "\"resp_1\""), ("conversation", "\"conv_1\""), ("prompt", "{\"id\":\"p\"}")]
        {
            let err = parse(&format!(r#"{{"model":"gw","input":"x","{field}":{value}}}"#)).unwrap_err();
            assert!(matches!(err, RequestError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.param(), Some(field));
        }
        let background = parse(r#"{"model":"gw","input":"x","background":true}"#).unwrap_err();
        assert_eq!(background.param(), Some("background"));
    }

    #[test]
    fn errors_name_the_param() {
        let cases = [
            (r#"{"input":"x"}"#, "model"),
            (r#"{"model":"gw"}"#, "input"),
            (r#"{"model":"gw","input":[]}"#, "input"),
            (r#"{"model":"gw","input":7}"#, "input"),
            (r#"{"model":"gw","model":"gw","input":"x"}"#, "model"),
            (r#"{"model":"gw","input":"x","instructions":7}"#, "instructions"),
            (r#"{"model":"gw","input":"x","temperature":"hot"}"#, "temperature"),
            (r#"{"model":"gw","input":"x","max_output_tokens":-1}"#, "max_output_tokens"),
            (r#"{"model":"gw","input":"x","stream":"yes"}"#, "stream"),
            (r#"{"model":"gw","input":["x"]}"#, "input[0]"),
            (r#"{"model":"gw","input":[{"content":"x"}]}"#, "input[0].role"),
            (
                r#"{"model":"gw","input":[{"role":"user","content":"x"},{"role":"robot","content":"x"}]}"#,
                "input[1].role",
            ),
            (r#"{"model":"gw","input":[{"role":"user"}]}"#, "input[0].content"),
            (r#"{"model":"gw","input":[{"role":"user","content":7}]}"#, "input[0].content"),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"video"}]}]}"#,
                "input[0].content[1].type",
            ),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_text"}]}]}"#,
                "input[0].content[0].text",
            ),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x"}]}]}"#,
                "input[0].content[0].image_url",
            ),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,abc"}]}]}"#,
                "input[0].content[0].image_url",
            ),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_file","file_data":"JVBER"}]}]}"#,
                "input[0].content[0].file_data",
            ),
            (r#"{"model":"gw","input":[{"role":"user","content":[{"type":"input_image"}]}]}"#, "input[0].content[0]"),
            (
                r#"{"model":"gw","input":[{"role":"system","content":[{"type":"input_image","image_url":"https://x"}]}]}"#,
                "input[0].content[0]",
            ),
            (
                r#"{"model":"gw","input":[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]}"#,
                "input[0].content[0]",
            ),
            (r#"{"model":"gw","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#, "input[0].call_id"),
            (r#"{"model":"gw","input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}"#, "input[0].name"),
            (r#"{"model":"gw","input":[{"type":"function_call_output","output":"x"}]}"#, "input[0].call_id"),
            (r#"{"model":"gw","input":[{"type":"function_call_output","call_id":"c"}]}"#, "input[0].output"),
            (r#"{"model":"gw","input":[{"type":"reasoning","summary":7}]}"#, "input[0].summary"),
            (r#"{"model":"gw","input":[{"type":"item_reference","id":"msg_1"}]}"#, "input[0].type"),
            (r#"{"model":"gw","input":[{"type":"web_search_call","id":"ws_1"}]}"#, "input[0].type"),
            (r#"{"model":"gw","input":[{"type":"hologram"}]}"#, "input[0].type"),
            (r#"{"model":"gw","input":"x","tools":[{"type":"function"}]}"#, "tools[0]"),
            (r#"{"model":"gw","input":"x","tools":{}}"#, "tools"),
            (r#"{"model":"gw","input":"x","tool_choice":"sometimes"}"#, "tool_choice"),
            (r#"{"model":"gw","input":"x","tool_choice":{"type":"function"}}"#, "tool_choice.name"),
            (r#"{"model":"gw","input":"x","tool_choice":{"type":"web_search_preview"}}"#, "tool_choice.type"),
            (r#"{"model":"gw","input":"x","reasoning":{"effort":"max"}}"#, "reasoning.effort"),
            (r#"{"model":"gw","input":"x","reasoning":7}"#, "reasoning"),
            (r#"{"model":"gw","input":"x","text":{"format":{"type":"xml"}}}"#, "text.format.type"),
            (r#"{"model":"gw","input":"x","text":{"format":{"type":"json_schema"}}}"#, "text.format.name"),
        ];
        for (json, param) in cases {
            assert_eq!(param_of(json).as_deref(), Some(param), "{json}");
        }
        assert!(matches!(parse("[1]"), Err(RequestError::InvalidJson(_))));
        assert!(matches!(parse("{\"model\":"), Err(RequestError::InvalidJson(_))));
    }
}

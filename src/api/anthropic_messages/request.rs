//! Anthropic Messages request body -> internal `ChatRequest`, with errors that name the offending
//! `param` in Anthropic's dotted form (`messages.1.content.0.source.type`). It writes no body and
//! knows no provider: what a provider cannot take is its mapping's to refuse.
//!
//! Parsing is typed but lazy, as in the OpenAI front door: the top level is read as (key, raw JSON)
//! pairs and each known field is parsed on its own, so an error knows its field; duplicate keys are
//! rejected; unknown top-level fields (`service_tier`, `container`, `context_management`, ...) are
//! kept verbatim in `extra`, where only a mapping to Anthropic's own format could use them.
//!
//! This parser serves translations only: a request to an `anthropic` provider passes through
//! untouched (`proxy::chat`), and when a request cannot be parsed here (a server tool, say) only the
//! model's `anthropic` providers are tried.
//!
//! Mapping choices:
//! - `system` (a string or text blocks) becomes one system message, first.
//! - A user turn's `tool_result` blocks become tool messages, in place: the blocks before one
//!   become a user message, then the result, then the rest. `is_error` has no internal counterpart
//!   and is dropped; the result's own text says what failed.
//! - Assistant `thinking` blocks become reasoning with their signature (an empty one is none: this
//!   front door shows unsigned reasoning with `signature: ""`), `redacted_thinking` redacted
//!   reasoning, and `tool_use` a tool call whose arguments are the `input` JSON text as sent.
//! - Documents become files titled by `title`; a plain-text document (`source.type: "text"`)
//!   becomes its text. Images and documents take `base64` and `url` sources.
//! - `tool_choice.disable_parallel_tool_use: true` is `parallel_tool_calls: false`.
//! - `thinking` `enabled` is a token budget and `disabled` is off; `adaptive` (the model decides) and
//!   `output_config.effort` without `thinking` are an effort level (`max` is the highest, `xhigh`),
//!   `adaptive` alone is `high`, Anthropic's default effort. `output_config.format` is a JSON schema
//!   response format (named `output`, which OpenAI requires and Anthropic does not have).
//! - `top_k` is checked and kept in `extra` (no other format has it); `metadata.user_id` is the user.
//!   Streams always want usage (`include_usage`), as Anthropic streams always carry it.
//! - Dropped, since they steer Anthropic's own service and mean nothing to a translation:
//!   `cache_control` anywhere, `citations`, tool `defer_loading` and other per-tool options, and
//!   metadata keys other than `user_id`.
//! - Rejected by name as unsupported: server tools (a tool with a `type` other than `custom`) and
//!   their blocks, `file` sources (Anthropic Files API ids are Anthropic's), content-block documents,
//!   and block types this gateway does not know.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::request_json::{first_byte, serde_message, top_level_members};

use crate::chat::{
    ChatRequest, Effort, ExtraField, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall,
    ToolChoice,
};

/// Parses a Messages body.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let mut top = TopLevel::default();
    for (name, raw) in &top_level_members(body)? {
        top.apply(name, raw)?;
    }
    top.finish()
}

/// `thinking` as sent.
#[derive(Clone, Copy)]
enum Thinking {
    Enabled(u32),
    Disabled,
    Adaptive,
}

/// The request being assembled, with the fields whose meaning depends on others.
#[derive(Default)]
struct TopLevel {
    request: ChatRequest,
    model: Option<String>,
    system: Option<Message>,
    messages: Option<Vec<Message>>,
    max_tokens: Option<u32>,
    thinking: Option<Thinking>,
    effort: Option<Effort>,
}

impl TopLevel {
    fn apply(&mut self, name: &str, raw: &RawValue) -> Result<(), RequestError> {
        let r = &mut self.request;
        match name {
            "model" => self.model = typed(raw, name, "a string")?,
            "messages" => self.messages = Some(parse_messages(raw)?),
            "system" => self.system = parse_system(raw)?,
            "max_tokens" => self.max_tokens = typed(raw, name, "a non-negative integer")?,
            "temperature" => r.temperature = typed(raw, name, "a number")?,
            "top_p" => r.top_p = typed(raw, name, "a number")?,
            "top_k" => {
                typed::<Option<u64>>(raw, name, "a non-negative integer")?;
                r.extra.push(ExtraField { name: name.to_owned(), value: raw.to_owned() });
            }
            "stop_sequences" => r.stop = typed::<Option<_>>(raw, name, "an array of strings")?.unwrap_or_default(),
            "stream" => r.stream = typed::<Option<bool>>(raw, name, "a boolean")?.unwrap_or(false),
            "tools" => r.tools = parse_tools(raw)?,
            "tool_choice" => (r.tool_choice, r.parallel_tool_calls) = parse_tool_choice(raw)?,
            "thinking" => self.thinking = parse_thinking(raw)?,
            "output_config" => (r.response_format, self.effort) = parse_output_config(raw)?,
            "metadata" => r.user = parse_metadata(raw)?,
            _ => r.extra.push(ExtraField { name: name.to_owned(), value: raw.to_owned() }),
        }
        Ok(())
    }

    fn finish(self) -> Result<ChatRequest, RequestError> {
        let mut request = self.request;
        request.model = self.model.ok_or_else(|| RequestError::invalid("model", "Field required"))?;
        let messages = self.messages.ok_or_else(|| RequestError::invalid("messages", "Field required"))?;
        request.max_tokens =
            Some(self.max_tokens.ok_or_else(|| RequestError::invalid("max_tokens", "Field required"))?);
        request.messages = self.system.into_iter().chain(messages).collect();
        request.reasoning = match (self.thinking, self.effort) {
            (Some(Thinking::Enabled(budget)), _) => Some(Reasoning::Budget(budget)),
            (Some(Thinking::Disabled), _) => Some(Reasoning::Disabled),
            (Some(Thinking::Adaptive), effort) => Some(Reasoning::Effort(effort.unwrap_or(Effort::High))),
            (None, effort) => effort.map(Reasoning::Effort),
        };
        request.include_usage = request.stream;
        Ok(request)
    }
}

/// Parses `raw` as `T`; the error names `param` and what was expected.
fn typed<'a, T: Deserialize<'a>>(raw: &'a RawValue, param: &str, expected: &str) -> Result<T, RequestError> {
    serde_json::from_str(raw.get()).map_err(|_| RequestError::invalid(param, format!("expected {expected}")))
}

/// Parses the JSON object `raw` as `T`; the error names `param` and carries serde's reason (a
/// missing field, say). serde reads structs from arrays too, so anything but an object is refused
/// first.
fn object<'a, T: Deserialize<'a>>(raw: &'a RawValue, param: &str) -> Result<T, RequestError> {
    if first_byte(raw) != Some(b'{') {
        return Err(RequestError::invalid(param, "expected an object"));
    }
    serde_json::from_str(raw.get()).map_err(|e| RequestError::invalid(param, serde_message(&e)))
}

/// The elements of the array `raw`, or `None` for `null`.
fn array<'a>(raw: &'a RawValue, param: &str, expected: &str) -> Result<Option<Vec<&'a RawValue>>, RequestError> {
    typed(raw, param, expected)
}

fn missing(param: String) -> RequestError {
    RequestError::invalid(param, "Field required")
}

fn parse_system(raw: &RawValue) -> Result<Option<Message>, RequestError> {
    let content = match first_byte(raw) {
        Some(b'n') => return Ok(None),
        Some(b'"') => vec![Part::Text(typed(raw, "system", "a string or an array of text blocks")?)],
        _ => {
            let blocks = array(raw, "system", "a string or an array of text blocks")?.unwrap_or_default();
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, raw) in blocks.into_iter().enumerate() {
                let param = format!("system.{j}");
                let block: WireBlock<'_> = object(raw, &param)?;
                if block.kind != "text" {
                    return Err(RequestError::invalid(format!("{param}.type"), "system blocks must be `text`"));
                }
                parts.push(Part::Text(block.text.ok_or_else(|| missing(format!("{param}.text")))?));
            }
            parts
        }
    };
    let empty = content.iter().all(|part| matches!(part, Part::Text(text) if text.is_empty()));
    Ok((!empty).then_some(Message::System { content, developer: false }))
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    role: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

fn parse_messages(raw: &RawValue) -> Result<Vec<Message>, RequestError> {
    let items = array(raw, "messages", "an array of messages")?.unwrap_or_default();
    if items.is_empty() {
        return Err(RequestError::invalid("messages", "at least one message is required"));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let param = format!("messages.{i}");
        let message: WireMessage<'_> = object(item, &param)?;
        let content = format!("{param}.content");
        match message.role.as_str() {
            "user" => user_messages(message.content, &content, &mut messages)?,
            "assistant" => messages.push(assistant_message(message.content, &content)?),
            _ => return Err(RequestError::invalid(format!("{param}.role"), "expected `user` or `assistant`")),
        }
    }
    Ok(messages)
}

/// A content block, every member optional until its type says which it needs.
#[derive(Deserialize)]
struct WireBlock<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

/// The blocks of `content` (a string is one text block), each with its param.
fn blocks<'a>(raw: &'a RawValue, param: &str) -> Result<Vec<(WireBlock<'a>, String)>, RequestError> {
    if first_byte(raw) == Some(b'"') {
        let text = typed(raw, param, "a string or an array of content blocks")?;
        let block = WireBlock {
            kind: "text".to_owned(),
            text: Some(text),
            source: None,
            title: None,
            id: None,
            name: None,
            input: None,
            tool_use_id: None,
            content: None,
            thinking: None,
            signature: None,
            data: None,
        };
        return Ok(vec![(block, format!("{param}.0"))]);
    }
    let items: Vec<&RawValue> = typed(raw, param, "a string or an array of content blocks")?;
    items
        .into_iter()
        .enumerate()
        .map(|(j, item)| {
            let block_param = format!("{param}.{j}");
            Ok((object(item, &block_param)?, block_param))
        })
        .collect()
}

/// A user turn: user messages around its tool results, in order (see the module doc).
fn user_messages(raw: &RawValue, param: &str, out: &mut Vec<Message>) -> Result<(), RequestError> {
    let first = out.len();
    let mut pending = Vec::new();
    for (block, block_param) in blocks(raw, param)? {
        if block.kind == "tool_result" {
            if !pending.is_empty() {
                out.push(Message::User { content: std::mem::take(&mut pending) });
            }
            out.push(tool_result(block, &block_param)?);
        } else {
            pending.push(user_part(block, &block_param)?);
        }
    }
    if !pending.is_empty() || out.len() == first {
        out.push(Message::User { content: pending });
    }
    Ok(())
}

/// A part of user content (or of a tool result).
fn user_part(block: WireBlock<'_>, param: &str) -> Result<Part, RequestError> {
    match block.kind.as_str() {
        "text" => block.text.map(Part::Text).ok_or_else(|| missing(format!("{param}.text"))),
        "image" => Ok(Part::Image(image_media(block.source, param)?)),
        "document" => document(block.source, block.title, param),
        "tool_use" | "thinking" | "redacted_thinking" => Err(wrong_role(&block.kind, "assistant", param)),
        other => Err(unknown_block(other, param)),
    }
}

fn assistant_message(raw: &RawValue, param: &str) -> Result<Message, RequestError> {
    let mut content = Vec::new();
    let mut tool_calls = Vec::new();
    for (block, block_param) in blocks(raw, param)? {
        let field = |name: &str, value: Option<String>| value.ok_or_else(|| missing(format!("{block_param}.{name}")));
        match block.kind.as_str() {
            "text" => content.push(Part::Text(field("text", block.text)?)),
            "thinking" => {
                // An empty signature is none: reasoning from a provider that signs nothing comes back so.
                let signature = block.signature.filter(|signature| !signature.is_empty());
                content.push(Part::Reasoning { text: field("thinking", block.thinking)?, signature })
            }
            "redacted_thinking" => content.push(Part::RedactedReasoning { data: field("data", block.data)? }),
            "tool_use" => tool_calls.push(ToolCall {
                id: field("id", block.id)?,
                name: field("name", block.name)?,
                arguments: tool_input(block.input, &block_param)?,
            }),
            "image" | "document" | "tool_result" => return Err(wrong_role(&block.kind, "user", &block_param)),
            other => return Err(unknown_block(other, &block_param)),
        }
    }
    Ok(Message::Assistant { content, tool_calls })
}

/// A `tool_use` input: a JSON object, kept as sent.
fn tool_input(input: Option<&RawValue>, param: &str) -> Result<String, RequestError> {
    let input = input.ok_or_else(|| missing(format!("{param}.input")))?;
    if first_byte(input) != Some(b'{') {
        return Err(RequestError::invalid(format!("{param}.input"), "expected an object"));
    }
    Ok(input.get().to_owned())
}

fn tool_result(block: WireBlock<'_>, param: &str) -> Result<Message, RequestError> {
    let tool_call_id = block.tool_use_id.ok_or_else(|| missing(format!("{param}.tool_use_id")))?;
    let content = match block.content {
        None => Vec::new(),
        Some(raw) if first_byte(raw) == Some(b'n') => Vec::new(),
        Some(raw) => {
            let content_param = format!("{param}.content");
            let parts = blocks(raw, &content_param)?;
            parts.into_iter().map(|(block, part_param)| user_part(block, &part_param)).collect::<Result<_, _>>()?
        }
    };
    Ok(Message::Tool { tool_call_id, content })
}

fn wrong_role(kind: &str, role: &str, param: &str) -> RequestError {
    RequestError::invalid(format!("{param}.type"), format!("`{kind}` blocks belong to {role} messages"))
}

fn unknown_block(kind: &str, param: &str) -> RequestError {
    RequestError::unsupported(format!("{param}.type"), format!("`{kind}` blocks are not supported by this gateway"))
}

#[derive(Deserialize)]
struct WireSource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// A source as media, or the text of a plain-text document source.
enum Source {
    Media(Media),
    Text(String),
}

fn source(raw: Option<&RawValue>, param: &str) -> Result<Source, RequestError> {
    let param = format!("{param}.source");
    let raw = raw.ok_or_else(|| missing(param.clone()))?;
    let source: WireSource = object(raw, &param)?;
    let field = |name: &str, value: Option<String>| value.ok_or_else(|| missing(format!("{param}.{name}")));
    Ok(match source.kind.as_str() {
        "base64" => Source::Media(Media::Base64 {
            media_type: field("media_type", source.media_type)?,
            data: field("data", source.data)?,
        }),
        "url" => Source::Media(Media::Url(field("url", source.url)?)),
        "text" => Source::Text(field("data", source.data)?),
        "file" => {
            return Err(RequestError::unsupported(
                format!("{param}.type"),
                "file ids belong to Anthropic's Files API; send the content inline",
            ));
        }
        "content" => {
            return Err(RequestError::unsupported(
                format!("{param}.type"),
                "content-block documents are not supported",
            ));
        }
        other => return Err(RequestError::invalid(format!("{param}.type"), format!("unknown source type `{other}`"))),
    })
}

fn image_media(raw: Option<&RawValue>, param: &str) -> Result<Media, RequestError> {
    match source(raw, param)? {
        Source::Media(media) => Ok(media),
        Source::Text(_) => Err(RequestError::invalid(format!("{param}.source.type"), "images take `base64` or `url`")),
    }
}

fn document(raw: Option<&RawValue>, title: Option<String>, param: &str) -> Result<Part, RequestError> {
    Ok(match source(raw, param)? {
        Source::Media(media) => Part::File { media, filename: title },
        Source::Text(text) => Part::Text(text),
    })
}

fn parse_tools(raw: &RawValue) -> Result<Vec<Tool>, RequestError> {
    #[derive(Deserialize)]
    struct WireTool {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        input_schema: Option<Box<RawValue>>,
        #[serde(default)]
        strict: Option<bool>,
    }
    let items = array(raw, "tools", "an array of tools")?.unwrap_or_default();
    let mut tools = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let param = format!("tools.{i}");
        let tool: WireTool = object(item, &param)?;
        if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
            return Err(RequestError::unsupported(
                format!("{param}.type"),
                format!("server tools (`{kind}`) run at Anthropic and are not supported by this gateway"),
            ));
        }
        let name = tool.name.ok_or_else(|| missing(format!("{param}.name")))?;
        let schema = tool.input_schema.ok_or_else(|| missing(format!("{param}.input_schema")))?;
        if first_byte(&schema) != Some(b'{') {
            return Err(RequestError::invalid(format!("{param}.input_schema"), "expected an object"));
        }
        tools.push(Tool { name, description: tool.description, parameters: Some(schema), strict: tool.strict });
    }
    Ok(tools)
}

fn parse_tool_choice(raw: &RawValue) -> Result<(Option<ToolChoice>, Option<bool>), RequestError> {
    #[derive(Deserialize)]
    struct WireToolChoice {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    }
    if first_byte(raw) == Some(b'n') {
        return Ok((None, None));
    }
    let choice: WireToolChoice = object(raw, "tool_choice")?;
    let tool_choice = match choice.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Named(choice.name.ok_or_else(|| missing("tool_choice.name".to_owned()))?),
        other => return Err(RequestError::invalid("tool_choice.type", format!("unknown tool choice `{other}`"))),
    };
    let parallel = (choice.disable_parallel_tool_use == Some(true)).then_some(false);
    Ok((Some(tool_choice), parallel))
}

fn parse_thinking(raw: &RawValue) -> Result<Option<Thinking>, RequestError> {
    #[derive(Deserialize)]
    struct WireThinking {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        budget_tokens: Option<u32>,
    }
    if first_byte(raw) == Some(b'n') {
        return Ok(None);
    }
    let thinking: WireThinking = object(raw, "thinking")?;
    match (thinking.kind.as_str(), thinking.budget_tokens) {
        ("enabled", Some(budget)) => Ok(Some(Thinking::Enabled(budget))),
        ("enabled", None) => Err(missing("thinking.budget_tokens".to_owned())),
        ("disabled", _) => Ok(Some(Thinking::Disabled)),
        ("adaptive", _) => Ok(Some(Thinking::Adaptive)),
        (other, _) => Err(RequestError::invalid("thinking.type", format!("unknown thinking type `{other}`"))),
    }
}

fn parse_output_config(raw: &RawValue) -> Result<(Option<ResponseFormat>, Option<Effort>), RequestError> {
    #[derive(Deserialize)]
    struct WireOutputConfig<'a> {
        #[serde(borrow, default)]
        format: Option<&'a RawValue>,
        #[serde(default)]
        effort: Option<String>,
    }
    #[derive(Deserialize)]
    struct WireFormat {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        schema: Option<Box<RawValue>>,
    }
    if first_byte(raw) == Some(b'n') {
        return Ok((None, None));
    }
    let config: WireOutputConfig<'_> = object(raw, "output_config")?;
    let format = match config.format.filter(|raw| first_byte(raw) != Some(b'n')) {
        None => None,
        Some(raw) => {
            let format: WireFormat = object(raw, "output_config.format")?;
            if format.kind != "json_schema" {
                let message = format!("unknown format type `{}`", format.kind);
                return Err(RequestError::invalid("output_config.format.type", message));
            }
            let schema = format.schema.ok_or_else(|| missing("output_config.format.schema".to_owned()))?;
            Some(ResponseFormat::JsonSchema { name: "output".to_owned(), schema: Some(schema), strict: None })
        }
    };
    let effort = match config.effort.as_deref() {
        None => None,
        Some("low") => Some(Effort::Low),
        Some("medium") => Some(Effort::Medium),
        Some("high") => Some(Effort::High),
        Some("max" | "xhigh") => Some(Effort::XHigh),
        Some(other) => {
            return Err(RequestError::invalid("output_config.effort", format!("unknown effort `{other}`")));
        }
    };
    Ok((format, effort))
}

fn parse_metadata(raw: &RawValue) -> Result<Option<String>, RequestError> {
    #[derive(Deserialize)]
    struct WireMetadata {
        #[serde(default)]
        user_id: Option<String>,
    }
    if first_byte(raw) == Some(b'n') {
        return Ok(None);
    }
    Ok(object::<WireMetadata>(raw, "metadata")?.user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ChatRequest, RequestError> {
        parse_request(json.as_bytes())
    }

    fn with(fields: &str) -> Result<ChatRequest, RequestError> {
        parse(&format!(r#"{{"model":"gw","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}]{fields}}}"#))
    }

    fn user(text: &str) -> Message {
        Message::User { content: vec![Part::Text(text.into())] }
    }

    #[test]
    fn minimal_request() {
        let r = with("").unwrap();
        assert_eq!(r.model, "gw");
        assert_eq!(r.max_tokens, Some(10));
        assert_eq!(r.messages, vec![user("hi")]);
        assert!(!r.stream && !r.include_usage && r.extra.is_empty() && r.reasoning.is_none());
    }

    #[test]
    fn scalar_fields() {
        let r = with(
            r#","temperature":0.5,"top_p":0.9,"top_k":40,"stop_sequences":["END"],"stream":true,
               "metadata":{"user_id":"u1"},"service_tier":"auto","system":"be brief""#,
        )
        .unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!((r.temperature, r.top_p), (Some(0.5), Some(0.9)));
        assert_eq!(r.stop, vec!["END".to_owned()]);
        assert_eq!(r.user.as_deref(), Some("u1"));
        let extra: Vec<(&str, &str)> = r.extra.iter().map(|f| (f.name.as_str(), f.value.get())).collect();
        assert_eq!(extra, vec![("top_k", "40"), ("service_tier", r#""auto""#)]);
        assert_eq!(r.messages[0], Message::System { content: vec![Part::Text("be brief".into())], developer: false });
    }

    #[test]
    fn system_blocks_and_empty_systems() {
        let r = with(
            r#","system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]"#,
        )
        .unwrap();
        assert_eq!(
            r.messages[0],
            Message::System { content: vec![Part::Text("a".into()), Part::Text("b".into())], developer: false }
        );
        assert_eq!(with(r#","system":"""#).unwrap().messages.len(), 1);
        assert_eq!(with(r#","system":null"#).unwrap().messages.len(), 1);
    }

    #[test]
    fn user_content_blocks_and_tool_results_in_order() {
        let r = parse(
            r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[
                {"type":"text","text":"before"},
                {"type":"tool_result","tool_use_id":"t1","content":"42","is_error":true},
                {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"a"},
                    {"type":"image","source":{"type":"url","url":"https://x/y.png"}}]},
                {"type":"tool_result","tool_use_id":"t3"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
                {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"},"title":"a.pdf"},
                {"type":"document","source":{"type":"url","url":"https://x/b.pdf"}},
                {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages,
            vec![
                user("before"),
                Message::Tool { tool_call_id: "t1".into(), content: vec![Part::Text("42".into())] },
                Message::Tool {
                    tool_call_id: "t2".into(),
                    content: vec![Part::Text("a".into()), Part::Image(Media::Url("https://x/y.png".into()))],
                },
                Message::Tool { tool_call_id: "t3".into(), content: vec![] },
                Message::User {
                    content: vec![
                        Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }),
                        Part::File {
                            media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() },
                            filename: Some("a.pdf".into()),
                        },
                        Part::File { media: Media::Url("https://x/b.pdf".into()), filename: None },
                        Part::Text("plain".into()),
                    ],
                },
            ]
        );
    }

    #[test]
    fn assistant_blocks() {
        let r = parse(
            r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[
                {"type":"thinking","thinking":"hmm","signature":"sig"},
                {"type":"redacted_thinking","data":"opaque"},
                {"type":"text","text":"calling"},
                {"type":"tool_use","id":"t1","name":"f","input":{ "a" : 1 }}]},
                {"role":"assistant","content":"plain"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"unsigned","signature":""}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages[1..],
            [
                Message::Assistant {
                    content: vec![
                        Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                        Part::RedactedReasoning { data: "opaque".into() },
                        Part::Text("calling".into()),
                    ],
                    tool_calls: vec![ToolCall {
                        id: "t1".into(),
                        name: "f".into(),
                        arguments: r#"{ "a" : 1 }"#.into()
                    }],
                },
                Message::Assistant { content: vec![Part::Text("plain".into())], tool_calls: vec![] },
                Message::Assistant {
                    content: vec![Part::Reasoning { text: "unsigned".into(), signature: None }],
                    tool_calls: vec![],
                },
            ]
        );
    }

    #[test]
    fn tools_and_tool_choice() {
        let r = with(
            r#","tools":[{"name":"f","description":"d","input_schema":{"type":"object","properties":{"z":{},"a":{}}},
                          "cache_control":{"type":"ephemeral"}},{"type":"custom","name":"g","input_schema":{},"strict":true}],
               "tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}"#,
        )
        .unwrap();
        assert_eq!(r.tools.len(), 2);
        assert_eq!(r.tools[0].parameters.as_ref().unwrap().get(), r#"{"type":"object","properties":{"z":{},"a":{}}}"#);
        assert_eq!((r.tools[0].description.as_deref(), r.tools[1].strict), (Some("d"), Some(true)));
        assert_eq!((r.tool_choice, r.parallel_tool_calls), (Some(ToolChoice::Named("f".into())), Some(false)));
        for (choice, expected) in [
            (r#"{"type":"auto"}"#, Some(ToolChoice::Auto)),
            (r#"{"type":"any","disable_parallel_tool_use":false}"#, Some(ToolChoice::Required)),
            (r#"{"type":"none"}"#, Some(ToolChoice::None)),
            ("null", None),
        ] {
            let r = with(&format!(r#","tool_choice":{choice}"#)).unwrap();
            assert_eq!((r.tool_choice, r.parallel_tool_calls), (expected, None), "{choice}");
        }
    }

    #[test]
    fn thinking_and_effort() {
        let reasoning = |fields: &str| with(fields).unwrap().reasoning;
        assert_eq!(reasoning(r#","thinking":{"type":"enabled","budget_tokens":2048}"#), Some(Reasoning::Budget(2048)));
        assert_eq!(reasoning(r#","thinking":{"type":"disabled"}"#), Some(Reasoning::Disabled));
        assert_eq!(reasoning(r#","thinking":{"type":"adaptive"}"#), Some(Reasoning::Effort(Effort::High)));
        assert_eq!(
            reasoning(r#","thinking":{"type":"adaptive"},"output_config":{"effort":"low"}"#),
            Some(Reasoning::Effort(Effort::Low))
        );
        assert_eq!(reasoning(r#","output_config":{"effort":"max"}"#), Some(Reasoning::Effort(Effort::XHigh)));
        assert_eq!(
            reasoning(r#","output_config":{"effort":"low"},"thinking":{"type":"enabled","budget_tokens":1024}"#),
            Some(Reasoning::Budget(1024))
        );
        let r = with(r#","output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}"#).unwrap();
        assert!(matches!(&r.response_format, Some(ResponseFormat::JsonSchema { name, schema: Some(s), .. })
            if name == "output" && s.get() == r#"{"type":"object"}"#));
    }

    #[test]
    fn errors_name_the_param() {
        let cases = [
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}]}"#, "max_tokens"),
            (r#"{"model":"gw","max_tokens":1}"#, "messages"),
            (r#"{"model":"gw","max_tokens":1,"messages":[]}"#, "messages"),
            (r#"{"model":"gw","model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (r#"{"model":"gw","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#, "max_tokens"),
            (r#"{"model":"gw","max_tokens":1,"messages":[{"role":"system","content":"x"}]}"#, "messages.0.role"),
            (r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user"}]}"#, "messages.0"),
            (r#"{"model":"gw","max_tokens":1,"messages":[["user"]]}"#, "messages.0"),
            (r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":7}]}"#, "messages.0.content"),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
                "messages.0.content.0.text",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"video"}]}]}"#,
                "messages.0.content.1.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
                "messages.0.content.0.source.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}"#,
                "messages.0.content.0.source.media_type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"text","data":"x"}}]}]}"#,
                "messages.0.content.0.source.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}"#,
                "messages.0.content.0.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}"#,
                "messages.0.content.0.input",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t"}]}]}"#,
                "messages.0.content.0.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#,
                "messages.0.content.0.tool_use_id",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result"}]}]}]}"#,
                "messages.0.content.0.content.0.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"system":[{"type":"image"}]}"#,
                "system.0.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
                "tools.0.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}"#,
                "tools.0.input_schema",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"tool"}}"#,
                "tool_choice.name",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"sometimes"}}"#,
                "tool_choice.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled"}}"#,
                "thinking.budget_tokens",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"on"}}"#,
                "thinking.type",
            ),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"output_config":{"effort":"huge"}}"#,
                "output_config.effort",
            ),
            (r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"top_k":"many"}"#, "top_k"),
            (
                r#"{"model":"gw","max_tokens":1,"messages":[{"role":"user","content":"x"}],"metadata":{"user_id":5}}"#,
                "metadata",
            ),
        ];
        for (json, param) in cases {
            assert_eq!(parse(json).unwrap_err().param(), Some(param), "{json}");
        }
        assert!(matches!(parse("[1]"), Err(RequestError::InvalidJson(_))));
        assert!(matches!(parse("{\"model\":"), Err(RequestError::InvalidJson(_))));
    }
}

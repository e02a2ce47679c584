//! An AI SDK `LanguageModelV4CallOptions` body (also spec 2 and 3) -> `ChatRequest`, and the
//! `providerOptions.gateway` routing options -> [`GatewayOptions`]. It owns the body only: the model
//! id and the streaming flag come from the `ai-language-model-*` headers, which the proxy reads.
//!
//! The body is read into flat structs (every member optional, opaque members as raw JSON) rather
//! than tagged enums, because serde cannot buffer `RawValue` inside a tagged enum and raw JSON keeps
//! tool schemas and tool-call inputs byte-for-byte (key order included).
//!
//! What is kept where:
//! - `system` string content -> `Message::System`; user `text`/`file` parts -> `Text`/`Image`
//!   (media type `image/*` or `image`)/`File`; assistant `text`, `reasoning` (Anthropic's
//!   `signature` / `redactedData` from the part's `providerOptions.anthropic` kept, since Anthropic
//!   wants signed thinking back) and `tool-call` (input object -> JSON text); each `tool-result` ->
//!   its own `Message::Tool` (outputs `text`/`error-text` as text, `json`/`error-json` as JSON text,
//!   `execution-denied` as a sentence, `content` part by part).
//! - `topK`, `presencePenalty`, `frequencyPenalty` go to `extra` under their own names: the chat model
//!   has no slot for them, and `extra` is where unmodelled fields wait for a mapping that knows them.
//! - Dropped on purpose: `headers` (an SDK quirk copies call headers into the body; the real ones are
//!   the HTTP headers), `includeRawChunks` (no raw chunks are ever sent), assistant `custom` and
//!   `reasoning-file` parts and provider-executed `tool-result`s (provider-specific, never needed to
//!   continue a conversation), `tool-approval-response` parts (approval is decided client-side).
//! - Refused by name: `provider` tools (gateway-executed search tools are not run by Corelay).

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::chat::{
    ChatRequest, Effort, ExtraField, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall,
    ToolChoice,
};

/// The routing options of `providerOptions.gateway` the gateway acts on (§1.10). Absent lists are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayOptions {
    /// Providers to try first, in this order; others still follow.
    pub order: Vec<String>,
    /// The only providers allowed.
    pub only: Vec<String>,
    /// Fallback models, tried in order after the primary model's providers fail.
    pub models: Vec<String>,
    /// End-user id for attribution.
    pub user: Option<String>,
    /// Reporting tags.
    pub tags: Vec<String>,
    /// `cost`, `ttft` or `tps`.
    pub sort: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    prompt: Option<Vec<WireMessage>>,
    max_output_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop_sequences: Option<Vec<String>>,
    seed: Option<i64>,
    response_format: Option<WireResponseFormat>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    reasoning: Option<String>,
    provider_options: Option<ProviderOptions>,
    top_k: Option<Box<RawValue>>,
    presence_penalty: Option<Box<RawValue>>,
    frequency_penalty: Option<Box<RawValue>>,
}

#[derive(Deserialize, Default)]
struct ProviderOptions {
    gateway: Option<WireGatewayOptions>,
    anthropic: Option<AnthropicOptions>,
}

#[derive(Deserialize, Default)]
struct WireGatewayOptions {
    order: Option<Vec<String>>,
    only: Option<Vec<String>>,
    models: Option<Vec<Value>>,
    user: Option<String>,
    tags: Option<Vec<String>>,
    sort: Option<String>,
}

#[derive(Deserialize, Default)]
struct AnthropicOptions {
    thinking: Option<AnthropicThinking>,
    signature: Option<String>,
    #[serde(rename = "redactedData")]
    redacted_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnthropicThinking {
    #[serde(rename = "type")]
    kind: Option<String>,
    budget_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    media_type: Option<String>,
    data: Option<Box<RawValue>>,
    filename: Option<String>,
    tool_call_id: Option<String>,
    tool_name: Option<String>,
    input: Option<Box<RawValue>>,
    output: Option<WireOutput>,
    provider_executed: Option<bool>,
    provider_options: Option<ProviderOptions>,
}

/// A tool-result `output`; `value` is a string, JSON or a part list depending on `type`.
#[derive(Deserialize)]
struct WireOutput {
    #[serde(rename = "type")]
    kind: String,
    value: Option<Box<RawValue>>,
    reason: Option<String>,
}

/// File `data`: spec 4's tagged object (`data`, `url`, `reference`, `text`).
#[derive(Deserialize)]
struct WireFileData {
    #[serde(rename = "type")]
    kind: String,
    data: Option<String>,
    url: Option<String>,
    reference: Option<std::collections::BTreeMap<String, String>>,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    id: Option<String>,
    description: Option<String>,
    input_schema: Option<Box<RawValue>>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    tool_name: Option<String>,
}

#[derive(Deserialize)]
struct WireResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    schema: Option<Box<RawValue>>,
    name: Option<String>,
}

/// Parses a language-model call body. `model` is the `ai-language-model-id` header and `stream` the
/// `ai-language-model-streaming` header, both read by the caller.
pub fn parse_request(body: &[u8], model: &str, stream: bool) -> Result<ChatRequest, RequestError> {
    let body: Body = parse_body(body)?;
    let prompt = body.prompt.ok_or_else(|| RequestError::invalid("prompt", "Field required"))?;
    let options = body.provider_options.unwrap_or_default();
    let mut request = ChatRequest {
        model: model.to_owned(),
        messages: parse_prompt(&prompt)?,
        tools: parse_tools(body.tools.unwrap_or_default())?,
        tool_choice: body.tool_choice.map(parse_tool_choice).transpose()?,
        max_tokens: body.max_output_tokens,
        temperature: body.temperature,
        top_p: body.top_p,
        stop: body.stop_sequences.unwrap_or_default(),
        seed: body.seed,
        response_format: body.response_format.map(parse_response_format),
        reasoning: parse_reasoning(body.reasoning.as_deref(), options.anthropic.as_ref())?,
        stream,
        include_usage: true,
        user: options.gateway.as_ref().and_then(|g| g.user.clone()),
        ..ChatRequest::default()
    };
    let extras = [
        ("topK", body.top_k),
        ("presencePenalty", body.presence_penalty),
        ("frequencyPenalty", body.frequency_penalty),
    ];
    for (name, value) in extras {
        if let Some(value) = value {
            request.extra.push(ExtraField { name: name.to_owned(), value });
        }
    }
    Ok(request)
}

/// The routing options of a call body; a body without them gives the defaults. Fallback-model
/// entries that are not plain ids (decision calls' `{model, when}`) are skipped.
pub fn gateway_options(body: &[u8]) -> Result<GatewayOptions, RequestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OptionsOnly {
        provider_options: Option<ProviderOptions>,
    }
    let only: OptionsOnly = parse_body(body)?;
    let Some(wire) = only.provider_options.and_then(|p| p.gateway) else {
        return Ok(GatewayOptions::default());
    };
    let models = wire.models.unwrap_or_default().into_iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
    Ok(GatewayOptions {
        order: wire.order.unwrap_or_default(),
        only: wire.only.unwrap_or_default(),
        models,
        user: wire.user,
        tags: wire.tags.unwrap_or_default(),
        sort: wire.sort,
    })
}

fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RequestError> {
    serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson(format!("invalid request body: {e}")))
}

fn parse_prompt(prompt: &[WireMessage]) -> Result<Vec<Message>, RequestError> {
    let mut messages = Vec::with_capacity(prompt.len());
    for (i, message) in prompt.iter().enumerate() {
        let param = format!("prompt[{i}].content");
        match message.role.as_str() {
            "system" => messages.push(system_message(&message.content, &param)?),
            "user" => messages.push(Message::User { content: user_parts(&parts(&message.content, &param)?, &param)? }),
            "assistant" => messages.push(assistant_message(&parts(&message.content, &param)?, &param)?),
            "tool" => tool_messages(&parts(&message.content, &param)?, &param, &mut messages)?,
            other => return Err(RequestError::invalid(format!("prompt[{i}].role"), format!("unknown role `{other}`"))),
        }
    }
    Ok(messages)
}

/// System content is a string in every spec version.
fn system_message(content: &RawValue, param: &str) -> Result<Message, RequestError> {
    let text: String = serde_json::from_str(content.get())
        .map_err(|_| RequestError::invalid(param, "system content must be a string"))?;
    Ok(Message::System { content: vec![Part::Text(text)], developer: false })
}

fn parts(content: &RawValue, param: &str) -> Result<Vec<WirePart>, RequestError> {
    serde_json::from_str(content.get()).map_err(|e| RequestError::invalid(param, format!("invalid content parts: {e}")))
}

fn user_parts(wire: &[WirePart], param: &str) -> Result<Vec<Part>, RequestError> {
    let mut out = Vec::with_capacity(wire.len());
    for (j, part) in wire.iter().enumerate() {
        let param = format!("{param}[{j}]");
        match part.kind.as_str() {
            "text" => out.push(Part::Text(required(&part.text, &param, "text")?.to_owned())),
            "file" => out.push(file_part(part, &param)?),
            other => {
                return Err(RequestError::unsupported(
                    param,
                    format!("`{other}` parts are not supported in user messages"),
                ));
            }
        }
    }
    Ok(out)
}

fn assistant_message(wire: &[WirePart], param: &str) -> Result<Message, RequestError> {
    let mut content = Vec::new();
    let mut tool_calls = Vec::new();
    for (j, part) in wire.iter().enumerate() {
        let param = format!("{param}[{j}]");
        match part.kind.as_str() {
            "text" => content.push(Part::Text(required(&part.text, &param, "text")?.to_owned())),
            "file" => content.push(file_part(part, &param)?),
            "reasoning" => content.push(reasoning_part(part)),
            // A provider-executed call is paired with a result this mapping drops (module doc).
            "tool-call" if part.provider_executed == Some(true) => {}
            "tool-call" => tool_calls.push(tool_call(part, &param)?),
            // See the module doc for why these are dropped.
            "tool-result" | "custom" | "reasoning-file" => {}
            other => {
                return Err(RequestError::unsupported(
                    param,
                    format!("`{other}` parts are not supported in assistant messages"),
                ));
            }
        }
    }
    Ok(Message::Assistant { content, tool_calls })
}

fn reasoning_part(part: &WirePart) -> Part {
    let anthropic = part.provider_options.as_ref().and_then(|p| p.anthropic.as_ref());
    if let Some(data) = anthropic.and_then(|a| a.redacted_data.clone()) {
        return Part::RedactedReasoning { data };
    }
    Part::Reasoning {
        text: part.text.clone().unwrap_or_default(),
        signature: anthropic.and_then(|a| a.signature.clone()),
    }
}

fn tool_call(part: &WirePart, param: &str) -> Result<ToolCall, RequestError> {
    let input = part.input.as_ref().ok_or_else(|| RequestError::invalid(format!("{param}.input"), "Field required"))?;
    // Spec 4 sends the input as an object; a JSON string is taken as the arguments text itself.
    let arguments = match serde_json::from_str::<String>(input.get()) {
        Ok(text) => text,
        Err(_) => input.get().to_owned(),
    };
    Ok(ToolCall {
        id: required(&part.tool_call_id, param, "toolCallId")?.to_owned(),
        name: required(&part.tool_name, param, "toolName")?.to_owned(),
        arguments,
    })
}

fn tool_messages(wire: &[WirePart], param: &str, messages: &mut Vec<Message>) -> Result<(), RequestError> {
    for (j, part) in wire.iter().enumerate() {
        let param = format!("{param}[{j}]");
        match part.kind.as_str() {
            "tool-result" => messages.push(Message::Tool {
                tool_call_id: required(&part.tool_call_id, &param, "toolCallId")?.to_owned(),
                content: tool_output(part.output.as_ref(), &param)?,
            }),
            "tool-approval-response" => {}
            other => {
                return Err(RequestError::unsupported(
                    param,
                    format!("`{other}` parts are not supported in tool messages"),
                ));
            }
        }
    }
    Ok(())
}

fn tool_output(output: Option<&WireOutput>, param: &str) -> Result<Vec<Part>, RequestError> {
    let param = format!("{param}.output");
    let output = output.ok_or_else(|| RequestError::invalid(&param, "Field required"))?;
    let value = output.value.as_deref();
    Ok(match output.kind.as_str() {
        "text" | "error-text" => vec![Part::Text(string_value(value, &param)?)],
        "json" | "error-json" => vec![Part::Text(value.map(|v| v.get().to_owned()).unwrap_or_else(|| "null".into()))],
        "execution-denied" => vec![Part::Text(match &output.reason {
            Some(reason) => format!("Tool execution denied: {reason}"),
            None => "Tool execution denied.".to_owned(),
        })],
        "content" => {
            let raw = value.ok_or_else(|| RequestError::invalid(format!("{param}.value"), "Field required"))?;
            let wire = parts(raw, &format!("{param}.value"))?;
            content_output(&wire, &param)?
        }
        other => return Err(RequestError::unsupported(param, format!("unknown tool output type `{other}`"))),
    })
}

/// The parts of a `content` output; kinds other than text and files have no internal form and are skipped.
fn content_output(wire: &[WirePart], param: &str) -> Result<Vec<Part>, RequestError> {
    let mut out = Vec::new();
    for (k, part) in wire.iter().enumerate() {
        let param = format!("{param}.value[{k}]");
        match part.kind.as_str() {
            "text" => out.push(Part::Text(required(&part.text, &param, "text")?.to_owned())),
            "file" | "file-data" | "image-data" | "media" => out.push(file_part(part, &param)?),
            _ => {}
        }
    }
    Ok(out)
}

fn string_value(value: Option<&RawValue>, param: &str) -> Result<String, RequestError> {
    let raw = value.ok_or_else(|| RequestError::invalid(format!("{param}.value"), "Field required"))?;
    serde_json::from_str(raw.get()).map_err(|_| RequestError::invalid(format!("{param}.value"), "must be a string"))
}

fn file_part(part: &WirePart, param: &str) -> Result<Part, RequestError> {
    let media_type = required(&part.media_type, param, "mediaType")?;
    let data = part.data.as_ref().ok_or_else(|| RequestError::invalid(format!("{param}.data"), "Field required"))?;
    let param = format!("{param}.data");
    let media = match serde_json::from_str::<String>(data.get()) {
        Ok(text) => media_from_string(text, media_type),
        Err(_) => match media_from_tagged(data, media_type, &param)? {
            FileContent::Media(media) => media,
            FileContent::Text(text) => return Ok(Part::Text(text)),
        },
    };
    if media_type == "image" || media_type.starts_with("image/") {
        Ok(Part::Image(media))
    } else {
        Ok(Part::File { media, filename: part.filename.clone() })
    }
}

enum FileContent {
    Media(Media),
    /// A text file given as text: the chat model has no text files, so it becomes a text part.
    Text(String),
}

/// Spec 2/3 file data: a `data:` URL, an `http(s)` URL, or bare base64.
fn media_from_string(text: String, media_type: &str) -> Media {
    if let Some(media) = parse_data_url(&text) {
        return media;
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Media::Url(text);
    }
    Media::Base64 { media_type: media_type.to_owned(), data: text }
}

fn media_from_tagged(data: &RawValue, media_type: &str, param: &str) -> Result<FileContent, RequestError> {
    let tagged: WireFileData = serde_json::from_str(data.get())
        .map_err(|e| RequestError::invalid(param, format!("invalid file data: {e}")))?;
    let missing = |field: &str| RequestError::invalid(format!("{param}.{field}"), "Field required");
    Ok(FileContent::Media(match tagged.kind.as_str() {
        "data" => {
            Media::Base64 { media_type: media_type.to_owned(), data: tagged.data.ok_or_else(|| missing("data"))? }
        }
        "url" => media_from_string(tagged.url.ok_or_else(|| missing("url"))?, media_type),
        "reference" => {
            let reference = tagged.reference.ok_or_else(|| missing("reference"))?;
            let id = reference.into_values().next().ok_or_else(|| missing("reference"))?;
            Media::FileId(id)
        }
        "text" => return Ok(FileContent::Text(tagged.text.ok_or_else(|| missing("text"))?)),
        other => return Err(RequestError::unsupported(param, format!("unknown file data type `{other}`"))),
    }))
}

/// `data:<type>;base64,<data>` -> inline media; other data URLs are not base64 and stay URLs.
fn parse_data_url(url: &str) -> Option<Media> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some(Media::Base64 { media_type: media_type.to_owned(), data: data.to_owned() })
}

fn parse_tools(wire: Vec<WireTool>) -> Result<Vec<Tool>, RequestError> {
    let mut tools = Vec::with_capacity(wire.len());
    for (i, tool) in wire.into_iter().enumerate() {
        let param = format!("tools[{i}]");
        if tool.kind != "function" {
            let id = tool.id.unwrap_or_default();
            return Err(RequestError::unsupported(param, format!("`{}` tools (`{id}`) are not supported", tool.kind)));
        }
        let name = tool.name.ok_or_else(|| RequestError::invalid(format!("{param}.name"), "Field required"))?;
        tools.push(Tool { name, description: tool.description, parameters: tool.input_schema, strict: tool.strict });
    }
    Ok(tools)
}

fn parse_tool_choice(wire: WireToolChoice) -> Result<ToolChoice, RequestError> {
    Ok(match wire.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "none" => ToolChoice::None,
        "required" => ToolChoice::Required,
        "tool" => ToolChoice::Named(
            wire.tool_name.ok_or_else(|| RequestError::invalid("toolChoice.toolName", "Field required"))?,
        ),
        other => return Err(RequestError::invalid("toolChoice.type", format!("unknown tool choice `{other}`"))),
    })
}

/// `json` with a schema is a schema format (named `response` when unnamed); without one, any JSON.
fn parse_response_format(wire: WireResponseFormat) -> ResponseFormat {
    match (wire.kind.as_str(), wire.schema) {
        ("json", Some(schema)) => ResponseFormat::JsonSchema {
            name: wire.name.unwrap_or_else(|| "response".to_owned()),
            schema: Some(schema),
            strict: None,
        },
        ("json", None) => ResponseFormat::JsonObject,
        _ => ResponseFormat::Text,
    }
}

/// The top-level `reasoning` level wins; otherwise Anthropic's thinking budget from its provider
/// options (what the SDK's Anthropic users set) is honoured.
fn parse_reasoning(
    level: Option<&str>,
    anthropic: Option<&AnthropicOptions>,
) -> Result<Option<Reasoning>, RequestError> {
    if let Some(level) = level {
        return Ok(match level {
            "provider-default" => None,
            "none" => Some(Reasoning::Disabled),
            "minimal" => Some(Reasoning::Effort(Effort::Minimal)),
            "low" => Some(Reasoning::Effort(Effort::Low)),
            "medium" => Some(Reasoning::Effort(Effort::Medium)),
            "high" => Some(Reasoning::Effort(Effort::High)),
            "xhigh" | "max" => Some(Reasoning::Effort(Effort::XHigh)),
            other => return Err(RequestError::invalid("reasoning", format!("unknown reasoning level `{other}`"))),
        });
    }
    let thinking = anthropic.and_then(|a| a.thinking.as_ref());
    Ok(thinking.and_then(|t| match (t.kind.as_deref(), t.budget_tokens) {
        (Some("disabled"), _) => Some(Reasoning::Disabled),
        (_, Some(budget)) => Some(Reasoning::Budget(budget)),
        _ => None,
    }))
}

fn required<'a>(value: &'a Option<String>, param: &str, field: &str) -> Result<&'a str, RequestError> {
    value.as_deref().ok_or_else(|| RequestError::invalid(format!("{param}.{field}"), "Field required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ChatRequest, RequestError> {
        parse_request(body.as_bytes(), "m/x", false)
    }

    #[test]
    fn minimal_body() {
        let r = parse(
            r#"{"toolChoice":{"type":"auto"},"prompt":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.model, "m/x");
        assert_eq!(r.messages, vec![Message::User { content: vec![Part::Text("hi".into())] }]);
        assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for body in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"prompt":5}"#,
            r#"{"prompt":[{"role":"x","content":[]}]}"#,
            r#"{"prompt":[{"role":"system","content":[]}]}"#,
            r#"{"prompt":[{"role":"user","content":[{"type":"file"}]}]}"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }

    #[test]
    fn spec2_data_urls_and_tool_outputs() {
        let r = parse(r#"{"prompt":[{"role":"user","content":[{"type":"file","mediaType":"image/png","data":"data:image/png;base64,AAA="}]},
            {"role":"tool","content":[{"type":"tool-result","toolCallId":"c","toolName":"t","output":{"type":"text","value":"ok"}},
            {"type":"tool-result","toolCallId":"d","toolName":"t","output":{"type":"execution-denied"}}]}]}"#).unwrap();
        assert_eq!(
            r.messages[0],
            Message::User {
                content: vec![Part::Image(Media::Base64 { media_type: "image/png".into(), data: "AAA=".into() })]
            }
        );
        assert_eq!(r.messages[1], Message::Tool { tool_call_id: "c".into(), content: vec![Part::Text("ok".into())] });
        assert_eq!(
            r.messages[2],
            Message::Tool { tool_call_id: "d".into(), content: vec![Part::Text("Tool execution denied.".into())] }
        );
    }

    #[test]
    fn reasoning_keeps_anthropic_signature() {
        let r = parse(r#"{"reasoning":"high","prompt":[{"role":"assistant","content":[{"type":"reasoning","text":"hm","providerOptions":{"anthropic":{"signature":"sig"}}},
            {"type":"reasoning","text":"","providerOptions":{"anthropic":{"redactedData":"xx"}}}]}]}"#).unwrap();
        assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
        assert_eq!(
            r.messages[0],
            Message::Assistant {
                content: vec![
                    Part::Reasoning { text: "hm".into(), signature: Some("sig".into()) },
                    Part::RedactedReasoning { data: "xx".into() }
                ],
                tool_calls: vec![]
            }
        );
    }

    #[test]
    fn provider_tools_are_refused_by_name() {
        let e = parse(r#"{"prompt":[],"tools":[{"type":"provider","id":"gateway.exa_search","name":"s","args":{}}]}"#)
            .unwrap_err();
        assert_eq!(e.param(), Some("tools[0]"));
    }

    #[test]
    fn gateway_options_default_and_values() {
        assert_eq!(gateway_options(b"{}").unwrap(), GatewayOptions::default());
        let o = gateway_options(
            br#"{"providerOptions":{"gateway":{"order":["a"],"models":["m",{"model":"x"}],"sort":"cost"}}}"#,
        )
        .unwrap();
        assert_eq!(o.order, vec!["a"]);
        assert_eq!(o.models, vec!["m"]);
        assert_eq!(o.sort.as_deref(), Some("cost"));
        assert!(gateway_options(b"nope").is_err());
    }
}

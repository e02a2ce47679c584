//! Internal chat request -> Bedrock request body: the Converse body (`/converse` and
//! `/converse-stream` take the same one) is written here; the InvokeModel body for Anthropic models
//! is `anthropic::request_body` in its Bedrock dialect. Paths, headers and signing are elsewhere.
//!
//! Converse choices (each one a decision, not an accident):
//! - `system` and `inferenceConfig` are always written, empty when there is nothing to say, as the
//!   AWS SDKs send them (every recorded request has both).
//! - System and developer messages, wherever they stand, become `system` text blocks in order.
//!   Tool results become `toolResult` blocks in a user turn; consecutive turns of one role merge and
//!   tool results move first in a merged user turn (Converse requires alternation, and Anthropic
//!   models, the main tool users, require results first). Empty texts and empty turns are dropped.
//! - `maxTokens` is sent only when the client gave one: Converse's default is the model's maximum,
//!   which leaves room for any thinking budget, so unlike Anthropic's API there is nothing to default.
//! - Reasoning goes to `additionalModelRequestFields.thinking` for Anthropic models, with the
//!   Anthropic mapping's effort budgets (halved to fit under a client's `maxTokens`, left off below
//!   1024). Other models have no common reasoning switch, so asking them to reason is rejected
//!   by name. Unsigned reasoning (another provider's) is not sent back; signed and redacted reasoning
//!   go back as `reasoningContent`.
//! - Images and documents must be inline bytes (or `s3://` URLs); Converse fetches no `http(s)` URL.
//!   Document names are derived from the file name within Bedrock's allowed characters.
//! - `toolResult.status` is not sent: the internal model has no error flag and only some models
//!   accept the field. `tool_choice: "none"` has no Converse counterpart: tools are left out, unless
//!   the conversation already holds tool blocks (Bedrock then requires `toolConfig`), in which case
//!   they are sent without a choice and the model may still call one. `parallel_tool_calls`, `seed`,
//!   `user` and unmodelled fields (`extra`) have no Converse counterpart and are dropped.
//! - `response_format` `json_schema` becomes `outputConfig.textFormat`; `json_object` has no
//!   schema-less counterpart and is left to the prompt.

use serde::Serialize;
use serde_json::value::RawValue;

use super::Api;
use crate::chat::{ChatRequest, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolChoice};
use crate::providers::anthropic;

/// What the body needs besides the client's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The Bedrock model id, inference profile or ARN (from the endpoint config). It goes in the
    /// path, not the body; here it only feeds [`ModelFamily::detect`] for callers that want that.
    pub model: &'a str,
    pub api: Api,
    /// Decides the model-specific Converse fields (thinking).
    pub family: ModelFamily,
    /// InvokeModel's `max_tokens` when the client gave none (Anthropic requires one). Converse
    /// ignores it.
    pub default_max_tokens: u32,
}

/// Who made the model behind a Converse endpoint, as far as the request body cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    /// Claude: takes Anthropic's `thinking` through `additionalModelRequestFields`.
    Anthropic,
    Other,
}

impl ModelFamily {
    /// From a model id, cross-region inference profile or ARN (`anthropic.claude-...`,
    /// `us.anthropic.claude-...`, `arn:...:inference-profile/eu.anthropic.claude-...`). An
    /// application inference profile's ARN names no model: configure the family for those.
    pub fn detect(model: &str) -> Self {
        if model.contains("anthropic.") { Self::Anthropic } else { Self::Other }
    }
}

/// The thinking budget's floor, as for Anthropic's own API.
const MIN_THINKING_BUDGET: u32 = 1024;

/// The request body for `request`. Fails for content Bedrock cannot take (file ids, `http(s)`
/// image URLs, unsupported media types, non-object tool arguments, reasoning on non-Anthropic
/// models).
pub fn request_body(request: &ChatRequest, options: &RequestOptions<'_>) -> Result<Vec<u8>, RequestError> {
    match options.api {
        Api::Converse => converse_body(request, options.family),
        Api::InvokeAnthropic => {
            let options = anthropic::RequestOptions {
                model: options.model,
                default_max_tokens: options.default_max_tokens,
                dialect: anthropic::Dialect::Bedrock,
            };
            anthropic::request_body(request, &options)
        }
    }
}

fn converse_body(request: &ChatRequest, family: ModelFamily) -> Result<Vec<u8>, RequestError> {
    let (system, messages) = convert_messages(&request.messages)?;
    let (max_tokens, budget) = output_budget(request, family)?;
    let has_tool_blocks = messages.iter().flat_map(|turn| &turn.content).any(Block::is_tool_block);
    let body = Body {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            stop_sequences: &request.stop,
        },
        tool_config: tool_config(request, has_tool_blocks),
        additional_model_request_fields: budget
            .map(|budget_tokens| AdditionalFields { thinking: Thinking { kind: "enabled", budget_tokens } }),
        output_config: output_config(request.response_format.as_ref()),
    };
    serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(format!("cannot encode the request: {e}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    messages: Vec<Turn<'a>>,
    system: Vec<SystemBlock<'a>>,
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_model_request_fields: Option<AdditionalFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A content block: Converse unions are objects with exactly one member.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    Text(&'a str),
    Image(Image<'a>),
    Document(Document<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
    ReasoningContent(ReasoningContent<'a>),
}

impl Block<'_> {
    fn is_tool_result(&self) -> bool {
        matches!(self, Block::ToolResult(_))
    }

    fn is_tool_block(&self) -> bool {
        matches!(self, Block::ToolUse(_) | Block::ToolResult(_))
    }
}

#[derive(Serialize)]
struct Image<'a> {
    format: &'static str,
    source: Source<'a>,
}

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    name: String,
    source: Source<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Source<'a> {
    /// Base64 text: Converse's JSON carries blobs base64-encoded, as the client sent them.
    Bytes(&'a str),
    S3Location {
        uri: &'a str,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    tool_use_id: &'a str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ReasoningContent<'a> {
    ReasoningText { text: &'a str, signature: &'a str },
    RedactedContent(&'a str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum WireToolChoice<'a> {
    Auto(Empty),
    Any(Empty),
    Tool { name: &'a str },
}

/// `{}`: the members of `toolChoice.auto` and `toolChoice.any`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct AdditionalFields {
    thinking: Thinking,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputConfig<'a> {
    text_format: TextFormat<'a>,
}

#[derive(Serialize)]
struct TextFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    structure: Structure<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Structure<'a> {
    json_schema: JsonSchema<'a>,
}

/// The schema goes as a JSON string, not an object (Bedrock's `JsonSchemaDefinition.schema`).
#[derive(Serialize)]
struct JsonSchema<'a> {
    schema: &'a str,
    name: &'a str,
}

/// Parses a constant JSON text; the texts are literals, so this cannot fail.
fn raw_constant(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).unwrap_or_else(|_| unreachable!("constant JSON literal"))
}

/// `(maxTokens, thinking budget)`; see the module doc for the rules.
fn output_budget(request: &ChatRequest, family: ModelFamily) -> Result<(Option<u32>, Option<u32>), RequestError> {
    let max = request.max_tokens;
    let budget = match request.reasoning {
        None | Some(Reasoning::Disabled) => return Ok((max, None)),
        Some(_) if family != ModelFamily::Anthropic => {
            return Err(RequestError::unsupported(
                "reasoning_effort",
                "reasoning settings reach Bedrock Converse only for Anthropic models",
            ));
        }
        Some(Reasoning::Budget(budget)) => return Ok((max, Some(budget))),
        Some(Reasoning::Effort(effort)) => anthropic::effort_budget_tokens(effort),
    };
    Ok(match max {
        Some(max) if budget >= max => (Some(max), Some(max / 2).filter(|half| *half >= MIN_THINKING_BUDGET)),
        _ => (max, Some(budget)),
    })
}

/// The system blocks and the alternating turns.
fn convert_messages(messages: &[Message]) -> Result<(Vec<SystemBlock<'_>>, Vec<Turn<'_>>), RequestError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match message {
            Message::System { content, .. } => system_blocks(content, i, &mut system)?,
            Message::User { content } => push_turn(&mut turns, "user", user_blocks(content, i)?),
            Message::Assistant { content, tool_calls } => {
                let mut blocks = assistant_blocks(content, i)?;
                for (j, call) in tool_calls.iter().enumerate() {
                    let input = tool_input(&call.arguments).ok_or_else(|| {
                        RequestError::invalid(
                            format!("messages[{i}].tool_calls[{j}].function.arguments"),
                            "tool call arguments must be a JSON object to be sent to Bedrock",
                        )
                    })?;
                    blocks.push(Block::ToolUse(ToolUse { tool_use_id: &call.id, name: &call.name, input }));
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            Message::Tool { tool_call_id, content } => {
                let content = user_blocks(content, i)?;
                push_turn(
                    &mut turns,
                    "user",
                    vec![Block::ToolResult(ToolResult { tool_use_id: tool_call_id, content })],
                );
            }
        }
    }
    for turn in turns.iter_mut().filter(|t| t.role == "user") {
        // Stable: tool results keep their order, and so does the content after them.
        turn.content.sort_by_key(|block| !block.is_tool_result());
    }
    Ok((system, turns))
}

fn system_blocks<'a>(content: &'a [Part], i: usize, out: &mut Vec<SystemBlock<'a>>) -> Result<(), RequestError> {
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => out.push(SystemBlock { text }),
            _ => return Err(unsupported_part(i, j, "Bedrock system prompts take text only")),
        }
    }
    Ok(())
}

/// Appends a turn, merging it into the previous one of the same role; empty turns vanish.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => turns.push(Turn { role, content: blocks }),
    }
}

/// User content, also used for tool results (Converse allows the same text, image and document
/// blocks in both).
fn user_blocks(content: &[Part], i: usize) -> Result<Vec<Block<'_>>, RequestError> {
    let mut blocks = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => blocks.push(Block::Text(text)),
            Part::Image(media) => blocks.push(image_block(media, i, j)?),
            Part::File { media, filename } => blocks.push(document_block(media, filename.as_deref(), i, j)?),
            _ => return Err(unsupported_part(i, j, "this part is only valid in assistant messages")),
        }
    }
    Ok(blocks)
}

fn assistant_blocks(content: &[Part], i: usize) -> Result<Vec<Block<'_>>, RequestError> {
    let mut blocks = Vec::with_capacity(content.len() + 1);
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) | Part::Refusal(text) if text.is_empty() => {}
            Part::Text(text) | Part::Refusal(text) => blocks.push(Block::Text(text)),
            Part::Reasoning { text, signature: Some(signature) } => {
                blocks.push(Block::ReasoningContent(ReasoningContent::ReasoningText { text, signature }))
            }
            Part::Reasoning { signature: None, .. } => {}
            Part::RedactedReasoning { data } => {
                blocks.push(Block::ReasoningContent(ReasoningContent::RedactedContent(data)))
            }
            Part::Image(_) | Part::File { .. } => {
                return Err(unsupported_part(i, j, "Bedrock assistant messages cannot carry images or files"));
            }
        }
    }
    Ok(blocks)
}

fn image_block<'a>(media: &'a Media, i: usize, j: usize) -> Result<Block<'a>, RequestError> {
    let (media_type, source) = source(media, i, j)?;
    let format = match media_type {
        Some(media_type) => media_type.to_ascii_lowercase().strip_prefix("image/").and_then(image_format),
        // An S3 object's type is not known here: its key's extension says it.
        None => uri_extension(media).as_deref().and_then(image_format),
    };
    let format = format.ok_or_else(|| unsupported_part(i, j, "Bedrock takes png, jpeg, gif and webp images"))?;
    Ok(Block::Image(Image { format, source }))
}

fn document_block<'a>(media: &'a Media, filename: Option<&str>, i: usize, j: usize) -> Result<Block<'a>, RequestError> {
    let (media_type, source) = source(media, i, j)?;
    let format = match media_type {
        Some(media_type) => document_format_of_type(media_type),
        None => None,
    };
    let format = format
        .or_else(|| filename.and_then(extension).as_deref().and_then(document_format))
        .or_else(|| uri_extension(media).as_deref().and_then(document_format))
        .ok_or_else(|| {
            unsupported_part(i, j, "Bedrock takes pdf, csv, doc, docx, xls, xlsx, html, txt and md documents")
        })?;
    Ok(Block::Document(Document { format, name: document_name(filename, i, j), source }))
}

/// The media type (when inline) and the Converse source of `media`.
fn source(media: &Media, i: usize, j: usize) -> Result<(Option<&str>, Source<'_>), RequestError> {
    match media {
        Media::Base64 { media_type, data } => Ok((Some(media_type), Source::Bytes(data))),
        Media::Url(url) if url.starts_with("s3://") => Ok((None, Source::S3Location { uri: url })),
        Media::Url(_) => Err(unsupported_part(i, j, "Bedrock fetches no URLs; send the content inline (base64)")),
        Media::FileId(_) => Err(unsupported_part(i, j, "file ids belong to another provider; send the file inline")),
    }
}

/// Converse's image format for a media subtype or file extension.
fn image_format(name: &str) -> Option<&'static str> {
    Some(match name {
        "png" => "png",
        "jpeg" | "jpg" => "jpeg",
        "gif" => "gif",
        "webp" => "webp",
        _ => return None,
    })
}

fn document_format_of_type(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// Converse's document format for a file extension (they are the formats' names).
fn document_format(ext: &str) -> Option<&'static str> {
    const FORMATS: [&str; 9] = ["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];
    FORMATS.into_iter().find(|format| *format == ext)
}

/// The lowercase text after the last `.` of the last path segment.
fn extension(name: &str) -> Option<String> {
    let last = name.rsplit('/').next()?;
    let (_, ext) = last.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

fn uri_extension(media: &Media) -> Option<String> {
    match media {
        Media::Url(url) => extension(url),
        _ => None,
    }
}

/// A document name Bedrock accepts: ASCII letters and digits, single spaces, hyphens, parentheses and square
/// brackets, at most 200 characters. The extension goes (the format says it) and other characters
/// become hyphens; a missing or empty name becomes `document-{i}-{j}`, unique in the request.
fn document_name(filename: Option<&str>, i: usize, j: usize) -> String {
    let stem = filename.map(|name| name.rsplit_once('.').map_or(name, |(stem, _)| stem)).unwrap_or("");
    let mut name = String::with_capacity(stem.len().min(200));
    for c in stem.chars() {
        let c = match c {
            c if c.is_ascii_alphanumeric() || "-()[]".contains(c) => c,
            c if c.is_whitespace() => ' ',
            _ => '-',
        };
        if !(c == ' ' && (name.is_empty() || name.ends_with(' '))) {
            name.push(c);
        }
        if name.chars().count() >= 200 {
            break;
        }
    }
    let name = name.trim_end();
    if name.is_empty() { format!("document-{i}-{j}") } else { name.to_owned() }
}

/// The arguments as a JSON object for `toolUse.input`; blank arguments mean no arguments.
fn tool_input(arguments: &str) -> Option<&RawValue> {
    if arguments.trim().is_empty() {
        return Some(raw_constant("{}"));
    }
    let raw: &RawValue = serde_json::from_str(arguments).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

/// The schema sent for a tool that declared no parameters: Converse requires one.
fn empty_schema() -> &'static RawValue {
    raw_constant(r#"{"type":"object","properties":{}}"#)
}

fn tool_spec(tool: &Tool) -> ToolEntry<'_> {
    ToolEntry {
        tool_spec: ToolSpec {
            name: &tool.name,
            // Converse rejects an empty description.
            description: tool.description.as_deref().filter(|d| !d.is_empty()),
            input_schema: InputSchema {
                json: match &tool.parameters {
                    Some(schema) => schema,
                    None => empty_schema(),
                },
            },
            strict: tool.strict.filter(|strict| *strict),
        },
    }
}

/// `toolConfig`, when there are tools to offer; see the module doc for `none`.
fn tool_config(request: &ChatRequest, has_tool_blocks: bool) -> Option<ToolConfig<'_>> {
    if request.tools.is_empty() || (request.tool_choice == Some(ToolChoice::None) && !has_tool_blocks) {
        return None;
    }
    let tool_choice = match &request.tool_choice {
        None | Some(ToolChoice::None) => None,
        Some(ToolChoice::Auto) => Some(WireToolChoice::Auto(Empty {})),
        Some(ToolChoice::Required) => Some(WireToolChoice::Any(Empty {})),
        Some(ToolChoice::Named(name)) => Some(WireToolChoice::Tool { name }),
    };
    Some(ToolConfig { tools: request.tools.iter().map(tool_spec).collect(), tool_choice })
}

fn output_config(format: Option<&ResponseFormat>) -> Option<OutputConfig<'_>> {
    match format {
        Some(ResponseFormat::JsonSchema { name, schema: Some(schema), .. }) => Some(OutputConfig {
            text_format: TextFormat {
                kind: "json_schema",
                structure: Structure { json_schema: JsonSchema { schema: schema.get(), name } },
            },
        }),
        _ => None,
    }
}

fn unsupported_part(i: usize, j: usize, why: &str) -> RequestError {
    RequestError::unsupported(format!("messages[{i}].content[{j}]"), why)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{Effort, ToolCall};

    fn options(family: ModelFamily) -> RequestOptions<'static> {
        RequestOptions { model: "m", api: Api::Converse, family, default_max_tokens: 4096 }
    }

    fn body_for(request: &ChatRequest, family: ModelFamily) -> Value {
        serde_json::from_slice(&request_body(request, &options(family)).unwrap()).unwrap()
    }

    fn body(request: &ChatRequest) -> Value {
        body_for(request, ModelFamily::Anthropic)
    }

    fn user(text: &str) -> Message {
        Message::User { content: vec![Part::Text(text.into())] }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest { model: "gw".into(), messages, ..ChatRequest::default() }
    }

    fn tool(name: &str) -> Tool {
        Tool { name: name.into(), description: None, parameters: None, strict: None }
    }

    #[test]
    fn minimal_request_keeps_the_empty_sections() {
        assert_eq!(
            body(&request(vec![user("hi")])),
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "system": [], "inferenceConfig": {}})
        );
    }

    #[test]
    fn families_are_detected_from_ids_profiles_and_arns() {
        for model in [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
        ] {
            assert_eq!(ModelFamily::detect(model), ModelFamily::Anthropic, "{model}");
        }
        for model in [
            "us.amazon.nova-micro-v1:0",
            "meta.llama3-70b-instruct-v1:0",
            "arn:aws:bedrock:x:1:application-inference-profile/abc",
        ] {
            assert_eq!(ModelFamily::detect(model), ModelFamily::Other, "{model}");
        }
    }

    #[test]
    fn invoke_uses_the_anthropic_bedrock_dialect() {
        let options = RequestOptions {
            model: "m",
            api: Api::InvokeAnthropic,
            family: ModelFamily::Other,
            default_max_tokens: 77,
        };
        let body: Value = serde_json::from_slice(&request_body(&request(vec![user("hi")]), &options).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 77,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        );
    }

    #[test]
    fn tool_choice_mapping() {
        let with = |choice: Option<ToolChoice>, history: bool| {
            let mut messages = vec![user("x")];
            if history {
                messages.push(Message::Assistant {
                    content: vec![],
                    tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "{}".into() }],
                });
                messages.push(Message::Tool { tool_call_id: "c".into(), content: vec![] });
            }
            let r = ChatRequest { tools: vec![tool("f")], tool_choice: choice, ..request(messages) };
            body(&r).get("toolConfig").cloned()
        };
        let tools = json!([{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]);
        assert_eq!(with(None, false), Some(json!({"tools": tools})));
        assert_eq!(with(Some(ToolChoice::Auto), false), Some(json!({"tools": tools, "toolChoice": {"auto": {}}})));
        assert_eq!(with(Some(ToolChoice::Required), false), Some(json!({"tools": tools, "toolChoice": {"any": {}}})));
        assert_eq!(
            with(Some(ToolChoice::Named("f".into())), false),
            Some(json!({"tools": tools, "toolChoice": {"tool": {"name": "f"}}}))
        );
        assert_eq!(with(Some(ToolChoice::None), false), None);
        assert_eq!(with(Some(ToolChoice::None), true), Some(json!({"tools": tools})));
        let no_tools = ChatRequest { tool_choice: Some(ToolChoice::Required), ..request(vec![user("x")]) };
        assert!(body(&no_tools).get("toolConfig").is_none());
    }

    #[test]
    fn thinking_budgets() {
        let with = |reasoning: Option<Reasoning>, max_tokens: Option<u32>| {
            let b = body(&ChatRequest { reasoning, max_tokens, ..request(vec![user("x")]) });
            (b["inferenceConfig"].get("maxTokens").cloned(), b.get("additionalModelRequestFields").cloned())
        };
        let thinking = |n: u32| Some(json!({"thinking": {"type": "enabled", "budget_tokens": n}}));
        assert_eq!(with(Some(Reasoning::Disabled), None), (None, None));
        assert_eq!(with(Some(Reasoning::Budget(1024)), None), (None, thinking(1024)));
        assert_eq!(with(Some(Reasoning::Budget(5000)), Some(3000)), (Some(json!(3000)), thinking(5000)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Medium)), None), (None, thinking(8192)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Low)), Some(10000)), (Some(json!(10000)), thinking(2048)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::High)), Some(10000)), (Some(json!(10000)), thinking(5000)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Low)), Some(2000)), (Some(json!(2000)), None));
    }

    #[test]
    fn reasoning_for_other_models_is_rejected_by_name() {
        let r = ChatRequest { reasoning: Some(Reasoning::Effort(Effort::Low)), ..request(vec![user("x")]) };
        let err = request_body(&r, &options(ModelFamily::Other)).unwrap_err();
        assert_eq!(err.param(), Some("reasoning_effort"));
        let disabled = ChatRequest { reasoning: Some(Reasoning::Disabled), ..request(vec![user("x")]) };
        assert!(request_body(&disabled, &options(ModelFamily::Other)).is_ok());
    }

    #[test]
    fn media_and_documents() {
        let base64 = |media_type: &str| Media::Base64 { media_type: media_type.into(), data: "AAAA".into() };
        let r = request(vec![Message::User {
            content: vec![
                Part::Image(base64("image/png")),
                Part::Image(Media::Url("s3://bucket/cat.JPG".into())),
                Part::File { media: base64("application/pdf"), filename: Some("Q3 report (final).v2.pdf".into()) },
                Part::File { media: base64("text/plain"), filename: None },
                Part::File { media: Media::Url("s3://b/notes.md".into()), filename: Some("  ".into()) },
            ],
        }]);
        assert_eq!(
            body(&r)["messages"][0]["content"],
            json!([
                {"image": {"format": "png", "source": {"bytes": "AAAA"}}},
                {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.JPG"}}}},
                {"document": {"format": "pdf", "name": "Q3 report (final)-v2", "source": {"bytes": "AAAA"}}},
                {"document": {"format": "txt", "name": "document-0-3", "source": {"bytes": "AAAA"}}},
                {"document": {"format": "md", "name": "document-0-4", "source": {"s3Location": {"uri": "s3://b/notes.md"}}}}
            ])
        );
        let rejected = [
            Part::Image(Media::Url("https://example.com/a.png".into())),
            Part::Image(base64("image/tiff")),
            Part::Image(Media::FileId("file-1".into())),
            Part::File { media: base64("application/zip"), filename: Some("a.zip".into()) },
        ];
        for part in rejected {
            let r = request(vec![Message::User { content: vec![Part::Text("x".into()), part.clone()] }]);
            let err = request_body(&r, &options(ModelFamily::Anthropic)).unwrap_err();
            assert_eq!(err.param(), Some("messages[0].content[1]"), "{part:?}");
        }
    }

    #[test]
    fn document_names_stay_within_the_allowed_characters() {
        assert_eq!(document_name(Some("a  b\tc.txt"), 0, 0), "a b c");
        assert_eq!(document_name(Some("ünï_näme.pdf"), 0, 0), "-n--n-me");
        assert_eq!(document_name(Some(".pdf"), 2, 3), "document-2-3");
        assert_eq!(document_name(Some(&"x".repeat(300)), 0, 0).len(), 200);
    }

    #[test]
    fn reasoning_goes_back_signed_or_redacted() {
        let r = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![
                    Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                    Part::Reasoning { text: "foreign".into(), signature: None },
                    Part::RedactedReasoning { data: "b3BhcXVl".into() },
                    Part::Refusal("no".into()),
                ],
                tool_calls: vec![],
            },
        ]);
        assert_eq!(
            body(&r)["messages"][1]["content"],
            json!([{"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
                   {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
                   {"text": "no"}])
        );
    }

    #[test]
    fn bad_tool_arguments_and_system_images_are_named() {
        let bad_args = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![],
                tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "[1]".into() }],
            },
        ]);
        let err = request_body(&bad_args, &options(ModelFamily::Other)).unwrap_err();
        assert_eq!(err.param(), Some("messages[1].tool_calls[0].function.arguments"));
        let image_system = request(vec![Message::System {
            content: vec![Part::Image(Media::Url("s3://x/y.png".into()))],
            developer: false,
        }]);
        assert!(matches!(
            request_body(&image_system, &options(ModelFamily::Other)),
            Err(RequestError::Unsupported { .. })
        ));
    }
}

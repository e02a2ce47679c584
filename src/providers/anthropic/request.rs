//! Internal chat request -> Anthropic Messages request body. It writes JSON only; headers and paths
//! are in the parent module.
//!
//! Choices where the formats differ (each one a decision, not an accident):
//! - System and developer messages, wherever they stand, are hoisted into `system` in order: the
//!   Messages API has no system turns. One text becomes a string, several become text blocks.
//! - Tool results become `tool_result` blocks in a user turn; consecutive turns of one role merge,
//!   since the API requires alternation, and in a merged user turn the `tool_result` blocks move
//!   first, since the API requires that too. Empty texts and turns left empty are dropped (the API
//!   rejects empty text blocks).
//! - `max_tokens` is required: the client's, else the configured default. With thinking on and no
//!   client value, the default is added on top of the thinking budget so the answer keeps its room.
//!   An effort-derived budget must fit under a client's `max_tokens` (halved; thinking is left off
//!   when half is under the API's 1024 minimum); an explicit budget is sent as given.
//! - Reasoning without a signature (from another provider) is not sent back: Anthropic only accepts
//!   its own signed thinking.
//! - `response_format` `json_schema` becomes `output_config.format`; `json_object` has no
//!   schema-less counterpart and is left to the prompt (which OpenAI requires to ask for JSON anyway).
//! - Dropped because Anthropic has no equivalent: `seed`, tool `strict`, image `detail`, and the
//!   request's unmodelled OpenAI fields (`extra`). Sent as given even where Anthropic's range is
//!   narrower (temperature above 1), so the provider's own 400 explains the problem.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{BEDROCK_ANTHROPIC_VERSION, VERTEX_ANTHROPIC_VERSION};
use crate::chat::{ChatRequest, Effort, Media, Message, Part, Reasoning, RequestError, ResponseFormat, ToolChoice};

/// Which service receives the body: they differ in where the model and API version go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// api.anthropic.com: `model` in the body, version in a header.
    Anthropic,
    /// Vertex AI `rawPredict`/`streamRawPredict`: no `model` (it is in the URL),
    /// `anthropic_version: "vertex-2023-10-16"`.
    Vertex,
    /// Bedrock `InvokeModel[WithResponseStream]`: no `model`, no `stream` (the operation decides),
    /// `anthropic_version: "bedrock-2023-05-31"`.
    Bedrock,
}

/// What the body needs besides the client's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The provider's model name (from the endpoint config). Unused by Vertex and Bedrock.
    pub model: &'a str,
    /// `max_tokens` when the client gave none (Anthropic requires one).
    pub default_max_tokens: u32,
    pub dialect: Dialect,
}

/// The smallest thinking budget the API accepts.
const MIN_THINKING_BUDGET: u32 = 1024;

/// The thinking budget chosen for an OpenAI-style effort level. Sized so `high` fits the output
/// limits of current Claude models together with a default answer budget.
pub fn effort_budget_tokens(effort: Effort) -> u32 {
    match effort {
        Effort::Minimal => 1024,
        Effort::Low => 2048,
        Effort::Medium => 8192,
        Effort::High => 16384,
        Effort::XHigh => 24576,
    }
}

/// The request body for `request`. Fails only for content Anthropic cannot take (an OpenAI file id,
/// images in the system prompt, tool-call arguments that are not a JSON object).
pub fn request_body(request: &ChatRequest, options: &RequestOptions<'_>) -> Result<Vec<u8>, RequestError> {
    let (system, messages) = convert_messages(&request.messages)?;
    let (max_tokens, budget) = output_budget(request, options.default_max_tokens);
    let body = Body {
        anthropic_version: match options.dialect {
            Dialect::Anthropic => None,
            Dialect::Vertex => Some(VERTEX_ANTHROPIC_VERSION),
            Dialect::Bedrock => Some(BEDROCK_ANTHROPIC_VERSION),
        },
        model: (options.dialect == Dialect::Anthropic).then_some(options.model),
        max_tokens,
        system,
        messages,
        tools: request.tools.iter().map(wire_tool).collect(),
        tool_choice: tool_choice(request),
        stop_sequences: &request.stop,
        temperature: request.temperature,
        top_p: request.top_p,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
        thinking: budget.map(|budget_tokens| Thinking { kind: "enabled", budget_tokens }),
        output_config: output_config(request.response_format.as_ref()),
        stream: (options.dialect != Dialect::Bedrock).then_some(request.stream),
    };
    serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(format!("cannot encode the request: {e}")))
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    anthropic_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum System<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: Source<'a>,
    },
    Document {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

impl Block<'_> {
    fn is_tool_result(&self) -> bool {
        matches!(self, Block::ToolResult { .. })
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawValue,
}

#[derive(Serialize)]
struct WireToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct OutputConfig<'a> {
    format: OutputFormat<'a>,
}

#[derive(Serialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'a RawValue,
}

/// Parses a constant JSON text once per call site; the texts are literals, so this cannot fail.
fn raw_constant(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).unwrap_or_else(|_| unreachable!("constant JSON literal"))
}

/// The schema sent for a tool that declared no parameters: Anthropic requires one.
fn empty_schema() -> &'static RawValue {
    raw_constant(r#"{"type":"object","properties":{}}"#)
}

fn wire_tool(tool: &crate::chat::Tool) -> Tool<'_> {
    Tool {
        name: &tool.name,
        description: tool.description.as_deref(),
        input_schema: match &tool.parameters {
            Some(schema) => schema,
            None => empty_schema(),
        },
    }
}

/// Anthropic rejects `tool_choice` without tools, so it is only sent with some.
fn tool_choice(request: &ChatRequest) -> Option<WireToolChoice<'_>> {
    if request.tools.is_empty() {
        return None;
    }
    let single_call = request.parallel_tool_calls == Some(false);
    let (kind, name) = match &request.tool_choice {
        None if !single_call => return None,
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => {
            return Some(WireToolChoice { kind: "none", name: None, disable_parallel_tool_use: None });
        }
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Named(name)) => ("tool", Some(name.as_str())),
    };
    Some(WireToolChoice { kind, name, disable_parallel_tool_use: single_call.then_some(true) })
}

fn output_config(format: Option<&ResponseFormat>) -> Option<OutputConfig<'_>> {
    match format {
        Some(ResponseFormat::JsonSchema { schema: Some(schema), .. }) => {
            Some(OutputConfig { format: OutputFormat { kind: "json_schema", schema } })
        }
        _ => None,
    }
}

/// `(max_tokens, thinking budget)`; see the module doc for the rules.
fn output_budget(request: &ChatRequest, default_max_tokens: u32) -> (u32, Option<u32>) {
    let (budget, explicit) = match request.reasoning {
        None | Some(Reasoning::Disabled) => return (request.max_tokens.unwrap_or(default_max_tokens), None),
        Some(Reasoning::Effort(effort)) => (effort_budget_tokens(effort), false),
        Some(Reasoning::Budget(budget)) => (budget, true),
    };
    match request.max_tokens {
        None if budget >= default_max_tokens => (budget.saturating_add(default_max_tokens), Some(budget)),
        None => (default_max_tokens, Some(budget)),
        Some(max) if explicit || budget < max => (max, Some(budget)),
        Some(max) => (max, Some(max / 2).filter(|half| *half >= MIN_THINKING_BUDGET)),
    }
}

/// The system prompt and the alternating turns.
fn convert_messages(messages: &[Message]) -> Result<(Option<System<'_>>, Vec<Turn<'_>>), RequestError> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match message {
            Message::System { content, .. } => system_texts(content, i, &mut system)?,
            Message::User { content } => push_turn(&mut turns, "user", user_blocks(content, i)?),
            Message::Assistant { content, tool_calls } => {
                let mut blocks = assistant_blocks(content, i)?;
                for (j, call) in tool_calls.iter().enumerate() {
                    let input = tool_input(&call.arguments)
                        .ok_or_else(|| bad_arguments(&format!("messages[{i}].tool_calls[{j}].function.arguments")))?;
                    blocks.push(Block::ToolUse { id: &call.id, name: &call.name, input });
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            Message::Tool { tool_call_id, content } => {
                let content = tool_result_content(content, i)?;
                push_turn(&mut turns, "user", vec![Block::ToolResult { tool_use_id: tool_call_id, content }]);
            }
        }
    }
    for turn in turns.iter_mut().filter(|t| t.role == "user") {
        // Stable: tool results keep their order, and so does the text after them.
        turn.content.sort_by_key(|block| !block.is_tool_result());
    }
    Ok((system_prompt(system), turns))
}

fn system_texts<'a>(content: &'a [Part], i: usize, out: &mut Vec<&'a str>) -> Result<(), RequestError> {
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => out.push(text),
            _ => return Err(unsupported_part(i, j, "Anthropic system prompts take text only")),
        }
    }
    Ok(())
}

fn system_prompt(texts: Vec<&str>) -> Option<System<'_>> {
    match texts.as_slice() {
        [] => None,
        [one] => Some(System::Text(one)),
        _ => Some(System::Blocks(texts.into_iter().map(|text| Block::Text { text }).collect())),
    }
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

fn user_blocks(content: &[Part], i: usize) -> Result<Vec<Block<'_>>, RequestError> {
    let mut blocks = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => blocks.push(Block::Text { text }),
            Part::Image(media) => blocks.push(Block::Image { source: source(media, i, j)? }),
            Part::File { media, filename } => {
                blocks.push(Block::Document { source: source(media, i, j)?, title: filename.as_deref() })
            }
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
            Part::Text(text) | Part::Refusal(text) => blocks.push(Block::Text { text }),
            Part::Reasoning { text, signature: Some(signature) } => {
                blocks.push(Block::Thinking { thinking: text, signature })
            }
            Part::Reasoning { signature: None, .. } => {}
            Part::RedactedReasoning { data } => blocks.push(Block::RedactedThinking { data }),
            Part::Image(_) | Part::File { .. } => {
                return Err(unsupported_part(i, j, "Anthropic assistant messages cannot carry images or files"));
            }
        }
    }
    Ok(blocks)
}

/// A tool result's content: one text as a string, anything richer as blocks, nothing as absent.
fn tool_result_content(content: &[Part], i: usize) -> Result<Option<ToolResultContent<'_>>, RequestError> {
    if let [Part::Text(text)] = content {
        return Ok((!text.is_empty()).then_some(ToolResultContent::Text(text)));
    }
    let blocks = user_blocks(content, i)?;
    Ok((!blocks.is_empty()).then_some(ToolResultContent::Blocks(blocks)))
}

fn source(media: &Media, i: usize, j: usize) -> Result<Source<'_>, RequestError> {
    match media {
        Media::Url(url) => Ok(Source::Url { url }),
        Media::Base64 { media_type, data } => Ok(Source::Base64 { media_type, data }),
        Media::FileId(_) => Err(unsupported_part(i, j, "file ids belong to another provider; send the file inline")),
    }
}

/// The arguments as a JSON object for `tool_use.input`; blank arguments mean no arguments.
fn tool_input(arguments: &str) -> Option<&RawValue> {
    if arguments.trim().is_empty() {
        return Some(raw_constant("{}"));
    }
    let raw: &RawValue = serde_json::from_str(arguments).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

fn bad_arguments(param: &str) -> RequestError {
    RequestError::invalid(param, "tool call arguments must be a JSON object to be sent to Anthropic")
}

fn unsupported_part(i: usize, j: usize, why: &str) -> RequestError {
    RequestError::unsupported(format!("messages[{i}].content[{j}]"), why)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{Tool as ChatTool, ToolCall};

    fn options(dialect: Dialect) -> RequestOptions<'static> {
        RequestOptions { model: "claude-x", default_max_tokens: 4096, dialect }
    }

    fn body(request: &ChatRequest) -> Value {
        serde_json::from_slice(&request_body(request, &options(Dialect::Anthropic)).unwrap()).unwrap()
    }

    fn user(text: &str) -> Message {
        Message::User { content: vec![Part::Text(text.into())] }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest { model: "gw".into(), messages, ..ChatRequest::default() }
    }

    fn tool(name: &str) -> ChatTool {
        ChatTool { name: name.into(), description: None, parameters: None, strict: None }
    }

    #[test]
    fn minimal_request() {
        assert_eq!(
            body(&request(vec![user("hi")])),
            json!({"model": "claude-x", "max_tokens": 4096, "stream": false,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        );
    }

    #[test]
    fn dialects_move_model_and_version() {
        let r = request(vec![user("hi")]);
        let vertex: Value = serde_json::from_slice(&request_body(&r, &options(Dialect::Vertex)).unwrap()).unwrap();
        assert_eq!(vertex["anthropic_version"], "vertex-2023-10-16");
        assert!(vertex.get("model").is_none());
        assert_eq!(vertex["stream"], false);
        let bedrock: Value = serde_json::from_slice(&request_body(&r, &options(Dialect::Bedrock)).unwrap()).unwrap();
        assert_eq!(bedrock["anthropic_version"], "bedrock-2023-05-31");
        assert!(bedrock.get("model").is_none() && bedrock.get("stream").is_none());
    }

    #[test]
    fn several_system_messages_become_blocks_and_roles_merge() {
        let r = request(vec![
            Message::System { content: vec![Part::Text("a".into())], developer: false },
            user("one"),
            Message::System { content: vec![Part::Text("b".into())], developer: true },
            user("two"),
            Message::Assistant { content: vec![Part::Text(String::new())], tool_calls: vec![] },
        ]);
        let b = body(&r);
        assert_eq!(b["system"], json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]));
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}])
        );
    }

    #[test]
    fn tool_results_merge_and_come_first() {
        let call = |id: &str| ToolCall { id: id.into(), name: "f".into(), arguments: String::new() };
        let r = ChatRequest {
            tools: vec![tool("f")],
            ..request(vec![
                user("go"),
                Message::Assistant { content: vec![], tool_calls: vec![call("a"), call("b")] },
                user("also this"),
                Message::Tool { tool_call_id: "a".into(), content: vec![Part::Text("1".into())] },
                Message::Tool { tool_call_id: "b".into(), content: vec![] },
            ])
        };
        assert_eq!(
            body(&r)["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "a", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "f", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                    {"type": "tool_result", "tool_use_id": "b"},
                    {"type": "text", "text": "also this"}]}
            ])
        );
    }

    #[test]
    fn tool_choice_mapping() {
        let with = |choice: Option<ToolChoice>, parallel: Option<bool>| {
            let r = ChatRequest {
                tools: vec![tool("f")],
                tool_choice: choice,
                parallel_tool_calls: parallel,
                ..request(vec![user("x")])
            };
            body(&r).get("tool_choice").cloned()
        };
        assert_eq!(with(None, None), None);
        assert_eq!(with(Some(ToolChoice::Auto), None), Some(json!({"type": "auto"})));
        assert_eq!(with(Some(ToolChoice::None), Some(false)), Some(json!({"type": "none"})));
        assert_eq!(with(Some(ToolChoice::Required), None), Some(json!({"type": "any"})));
        assert_eq!(
            with(Some(ToolChoice::Named("f".into())), Some(false)),
            Some(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}))
        );
        assert_eq!(with(None, Some(false)), Some(json!({"type": "auto", "disable_parallel_tool_use": true})));
        let no_tools = ChatRequest { tool_choice: Some(ToolChoice::Required), ..request(vec![user("x")]) };
        assert!(body(&no_tools).get("tool_choice").is_none());
    }

    #[test]
    fn thinking_budgets() {
        let with = |reasoning: Option<Reasoning>, max_tokens: Option<u32>| {
            let b = body(&ChatRequest { reasoning, max_tokens, ..request(vec![user("x")]) });
            (b["max_tokens"].as_u64().unwrap(), b.get("thinking").cloned())
        };
        let enabled = |n: u32| Some(json!({"type": "enabled", "budget_tokens": n}));
        assert_eq!(with(Some(Reasoning::Disabled), None), (4096, None));
        assert_eq!(with(Some(Reasoning::Budget(1024)), None), (4096, enabled(1024)));
        assert_eq!(with(Some(Reasoning::Budget(5000)), None), (9096, enabled(5000)));
        assert_eq!(with(Some(Reasoning::Budget(5000)), Some(3000)), (3000, enabled(5000)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Medium)), None), (12288, enabled(8192)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Low)), Some(10000)), (10000, enabled(2048)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::High)), Some(10000)), (10000, enabled(5000)));
        assert_eq!(with(Some(Reasoning::Effort(Effort::Low)), Some(2000)), (2000, None));
    }

    #[test]
    fn unsupported_content_is_named() {
        let file_id = request(vec![Message::User {
            content: vec![Part::Text("x".into()), Part::File { media: Media::FileId("file-1".into()), filename: None }],
        }]);
        let err = request_body(&file_id, &options(Dialect::Anthropic)).unwrap_err();
        assert_eq!(err.param(), Some("messages[0].content[1]"));
        let image_system = request(vec![Message::System {
            content: vec![Part::Image(Media::Url("https://x/y.png".into()))],
            developer: false,
        }]);
        assert!(matches!(
            request_body(&image_system, &options(Dialect::Anthropic)),
            Err(RequestError::Unsupported { .. })
        ));
        let bad_args = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![],
                tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "[1]".into() }],
            },
        ]);
        let err = request_body(&bad_args, &options(Dialect::Anthropic)).unwrap_err();
        assert_eq!(err.param(), Some("messages[1].tool_calls[0].function.arguments"));
    }

    #[test]
    fn signed_reasoning_goes_back_unsigned_does_not() {
        let r = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![
                    Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                    Part::Reasoning { text: "foreign".into(), signature: None },
                    Part::RedactedReasoning { data: "opaque".into() },
                    Part::Text("answer".into()),
                ],
                tool_calls: vec![],
            },
        ]);
        assert_eq!(
            body(&r)["messages"][1]["content"],
            json!([{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                   {"type": "redacted_thinking", "data": "opaque"},
                   {"type": "text", "text": "answer"}])
        );
    }
}

//! Internal chat request -> `generateContent` request body, the same for AI Studio and Vertex AI.
//! It writes JSON only; headers and paths are in the parent module.
//!
//! Choices where the formats differ (each one a decision, not an accident):
//! - System and developer messages, wherever they stand, become `systemInstruction` text parts in
//!   order. Turns are `user` and `model`; consecutive turns of one role merge, and in a merged user
//!   turn the `functionResponse` parts move first, so they follow the calls they answer. Empty
//!   texts and turns left empty are dropped (Gemini rejects empty text parts).
//! - No call ids are sent: Gemini pairs results with calls by name and order, and Vertex `v1` has
//!   no `id` field (it rejects one). A tool result becomes a `functionResponse` named after the
//!   function of the latest earlier assistant tool call with its id; a result whose id no call has
//!   is refused, since the name cannot be known.
//! - A tool result whose text is a JSON object is sent as the `response` object itself (as Gemini's
//!   own SDKs do); any other text is `{"output": text}`, the key Google documents for function
//!   output. Images in a tool result go in `functionResponse.parts` (Gemini 3's multimodal results).
//! - Gemini 3 rejects replayed function calls without a `thoughtSignature`, and OpenAI clients
//!   never have one, so the first call of each assistant message carries Google's documented
//!   sentinel ([`THOUGHT_SIGNATURE_SENTINEL`]). Reasoning parts are not sent back: the internal
//!   model does not record which provider signed them, and a foreign signature fails validation.
//! - Images and files: inline data as `inlineData`, URLs as `fileData` with the media type guessed
//!   from the URL's extension (left out when unknown); OpenAI file ids cannot be read by Google.
//! - Tool schemas go verbatim as `parametersJsonSchema`, and a `json_schema` response format as
//!   `responseJsonSchema`: both take full JSON Schema, where `parameters` and `responseSchema` take
//!   an OpenAPI subset that rejects what OpenAI clients send (`additionalProperties`, `$ref`).
//!   `json_object` is `responseMimeType: application/json` alone.
//! - `tool_choice` maps to `functionCallingConfig` (`AUTO`, `NONE`, `ANY`, `ANY` restricted to one
//!   name) and is sent only with tools. Reasoning maps to `thinkingConfig`: a budget (an effort
//!   level picks one, see [`effort_budget_tokens`]) with `includeThoughts`, so thoughts stream back
//!   as reasoning; disabled is a budget of 0.
//! - Dropped because Gemini has no equivalent: `parallel_tool_calls`, tool `strict`, `user`, file
//!   names and the request's unmodelled OpenAI fields (`extra`). Values are sent as given even where
//!   Gemini's range is narrower (a `seed` beyond 32 bits, a budget a model does not allow), so the
//!   provider's own 400 explains the problem.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::chat::{ChatRequest, Effort, Media, Message, Part, Reasoning, RequestError, ResponseFormat, ToolChoice};

/// The `thoughtSignature` Google documents for function calls that Gemini did not sign in this
/// conversation (ai.google.dev/gemini-api/docs/thought-signatures).
pub const THOUGHT_SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";

/// What the body needs besides the client's request. The model is not one of them: it is in the
/// path ([`super::path`], [`super::vertex_path`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions {
    /// `maxOutputTokens` when the client gave none; `None` leaves the model's own limit, since
    /// Gemini, unlike Anthropic, does not require one.
    pub default_max_tokens: Option<u32>,
}

/// The thinking budget chosen for an OpenAI-style effort level: Google's own mapping for its
/// OpenAI-compatible endpoint (low 1024, medium 8192, high 24576), with `minimal` at 512 (the
/// largest of the 2.5 models' minimum budgets) and `xhigh` capped at 24576, the most every 2.5
/// model accepts.
pub fn effort_budget_tokens(effort: Effort) -> u32 {
    match effort {
        Effort::Minimal => 512,
        Effort::Low => 1024,
        Effort::Medium => 8192,
        Effort::High | Effort::XHigh => 24576,
    }
}

/// The request body for `request`. Fails only for content Gemini cannot take (an OpenAI file id,
/// images in the system prompt, tool-call arguments that are not a JSON object, a tool result for a
/// call the conversation does not contain).
pub fn request_body(request: &ChatRequest, options: &RequestOptions) -> Result<Vec<u8>, RequestError> {
    let (system_instruction, contents) = convert_messages(&request.messages)?;
    let body = Body {
        system_instruction,
        contents,
        tools: tools(request),
        tool_config: tool_config(request),
        generation_config: generation_config(request, options),
    };
    serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(format!("cannot encode the request: {e}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolGroup<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<WirePart<'a>>,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<WirePart<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WirePart<'a> {
    #[serde(flatten)]
    data: PartData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'static str>,
}

impl<'a> WirePart<'a> {
    fn new(data: PartData<'a>) -> Self {
        Self { data, thought_signature: None }
    }

    fn is_function_response(&self) -> bool {
        matches!(self.data, PartData::FunctionResponse(_))
    }
}

/// The one member a part has; serialized as `{"text": ...}`, `{"inlineData": {...}}`, ...
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum PartData<'a> {
    Text(&'a str),
    InlineData(Blob<'a>),
    FileData(FileData<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'static str>,
    file_uri: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a RawValue,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: ResponseValue<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parts: Vec<PartData<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponseValue<'a> {
    Object(Box<RawValue>),
    Output { output: Cow<'a, str> },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolGroup<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    /// Nothing to send: the member is left out rather than sent as `{}`.
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

/// One group with every function; Gemini takes tools as groups of declarations.
fn tools(request: &ChatRequest) -> Vec<ToolGroup<'_>> {
    if request.tools.is_empty() {
        return Vec::new();
    }
    let function_declarations = request
        .tools
        .iter()
        .map(|tool| FunctionDeclaration {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters_json_schema: tool.parameters.as_deref(),
        })
        .collect();
    vec![ToolGroup { function_declarations }]
}

/// `functionCallingConfig` for the client's `tool_choice`; only sent with tools, as it means
/// nothing without them.
fn tool_config(request: &ChatRequest) -> Option<ToolConfig<'_>> {
    if request.tools.is_empty() {
        return None;
    }
    let (mode, allowed_function_names) = match request.tool_choice.as_ref()? {
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::None => ("NONE", None),
        ToolChoice::Required => ("ANY", None),
        ToolChoice::Named(name) => ("ANY", Some([name.as_str()])),
    };
    Some(ToolConfig { function_calling_config: FunctionCallingConfig { mode, allowed_function_names } })
}

fn generation_config<'a>(request: &'a ChatRequest, options: &RequestOptions) -> GenerationConfig<'a> {
    let (response_mime_type, response_json_schema) = response_format(request.response_format.as_ref());
    GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        max_output_tokens: request.max_tokens.or(options.default_max_tokens),
        stop_sequences: &request.stop,
        seed: request.seed,
        response_mime_type,
        response_json_schema,
        thinking_config: request.reasoning.map(thinking_config),
    }
}

fn response_format(format: Option<&ResponseFormat>) -> (Option<&'static str>, Option<&RawValue>) {
    match format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => (Some("application/json"), schema.as_deref()),
    }
}

fn thinking_config(reasoning: Reasoning) -> ThinkingConfig {
    let budget = match reasoning {
        Reasoning::Disabled => return ThinkingConfig { thinking_budget: 0, include_thoughts: None },
        Reasoning::Effort(effort) => effort_budget_tokens(effort),
        Reasoning::Budget(budget) => budget,
    };
    ThinkingConfig { thinking_budget: budget, include_thoughts: Some(true) }
}

/// The system instruction and the turns.
fn convert_messages(messages: &[Message]) -> Result<(Option<SystemInstruction<'_>>, Vec<Content<'_>>), RequestError> {
    let mut system: Vec<WirePart<'_>> = Vec::new();
    let mut contents: Vec<Content<'_>> = Vec::new();
    // Tool call id -> function name, the latest call with an id winning: clients reuse ids across
    // turns (the `call_<n>` ids this provider's answers carry restart at 0 in every answer).
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        match message {
            Message::System { content, .. } => system_parts(content, i, &mut system)?,
            Message::User { content } => push_content(&mut contents, "user", user_parts(content, i)?),
            Message::Assistant { content, tool_calls } => {
                let mut parts = assistant_parts(content, i)?;
                for (j, call) in tool_calls.iter().enumerate() {
                    let args = tool_args(&call.arguments).ok_or_else(|| bad_arguments(i, j))?;
                    call_names.insert(&call.id, &call.name);
                    let mut part = WirePart::new(PartData::FunctionCall(FunctionCall { name: &call.name, args }));
                    // Gemini wants the signature on the first call of a step only.
                    part.thought_signature = (j == 0).then_some(THOUGHT_SIGNATURE_SENTINEL);
                    parts.push(part);
                }
                push_content(&mut contents, "model", parts);
            }
            Message::Tool { tool_call_id, content } => {
                let name = call_names.get(tool_call_id.as_str()).ok_or_else(|| unknown_call(i))?;
                let part = WirePart::new(PartData::FunctionResponse(function_response(name, content, i)?));
                push_content(&mut contents, "user", vec![part]);
            }
        }
    }
    for content in contents.iter_mut().filter(|c| c.role == "user") {
        // Stable: responses keep their order, and so does the text after them.
        content.parts.sort_by_key(|part| !part.is_function_response());
    }
    let system_instruction = (!system.is_empty()).then_some(SystemInstruction { parts: system });
    Ok((system_instruction, contents))
}

/// Appends a turn, merging it into the previous one of the same role; empty turns vanish.
fn push_content<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, parts: Vec<WirePart<'a>>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => contents.push(Content { role, parts }),
    }
}

fn system_parts<'a>(content: &'a [Part], i: usize, out: &mut Vec<WirePart<'a>>) -> Result<(), RequestError> {
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => out.push(WirePart::new(PartData::Text(text))),
            _ => return Err(unsupported_part(i, j, "Gemini system instructions take text only")),
        }
    }
    Ok(())
}

fn user_parts(content: &[Part], i: usize) -> Result<Vec<WirePart<'_>>, RequestError> {
    let mut parts = Vec::with_capacity(content.len());
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => parts.push(WirePart::new(PartData::Text(text))),
            Part::Image(media) | Part::File { media, .. } => parts.push(WirePart::new(media_part(media, i, j)?)),
            _ => return Err(unsupported_part(i, j, "this part is only valid in assistant messages")),
        }
    }
    Ok(parts)
}

fn assistant_parts(content: &[Part], i: usize) -> Result<Vec<WirePart<'_>>, RequestError> {
    let mut parts = Vec::with_capacity(content.len() + 1);
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) | Part::Refusal(text) if text.is_empty() => {}
            Part::Text(text) | Part::Refusal(text) => parts.push(WirePart::new(PartData::Text(text))),
            // See the module doc: signatures cannot be told apart by provider.
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {}
            Part::Image(_) | Part::File { .. } => {
                return Err(unsupported_part(i, j, "Gemini model turns cannot carry images or files"));
            }
        }
    }
    Ok(parts)
}

/// A tool result: its text as the response (see the module doc), its media as parts.
fn function_response<'a>(name: &'a str, content: &'a [Part], i: usize) -> Result<FunctionResponse<'a>, RequestError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for (j, part) in content.iter().enumerate() {
        match part {
            Part::Text(text) => texts.push(text),
            Part::Image(media) | Part::File { media, .. } => parts.push(media_part(media, i, j)?),
            _ => return Err(unsupported_part(i, j, "tool results take text, images and files")),
        }
    }
    let text = match texts.as_slice() {
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(texts.concat()),
    };
    let response = match json_object(&text) {
        Some(object) => ResponseValue::Object(object),
        None => ResponseValue::Output { output: text },
    };
    Ok(FunctionResponse { name, response, parts })
}

/// `text` as a JSON object, if it is one.
fn json_object(text: &str) -> Option<Box<RawValue>> {
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    raw.get().starts_with('{').then(|| raw.to_owned())
}

fn media_part(media: &Media, i: usize, j: usize) -> Result<PartData<'_>, RequestError> {
    match media {
        Media::Url(url) => Ok(PartData::FileData(FileData { mime_type: media_type_of_url(url), file_uri: url })),
        Media::Base64 { media_type, data } => Ok(PartData::InlineData(Blob { mime_type: media_type, data })),
        Media::FileId(_) => Err(unsupported_part(i, j, "file ids belong to another provider; send the file inline")),
    }
}

/// The media type of a URL's file extension, for the kinds of files OpenAI clients send.
fn media_type_of_url(url: &str) -> Option<&'static str> {
    const TYPES: [(&str, &str); 9] = [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("heic", "image/heic"),
        ("heif", "image/heif"),
        ("pdf", "application/pdf"),
        ("txt", "text/plain"),
    ];
    let path = url.split(['?', '#']).next()?;
    let (_, extension) = path.rsplit_once('/')?.1.rsplit_once('.')?;
    TYPES.iter().find(|(ext, _)| ext.eq_ignore_ascii_case(extension)).map(|(_, media_type)| *media_type)
}

/// Parses a constant JSON text; the texts are literals, so this cannot fail.
fn raw_constant(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).unwrap_or_else(|_| unreachable!("constant JSON literal"))
}

/// The arguments as a JSON object for `functionCall.args`; blank arguments mean no arguments.
fn tool_args(arguments: &str) -> Option<&RawValue> {
    if arguments.trim().is_empty() {
        return Some(raw_constant("{}"));
    }
    let raw: &RawValue = serde_json::from_str(arguments).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

fn bad_arguments(i: usize, j: usize) -> RequestError {
    RequestError::invalid(
        format!("messages[{i}].tool_calls[{j}].function.arguments"),
        "tool call arguments must be a JSON object to be sent to Gemini",
    )
}

fn unknown_call(i: usize) -> RequestError {
    RequestError::invalid(
        format!("messages[{i}].tool_call_id"),
        "no earlier assistant message has a tool call with this id; Gemini needs the function's name",
    )
}

fn unsupported_part(i: usize, j: usize, why: &str) -> RequestError {
    RequestError::unsupported(format!("messages[{i}].content[{j}]"), why)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{Tool as ChatTool, ToolCall};

    fn body_with(request: &ChatRequest, options: RequestOptions) -> Value {
        serde_json::from_slice(&request_body(request, &options).unwrap()).unwrap()
    }

    fn body(request: &ChatRequest) -> Value {
        body_with(request, RequestOptions::default())
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

    fn call(id: &str, name: &str) -> ToolCall {
        ToolCall { id: id.into(), name: name.into(), arguments: String::new() }
    }

    fn tool_result(id: &str, text: &str) -> Message {
        Message::Tool { tool_call_id: id.into(), content: vec![Part::Text(text.into())] }
    }

    #[test]
    fn minimal_request() {
        assert_eq!(
            body(&request(vec![user("hi")])),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );
    }

    #[test]
    fn default_max_tokens_applies_only_without_the_clients() {
        let options = RequestOptions { default_max_tokens: Some(4096) };
        assert_eq!(body_with(&request(vec![user("x")]), options)["generationConfig"], json!({"maxOutputTokens": 4096}));
        let own = ChatRequest { max_tokens: Some(10), ..request(vec![user("x")]) };
        assert_eq!(body_with(&own, options)["generationConfig"], json!({"maxOutputTokens": 10}));
    }

    #[test]
    fn system_messages_become_the_instruction_and_roles_merge() {
        let r = request(vec![
            Message::System { content: vec![Part::Text("a".into())], developer: false },
            user("one"),
            Message::System { content: vec![Part::Text("b".into())], developer: true },
            user("two"),
            Message::Assistant { content: vec![Part::Text(String::new())], tool_calls: vec![] },
            Message::Assistant { content: vec![Part::Refusal("no".into())], tool_calls: vec![] },
        ]);
        let b = body(&r);
        assert_eq!(b["systemInstruction"], json!({"parts": [{"text": "a"}, {"text": "b"}]}));
        assert_eq!(
            b["contents"],
            json!([{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
                   {"role": "model", "parts": [{"text": "no"}]}])
        );
    }

    #[test]
    fn tool_results_are_named_after_their_calls_and_come_first() {
        let r = ChatRequest {
            tools: vec![tool("f"), tool("g")],
            ..request(vec![
                user("go"),
                Message::Assistant { content: vec![], tool_calls: vec![call("call_0", "f"), call("call_1", "g")] },
                user("also this"),
                tool_result("call_0", r#"{"temp": 20}"#),
                tool_result("call_1", "[1, 2]"),
                Message::Assistant { content: vec![], tool_calls: vec![call("call_0", "g")] },
                Message::Tool { tool_call_id: "call_0".into(), content: vec![] },
            ])
        };
        assert_eq!(
            body(&r)["contents"],
            json!([
                {"role": "user", "parts": [{"text": "go"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"},
                    {"functionCall": {"name": "g", "args": {}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "f", "response": {"temp": 20}}},
                    {"functionResponse": {"name": "g", "response": {"output": "[1, 2]"}}},
                    {"text": "also this"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "g", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "g", "response": {"output": ""}}}]}
            ])
        );
    }

    #[test]
    fn images_in_tool_results_become_parts() {
        let r = request(vec![
            Message::Assistant { content: vec![], tool_calls: vec![call("c", "shot")] },
            Message::Tool {
                tool_call_id: "c".into(),
                content: vec![
                    Part::Text("two images".into()),
                    Part::Image(Media::Base64 { media_type: "image/png".into(), data: "AAAA".into() }),
                    Part::Image(Media::Url("https://x.test/a.JPG?s=1".into())),
                ],
            },
        ]);
        assert_eq!(
            body(&r)["contents"][1]["parts"][0],
            json!({"functionResponse": {"name": "shot", "response": {"output": "two images"}, "parts": [
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a.JPG?s=1"}}]}})
        );
    }

    #[test]
    fn tool_choice_mapping() {
        let with = |choice: Option<ToolChoice>| {
            let r = ChatRequest { tools: vec![tool("f")], tool_choice: choice, ..request(vec![user("x")]) };
            body(&r).get("toolConfig").cloned()
        };
        let mode = |mode: &str| Some(json!({"functionCallingConfig": {"mode": mode}}));
        assert_eq!(with(None), None);
        assert_eq!(with(Some(ToolChoice::Auto)), mode("AUTO"));
        assert_eq!(with(Some(ToolChoice::None)), mode("NONE"));
        assert_eq!(with(Some(ToolChoice::Required)), mode("ANY"));
        assert_eq!(
            with(Some(ToolChoice::Named("f".into()))),
            Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}))
        );
        let no_tools = ChatRequest { tool_choice: Some(ToolChoice::Required), ..request(vec![user("x")]) };
        assert!(body(&no_tools).get("toolConfig").is_none());
    }

    #[test]
    fn reasoning_maps_to_thinking_config() {
        let with = |reasoning: Option<Reasoning>| {
            body(&ChatRequest { reasoning, ..request(vec![user("x")]) })
                .pointer("/generationConfig/thinkingConfig")
                .cloned()
        };
        assert_eq!(with(None), None);
        assert_eq!(with(Some(Reasoning::Disabled)), Some(json!({"thinkingBudget": 0})));
        assert_eq!(with(Some(Reasoning::Budget(2000))), Some(json!({"thinkingBudget": 2000, "includeThoughts": true})));
        assert_eq!(
            with(Some(Reasoning::Effort(Effort::Medium))),
            Some(json!({"thinkingBudget": 8192, "includeThoughts": true}))
        );
    }

    #[test]
    fn response_formats() {
        let with = |format: ResponseFormat| {
            body(&ChatRequest { response_format: Some(format), ..request(vec![user("x")]) })
                .get("generationConfig")
                .cloned()
        };
        assert_eq!(with(ResponseFormat::Text), None);
        assert_eq!(with(ResponseFormat::JsonObject), Some(json!({"responseMimeType": "application/json"})));
        let schema: Box<RawValue> =
            RawValue::from_string(r#"{"type":"object","additionalProperties":false}"#.into()).unwrap();
        assert_eq!(
            with(ResponseFormat::JsonSchema { name: "n".into(), schema: Some(schema), strict: Some(true) }),
            Some(json!({"responseMimeType": "application/json",
                        "responseJsonSchema": {"type": "object", "additionalProperties": false}}))
        );
    }

    #[test]
    fn unsupported_content_is_named() {
        let file_id = request(vec![Message::User {
            content: vec![Part::Text("x".into()), Part::File { media: Media::FileId("file-1".into()), filename: None }],
        }]);
        let err = request_body(&file_id, &RequestOptions::default()).unwrap_err();
        assert_eq!(err.param(), Some("messages[0].content[1]"));
        let image_system = request(vec![Message::System {
            content: vec![Part::Image(Media::Url("https://x/y.png".into()))],
            developer: false,
        }]);
        assert!(matches!(
            request_body(&image_system, &RequestOptions::default()),
            Err(RequestError::Unsupported { .. })
        ));
        let bad_args = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![],
                tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "[1]".into() }],
            },
        ]);
        let err = request_body(&bad_args, &RequestOptions::default()).unwrap_err();
        assert_eq!(err.param(), Some("messages[1].tool_calls[0].function.arguments"));
        let orphan = request(vec![user("x"), tool_result("nope", "1")]);
        let err = request_body(&orphan, &RequestOptions::default()).unwrap_err();
        assert_eq!(err.param(), Some("messages[1].tool_call_id"));
    }

    #[test]
    fn reasoning_is_not_sent_back() {
        let r = request(vec![
            user("x"),
            Message::Assistant {
                content: vec![
                    Part::Reasoning { text: "hmm".into(), signature: Some("sig".into()) },
                    Part::RedactedReasoning { data: "opaque".into() },
                    Part::Text("answer".into()),
                ],
                tool_calls: vec![],
            },
        ]);
        assert_eq!(body(&r)["contents"][1], json!({"role": "model", "parts": [{"text": "answer"}]}));
    }

    #[test]
    fn media_types_from_urls() {
        assert_eq!(media_type_of_url("https://x.test/a/b.png"), Some("image/png"));
        assert_eq!(media_type_of_url("https://x.test/doc.PDF#page=2"), Some("application/pdf"));
        assert_eq!(media_type_of_url("https://x.test/image"), None);
        assert_eq!(media_type_of_url("https://x.test"), None);
        assert_eq!(media_type_of_url("https://x.png/"), None);
        assert_eq!(media_type_of_url("gs://bucket/v.mp4"), None);
    }
}

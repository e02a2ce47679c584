//! OpenAI chat-completions request body -> internal `ChatRequest`, with errors that name the
//! offending `param` the way OpenAI does (`messages[1].content[0].image_url`).
//!
//! Parsing is typed but lazy: the top level is read as (key, raw JSON) pairs, and each known field
//! is parsed on its own, so an error knows its field and unknown fields are kept verbatim in
//! `extra` without building a DOM. Duplicate keys are rejected (parsers disagree on which wins).
//!
//! Accepted beyond OpenAI's schema: an Anthropic-style `thinking` object
//! (`{"type":"enabled","budget_tokens":N}` or `{"type":"disabled"}`), which wins over
//! `reasoning_effort`, so OpenAI-format clients can set an exact budget. Rejected by name rather
//! than silently dropped: `n` above 1 (the internal model has one choice), the legacy
//! `functions`/`function_call`, audio input, non-function tools, and base64 data URLs that are not
//! base64.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::request_json::{
    check_parts, effort_named, first_byte, media_from_data_url, media_from_url, structured, top_level_members, typed,
};

use crate::chat::{
    ChatRequest, ExtraField, Media, Message, Part, Reasoning, RequestError, ResponseFormat, Tool, ToolCall, ToolChoice,
};

/// Parses a chat-completions body.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let mut top = TopLevel::default();
    for (name, raw) in &top_level_members(body)? {
        top.apply(name, raw)?;
    }
    top.finish()
}

/// The request being assembled, with the fields whose meaning depends on others.
#[derive(Default)]
struct TopLevel {
    request: ChatRequest,
    model: Option<String>,
    messages: Option<Vec<Message>>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    effort: Option<Reasoning>,
    thinking: Option<Reasoning>,
}

impl TopLevel {
    fn apply(&mut self, name: &str, raw: &RawValue) -> Result<(), RequestError> {
        let r = &mut self.request;
        match name {
            "model" => self.model = Some(typed(raw, name, "a string")?),
            "messages" => self.messages = Some(parse_messages(raw)?),
            "tools" => r.tools = parse_tools(raw)?,
            "tool_choice" => r.tool_choice = parse_tool_choice(raw)?,
            "parallel_tool_calls" => r.parallel_tool_calls = typed(raw, name, "a boolean")?,
            "max_tokens" => self.max_tokens = typed(raw, name, "a non-negative integer")?,
            "max_completion_tokens" => self.max_completion_tokens = typed(raw, name, "a non-negative integer")?,
            "temperature" => r.temperature = typed(raw, name, "a number")?,
            "top_p" => r.top_p = typed(raw, name, "a number")?,
            "stop" => r.stop = parse_stop(raw)?,
            "seed" => r.seed = typed(raw, name, "an integer")?,
            "response_format" => r.response_format = parse_response_format(raw)?,
            "reasoning_effort" => self.effort = parse_effort(raw)?,
            "thinking" => self.thinking = parse_thinking(raw)?,
            "stream" => r.stream = typed::<Option<bool>>(raw, name, "a boolean")?.unwrap_or(false),
            "stream_options" => r.include_usage = parse_stream_options(raw)?,
            "user" => r.user = typed(raw, name, "a string")?,
            "n" => check_n(raw)?,
            "functions" | "function_call" => {
                return Err(RequestError::unsupported(
                    name,
                    "the legacy `functions` API is not supported; use `tools`",
                ));
            }
            _ => r.extra.push(ExtraField { name: name.to_owned(), value: raw.to_owned() }),
        }
        Ok(())
    }

    fn finish(self) -> Result<ChatRequest, RequestError> {
        let mut request = self.request;
        request.model =
            self.model.ok_or_else(|| RequestError::invalid("model", "you must provide a model parameter"))?;
        request.messages = self.messages.ok_or_else(|| RequestError::invalid("messages", "`messages` is required"))?;
        // The newer name wins: OpenAI deprecated `max_tokens` in its favour.
        request.max_tokens = self.max_completion_tokens.or(self.max_tokens);
        request.reasoning = self.thinking.or(self.effort);
        Ok(request)
    }
}

fn check_n(raw: &RawValue) -> Result<(), RequestError> {
    match typed::<Option<u64>>(raw, "n", "a positive integer")? {
        None | Some(1) => Ok(()),
        Some(_) => Err(RequestError::unsupported("n", "this gateway returns one choice per request; `n` must be 1")),
    }
}

fn parse_stop(raw: &RawValue) -> Result<Vec<String>, RequestError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stop {
        One(String),
        Many(Vec<String>),
    }
    Ok(match typed::<Option<Stop>>(raw, "stop", "a string or an array of strings")? {
        None => Vec::new(),
        Some(Stop::One(stop)) => vec![stop],
        Some(Stop::Many(stops)) => stops,
    })
}

fn parse_stream_options(raw: &RawValue) -> Result<bool, RequestError> {
    #[derive(Deserialize)]
    struct StreamOptions {
        include_usage: Option<bool>,
    }
    let options: Option<StreamOptions> = structured(raw, "stream_options")?;
    Ok(options.and_then(|o| o.include_usage).unwrap_or(false))
}

fn parse_effort(raw: &RawValue) -> Result<Option<Reasoning>, RequestError> {
    let param = "reasoning_effort";
    let Some(effort) = typed::<Option<String>>(raw, param, "a string")? else { return Ok(None) };
    effort_named(&effort, param).map(Some)
}

fn parse_thinking(raw: &RawValue) -> Result<Option<Reasoning>, RequestError> {
    #[derive(Deserialize)]
    struct Thinking {
        #[serde(rename = "type")]
        kind: String,
        budget_tokens: Option<u32>,
    }
    let Some(thinking) = structured::<Option<Thinking>>(raw, "thinking")? else { return Ok(None) };
    match (thinking.kind.as_str(), thinking.budget_tokens) {
        ("disabled", _) => Ok(Some(Reasoning::Disabled)),
        ("enabled", Some(budget)) => Ok(Some(Reasoning::Budget(budget))),
        ("enabled", None) => {
            Err(RequestError::invalid("thinking.budget_tokens", "`thinking.budget_tokens` is required"))
        }
        (other, _) => Err(RequestError::invalid("thinking.type", format!("unknown `thinking.type` `{other}`"))),
    }
}

fn parse_response_format(raw: &RawValue) -> Result<Option<ResponseFormat>, RequestError> {
    #[derive(Deserialize)]
    struct Format {
        #[serde(rename = "type")]
        kind: String,
        json_schema: Option<JsonSchema>,
    }
    #[derive(Deserialize)]
    struct JsonSchema {
        name: String,
        schema: Option<Box<RawValue>>,
        strict: Option<bool>,
    }
    let Some(format) = structured::<Option<Format>>(raw, "response_format")? else { return Ok(None) };
    Ok(Some(match (format.kind.as_str(), format.json_schema) {
        ("text", _) => ResponseFormat::Text,
        ("json_object", _) => ResponseFormat::JsonObject,
        ("json_schema", Some(s)) => ResponseFormat::JsonSchema { name: s.name, schema: s.schema, strict: s.strict },
        ("json_schema", None) => {
            return Err(RequestError::invalid("response_format.json_schema", "`json_schema` is required"));
        }
        (other, _) => {
            return Err(RequestError::invalid("response_format.type", format!("unknown `response_format` `{other}`")));
        }
    }))
}

fn parse_tools(raw: &RawValue) -> Result<Vec<Tool>, RequestError> {
    #[derive(Deserialize)]
    struct WireTool {
        #[serde(rename = "type")]
        kind: String,
        function: Option<Function>,
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
        let tool: WireTool = structured(item, &param)?;
        let function = match (tool.kind.as_str(), tool.function) {
            ("function", Some(function)) => function,
            ("function", None) => {
                return Err(RequestError::invalid(format!("{param}.function"), "`function` is required"));
            }
            (other, _) => {
                return Err(RequestError::unsupported(
                    format!("{param}.type"),
                    format!("`{other}` tools are not supported"),
                ));
            }
        };
        let Function { name, description, parameters, strict } = function;
        tools.push(Tool { name, description, parameters, strict });
    }
    Ok(tools)
}

fn parse_tool_choice(raw: &RawValue) -> Result<Option<ToolChoice>, RequestError> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "type")]
        kind: String,
        function: Option<NamedFunction>,
    }
    #[derive(Deserialize)]
    struct NamedFunction {
        name: String,
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
            match (named.kind.as_str(), named.function) {
                ("function", Some(f)) => Ok(Some(ToolChoice::Named(f.name))),
                ("function", None) => Err(RequestError::invalid("tool_choice.function", "`function` is required")),
                (other, _) => Err(RequestError::unsupported(
                    "tool_choice.type",
                    format!("`tool_choice` of type `{other}` is not supported"),
                )),
            }
        }
    }
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    role: String,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<Vec<&'a RawValue>>,
    tool_call_id: Option<String>,
    refusal: Option<String>,
}

fn parse_messages(raw: &RawValue) -> Result<Vec<Message>, RequestError> {
    let items: Vec<&RawValue> = typed(raw, "messages", "an array of messages")?;
    if items.is_empty() {
        return Err(RequestError::invalid("messages", "`messages` must contain at least one message"));
    }
    items.into_iter().enumerate().map(|(i, item)| parse_message(item, i)).collect()
}

fn parse_message(raw: &RawValue, i: usize) -> Result<Message, RequestError> {
    let param = format!("messages[{i}]");
    let wire: WireMessage<'_> = structured(raw, &param)?;
    let content_param = format!("{param}.content");
    let content = parse_content(wire.content, &content_param)?;
    let role = wire.role.as_str();
    check_parts(role, &content, &content_param)?;
    Ok(match role {
        "system" => Message::System { content, developer: false },
        "developer" => Message::System { content, developer: true },
        "user" => Message::User { content },
        "assistant" => {
            let mut content = content;
            content.extend(wire.refusal.filter(|r| !r.is_empty()).map(Part::Refusal));
            let tool_calls = parse_tool_calls(wire.tool_calls.unwrap_or_default(), &param)?;
            Message::Assistant { content, tool_calls }
        }
        "tool" => {
            let tool_call_id = wire.tool_call_id.ok_or_else(|| {
                RequestError::invalid(format!("{param}.tool_call_id"), "tool messages need a `tool_call_id`")
            })?;
            Message::Tool { tool_call_id, content }
        }
        "function" => return Err(RequestError::unsupported(format!("{param}.role"), "use `tool` messages")),
        other => return Err(RequestError::invalid(format!("{param}.role"), format!("unknown role `{other}`"))),
    })
}

fn parse_content(raw: Option<&RawValue>, param: &str) -> Result<Vec<Part>, RequestError> {
    let expected = "a string or an array of content parts";
    let Some(raw) = raw else { return Ok(Vec::new()) };
    match first_byte(raw) {
        Some(b'n') => Ok(Vec::new()),
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
    image_url: Option<WireImageUrl>,
    file: Option<WireFile>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
}

#[derive(Deserialize)]
struct WireFile {
    file_data: Option<String>,
    file_id: Option<String>,
    filename: Option<String>,
}

fn parse_part(raw: &RawValue, param: &str) -> Result<Part, RequestError> {
    let part: WirePart = structured(raw, param)?;
    let missing = |field: &str| RequestError::invalid(format!("{param}.{field}"), format!("`{field}` is required"));
    match part.kind.as_str() {
        "text" => part.text.map(Part::Text).ok_or_else(|| missing("text")),
        "image_url" => {
            let url = part.image_url.ok_or_else(|| missing("image_url"))?.url;
            Ok(Part::Image(media_from_url(url, &format!("{param}.image_url.url"))?))
        }
        "file" => parse_file(part.file.ok_or_else(|| missing("file"))?, param),
        "refusal" => part.refusal.map(Part::Refusal).ok_or_else(|| missing("refusal")),
        "input_audio" => Err(RequestError::unsupported(param, "audio input is not supported")),
        other => Err(RequestError::invalid(format!("{param}.type"), format!("unknown content part type `{other}`"))),
    }
}

fn parse_file(file: WireFile, param: &str) -> Result<Part, RequestError> {
    let media = match (file.file_data, file.file_id) {
        (Some(data), _) => media_from_data_url(data, &format!("{param}.file.file_data"))?,
        (None, Some(id)) => Media::FileId(id),
        (None, None) => {
            return Err(RequestError::invalid(format!("{param}.file"), "`file_data` or `file_id` is required"));
        }
    };
    Ok(Part::File { media, filename: file.filename })
}

fn parse_tool_calls(items: Vec<&RawValue>, message_param: &str) -> Result<Vec<ToolCall>, RequestError> {
    #[derive(Deserialize)]
    struct WireCall {
        id: String,
        #[serde(rename = "type")]
        kind: Option<String>,
        function: Function,
    }
    #[derive(Deserialize)]
    struct Function {
        name: String,
        #[serde(default)]
        arguments: String,
    }
    let mut calls = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let param = format!("{message_param}.tool_calls[{j}]");
        let call: WireCall = structured(item, &param)?;
        if let Some(kind) = call.kind.filter(|k| k != "function") {
            return Err(RequestError::unsupported(
                format!("{param}.type"),
                format!("`{kind}` tool calls are not supported"),
            ));
        }
        calls.push(ToolCall { id: call.id, name: call.function.name, arguments: call.function.arguments });
    }
    Ok(calls)
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

    #[test]
    fn minimal_request() {
        let r = parse(r#"{"model":"gw","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(r.model, "gw");
        assert_eq!(r.messages, vec![Message::User { content: vec![Part::Text("hi".into())] }]);
        assert!(!r.stream && !r.include_usage && r.extra.is_empty());
    }

    #[test]
    fn scalar_fields() {
        let r = parse(
            r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"stream":true,
                "stream_options":{"include_usage":true},"max_tokens":5,"max_completion_tokens":7,
                "temperature":0.5,"top_p":0.9,"stop":"END","seed":42,"user":"u1","n":1,
                "parallel_tool_calls":false,"reasoning_effort":"low","logprobs":true,"metadata":{"a":"b"}}"#,
        )
        .unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!((r.temperature, r.top_p, r.seed), (Some(0.5), Some(0.9), Some(42)));
        assert_eq!(r.stop, vec!["END".to_owned()]);
        assert_eq!(r.user.as_deref(), Some("u1"));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::Low)));
        let extra: Vec<(&str, &str)> = r.extra.iter().map(|f| (f.name.as_str(), f.value.get())).collect();
        assert_eq!(extra, vec![("logprobs", "true"), ("metadata", r#"{"a":"b"}"#)]);
    }

    #[test]
    fn thinking_extension_wins_over_effort() {
        let r = parse(
            r#"{"thinking":{"type":"enabled","budget_tokens":2000},"reasoning_effort":"high",
                "model":"gw","messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(r.reasoning, Some(Reasoning::Budget(2000)));
    }

    #[test]
    fn content_parts_and_media() {
        let r = parse(
            r#"{"model":"gw","messages":[{"role":"user","content":[
                {"type":"text","text":"look"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR","detail":"high"}},
                {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
                {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBER","filename":"a.pdf"}},
                {"type":"file","file":{"file_id":"file-abc"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages,
            vec![Message::User {
                content: vec![
                    Part::Text("look".into()),
                    Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }),
                    Part::Image(Media::Url("https://example.com/cat.jpg".into())),
                    Part::File {
                        media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() },
                        filename: Some("a.pdf".into()),
                    },
                    Part::File { media: Media::FileId("file-abc".into()), filename: None },
                ],
            }]
        );
    }

    #[test]
    fn assistant_tool_calls_tool_results_and_refusals() {
        let r = parse(
            r#"{"model":"gw","messages":[
                {"role":"developer","content":[{"type":"text","text":"be brief"}]},
                {"role":"assistant","content":null,"refusal":"no","tool_calls":[
                    {"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
                {"role":"tool","tool_call_id":"c1","content":"42"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages,
            vec![
                Message::System { content: vec![Part::Text("be brief".into())], developer: true },
                Message::Assistant {
                    content: vec![Part::Refusal("no".into())],
                    tool_calls: vec![ToolCall { id: "c1".into(), name: "f".into(), arguments: r#"{"a":1}"#.into() }],
                },
                Message::Tool { tool_call_id: "c1".into(), content: vec![Part::Text("42".into())] },
            ]
        );
    }

    #[test]
    fn tools_choice_and_format() {
        let r = parse(
            r#"{"model":"gw","messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"function","function":{"name":"f","description":"d",
                          "parameters":{"type":"object","properties":{"z":{},"a":{}}},"strict":true}}],
                "tool_choice":{"type":"function","function":{"name":"f"}},
                "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}}}"#,
        )
        .unwrap();
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tools[0].parameters.as_ref().unwrap().get(), r#"{"type":"object","properties":{"z":{},"a":{}}}"#);
        assert_eq!(r.tools[0].strict, Some(true));
        assert_eq!(r.tool_choice, Some(ToolChoice::Named("f".into())));
        assert!(matches!(&r.response_format, Some(ResponseFormat::JsonSchema { name, .. }) if name == "s"));
        for (choice, expected) in
            [("\"auto\"", Some(ToolChoice::Auto)), ("\"required\"", Some(ToolChoice::Required)), ("null", None)]
        {
            let json =
                format!(r#"{{"model":"gw","messages":[{{"role":"user","content":"x"}}],"tool_choice":{choice}}}"#);
            assert_eq!(parse(&json).unwrap().tool_choice, expected);
        }
    }

    #[test]
    fn errors_name_the_param() {
        let cases = [
            (r#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (r#"{"model":"gw"}"#, "messages"),
            (r#"{"model":"gw","messages":[]}"#, "messages"),
            (r#"{"model":1,"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (r#"{"model":"gw","model":"gw","messages":[{"role":"user","content":"x"}]}"#, "model"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, "temperature"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#, "max_tokens"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"n":2}"#, "n"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"functions":[]}"#, "functions"),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"},{"content":"x"}]}"#, "messages[1]"),
            (r#"{"model":"gw","messages":[{"role":"robot","content":"x"}]}"#, "messages[0].role"),
            (r#"{"model":"gw","messages":[{"role":"tool","content":"x"}]}"#, "messages[0].tool_call_id"),
            (r#"{"model":"gw","messages":[{"role":"user","content":7}]}"#, "messages[0].content"),
            (
                r#"{"model":"gw","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"video"}]}]}"#,
                "messages[0].content[1].type",
            ),
            (
                r#"{"model":"gw","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"{"model":"gw","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"{"model":"gw","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}"#,
                "messages[0].content[0]",
            ),
            (
                r#"{"model":"gw","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]}"#,
                "messages[0].tool_calls[0].type",
            ),
            (
                r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom"}]}"#,
                "tools[0].type",
            ),
            (r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}"#, "tool_choice"),
            (
                r#"{"model":"gw","messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}"#,
                "reasoning_effort",
            ),
        ];
        for (json, param) in cases {
            assert_eq!(param_of(json).as_deref(), Some(param), "{json}");
        }
        assert!(matches!(parse("[1]"), Err(RequestError::InvalidJson(_))));
        assert!(matches!(parse("{\"model\":"), Err(RequestError::InvalidJson(_))));
    }
}

//! Extracts what routing needs from a chat request body (`model`, `stream`) without building a DOM,
//! and swaps the model name for the provider's.
//!
//! The whole body is still validated as JSON: a gateway that forwards malformed JSON would hand the
//! provider a request it never checked, and duplicate `model` keys (which parsers resolve differently)
//! are rejected for the same reason.
//!
//! Parser: `json_check::visit_members`, one pass that validates the whole body (nesting bounded, no
//! recursion) and notes where the top-level members are. It replaced sonic-rs into a probe struct
//! after a separate depth check (sonic-rs recurses): with the usage body read the same way, a proxied
//! 1 KB request fell from 55.0k to 49.9k instructions in all (loadtest/instructions; README,
//! "Benchmarks"). sonic-rs still
//! reads the small sub-values (`stream_options`, `providerOptions`, `metadata`) once they are known
//! to be valid and shallow.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;

use crate::error::{ErrorKind, GatewayError};
use crate::http::write::RequestBody;
use crate::json_check;
use crate::routing::RoutingOptions;

/// The routing-relevant fields of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFields<'a> {
    /// The model the client named: the body's own bytes unless written with escapes.
    pub model: Cow<'a, str>,
    /// Byte range of the model's JSON string token, quotes included.
    pub model_span: Range<usize>,
    pub stream: bool,
    /// `stream_options.include_usage`: the client wants usage (and gets cost) at the end of a stream.
    pub include_usage: bool,
    /// Routing options from `providerOptions.gateway`.
    pub options: RoutingOptions,
    /// The most output tokens the request allows (`max_tokens`, `max_completion_tokens` or the
    /// Responses API's `max_output_tokens`), for reserving against token limits and budgets.
    pub max_tokens: Option<u64>,
    /// Byte range of the whole `"providerOptions": {...}` member, with one adjacent comma: a gateway
    /// field the provider must not see.
    pub provider_options_span: Option<Range<usize>>,
    /// The end user, for the access log and history: `providerOptions.gateway.user`, else OpenAI's
    /// `user`, else Anthropic's `metadata.user_id` (a non-string is left for the provider to refuse).
    pub user: Option<String>,
    /// `providerOptions.gateway.tags`.
    pub tags: Vec<String>,
}

/// Where the top-level members routing reads are in the body (their raw JSON values).
#[derive(Default)]
struct Probe<'a> {
    body: &'a [u8],
    model: Option<Range<usize>>,
    stream: Option<Range<usize>>,
    provider_options: Option<Range<usize>>,
    stream_options: Option<Range<usize>>,
    user: Option<Range<usize>>,
    metadata: Option<Range<usize>>,
    max_tokens: Option<Range<usize>>,
    max_completion_tokens: Option<Range<usize>>,
    max_output_tokens: Option<Range<usize>>,
    /// A key read twice: parsers disagree on which one wins, so the request is refused.
    duplicate: Option<&'static str>,
}

impl<'a> Probe<'a> {
    /// Reads `body` in one pass: it must be JSON (nesting bounded) and an object; the members routing
    /// needs are noted. Keys are compared as the provider's parser would read them: a key written with
    /// escapes (`"mod\u0065l"`) is decoded first, so it cannot smuggle a second `model` past the
    /// gateway.
    fn read(body: &'a [u8]) -> Result<Probe<'a>, GatewayError> {
        let mut probe = Probe { body, ..Probe::default() };
        json_check::visit_members(body, |key, value| probe.note(key, value)).map_err(|fault| {
            GatewayError::new(ErrorKind::InvalidJson, format!("request body is not valid JSON: {fault}"))
        })?;
        if let Some(key) = probe.duplicate {
            return Err(GatewayError::new(
                ErrorKind::InvalidJson,
                format!("duplicate key `{key}` in the request body"),
            ));
        }
        Ok(probe)
    }

    fn note(&mut self, key: &[u8], value: Range<usize>) {
        // Most keys are written plainly: their bytes between the quotes are the name. Only a key
        // that names no member as written is searched for an escape (a key with one cannot match).
        let plain = &key[1..key.len() - 1];
        let noted_twice = match self.slot(plain) {
            Some((name, slot)) => slot.replace(value).is_some().then_some(name),
            None if plain.contains(&b'\\') => {
                let decoded = serde_json::from_slice::<String>(key).unwrap_or_default();
                self.slot(decoded.as_bytes()).and_then(|(name, slot)| slot.replace(value).is_some().then_some(name))
            }
            None => None,
        };
        if let Some(name) = noted_twice {
            self.duplicate.get_or_insert(name);
        }
    }

    /// Where the member called `name` (decoded) is noted, if routing reads it.
    fn slot(&mut self, name: &[u8]) -> Option<(&'static str, &mut Option<Range<usize>>)> {
        Some(match name {
            b"model" => ("model", &mut self.model),
            b"providerOptions" => ("providerOptions", &mut self.provider_options),
            b"stream" => ("stream", &mut self.stream),
            b"stream_options" => ("stream_options", &mut self.stream_options),
            b"user" => ("user", &mut self.user),
            b"metadata" => ("metadata", &mut self.metadata),
            b"max_tokens" => ("max_tokens", &mut self.max_tokens),
            b"max_completion_tokens" => ("max_completion_tokens", &mut self.max_completion_tokens),
            b"max_output_tokens" => ("max_output_tokens", &mut self.max_output_tokens),
            _ => return None,
        })
    }

    /// A noted member's raw value as text. Only members read are turned into text (never the large
    /// `messages`). Validated: non-ASCII bytes occur only inside strings, and were checked there, so
    /// the conversion cannot fail.
    fn text(&self, member: &Option<Range<usize>>) -> Option<&'a str> {
        let range = member.clone()?;
        Some(json_check::text(&self.body[range]).unwrap_or_default())
    }
}

/// The text of a (validated) JSON value when it is a string. A model id seldom has an escape, and
/// then its bytes between the quotes are the text, borrowed: no decoder, no copy.
fn model_text(value: &[u8]) -> Option<Cow<'_, str>> {
    match value {
        [b'"', text @ .., b'"'] if !text.contains(&b'\\') => json_check::text(text).map(Cow::Borrowed),
        _ => serde_json::from_slice::<String>(value).ok().map(Cow::Owned),
    }
}

/// Parses `body`, requiring a JSON object with a string `model` and an optional boolean `stream`.
pub fn extract(body: &[u8]) -> Result<RouteFields<'_>, GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::new(ErrorKind::InvalidJson, "request body must be a JSON object"));
    }
    let probe = Probe::read(body)?;
    let model_span = probe.model.clone().ok_or_else(|| {
        GatewayError::new(ErrorKind::InvalidField, "you must provide a model parameter").with_param("model")
    })?;
    let model = model_text(&body[model_span.clone()])
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidField, "`model` must be a string").with_param("model"))?;
    let stream = match probe.text(&probe.stream) {
        None | Some("null") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(GatewayError::new(ErrorKind::InvalidField, "`stream` must be a boolean").with_param("stream"));
        }
    };
    let provider_options = probe.text(&probe.provider_options);
    let (options, provider_options_span) = match (provider_options, probe.provider_options.clone()) {
        (Some(raw), Some(value)) => {
            let options = RoutingOptions::from_provider_options(raw)
                .map_err(|why| GatewayError::new(ErrorKind::InvalidField, why).with_param("providerOptions"))?;
            let span = member_span(body, value, b"\"providerOptions\"").ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidField, "`providerOptions` must be spelled without escapes")
                    .with_param("providerOptions")
            })?;
            (options, Some(span))
        }
        _ => (RoutingOptions::default(), None),
    };
    // Sub-values below are already validated and bounded in depth, so sonic-rs may read them.
    let include_usage = probe
        .text(&probe.stream_options)
        .is_some_and(|raw| sonic_rs::get(raw, &["include_usage"]).is_ok_and(|v| v.as_raw_str() == "true"));
    let (gateway_user, tags) = provider_options.map(attribution).unwrap_or_default();
    let metadata_user = || {
        let metadata = probe.text(&probe.metadata)?;
        sonic_rs::get(metadata, &["user_id"]).ok().and_then(|v| sonic_rs::from_str(v.as_raw_str()).ok())
    };
    let user = gateway_user
        .or_else(|| probe.text(&probe.user).and_then(|raw| sonic_rs::from_str(raw).ok()))
        .or_else(metadata_user);
    // A limit that is not a whole number is the provider's to refuse; it reserves the default here.
    let max_tokens = [&probe.max_completion_tokens, &probe.max_tokens, &probe.max_output_tokens]
        .into_iter()
        .find_map(|member| probe.text(member).and_then(|raw| raw.parse::<u64>().ok()));
    Ok(RouteFields { model, model_span, stream, include_usage, max_tokens, options, provider_options_span, user, tags })
}

/// `user` and `tags` of `providerOptions.gateway`; values of the wrong type are ignored (they only
/// label the call, they route nothing).
fn attribution(raw_provider_options: &str) -> (Option<String>, Vec<String>) {
    #[derive(Deserialize)]
    struct Options {
        gateway: Option<Gateway>,
    }
    #[derive(Deserialize)]
    struct Gateway {
        user: Option<sonic_rs::Value>,
        tags: Option<sonic_rs::Value>,
    }
    let Ok(Options { gateway: Some(gateway) }) = sonic_rs::from_str::<Options>(raw_provider_options) else {
        return (None, Vec::new());
    };
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};
    let user = gateway.user.as_ref().and_then(|v| v.as_str()).map(str::to_owned);
    let tags = gateway
        .tags
        .as_ref()
        .and_then(|v| v.as_array())
        .map(|tags| tags.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    (user, tags)
}

/// The span of the member whose value is at `value`, from its key through one adjacent comma, so that
/// cutting it leaves valid JSON. `None` if the bytes before the value are not `key` and a colon.
fn member_span(body: &[u8], value: Range<usize>, key: &[u8]) -> Option<Range<usize>> {
    let before_colon = skip_ws_back(body, value.start);
    let colon = before_colon.checked_sub(1).filter(|&i| body[i] == b':')?;
    let key_end = skip_ws_back(body, colon);
    let key_start = key_end.checked_sub(key.len()).filter(|&i| &body[i..key_end] == key)?;
    let before_key = skip_ws_back(body, key_start);
    if before_key > 0 && body[before_key - 1] == b',' {
        return Some(before_key - 1..value.end);
    }
    let after_value = skip_ws_forward(body, value.end);
    if body.get(after_value) == Some(&b',') { Some(key_start..after_value + 1) } else { Some(key_start..value.end) }
}

fn skip_ws_back(body: &[u8], mut at: usize) -> usize {
    while at > 0 && body[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    at
}

fn skip_ws_forward(body: &[u8], mut at: usize) -> usize {
    while at < body.len() && body[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// The body a provider receives: the client's bytes with the model token replaced by the JSON string
/// `model` and the gateway-only `providerOptions` member cut out; every other byte kept. It is
/// written straight after the request head ([`RequestBody`]), not assembled apart first.
pub struct ProviderBody<'a> {
    body: &'a [u8],
    /// At most two edits, in body order: the model token replaced (`true`), the member cut (`false`).
    edits: [Option<(Range<usize>, bool)>; 2],
    model: &'a str,
    len: usize,
}

impl<'a> ProviderBody<'a> {
    pub fn new(body: &'a [u8], fields: &RouteFields<'_>, model: &'a str) -> ProviderBody<'a> {
        let mut edits =
            [Some((fields.model_span.clone(), true)), fields.provider_options_span.clone().map(|s| (s, false))];
        edits.sort_by_key(|edit| edit.as_ref().map_or(usize::MAX, |(span, _)| span.start));
        let mut len = body.len();
        for (span, is_model) in edits.iter().flatten() {
            len -= span.len();
            if *is_model {
                len += crate::sse::escaped_json_str_len(model) + 2;
            }
        }
        ProviderBody { body, edits, model, len }
    }
}

impl RequestBody for ProviderBody<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn write_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        let mut at = 0;
        for (span, is_model) in self.edits.iter().flatten() {
            out.extend_from_slice(&self.body[at..span.start]);
            if *is_model {
                out.push(b'"');
                crate::sse::escape_json_str(self.model, out);
                out.push(b'"');
            }
            at = span.end;
        }
        out.extend_from_slice(&self.body[at..]);
    }
}

/// [`ProviderBody`] as bytes of its own (tests, and providers that rework the body).
pub fn provider_body(body: &[u8], fields: &RouteFields<'_>, model: &str) -> Vec<u8> {
    let edited = ProviderBody::new(body, fields, model);
    let mut out = Vec::with_capacity(edited.len());
    edited.write_into(&mut out);
    debug_assert_eq!(out.len(), edited.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_with_escapes_counts_as_the_key_it_spells_so_it_cannot_smuggle_a_second_model() {
        for body in [
            &br#"{"model":"cheap","mod\u0065l":"dear","messages":[]}"#[..],
            br#"{"model":"a","model":"b"}"#,
            br#"{"model":"a","stream":true,"stre\u0061m":false}"#,
        ] {
            let error = extract(body).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidJson, "{}", String::from_utf8_lossy(body));
            assert!(error.message.contains("duplicate key"), "{}", error.message);
        }
        let escaped_only = extract(br#"{"mod\u0065l":"acme/chat"}"#).unwrap();
        assert_eq!(escaped_only.model, "acme/chat");
    }

    #[test]
    fn nesting_past_the_bound_and_broken_json_anywhere_are_invalid_json() {
        let deep = format!(r#"{{"model":"m","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let error = extract(deep.as_bytes()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidJson);
        assert!(error.message.contains("nested deeper"), "{}", error.message);
        let broken = extract(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],}"#).unwrap_err();
        assert_eq!(broken.kind, ErrorKind::InvalidJson);
    }

    #[test]
    fn finds_model_and_stream_anywhere_in_the_object() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"model\""}], "stream": true, "model" : "acme/chat"}"#;
        let f = extract(body).unwrap();
        assert_eq!(f.model, "acme/chat");
        assert!(f.stream);
        assert_eq!(&body[f.model_span.clone()], br#""acme/chat""#);
        let out = provider_body(body, &f, "gpt-4o-mini");
        assert_eq!(
            out,
            br#"{"messages":[{"role":"user","content":"hi \"model\""}], "stream": true, "model" : "gpt-4o-mini"}"#
        );
    }

    #[test]
    fn provider_options_are_read_and_cut_out_wherever_they_stand() {
        let cases: [(&[u8], &[u8]); 3] = [
            (br#"{"providerOptions": {"gateway":{"order":["b","a"]}}, "model":"m","x":1}"#, br#"{ "model":"p","x":1}"#),
            (br#"{"model":"m" , "providerOptions":{"gateway":{"only":["a"]}} ,"x":1}"#, br#"{"model":"p"  ,"x":1}"#),
            (br#"{"x":1,"model":"m","providerOptions" : {"gateway":{"models":["f"]}}}"#, br#"{"x":1,"model":"p"}"#),
        ];
        for (body, want) in cases {
            let f = extract(body).unwrap();
            let out = provider_body(body, &f, "p");
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
            serde_json::from_slice::<serde_json::Value>(&out).expect("still valid JSON");
        }
        let f = extract(cases[0].0).unwrap();
        assert_eq!(f.options.order, ["b", "a"]);
        let err = extract(br#"{"model":"m","providerOptions":{"gateway":{"order":"a"}}}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("providerOptions"));
    }

    #[test]
    fn decodes_escaped_model_names() {
        let body = br#"{"model":"acme\/chat"}"#;
        let f = extract(body).unwrap();
        assert_eq!(f.model, "acme/chat");
        assert!(!f.stream);
        assert_eq!(&body[f.model_span], br#""acme\/chat""#);
        // Without an escape the text is taken as written, UTF-8 included.
        assert_eq!(extract("{\"model\":\"modèle-ß\"}".as_bytes()).unwrap().model, "modèle-ß");
        assert_eq!(extract(br#"{"model":""}"#).unwrap().model, "");
    }

    #[test]
    fn rejects_bad_bodies_with_the_right_kind_and_param() {
        let cases: [(&[u8], ErrorKind, Option<&str>); 8] = [
            (b"", ErrorKind::InvalidJson, None),
            (b"{\"model\":", ErrorKind::InvalidJson, None),
            (b"[\"model\"]", ErrorKind::InvalidJson, None),
            (b"{\"model\":\"a\"} trailing", ErrorKind::InvalidJson, None),
            (b"{\"model\":\"a\",\"model\":\"b\"}", ErrorKind::InvalidJson, None),
            (b"{\"messages\":[]}", ErrorKind::InvalidField, Some("model")),
            (b"{\"model\":42}", ErrorKind::InvalidField, Some("model")),
            (b"{\"model\":\"a\",\"stream\":\"yes\"}", ErrorKind::InvalidField, Some("stream")),
        ];
        for (body, kind, param) in cases {
            let err = extract(body).unwrap_err();
            assert_eq!((err.kind, err.param.as_deref()), (kind, param), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_end_user_and_tags_are_read_from_each_format() {
        let user = |body: &str| extract(body.as_bytes()).unwrap().user;
        assert_eq!(user(r#"{"model":"m","user":"u1"}"#).as_deref(), Some("u1"));
        assert_eq!(user(r#"{"model":"m","metadata":{"user_id":"a1"}}"#).as_deref(), Some("a1"));
        assert_eq!(user(r#"{"model":"m","user":7}"#), None, "a non-string is not a user");
        let both =
            extract(br#"{"model":"m","user":"u1","providerOptions":{"gateway":{"user":"g1","tags":["t1",2,"t2"]}}}"#)
                .unwrap();
        assert_eq!((both.user.as_deref(), both.tags), (Some("g1"), vec!["t1".to_string(), "t2".into()]));
    }
}
#[cfg(test)]
mod include_usage_tests {
    #[test]
    fn include_usage_is_read() {
        let f = super::extract(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert!(f.include_usage);
        let f = super::extract(br#"{"model":"m","stream":true}"#).unwrap();
        assert!(!f.include_usage);
    }
}

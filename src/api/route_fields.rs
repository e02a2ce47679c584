//! Extracts what routing needs from a chat request body (`model`, `stream`) without building a DOM,
//! and swaps the model name for the provider's.
//!
//! The whole body is still validated as JSON: a gateway that forwards malformed JSON would hand the
//! provider a request it never checked, and duplicate `model` keys (which parsers resolve differently)
//! are rejected for the same reason.
//!
//! Parser: sonic-rs into a two-field struct, chosen by `benches/route_extract.rs` (it validates every
//! skipped value like serde_json but is 1.2x faster on 1 KB bodies and 1.4x on 250 KB; simd-json needs
//! a mutable copy and was slowest). The README records the figures.

use std::ops::Range;

use serde::Deserialize;
use sonic_rs::LazyValue;

use crate::error::{ErrorKind, GatewayError};
use crate::routing::RoutingOptions;

/// The routing-relevant fields of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFields {
    pub model: String,
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

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    model: Option<LazyValue<'a>>,
    #[serde(borrow)]
    stream: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "providerOptions")]
    provider_options: Option<LazyValue<'a>>,
    #[serde(borrow)]
    stream_options: Option<LazyValue<'a>>,
    #[serde(borrow)]
    user: Option<LazyValue<'a>>,
    #[serde(borrow)]
    metadata: Option<LazyValue<'a>>,
    #[serde(borrow)]
    max_tokens: Option<LazyValue<'a>>,
    #[serde(borrow)]
    max_completion_tokens: Option<LazyValue<'a>>,
    #[serde(borrow)]
    max_output_tokens: Option<LazyValue<'a>>,
}

/// Parses `body`, requiring a JSON object with a string `model` and an optional boolean `stream`.
pub fn extract(body: &[u8]) -> Result<RouteFields, GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::new(ErrorKind::InvalidJson, "request body must be a JSON object"));
    }
    let probe: Probe<'_> = sonic_rs::from_slice(body)
        .map_err(|e| GatewayError::new(ErrorKind::InvalidJson, format!("request body is not valid JSON: {e}")))?;
    let raw_model = probe.model.as_ref().map(LazyValue::as_raw_str).ok_or_else(|| {
        GatewayError::new(ErrorKind::InvalidField, "you must provide a model parameter").with_param("model")
    })?;
    let model = sonic_rs::from_str::<String>(raw_model)
        .map_err(|_| GatewayError::new(ErrorKind::InvalidField, "`model` must be a string").with_param("model"))?;
    let model_span = span_within(body, raw_model)
        .or_else(|| span_by_raw_value(body))
        .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "cannot locate `model` in the request body"))?;
    let stream = match probe.stream.as_ref().map(LazyValue::as_raw_str) {
        None | Some("null") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(GatewayError::new(ErrorKind::InvalidField, "`stream` must be a boolean").with_param("stream"));
        }
    };
    let (options, provider_options_span) = match probe.provider_options.as_ref().map(LazyValue::as_raw_str) {
        None => (RoutingOptions::default(), None),
        Some(raw) => {
            let options = RoutingOptions::from_provider_options(raw)
                .map_err(|why| GatewayError::new(ErrorKind::InvalidField, why).with_param("providerOptions"))?;
            let span = span_within(body, raw).and_then(|value| member_span(body, value, b"\"providerOptions\""));
            let span = span.ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidField, "`providerOptions` must be spelled without escapes")
                    .with_param("providerOptions")
            })?;
            (options, Some(span))
        }
    };
    let include_usage = probe
        .stream_options
        .as_ref()
        .is_some_and(|raw| sonic_rs::get(raw.as_raw_str(), &["include_usage"]).is_ok_and(|v| v.as_raw_str() == "true"));
    let (gateway_user, tags) =
        probe.provider_options.as_ref().map(|raw| attribution(raw.as_raw_str())).unwrap_or_default();
    let metadata_user = || {
        let metadata = probe.metadata.as_ref()?.as_raw_str();
        sonic_rs::get(metadata, &["user_id"]).ok().and_then(|v| sonic_rs::from_str(v.as_raw_str()).ok())
    };
    let user = gateway_user
        .or_else(|| probe.user.as_ref().and_then(|raw| sonic_rs::from_str(raw.as_raw_str()).ok()))
        .or_else(metadata_user);
    // A limit that is not a whole number is the provider's to refuse; it reserves the default here.
    let max_tokens = [&probe.max_completion_tokens, &probe.max_tokens, &probe.max_output_tokens]
        .into_iter()
        .find_map(|raw| raw.as_ref().and_then(|raw| raw.as_raw_str().parse::<u64>().ok()));
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

/// sonic-rs copies raw values that contain escapes instead of borrowing them; for those rare bodies
/// serde_json's borrowed `RawValue` tells where the token is.
fn span_by_raw_value(body: &[u8]) -> Option<Range<usize>> {
    #[derive(Deserialize)]
    struct RawModel<'a> {
        #[serde(borrow)]
        model: &'a serde_json::value::RawValue,
    }
    let raw = serde_json::from_slice::<RawModel<'_>>(body).ok()?.model.get();
    span_within(body, raw)
}

/// Where `part` (a slice borrowed from `whole`) sits in `whole`; `None` if it is not borrowed from it.
fn span_within(whole: &[u8], part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len() && &whole[start..end] == part.as_bytes()).then_some(start..end)
}

/// The body a provider receives: the client's bytes with the model token replaced by the JSON string
/// `model` and the gateway-only `providerOptions` member cut out; every other byte kept.
pub fn provider_body(body: &[u8], fields: &RouteFields, model: &str) -> Vec<u8> {
    // At most two edits, in body order: the model token replaced (`true`), the member cut (`false`).
    let mut edits = [Some((fields.model_span.clone(), true)), fields.provider_options_span.clone().map(|s| (s, false))];
    edits.sort_by_key(|edit| edit.as_ref().map_or(usize::MAX, |(span, _)| span.start));
    let mut out = Vec::with_capacity(body.len() + model.len() + 2);
    let mut at = 0;
    for (span, is_model) in edits.into_iter().flatten() {
        out.extend_from_slice(&body[at..span.start]);
        if is_model {
            out.push(b'"');
            crate::sse::escape_json_str(model, &mut out);
            out.push(b'"');
        }
        at = span.end;
    }
    out.extend_from_slice(&body[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! JSON reading shared by the front doors' request parsers: the top-level members in order (with
//! duplicate keys refused), typed reads whose errors name the request parameter, serde's messages
//! without positions; and what OpenAI's two formats (chat completions, Responses) share: image URLs
//! (http(s) or base64 data URLs), per-role content rules and reasoning-effort names. It knows no
//! front door's fields.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::chat::{Effort, Media, Part, Reasoning, RequestError};

/// The top-level members of a request body, in order, values unparsed. A member that appears twice
/// is refused: parsers disagree on which one wins, so a gateway must not pick silently.
pub(crate) fn top_level_members(body: &[u8]) -> Result<Vec<(String, &RawValue)>, RequestError> {
    let Members(members) = serde_json::from_slice(body).map_err(|e| {
        RequestError::InvalidJson(format!("the request body is not a JSON object: {}", serde_message(&e)))
    })?;
    for (index, (name, _)) in members.iter().enumerate() {
        if members[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(RequestError::invalid(name.as_str(), format!("`{name}` appears more than once")));
        }
    }
    Ok(members)
}

struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// serde_json's message without the " at line L column C" suffix, which means nothing to a client
/// looking at one field.
pub(crate) fn serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Parses `raw` as `T`; the error names `param` and what was expected.
pub(crate) fn typed<'a, T: Deserialize<'a>>(raw: &'a RawValue, param: &str, expected: &str) -> Result<T, RequestError> {
    serde_json::from_str(raw.get()).map_err(|_| RequestError::invalid(param, format!("`{param}` must be {expected}")))
}

/// Parses `raw` as `T`; the error names `param` and carries serde's reason (a missing field, say).
pub(crate) fn structured<'a, T: Deserialize<'a>>(raw: &'a RawValue, param: &str) -> Result<T, RequestError> {
    serde_json::from_str(raw.get())
        .map_err(|e| RequestError::invalid(param, format!("`{param}`: {}", serde_message(&e))))
}

/// The first byte of a raw JSON value: which kind of value it is, without parsing it.
pub(crate) fn first_byte(raw: &RawValue) -> Option<u8> {
    raw.get().trim_start().bytes().next()
}

/// An image given as an http(s) URL or a base64 data URL (OpenAI's `image_url`).
pub(crate) fn media_from_url(url: String, param: &str) -> Result<Media, RequestError> {
    if url.starts_with("data:") {
        return media_from_data_url(url, param);
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Media::Url(url));
    }
    Err(RequestError::invalid(param, "expected an http(s) URL or a base64 data URL"))
}

/// `data:<media type>[;params];base64,<data>` -> inline media, reusing the string's buffer for the
/// data (images run to megabytes).
pub(crate) fn media_from_data_url(mut url: String, param: &str) -> Result<Media, RequestError> {
    let bad = || RequestError::invalid(param, "expected a base64 data URL (`data:<media type>;base64,<data>`)");
    let comma = url.find(',').ok_or_else(bad)?;
    let meta = url.get("data:".len()..comma).filter(|_| url.starts_with("data:")).ok_or_else(bad)?;
    let media_type = match meta.strip_suffix(";base64") {
        Some(rest) => rest.split(';').next().unwrap_or_default().to_owned(),
        None => return Err(bad()),
    };
    if media_type.is_empty() {
        return Err(bad());
    }
    url.drain(..=comma);
    Ok(Media::Base64 { media_type, data: url })
}

/// OpenAI's per-role content rules: instructions and tool results are text, assistants write text
/// and refusals, users send text, images and files.
pub(crate) fn check_parts(role: &str, content: &[Part], param: &str) -> Result<(), RequestError> {
    for (j, part) in content.iter().enumerate() {
        let allowed = match part {
            Part::Text(_) => true,
            Part::Image(_) | Part::File { .. } => role == "user",
            Part::Refusal(_) => role == "assistant",
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => false,
        };
        if !allowed {
            return Err(RequestError::invalid(
                format!("{param}[{j}]"),
                format!("this part is not allowed in `{role}` messages"),
            ));
        }
    }
    Ok(())
}

/// An OpenAI reasoning-effort name (`reasoning_effort`, `reasoning.effort`) as internal reasoning;
/// an unknown name is an error naming `param`.
pub(crate) fn effort_named(name: &str, param: &str) -> Result<Reasoning, RequestError> {
    let effort = match name {
        "none" => return Ok(Reasoning::Disabled),
        "minimal" => Effort::Minimal,
        "low" => Effort::Low,
        "medium" => Effort::Medium,
        "high" => Effort::High,
        "xhigh" => Effort::XHigh,
        other => return Err(RequestError::invalid(param, format!("unknown `{param}` `{other}`"))),
    };
    Ok(Reasoning::Effort(effort))
}

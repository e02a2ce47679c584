//! The Responses API recordings as the golden tests of both directions read them
//! (`golden_openai_responses`, `golden_openai_responses_front`): each recording's responses framed
//! as OpenAI sends them, and the names of their expected files. It owns no translation code.
#![allow(dead_code)]

use serde_json::Value;

const FIXTURES: &str = corelay::fixture_path!("");

/// The responses of a recording (a path under tests/fixtures), each as the SSE body OpenAI
/// sends: `.sse` files as they are (one response each); `.chunks.txt` lines (one event JSON each, no
/// SSE envelope) framed as `event: <type>` / `data: <line>` / blank line, a new response at each
/// `response.created`.
pub fn responses(path: &str) -> Vec<Vec<u8>> {
    let full = format!("{FIXTURES}{path}");
    let recorded = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    if !path.ends_with(".chunks.txt") {
        return vec![recorded];
    }
    let mut responses: Vec<Vec<u8>> = Vec::new();
    for line in recorded.split(|&b| b == b'\n').filter(|line| !line.trim_ascii().is_empty()) {
        let event: Value = serde_json::from_slice(line).unwrap_or_else(|e| panic!("{path}: {e}"));
        let kind = event["type"].as_str().unwrap();
        if kind == "response.created" || responses.is_empty() {
            responses.push(Vec::new());
        }
        let framed = responses.last_mut().unwrap();
        framed.extend_from_slice(format!("event: {kind}\ndata: ").as_bytes());
        framed.extend_from_slice(line);
        framed.extend_from_slice(b"\n\n");
    }
    responses
}

/// Response `step` (from 1) of a recording.
pub fn response(path: &str, step: usize) -> Vec<u8> {
    responses(path).swap_remove(step - 1)
}

/// The expected files' stem: the fixture's name without its extension, and the step when the
/// recording has several.
pub fn golden_name(path: &str, step: usize) -> String {
    let name = path.rsplit('/').next().unwrap();
    let stem = name.strip_suffix(".sse").or_else(|| name.strip_suffix(".chunks.txt")).unwrap();
    if responses(path).len() > 1 { format!("{stem}-step{step}") } else { stem.to_owned() }
}

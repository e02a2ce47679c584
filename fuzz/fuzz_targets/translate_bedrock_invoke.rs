//! libFuzzer entry point for `translate_bedrock_invoke`; the target body (and what it checks) is in ../targets.rs.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::translate_bedrock_invoke(data));

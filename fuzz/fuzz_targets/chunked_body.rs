//! libFuzzer entry point for `chunked_body`; the target body (and what it checks) is in ../targets.rs.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::chunked_body(data));

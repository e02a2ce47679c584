//! libFuzzer entry point for `audit_by_difference`; the target body (and what it checks) is in ../targets.rs.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::audit_by_difference(data));

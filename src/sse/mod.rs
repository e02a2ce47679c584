//! Server-sent-event body handling for streamed completions: the audited, zero-allocation
//! pass-through of a provider's events with their `model` rewritten, and the event decoder. It does not read sockets, decode chunked transfer encoding or
//! decompress; callers feed it the decoded body bytes.

pub mod audit;
mod by_difference;
pub mod decoder;
mod json_scan;
pub mod model_rewrite;
pub mod pass_through;

#[cfg(test)]
mod fixture_tests;

pub use model_rewrite::{ModelReplaced, escape_json_str, escaped_json_str_len, rewrite_model_in_json};
pub use pass_through::PassThrough;

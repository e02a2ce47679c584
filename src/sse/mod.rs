//! Server-sent-event body handling for streamed completions: today the zero-allocation rewrite of
//! the `model` value in each event. It does not read sockets, decode chunked transfer encoding or
//! decompress; callers feed it the decoded body bytes.

pub mod audit;
pub mod decoder;
mod json_scan;
pub mod model_rewrite;

#[cfg(test)]
mod fixture_tests;

pub use model_rewrite::{ModelRewriter, escape_json_str, rewrite_model_in_json};

//! AWS wire building blocks for the Bedrock provider: the event-stream frame decoder and the SigV4
//! request signer. Both are sans-IO (no sockets, no clock); the Bedrock adapter itself, which maps
//! frames to client events and decides when to sign, lives elsewhere.

pub mod eventstream;
pub mod sigv4;

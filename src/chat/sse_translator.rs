//! A provider stream framed as SSE, turned into internal events: the shared SSE decoder feeding a
//! provider's per-event mapper. Providers supply only the mapper (`SseEventMapper`); the framing,
//! the end-of-body flush and framing errors are handled once here.
//!
//! Does not know any provider's event shapes; those are in `providers::*::stream`.

use super::{ProviderError, ProviderErrorKind, StreamEvent, Usage};
use crate::sse::decoder::{SseDecoder, SseError};

/// One provider's state machine over the `data` of its SSE events.
pub trait SseEventMapper: Default {
    /// Names the provider in framing-error messages.
    const PROVIDER: &'static str;
    fn on_data(&mut self, data: &[u8], out: &mut Vec<StreamEvent>);
    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>);
    /// The body ended: close the stream (with an error if it was cut short).
    fn finish(&mut self, out: &mut Vec<StreamEvent>);
    fn usage(&self) -> Usage;
    /// True once a terminal event (`Finish` or `Error`) went out.
    fn is_done(&self) -> bool;
}

/// SSE bytes -> internal events. Feed every body piece, then call `finish` at the end of the body;
/// each call appends to `out` the events it completed.
#[derive(Debug, Clone, Default)]
pub struct SseTranslator<M> {
    decoder: SseDecoder,
    mapper: M,
}

impl<M: SseEventMapper> SseTranslator<M> {
    pub fn new() -> Self {
        SseTranslator { decoder: SseDecoder::new(), mapper: M::default() }
    }

    /// A translator whose SSE decoder accepts events up to `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseTranslator { decoder: SseDecoder::with_max_event_bytes(max_event_bytes), mapper: M::default() }
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) {
        let mut rest = input;
        while !self.mapper.is_done() {
            match self.decoder.next_event(&mut rest) {
                Ok(Some(event)) => self.mapper.on_data(event.data, out),
                Ok(None) => break,
                Err(error) => self.mapper.fail(decode_error::<M>(error), out),
            }
        }
    }

    /// The provider's body ended: flush the last event and close the stream.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.mapper.is_done() {
            match self.decoder.finish() {
                Ok(Some(event)) => self.mapper.on_data(event.data, out),
                Ok(None) => {}
                Err(error) => self.mapper.fail(decode_error::<M>(error), out),
            }
        }
        self.mapper.finish(out);
    }

    /// Usage as known so far (complete once the stream finished).
    pub fn usage(&self) -> Usage {
        self.mapper.usage()
    }

    pub fn is_done(&self) -> bool {
        self.mapper.is_done()
    }
}

fn decode_error<M: SseEventMapper>(error: SseError) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, format!("{} stream: {error}", M::PROVIDER))
}

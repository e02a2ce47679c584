//! The relay loop the golden tests of translated streams share: a provider's stream translator and
//! the OpenAI chunk encoder back to back, fed piece by piece as the proxy feeds them. It owns no
//! translation code.

use corelay::api::openai_chat::ChunkEncoder;
use corelay::chat::{StreamEvent, Usage};
use corelay::providers::Translator;

/// What a client would receive for one stream.
pub struct Outcome {
    pub events: Vec<StreamEvent>,
    pub client_bytes: Vec<u8>,
    pub usage: Usage,
}

/// Feeds `pieces` through `translator` and `encoder`, then finishes the stream.
pub fn relay<'a>(
    mut translator: Translator,
    mut encoder: ChunkEncoder,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let (mut events, mut client_bytes, mut batch) = (Vec::new(), Vec::new(), Vec::new());
    let mut forward = |batch: &mut Vec<StreamEvent>, events: &mut Vec<StreamEvent>| {
        for event in batch.drain(..) {
            encoder.encode(&event, &mut client_bytes);
            events.push(event);
        }
    };
    for piece in pieces {
        translator.feed(piece, &mut batch);
        forward(&mut batch, &mut events);
    }
    translator.finish(&mut batch);
    forward(&mut batch, &mut events);
    Outcome { events, client_bytes, usage: translator.usage() }
}

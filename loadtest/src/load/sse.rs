//! Sans-IO scanner of a `text/event-stream` body, fed de-chunked bytes as they arrive: counts
//! dispatched `data:` events, and notes `[DONE]` and error events. It only classifies; timing
//! the events and judging the stream belong to the caller.

/// A line longer than this ends the scan as malformed (keeps a broken server from growing the
/// buffer without bound).
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SseScanner {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The event being assembled (up to the blank line that dispatches it).
    pending: PendingEvent,
    /// Events dispatched so far, `[DONE]` not counted.
    events: u64,
    done: bool,
    error: bool,
    overflow: bool,
}

#[derive(Debug, Default)]
struct PendingEvent {
    has_data: bool,
    is_done: bool,
    is_error: bool,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// `[DONE]` arrived and no event carried an error.
    Complete,
    /// An event carried an error (`"error"` in the data, or `event: error`).
    Error,
    /// The body ended without `[DONE]`.
    Incomplete,
    /// A line exceeded `MAX_LINE_BYTES`.
    Malformed,
}

impl SseScanner {
    /// Scans `data`; returns how many events it dispatched (so the caller can time them).
    pub fn feed(&mut self, mut data: &[u8]) -> u64 {
        let before = self.events;
        // Each pass consumes one line, so this ends within the number of lines in `data`.
        while !self.overflow {
            let Some(newline) = data.iter().position(|&b| b == b'\n') else {
                self.keep_partial(data);
                break;
            };
            if self.partial.is_empty() {
                self.line(&data[..newline]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&data[..newline]);
                self.line(&line);
                // Keep the allocation for the next split line.
                line.clear();
                self.partial = line;
            }
            data = &data[newline + 1..];
        }
        self.events - before
    }

    pub fn end(&self) -> StreamEnd {
        match (self.overflow, self.error, self.done) {
            (true, _, _) => StreamEnd::Malformed,
            (false, true, _) => StreamEnd::Error,
            (false, false, true) => StreamEnd::Complete,
            (false, false, false) => StreamEnd::Incomplete,
        }
    }

    fn keep_partial(&mut self, data: &[u8]) {
        if self.partial.len() + data.len() > MAX_LINE_BYTES {
            self.overflow = true;
        } else {
            self.partial.extend_from_slice(data);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch();
        } else if let Some(payload) = field_value(line, b"data") {
            self.pending.has_data = true;
            self.pending.is_done |= payload == b"[DONE]";
            // A JSON key or value `"error"`; inside a string it would read `\"error\"`.
            self.pending.is_error |= contains(payload, b"\"error\"");
        } else if let Some(name) = field_value(line, b"event") {
            self.pending.is_error |= name == b"error";
        }
    }

    fn dispatch(&mut self) {
        let event = std::mem::take(&mut self.pending);
        if !event.has_data {
            return;
        }
        if event.is_done {
            self.done = true;
        } else {
            self.events += 1;
            self.error |= event.is_error;
        }
    }
}

/// The value of `name: value` (one optional space after the colon), per the SSE grammar.
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let value = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A comment, an event whose text mentions "error" (escaped, so not an error), CRLF lines, a
    // two-line event, then [DONE].
    const STREAM: &[u8] = b": comment\n\ndata: {\"a\":1}\n\n\
        data:{\"b\":\"say \\\"error\\\"\"}\r\n\r\n\
        id: 3\ndata: x\ndata: y\n\ndata: [DONE]\n\n";

    #[test]
    fn counts_events_in_any_split() {
        for step in 1..STREAM.len() {
            let mut scanner = SseScanner::default();
            let dispatched: u64 = STREAM.chunks(step).map(|piece| scanner.feed(piece)).sum();
            assert_eq!((dispatched, scanner.events, scanner.end()), (3, 3, StreamEnd::Complete), "step {step}");
        }
    }

    #[test]
    fn reports_per_feed() {
        let mut scanner = SseScanner::default();
        assert_eq!(scanner.feed(b"data: 1\n\ndata: 2\n\nda"), 2);
        assert_eq!(scanner.feed(b"ta: 3\n"), 0);
        assert_eq!(scanner.feed(b"\n"), 1);
        assert_eq!(scanner.end(), StreamEnd::Incomplete);
    }

    #[test]
    fn error_events() {
        let mut scanner = SseScanner::default();
        scanner.feed(b"data: {\"error\":{\"message\":\"boom\"}}\n\ndata: [DONE]\n\n");
        assert_eq!(scanner.end(), StreamEnd::Error);
        let mut scanner = SseScanner::default();
        scanner.feed(b"event: error\ndata: {}\n\n");
        assert_eq!(scanner.end(), StreamEnd::Error);
    }

    #[test]
    fn done_needs_its_blank_line() {
        let mut scanner = SseScanner::default();
        scanner.feed(b"data: {}\n\ndata: [DONE]\n");
        assert_eq!(scanner.end(), StreamEnd::Incomplete);
    }

    #[test]
    fn endless_line_is_malformed() {
        let mut scanner = SseScanner::default();
        let piece = vec![b'x'; 1024 * 1024];
        for _ in 0..5 {
            scanner.feed(&piece);
        }
        assert_eq!(scanner.end(), StreamEnd::Malformed);
    }
}

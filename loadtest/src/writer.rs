//! Playing a precomputed `Plan` onto a connection: a plain loop over its body pieces, each
//! written and flushed on its own, with the configured delays between them. Decides nothing
//! about content (see `plan.rs`) and nothing about the connection's fate beyond reporting it.

use std::io;
use std::mem;

use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};

use crate::alarm::Alarms;
use crate::http::{self, BodyFraming};
use crate::plan::{Ending, Plan};

/// What the connection should do once the plan has been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    KeepAlive,
    Close,
    Reset,
    Stall,
}

/// Writes `plan` to `io`. The head rides with the first piece and the chunked terminator with
/// the last, unless a delay separates them: that keeps one write per SSE event. `alarms` keeps
/// the delays.
pub(crate) async fn write_plan<S: AsyncWriteRent>(io: &mut S, plan: Plan, alarms: &Alarms) -> io::Result<After> {
    alarms.pause(plan.head_delay).await;
    let mut out = http::response_head(plan.status, &plan.headers, plan.framing, plan.close);
    let count = plan.pieces.len();
    for (i, piece) in plan.pieces.into_iter().enumerate() {
        let delay = if i == 0 { plan.first_piece_delay } else { plan.gap };
        if !delay.is_zero() {
            send(io, &mut out).await?;
            alarms.after(delay).await;
        }
        match plan.framing {
            BodyFraming::Chunked => http::push_chunk(&mut out, &piece),
            BodyFraming::Length(_) | BodyFraming::Close => out.extend_from_slice(&piece),
        }
        if i + 1 < count {
            send(io, &mut out).await?;
        }
    }
    let after = match plan.ending {
        Ending::Complete if plan.framing == BodyFraming::Chunked => {
            out.extend_from_slice(http::LAST_CHUNK);
            complete(plan.close)
        }
        Ending::Complete => complete(plan.close),
        Ending::Reset => After::Reset,
        Ending::Stall => After::Stall,
    };
    send(io, &mut out).await?;
    Ok(after)
}

fn complete(close: bool) -> After {
    if close { After::Close } else { After::KeepAlive }
}

/// Writes and flushes everything in `out` (leaving it empty); nothing to do when it is empty.
pub(crate) async fn send<S: AsyncWriteRent>(io: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let (result, mut buf) = io.write_all(mem::take(out)).await;
    result?;
    // Hand the allocation back so the next piece reuses it.
    buf.clear();
    *out = buf;
    io.flush().await
}

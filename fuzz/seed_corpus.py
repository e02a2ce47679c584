#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the recorded fixtures and a few
hand-written HTTP/1.1 messages. It owns only the seeds: what campaigns add to the corpora, and the
minimised crash inputs (crash-*), are committed as the fuzzer wrote them.

Each seed starts with one byte that picks how the targets split the input (the audit targets: one
byte that picks the stream format, then that one) (fuzz/targets.rs `split`);
seeds are capped so all corpora stay a few hundred KB. Usage: fuzz/seed_corpus.py [FIXTURES_DIR]  (default: tests/fixtures)
"""

import hashlib
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "tests" / "fixtures"
CORPUS = HERE / "corpus"
MAX_SEED = 6 * 1024
# Split bytes: 0 gives 1-byte-ish pieces at first, 0x5a and 0xff mid and large pieces.
SPLITS = (0x00, 0x5A, 0xFF)


def write(target, data, split=0x5A, selector=None):
    """`selector`, when given, is the byte before the split byte (the audit targets' format pick)."""
    data = bytes([split]) + data[:MAX_SEED]
    if selector is not None:
        data = bytes([selector]) + data
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def fixtures(pattern):
    return sorted(FIXTURES.glob(pattern))


def response_head_from_meta(meta):
    """The recorded status line and headers of a fixture, as an HTTP/1.1 head."""
    response = meta.get("response")
    if not isinstance(response, dict):
        return None
    status = response.get("status")
    if not isinstance(status, int):
        return None
    lines = [f"HTTP/1.1 {status} {response.get('reason') or 'X'}"]
    for name, values in (response.get("headers_as_recorded") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


REQUEST_HEADS = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
    b"Content-Length: 17\r\n\r\n{\"model\":\"a/b\"}x",
    b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    b"POST /v1/responses?x=1 HTTP/1.0\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\nGET * HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\nabc",
]

RESPONSE_HEADS = [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n4\r\ndata\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nslow!",
    b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n",
]

CHUNKED_BODIES = [
    b"0\r\n\r\n",
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"a; name=value\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
    b"00000000000000010\r\nx\r\n",
    b"FFFFFFFFFFFFFFFF\r\n",
    b"3 \r\nabc\r\n0\r\n\r\nnext request",
]


def main():
    for data in REQUEST_HEADS:
        write("request_head", data)
    for data in RESPONSE_HEADS:
        write("response_head", data)
    for meta_path in fixtures("*/*.meta.json"):
        head = response_head_from_meta(json.loads(meta_path.read_text()))
        if head:
            write("response_head", head)
    for data in CHUNKED_BODIES:
        for split in SPLITS:
            write("chunked_body", data, split)

    streams = {
        "translate_anthropic": fixtures("anthropic/*.sse") + fixtures("anthropic/sdk/*.sse"),
        "translate_gemini": fixtures("gemini/*.sse") + fixtures("vertex/*.sse"),
        "translate_openai_chat": fixtures("openai/chat/*.sse"),
        "translate_openai_responses": fixtures("openai/responses/*.sse"),
        "translate_bedrock_converse": fixtures("bedrock/bedrock-converse-stream*.bin"),
        "translate_bedrock_invoke": fixtures("bedrock/bedrock-invoke-stream*.bin"),
    }
    for target, paths in streams.items():
        for path in paths:
            write(target, path.read_bytes())
    for path in fixtures("**/*.sse"):
        write("sse_decoder", path.read_bytes(), 0x00)
    for path in fixtures("aws-eventstream/*.bin") + fixtures("bedrock/*.bin"):
        write("aws_eventstream", path.read_bytes())
    audits = {
        "audit_openai_chat": fixtures("openai/chat/*.sse"),
        "audit_anthropic_messages": fixtures("anthropic/*.sse") + fixtures("anthropic/sdk/*.sse"),
        "audit_openai_responses": fixtures("openai/responses/*.sse"),
    }
    for target, paths in audits.items():
        for path in paths:
            write(target, path.read_bytes(), selector=0)
    for path in fixtures("**/*.request.json"):
        write("request_bodies", path.read_bytes())
    # Pairs of consecutive data payloads of one recorded stream (its format's selector first, then
    # the two payloads on two lines): what the audit judges by difference.
    pairs = [(0, "openai/chat/*.sse"), (1, "anthropic/*.sse"), (1, "anthropic/sdk/*.sse"), (2, "openai/responses/*.sse")]
    for selector, pattern in pairs:
        for path in fixtures(pattern):
            payloads = [line[5:].strip() for line in path.read_bytes().splitlines() if line.startswith(b"data:")]
            for first, second in list(zip(payloads, payloads[1:]))[:3]:
                seed = bytes([selector]) + first + b"\n" + second
                name = "seed-" + hashlib.sha1(seed).hexdigest()[:16]
                (CORPUS / "audit_by_difference").mkdir(parents=True, exist_ok=True)
                (CORPUS / "audit_by_difference" / name).write_bytes(seed[:MAX_SEED])


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Runs the demo: the bundled mock provider on 127.0.0.1:9000 and Corelay on 127.0.0.1:8080
# (config/demo.toml). No API keys, no network. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --workspace --bins
./target/release/corelay-mock --listen 127.0.0.1:9000 --events 8 --gap-ms 40 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT INT TERM
cat <<'TXT'

Try, in another terminal:
  curl -s localhost:8080/v1/models
  curl -s localhost:8080/v1/chat/completions -d '{"model":"acme/chat-small","messages":[{"role":"user","content":"hi"}]}'
  curl -sN localhost:8080/v1/chat/completions -d '{"model":"acme/chat-small","stream":true,"messages":[{"role":"user","content":"hi"}]}'

TXT
./target/release/corelay --config config/demo.toml

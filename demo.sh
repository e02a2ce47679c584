#!/usr/bin/env bash
# Runs the demo: the bundled mock provider on 127.0.0.1:9000 and Corelay on 127.0.0.1:8080
# (config/demo.toml), then prints what to open and try. No API keys, no network. Ctrl-C stops both.
# It owns only starting and stopping the two processes; what they serve is config/demo.toml's.
set -euo pipefail
cd "$(dirname "$0")"

GATEWAY=127.0.0.1:8080
MOCK=127.0.0.1:9000

cargo build --release --workspace --bins
./target/release/corelay-mock --listen "$MOCK" --events 8 --gap-ms 40 >/dev/null &
mock=$!
./target/release/corelay --config config/demo.toml &
gateway=$!
# On any exit (an error, Ctrl-C during startup) neither process outlives the script.
trap 'kill "$gateway" "$mock" 2>/dev/null || true' EXIT

# Wait (at most 10 s) until the gateway accepts connections, so the URLs below work when printed.
for _ in $(seq 100); do
  if ! kill -0 "$gateway" 2>/dev/null; then
    echo "demo: corelay exited during startup (is $GATEWAY already in use?)" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/${GATEWAY%:*}/${GATEWAY#*:}") 2>/dev/null; then
    break
  fi
  sleep 0.1
done

cat <<TXT

Corelay is running on http://$GATEWAY in front of a mock provider on http://$MOCK.

Open:
  dashboard   http://$GATEWAY/dashboard
  metrics     http://$GATEWAY/metrics
  models      http://$GATEWAY/v1/models

Try, in another terminal:
  curl -s $GATEWAY/v1/chat/completions -d '{"model":"acme/chat-small","messages":[{"role":"user","content":"hi"}]}'
  curl -sN $GATEWAY/v1/chat/completions -d '{"model":"acme/chat-small","stream":true,"messages":[{"role":"user","content":"hi"}]}'
  curl -s $GATEWAY/v1/embeddings -d '{"model":"acme/embed-small","input":["hello","world"]}'

Ctrl-C stops both.

TXT
# Ctrl-C reaches both processes from the terminal: the gateway drains and exits, and the script
# waits for that rather than killing it mid-drain. A SIGTERM to the script is passed on.
trap ':' INT
trap 'kill -TERM "$gateway" 2>/dev/null || true' TERM
wait "$gateway" || wait "$gateway" || true

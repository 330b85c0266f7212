#!/usr/bin/env bash
# Issue 4's realtime benchmark in one run: the same scenario (N WebSocket
# clients in M channels, one publisher per channel, R broadcasts/s in all,
# each reaching every other client of its channel) against
#   tandem        the release `tandem serve`, embedded mode;
#   tandem-redis  the same with REDIS_URL (every broadcast through Redis);
#   socketio      Socket.IO 4 + @socket.io/redis-adapter (bench/node-socketio).
# The load generator is Tandem's own (`tandem-bench realtime-load`: a minimal
# WebSocket client per connection speaking Supabase Realtime vsn 2.0.0 or
# Engine.IO v4), the same for every target. Prints deliveries/s, p50/p99
# latency, server RSS per connection, CPU of server and generator, and
# Tandem's ratios to Socket.IO.
#
# Run from anywhere:  bash bench/realtime-vs-socketio.sh [realtime-load options]
#   e.g. --connections 10000 --channels 100 --rate 1000 --seconds 10 (the defaults)
#   env: CARGO_TARGET_DIR
# Needs: cargo, node + npm, Redis on 127.0.0.1:6379, `ulimit -n` above 2x the connections.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=realtime-vs-socketio
source bench/lib.sh

for tool in node npm cargo; do command -v "$tool" >/dev/null || die "$tool not found"; done
(cd bench/node-socketio && npm ci --no-audit --no-fund --silent)
cargo build --release --quiet -p tandem -p tandem-bench
target=${CARGO_TARGET_DIR:-target}/release
echo "machine: $(machine)"
"$target/tandem-bench" realtime-load --bin "$target/tandem" \
  --targets tandem,tandem-redis,socketio "$@"
echo "done: $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Capacity of Tandem under a simulated study community (issue 10).
#
#   bash bench/simulate.sh [--speed 10] [--dau 5000] [--seconds 60] [--url URL [--name NAME]]
#
# Without --url: builds release binaries, starts one embedded `tandem serve`
# (SQLite, everything in one process) on a fresh data dir, and points the
# simulator at it. With --url: simulates against that deployment (e.g. the
# nginx of deploy/local.sh). Every simulated student shares 127.0.0.1, so
# the embedded server runs with its per-IP limits raised. `tandem-bench
# simulate --find-max` raises the DAU by 1.5x per step until a step fails
# (p99 >= 100 ms on some action, or any error) and reports the last that
# held. Results: bench/results/simulate-<name>-<speed>x.json with
# .latency.svg and .throughput.svg beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=simulate.sh
source bench/lib.sh

SPEED=10 DAU=5000 SECONDS_PER_STEP=60 URL="" NAME=embedded
while [ $# -gt 0 ]; do
  case $1 in
    --speed) SPEED=$2; shift 2 ;;
    --dau) DAU=$2; shift 2 ;;
    --seconds) SECONDS_PER_STEP=$2; shift 2 ;;
    --url) URL=$2; NAME=deployment; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "bench/$SCRIPT"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

WORK=$(mktemp -d)
cleanup() { stop_server tandem; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release --quiet -p tandem -p tandem-bench
BIN=${CARGO_TARGET_DIR:-target}/release/tandem
BENCH_BIN=${CARGO_TARGET_DIR:-target}/release/tandem-bench

if [ -z "$URL" ]; then
  TANDEM_TURN_LISTEN=off TANDEM_COOKIE_SECURE=false RUST_LOG=warn \
    TANDEM_API_MAX_PER_MINUTE=100000000 TANDEM_LOGIN_MAX_PER_IP=100000000 \
    TANDEM_REGISTER_MAX_PER_IP=100000000 TANDEM_MAX_CONNECTIONS_PER_IP=0 \
    "$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/tandem.out" 2>"$WORK/tandem.log" &
  PID[tandem]=$!
  URL=$(wait_url tandem "Tandem (embedded mode) is serving")
fi

mkdir -p bench/results
OUT=bench/results/simulate-$NAME-${SPEED}x.json
"$BENCH_BIN" simulate --url "$URL" --find-max --dau "$DAU" --speed "$SPEED" \
  --seconds "$SECONDS_PER_STEP" --out "$OUT"
echo "machine: $(machine)"
echo "date: $(date -u +%Y-%m-%d)"

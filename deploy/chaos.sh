#!/usr/bin/env bash
# The chaos run: the simulated community against deploy/local.sh while an
# instance is killed (kill -9), Redis restarts and the replica pauses.
# Passes when no session and no job is lost and no request fails for good
# (requests may be retried, as clients and nginx do); prints the recovery
# time of each failure.
#
#   bash deploy/chaos.sh [--short] [--dau N] [--speed X]
#
# --short (CI): 600 DAU at 10x for 45 s with the failures 8 s apart, on the
# binaries of TANDEM_BIN / TANDEM_BENCH_BIN (default: release builds).
# Starts the deployment if it is not running and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
DAU=3000 SPEED=10 SECONDS_PER_RUN=90 GAP=15
while [ $# -gt 0 ]; do
  case $1 in
    --short) DAU=600 SECONDS_PER_RUN=45 GAP=8; shift ;;
    --dau) DAU=$2; shift 2 ;;
    --speed) SPEED=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${TANDEM_BIN:-}" ] || [ -z "${TANDEM_BENCH_BIN:-}" ]; then
  cargo build --release --quiet -p tandem -p tandem-bench
  TANDEM_BIN=${TANDEM_BIN:-${CARGO_TARGET_DIR:-target}/release/tandem}
  TANDEM_BENCH_BIN=${TANDEM_BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tandem-bench}
fi
export TANDEM_BIN
RUN=${TANDEM_DEPLOY_DIR:-/tmp/tandem-deploy}
started=0
if ! curl -sf http://127.0.0.1:8000/readyz >/dev/null 2>&1; then
  bash deploy/local.sh start
  started=1
fi
finish() { [ "$started" = 0 ] || bash deploy/local.sh stop >/dev/null; }
trap finish EXIT

out=${CHAOS_OUT:-$RUN/chaos.json}
"$TANDEM_BENCH_BIN" simulate --url http://127.0.0.1:8000 --dau "$DAU" --speed "$SPEED" \
  --seconds "$SECONDS_PER_RUN" --warmup 5 \
  --chaos "$GAP=bash deploy/local.sh kill-instance 2" \
  --chaos "$((GAP * 2))=bash deploy/local.sh restart-redis" \
  --chaos "$((GAP * 3))=bash deploy/local.sh pause-replica" \
  --chaos "$((GAP * 4))=bash deploy/local.sh resume-replica" \
  --check-sessions --require-clean --out "$out"

#!/usr/bin/env bash
# Issue 5's queue benchmark in one run, on the Redis at 127.0.0.1:6379:
#   tandem-redis   Tandem's queue (BullMQ layout via bullmq-official) in tandem-bench;
#   bullmq-node    Node BullMQ 5 (bench/node-bullmq), same jobs, same options;
#   tandem-sqlite  Tandem's embedded queue on a fresh SQLite file.
# Each side adds N no-op jobs (default 50,000), then a worker with the given
# concurrency (default 50 and 1) runs them all; prints jobs/s, the worker
# process's CPU and Redis's, and Tandem/Node ratios; then pickup latency.
#
# Run from anywhere:  bash bench/queue-vs-bullmq.sh [queue-load options]
#   e.g. --jobs 50000 --concurrency 50,1 --latency-jobs 2000 (the defaults)
#   env: CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=queue-vs-bullmq
source bench/lib.sh

for tool in node npm cargo; do command -v "$tool" >/dev/null || die "$tool not found"; done
(cd bench/node-bullmq && npm ci --no-audit --no-fund --silent)
cargo build --release --quiet -p tandem-bench
target=${CARGO_TARGET_DIR:-target}/release
echo "machine: $(machine)"
"$target/tandem-bench" queue-load "$@"
echo "done: $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

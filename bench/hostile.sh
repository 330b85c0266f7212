#!/usr/bin/env bash
# Issue 18: Tandem under a mixed attack for 60 s (tandem-bench hostile):
# 500 slow-header connections, 500 idle kept-alive ones, a flood of made-up
# methods and anonymous requests for new image variants, from many loopback
# addresses, while /healthz is probed every 100 ms and a student signs in
# and reads /api/users/me every second. Fails unless /healthz p99 < 100 ms,
# the student is always served, RSS < 300 MB and the data dir grows by less
# than the variant budget.
#
#   bash bench/hostile.sh [--seconds 60] [--slow 500] [--idle 500] [--flood-rate 1000] [--variant-rate 50]
#   env: CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=hostile
source bench/lib.sh

cargo build --release --quiet -p tandem -p tandem-bench
target=${CARGO_TARGET_DIR:-target}/release
echo "machine: $(machine)"
"$target/tandem-bench" hostile --bin "$target/tandem" "$@"
echo "done: $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

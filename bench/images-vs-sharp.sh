#!/usr/bin/env bash
# Issue 8's image benchmark in one run: Tandem's /cdn-cgi/image/ endpoint
# (the release server in-process, variant cache off, every request resized)
# against sharp (npm, libvips) in bench/node-sharp, the same ~2.7 MP
# photo-like JPEG (generated, or --source FILE) resized to 720 px wide at
# quality 80 as JPEG and as WebP, with as many in flight as cores.
# Prints images/s, output sizes and Tandem/sharp per format.
#
# Run from anywhere:  bash bench/images-vs-sharp.sh [tandem-bench images options]
#   e.g. --images 600 --source photo.jpg --save-source photo.jpg
#   env: CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=images-vs-sharp
source bench/lib.sh

for tool in node npm cargo; do command -v "$tool" >/dev/null || die "$tool not found"; done
(cd bench/node-sharp && npm ci --no-audit --no-fund --silent)
cargo build --release --quiet -p tandem-bench
target=${CARGO_TARGET_DIR:-target}/release
echo "machine: $(machine)"
"$target/tandem-bench" images "$@"
echo "done: $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

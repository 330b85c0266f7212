#!/usr/bin/env bash
# Issue 7's read benchmark: GET /api/study-sessions/{id} (an uncached read:
# the session and its members, routed by read intent) with wrk, against the
# same release binary on the local primary/replica pair (scripts/pg-replica.sh):
#   primary       DATABASE_URL only: every read on the primary;
#   primary+replica  DATABASE_READ_REPLICA_URL too: reads on the replica
#                 (read-your-writes; the benchmark user wrote before the run).
# Sessions and write marks in Redis (127.0.0.1:6379). Prints req/s, p50, p99
# the share of reads the replica served (from /metrics), the CPU seconds each
# PostgreSQL cluster spent during the measured run, and the
# primary+replica / primary req/s ratio.
#
# Run from anywhere:  bash bench/replica-reads.sh [--write]
#   env: THREADS=2 CONNECTIONS=50 DURATION=15s WARMUP=3s CARGO_TARGET_DIR, TANDEM_BIN
# Needs: root (to start the pair as the postgres user), cargo, curl, psql, wrk,
# Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=replica-reads.sh
# shellcheck source=bench/lib.sh
. "bench/lib.sh"
wrk_bench_setup 16 "$@"

need_tools curl psql
[ -n "${TANDEM_BIN:-}" ] || need_tools cargo
build_tandem
scripts/pg-replica.sh start >&2
PRIMARY=postgres://postgres@127.0.0.1:${TANDEM_PG_PRIMARY_PORT:-55432}
REPLICA=postgres://postgres@127.0.0.1:${TANDEM_PG_REPLICA_PORT:-55433}
DB=tandem_bench_replica_$RAND
REDIS_PREFIX=tandem-bench:$RAND:
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")
cleanup() {
  stop_server primary
  stop_server replica
  drop_redis_keys "$REDIS_URL_BENCH" "$REDIS_PREFIX"
  psql "$PRIMARY/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
psql "$PRIMARY/postgres" -qc "CREATE DATABASE $DB" >/dev/null
for _ in $(seq 1 100); do psql "$REPLICA/$DB" -qc "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done

declare -A SHARE PCPU RCPU
PG_DIR=${TANDEM_PG_REPLICA_DIR:-/tmp/tandem-pg-replica}
# cluster_ticks NAME: CPU ticks so far of a cluster's postmaster and its children.
cluster_ticks() {
  local pm
  pm=$(head -n1 "$PG_DIR/$1/postmaster.pid")
  for pid in "$pm" $(pgrep -P "$pm"); do cat "/proc/$pid/stat" 2>/dev/null; done |
    awk '{t += $14 + $15} END {print t + 0}'
}
# bench NAME [replica URL]: serve, sign up, schedule a session, wrk its detail page.
bench() {
  local name=$1 url metrics cookie code id replica=${2:-}
  local -a envs=(DATABASE_URL="$PRIMARY/$DB" REDIS_URL="$REDIS_URL_BENCH" TANDEM_REDIS_PREFIX="$REDIS_PREFIX$name:"
    TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000 TANDEM_TURN_LISTEN=off
    TANDEM_QUEUE_WORKERS=false RUST_LOG=warn)
  [ -n "$replica" ] && envs+=(DATABASE_READ_REPLICA_URL="$replica")
  mkdir -p "$WORK/$name-data"
  env -u DATABASE_READ_REPLICA_URL "${envs[@]}" TANDEM_METRICS_ADDR=127.0.0.1:0 "$BIN" serve --addr 127.0.0.1:0 \
    --data-dir "$WORK/$name-data" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PID[$name]=$!
  url=$(wait_url "$name" "Tandem (distributed mode) is serving")
  metrics=$(wait_url "$name" "Metrics are served at")
  code=$(curl -s --max-time 30 -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" -X POST "$url/api/auth/register" \
    -H 'content-type: application/json' \
    -d "{\"email\":\"bench-$RAND-$name@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"Bench\"}") || true
  [ "$code" = 201 ] || die "register ($name) gave $code: $(cat "$WORK/body" 2>/dev/null)"
  cookie=$(cookie_from tandem_session)
  local start end
  start=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ) end=$(date -u -d '+3 hours' +%Y-%m-%dT%H:%M:%SZ)
  code=$(curl -s --max-time 30 -o "$WORK/session" -w '%{http_code}' -X POST "$url/api/study-sessions" \
    -H "Cookie: $cookie" -H 'content-type: application/json' \
    -d "{\"title\":\"Bench room\",\"subject\":\"Databases\",\"starts_at\":\"$start\",\"ends_at\":\"$end\",\"capacity\":10}") || true
  [ "$code" = 201 ] || die "scheduling ($name) gave $code: $(cat "$WORK/session")"
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$WORK/session" | head -n1)
  local p0 r0 hz
  p0=$(cluster_ticks primary) r0=$(cluster_ticks replica) hz=$(getconf CLK_TCK)
  run_wrk "$name" "$url" "$cookie" "/api/study-sessions/$id"
  PCPU[$name]=$(awk -v a="$(cluster_ticks primary)" -v b="$p0" -v hz="$hz" 'BEGIN {printf "%.1f", (a - b) / hz}')
  RCPU[$name]=$(awk -v a="$(cluster_ticks replica)" -v b="$r0" -v hz="$hz" 'BEGIN {printf "%.1f", (a - b) / hz}')
  curl -s "$metrics" >"$WORK/$name.metrics"
  SHARE[$name]=$(awk '/^tandem_db_reads_total\{target="replica"\}/ {r = $2} /^tandem_db_reads_total\{target="primary"\}/ {p = $2}
    END {printf "%.1f", (r + p > 0 ? 100 * r / (r + p) : 0)}' "$WORK/$name.metrics")
  stop_server "$name"
}

bench primary
bench replica "$REPLICA/$DB"

RATIO=$(awk -v r="${RPS[replica]}" -v p="${RPS[primary]}" 'BEGIN {printf "%.2f", r / p}')
TABLE="| setup | req/s | p50 | p99 | reads on the replica | primary CPU s | replica CPU s | non-2xx |
|-------|------:|----:|----:|------:|------:|------:|--------:|
| primary only | ${RPS[primary]} | ${P50[primary]} | ${P99[primary]} | n/a | ${PCPU[primary]} | ${RCPU[primary]} | ${NON2XX[primary]} |
| primary + replica | ${RPS[replica]} | ${P50[replica]} | ${P99[replica]} | ${SHARE[replica]} % | ${PCPU[replica]} | ${RCPU[replica]} | ${NON2XX[replica]} |"
printf '\nGET /api/study-sessions/{id}, wrk -t%s -c%s -d%s (after a %s warm-up)\n' "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
echo "$TABLE"
echo "primary+replica / primary req/s: $RATIO"
if [ "$WRITE" = 1 ]; then
  {
    echo
    echo "### $(date -u +%F)"
    echo
    echo "- Machine: $(machine)"
    echo "- Command: \`THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION WARMUP=$WARMUP bash bench/replica-reads.sh --write\`"
    echo
    echo "$TABLE"
    echo
    echo "primary+replica / primary req/s: **$RATIO**"
  } >>BENCHMARKS.md
fi

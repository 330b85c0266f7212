#!/usr/bin/env bash
# Benchmark of GET /api/users/me with a logged-in session cookie, in both modes
# of the same release binary:
#   embedded    - SQLite in a temp data dir; session lookup + profile query in SQLite
#   distributed - session lookup in Redis, profile query in PostgreSQL
# For each mode it starts `tandem serve` on a free loopback port, registers a
# fresh user, checks the cookie gives 200, warms up, runs wrk --latency, then
# stops the server with SIGTERM. Prints req/s, p50, p99 and the non-2xx count
# per mode and the distributed/embedded req/s ratio.
#
# Run from anywhere:  bash bench/users-me.sh [--write]
#   --write (or WRITE=1)  append a dated section to BENCHMARKS.md
#   env: THREADS=2 CONNECTIONS=50 DURATION=15s WARMUP=3s CARGO_TARGET_DIR
# Needs: cargo, curl, psql, wrk (installed via apt-get when missing and root),
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=users-me.sh
# shellcheck source=bench/lib.sh
. "bench/lib.sh"
wrk_bench_setup 15 "$@"

REDIS_PREFIX=tandem-bench:$RAND:

need_tools cargo curl psql
build_tandem
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")
cleanup() {
  stop_server embedded
  stop_server distributed
  drop_redis_keys "$REDIS_URL_BENCH" "$REDIS_PREFIX"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
create_database "$PG_DB"

# bench MODE: start the server, log in, run wrk; sets RPS/P50/P99/NON2XX[MODE].
bench() {
  local mode=$1 url cookie code
  local -a envs=(TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000
    TANDEM_REGISTER_MAX_PER_IP=1000 TANDEM_TURN_LISTEN=off RUST_LOG=warn)
  if [ "$mode" = distributed ]; then
    envs+=(DATABASE_URL="$DATABASE_URL_BENCH" REDIS_URL="$REDIS_URL_BENCH" TANDEM_REDIS_PREFIX="$REDIS_PREFIX")
  fi
  mkdir -p "$WORK/$mode-data"
  env -u DATABASE_URL -u REDIS_URL "${envs[@]}" "$BIN" serve --addr 127.0.0.1:0 \
    --data-dir "$WORK/$mode-data" >"$WORK/$mode.out" 2>"$WORK/$mode.log" &
  PID[$mode]=$!
  url=$(wait_url "$mode" "Tandem ($mode mode) is serving")
  echo "== $mode: $url" >&2

  code=$(curl -s --max-time 30 -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" -X POST "$url/api/auth/register" \
    -H 'content-type: application/json' \
    -d "{\"email\":\"bench-$RAND-$mode@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"Bench\"}") || true   # 000 = no answer in 30 s
  [ "$code" = 201 ] || die "register in $mode mode gave $code: $(cat "$WORK/body" 2>/dev/null)"
  cookie=$(cookie_from tandem_session)
  [ -n "$cookie" ] || die "no tandem_session cookie in the register response"
  code=$(curl -s --max-time 30 -o "$WORK/me" -w '%{http_code}' -H "Cookie: $cookie" "$url/api/users/me") || true
  [ "$code" = 200 ] || die "GET /api/users/me in $mode mode gave $code: $(cat "$WORK/me" 2>/dev/null)"
  run_wrk "$mode" "$url" "$cookie"
  stop_server "$mode"
}

bench embedded
bench distributed

RATIO=$(awk -v d="${RPS[distributed]}" -v e="${RPS[embedded]}" 'BEGIN {printf "%.2f", d / e}')
TABLE="| mode | req/s | p50 | p99 | non-2xx |
|------|------:|----:|----:|--------:|"
for mode in embedded distributed; do
  TABLE+=$'\n'"| $mode | ${RPS[$mode]} | ${P50[$mode]} | ${P99[$mode]} | ${NON2XX[$mode]} |"
done
printf '\nGET /api/users/me, wrk -t%s -c%s -d%s (after a %s warm-up)\n' "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
echo "$TABLE"
echo "distributed/embedded req/s: $RATIO"

if [ "$WRITE" = 1 ]; then
  {
    echo
    echo "### $(date -u +%F)"
    echo
    echo "- Machine: $(machine)"
    echo "- Command: \`THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION WARMUP=$WARMUP bash bench/users-me.sh --write\`"
    echo "- wrk: \`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Cookie: tandem_session=…' http://127.0.0.1:PORT/api/users/me\` after a $WARMUP warm-up; one user, one session"
    echo
    echo "$TABLE"
    echo
    echo "distributed/embedded req/s: **$RATIO**"
  } >>BENCHMARKS.md
  echo "appended to BENCHMARKS.md" >&2
fi

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

WRITE=${WRITE:-0}
for arg in "$@"; do
  case $arg in
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: bash bench/users-me.sh [--write]" >&2; exit 2 ;;
  esac
done
THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-50} DURATION=${DURATION:-15s} WARMUP=${WARMUP:-3s}
PG_DB=tandem_bench
DATABASE_URL_BENCH=postgres://postgres@127.0.0.1:5432/$PG_DB
REDIS_URL_BENCH=redis://127.0.0.1:6379
RAND=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
REDIS_PREFIX=tandem-bench:$RAND:

die() { echo "users-me.sh: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "wrk not found; installing it with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    die "wrk not found: install it (e.g. 'sudo apt-get install wrk') and rerun"
  fi
fi
for tool in cargo curl psql; do command -v "$tool" >/dev/null || die "$tool not found"; done

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/tandem
[ -x "$BIN" ] || die "no binary at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")
PID=""
stop_server() {   # SIGTERM, wait up to 30 s for the graceful shutdown, then SIGKILL
  local i
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then echo "warning: server still up 30 s after SIGTERM; killing it" >&2; kill -KILL "$PID"; fi
  wait "$PID" || echo "warning: server $PID exited with status $?" >&2
  PID=""
}
cleanup() {
  stop_server
  if command -v redis-cli >/dev/null; then   # drop this run's keys
    redis-cli -u "$REDIS_URL_BENCH" --scan --pattern "$REDIS_PREFIX*" \
      | xargs -r redis-cli -u "$REDIS_URL_BENCH" del >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=$(psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" 2>&1) \
  || grep -q "already exists" <<<"$out" || die "cannot create database $PG_DB: $out"

# bench MODE: start the server, log in, run wrk; sets RPS/P50/P99/NON2XX[MODE].
declare -A RPS P50 P99 NON2XX
bench() {
  local mode=$1 url="" cookie code i sockerr
  local -a envs=(TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000
    TANDEM_REGISTER_MAX_PER_IP=1000 RUST_LOG=warn)
  if [ "$mode" = distributed ]; then
    envs+=(DATABASE_URL="$DATABASE_URL_BENCH" REDIS_URL="$REDIS_URL_BENCH" TANDEM_REDIS_PREFIX="$REDIS_PREFIX")
  fi
  mkdir -p "$WORK/$mode-data"
  env -u DATABASE_URL -u REDIS_URL "${envs[@]}" "$BIN" serve --addr 127.0.0.1:0 \
    --data-dir "$WORK/$mode-data" >"$WORK/$mode.out" 2>"$WORK/$mode.log" &
  PID=$!
  for ((i = 0; i < 600; i++)); do   # wait up to 60 s for the "is serving" line
    url=$(sed -n "s|^Tandem ($mode mode) is serving \(http://[^ ]*\)\$|\1|p" "$WORK/$mode.out")
    [ -n "$url" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$mode.log" >&2; die "$mode server exited early"; }
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$WORK/$mode.log" >&2; die "$mode server not serving after 60 s"; }
  echo "== $mode: $url" >&2

  code=$(curl -s --max-time 30 -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" -X POST "$url/api/auth/register" \
    -H 'content-type: application/json' \
    -d "{\"email\":\"bench-$RAND-$mode@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"Bench\"}") || true   # 000 = no answer in 30 s
  [ "$code" = 201 ] || die "register in $mode mode gave $code: $(cat "$WORK/body" 2>/dev/null)"
  cookie=$(tr -d '\r' <"$WORK/headers" | sed -n 's/^[Ss]et-[Cc]ookie: *\(tandem_session=[^;]*\).*/\1/p' | head -n1)
  [ -n "$cookie" ] || die "no tandem_session cookie in the register response"
  code=$(curl -s --max-time 30 -o "$WORK/me" -w '%{http_code}' -H "Cookie: $cookie" "$url/api/users/me") || true
  [ "$code" = 200 ] || die "GET /api/users/me in $mode mode gave $code: $(cat "$WORK/me" 2>/dev/null)"

  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Cookie: $cookie" "$url/api/users/me" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: $cookie" \
    "$url/api/users/me" | tee "$WORK/$mode.wrk" >&2
  RPS[$mode]=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/$mode.wrk")
  P50[$mode]=$(awk '$1 == "50%" {print $2}' "$WORK/$mode.wrk")
  P99[$mode]=$(awk '$1 == "99%" {print $2}' "$WORK/$mode.wrk")
  NON2XX[$mode]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/$mode.wrk")
  NON2XX[$mode]=${NON2XX[$mode]:-0}
  [ -n "${RPS[$mode]}" ] && [ -n "${P99[$mode]}" ] || die "could not parse wrk output for $mode"
  [ "${NON2XX[$mode]}" = 0 ] || echo "WARNING: $mode mode: ${NON2XX[$mode]} non-2xx/3xx responses" >&2
  sockerr=$(grep '^ *Socket errors' "$WORK/$mode.wrk" || true)
  [ -z "$sockerr" ] || echo "WARNING: $mode mode:$sockerr" >&2
  code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$url/api/users/me") || true
  [ "$code" = 200 ] || echo "WARNING: $mode mode: after the run GET /api/users/me gave $code" >&2
  stop_server
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
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  ram=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  {
    echo
    echo "### $(date -u +%F)"
    echo
    echo "- Machine: $(nproc) cores, ${cpu:-unknown CPU}, $ram RAM, Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Command: \`THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION WARMUP=$WARMUP bash bench/users-me.sh --write\`"
    echo "- wrk: \`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Cookie: tandem_session=…' http://127.0.0.1:PORT/api/users/me\` after a $WARMUP warm-up; one user, one session"
    echo
    echo "$TABLE"
    echo
    echo "distributed/embedded req/s: **$RATIO**"
  } >>BENCHMARKS.md
  echo "appended to BENCHMARKS.md" >&2
fi

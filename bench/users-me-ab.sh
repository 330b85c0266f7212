#!/usr/bin/env bash
# GET /api/users/me, two Tandem builds compared in the same minutes: both up at
# once (a database, data dir and key prefix each), one user each, then
# `wrk -t2 -c50 -d5s` against each in turn for ROUNDS rounds, the order
# alternating, so a noisy host slows both alike. Prints each round's req/s and
# the server's CPU time per request (user + system, from /proc), which a busy
# neighbour disturbs far less than throughput, and the B/A ratios; then the
# medians.
#
#   bash bench/users-me-ab.sh A_BIN B_BIN [ROUNDS=6] [MODE=distributed|embedded]
# Needs wrk, curl, bc; for distributed mode psql, PostgreSQL on 127.0.0.1:5432
# and Redis on 127.0.0.1:6379.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-6} MODE=${4:-distributed}
W=$(mktemp -d)
TICK=$(getconf CLK_TCK)
start() { # name bin db
  local -a envs=(TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000
    TANDEM_REGISTER_MAX_PER_IP=1000 RUST_LOG=warn TANDEM_TURN_LISTEN=off)
  if [ "$MODE" = distributed ]; then
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $3" 2>/dev/null || true
    envs+=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/$3 REDIS_URL=redis://127.0.0.1:6379
      TANDEM_REDIS_PREFIX=ab-$1-$RANDOM:)
  fi
  env -u DATABASE_URL -u REDIS_URL "${envs[@]}" "$2" serve --addr 127.0.0.1:0 --data-dir "$W/$1" \
    > "$W/$1.out" 2>"$W/$1.log" &
  echo $! > "$W/$1.pid"
  for _ in $(seq 1 100); do grep -q "is serving" "$W/$1.out" 2>/dev/null && break; sleep 0.2; done
  url=$(grep -o 'http://[0-9.:]*' "$W/$1.out" | tail -1)
  curl -s -D "$W/$1.h" -o /dev/null -X POST "$url/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"ab-$1-$RANDOM@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"AB\"}"
  cookie=$(grep -i '^set-cookie: tandem_session=' "$W/$1.h" | sed 's/^[Ss]et-[Cc]ookie: //; s/;.*//' | tr -d '\r')
  [ -n "$cookie" ] || { echo "build $1 ($2) gave no session cookie: $(cat "$W/$1.log")" >&2; exit 1; }
  echo "$url $cookie"
}
read -r UA CA < <(start a "$A" tandem_ab_a)
read -r UB CB < <(start b "$B" tandem_ab_b)
trap 'kill $(cat $W/a.pid) $(cat $W/b.pid) 2>/dev/null; rm -rf $W' EXIT
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$W/$1.pid")/stat"; } # user + system ticks
# run NAME URL COOKIE: one 5 s wrk run; prints "req/s µs-of-server-CPU-per-request".
run() {
  local before out rps total
  before=$(cpu "$1")
  out=$(wrk -t2 -c50 -d5s -H "Cookie: $3" "$2/api/users/me")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(echo "scale=1; ($(cpu "$1") - $before) * 1000000 / $TICK / $total" | bc)"
}
run a "$UA" "$CA" >/dev/null; run b "$UB" "$CB" >/dev/null # warm-up
echo "GET /api/users/me, $MODE mode, $ROUNDS rounds: A=$A B=$B"
: > "$W/rounds"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then read -r ra ca < <(run a "$UA" "$CA"); read -r rb cb < <(run b "$UB" "$CB")
  else read -r rb cb < <(run b "$UB" "$CB"); read -r ra ca < <(run a "$UA" "$CA"); fi
  rr=$(echo "scale=3; $rb/$ra" | bc) cr=$(echo "scale=3; $cb/$ca" | bc)
  echo "round $r: req/s A $ra B $rb B/A $rr | CPU µs/request A $ca B $cb B/A $cr"
  echo "$rr $cr" >> "$W/rounds"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
echo "median B/A: req/s $(cut -d' ' -f1 "$W/rounds" | median), CPU per request $(cut -d' ' -f2 "$W/rounds" | median) (below 1 is cheaper)"

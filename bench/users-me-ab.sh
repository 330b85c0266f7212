#!/usr/bin/env bash
# GET /api/users/me, two Tandem builds compared in the same minutes: both up at
# once (distributed mode, a database and key prefix each), one user each, then
# `wrk -t2 -c50 -d5s` against each in turn for ROUNDS rounds, so a noisy host
# slows both alike. Prints each round's req/s and the B/A ratio.
#
#   bash bench/users-me-ab.sh A_BIN B_BIN [ROUNDS=6]
# Needs wrk, curl, psql, bc; PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-6}
W=$(mktemp -d)
start() { # name bin db
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $3" 2>/dev/null || true
  env DATABASE_URL=postgres://postgres@127.0.0.1:5432/$3 REDIS_URL=redis://127.0.0.1:6379 TANDEM_REDIS_PREFIX=ab-$1-$RANDOM: \
    TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000 TANDEM_REGISTER_MAX_PER_IP=1000 RUST_LOG=warn TANDEM_TURN_LISTEN=off \
    "$2" serve --addr 127.0.0.1:0 --data-dir "$W/$1" > "$W/$1.out" 2>"$W/$1.log" &
  echo $! > "$W/$1.pid"
  for _ in $(seq 1 100); do grep -q "is serving" "$W/$1.out" 2>/dev/null && break; sleep 0.2; done
  url=$(grep -o 'http://[0-9.:]*' "$W/$1.out" | tail -1)
  curl -s -D "$W/$1.h" -o /dev/null -X POST "$url/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"ab-$1-$RANDOM@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"AB\"}"
  cookie=$(grep -i '^set-cookie: tandem_session=' "$W/$1.h" | sed 's/^[Ss]et-[Cc]ookie: //; s/;.*//' | tr -d '\r')
  echo "$url $cookie"
}
read -r UA CA < <(start a "$A" tandem_ab_a)
read -r UB CB < <(start b "$B" tandem_ab_b)
trap 'kill $(cat $W/a.pid) $(cat $W/b.pid) 2>/dev/null; rm -rf $W' EXIT
wrk -t2 -c50 -d3s -H "Cookie: $CA" "$UA/api/users/me" >/dev/null; wrk -t2 -c50 -d3s -H "Cookie: $CB" "$UB/api/users/me" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  a=$(wrk -t2 -c50 -d5s -H "Cookie: $CA" "$UA/api/users/me" | awk '/Requests\/sec/ {print $2}')
  b=$(wrk -t2 -c50 -d5s -H "Cookie: $CB" "$UB/api/users/me" | awk '/Requests\/sec/ {print $2}')
  echo "round $r: A $a  B $b  B/A $(echo "scale=3; $b/$a" | bc)"
done

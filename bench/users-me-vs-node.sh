#!/usr/bin/env bash
# Benchmark B of issue 3: GET /api/users/me on Tandem (distributed mode: session
# in Redis, profile from the cache) side by side with the Node stack the
# roadmap describes (bench/node-express: Express 5 + express-session +
# connect-redis on ioredis, profile cache-aside in Redis, pg on a miss), in one
# run, on the same machine, the same Redis, the same PostgreSQL database and
# the same wrk load.
# It starts both servers on free loopback ports, registers one user through
# Tandem, logs the same user in to the Node server (bench-only /bench/login),
# checks both answer 200 with the same id and e-mail, then warms up and runs
# wrk --latency against Tandem and then against Node. Prints req/s, p50, p99,
# non-2xx for both, the Tandem/Node ratios and whether the targets are met
# (Tandem req/s >= 10x Node, Tandem p99 <= 5 ms).
#
# Run from anywhere:  bash bench/users-me-vs-node.sh [--write]
#   --write (or WRITE=1)  append a dated section to BENCHMARKS.md
#   env: THREADS=2 CONNECTIONS=50 DURATION=15s WARMUP=3s CARGO_TARGET_DIR, TANDEM_BIN (skip the build),
#        PG_DB (database of the run; one per binary when comparing builds)
# Needs: cargo, curl, psql, node + npm, wrk (installed via apt-get when missing
# and root), PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), Redis on
# 127.0.0.1:6379; redis-cli to clean up this run's keys.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=users-me-vs-node.sh
# shellcheck source=bench/lib.sh
. "bench/lib.sh"
wrk_bench_setup 21 "$@"

TANDEM_PREFIX=tandem-bench:$RAND:
NODE_PREFIX=node-bench:$RAND:
NODE_DIR=bench/node-express
TARGET_RATIO=10 TARGET_P99_MS=5

need_tools cargo curl psql node npm
build_tandem
timeout 600 npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error >/dev/null \
  || die "npm ci in $NODE_DIR failed"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench-vs-node.XXXXXX")
cleanup() {
  stop_server tandem
  stop_server node
  drop_redis_keys "$REDIS_URL_BENCH" "$TANDEM_PREFIX" "$NODE_PREFIX"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
create_database "$PG_DB"

# json_field FILE FIELD: one top-level field of a JSON file.
json_field() { node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(o[process.argv[2]] ?? "")' "$1" "$2"; }

# --- start both servers (they stay up for the whole run; each is idle while the other is measured)
env -u DATABASE_URL -u REDIS_URL DATABASE_URL="$DATABASE_URL_BENCH" REDIS_URL="$REDIS_URL_BENCH" \
  TANDEM_REDIS_PREFIX="$TANDEM_PREFIX" TANDEM_COOKIE_SECURE=false TANDEM_API_MAX_PER_MINUTE=100000000 \
  TANDEM_REGISTER_MAX_PER_IP=1000 RUST_LOG=warn \
  TANDEM_TURN_LISTEN=off "$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/tandem-data" >"$WORK/tandem.out" 2>"$WORK/tandem.log" &
PID[tandem]=$!
env NODE_ENV=production PORT=0 HOST=127.0.0.1 DATABASE_URL="$DATABASE_URL_BENCH" REDIS_URL="$REDIS_URL_BENCH" \
  REDIS_PREFIX="$NODE_PREFIX" SESSION_SECRET="bench-$RAND-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
  node "$NODE_DIR/server.mjs" >"$WORK/node.out" 2>"$WORK/node.log" &
PID[node]=$!
declare -A URL
URL[tandem]=$(wait_url tandem 'Tandem (distributed mode) is serving')
URL[node]=$(wait_url node 'Express baseline is serving')
echo "== tandem: ${URL[tandem]}  node: ${URL[node]}" >&2

# --- one user, registered through Tandem (so it is in PostgreSQL), logged in to both
code=$(curl -s --max-time 30 -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" -X POST "${URL[tandem]}/api/auth/register" \
  -H 'content-type: application/json' \
  -d "{\"email\":\"bench-$RAND-vs-node@example.com\",\"password\":\"correct horse battery staple\",\"display_name\":\"Bench\"}") || true
[ "$code" = 201 ] || die "register on Tandem gave $code: $(cat "$WORK/body" 2>/dev/null)"
declare -A COOKIE
COOKIE[tandem]=$(cookie_from tandem_session)
[ -n "${COOKIE[tandem]}" ] || die "no tandem_session cookie in the register response"
code=$(curl -s --max-time 30 -o "$WORK/tandem.me" -w '%{http_code}' -H "Cookie: ${COOKIE[tandem]}" "${URL[tandem]}/api/users/me") || true
[ "$code" = 200 ] || die "GET /api/users/me on Tandem gave $code: $(cat "$WORK/tandem.me" 2>/dev/null)"
USER_ID=$(json_field "$WORK/tandem.me" id)
EMAIL=$(json_field "$WORK/tandem.me" email)
[ -n "$USER_ID" ] || die "no id in Tandem's /api/users/me: $(cat "$WORK/tandem.me")"

code=$(curl -s --max-time 30 -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" -X POST "${URL[node]}/bench/login" \
  -H 'content-type: application/json' -d "{\"user_id\":\"$USER_ID\"}") || true
[ "$code" = 204 ] || die "login on Node gave $code: $(cat "$WORK/body" 2>/dev/null)"
COOKIE[node]=$(cookie_from connect.sid)
[ -n "${COOKIE[node]}" ] || die "no connect.sid cookie in the Node login response"
code=$(curl -s --max-time 30 -o "$WORK/node.me" -w '%{http_code}' -H "Cookie: ${COOKIE[node]}" "${URL[node]}/api/users/me") || true
[ "$code" = 200 ] || die "GET /api/users/me on Node gave $code: $(cat "$WORK/node.me" 2>/dev/null)"
[ "$(json_field "$WORK/node.me" id)" = "$USER_ID" ] && [ "$(json_field "$WORK/node.me" email)" = "$EMAIL" ] \
  || die "Tandem and Node disagree on the user: $(cat "$WORK/tandem.me") vs $(cat "$WORK/node.me")"
echo "== both return user $USER_ID ($EMAIL)" >&2

# --- the same wrk load against each, one after the other
declare -A P99MS
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.3f", n }'; }
for name in tandem node; do
  run_wrk "$name" "${URL[$name]}" "${COOKIE[$name]}"
  P99MS[$name]=$(to_ms "${P99[$name]}")
done

RPS_RATIO=$(awk -v t="${RPS[tandem]}" -v n="${RPS[node]}" 'BEGIN {printf "%.2f", t / n}')
P99_RATIO=$(awk -v t="${P99MS[tandem]}" -v n="${P99MS[node]}" 'BEGIN {printf "%.2f", t / n}')
met() { if [ "$1" = 1 ]; then echo "met"; else echo "NOT met"; fi; }
RPS_MET=$(met "$(awk -v r="$RPS_RATIO" -v t="$TARGET_RATIO" 'BEGIN {print (r >= t)}')")
P99_MET=$(met "$(awk -v p="${P99MS[tandem]}" -v t="$TARGET_P99_MS" 'BEGIN {print (p <= t)}')")
TABLE="| server | req/s | p50 | p99 | non-2xx |
|--------|------:|----:|----:|--------:|
| Tandem (Rust, distributed mode) | ${RPS[tandem]} | ${P50[tandem]} | ${P99[tandem]} | ${NON2XX[tandem]} |
| Express 5 + connect-redis (Node, 1 process) | ${RPS[node]} | ${P50[node]} | ${P99[node]} | ${NON2XX[node]} |"
printf '\nGET /api/users/me, wrk -t%s -c%s -d%s (after a %s warm-up each)\n' "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP"
echo "$TABLE"
echo "Tandem/Node req/s: ${RPS_RATIO}x (target >= ${TARGET_RATIO}x: $RPS_MET)"
echo "Tandem/Node p99: $P99_RATIO (Tandem p99 ${P99[tandem]}, target <= ${TARGET_P99_MS}ms: $P99_MET)"

if [ "$WRITE" = 1 ]; then
  HEADING="## GET /api/users/me: Tandem vs Express + connect-redis (issue 3, benchmark B)"
  lockver() { node -p "require('./$NODE_DIR/package-lock.json').packages['node_modules/$1'].version"; }
  redis_ver=$(redis-cli -u "$REDIS_URL_BENCH" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version://p' || true)
  pg_ver=$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version' 2>/dev/null | cut -d' ' -f1 || true)
  {
    if ! grep -qxF "$HEADING" BENCHMARKS.md; then
      cat <<EOF

$HEADING

\`bash bench/users-me-vs-node.sh [--write]\` runs \`GET /api/users/me\` on
Tandem side by side with the Node stack the roadmap describes, in one run, on
the same machine, against the same Redis and the same PostgreSQL database, with
the same [wrk](https://github.com/wg/wrk) load (defaults: 2 threads, 50
connections, 15 s, after a 3 s warm-up each; Tandem first, then Node):

- **Tandem**: the release binary in distributed mode; every request reads the
  session from Redis, then serves the account and profile from the cache
  (in-process L1 in front of Redis L2, key \`user:{id}\`, 5 min TTL).
- **Node**: \`bench/node-express/server.mjs\`, Express 5 with express-session
  and a connect-redis \`RedisStore\` on ioredis (\`resave: false\`,
  \`saveUninitialized: false\`, so each request is a session \`GET\` plus the
  store's \`EXPIRE\` touch), and the roadmap's cache-aside profile cache:
  \`GET cache:user:{id}\` (under a per-run key prefix) from Redis, on a miss
  a \`users JOIN profiles\` query through a pg Pool and \`SETEX\` 300 s. It
  runs as a single Node process (no cluster), as the roadmap's stack runs one
  process per instance, with \`NODE_ENV=production\`. Login is a bench-only
  \`POST /bench/login\` that puts the user id in the session; the password
  check is not what is measured.

One user is registered through Tandem (so it exists in PostgreSQL) and logged
in to both; the script checks both servers return 200 with the same \`id\` and
\`email\` before measuring. Both servers stay up for the whole run (each idle
while the other is measured). wrk, Redis, PostgreSQL and the server under test
share the same cores. Targets from the issue: Tandem at least 10x Node's req/s,
with a Tandem p99 of at most 5 ms. \`--write\` appends a section below.
EOF
    fi
    echo
    echo "### $(date -u +%F)"
    echo
    echo "- Machine: $(machine)"
    echo "- Command: \`THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION WARMUP=$WARMUP bash bench/users-me-vs-node.sh --write\`"
    echo "- wrk: \`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Cookie: …' http://127.0.0.1:PORT/api/users/me\` after a $WARMUP warm-up, against each server; one user, one session each"
    echo "- Versions: Node $(node --version), express $(lockver express), express-session $(lockver express-session), connect-redis $(lockver connect-redis), ioredis $(lockver ioredis), pg $(lockver pg); Redis ${redis_ver:-?}, PostgreSQL ${pg_ver:-?}"
    echo
    echo "$TABLE"
    echo
    echo "- Tandem/Node req/s: **${RPS_RATIO}x** (target ≥ ${TARGET_RATIO}x: **$RPS_MET**)"
    echo "- Tandem/Node p99: **$P99_RATIO**; Tandem p99 ${P99[tandem]} (target ≤ ${TARGET_P99_MS} ms: **$P99_MET**)"
  } >>BENCHMARKS.md
  echo "appended to BENCHMARKS.md" >&2
fi

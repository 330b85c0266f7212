#!/usr/bin/env bash
# Tandem scaled out on one machine, shaped like a production deployment:
#
#   nginx 127.0.0.1:8000 ─┬─ tandem serve :8101 ┐
#                          ├─ tandem serve :8102 ├─ Redis :6380 (AOF), PostgreSQL primary :55432
#                          └─ tandem serve :8103 ┘   + streaming replica :55433, S3 API (moto) :59000,
#   tandem worker × 2 ──────────────────────────────  coturn :3479
#
#   bash deploy/local.sh start            build (release) and start everything (idempotent)
#   bash deploy/local.sh stop             stop everything
#   bash deploy/local.sh status           what runs
#   bash deploy/local.sh env              the instances' environment
#   bash deploy/local.sh kill-instance N  kill -9 instance N (1-3); its supervisor restarts it, like systemd
#   bash deploy/local.sh restart-redis    graceful Redis restart (AOF keeps sessions and jobs)
#   bash deploy/local.sh pause-replica | resume-replica   stop / resume WAL replay on the replica
#
# Each process runs under a supervisor loop (restart after 1 s), as systemd's
# Restart=always does in production (deploy/systemd/). Needs root for the
# PostgreSQL pair (scripts/pg-replica.sh), nginx, coturn, redis-server, moto.
# env: TANDEM_DEPLOY_DIR (/tmp/tandem-deploy), TANDEM_BIN (a built binary).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${TANDEM_DEPLOY_DIR:-/tmp/tandem-deploy}
NGINX_PORT=8000 REDIS_PORT=6380 TURN_PORT=3479 S3=http://127.0.0.1:59000
INSTANCES=(8101 8102 8103) WORKERS=2
PRIMARY=postgres://postgres@127.0.0.1:55432 REPLICA=postgres://postgres@127.0.0.1:55433

die() { echo "deploy/local.sh: $*" >&2; exit 1; }
wait_for() { # what, command...
  local what=$1 i; shift
  for ((i = 0; i < 300; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "$what did not come up (logs in $RUN)"
}

write_env() {
  [ -f "$RUN/secrets" ] || {
    echo "TURN_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    echo "TANDEM_REALTIME_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    echo "CRON_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  } >"$RUN/secrets"
  cat >"$RUN/tandem.env" <<ENV
DATABASE_URL=$PRIMARY/tandem
DATABASE_READ_REPLICA_URL=$REPLICA/tandem
DATABASE_MAX_CONNECTIONS=20
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
UPLOADS_BUCKET=tandem-uploads
ARCHIVE_BUCKET=tandem-archive
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_ENDPOINT_URL=$S3
TURN_SERVER_URL=turn:127.0.0.1:$TURN_PORT
TANDEM_TURN_LISTEN=off
TANDEM_QUEUE_WORKERS=false
TANDEM_TRUST_PROXY=true
TANDEM_COOKIE_SECURE=false
TANDEM_LOG_FORMAT=json
RUST_LOG=warn
$(cat "$RUN/secrets")
ENV
  # Load tests come from one IP: deploy/local.sh is a lab, not production.
  cat >>"$RUN/tandem.env" <<'ENV'
TANDEM_API_MAX_PER_MINUTE=100000000
TANDEM_LOGIN_MAX_PER_IP=100000000
TANDEM_REGISTER_MAX_PER_IP=100000000
ENV
}

# supervise NAME COMMAND...: runs COMMAND in a restart loop, pid of the loop in $RUN/NAME.pid.
supervise() {
  local name=$1; shift
  ( trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM
    while true; do
      "$@" >>"$RUN/$name.log" 2>&1 &
      child=$!
      echo "$child" >"$RUN/$name.child"
      wait "$child" || true
      echo "$(date -u +%FT%TZ) $name exited; restarting in 1 s" >>"$RUN/supervisor.log"
      sleep 1
    done ) </dev/null >/dev/null 2>&1 &
  echo $! >"$RUN/$name.pid"
}

start() {
  mkdir -p "$RUN/redis"
  local bin=${TANDEM_BIN:-}
  if [ -z "$bin" ]; then
    cargo build --release --quiet --bin tandem
    bin=${CARGO_TARGET_DIR:-target}/release/tandem
  fi
  write_env
  # Redis with an append-only file: a restart keeps sessions and queued jobs.
  if ! redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; then
    redis-server --port $REDIS_PORT --bind 127.0.0.1 --daemonize yes --dir "$RUN/redis" \
      --appendonly yes --appendfsync everysec --save "" --pidfile "$RUN/redis.pid" \
      --logfile "$RUN/redis.log"
    wait_for Redis redis-cli -p $REDIS_PORT ping
  fi
  scripts/pg-replica.sh start
  psql "$PRIMARY/postgres" -qtc "SELECT 1 FROM pg_database WHERE datname = 'tandem'" | grep -q 1 \
    || psql "$PRIMARY/postgres" -qc "CREATE DATABASE tandem"
  if ! curl -sf "$S3/" >/dev/null 2>&1; then
    command -v moto_server >/dev/null || pip install -q 'moto[server]'
    nohup moto_server -H 127.0.0.1 -p 59000 </dev/null >"$RUN/moto.log" 2>&1 &
    wait_for "the S3 API" curl -sf "$S3/"
  fi
  for bucket in tandem-uploads tandem-archive; do curl -sf -X PUT "$S3/$bucket" >/dev/null; done
  if ! [ -f "$RUN/turn.pid" ] || ! kill -0 "$(cat "$RUN/turn.pid")" 2>/dev/null; then
    { cat deploy/turnserver.conf; echo "listening-port=$TURN_PORT"
      grep '^TURN_SECRET=' "$RUN/secrets" | sed 's/^TURN_SECRET=/static-auth-secret=/'
      echo "log-file=$RUN/turn.log"; echo "pidfile=$RUN/turn.pid"; } >"$RUN/turnserver.conf"
    turnserver -c "$RUN/turnserver.conf" </dev/null >/dev/null 2>&1 &
  fi
  set -a; source "$RUN/tandem.env"; set +a
  "$bin" migrate >/dev/null
  local port i upstreams=""
  for port in "${INSTANCES[@]}"; do
    if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      supervise "serve-$port" env TANDEM_ADDR=127.0.0.1:$port "$bin" serve
    fi
    upstreams+="        server 127.0.0.1:$port max_fails=1 fail_timeout=2s;"$'\n'
  done
  for ((i = 1; i <= WORKERS; i++)); do
    [ -f "$RUN/worker-$i.pid" ] && kill -0 "$(cat "$RUN/worker-$i.pid")" 2>/dev/null || supervise "worker-$i" "$bin" worker
  done
  for port in "${INSTANCES[@]}"; do wait_for "instance :$port" curl -sf "http://127.0.0.1:$port/readyz"; done
  sed -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$NGINX_PORT|g" deploy/nginx.conf \
    | awk -v up="$upstreams" '{ if ($0 == "@UPSTREAMS@") printf "%s", up; else print }' >"$RUN/nginx.conf"
  if [ -f "$RUN/nginx.pid" ] && kill -0 "$(cat "$RUN/nginx.pid")" 2>/dev/null; then
    nginx -c "$RUN/nginx.conf" -s reload
  else
    nginx -c "$RUN/nginx.conf"
  fi
  wait_for nginx curl -sf "http://127.0.0.1:$NGINX_PORT/readyz"
  echo "Tandem is serving http://127.0.0.1:$NGINX_PORT (3 instances, $WORKERS workers; logs in $RUN)"
}

stop_pidfile() { # NAME: TERM the process in $RUN/NAME.pid
  local f="$RUN/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

stop() {
  [ -f "$RUN/nginx.pid" ] && nginx -c "$RUN/nginx.conf" -s quit 2>/dev/null || true
  local name
  for name in "${INSTANCES[@]/#/serve-}"; do stop_pidfile "$name"; done
  for ((i = 1; i <= WORKERS; i++)); do stop_pidfile "worker-$i"; done
  stop_pidfile turn
  redis-cli -p $REDIS_PORT shutdown >/dev/null 2>&1 || true
  echo "stopped (PostgreSQL pair: scripts/pg-replica.sh stop; data in $RUN)"
}

status() {
  local port
  for port in "${INSTANCES[@]}"; do
    printf 'serve :%s  %s\n' "$port" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)"
  done
  printf 'nginx :%s  %s\n' "$NGINX_PORT" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/readyz" || true)"
  printf 'redis :%s  %s\n' "$REDIS_PORT" "$(redis-cli -p $REDIS_PORT ping 2>&1 || true)"
}

case ${1:-} in
  start) mkdir -p "$RUN"; chmod 755 "$RUN"; start ;;  # nginx's workers write their temp files here
  stop) stop ;;
  status) status ;;
  env) cat "$RUN/tandem.env" ;;
  kill-instance)
    port=${INSTANCES[$((${2:?instance 1-3} - 1))]}
    kill -KILL "$(cat "$RUN/serve-$port.child")"
    echo "killed instance :$port (kill -9); its supervisor restarts it" ;;
  restart-redis)
    redis-cli -p $REDIS_PORT shutdown
    redis-server --port $REDIS_PORT --bind 127.0.0.1 --daemonize yes --dir "$RUN/redis" \
      --appendonly yes --appendfsync everysec --save "" --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
    wait_for Redis redis-cli -p $REDIS_PORT ping
    echo "Redis restarted" ;;
  pause-replica) psql "$REPLICA/postgres" -qc "SELECT pg_wal_replay_pause()" >/dev/null; echo "replica paused" ;;
  resume-replica) psql "$REPLICA/postgres" -qc "SELECT pg_wal_replay_resume()" >/dev/null; echo "replica resumed" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac

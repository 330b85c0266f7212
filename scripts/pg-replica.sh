#!/usr/bin/env bash
# A PostgreSQL primary and a streaming hot-standby replica for the replica
# tests and benchmark, on spare ports under a temp dir (the machine's own
# PostgreSQL on 5432 is untouched): initdb, then pg_basebackup -R, run as the
# postgres user.
#
#   scripts/pg-replica.sh start            primary :55432, replica :55433 (idempotent)
#   scripts/pg-replica.sh stop             both, and removes the directory
#   scripts/pg-replica.sh stop-replica     just the replica (tests: failover)
#   scripts/pg-replica.sh start-replica    the replica again
#
# env: TANDEM_PG_REPLICA_DIR (/tmp/tandem-pg-replica), TANDEM_PG_PRIMARY_PORT,
# TANDEM_PG_REPLICA_PORT. URLs: postgres://postgres@127.0.0.1:PORT/postgres
set -euo pipefail
dir=${TANDEM_PG_REPLICA_DIR:-/tmp/tandem-pg-replica}
primary_port=${TANDEM_PG_PRIMARY_PORT:-55432}
replica_port=${TANDEM_PG_REPLICA_PORT:-55433}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/initdb" ] || { echo "pg-replica: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 1; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$1"; }
ctl() { # ctl NAME start|stop
  case $2 in
    start) as_postgres "$bin/pg_ctl" -D "$dir/$1" -l "$dir/$1.log" -w -t 60 start >/dev/null ;;
    stop) as_postgres "$bin/pg_ctl" -D "$dir/$1" -m fast -w -t 60 stop >/dev/null 2>&1 || true ;;
  esac
}

case ${1:-} in
  start)
    if ready "$primary_port" && ready "$replica_port"; then exit 0; fi
    ctl replica stop; ctl primary stop
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres "$dir"
    as_postgres "$bin/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 >/dev/null
    cat >>"$dir/primary/postgresql.conf" <<CONF
port = $primary_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 4
hot_standby = on
max_connections = 200
fsync = off
CONF
    ctl primary start
    as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
      -D "$dir/replica" -R -X stream >/dev/null
    echo "port = $replica_port" >>"$dir/replica/postgresql.conf"
    ctl replica start
    for _ in $(seq 1 100); do
      state=$(psql -h 127.0.0.1 -p "$replica_port" -U postgres -Atc "SELECT pg_is_in_recovery()" 2>/dev/null || true)
      [ "$state" = t ] && break
      sleep 0.1
    done
    [ "${state:-}" = t ] || { echo "pg-replica: the replica did not come up in recovery" >&2; cat "$dir/replica.log" >&2; exit 1; }
    echo "pg-replica: primary 127.0.0.1:$primary_port, hot standby 127.0.0.1:$replica_port ($dir)"
    ;;
  stop) ctl replica stop; ctl primary stop; rm -rf "$dir" ;;
  stop-replica) ctl replica stop ;;
  start-replica) ctl replica start ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac

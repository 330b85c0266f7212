# Shared by the wrk benchmarks in bench/ (sourced, not run). Expects $SCRIPT
# (the caller's name, for messages) and, for wrk, THREADS CONNECTIONS DURATION WARMUP.

# wrk_bench_setup HELP_END ARGS...: the options and settings the wrk benchmarks
# share. Parses --write (sets WRITE=1) and -h/--help (prints lines 2..HELP_END of
# bench/$SCRIPT); sets THREADS CONNECTIONS DURATION WARMUP (env overrides), the
# PostgreSQL database and Redis of the run (PG_DB DATABASE_URL_BENCH
# REDIS_URL_BENCH) and RAND, this run's id.
wrk_bench_setup() {
  local help_end=$1 arg
  shift
  WRITE=${WRITE:-0}
  for arg in "$@"; do
    case $arg in
      --write) WRITE=1 ;;
      -h|--help) sed -n "2,${help_end}p" "bench/$SCRIPT"; exit 0 ;;
      *) echo "usage: bash bench/$SCRIPT [--write]" >&2; exit 2 ;;
    esac
  done
  THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-50} DURATION=${DURATION:-15s} WARMUP=${WARMUP:-3s}
  PG_DB=${PG_DB:-tandem_bench}
  DATABASE_URL_BENCH=postgres://postgres@127.0.0.1:5432/$PG_DB
  REDIS_URL_BENCH=redis://127.0.0.1:6379
  RAND=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
}

die() { echo "$SCRIPT: $*" >&2; exit 1; }

# need_tools TOOL...: wrk (installed with apt-get when missing and root), then the rest.
need_tools() {
  if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      echo "wrk not found; installing it with apt-get" >&2
      apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else
      die "wrk not found: install it (e.g. 'sudo apt-get install wrk') and rerun"
    fi
  fi
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || die "$tool not found"; done
}

# build_tandem: builds the release binary and sets BIN; with TANDEM_BIN set,
# uses that binary instead (to compare two builds in the same conditions).
build_tandem() {
  if [ -n "${TANDEM_BIN:-}" ]; then
    BIN=$TANDEM_BIN
  else
    cargo build --release --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/tandem
  fi
  [ -x "$BIN" ] || die "no binary at $BIN"
}

# create_database NAME: creates a PostgreSQL database unless it exists.
create_database() {
  local out
  out=$(psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $1" 2>&1) \
    || grep -q "already exists" <<<"$out" || die "cannot create database $1: $out"
}

# Servers by name: PID[name]; their stdout/stderr in $WORK/name.out / name.log.
declare -A PID
# stop_server NAME: SIGTERM, wait up to 30 s for the graceful shutdown, then SIGKILL.
stop_server() {
  local name=$1 pid=${PID[$1]:-} i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "warning: $name still up 30 s after SIGTERM; killing it" >&2; kill -KILL "$pid"; fi
  wait "$pid" || echo "warning: $name server $pid exited with status $?" >&2
  PID[$name]=""
}

# drop_redis_keys URL PREFIX...: deletes this run's keys.
drop_redis_keys() {
  local url=$1 prefix
  shift
  command -v redis-cli >/dev/null || return 0
  for prefix in "$@"; do
    redis-cli -u "$url" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$url" del >/dev/null 2>&1 || true
  done
}

# wait_url NAME REGEX: waits up to 60 s for the server's "REGEX http://…" line; prints the URL.
wait_url() {
  local name=$1 regex=$2 url="" i
  for ((i = 0; i < 600; i++)); do
    url=$(sed -n "s|^$regex \(http://[^ ]*\)\$|\1|p" "$WORK/$name.out")
    [ -n "$url" ] && { echo "$url"; return 0; }
    kill -0 "${PID[$name]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name server exited early"; }
    sleep 0.1
  done
  cat "$WORK/$name.log" >&2
  die "$name server not serving after 60 s"
}

# cookie_from NAME: the NAME=value pair of the Set-Cookie header in $WORK/headers.
cookie_from() { tr -d '\r' <"$WORK/headers" | sed -n "s/^[Ss]et-[Cc]ookie: *\($1=[^;]*\).*/\1/p" | head -n1; }

# run_wrk NAME URL COOKIE [PATH]: warm-up, then the measured run of GET URL+PATH
# (default /api/users/me); sets RPS/P50/P99/NON2XX[NAME] and warns about errors.
declare -A RPS P50 P99 NON2XX
run_wrk() {
  local name=$1 url=$2 cookie=$3 path=${4:-/api/users/me} code sockerr
  echo "== $name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url$path" >&2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Cookie: $cookie" "$url$path" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: $cookie" \
    "$url$path" | tee "$WORK/$name.wrk" >&2
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.wrk")
  P50[$name]=$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")
  P99[$name]=$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")
  NON2XX[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/$name.wrk")
  NON2XX[$name]=${NON2XX[$name]:-0}
  [ -n "${RPS[$name]}" ] && [ -n "${P99[$name]}" ] || die "could not parse wrk output for $name"
  [ "${NON2XX[$name]}" = 0 ] || echo "WARNING: $name: ${NON2XX[$name]} non-2xx/3xx responses" >&2
  sockerr=$(grep '^ *Socket errors' "$WORK/$name.wrk" || true)
  [ -z "$sockerr" ] || echo "WARNING: $name:$sockerr" >&2
  code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$url$path") || true
  [ "$code" = 200 ] || echo "WARNING: $name: after the run GET $path gave $code" >&2
}

# machine: one line describing this machine, for BENCHMARKS.md.
machine() {
  local cpu ram
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  ram=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  echo "$(nproc) cores, ${cpu:-unknown CPU}, $ram RAM, Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

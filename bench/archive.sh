#!/usr/bin/env bash
# Archiving analytics: `tandem archive run` on PostgreSQL against the
# roadmap's load-everything job (bench/node-archive/naive.mjs), side by side.
#
#   bash bench/archive.sh [--rows "1000000 10000000"] [--naive-rows 1000000]
#
# For each size: a fresh database, that many page views spread over four
# weeks that ended more than 90 days ago, VACUUM ANALYZE, then the archive
# run to a local folder under /usr/bin/time (wall time, peak RSS). The
# roadmap's job runs on --naive-rows rows the same way. Prints rows/s and
# peak RSS for each, and Tandem's numbers over the roadmap job's.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), Node and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=archive.sh
source bench/lib.sh

SIZES="1000000 10000000"
NAIVE_ROWS=1000000
while [ $# -gt 0 ]; do
  case $1 in
    --rows) SIZES=$2; shift 2 ;;
    --naive-rows) NAIVE_ROWS=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "bench/$SCRIPT"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
command -v node >/dev/null || die "node not found"

DB=tandem_bench_archive
URL=postgres://postgres@127.0.0.1:5432/$DB
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
build_tandem
(cd bench/node-archive && npm ci --silent --no-audit --no-fund)

psql_db() { psql -h 127.0.0.1 -U postgres -d "$DB" -v ON_ERROR_STOP=1 -q "$@"; }

# generate ROWS: a fresh database with ROWS page views in four old weeks.
generate() {
  local rows=$1 started=$SECONDS
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" >/dev/null
  DATABASE_URL=$URL "$BIN" migrate >/dev/null
  psql_db -v rows="$rows" <<'SQL'
SET synchronous_commit = off;
DO $$
DECLARE w int; s timestamptz;
BEGIN
  FOR w IN 0..3 LOOP
    s := date_trunc('week', now() - interval '140 days') + w * interval '7 days';
    EXECUTE format('CREATE TABLE page_views_p%sw%s PARTITION OF page_views FOR VALUES FROM (%L) TO (%L)',
      to_char(s, 'IYYY'), to_char(s, 'IW'), s, s + interval '7 days');
  END LOOP;
END $$;
INSERT INTO page_views (occurred_at, visitor_id, user_id, path, referrer)
SELECT date_trunc('week', now() - interval '140 days') + (i % 4) * interval '7 days'
         + ((i / 4) % 600000) * interval '1 second',
       md5(i::text)::uuid,
       CASE WHEN i % 2 = 0 THEN md5((i * 7)::text)::uuid END,
       '/rooms/' || (i % 5000),
       CASE WHEN i % 3 = 0 THEN 'https://example.org/from/' || (i % 97) END
FROM generate_series(1, :rows) AS i;
VACUUM ANALYZE page_views;
SQL
  echo "generated $rows rows in $((SECONDS - started)) s" >&2
}

# measure NAME ROWS COMMAND...: runs COMMAND under /usr/bin/time; sets SECS[NAME] RSS_MB[NAME].
declare -A SECS RSS_MB COUNT
measure() {
  local name=$1 rows=$2
  shift 2
  echo "== $name: $*" >&2
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" \
    || { cat "$WORK/$name.out" "$WORK/$name.err" >&2; die "$name failed"; }
  tail -n 3 "$WORK/$name.out" >&2
  read -r SECS[$name] kb <"$WORK/time"
  RSS_MB[$name]=$(awk -v kb="$kb" 'BEGIN {printf "%.1f", kb / 1024}')
  COUNT[$name]=$rows
  local left
  left=$(psql_db -tAc "SELECT count(*) FROM page_views")
  [ "$left" = 0 ] || die "$name left $left rows in page_views"
}

names=()
for rows in $SIZES; do
  generate "$rows"
  mkdir -p "$WORK/data-$rows"
  measure "tandem-$rows" "$rows" env DATABASE_URL="$URL" TANDEM_DATA_DIR="$WORK/data-$rows" \
    ARCHIVE_AFTER_DAYS=90 TANDEM_LOG_FORMAT=json RUST_LOG=warn "$BIN" archive run
  grep -q "archived $rows rows" "$WORK/tandem-$rows.out" || die "tandem did not archive $rows rows"
  rm -rf "$WORK/data-$rows"
  names+=("tandem-$rows")
done
generate "$NAIVE_ROWS"
mkdir -p "$WORK/naive"
measure "roadmap-$NAIVE_ROWS" "$NAIVE_ROWS" env DATABASE_URL="$URL" node bench/node-archive/naive.mjs "$WORK/naive" 90
grep -q "rows=$NAIVE_ROWS " "$WORK/roadmap-$NAIVE_ROWS.out" || die "the roadmap job did not archive $NAIVE_ROWS rows"
names+=("roadmap-$NAIVE_ROWS")
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null

echo
echo "| run | rows | seconds | rows/s | peak RSS |"
echo "|---|---:|---:|---:|---:|"
for n in "${names[@]}"; do
  awk -v n="$n" -v r="${COUNT[$n]}" -v s="${SECS[$n]}" -v m="${RSS_MB[$n]}" \
    'BEGIN {printf "| %s | %d | %.2f | %.0f | %s MB |\n", n, r, s, r / s, m}'
done
same="tandem-$NAIVE_ROWS"
if [ -n "${SECS[$same]:-}" ]; then
  awk -v ts="${SECS[$same]}" -v ns="${SECS[roadmap-$NAIVE_ROWS]}" -v tm="${RSS_MB[$same]}" -v nm="${RSS_MB[roadmap-$NAIVE_ROWS]}" \
    'BEGIN {printf "\nOn %d rows, Tandem / roadmap job: %.2fx the rows/s, %.3fx the peak memory\n", '"$NAIVE_ROWS"', ns / ts, tm / nm}'
fi
echo "machine: $(machine)"
echo "date: $(date -u +%Y-%m-%d)"

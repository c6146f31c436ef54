#!/usr/bin/env bash
# Reproduces the REST numbers of docs/BENCHMARKS.md:
#   bash scripts/bench-rest.sh [sqlite|postgres] [SECONDS]
# Seeds 100 000 calls, starts a release server, drives GET /v1/calls?limit=20 and
# POST /v1/contacts with 100 concurrent clients (benches/rest_load.rs), samples the
# server's RSS, then times a 100 000-row CSV import.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
BACKEND="${1:-sqlite}"
SECONDS_PER_RUN="${2:-20}"
PG_ADMIN="${CALLCENTER_TEST_PG_URL:-postgres://callcenter:callcenter@127.0.0.1:5432/postgres}"

say() { printf '==> %s\n' "$*" >&2; }
say "building release binaries"
cargo build --release --quiet --bin callcenter
cargo bench --quiet --bench rest_load --no-run 2>/dev/null
DRIVER=(cargo bench --quiet --bench rest_load --)

DIR="$(mktemp -d /tmp/callcenter-bench.XXXXXX)"
DB_ARGS=(--data-dir "$DIR")
if [ "$BACKEND" = postgres ]; then
    NAME="cc_bench_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $NAME" >/dev/null
    DB_ARGS+=(--database-url "${PG_ADMIN%/*}/$NAME")
fi
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$DIR"
    if [ "$BACKEND" = postgres ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $NAME" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "seeding 100 000 calls ($BACKEND)"
KEY="$("${DRIVER[@]}" seed "${DB_ARGS[@]}" --calls 100000 | tail -n 1)"

target/release/callcenter serve --listen 127.0.0.1:0 "${DB_ARGS[@]}" --rate-limit-per-minute 1000000000 \
    >"$DIR/server.log" 2>"$DIR/server.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$DIR/server.log" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -n 's/^listening on //p' "$DIR/server.log")"
[ -n "$URL" ] || { cat "$DIR/server.err" >&2; exit 1; }

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status"; }
peak_mib() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status"; }

echo "backend=$BACKEND calls_in_table=100000 cores=$(nproc)"
echo "server RSS idle: $(rss_mib) MiB"
for scenario in list-calls create-contact; do
    "${DRIVER[@]}" run --url "$URL" --key "$KEY" --scenario "$scenario" --concurrency 100 --seconds "$SECONDS_PER_RUN"
    echo "server RSS after $scenario: $(rss_mib) MiB (peak $(peak_mib) MiB)"
done

say "CSV import of 100 000 rows"
python3 - "$DIR/contacts.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("name,phone,email,company,tags,region\n")
    for i in range(100_000):
        f.write(f"Person {i},+1556{i:07d},p{i}@example.com,Company {i % 500},lead;import,R{i % 7}\n")
PY
LIST_ID="$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"name":"bench import"}' "$URL/v1/contact-lists" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
START=$(date +%s.%N)
RESULT="$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: text/csv' --data-binary @"$DIR/contacts.csv" \
    "$URL/v1/contact-lists/$LIST_ID/import")"
END=$(date +%s.%N)
python3 - "$START" "$END" "$RESULT" <<'PY'
import json, sys
start, end, result = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
secs = end - start
print(f"csv_import rows={result['totalRows']} created={result['created']} failed={result['failed']} "
      f"seconds={secs:.2f} rows_per_second={result['totalRows'] / secs:.0f}")
PY
echo "server RSS after import: $(rss_mib) MiB (peak $(peak_mib) MiB)"

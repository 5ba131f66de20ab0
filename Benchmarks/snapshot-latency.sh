#!/usr/bin/env bash
# Order intake latency while a whole-catalogue inventory snapshot (10k stores, ~1.13 M rows) is
# applied through the live API, against the same load with no snapshot, same server, same run.
# The snapshot is sent by `ocss import inventory --url` in ordered parts; the server applies each
# part in chunks of 2048 rows (one short transaction and one short lock hold each), so routing and
# durable intake go on between chunks.
# Usage: Benchmarks/snapshot-latency.sh [RATE] [SECONDS]     (make bench-snapshot)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-400}
SECS=${2:-25}
DATA=${BENCH_DATA:-/tmp/ocss-bench-data}
PORT=18510
[ -f "$DATA/orders.csv" ] || python3 Benchmarks/data/gen_dataset.py "$DATA" --sizes 10000
swift build -c release --product ocss >/dev/null
BIN=.build/release/ocss
TMP=$(mktemp -d)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

$BIN import stores "$DATA/stores_10k.csv" --db "$TMP/s.sqlite" 2>/dev/null
$BIN import inventory "$DATA/inventory_10k.csv" --db "$TMP/s.sqlite" --version 1 2>/dev/null >/dev/null
ADMIN=bench-admin-token-0123456789abcdef0123
OCSS_ADMIN_TOKEN=$ADMIN $BIN serve --port $PORT --db "$TMP/s.sqlite" --log-level error >/dev/null 2>&1 &
SRV=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

run() { $BIN loadgen --url "http://127.0.0.1:$PORT" --token $ADMIN --mode orders --rate "$RATE" --workers 8 --duration "$1"; }

# p99 of the routing decision itself (ocss_routing_seconds, bucket upper bound) between two scrapes.
scrape() { curl -s "http://127.0.0.1:$PORT/metrics" | grep '^ocss_routing_seconds_bucket' > "$TMP/$1"; }
p99() { python3 - "$TMP/$1" "$TMP/$2" <<'PY'
import re, sys
def read(f):
    return [(float('inf') if m.group(1) == '+Inf' else float(m.group(1)), float(m.group(2)))
            for m in (re.search(r'le="([^"]+)"\} (\S+)', l) for l in open(f)) if m]
a, b = read(sys.argv[1]), read(sys.argv[2])
d = [(le, y - x) for (le, x), (_, y) in zip(a, b)]
n = d[-1][1]
print(next((f"<={le * 1e6:g}us" for le, c in d if c >= 0.99 * n), "n/a") if n else "n/a", f"(n={int(n)})")
PY
}
scrape m0
QUIET=$(run 8)
scrape m1
run "$SECS" > "$TMP/during.txt" &
LG=$!
sleep 2
T0=$(date +%s.%N)
$BIN import inventory "$DATA/inventory_10k.csv" --url "http://127.0.0.1:$PORT" --token $ADMIN --version 2 --replace-all 2>"$TMP/import.err" >"$TMP/import.out"
T1=$(date +%s.%N)
wait $LG
scrape m2
# Unroutable orders the timer tried again after the snapshot's stock changes (and what came of it).
RETRIES=$(curl -s "http://127.0.0.1:$PORT/metrics" | { grep '^ocss_unroutable_retries_total' || true; } | sed 's/ocss_unroutable_retries_total//' | tr '\n' ' ')
echo "no snapshot      $QUIET routing_p99=$(p99 m0 m1)"
echo "during snapshot  $(cat "$TMP/during.txt") routing_p99=$(p99 m1 m2)"
echo "snapshot         rows=$(($(wc -l < "$DATA/inventory_10k.csv") - 1)) seconds=$(python3 -c "print(round($T1 - $T0, 2))") answer=$(cat "$TMP/import.out")"
[ "$(python3 -c "print($T1 - $T0 < $SECS - 2)")" = True ] || echo "warning: the snapshot outlasted the loaded window; raise SECONDS"
echo "retries          ${RETRIES:-none}"

#!/usr/bin/env bash
# End-to-end benchmark on this machine (loopback only, bounded in time):
#   1. durable order intake (POST /v1/orders: decode, route, reserve, group commit, answer)
#      vs the parse-and-acknowledge baseline of the same server (POST /v1/orders/ack), same run;
#   2. assignment polls (GET /v1/stores/{id}/assignments) vs nginx returning a fixed body.
# Usage: Benchmarks/e2e.sh [SECONDS] [WORKERS]     (make bench-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
WORKERS=${2:-16}
DATA=${BENCH_DATA:-/tmp/ocss-bench-data}
PORT=18500
NGINX_PORT=18501
[ -f "$DATA/orders.csv" ] || python3 Benchmarks/data/gen_dataset.py "$DATA" --sizes 10000
command -v nginx >/dev/null || { apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null; }
# OCSS_BIN: measure another build (a previous commit's, for a same-run comparison); otherwise this tree's release build.
if [ -z "${OCSS_BIN:-}" ]; then swift build -c release --product ocss >/dev/null; fi
BIN=${OCSS_BIN:-.build/release/ocss}
TMP=$(mktemp -d)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null; [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

$BIN import stores "$DATA/stores_10k.csv" --db "$TMP/e2e.sqlite"
$BIN import inventory "$DATA/inventory_10k.csv" --db "$TMP/e2e.sqlite"
ADMIN=bench-admin-token-0123456789abcdef0123
OCSS_ADMIN_TOKEN=$ADMIN $BIN serve --port $PORT --db "$TMP/e2e.sqlite" --bench-endpoints --log-level error >/dev/null 2>&1 &
SRV=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/v1/stores/1/tokens" -H "Authorization: Bearer $ADMIN" | sed 's/.*"token":"\([^"]*\)".*/\1/')

run() { $BIN loadgen --url "http://127.0.0.1:$1" --duration "$SECS" --workers "$WORKERS" "${@:2}"; }
rps() { sed 's/.* rps=\([0-9]*\).*/\1/'; }

ACK=$(run $PORT --token $ADMIN --mode ack)
INTAKE=$(run $PORT --token $ADMIN --mode orders)
# Intake writes about 50 KB per order (WAL frames, then checkpoints): let the kernel write that back before the
# next phase, or its writeback threads take CPU from the polls (seen: 0.55x instead of 0.83x).
sync
POLL=$(run $PORT --token "$TOKEN" --mode poll --path "/v1/stores/1/assignments?after=999999999")

cat > "$TMP/nginx.conf" <<CONF
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type application/json; return 200 '{"assignments":[],"next_cursor":"999999999"}'; }
  }
}
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP"
sync
sleep 0.3
NGINX=$(run $NGINX_PORT --token x --mode poll --path "/v1/stores/1/assignments?after=999999999")

echo "ack      $ACK"
echo "intake   $INTAKE"
echo "poll     $POLL"
echo "nginx    $NGINX"
python3 - "$(echo "$INTAKE" | rps)" "$(echo "$ACK" | rps)" "$(echo "$POLL" | rps)" "$(echo "$NGINX" | rps)" <<'PY'
import sys
intake, ack, poll, nginx = map(float, sys.argv[1:])
print(f"| figure | rps | baseline (same run) | rps | ratio | target |")
print(f"|---|---:|---|---:|---:|---:|")
print(f"| durable intake | {intake:.0f} | parse-and-ack | {ack:.0f} | {intake/ack:.2f}x | >= 0.6x |")
print(f"| assignment polls | {poll:.0f} | nginx fixed body | {nginx:.0f} | {poll/nginx:.2f}x | >= 0.8x |")
PY
